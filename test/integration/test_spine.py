"""crispd's spine: the server, every CRI method's defined status, configuration,
signals and the socket."""
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time

import grpc
import pytest

from conftest import CRISPD, Crispd, api_pb2

# Methods crisp serves today; every other CRI method must answer UNIMPLEMENTED.
IMPLEMENTED = {
    "/runtime.v1.RuntimeService/Version",
    "/runtime.v1.RuntimeService/Status",
    "/runtime.v1.RuntimeService/RuntimeConfig",
    "/runtime.v1.RuntimeService/UpdateRuntimeConfig",
    "/runtime.v1.RuntimeService/ListContainers",
    "/runtime.v1.RuntimeService/ListPodSandbox",
    "/runtime.v1.RuntimeService/GetContainerEvents",
    "/runtime.v1.ImageService/ListImages",
    "/runtime.v1.ImageService/ImageFsInfo",
    "/runtime.v1.RuntimeService/ListContainerStats",
    "/runtime.v1.RuntimeService/ListPodSandboxStats",
}
# Valid for the wire but refused by the handler: the empty request names no image,
# pod, container or command.
EMPTY_REQUEST_INVALID = {"/runtime.v1.ImageService/RemoveImage",
                         "/runtime.v1.ImageService/ImageStatus",
                         "/runtime.v1.ImageService/PullImage"} | {
    "/runtime.v1.RuntimeService/" + m for m in (
        "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
        "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
        "ContainerStatus", "ReopenContainerLog", "ExecSync", "ContainerStats",
        "PodSandboxStats", "UpdateContainerResources", "Exec", "Attach", "PortForward")}


def all_methods():
    out = []
    for svc in ("RuntimeService", "ImageService"):
        sd = api_pb2.DESCRIPTOR.services_by_name[svc]
        for m in sd.methods:
            out.append((f"/runtime.v1.{svc}/{m.name}", m))
    return out


METHODS = all_methods()


def test_every_cri_v1_method_is_registered():
    assert len(METHODS) == 34  # 29 RuntimeService + 5 ImageService in CRI v1 (k8s 1.32)


def test_version_reports_crisp_and_v1(crispd):
    v = crispd.runtime.Version(api_pb2.VersionRequest(version="v1"))
    assert v.runtime_name == "crisp"
    assert v.runtime_api_version == "v1"
    assert v.version == "0.1.0"
    assert v.runtime_version and v.runtime_version != ""
    out = subprocess.run([CRISPD, "--version"], capture_output=True, text=True, check=True)
    assert v.runtime_version in out.stdout


def test_status_reports_conditions_handlers_and_verbose_config(crispd):
    st = crispd.runtime.Status(api_pb2.StatusRequest(verbose=True))
    conds = {c.type: c for c in st.status.conditions}
    assert conds["RuntimeReady"].status is True
    net = conds["NetworkReady"]
    assert net.status is False
    assert net.reason == "NetworkPluginNotReady"
    assert "no CNI network config" in net.message
    names = [h.name for h in st.runtime_handlers]
    assert names == ["", "runc", "runsc"]
    cfg = json.loads(st.info["config"])
    assert cfg["runtimes"]["runc"]["executor"] == "namespaces"
    assert cfg["runtimes"]["runsc"]["executor"] == "sandbox"
    assert cfg["default_runtime"] == "runc"
    assert cfg["listen"] == crispd.sock
    assert cfg["root"] == crispd.root
    quiet = crispd.runtime.Status(api_pb2.StatusRequest())
    assert len(quiet.info) == 0


def test_network_becomes_ready_when_a_cni_config_appears(crispd):
    cni = os.path.join(crispd.base, "cni")
    os.makedirs(cni, exist_ok=True)
    with open(os.path.join(cni, "10-test.conflist"), "w") as f:
        f.write('{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"loopback"}]}')
    st = crispd.runtime.Status(api_pb2.StatusRequest())
    conds = {c.type: c for c in st.status.conditions}
    assert conds["NetworkReady"].status is True


