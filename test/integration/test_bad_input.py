"""Hostile CRI requests: absurd sizes (a million labels, 15 MiB strings, maps over the
size limit), negative timeouts, path traversal in log paths and mount paths, IDs and
names with '/', '..' or NUL, empty required fields and unknown enum values. Each goes
through the real socket and must get INVALID_ARGUMENT with a message naming what is
wrong, leave crispd alive, and change nothing: the same pods, containers and images
before and after, no new file under crispd's dirs or the pods' log dirs, and nothing
written outside them."""
import os

import grpc
import pytest

from conftest import api_pb2
from pod_helpers import RUNNING

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MIB = 1 << 20


def files_under(*dirs):
    out = set()
    for d in dirs:
        for dp, dns, fns in os.walk(d):
            out |= {os.path.join(dp, n) for n in dns + fns}
    return out


def snapshot(node):
    rt, img = node.d.runtime, node.d.image
    pods = sorted((p.id, p.state) for p in rt.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items)
    ctrs = sorted((c.id, c.state) for c in
                  rt.ListContainers(api_pb2.ListContainersRequest()).containers)
    imgs = sorted(i.id for i in img.ListImages(api_pb2.ListImagesRequest()).images)
    return pods, ctrs, imgs


@pytest.fixture
def target(node, tmp_path):
    """A node with one running container (in pod p) and an empty directory next to the
    pod's log directory that nothing may ever write into."""
    p = node.run_pod(name="target")
    c = node.run(p, name="victim")
    outside = os.path.join(node.logs, "outside")
    os.makedirs(outside)
    return node, p, c, outside


# ---- the table: (case id, method, function building the request from the target) ----

def pod_cfg(node, **kw):
    cfg = node.pod_config(name="bad")
    for k, v in kw.items():
        setattr(cfg, k, v) if not isinstance(v, dict) else getattr(cfg, k).update(v)
    return cfg


def run_pod(build):
    def make(t):
        node = t[0]
        cfg = node.pod_config(name="bad")
        build(cfg, t)
        return api_pb2.RunPodSandboxRequest(config=cfg)
    return "RunPodSandbox", make


def create(build):
    def make(t):
        node, p = t[0], t[1]
        cfg = node.ctr_config(name="bad")
        req = api_pb2.CreateContainerRequest(pod_sandbox_id=p, config=cfg,
                                             sandbox_config=node.pod_cfgs[p])
        build(req, t)
        return req
    return "CreateContainer", make


def call(method, cls, **fields):
    def make(t):
        _, p, c, _ = t
        kw = {k: (v(p, c) if callable(v) else v) for k, v in fields.items()}
        return getattr(api_pb2, cls)(**kw)
    return method, make


def set_labels(n):
    def b(cfg, t):
        cfg.labels.update({str(i): "" for i in range(n)})
    return b


def mount(**kw):
    def b(req, t):
        req.config.mounts.append(api_pb2.Mount(**kw))
    return b


def setattr_path(path, value):
    def b(msg, t):
        obj = msg
        for part in path[:-1]:
            obj = getattr(obj, part)
        setattr(obj, path[-1], value(t) if callable(value) else value)
    return b


def outside_log_dir(cfg, t):
    cfg.log_directory = t[3]


