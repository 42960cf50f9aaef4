"""The systemd cgroup driver (crispd `"cgroup_driver": "systemd"`), as kubelet with
--cgroup-driver=systemd expects it of containerd (SystemdCgroup=true) or CRI-O
(cgroup_manager=systemd): the pod's cgroup parent is a slice name that crispd lays out as
systemd does (kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice)
and each container's cgroup is a scope-style leaf, crisp-<id>.scope, in every v1
hierarchy and the unified one. Checked from /proc/<pid>/cgroup of the container's
process, with limits, stats, UpdateContainerResources, removal and a restart; a
cgroupfs-style parent is refused. There is no systemd here: crispd writes the cgroup
file system directly under either driver.

kubelet's slices are made by the test (a kubelet would make them) and removed at the end
if the test made them."""
import json
import os
import signal

import grpc
import pytest

from conftest import api_pb2
from pod_helpers import (NS_POD, RUNNING, cgroup_hierarchies, finish_node, rpc_error, start_again,
                         start_node, wait_for)

MIB = 1 << 20


def slice_dirs(name):
    """'a-b-c.slice' -> ['a.slice', 'a.slice/a-b.slice', 'a.slice/a-b.slice/a-b-c.slice']"""
    parts = name[:-len(".slice")].split("-")
    out = []
    for i in range(1, len(parts) + 1):
        out.append("/".join("-".join(parts[:j]) + ".slice" for j in range(1, i + 1)))
    return out


def existing(rel):
    return [os.path.join(h, rel) for h in cgroup_hierarchies()
            if os.path.isdir(os.path.join(h, rel))]


class Slices:
    """Pod slices as kubelet's systemd driver names them, made the way kubelet would
    (before RunPodSandbox); at the end the test's own are removed, deepest first, and
    those that existed before are left alone."""

    def __init__(self):
        self.made = []
        self.n = 0

    def pod_slice(self, qos="besteffort"):
        self.n += 1
        uid = f"5ee0{os.getpid():x}-{self.n:04x}-4c1e"      # kubelet writes '-' as '_'
        name = f"kubepods-{qos}-pod{uid.replace('-', '_')}.slice"
        for rel in slice_dirs(name):
            for h in cgroup_hierarchies():
                d = os.path.join(h, rel)
                if not os.path.isdir(d):
                    os.mkdir(d)
                    self.made.append(d)
        return uid, name

    def cleanup(self):
        left = []
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                left.append(f"{d}: {e}")
        return left


@pytest.fixture
def sd_node(make_crispd, registry, cni_net, cgroup_parents):
    n = start_node(make_crispd, registry, cni_net, cgroup_parents, name="sd",
                   config={"cgroup_driver": "systemd"})
    slices = Slices()
    crisp_slice_before = existing("crisp.slice")
    yield n, slices
    finish_node(n)
    left = slices.cleanup()
    if not crisp_slice_before:
        for d in existing("crisp.slice"):
            os.rmdir(d)   # empty, or crisp left a pod's slice behind: fail loudly
    assert not left, left


def cgroup_lines(pid):
    """/proc/<pid>/cgroup as (hierarchy id, controllers, path)."""
    with open(f"/proc/{pid}/cgroup") as f:
        return [tuple(l.rstrip("\n").split(":", 2)) for l in f if l.strip()]


def pid_of(node, ctr):
    info = json.loads(node.rt.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=ctr, verbose=True), timeout=10).info["info"])
    return info["pid"]


def memory_limit(rel):
    """The memory limit of <rel> in the hierarchy carrying memory (v1 or v2)."""
    for h in cgroup_hierarchies():
        d = os.path.join(h, rel)
        for f in ("memory.limit_in_bytes", "memory.max"):
            if os.path.exists(os.path.join(d, f)):
                with open(os.path.join(d, f)) as fh:
                    return int(fh.read())
    raise AssertionError(f"no memory limit file for {rel}")


