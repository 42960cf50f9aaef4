"""crispd killed with SIGKILL at random points of a mixed workload, and other faults.

A client runs pulls, pod and container create/start/stop/remove and ExecSync in a loop
while crispd is SIGKILLed at a random moment, then started again, CRISP_CRASH_RESTARTS
times (10 by default, 50 with CRISP_SOAK=1, as `make soak` runs it). The client keeps a
model of what crispd told it (an RPC that returned OK); a call cut short by the kill
leaves its object uncertain. After each restart:
- every pod and container the model holds exists, in the state the model says;
- every running container still runs and its log still grows;
- nothing half made is visible: each listed container has its spec and state, and no
  directory under the root or state dir belongs to an object that is not listed;
- the store has no work-in-progress debris and every pulled image is listed.
At the end the client removes everything, and no mount, namespace pin, cgroup, CNI
lease or monitor process is left.

Also: a SIGKILLed crisp-monitor makes its container EXITED with a reason (and removable),
and a pull that fills the disk fails with RESOURCE_EXHAUSTED naming the cause, leaves the
store as it was, and the next pull works once there is room."""
import os
import random
import signal
import subprocess
import threading
import time

import grpc
import pytest

from conftest import api_pb2, mounts_under
from pod_helpers import (CREATED, EXITED, NOTREADY, READY, RUNNING, cgroup_dirs, ns_pins_under,
                         rpc_error, start_again, wait_for)
from lying_registry import Image, LyingRegistry, tar_layer

SOAK = os.environ.get("CRISP_SOAK") == "1"
RESTARTS = int(os.environ.get("CRISP_CRASH_RESTARTS", "50" if SOAK else "10"))
LOGGER = ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"]
PULLS = ["busybox:1", "layers:1", "sibling:1", "twotags:a"]
UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
               grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN)


class Model:
    """What the client was told: pods and containers by id with their state, or None
    while a call on them was cut short (then whatever crispd reports is adopted)."""

    def __init__(self):
        self.pods = {}      # id -> READY / NOTREADY / None
        self.ctrs = {}      # id -> (pod, CREATED / RUNNING / EXITED / None)
        self.images = set()
        self.lost_creates = 0


