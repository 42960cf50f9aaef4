#!/usr/bin/python3
"""lifecycle_bench.py - the driver of the pod+container lifecycle benchmark
(test/bench/lifecycle.sh starts the registry and the daemons, this drives and measures).

  lifecycle_bench.py --pygen DIR --busybox REF --pause REF --pods N --workers W \\
      --rounds R --warmup K --mem-pods M [--cni-conf FILE --cni-bin DIR --cni-dir DIR] \\
      --daemon crispd,SOCK,PID,MARK,CGPARENT,LOGDIR,SUBNET \\
      --daemon containerd,SOCK,PID,MARK,CGPARENT,LOGDIR,SUBNET

MARK is a path that the command line of each of the daemon's helpers names (crispd's
state dir: crisp-monitor and crisp-pause; containerd's dir: its shims' -address).

1. Both images are pulled through each daemon (PullImage) and checked (ImageStatus).
2. Warm-up: K untimed lifecycles per daemon that also check what the timed ones do not
   stop to look at: the pod is READY with an IP in the daemon's subnet, the container
   RUNNING after start and EXITED after stop, ExecSync answers "hi", and both are gone
   after removal.
3. Timed: N pods per daemon, run in R rounds that alternate between the daemons (the
   order swapped every round); in a round, W client threads each take the next pod and
   run its whole lifecycle, timing every step:
     RunPodSandbox, CreateContainer, StartContainer, ExecSync, StopContainer (timeout 0),
     RemoveContainer, StopPodSandbox, RemovePodSandbox
   ExecSync's output and exit code are checked (a wrong answer fails the run).
   With --cni-conf, each round also runs that conflist's plugins alone (CniAlone below)
   for as many pods, to estimate the CNI share of RunPodSandbox and StopPodSandbox, and
   the most any runtime that runs the same plugins could gain on those two steps
   (containerd's median over the plugins' alone: its ratio with no time of its own).
4. Memory: M pods, each with its container running, on one daemon at a time; after 2 s
   the resident set (VmRSS) and proportional set (Pss) of the runtime's own processes
   are read 3 times, 1 s apart (the median total is kept): the daemon, plus
     crispd:      crisp-monitor (one per container) and crisp-pause (one per pod that
                  shares a pid namespace: none here), found by command lines naming MARK
     containerd:  containerd-shim-runc-v2 (one per pod) and each pod's pause process
                  (the shim's child running /pause)
   The containers' own processes (sleep) are counted on neither side.
Every pod the bench made is stopped and removed at the end, whatever happened (pods are
labelled crisp-bench=lifecycle).

Prints per step: median and p95 of each daemon and the ratios (containerd / crispd),
the CNI estimate, then the memory table and whether the targets (every step's median
>= 3x faster, >= 10x less memory) were met. Exits non-zero only when something failed,
never for a missed target.
"""
import argparse
import math
import os
import statistics
import sys
import threading
import time
import uuid

STEPS = ["RunPodSandbox", "CreateContainer", "StartContainer", "ExecSync", "StopContainer",
         "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"]
LABEL = ("crisp-bench", "lifecycle")
MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
TIMEOUT = 120


def fail(msg):
    print(f"lifecycle_bench: {msg}", file=sys.stderr)
    sys.exit(1)


def pctl(v, p):
    """Nearest-rank percentile."""
    s = sorted(v)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