def test_runtime_config_says_systemd_and_containers_sit_in_scopes_of_the_pod_slice(sd_node):
    node, slices = sd_node
    r = node.rt.RuntimeConfig(api_pb2.RuntimeConfigRequest(), timeout=5)
    assert r.linux.cgroup_driver == api_pb2.SYSTEMD

    uid, pod_slice = slices.pod_slice()
    pod = node.run_pod(cfg=node.pod_config(uid=uid, cgroup_parent=pod_slice))
    lim = 64 * MIB
    ctr = node.run(pod, name="app", cmd=["sleep", "3600"],
                   resources=api_pb2.LinuxContainerResources(memory_limit_in_bytes=lim))
    assert node.status(ctr).state == RUNNING
    pid = pid_of(node, ctr)

    rel = f"{slice_dirs(pod_slice)[-1]}/crisp-{ctr}.scope"
    want = "/" + rel
    assert want == ("/kubepods.slice/kubepods-besteffort.slice/"
                    f"kubepods-besteffort-pod{uid.replace('-', '_')}.slice/crisp-{ctr}.scope")
    lines = cgroup_lines(pid)
    v1 = {c: p for hid, c, p in lines if hid != "0"}
    v2 = [p for hid, c, p in lines if hid == "0"]
    assert v2 and v2[0].endswith(want), lines                     # the unified hierarchy
    named = {c for c in v1 if c}
    assert {"memory", "pids"} <= {x for c in named for x in c.split(",")}, lines
    for c, p in v1.items():                                      # every v1 hierarchy
        assert p.endswith(want), (c, p)
    assert existing(rel) and len(existing(rel)) == len(cgroup_hierarchies())

    # limits, stats and updates act on the scope
    assert memory_limit(rel) == lim
    node.rt.UpdateContainerResources(api_pb2.UpdateContainerResourcesRequest(
        container_id=ctr, linux=api_pb2.LinuxContainerResources(memory_limit_in_bytes=96 * MIB)),
        timeout=10)
    assert memory_limit(rel) == 96 * MIB
    st = node.rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=ctr), timeout=10).stats
    assert st.memory.working_set_bytes.value > 0 and st.cpu.usage_core_nano_seconds.value > 0
    # an exec'd process joins the same scope (seen from inside: the full path, or "/"
    # should the container get a cgroup namespace rooted at its scope)
    code, out, _ = node.sh(ctr, "cat /proc/self/cgroup")
    paths = [l.split(":", 2)[2] for l in out.splitlines()]
    assert code == 0 and len(paths) == len(lines), out
    assert all(p.endswith(want) for p in paths) or all(p == "/" for p in paths), out

    node.stop(ctr)
    node.remove(ctr)
    assert existing(rel) == [], "the container's scope outlived RemoveContainer"
    node.stop_pod(pod)
    node.remove_pod(pod)
    # kubelet's pod slice is kubelet's: crisp leaves it, and nothing of its own in it
    pod_rel = slice_dirs(pod_slice)[-1]
    for d in existing(pod_rel):
        assert [x for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))] == [], d


def test_a_cgroupfs_parent_is_refused_naming_the_driver(sd_node):
    node, _ = sd_node
    for parent in ("/kubepods/burstable/pod1234", "kubepods", "kube--pods.slice"):
        e = rpc_error(node.run_pod, cfg=node.pod_config(cgroup_parent=parent))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (parent, e)
        assert "systemd" in e.details() and "slice" in e.details(), e.details()
    e = rpc_error(node.run_pod, cfg=node.pod_config(cgroup_parent="/kubepods/burstable/pod1234"))
    assert "--cgroup-driver" in e.details(), e.details()
    assert node.list_pods() == []


def test_a_pod_without_parent_gets_crisp_slice_and_removal_leaves_nothing(sd_node):
    node, _ = sd_node
    pod = node.run_pod(cgroup_parent=False)
    ctrs = [node.run(pod, name=f"c{i}") for i in range(2)]
    pod_rel = f"crisp.slice/crisp-{pod}.slice"
    for c in ctrs:
        p = cgroup_lines(pid_of(node, c))
        assert all(path.endswith(f"/{pod_rel}/crisp-{c}.scope") for _, _, path in p), p
    node.stop_pod(pod)
    node.remove_pod(pod)
    assert existing(pod_rel) == [], "the pod's slice outlived RemovePodSandbox"