class Workload:
    def __init__(self, node, rng):
        self.node = node
        self.rng = rng
        self.m = Model()
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.go = threading.Event()
        self.go.set()
        self.errors = []
        self.ops = 0
        self.seq = 0
        self.t = threading.Thread(target=self.loop, daemon=True)

    # each op returns after an RPC; a grpc error from the kill marks the object uncertain
    def op(self):
        n, m, rng = self.node, self.m, self.rng
        self.seq += 1
        ready = [p for p, s in m.pods.items() if s == READY]
        running = [c for c, (_, s) in m.ctrs.items() if s == RUNNING]
        created = [c for c, (p, s) in m.ctrs.items() if s == CREATED and m.pods.get(p) == READY]
        idle = [c for c, (_, s) in m.ctrs.items() if s in (CREATED, EXITED)]
        choices = ["pod"] * (3 if len(m.pods) < 4 else 1)
        if ready:
            choices += ["ctr"] * 4
        if created:
            choices += ["start"] * 3
        if running:
            choices += ["exec"] * 2 + ["stop"]
        if idle:
            choices += ["rmctr"]
        if m.pods:
            choices += ["stoppod", "rmpod"] if len(m.pods) > 2 else []
        choices += ["pull"]
        what = rng.choice(choices)
        if what == "pod":
            try:
                pid = n.run_pod(timeout=30)
            except grpc.RpcError:
                m.lost_creates += 1
                raise
            m.pods[pid] = READY
        elif what == "ctr":
            pod = rng.choice(ready)
            try:
                c = n.create(pod, name=f"c{self.seq}", cmd=LOGGER)
            except grpc.RpcError:
                m.lost_creates += 1
                raise
            m.ctrs[c] = (pod, CREATED)
        elif what == "start":
            c = rng.choice(created)
            pod = m.ctrs[c][0]
            m.ctrs[c] = (pod, None)
            n.start(c)
            m.ctrs[c] = (pod, RUNNING)
        elif what == "exec":
            c = rng.choice(running)
            r = n.exec(c, ["sh", "-c", "echo $((6*7))"])
            if r.exit_code != 0 or r.stdout != b"42\n":
                self.errors.append(f"exec in {c[:12]}: {r}")
        elif what == "stop":
            c = rng.choice(running)
            pod = m.ctrs[c][0]
            m.ctrs[c] = (pod, None)
            n.stop(c, t=rng.choice([0, 1]))
            m.ctrs[c] = (pod, EXITED)
        elif what == "rmctr":
            c = rng.choice(idle)
            pod = m.ctrs[c][0]
            m.ctrs[c] = (pod, None)
            n.remove(c)
            del m.ctrs[c]
        elif what == "stoppod":
            p = rng.choice(list(m.pods))
            mine = {c: s for c, (pp, s) in m.ctrs.items() if pp == p}
            m.pods[p] = None
            for c in mine:
                m.ctrs[c] = (p, None)
            n.stop_pod(p)
            m.pods[p] = NOTREADY
            for c, s in mine.items():   # a container never started stays created
                m.ctrs[c] = (p, CREATED if s == CREATED else EXITED)
        elif what == "rmpod":
            p = rng.choice(list(m.pods))
            mine = [c for c, (pp, _) in m.ctrs.items() if pp == p]
            m.pods[p] = None
            for c in mine:
                m.ctrs[c] = (p, None)
            n.remove_pod(p)
            del m.pods[p]
            for c in mine:
                del m.ctrs[c]
        elif what == "pull":
            ref = n.registry.ref(rng.choice(PULLS))
            n.d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)),
                                timeout=60)
            m.images.add(ref)

    def loop(self):
        while not self.stop.is_set():
            if not self.go.is_set():
                self.paused.set()
                self.go.wait()
                continue
            try:
                self.op()
                self.ops += 1
            except grpc.RpcError as e:
                if e.code() not in UNAVAILABLE:
                    self.errors.append(f"{e.code()}: {e.details()}")
                # the kill: wait for the restart
                self.go.wait(0.05)
            except ValueError:   # the channel the harness closed at the kill
                self.go.wait(0.05)
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
                self.stop.set()

    def pause(self):
        self.paused.clear()
        self.go.clear()
        wait_for(lambda: self.paused.is_set() or not self.t.is_alive(), timeout=120,
                 what="the workload to pause")

    def resume(self):
        self.go.set()