class Daemon:
    def __init__(self, spec, grpc, pb, pbg):
        parts = spec.split(",")
        (self.name, self.sock, pid, self.mark, self.cgparent, self.logdir,
         self.subnet) = parts[:7]
        self.handler = parts[7] if len(parts) > 7 else ""
        self.pid = int(pid)
        self.pb = pb
        self.chan = grpc.insecure_channel("unix://" + self.sock)
        self.rt = pbg.RuntimeServiceStub(self.chan)
        self.img = pbg.ImageServiceStub(self.chan)
        self.lat = {s: [] for s in STEPS}
        self.n = 0
        self.lock = threading.Lock()

    # ---- configs, as kubelet would send them (cgroupfs driver, default namespaces) ----
    def pod_config(self, name):
        pb = self.pb
        uid = str(uuid.uuid4())
        logdir = os.path.join(self.logdir, f"crisp-bench_{name}_{uid}")
        os.makedirs(logdir, exist_ok=True)   # kubelet makes the pod's log dir
        ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace="crisp-bench", uid=uid, attempt=0),
            hostname=name, log_directory=logdir,
            dns_config=pb.DNSConfig(servers=["10.96.0.10"],
                                    searches=["crisp-bench.svc.cluster.local", "svc.cluster.local"],
                                    options=["ndots:5"]),
            labels={LABEL[0]: LABEL[1], "name": name},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"{self.cgparent}/pod{uid}",
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))

    def ctr_config(self, image):
        pb = self.pb
        ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="sleep", attempt=0),
            image=pb.ImageSpec(image=image), command=["sleep", "3600"],
            log_path="sleep/0.log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(namespace_options=ns)))

    # ---- one lifecycle, in pieces ------------------------------------------------------
    def run_pod(self, cfg):
        pb = self.pb
        return self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg,
                                                               runtime_handler=self.handler), timeout=TIMEOUT).pod_sandbox_id

    def create(self, pod_id, cfg, image):
        pb = self.pb
        return self.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=self.ctr_config(image), sandbox_config=cfg),
            timeout=TIMEOUT).container_id

    def start(self, cid):
        self.rt.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=TIMEOUT)

    def exec_hi(self, cid):
        r = self.rt.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=["echo", "hi"], timeout=10),
                             timeout=TIMEOUT)
        if r.exit_code != 0 or r.stdout != b"hi\n":
            raise RuntimeError(f"{self.name}: ExecSync echo hi: exit {r.exit_code}, "
                               f"stdout {r.stdout!r}, stderr {r.stderr!r}")

    def stop_ctr(self, cid):
        self.rt.StopContainer(self.pb.StopContainerRequest(container_id=cid, timeout=0), timeout=TIMEOUT)

    def remove_ctr(self, cid):
        self.rt.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid), timeout=TIMEOUT)

    def stop_pod(self, pod_id):
        self.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=TIMEOUT)

    def remove_pod(self, pod_id):
        self.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=TIMEOUT)

    def lifecycle(self, name, image, check=False):
        """One full lifecycle; returns the step latencies (seconds)."""
        cfg = self.pod_config(name)
        t = {}
        pod_id = cid = None

        def step(s, fn, *a):
            t0 = time.perf_counter()
            r = fn(*a)
            t[s] = time.perf_counter() - t0
            return r

        pod_id = step("RunPodSandbox", self.run_pod, cfg)
        if check:
            self.check_pod(pod_id)
        cid = step("CreateContainer", self.create, pod_id, cfg, image)
        step("StartContainer", self.start, cid)
        if check:
            self.check_ctr(cid, self.pb.CONTAINER_RUNNING)
        step("ExecSync", self.exec_hi, cid)
        step("StopContainer", self.stop_ctr, cid)
        if check:
            self.check_ctr(cid, self.pb.CONTAINER_EXITED)
        step("RemoveContainer", self.remove_ctr, cid)
        step("StopPodSandbox", self.stop_pod, pod_id)
        step("RemovePodSandbox", self.remove_pod, pod_id)
        if check:
            self.check_gone(pod_id, cid)
        return t

    # ---- checks (warm-up only) -----------------------------------------------------------
    def check_pod(self, pod_id):
        import ipaddress
        s = self.rt.PodSandboxStatus(self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id),
                                     timeout=TIMEOUT).status
        if s.state != self.pb.SANDBOX_READY:
            fail(f"{self.name}: pod {pod_id[:12]} not READY after RunPodSandbox")
        ip = s.network.ip
        if not ip or ipaddress.ip_address(ip) not in ipaddress.ip_network(self.subnet):
            fail(f"{self.name}: pod {pod_id[:12]} has IP {ip!r}, not one in {self.subnet} "
                 f"(the bench's CNI network)")

    def check_ctr(self, cid, want):
        s = self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid),
                                    timeout=TIMEOUT).status
        if s.state != want:
            fail(f"{self.name}: container {cid[:12]} is {self.pb.ContainerState.Name(s.state)}, "
                 f"expected {self.pb.ContainerState.Name(want)}")

    def check_gone(self, pod_id, cid):
        pods = self.rt.ListPodSandbox(self.pb.ListPodSandboxRequest(), timeout=TIMEOUT).items
        ctrs = self.rt.ListContainers(self.pb.ListContainersRequest(), timeout=TIMEOUT).containers
        if any(p.id == pod_id for p in pods) or any(c.id == cid for c in ctrs):
            fail(f"{self.name}: pod {pod_id[:12]} or its container still listed after removal")

    # ---- images and cleanup ----------------------------------------------------------------
    def pull(self, ref):
        pb = self.pb
        t0 = time.monotonic()
        self.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=300)
        dt = time.monotonic() - t0
        st = self.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=60)
        if not st.image.id:
            fail(f"{self.name}: {ref} not present after PullImage")
        return dt

    def sweep(self):
        """Stops and removes every pod of the bench (best effort, idempotent)."""
        pb = self.pb
        try:
            pods = self.rt.ListPodSandbox(pb.ListPodSandboxRequest(
                filter=pb.PodSandboxFilter(label_selector={LABEL[0]: LABEL[1]})), timeout=30).items
        except Exception as ex:  # noqa: BLE001 - the daemon may be gone
            print(f"lifecycle_bench: {self.name}: cannot list pods for cleanup: {ex}", file=sys.stderr)
            return
        for p in pods:
            for fn in (self.stop_pod, self.remove_pod):
                try:
                    fn(p.id)
                except Exception as ex:  # noqa: BLE001
                    print(f"lifecycle_bench: {self.name}: cleanup of pod {p.id[:12]}: {ex}",
                          file=sys.stderr)


