"""Helpers for the pod and container lifecycle tests (test_pods.py, test_containers.py,
test_security.py, test_restart.py).

- `cni_net` (session): a private CNI network for this test session, a copy of
  deploy/cni/10-crisp.conflist with its own network name, bridge and a free 10.x/24
  subnet. At session end the bridge, the host-local leases and any iptables rule or
  chain carrying the network's name are removed (and ip_forward is put back).
- `cgroup_parents` (session): hands out pod cgroup parents /crisp-test-<pid>/pod-<n>
  and removes them (and the session directory) in every hierarchy at the end; a process
  still in one is killed by its PID and fails the session.
- `node` (per test): a started crispd with that network and the session registry's
  busybox image pulled, wrapped in `Node`, which builds pod and container configs and
  calls the RuntimeService. Its teardown removes every pod that is left and fails the
  test if a crisp-monitor or container process of that crispd survives.
"""
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import grpc
import pytest

from conftest import api_pb2, mounts_under

HERE = os.path.dirname(os.path.abspath(__file__))
CONFLIST = os.path.join(HERE, "../../deploy/cni/10-crisp.conflist")
IMAGE = "base:1"   # busybox-static + /etc/passwd with www-data (registry.sh push-extra)


def build_static(directory, source, name):
    """Builds test/integration/SOURCE static into DIRECTORY/NAME (a directory that
    containers can bind-mount: mode 0755) and returns that path."""
    os.chmod(directory, 0o755)
    out = os.path.join(str(directory), name)
    subprocess.run(["gcc", "-static", "-O1", "-std=c11", "-D_GNU_SOURCE", "-o", out,
                    os.path.join(HERE, source)], check=True)
    return out


NS_POD = api_pb2.POD
NS_CONTAINER = api_pb2.CONTAINER
NS_NODE = api_pb2.NODE

CREATED = api_pb2.CONTAINER_CREATED
RUNNING = api_pb2.CONTAINER_RUNNING
EXITED = api_pb2.CONTAINER_EXITED
READY = api_pb2.SANDBOX_READY
NOTREADY = api_pb2.SANDBOX_NOTREADY


# ---- the session's CNI network ------------------------------------------------------

def _used_networks():
    nets = []
    for cmd in (["ip", "-o", "addr"], ["ip", "-o", "route", "show", "table", "all"]):
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        for m in re.finditer(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)\b", out):
            try:
                nets.append(ipaddress.ip_network(m.group(1), strict=False))
            except ValueError:
                pass
    return nets