CASES = [
    # absurd sizes
    ("million-labels", *run_pod(set_labels(1_000_000)), "entries"),
    ("labels-over-256KiB", *run_pod(lambda c, t: c.labels.update(
        {f"k{i}": "v" * 60_000 for i in range(5)})), "bytes of keys and values"),
    ("annotation-key-400B", *run_pod(lambda c, t: c.annotations.update({"k" * 400: "v"})),
     "key of 400 bytes"),
    ("empty-label-key", *run_pod(lambda c, t: c.labels.update({"": "v"})), "key of 0 bytes"),
    ("15MiB-annotation", *run_pod(lambda c, t: c.annotations.update({"a": "x" * (15 * MIB)})),
     "bytes of keys and values"),
    ("15MiB-hostname", *run_pod(setattr_path(["hostname"], "h" * (15 * MIB))), "at most"),
    ("20000-envs", *create(lambda r, t: r.config.envs.extend(
        [api_pb2.KeyValue(key=f"E{i}", value="v") for i in range(20000)])), "entries"),
    ("2MiB-arg", *create(lambda r, t: r.config.args.append("a" * (2 * MIB))), "at most"),
    # names and IDs
    ("pod-name-slash", *run_pod(setattr_path(["metadata", "name"], "../../etc")), "name"),
    ("pod-name-nul", *run_pod(setattr_path(["metadata", "name"], "a\0b")), "NUL"),
    ("pod-namespace-dotdot", *run_pod(setattr_path(["metadata", "namespace"], "..")), "namespace"),
    ("pod-uid-semicolon", *run_pod(setattr_path(["metadata", "uid"], "u;K8S_POD_NAME=x")), "uid"),
    ("pod-name-empty", *run_pod(setattr_path(["metadata", "name"], "")), "name"),
    ("ctr-name-slash", *create(setattr_path(["config", "metadata", "name"], "a/b")), "name"),
    ("ctr-name-dotdot", *create(setattr_path(["config", "metadata", "name"], "..")), "name"),
    ("create-pod-id-traversal", *create(setattr_path(["pod_sandbox_id"], "../../etc")),
     "pod_sandbox_id"),
    ("create-pod-id-nul", *create(setattr_path(["pod_sandbox_id"], lambda t: t[1] + "\0x")),
     "NUL"),
    ("create-pod-id-long", *create(setattr_path(["pod_sandbox_id"], "a" * 200)), "IDs have"),
    ("create-pod-id-empty", *create(setattr_path(["pod_sandbox_id"], "")), "pod"),
    ("start-id-traversal", *call("StartContainer", "StartContainerRequest",
                                 container_id="../../x"), "container_id"),
    ("start-id-empty", *call("StartContainer", "StartContainerRequest", container_id=""),
     "container"),
    ("status-id-slash", *call("ContainerStatus", "ContainerStatusRequest", container_id="a/b"),
     "container_id"),
    ("stop-ctr-id-nul", *call("StopContainer", "StopContainerRequest",
                              container_id=lambda p, c: c + "\0"), "NUL"),
    ("remove-ctr-id-dotdot", *call("RemoveContainer", "RemoveContainerRequest",
                                   container_id=".."), "container_id"),
    ("reopen-log-id-slash", *call("ReopenContainerLog", "ReopenContainerLogRequest",
                                  container_id="/"), "container_id"),
    ("update-res-id-slash", *call("UpdateContainerResources", "UpdateContainerResourcesRequest",
                                  container_id="a/../b"), "container_id"),
    ("exec-id-traversal", *call("Exec", "ExecRequest", container_id="../x", cmd=["sh"],
                                stdout=True), "container_id"),
    ("attach-id-nul", *call("Attach", "AttachRequest", container_id=lambda p, c: c[:12] + "\0",
                            stdout=True), "NUL"),
    ("portforward-pod-dotdot", *call("PortForward", "PortForwardRequest", pod_sandbox_id="..",
                                     port=[80]), "pod_sandbox_id"),
    ("stop-pod-id-slash", *call("StopPodSandbox", "StopPodSandboxRequest",
                                pod_sandbox_id=lambda p, c: p + "/.."), "pod_sandbox_id"),
    ("remove-pod-id-slash", *call("RemovePodSandbox", "RemovePodSandboxRequest",
                                  pod_sandbox_id="../" + "0" * 64), "pod_sandbox_id"),
    ("pod-status-id-empty", *call("PodSandboxStatus", "PodSandboxStatusRequest",
                                  pod_sandbox_id=""), "pod sandbox"),
    ("pod-stats-id-slash", *call("PodSandboxStats", "PodSandboxStatsRequest",
                                 pod_sandbox_id="a/b"), "pod_sandbox_id"),
    ("list-ctr-filter-id", *call("ListContainers", "ListContainersRequest",
                                 filter=api_pb2.ContainerFilter(id="../x")), "filter.id"),
    ("list-ctr-filter-state", *call("ListContainers", "ListContainersRequest",
                                    filter=api_pb2.ContainerFilter(
                                        state=api_pb2.ContainerStateValue(state=77))), "77"),
    # negative timeouts
    ("stop-negative-timeout", *call("StopContainer", "StopContainerRequest",
                                    container_id=lambda p, c: c, timeout=-1), "negative"),
    ("execsync-negative-timeout", *call("ExecSync", "ExecSyncRequest",
                                        container_id=lambda p, c: c, cmd=["true"], timeout=-5),
     "negative"),
    ("execsync-no-cmd", *call("ExecSync", "ExecSyncRequest", container_id=lambda p, c: c),
     "command"),
    # log paths
    ("log-dir-relative", *run_pod(setattr_path(["log_directory"], "logs/pod")), "absolute"),
    ("log-dir-dotdot", *run_pod(lambda c, t: setattr(c, "log_directory",
                                                     t[0].logs + "/x/../outside")), "clean"),
    ("log-path-climbs", *create(setattr_path(["config", "log_path"], "../outside/x.log")),
     "log_path"),
    ("log-path-deep-climb", *create(setattr_path(["config", "log_path"],
                                                 "a/../../../outside/x.log")), "log_path"),
    ("log-path-absolute", *create(lambda r, t: setattr(r.config, "log_path",
                                                       t[3] + "/x.log")), "log_path"),
    ("log-dir-dotdot-in-sandbox-config", *create(lambda r, t: setattr(
        r.sandbox_config, "log_directory", t[0].logs + "/../x")), "log_directory"),
    # mounts
    ("mount-dest-relative", *create(mount(container_path="etc", host_path="/tmp")), "absolute"),
    ("mount-src-relative", *create(mount(container_path="/m", host_path="tmp")), "absolute"),
    ("mount-src-empty", *create(mount(container_path="/m", host_path="")), "host_path"),
    ("mount-dest-root", *create(mount(container_path="/a/..", host_path="/tmp")), "root"),
    ("mount-propagation-unknown", *create(mount(container_path="/m", host_path="/tmp",
                                                propagation=99)), "99"),
    ("device-src-relative", *create(lambda r, t: r.config.devices.append(
        api_pb2.Device(container_path="/dev/x", host_path="dev/null", permissions="rw"))),
     "absolute"),
    ("hostname-newline", *run_pod(setattr_path(["hostname"], "h\n10.0.0.1 evil")), "hostname"),
    ("dns-search-newline", *run_pod(lambda c, t: c.dns_config.searches.append(
        "a\nnameserver 6.6.6.6")), "control character"),
    ("cgroup-parent-climbs", *run_pod(setattr_path(["linux", "cgroup_parent"], "/../../../etc/x")),
     "climb"),
    ("sysctl-traversal", *run_pod(lambda c, t: c.linux.sysctls.update(
        {"../../../etc/x": "1"})), "sysctl"),
    # unknown enums and empty required fields
    ("netns-mode-unknown", *run_pod(lambda c, t: setattr(
        c.linux.security_context.namespace_options, "network", 42)), "42"),
    ("no-pod-metadata", *call("RunPodSandbox", "RunPodSandboxRequest",
                              config=api_pb2.PodSandboxConfig()), "metadata"),
    ("no-ctr-config", *call("CreateContainer", "CreateContainerRequest",
                            pod_sandbox_id=lambda p, c: p), "config"),
    ("no-ctr-image", *create(lambda r, t: r.config.ClearField("image")), "image"),
    ("pull-traversal", *call("PullImage", "PullImageRequest",
                             image=api_pb2.ImageSpec(image="../../etc/passwd")), "reference"),
    ("pull-empty", *call("PullImage", "PullImageRequest", image=api_pb2.ImageSpec(image="")),
     "image"),
    ("image-status-nul", *call("ImageStatus", "ImageStatusRequest",
                               image=api_pb2.ImageSpec(image="busybox\0/../x")), "NUL"),
]