def run_batch(d, image, n, workers, prefix, record=True):
    """n lifecycles on d from `workers` threads; each thread takes the next pod."""
    lock = threading.Lock()
    nxt = [0]
    errors = []

    def worker():
        while True:
            with lock:
                if nxt[0] >= n or errors:
                    return
                i = nxt[0]
                nxt[0] += 1
            try:
                t = d.lifecycle(f"{prefix}-{i}", image)
            except Exception as ex:  # noqa: BLE001
                with lock:
                    errors.append(f"{d.name}: pod {prefix}-{i}: {ex}")
                return
            if record:
                with d.lock:
                    for s, v in t.items():
                        d.lat[s].append(v)
                    d.n += 1

    ths = [threading.Thread(target=worker) for _ in range(workers)]
    t0 = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    if errors:
        fail("; ".join(errors))
    return time.monotonic() - t0


# ---- memory ---------------------------------------------------------------------------
def procs():
    """pid -> (ppid, cmdline list, exe basename)"""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            cmd = [c.decode(errors="replace") for c in cmd if c]
            try:
                exe = os.path.basename(os.readlink(f"/proc/{p}/exe")).replace(" (deleted)", "")
            except OSError:
                exe = ""
            out[int(p)] = (ppid, cmd, exe)
        except (OSError, IndexError, ValueError):
            pass
    return out