def _free_subnet(seed):
    used = _used_networks()
    for i in range(256 * 100):
        k = (seed + i) % (256 * 100)
        net = ipaddress.ip_network(f"10.{150 + k // 256}.{k % 256}.0/24")
        if not any(net.overlaps(u) for u in used if u.version == 4 and u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x/24 subnet")


def _iptables(table, *args):
    return subprocess.run(["iptables", "-w", "-t", table, *args], capture_output=True, text=True)


class CniNet:
    def __init__(self):
        pid = os.getpid()
        self.name = f"crisp-it-{pid}"
        self.bridge = f"crit{pid % 100000}"
        self.subnet = _free_subnet(pid)
        with open(CONFLIST) as f:
            conf = json.load(f)
        conf["name"] = self.name
        for p in conf["plugins"]:
            if p["type"] == "bridge":
                p["bridge"] = self.bridge
                p["ipam"]["ranges"] = [[{"subnet": str(self.subnet)}]]
        self.conf = conf
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            self.ip_forward = f.read().strip()

    def install(self, conf_dir):
        os.makedirs(conf_dir, exist_ok=True)
        with open(os.path.join(conf_dir, "10-crisp.conflist"), "w") as f:
            json.dump(self.conf, f)

    def leases(self):
        d = f"/var/lib/cni/networks/{self.name}"
        if not os.path.isdir(d):
            return []
        return [n for n in os.listdir(d) if re.match(r"^\d+\.\d+\.\d+\.\d+$", n)]

    def our_rules(self, table="nat"):
        """The rules of table whose CNI comment names this network (the bridge plugin's
        masquerade rules, portmap's DNAT and SNAT ones), each as the argument list of its
        `iptables -S` line: shlex undoes the quoting of the comment, which holds quotes
        (str.split would cut it into pieces that `iptables -D` does not take)."""
        tag = f'name: "{self.name}" '
        out = []
        for line in _iptables(table, "-S").stdout.splitlines():
            if self.name in line:
                args = shlex.split(line)
                if args[0] == "-A" and "--comment" in args and \
                        tag in args[args.index("--comment") + 1]:
                    out.append(args)
        return out

    def pod_rules(self, pod):
        """This network's rules (nat and filter) that name pod (CNI comments say
        `name: "<network>" id: "<sandbox id>"`)."""
        tag = f'id: "{pod}"'
        return [a for t in ("nat", "filter") for a in self.our_rules(t)
                if tag in a[a.index("--comment") + 1]]

    def remove_rules(self):
        """Deletes this network's rules in nat and filter, then each per-pod chain
        (CNI-<hash>, CNI-DN-<hash>) they were in or jumped to, once nothing jumps to it:
        what the plugins leave when their DEL cannot do its work, as for a pod whose
        network namespace was lost (the bridge plugin then cannot find the pod's address
        and keeps its masquerade chain). The chains every network shares (CNI-HOSTPORT-*)
        stay. Returns the chains removed, as table/chain."""
        gone = []
        for table in ("nat", "filter"):
            chains = set()
            for args in self.our_rules(table):
                chains.add(args[1])
                if "-j" in args:
                    chains.add(args[args.index("-j") + 1])
                _iptables(table, "-D", *args[1:])
            for ch in sorted(chains):
                if not ch.startswith("CNI-") or ch.startswith(("CNI-HOSTPORT-", "CNI-DN-HOSTPORT")):
                    continue
                rules = _iptables(table, "-S").stdout.splitlines()
                if any(r.endswith(f" -j {ch}") for r in rules):
                    continue   # still used by a rule that does not name this network
                if _iptables(table, "-F", ch).returncode == 0 and \
                        _iptables(table, "-X", ch).returncode == 0:
                    gone.append(f"{table}/{ch}")
        return gone

    def cleanup(self):
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(f"/var/lib/cni/networks/{self.name}", ignore_errors=True)
        self.remove_rules()
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(self.ip_forward)


@pytest.fixture(scope="session")
def cni_net():
    net = CniNet()
    yield net
    net.cleanup()


# ---- cgroups ------------------------------------------------------------------------

def cgroup_hierarchies():
    """Mount points of every cgroup hierarchy (v1 controllers, name=systemd, v2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def cgroup_dirs(rel):
    """Every existing <hierarchy>/<rel>."""
    rel = rel.strip("/")
    return [os.path.join(h, rel) for h in cgroup_hierarchies()
            if os.path.isdir(os.path.join(h, rel))]


def rmdir_tree(path):
    """rmdir a cgroup directory and its children, deepest first (cgroupfs refuses rm -r)."""
    if not os.path.isdir(path):
        return
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        for dn in dirnames:
            try:
                os.rmdir(os.path.join(dirpath, dn))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


class CgroupParents:
    def __init__(self):
        self.root = f"/crisp-test-{os.getpid()}"
        self.n = 0

    def new(self):
        self.n += 1
        return f"{self.root}/pod-{self.n}"

    def cleanup(self):
        """Kills (by PID) whatever a failed test left in these cgroups, removes them, and
        returns the PIDs it had to kill."""
        killed = set()
        self.what = []
        for d in cgroup_dirs(self.root):
            for dirpath, _, filenames in os.walk(d):
                if "cgroup.procs" in filenames:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids = {int(p) for p in f.read().split()}
                    killed |= pids
                    self.what += [f"{p} in {dirpath}: {describe_procs([p])}" for p in pids]
        for p in killed:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if killed:
            time.sleep(0.5)
        for d in cgroup_dirs(self.root):
            rmdir_tree(d)
        return sorted(killed)


@pytest.fixture(scope="session")
def cgroup_parents():
    c = CgroupParents()
    yield c
    killed = c.cleanup()
    assert not killed, f"container processes outlived their crispd: {c.what}"
    assert cgroup_dirs(c.root) == [], "pod cgroup parents left behind"


# ---- processes ----------------------------------------------------------------------

def procs_referencing(path, exclude=()):
    """PIDs whose command line mentions path, but those in exclude (crisp-monitor is
    started with its container's state dir; a pod's pause process is a clone of crispd
    and has crispd's command line, --state included)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid() or int(p) in exclude:
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmd:
            out.append(int(p))
    return out


def ns_pins_under(prefix):
    """Namespace bind mounts (nsfs) under prefix."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if pre.split()[4].startswith(prefix) and post.split()[0] == "nsfs":
                out.append(pre.split()[4])
    return out


def proc_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_for(pred, timeout=10, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- the node -----------------------------------------------------------------------

def i64(v):
    return api_pb2.Int64Value(value=v)


class Node:
    """A crispd under test plus the configs the tests keep (pod id -> PodSandboxConfig)."""

    def __init__(self, d, registry, net, cgroups):
        self.d = d
        self.rt = d.runtime
        self.registry = registry
        self.net = net
        self.cgroups = cgroups
        self.image = registry.ref(IMAGE)
        self.pod_cfgs = {}
        self.n = 0
        self.logs = os.path.join(d.base, "logs")

    # pods
    def pod_config(self, name=None, host_network=False, pid=NS_CONTAINER, ipc=NS_POD,
                   labels=None, annotations=None, dns=None, hostname=None, cgroup_parent=True,
                   uid=None, namespace="crisp-it", attempt=0):
        self.n += 1
        name = name or f"pod{self.n}"
        logdir = os.path.join(self.logs, f"{name}-{self.n}")
        os.makedirs(logdir, exist_ok=True)
        linux = api_pb2.LinuxPodSandboxConfig(
            security_context=api_pb2.LinuxSandboxSecurityContext(
                namespace_options=api_pb2.NamespaceOption(
                    network=NS_NODE if host_network else NS_POD, pid=pid, ipc=ipc)))
        if cgroup_parent:
            linux.cgroup_parent = self.cgroups.new() if cgroup_parent is True else cgroup_parent
        return api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, namespace=namespace,
                                                uid=uid or f"uid-{name}-{self.n}", attempt=attempt),
            hostname=hostname if hostname is not None else name,
            log_directory=logdir, labels=labels or {}, annotations=annotations or {},
            dns_config=dns, linux=linux)

    def run_pod(self, cfg=None, handler="", timeout=60, **kw):
        cfg = cfg or self.pod_config(**kw)
        req = api_pb2.RunPodSandboxRequest(config=cfg, runtime_handler=handler)
        pid = self.rt.RunPodSandbox(req, timeout=timeout).pod_sandbox_id
        self.pod_cfgs[pid] = cfg
        return pid

    def pod_status(self, pod, verbose=False):
        req = api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=verbose)
        return self.rt.PodSandboxStatus(req, timeout=10)

    def list_pods(self, **filt):
        f = api_pb2.PodSandboxFilter(**filt) if filt else None
        req = api_pb2.ListPodSandboxRequest(filter=f)
        return list(self.rt.ListPodSandbox(req, timeout=10).items)

    def stop_pod(self, pod, timeout=60):
        self.rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)

    def remove_pod(self, pod, timeout=60):
        req = api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod)
        self.rt.RemovePodSandbox(req, timeout=timeout)

    # containers
    def ctr_config(self, name="c", cmd=("sleep", "3600"), args=(), log=True, labels=None,
                   annotations=None, mounts=(), sc=None, resources=None, image=None, envs=None,
                   attempt=0, working_dir=""):
        linux = api_pb2.LinuxContainerConfig(
            security_context=sc or api_pb2.LinuxContainerSecurityContext(), resources=resources)
        return api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name, attempt=attempt),
            image=api_pb2.ImageSpec(image=image or self.image), command=list(cmd), args=list(args),
            labels=labels or {}, annotations=annotations or {}, mounts=list(mounts),
            envs=[api_pb2.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            log_path=f"{name}_{attempt}.log" if log else "", linux=linux, working_dir=working_dir)

    def create(self, pod, cfg=None, timeout=30, **kw):
        cfg = cfg or self.ctr_config(**kw)
        return self.rt.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=self.pod_cfgs.get(pod)),
            timeout=timeout).container_id

    def start(self, ctr, timeout=30):
        self.rt.StartContainer(api_pb2.StartContainerRequest(container_id=ctr), timeout=timeout)

    def run(self, pod, **kw):
        c = self.create(pod, **kw)
        self.start(c)
        return c

    def status(self, ctr, verbose=False):
        return self.rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=ctr,
                                                                      verbose=verbose),
                                       timeout=10).status

    def list_ctrs(self, **filt):
        f = api_pb2.ContainerFilter(**filt) if filt else None
        return list(self.rt.ListContainers(api_pb2.ListContainersRequest(filter=f),
                                           timeout=10).containers)

    def stop(self, ctr, t=0, timeout=60):
        self.rt.StopContainer(api_pb2.StopContainerRequest(container_id=ctr, timeout=t),
                              timeout=timeout)

    def remove(self, ctr, timeout=60):
        self.rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=ctr), timeout=timeout)

    def exec(self, ctr, cmd, t=10, timeout=None):
        return self.rt.ExecSync(api_pb2.ExecSyncRequest(container_id=ctr, cmd=list(cmd), timeout=t),
                                timeout=timeout or t + 10)

    def sh(self, ctr, script, t=10):
        """Runs script with sh -c in ctr; returns (exit code, stdout, stderr) as text."""
        r = self.exec(ctr, ["sh", "-c", script], t=t)
        return r.exit_code, r.stdout.decode(), r.stderr.decode()

    def wait_state(self, ctr, state, timeout=10):
        return wait_for(lambda: (lambda s: s if s.state == state else None)(self.status(ctr)),
                        timeout, what=f"container {ctr[:12]} in state {state}")

    def log_path(self, ctr):
        return self.status(ctr).log_path

    def log_lines(self, path):
        try:
            with open(path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def log_text(self, path, stream=None):
        """The payload of a CRI log file (P lines joined to the next), one stream or both."""
        out, cur = [], ""
        for line in self.log_lines(path):
            _, s, tag, msg = (line.split(" ", 3) + [""])[:4]
            if stream and s != stream:
                continue
            cur += msg
            if tag == "F":
                out.append(cur)
                cur = ""
        return out

    def leftover_procs(self):
        """Processes naming this crispd's state dir, crispd itself excepted."""
        alive = self.d.proc is not None and self.d.proc.poll() is None
        return procs_referencing(self.d.state, exclude={self.d.proc.pid} if alive else ())

    # teardown
    def remove_everything(self):
        errors = []
        for p in self.list_pods():
            try:
                self.stop_pod(p.id)
                self.remove_pod(p.id)
            except grpc.RpcError as e:
                errors.append(f"{p.id[:12]}: {e.code()} {e.details()}")
        for c in self.list_ctrs():   # containers whose pod is gone would be a bug too
            errors.append(f"container {c.id[:12]} outlived its pod")
        return errors


def kill_leftovers(n):
    """Last resort so one failing test does not leak processes into the next: SIGKILL
    (by PID) every process but crispd that names this test's state dir."""
    pids = n.leftover_procs()
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def start_again(node):
    """Starts node's crispd again on the same dirs. After a SIGKILL the old socket file is
    still there: waiting for the new crispd's "serving" line first keeps the client from
    connecting to the dead socket and backing off for seconds."""
    serving = node.d.log().count('msg="serving CRI v1"')
    node.d.start(wait=False)
    wait_for(lambda: node.d.log().count('msg="serving CRI v1"') > serving or
             node.d.proc.poll() is not None, what="crispd serving again")
    node.d.wait_ready()
    node.rt = node.d.runtime


def start_node(make_crispd, registry, cni_net, cgroup_parents, name="d", config=None):
    d = make_crispd(name=name, start=False, config=config)
    cni_net.install(os.path.join(d.base, "cni"))
    d.start()
    node = Node(d, registry, cni_net, cgroup_parents)
    d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=node.image)),
                      timeout=60)
    return node


@pytest.fixture
def node(make_crispd, registry, cni_net, cgroup_parents):
    n = start_node(make_crispd, registry, cni_net, cgroup_parents)
    yield n
    finish_node(n)


def finish_node(n):
    errors = []
    if n.d.proc is not None and n.d.proc.poll() is None:
        n.d.connect()
        n.rt = n.d.runtime
        errors = n.remove_everything()
    left = wait_for_gone(n)
    killed = kill_leftovers(n)
    if errors or left or killed:
        # the test fails below; unmount what a failed removal left (the pod's /dev/shm,
        # pins) so the temporary directory can go and the next test starts clean
        for m in sorted(mounts_under(n.d.base), reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
    assert not errors, f"teardown: {errors}\n{n.d.log()[-3000:]}"
    assert not left and not killed, f"processes left for {n.d.state}: {left}"


def describe_procs(pids):
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                out.append(f"{p}: " + f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return out


def wait_for_gone(n, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not n.leftover_procs():
            return []
        time.sleep(0.05)
    return describe_procs(n.leftover_procs())


def rpc_error(fn, *a, **kw):
    """Calls fn, expects a grpc error; returns it."""
    try:
        fn(*a, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not fail")