def listing(p):
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def check_after_restart(node, m, round_):
    where = f"after restart {round_}"
    pods = {p.id: p.state for p in node.list_pods()}
    ctrs = {c.id: c for c in node.list_ctrs()}
    for p, want in list(m.pods.items()):
        if want is None:
            if p in pods:
                m.pods[p] = pods[p]
            else:
                del m.pods[p]
            continue
        assert p in pods, f"{where}: pod {p[:12]} lost"
        assert pods[p] == want, f"{where}: pod {p[:12]} is {pods[p]}, not {want}"
    for c, (pod, want) in list(m.ctrs.items()):
        if want is None:
            if c in ctrs:
                m.ctrs[c] = (pod, ctrs[c].state)
            else:
                del m.ctrs[c]
            continue
        assert c in ctrs, f"{where}: container {c[:12]} lost"
        assert ctrs[c].state == want, f"{where}: container {c[:12]} is {ctrs[c].state}, not {want}"
    # objects the client never heard of (a create cut short that completed) are adopted
    for p, st in pods.items():
        m.pods.setdefault(p, st)
    for c, x in ctrs.items():
        if c not in m.ctrs:
            m.ctrs[c] = (x.pod_sandbox_id, x.state)
    # every listed object is whole; nothing on disk belongs to an unlisted one
    for c, x in ctrs.items():
        st = node.status(c)
        assert st.id == c and st.metadata.name, f"{where}: {c[:12]} status {st}"
        assert os.path.exists(os.path.join(node.d.state, "containers", c, "spec.json")), \
            f"{where}: container {c[:12]} listed without its spec"
        assert x.pod_sandbox_id in pods, f"{where}: container {c[:12]} outlived its pod"
    for p in pods:
        node.pod_status(p)
    for top in (node.d.state, node.d.root):
        dirs = {n for n in listing(os.path.join(top, "containers")) if not n.endswith(".json")}
        assert dirs <= set(ctrs), f"{where}: {top}/containers has unlisted {dirs - set(ctrs)}"
    pod_dirs = set(listing(os.path.join(node.d.state, "pods")))
    assert pod_dirs <= set(pods), f"{where}: state/pods has unlisted {pod_dirs - set(pods)}"
    recs = {n[:-5] for n in listing(os.path.join(node.d.root, "containers")) if n.endswith(".json")}
    assert recs == set(ctrs), f"{where}: records {recs ^ set(ctrs)} differ from the listing"
    # pulled images are there, and no pull left debris
    images = {t for i in node.d.image.ListImages(api_pb2.ListImagesRequest(), timeout=10).images
              for t in i.repo_tags}
    assert m.images <= images, f"{where}: images lost: {m.images - images}"
    debris = [p for p in subprocess.run(["find", node.d.root, "-name", "*.tmp-*"],
                                        capture_output=True, text=True).stdout.split()]
    assert debris == [], f"{where}: debris {debris}"
    # running containers run and log
    running = [c for c, (_, s) in m.ctrs.items() if s == RUNNING]
    sizes = {c: log_size(node.status(c).log_path) for c in running}
    deadline = time.time() + 5
    while running and time.time() < deadline:
        running = [c for c in running if log_size(node.status(c).log_path) <= sizes[c]]
        time.sleep(0.1)
    assert running == [], f"{where}: logs not growing: " + "; ".join(
        f"{c[:12]} {node.status(c)} size {log_size(node.status(c).log_path)}" for c in running)