def mem_of(pid):
    """(rss, pss) in bytes; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def runtime_procs(d):
    """kind -> [pid]: the daemon and its helpers (never the containers' own processes)."""
    ps = procs()
    kinds = {"daemon": [d.pid]}
    me = set()   # this driver and its parents: their command lines name MARK too
    p = os.getpid()
    while p > 1 and p in ps:
        me.add(p)
        p = ps[p][0]
    named = [p for p, (pp, cmd, exe) in ps.items()
             if p != d.pid and p not in me and any(d.mark in c for c in cmd)]
    if d.name.startswith("crispd"):
        kinds["crisp-monitor"] = [p for p in named if ps[p][2] == "crisp-monitor"]
        kinds["crisp-pause"] = [p for p in named if ps[p][2] == "crispd"]
        other = [p for p in named if ps[p][2] not in ("crisp-monitor", "crispd")]
        # anything else crispd itself runs right now (a crisp-pull, an exec helper)
        other += [p for p, (pp, cmd, exe) in ps.items() if pp == d.pid and p not in named]
    else:
        shims = [p for p in named if ps[p][2] == "containerd-shim-runc-v2"]
        kinds["containerd-shim-runc-v2"] = shims
        kinds["pause"] = [p for p, (pp, cmd, exe) in ps.items()
                          if pp in shims and cmd[:1] == ["/pause"]]
        other = [p for p in named if p not in shims]
        other += [p for p, (pp, cmd, exe) in ps.items() if pp == d.pid and p not in named]
    kinds["other"] = sorted(set(other))
    return kinds


def measure(d):
    samples = []
    for i in range(3):
        if i:
            time.sleep(1)
        kinds = runtime_procs(d)
        per = {k: [mem_of(p) for p in v] for k, v in kinds.items()}
        total_rss = sum(r for v in per.values() for r, _ in v)
        total_pss = sum(p for v in per.values() for _, p in v)
        samples.append((total_rss, total_pss, per))
    samples.sort(key=lambda s: s[0])
    return samples[1]


def mem_phase(d, busybox, n, workers):
    """n pods, each with one running container; measures; then removes them."""
    pods = []
    lock = threading.Lock()
    nxt = [0]
    errors = []

    def worker():
        while True:
            with lock:
                if nxt[0] >= n or errors:
                    return
                i = nxt[0]
                nxt[0] += 1
            try:
                cfg = d.pod_config(f"mem-{i}")
                pid = d.run_pod(cfg)
                with lock:
                    pods.append(pid)
                cid = d.create(pid, cfg, busybox)
                d.start(cid)
            except Exception as ex:  # noqa: BLE001
                with lock:
                    errors.append(str(ex))
                return

    ths = [threading.Thread(target=worker) for _ in range(workers)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    if errors:
        fail(f"{d.name}: memory phase: {errors[0]}")
    ctrs = d.rt.ListContainers(d.pb.ListContainersRequest(
        filter=d.pb.ContainerFilter(state=d.pb.ContainerStateValue(state=d.pb.CONTAINER_RUNNING))),
        timeout=TIMEOUT).containers
    mine = set(pods)
    running = [c for c in ctrs if c.pod_sandbox_id in mine]
    if len(running) != n:
        fail(f"{d.name}: memory phase: {len(running)} of {n} containers running")
    time.sleep(2)
    m = measure(d)
    for p in pods:
        d.stop_pod(p)
        d.remove_pod(p)
    return m


# ---- CNI alone ----------------------------------------------------------------------------
class CniAlone:
    """The CNI work of a pod without any runtime: the daemons' conflist (bridge + host-local +
    portmap) run the way libcni and crispd run it (ADD in order, each plugin given the
    previous result; DEL in reverse with the ADD result), on a network namespace made with
    unshare(1), from the same number of client threads, in every round next to the daemons,
    with `gap` seconds between a pod's ADD and its DEL (what its container steps take), so
    the plugins contend for the xtables lock about as they do under a daemon. Estimates
    what RunPodSandbox and StopPodSandbox spend in CNI plugins on either side (the same
    plugins, the same work); the plugins are exec'd from Python here, which costs a little
    more than crispd's posix_spawn, so the estimate errs high."""

    def __init__(self, conf, bindir, workdir, gap):
        import json
        self.json = json
        with open(conf) as f:
            self.conf = json.load(f)
        self.bindir, self.dir, self.gap = bindir, workdir, gap
        self.n = 0
        self.add, self.dele = [], []
        self.lock = threading.Lock()

    def plugin(self, p, command, cid, netns, prev):
        import subprocess
        conf = dict(p, name=self.conf["name"], cniVersion=self.conf["cniVersion"])
        if "portMappings" in p.get("capabilities", {}):
            conf["runtimeConfig"] = {"portMappings": []}
        conf.pop("capabilities", None)
        if prev is not None:
            conf["prevResult"] = prev
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
               "CNI_IFNAME": "eth0", "CNI_PATH": self.bindir,
               "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=crisp-bench;K8S_POD_NAME=cni-{cid[:8]}"}
        r = subprocess.run([os.path.join(self.bindir, p["type"])], input=self.json.dumps(conf).encode(),
                           env=env, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"CNI {p['type']} {command}: {r.stdout.decode()} {r.stderr.decode()}")
        return self.json.loads(r.stdout) if command == "ADD" else prev

    def one(self, i):
        import subprocess
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        ns = os.path.join(self.dir, f"ns-{i}")
        open(ns, "w").close()
        subprocess.run(["unshare", f"--net={ns}", "ip", "link", "set", "lo", "up"], check=True)
        try:
            t0 = time.perf_counter()
            prev = None
            for p in self.conf["plugins"]:
                prev = self.plugin(p, "ADD", cid, ns, prev)
            t1 = time.perf_counter()
            time.sleep(self.gap)   # the pod's container steps, between its ADD and its DEL
            t1g = time.perf_counter()
            for p in reversed(self.conf["plugins"]):
                self.plugin(p, "DEL", cid, ns, prev)
            t2 = time.perf_counter()
        finally:
            subprocess.run(["umount", ns], check=False)
            os.unlink(ns)
        with self.lock:
            self.add.append(t1 - t0)
            self.dele.append(t2 - t1g)

    def run(self, n, workers):
        lock = threading.Lock()
        nxt, errors = [self.n], []
        n += self.n
        self.n = n

        def worker():
            while True:
                with lock:
                    if nxt[0] >= n or errors:
                        return
                    i = nxt[0]
                    nxt[0] += 1
                try:
                    self.one(i)
                except Exception as ex:  # noqa: BLE001
                    with lock:
                        errors.append(str(ex))

        ths = [threading.Thread(target=worker) for _ in range(workers)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        if errors:
            fail(f"CNI alone: {errors[0]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pygen", required=True)
    ap.add_argument("--busybox", required=True)
    ap.add_argument("--pause", required=True)
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mem-pods", type=int, default=20)
    ap.add_argument("--cni-conf", help="the conflist to time alone (crispd's)")
    ap.add_argument("--cni-bin", default="/usr/lib/cni")
    ap.add_argument("--cni-dir", help="where the CNI-alone phase makes its network namespaces")
    ap.add_argument("--cni-gap", type=float, default=0.02, help="seconds between ADD and DEL")
    ap.add_argument("--daemon", action="append", required=True,
                    help="NAME,SOCK,PID,MARK,CGPARENT,LOGDIR,SUBNET")
    a = ap.parse_args()
    sys.path.insert(0, a.pygen)
    import grpc
    import api_pb2
    import api_pb2_grpc
    ds = [Daemon(s, grpc, api_pb2, api_pb2_grpc) for s in a.daemon]
    crisp, ctrd = ds[0], ds[1]
    sbx = ds[2] if len(ds) > 2 else None   # crispd again, pods under the sandbox handler
    try:
        for d in ds:
            for ref in (a.busybox, a.pause):
                d.pull(ref)
        for d in ds:
            for i in range(a.warmup):
                d.lifecycle(f"warm-{i}", a.busybox, check=True)
        per_round = [a.pods // a.rounds + (1 if r < a.pods % a.rounds else 0) for r in range(a.rounds)]
        wall = {d.name: 0.0 for d in ds}
        cni = CniAlone(a.cni_conf, a.cni_bin, a.cni_dir, a.cni_gap) if a.cni_conf else None
        for r, n in enumerate(per_round):
            order = ds if r % 2 == 0 else list(reversed(ds))
            for d in order:
                wall[d.name] += run_batch(d, a.busybox, n, a.workers, f"lc{r}")
            if cni:
                cni.run(n, a.workers)
        mem = {}
        if a.mem_pods:
            for d in ds:
                mem[d.name] = mem_phase(d, a.busybox, a.mem_pods, a.workers)
    finally:
        for d in ds:
            d.sweep()

    # ---- report -----------------------------------------------------------------------
    ms = lambda v: v * 1000  # noqa: E731
    print(f"\n{'step (ms)':<18} {'crispd med':>10} {'p95':>8}   {'containerd med':>14} {'p95':>8}"
          f"   {'ratio med':>9} {'p95':>7}  (containerd / crispd)")
    worst = None
    missed = []
    tot_c = tot_k = 0.0
    for s in STEPS:
        c, k = crisp.lat[s], ctrd.lat[s]
        cm, cp, km, kp = statistics.median(c), pctl(c, 95), statistics.median(k), pctl(k, 95)
        tot_c += cm
        tot_k += km
        rm, rp = km / cm, kp / cp
        worst = rm if worst is None else min(worst, rm)
        if rm < 3:
            missed.append(f"{s} {rm:.1f}x")
        print(f"{s:<18} {ms(cm):10.1f} {ms(cp):8.1f}   {ms(km):14.1f} {ms(kp):8.1f}   "
              f"{rm:8.1f}x {rp:6.1f}x")
    print(f"{'sum of medians':<18} {ms(tot_c):10.1f} {'':>8}   {ms(tot_k):14.1f} {'':>8}   "
          f"{tot_k / tot_c:8.1f}x")
    print(f"{'wall, all pods':<18} {wall['crispd']:9.2f}s {'':>8}   {wall['containerd']:13.2f}s"
          f" {'':>8}   {wall['containerd'] / wall['crispd']:8.1f}x   "
          f"({crisp.n} and {ctrd.n} pods, {a.workers} at a time)")
    ok_t = worst >= 3
    ceilings = []
    if cni:
        ca, cd = statistics.median(cni.add), statistics.median(cni.dele)
        print(f"\nCNI alone (the same conflist run without a runtime, {len(cni.add)} pods, "
              f"{a.workers} at a time, next to the daemons in every round): ADD median {ms(ca):.1f} ms (p95 {ms(pctl(cni.add, 95)):.1f}), "
              f"DEL median {ms(cd):.1f} ms (p95 {ms(pctl(cni.dele, 95)):.1f})")
        for s, cn in (("RunPodSandbox", ca), ("StopPodSandbox", cd)):
            cm, km = statistics.median(crisp.lat[s]), statistics.median(ctrd.lat[s])
            rest_c, rest_k = cm - cn, km - cn
            line = (f"  {s:<16} CNI is ~{100 * min(cn / cm, 1):3.0f}% of crispd's median, "
                    f"~{100 * min(cn / km, 1):3.0f}% of containerd's; the rest: "
                    f"crispd {ms(max(rest_c, 0)):5.1f} ms, containerd {ms(max(rest_k, 0)):5.1f} ms")
            if rest_c > 0.001:
                line += f" ({rest_k / rest_c:.1f}x)"
            else:
                line += " (crispd's step is CNI within this estimate's error)"
            print(line)
            # the most any runtime running these plugins could reach: no time of its own
            ceilings.append(f"{s} {km / cn:.1f}x")
    if mem:
        print(f"\nmemory with {a.mem_pods} pods running (1 container each), runtime processes only:")
        rows = []
        for d in ds:
            rss, pss, per = mem[d.name]
            parts = ", ".join(f"{k} {len(v)} x {statistics.mean(r for r, _ in v) / MiB:.2f} MiB"
                              for k, v in per.items() if v and k != "daemon")
            rows.append((d.name, rss, pss, per))
            print(f"  {d.name:<10} RSS {rss / MiB:7.1f} MiB  (Pss {pss / MiB:6.1f} MiB)  = daemon "
                  f"{per['daemon'][0][0] / MiB:.1f} MiB + {parts}")
        c_rss, k_rss = mem["crispd"][0], mem["containerd"][0]
        c_pss, k_pss = mem["crispd"][1], mem["containerd"][1]
        mon = [r for r, _ in mem["crispd"][2].get("crisp-monitor", [])]
        shim = [r for r, _ in mem["containerd"][2].get("containerd-shim-runc-v2", [])]
        pause = [r for r, _ in mem["containerd"][2].get("pause", [])]
        print(f"  ratio      RSS {k_rss / c_rss:.1f}x, Pss {k_pss / c_pss:.1f}x  (containerd / crispd)")
        if mon and shim:
            print(f"  per container: crisp-monitor {statistics.mean(mon) / MiB:.2f} MiB RSS vs "
                  f"containerd-shim-runc-v2 {statistics.mean(shim) / MiB:.2f} MiB"
                  + (f" + pause {statistics.mean(pause) / MiB:.2f} MiB" if pause else ""))
        ok_m = k_rss / c_rss >= 10
    else:
        ok_m = True
        k_rss = c_rss = 1
    if sbx:
        sandbox_report(crisp, sbx, mem)
    print(f"targets: every step >= 3x faster (median): {'met' if ok_t else 'MISSED'}"
          f"{' (' + ', '.join(missed) + ')' if missed else ''}; memory >= 10x less: "
          f"{'met' if ok_m else 'MISSED'} ({k_rss / c_rss:.1f}x)")
    if ceilings:
        print(f"  ceiling of the CNI steps with zero runtime time of their own (containerd's "
              f"median / the plugins' alone): {', '.join(ceilings)}")


def sandbox_report(crisp, sbx, mem):
    """The sandbox handler against the namespaces one, both through crispd in this run."""
    ms = lambda v: v * 1000  # noqa: E731
    print(f"\nsandbox handler ({sbx.handler}) vs namespaces handler, both crispd, medians (ms):")
    for s in STEPS:
        a, b = statistics.median(crisp.lat[s]), statistics.median(sbx.lat[s])
        print(f"  {s:<18} namespaces {ms(a):7.1f}   sandbox {ms(b):7.1f}   +{ms(b - a):6.1f}")
    d_start = statistics.median(sbx.lat["StartContainer"]) - statistics.median(crisp.lat["StartContainer"])
    line = f"  target: a sandboxed container starts within 5 ms of a namespaces one: " \
           f"{'met' if ms(d_start) <= 5 else 'MISSED'} ({ms(d_start):+.1f} ms)"
    print(line)
    if mem and sbx.name in mem:
        mon = [r for r, _ in mem[sbx.name][2].get("crisp-monitor", [])]
        if mon:
            m = statistics.mean(mon) / MiB
            print(f"  tracer + monitor per sandboxed container: {m:.2f} MiB RSS "
                  f"(target < 1 MiB: {'met' if m < 1 else 'MISSED'})")


if __name__ == "__main__":
    main()