def test_runtime_config_reports_the_cgroup_driver(make_crispd):
    d = make_crispd()
    r = d.runtime.RuntimeConfig(api_pb2.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == api_pb2.CGROUPFS
    s = make_crispd(config={"cgroup_driver": "systemd"}, name="sd")
    r = s.runtime.RuntimeConfig(api_pb2.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == api_pb2.SYSTEMD


def cidr_req(cidr):
    return api_pb2.UpdateRuntimeConfigRequest(runtime_config=api_pb2.RuntimeConfig(
        network_config=api_pb2.NetworkConfig(pod_cidr=cidr)))


def test_update_runtime_config_stores_the_pod_cidr_across_restarts(make_crispd):
    d = make_crispd()
    d.runtime.UpdateRuntimeConfig(cidr_req("10.244.1.0/24,fd00:1::/64"))
    info = json.loads(d.runtime.Status(api_pb2.StatusRequest(verbose=True)).info["network"])
    assert info["podCIDR"] == "10.244.1.0/24,fd00:1::/64"
    with pytest.raises(grpc.RpcError) as ei:
        d.runtime.UpdateRuntimeConfig(cidr_req("10.244.1.0/33"))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10.244.1.0/33" in ei.value.details()
    d.runtime.UpdateRuntimeConfig(cidr_req(""))  # empty: keeps the stored range
    assert d.stop() == 0
    d.start()
    info = json.loads(d.runtime.Status(api_pb2.StatusRequest(verbose=True)).info["network"])
    assert info["podCIDR"] == "10.244.1.0/24,fd00:1::/64"


@pytest.mark.parametrize("path,method", METHODS, ids=[p.rsplit("/", 1)[1] for p, _ in METHODS])
def test_valid_request_gets_its_defined_status(crispd, path, method):
    req = getattr(api_pb2, method.input_type.name)()
    payload = req.SerializeToString()
    if method.server_streaming:
        call = crispd.connect().unary_stream(path, request_serializer=None,
                                             response_deserializer=None)
        stream = call(payload, timeout=0.5)
        with pytest.raises(grpc.RpcError) as ei:
            list(stream)
        assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # open until the client leaves
        return
    if path in IMPLEMENTED:
        raw = crispd.raw(path, payload)
        getattr(api_pb2, method.output_type.name).FromString(raw)
    elif path in EMPTY_REQUEST_INVALID:
        with pytest.raises(grpc.RpcError) as ei:
            crispd.raw(path, payload)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        d = ei.value.details()
        assert "empty" in d or "no " in d or "needs" in d or "without" in d, d
    else:
        with pytest.raises(grpc.RpcError) as ei:
            crispd.raw(path, payload)
        assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert path in ei.value.details()
    crispd.runtime.Version(api_pb2.VersionRequest())


GARBAGE = [
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # varint that never ends
    b"\x0a\xff\xff\xff\x0f",                           # length-delimited field, length past the end
    b"\x0f",                                           # wire type 7 does not exist
]


@pytest.mark.parametrize("path,method", METHODS, ids=[p.rsplit("/", 1)[1] for p, _ in METHODS])
def test_garbage_request_is_invalid_argument_and_harmless(crispd, path, method):
    for g in GARBAGE:
        with pytest.raises(grpc.RpcError) as ei:
            if method.server_streaming:
                call = crispd.connect().unary_stream(path, request_serializer=None,
                                                     response_deserializer=None)
                list(call(g, timeout=5))
            else:
                crispd.raw(path, g)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (g, ei.value)
        assert "not a valid" in ei.value.details()
    assert crispd.runtime.Version(api_pb2.VersionRequest()).runtime_name == "crisp"


def test_unknown_method_is_unimplemented_naming_it(crispd):
    with pytest.raises(grpc.RpcError) as ei:
        crispd.raw("/runtime.v1alpha2.RuntimeService/Version", b"")
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/runtime.v1alpha2.RuntimeService/Version" in ei.value.details()


def test_message_over_16_mib_is_refused_and_harmless(crispd):
    big = api_pb2.VersionRequest(version="x" * (17 << 20)).SerializeToString()
    with pytest.raises(grpc.RpcError) as ei:
        crispd.raw("/runtime.v1.RuntimeService/Version", big, timeout=20)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # under the message limit, a 15 MiB string is still over the per-string one
    absurd = api_pb2.VersionRequest(version="x" * (15 << 20)).SerializeToString()
    with pytest.raises(grpc.RpcError) as ei:
        crispd.raw("/runtime.v1.RuntimeService/Version", absurd, timeout=20)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "version is 15728640 bytes long" in ei.value.details()
    ok = api_pb2.VersionRequest(version="x" * (1 << 20)).SerializeToString()
    crispd.raw("/runtime.v1.RuntimeService/Version", ok, timeout=20)


def test_open_streams_do_not_block_other_calls(crispd):
    streams = []
    for _ in range(12):
        streams.append(crispd.runtime.GetContainerEvents(api_pb2.GetEventsRequest()))
    time.sleep(0.3)
    t0 = time.time()
    for _ in range(20):
        crispd.runtime.Version(api_pb2.VersionRequest(), timeout=2)
    assert time.time() - t0 < 2
    for s in streams:
        s.cancel()
    crispd.runtime.Status(api_pb2.StatusRequest(), timeout=2)


def test_sigterm_with_an_open_stream_exits_0_and_removes_the_socket(crispd):
    stream = crispd.runtime.GetContainerEvents(api_pb2.GetEventsRequest())
    got = []
    t = threading.Thread(target=lambda: got.append(list(stream)), daemon=True)
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    crispd.proc.send_signal(signal.SIGTERM)
    assert crispd.proc.wait(10) == 0
    assert time.time() - t0 < 5
    assert not os.path.exists(crispd.sock)
    t.join(5)
    assert "stopping" in crispd.log() and "stopped" in crispd.log()


def test_sigint_also_stops_cleanly(crispd):
    assert crispd.stop(signal.SIGINT) == 0
    assert not os.path.exists(crispd.sock)


def test_socket_is_0660_in_a_created_directory(crispd):
    st = os.stat(crispd.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_second_crispd_on_a_live_socket_exits_and_leaves_the_first(crispd):
    second = Crispd(crispd.base, extra_args=())
    second.log_path = os.path.join(crispd.base, "second.log")
    second.start(wait=False)
    assert second.proc.wait(10) == 1
    assert "already listening" in second.log()
    assert crispd.runtime.Version(api_pb2.VersionRequest()).runtime_name == "crisp"
    assert os.path.exists(crispd.sock)


def test_stale_socket_from_a_crash_is_replaced(make_crispd):
    d = make_crispd(start=False)
    os.makedirs(os.path.dirname(d.sock), exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(d.sock)   # bound, never listening: what a crashed server leaves
    s.close()
    d.start()
    assert "removing stale socket" in d.log()
    assert d.runtime.Version(api_pb2.VersionRequest()).runtime_name == "crisp"


def test_a_regular_file_on_the_socket_path_is_not_deleted(make_crispd):
    d = make_crispd(start=False)
    os.makedirs(os.path.dirname(d.sock), exist_ok=True)
    with open(d.sock, "w") as f:
        f.write("precious")
    d.start(wait=False)
    assert d.proc.wait(10) == 1
    assert "not a socket" in d.log()
    assert open(d.sock).read() == "precious"
    os.unlink(d.sock)


@pytest.mark.parametrize("cfg,key", [
    ({"rooot": "/x"}, 'key \\"rooot\\"'),
    ({"runtimes": {"runsc": {"executor": "vm"}}}, "runtimes.runsc.executor"),
    ({"registries": {"mirrors": {"gcr.io": "http://x"}}}, "registries.mirrors.gcr.io"),
    ({"log_level": 3}, 'key \\"log_level\\"'),
])
def test_bad_config_file_is_refused_naming_file_and_key(make_crispd, cfg, key):
    d = make_crispd(config=cfg, start=False)
    d.start(wait=False)
    assert d.proc.wait(10) == 1
    log = d.log()
    assert d.config_path in log and key in log, log
    assert not os.path.exists(d.sock)


def test_missing_default_config_means_builtin_defaults(tmpdir_factory):
    # --config not given and /etc/crisp/config.json absent on test machines: defaults
    if os.path.exists("/etc/crisp/config.json"):
        pytest.skip("this machine has /etc/crisp/config.json")
    base = str(tmpdir_factory.mktemp("defaults"))
    d = Crispd(base)
    d.args = [a for a in d.args if a not in ("--config", d.config_path)]
    d.start()
    try:
        assert "built-in defaults" in d.log()
        st = d.runtime.Status(api_pb2.StatusRequest(verbose=True))
        assert json.loads(st.info["config"])["cni"]["conf_dir"] == "/etc/cni/net.d"
    finally:
        assert d.stop() == 0


def test_flags_override_the_config_file(make_crispd):
    d = make_crispd(config={"log_level": "error"}, extra_args=("--log-level", "debug"))
    st = d.runtime.Status(api_pb2.StatusRequest(verbose=True))
    assert json.loads(st.info["config"])["log_level"] == "debug"


def test_help_and_usage_errors():
    out = subprocess.run([CRISPD, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--config", "--log-level", "--root", "--state", "--listen", "--version"):
        assert flag in out.stdout
    bad = subprocess.run([CRISPD, "--no-such-flag"], capture_output=True, text=True)
    assert bad.returncode == 2
    rel = subprocess.run([CRISPD, "--root", "relative"], capture_output=True, text=True)
    assert rel.returncode == 1 and "absolute" in rel.stderr


def test_logs_are_logfmt_lines(crispd):
    crispd.runtime.Version(api_pb2.VersionRequest())
    lines = [l for l in crispd.log().splitlines() if l]
    assert lines
    for l in lines:
        assert l.startswith("time=") and " level=" in l and " msg=" in l, l