def test_sigkill_at_random_points_of_a_mixed_workload(node):
    seed = int(os.environ.get("CRISP_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"seed {seed}, {RESTARTS} restarts")
    w = Workload(node, random.Random(seed + 1))
    w.t.start()
    try:
        for i in range(RESTARTS):
            time.sleep(rng.uniform(0.2, 1.5))
            node.d.stop(sig=signal.SIGKILL)
            w.pause()
            start_again(node)
            check_after_restart(node, w.m, i + 1)
            assert w.errors == [], w.errors
            w.resume()
        w.pause()
    finally:
        w.stop.set()
        w.go.set()
        w.t.join(60)
    assert w.errors == [], w.errors
    print(f"{RESTARTS} restarts survived, {w.ops} operations, objects lost 0, "
          f"{w.m.lost_creates} creates cut short, {len(w.m.pods)} pods and "
          f"{len(w.m.ctrs)} containers at the end")
    # everything goes, and nothing is left
    ids = set(w.m.pods) | set(w.m.ctrs)
    for p in node.list_pods():
        node.stop_pod(p.id)
        node.remove_pod(p.id)
    assert node.list_pods() == [] and node.list_ctrs() == []
    wait_for(lambda: node.leftover_procs() == [], what="monitors gone")
    assert mounts_under(node.d.base) == []
    assert ns_pins_under(node.d.base) == []
    for sub in ("containers", "pods"):
        for top in (node.d.state, node.d.root):
            assert [n for n in listing(os.path.join(top, sub))] == [], f"{top}/{sub}"
    assert node.net.leases() == []
    left = []
    for h in cgroup_dirs("/"):
        for dirpath, dirnames, _ in os.walk(h):
            left += [os.path.join(dirpath, d) for d in dirnames if any(i in d for i in ids)]
    assert left == [], left
    holds = os.path.join(node.d.root, "holds")
    assert listing(holds) == [], listing(holds)


# ---- a monitor killed -------------------------------------------------------------------

def test_a_sigkilled_monitor_makes_its_container_exited_with_a_reason(node):
    pod = node.run_pod()
    ctr = node.run(pod, cmd=LOGGER)
    other = node.run(pod, name="other", cmd=LOGGER)
    state = os.path.join(node.d.state, "containers", ctr)
    with open(os.path.join(state, "monitor.pid")) as f:
        mon = int(f.read())
    with open(os.path.join(state, "pid")) as f:
        pid = int(f.read())
    os.kill(mon, signal.SIGKILL)
    st = node.wait_state(ctr, EXITED, timeout=10)
    assert st.reason == "Error" and "crisp-monitor" in st.message and st.exit_code != 0, st
    assert st.finished_at > 0
    # the container's own process does not run on unsupervised
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().split()[2] == "Z", what="container process gone")
    assert node.status(other).state == RUNNING
    # and it stays EXITED (the verdict is recorded, finished_at does not move)
    assert node.status(ctr).finished_at == st.finished_at
    node.remove(ctr)
    assert rpc_error(node.status, ctr).code() == grpc.StatusCode.NOT_FOUND
    assert not os.path.exists(state)
    node.remove_pod(pod)
    assert mounts_under(node.d.base) == []


# ---- the disk full during a pull ------------------------------------------------------------

def big_image():
    """One layer of 6 MiB of random bytes (gzip cannot shrink it)."""
    return Image([tar_layer([("big.bin", "file", os.urandom(6 << 20))])])


@pytest.fixture
def small_root(make_crispd, registry):
    """A crispd whose root is a 4 MiB tmpfs, with the registry's busybox:1 pulled."""
    d = make_crispd(start=False)
    os.makedirs(d.root, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0711", "crisp-it-full", d.root],
                   check=True)
    reg = LyingRegistry()
    try:
        d.start()
        yield d, reg
    finally:
        reg.close()
        if d.proc and d.proc.poll() is None:
            d.stop()
        subprocess.run(["umount", "-l", d.root], check=False)


def test_a_full_disk_fails_the_pull_clearly_and_keeps_the_store(small_root, registry):
    d, reg = small_root
    small = registry.ref("busybox:1")
    d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=small)), timeout=60)
    ref = reg.add("crisp-test/big", "1", big_image())
    e = rpc_error(d.image.PullImage,
                  api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)), timeout=60)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
    assert "No space left on device" in e.details() or "disk" in e.details().lower(), e.details()
    # the store is as it was: busybox listed and readable, nothing of the big image kept
    images = d.image.ListImages(api_pb2.ListImagesRequest(), timeout=10).images
    assert [t for i in images for t in i.repo_tags] == [small]
    st = d.image.ImageStatus(api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=small)),
                             timeout=10)
    assert st.image.id
    debris = subprocess.run(["find", d.root, "-name", "*.tmp-*"], capture_output=True,
                            text=True).stdout.split()
    assert debris == []
    # room again: the same pull works
    subprocess.run(["mount", "-o", "remount,size=64m", d.root], check=True)
    d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)), timeout=60)
    images = d.image.ListImages(api_pb2.ListImagesRequest(), timeout=10).images
    assert sorted(t for i in images for t in i.repo_tags) == sorted([small, ref])


# ---- a kill cut short -----------------------------------------------------------------------

def freezer_state_path(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, rel = line.rstrip("\n").split(":", 2)
            if "freezer" in ctrls.split(","):
                return f"/sys/fs/cgroup/freezer{rel}/freezer.state"
    return None


def test_a_container_left_frozen_by_a_crash_runs_again_after_the_restart(node):
    """StopContainer/RemoveContainer freeze the cgroup (v1) around their SIGKILL pass; a
    crispd killed inside it left the container frozen, reported running, never logging."""
    pod = node.run_pod()
    ctr = node.run(pod, cmd=LOGGER)
    with open(os.path.join(node.d.state, "containers", ctr, "pid")) as f:
        pid = int(f.read())
    path = freezer_state_path(pid)
    if not path or not os.path.exists(path):
        pytest.skip("no v1 freezer here")
    with open(path, "w") as f:
        f.write("FROZEN")
    wait_for(lambda: open(path).read().strip() == "FROZEN", what="frozen")
    node.d.stop(sig=signal.SIGKILL)
    start_again(node)
    assert open(path).read().strip() == "THAWED"
    log = node.status(ctr).log_path
    n = log_size(log)
    wait_for(lambda: log_size(log) > n, timeout=5, what="the log growing again")
    assert node.status(ctr).state == RUNNING