SERVICE = {"PullImage": "image", "ImageStatus": "image", "RemoveImage": "image"}


def test_bad_requests_are_invalid_argument_and_change_nothing(target):
    node, p, c, outside = target
    dirs = [node.d.root, node.d.state, node.logs]
    before = snapshot(node)
    files_before = files_under(*dirs)
    failures = []
    for case, method, make, words in CASES:
        req = make(target)
        stub = getattr(node.d, SERVICE.get(method, "runtime"))
        try:
            getattr(stub, method)(req, timeout=60)
            failures.append(f"{case}: {method} succeeded")
            continue
        except grpc.RpcError as e:
            if e.code() != INVALID or words.lower() not in e.details().lower():
                failures.append(f"{case}: {e.code()} {e.details()!r} (wanted INVALID_ARGUMENT "
                                f"naming {words!r})")
        assert node.d.proc.poll() is None, f"crispd died on {case}:\n{node.d.log()[-3000:]}"
        if snapshot(node) != before:
            failures.append(f"{case}: the state changed")
            before = snapshot(node)
    # not UTF-8 (no generated client sends it; raw bytes do): crisp's JSON records and
    # container specs would be unreadable, so it is refused like the rest
    raw = api_pb2.RunPodSandboxRequest(config=node.pod_config(name="bad", labels={"k": "vXXv"}))
    payload = raw.SerializeToString().replace(b"XX", b"\xff\xfe")
    try:
        node.d.raw("/runtime.v1.RuntimeService/RunPodSandbox", payload, timeout=30)
        failures.append("not-utf8: RunPodSandbox succeeded")
    except grpc.RpcError as e:
        if e.code() != INVALID or "UTF-8" not in e.details():
            failures.append(f"not-utf8: {e.code()} {e.details()!r}")
    assert not failures, "\n".join(failures)
    assert snapshot(node) == before
    # no new file anywhere (but the empty log dirs the test's pod_config makes itself)
    new = {f for f in files_under(*dirs) - files_before
           if not (os.path.dirname(f) == node.logs and os.path.basename(f).startswith("bad-")
                   and os.listdir(f) == [])}
    assert new == set()
    assert os.listdir(outside) == []
    assert node.status(c).state == RUNNING
    assert node.sh(c, "echo still")[1] == "still\n"