def test_containers_keep_their_cgroup_across_a_restart_with_the_other_driver(sd_node):
    """The container's spec keeps its parent and leaf name: after crispd comes back with
    the cgroupfs driver, stats, updates and removal still find the scope; only new pods
    follow the new driver (and the old pod's new containers are refused, not misplaced)."""
    node, slices = sd_node
    uid, pod_slice = slices.pod_slice("burstable")
    pod = node.run_pod(cfg=node.pod_config(uid=uid, cgroup_parent=pod_slice))
    ctr = node.run(pod, name="app")
    rel = f"{slice_dirs(pod_slice)[-1]}/crisp-{ctr}.scope"
    assert existing(rel)

    assert node.d.stop() == 0
    with open(node.d.config_path) as f:
        cfg = json.load(f)
    cfg["cgroup_driver"] = "cgroupfs"
    with open(node.d.config_path, "w") as f:
        json.dump(cfg, f)
    start_again(node)
    r = node.rt.RuntimeConfig(api_pb2.RuntimeConfigRequest(), timeout=5)
    assert r.linux.cgroup_driver == api_pb2.CGROUPFS

    assert node.status(ctr).state == RUNNING
    st = node.rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=ctr), timeout=10).stats
    assert st.memory.working_set_bytes.value > 0
    node.rt.UpdateContainerResources(api_pb2.UpdateContainerResourcesRequest(
        container_id=ctr, linux=api_pb2.LinuxContainerResources(memory_limit_in_bytes=80 * MIB)),
        timeout=10)
    assert memory_limit(rel) == 80 * MIB
    e = rpc_error(node.create, pod, name="late")
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "cgroupfs" in e.details()
    e = rpc_error(node.run_pod, cfg=node.pod_config(cgroup_parent=pod_slice + "x.slice"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "cgroupfs" in e.details()
    node.stop(ctr)
    node.remove(ctr)
    assert existing(rel) == []
    node.stop_pod(pod)
    node.remove_pod(pod)
    wait_for(lambda: node.leftover_procs() == [], what="no process of this crispd left")


def pause_pid(node, pod):
    with open(os.path.join(node.d.state, "pods", pod, "ns", "pause")) as f:
        return int(f.read().split()[0])


@pytest.mark.parametrize("driver", ["systemd", "cgroupfs"])
def test_a_pods_pause_process_sits_in_the_pods_own_cgroup_next_to_its_containers(
        make_crispd, registry, cni_net, cgroup_parents, driver):
    """A pod whose containers share a PID namespace has a pause process: it goes where
    containerd puts the sandbox, a sibling of the containers (crisp-<pod id>.scope, or
    crisp-<pod id> under cgroupfs), and that cgroup goes with StopPodSandbox, also
    after a crispd SIGKILL and restart."""
    node = start_node(make_crispd, registry, cni_net, cgroup_parents, name=f"pause-{driver}",
                      config={"cgroup_driver": driver})
    slices = Slices()
    try:
        if driver == "systemd":
            uid, parent = slices.pod_slice("burstable")
            parent_rel = slice_dirs(parent)[-1]
            leaf = lambda i: f"crisp-{i}.scope"   # noqa: E731
        else:
            uid, parent = None, cgroup_parents.new()
            parent_rel = parent.strip("/")
            leaf = lambda i: f"crisp-{i}"         # noqa: E731
        pod = node.run_pod(cfg=node.pod_config(uid=uid, cgroup_parent=parent, pid=NS_POD))
        ctr = node.run(pod, name="app")
        pause = pause_pid(node, pod)
        for _, _, path in cgroup_lines(pause):
            assert path.endswith(f"/{parent_rel}/{leaf(pod)}"), path
        for _, _, path in cgroup_lines(pid_of(node, ctr)):
            assert path.endswith(f"/{parent_rel}/{leaf(ctr)}"), path
        # a crispd killed and started again still finds and removes the pod's cgroup
        assert node.d.stop(sig=signal.SIGKILL) == -signal.SIGKILL
        start_again(node)
        assert all(p.endswith(f"/{parent_rel}/{leaf(pod)}") for _, _, p in cgroup_lines(pause))
        node.stop_pod(pod)
        assert existing(f"{parent_rel}/{leaf(pod)}") == [], "the pod's cgroup outlived StopPodSandbox"
        node.remove_pod(pod)
        assert existing(f"{parent_rel}/{leaf(ctr)}") == []
    finally:
        finish_node(node)
        assert not slices.cleanup()
