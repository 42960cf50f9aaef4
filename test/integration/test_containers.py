"""Container lifecycle through the real gRPC API with real containers (busybox-static
from the session registry, crisp-monitor, namespaces, cgroups): create -> start ->
status -> ExecSync -> stop -> status -> remove in every order that matters, containers
that exit by themselves, list filters, the CRI log file and its rotation, OOM kills,
stats, container events, and that many cycles leave nothing behind."""
import json
import os
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import api_pb2, mounts_under
from pod_helpers import (CREATED, EXITED, NS_NODE, NS_POD, RUNNING, cgroup_dirs, cgroup_hierarchies,
                         ns_pins_under, procs_referencing, rpc_error, rss_kib, wait_for)

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}(?:Z|[+-]\d\d:\d\d)) "
                      r"(stdout|stderr) (F|P) (.*)$")


def pid_of(node, ctr):
    info = json.loads(node.rt.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=ctr, verbose=True), timeout=10).info["info"])
    return info.get("pid")


def listing(path):
    return os.listdir(path) if os.path.exists(path) else []


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return None


# ---- the straight path ------------------------------------------------------------------

def test_create_start_exec_stop_remove(node):
    pod = node.run_pod()
    t0 = time.time_ns()
    ctr = node.create(pod, name="main", cmd=["sleep", "3600"], labels={"k": "v"},
                      annotations={"a": "b"})
    st = node.status(ctr)
    assert st.state == CREATED and st.started_at == 0 and st.finished_at == 0
    assert t0 <= st.created_at <= time.time_ns()
    assert st.metadata.name == "main" and dict(st.labels) == {"k": "v"}
    assert dict(st.annotations) == {"a": "b"}
    assert st.image.image == node.image and st.image_ref.startswith("sha256:")
    assert st.log_path == os.path.join(node.pod_cfgs[pod].log_directory, "main_0.log")

    node.start(ctr)
    st = node.status(ctr)
    assert st.state == RUNNING
    assert st.created_at <= st.started_at <= time.time_ns() and st.finished_at == 0
    pid = pid_of(node, ctr)
    assert pid and cmdline(pid) == [b"sleep", b"3600"]

    r = node.exec(ctr, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 7)
    r = node.exec(ctr, ["cat", "/proc/1/cmdline"])
    assert r.exit_code == 0 and r.stdout == b"sleep\x003600\x00"   # same pid namespace
    e = rpc_error(node.exec, ctr, ["/no/such/binary"])
    assert e.code() != grpc.StatusCode.OK

    t = time.time()
    node.stop(ctr, t=1)   # pid 1 has no SIGTERM handler: SIGKILL after the timeout
    took = time.time() - t
    assert 0.8 < took < 6, took
    st = node.status(ctr)
    assert st.state == EXITED and st.exit_code == 137 and st.reason == "Error"
    assert st.started_at <= st.finished_at <= time.time_ns()
    assert not os.path.exists(f"/proc/{pid}") or cmdline(pid) != [b"sleep", b"3600"]
    assert rpc_error(node.exec, ctr, ["true"]).code() == grpc.StatusCode.FAILED_PRECONDITION

    state_dir = os.path.join(node.d.state, "containers", ctr)
    # the monitor took the container's mounts and cgroup down, and says so
    # (RemoveContainer then leaves them be)
    with open(os.path.join(state_dir, "exit.json")) as f:
        assert json.load(f).get("cleaned") is True
    assert mounts_under(state_dir) == []
    assert cgroup_dirs(f"{node.pod_cfgs[pod].linux.cgroup_parent}/crisp-{ctr}") == []
    node.remove(ctr)
    assert rpc_error(node.status, ctr).code() == grpc.StatusCode.NOT_FOUND
    assert node.list_ctrs() == []
    assert not os.path.exists(state_dir)
    assert not os.path.exists(os.path.join(node.d.root, "containers", ctr))
    assert procs_referencing(state_dir) == []


def test_stop_uses_the_stop_signal_and_reports_its_exit_code(node):
    pod = node.run_pod()
    ctr = node.run(pod, cmd=["sh", "-c", "trap 'echo bye; exit 42' TERM; echo up; "
                                         "while :; do sleep 0.05; done"])
    wait_for(lambda: "up" in node.log_text(node.log_path(ctr)), what="trap installed")
    t = time.time()
    node.stop(ctr, t=30)
    assert time.time() - t < 5   # it exited on SIGTERM, not at the timeout
    st = node.status(ctr)
    assert st.state == EXITED and st.exit_code == 42 and st.reason == "Error"
    assert "bye" in node.log_text(st.log_path)


def run_tty(node, pod, name, cmd):
    cfg = node.ctr_config(name=name, cmd=cmd)
    cfg.tty = True
    return node.run(pod, cfg=cfg)


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_a_tty_container_logs_its_own_terminal_and_its_exit_code(node, handler):
    # the pty comes from the container's own devpts (its init makes it), so it has a
    # name in there; the log has it as stdout lines, without the pty's carriage returns
    pod = node.run_pod(handler=handler)
    ctr = run_tty(node, pod, "tty", ["sh", "-c", "tty; ls -1 /dev/pts; [ -t 0 ] && [ -t 1 ] && "
                                                 "echo is-a-tty; exit 7"])
    st = node.wait_state(ctr, EXITED)
    assert st.exit_code == 7 and st.reason == "Error"
    assert node.log_text(st.log_path) == ["/dev/pts/0", "0", "ptmx", "is-a-tty"]
    assert node.log_text(st.log_path, "stderr") == []


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_stop_of_a_tty_container(node, handler):
    pod = node.run_pod(handler=handler)
    ctr = run_tty(node, pod, "trap", ["sh", "-c", "trap 'echo bye; exit 42' TERM; echo up; "
                                                  "while :; do sleep 0.05; done"])
    wait_for(lambda: "up" in node.log_text(node.log_path(ctr)), what="trap installed")
    t = time.time()
    node.stop(ctr, t=30)
    assert time.time() - t < 5
    st = node.status(ctr)
    assert st.state == EXITED and st.exit_code == 42 and "bye" in node.log_text(st.log_path)
    ctr = run_tty(node, pod, "sleeper", ["sleep", "3600"])
    node.stop(ctr)
    st = node.status(ctr)
    assert st.state == EXITED and st.exit_code == 137
    node.remove(ctr)


def test_stop_and_remove_are_idempotent_and_succeed_for_missing_containers(node):
    pod = node.run_pod()
    ctr = node.run(pod)
    node.stop(ctr)
    node.stop(ctr)
    assert node.status(ctr).state == EXITED
    node.remove(ctr)
    node.remove(ctr)
    node.stop(ctr)
    node.stop("0" * 64)
    node.remove("0" * 64)


def test_remove_of_a_running_container_kills_it(node):
    pod = node.run_pod()
    ctr = node.run(pod)
    pid = pid_of(node, ctr)
    state_dir = os.path.join(node.d.state, "containers", ctr)
    node.remove(ctr)
    assert node.list_ctrs() == []
    assert not os.path.exists(f"/proc/{pid}") or cmdline(pid) != [b"sleep", b"3600"]
    wait_for(lambda: procs_referencing(state_dir) == [], what="monitor gone")
    assert mounts_under(state_dir) == []


def test_remove_of_a_created_container_and_stop_of_a_created_one(node):
    pod = node.run_pod()
    ctr = node.create(pod)
    node.stop(ctr)    # nothing runs: fine, and it stays created
    assert node.status(ctr).state == CREATED
    node.remove(ctr)
    assert node.list_ctrs() == []


def test_start_twice_fails_and_so_does_start_after_exit(node):
    pod = node.run_pod()
    ctr = node.run(pod)
    e = rpc_error(node.start, ctr)
    assert e.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNKNOWN), e
    assert "already" in e.details()
    assert node.status(ctr).state == RUNNING
    node.stop(ctr)
    e = rpc_error(node.start, ctr)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert node.status(ctr).state == EXITED and node.status(ctr).exit_code == 137


def test_start_missing_and_status_missing_are_not_found(node):
    assert rpc_error(node.start, "0" * 64).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(node.status, "0" * 64).code() == grpc.StatusCode.NOT_FOUND


def test_create_in_a_stopped_pod_is_failed_precondition(node):
    pod = node.run_pod()
    node.stop_pod(pod)
    e = rpc_error(node.create, pod)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert pod in e.details()
    assert node.list_ctrs() == []


@pytest.mark.parametrize("host", [False, True], ids=["pod-namespaces", "host-namespaces"])
def test_start_in_a_stopped_pod_is_failed_precondition(node, host):
    pod = node.run_pod(host_network=host, ipc=NS_NODE if host else NS_POD)
    ctr = node.create(pod)
    node.stop_pod(pod)
    e = rpc_error(node.start, ctr)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "not ready" in e.details(), e
    assert node.status(ctr).state == CREATED
    assert node.leftover_procs() == []


def test_creating_and_starting_while_the_pod_stops_fails_cleanly(node):
    for rnd in range(3):
        pod = node.run_pod(name=f"race{rnd}")
        errors, made = [], []

        def creator():
            for k in range(200):
                try:
                    c = node.create(pod, name=f"c{k}")
                    made.append(c)
                    node.start(c)
                except grpc.RpcError as e:
                    errors.append(e)
                    if len(errors) > 2:
                        return

        t = threading.Thread(target=creator)
        t.start()
        wait_for(lambda: len(made) > rnd, what="a container made")
        node.stop_pod(pod)
        t.join()
        assert made and errors
        # a pod that stopped refuses, for the stop's reason: no half-built container
        assert {e.code() for e in errors} == {grpc.StatusCode.FAILED_PRECONDITION}, \
            [e.details() for e in errors]
        assert all(c.state != RUNNING for c in node.list_ctrs(pod_sandbox_id=pod))
        node.remove_pod(pod)
    assert node.list_ctrs() == [] and node.leftover_procs() == []


def test_pods_and_containers_in_parallel(node):
    def one(i):
        pod = node.run_pod(name=f"par{i}")
        cs = [node.run(pod, name=f"c{k}") for k in range(3)]
        for c in cs:
            assert node.exec(c, ["true"]).exit_code == 0
        node.stop(cs[0])
        node.remove(cs[1])
        node.stop_pod(pod)
        node.remove_pod(pod)
        return pod

    with ThreadPoolExecutor(8) as ex:
        pods = list(ex.map(one, range(16)))
    assert len(set(pods)) == 16
    assert node.list_pods() == [] and node.list_ctrs() == []
    assert node.net.leases() == []
    # and the same container stopped and removed from several calls at once
    pod = node.run_pod()
    ctr = node.run(pod)
    with ThreadPoolExecutor(4) as ex:
        for f in [ex.submit(node.stop, ctr), ex.submit(node.remove, ctr),
                  ex.submit(node.stop, ctr, 2), ex.submit(node.remove, ctr)]:
            f.result()
    assert node.list_ctrs() == []


def test_create_in_a_missing_pod_is_not_found(node):
    e = rpc_error(node.create, "0" * 64)
    assert e.code() == grpc.StatusCode.NOT_FOUND


def test_create_with_an_image_not_pulled_is_not_found_naming_it(node):
    pod = node.run_pod()
    img = node.registry.ref("sibling:1")
    e = rpc_error(node.create, pod, image=img)
    assert e.code() == grpc.StatusCode.NOT_FOUND
    assert img in e.details()
    assert node.list_ctrs() == []
    assert listing(os.path.join(node.d.state, "containers")) == []
    assert listing(os.path.join(node.d.root, "containers")) == []


def test_a_duplicate_container_name_in_a_pod_is_already_exists(node):
    pod = node.run_pod()
    a = node.create(pod, name="same")
    e = rpc_error(node.create, pod, name="same")
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS
    b = node.create(pod, name="same", attempt=1)
    assert sorted(c.id for c in node.list_ctrs()) == sorted([a, b])


def test_list_filters_by_id_pod_state_and_labels(node):
    p1 = node.run_pod()
    p2 = node.run_pod()
    run1 = node.run(p1, name="run1", labels={"app": "x", "role": "web"})
    made1 = node.create(p1, name="made1", labels={"app": "x", "role": "db"})
    run2 = node.run(p2, name="run2", labels={"app": "y", "role": "web"})
    done2 = node.run(p2, name="done2", cmd=["true"], labels={"app": "y"})
    node.wait_state(done2, EXITED)

    def ids(**f):
        return sorted(c.id for c in node.list_ctrs(**f))

    def state(s):
        return api_pb2.ContainerStateValue(state=s)

    assert ids() == sorted([run1, made1, run2, done2])
    assert ids(id=run1) == [run1]
    assert ids(id=made1[:10]) == [made1]
    assert ids(pod_sandbox_id=p1) == sorted([run1, made1])
    assert ids(pod_sandbox_id=p2[:12]) == sorted([run2, done2])
    assert ids(state=state(RUNNING)) == sorted([run1, run2])
    assert ids(state=state(CREATED)) == [made1]
    assert ids(state=state(EXITED)) == [done2]
    assert ids(label_selector={"app": "x"}) == sorted([run1, made1])
    assert ids(label_selector={"role": "web"}) == sorted([run1, run2])
    assert ids(label_selector={"role": "web", "app": "y"}) == [run2]
    assert ids(pod_sandbox_id=p1, state=state(RUNNING), label_selector={"role": "web"}) == [run1]
    assert ids(pod_sandbox_id=p1, state=state(EXITED)) == []
    got = {c.id: c for c in node.list_ctrs()}
    assert got[run1].pod_sandbox_id == p1 and got[run1].metadata.name == "run1"
    assert got[run1].image.image == node.image and got[run1].image_ref.startswith("sha256:")
    assert got[done2].state == EXITED and dict(got[run2].labels) == {"app": "y", "role": "web"}


# ---- containers that end by themselves ----------------------------------------------------

@pytest.mark.parametrize("code,reason", [(0, "Completed"), (3, "Error")])
def test_a_container_that_exits_by_itself_reports_its_code_and_reason(node, code, reason):
    pod = node.run_pod()
    ctr = node.run(pod, cmd=["sh", "-c", f"echo done; exit {code}"])
    st = node.wait_state(ctr, EXITED)
    assert st.exit_code == code and st.reason == reason
    assert 0 < st.started_at <= st.finished_at <= time.time_ns()
    assert node.log_text(st.log_path, "stdout") == ["done"]
    node.remove(ctr)


def test_a_missing_executable_fails_start_with_its_name(node):
    pod = node.run_pod()
    ctr = node.create(pod, cmd=["/bin/not-there"])
    e = rpc_error(node.start, ctr)
    assert "/bin/not-there" in e.details()
    st = node.status(ctr)
    assert st.state == EXITED and st.reason == "StartError" and st.exit_code != 0
    node.remove(ctr)
    # the monitor that reported the failure exits right after (slower under ASan)
    wait_for(lambda: procs_referencing(os.path.join(node.d.state, "containers", ctr)) == [],
             timeout=5, what="the failed start's monitor gone")


# ---- ExecSync ---------------------------------------------------------------------------

def test_exec_timeout_is_deadline_exceeded_and_the_command_is_gone(node):
    pod = node.run_pod()
    ctr = node.run(pod)
    t = time.time()
    e = rpc_error(node.exec, ctr, ["sleep", "7777"], t=1)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    assert time.time() - t < 5
    rc, out, _ = node.sh(ctr, "ps -o pid,args")
    assert rc == 0 and "7777" not in out, out
    # the container itself is unharmed
    assert node.status(ctr).state == RUNNING


def test_exec_output_is_captured_in_full_and_env_and_cwd_are_the_containers(node):
    pod = node.run_pod()
    ctr = node.run(pod, envs={"GREETING": "hi there"}, working_dir="/data")
    r = node.exec(ctr, ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; "
                                    "echo \"$GREETING\" >&2; pwd >&2"])
    assert r.exit_code == 0
    assert r.stdout == b"x" * 300000 + b"\n"
    assert r.stderr == b"hi there\n/data\n"


# ---- logs -------------------------------------------------------------------------------

def test_the_log_file_is_in_the_cri_format(node):
    pod = node.run_pod()
    ctr = node.run(pod, cmd=["sh", "-c", "echo one; echo two >&2; printf 'three\\nfour'; "
                                         "head -c 40000 /dev/zero | tr '\\0' L; echo"])
    st = node.wait_state(ctr, EXITED)
    lines = node.log_lines(st.log_path)
    parsed = []
    for l in lines:
        m = LOG_LINE.match(l)
        assert m, f"not a CRI log line: {l[:100]!r}"
        parsed.append(m.groups())
    stamps = [p[0] for p in parsed]
    assert all(s.endswith("Z") or s[-6] in "+-" for s in stamps)
    assert parsed[0][1:] == ("stdout", "F", "one")
    assert ("stderr", "F", "two") in [p[1:] for p in parsed]
    assert node.log_text(st.log_path, "stdout")[:3] == ["one", "three", "four" + "L" * 40000][:3]
    long = [p for p in parsed if p[3].startswith("L") or p[3].startswith("fourL")]
    assert [p[2] for p in long][-1] == "F" and all(p[2] == "P" for p in long[:-1])
    assert len(long) >= 3   # 40 KiB is split into partial lines
    assert "".join(p[3] for p in long) == "four" + "L" * 40000


def test_reopen_after_rotation_loses_no_line(node):
    pod = node.run_pod()
    ctr = node.run(pod, cmd=["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); "
                                         "sleep 0.01; done"])
    path = node.log_path(ctr)
    wait_for(lambda: len(node.log_lines(path)) >= 20, what="some log lines")
    os.rename(path, path + ".1")
    time.sleep(0.1)   # lines keep going to the renamed file until the reopen
    node.rt.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=ctr), timeout=10)
    wait_for(lambda: len(node.log_lines(path)) >= 20, what="lines in the new file")
    node.stop(ctr)
    old = node.log_text(path + ".1", "stdout")
    new = node.log_text(path, "stdout")
    assert old and new
    nums = [int(l.split()[1]) for l in old + new]
    assert nums == list(range(len(nums))), "lines lost or reordered across the rotation"
    assert int(new[0].split()[1]) == int(old[-1].split()[1]) + 1
    e = rpc_error(node.rt.ReopenContainerLog,
                  api_pb2.ReopenContainerLogRequest(container_id=ctr), timeout=10)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION   # not running any more


# ---- resources ----------------------------------------------------------------------------

def test_a_container_over_its_memory_limit_is_oom_killed(node):
    pod = node.run_pod()
    lim = 16 << 20
    res = api_pb2.LinuxContainerResources(memory_limit_in_bytes=lim, memory_swap_limit_in_bytes=lim)
    ctr = node.run(pod, resources=res, cmd=[   # the shell holds 64 MiB of "a"s
        "sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}"])
    st = node.wait_state(ctr, EXITED, timeout=30)
    assert st.exit_code == 137 and st.reason == "OOMKilled", (st.exit_code, st.reason, st.message)
    assert "survived" not in "".join(node.log_text(st.log_path))
    assert st.resources.linux.memory_limit_in_bytes == lim


def test_stats_show_cpu_and_memory_of_a_busy_container(node):
    pod = node.run_pod(labels={"stats": "yes"})
    busy = node.run(pod, name="busy", labels={"kind": "busy"}, cmd=[
        "sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done"])
    idle = node.run(pod, name="idle", labels={"kind": "idle"})
    time.sleep(1)
    s1 = node.rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=busy), timeout=10).stats
    time.sleep(0.5)
    s2 = node.rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=busy), timeout=10).stats
    assert s1.attributes.id == busy and s1.attributes.metadata.name == "busy"
    assert dict(s1.attributes.labels) == {"kind": "busy"}
    assert s1.cpu.usage_core_nano_seconds.value > 300_000_000   # ~1 s of a busy loop
    assert s2.cpu.usage_core_nano_seconds.value > s1.cpu.usage_core_nano_seconds.value
    assert s2.cpu.usage_nano_cores.value > 300_000_000           # ~1 core between samples
    assert s1.memory.working_set_bytes.value > 4_000_000 and s1.memory.usage_bytes.value > 0
    assert s1.cpu.timestamp > 0 and s1.writable_layer.fs_id.mountpoint

    lst = node.rt.ListContainerStats(api_pb2.ListContainerStatsRequest(), timeout=10).stats
    assert sorted(s.attributes.id for s in lst) == sorted([busy, idle])
    f = api_pb2.ContainerStatsFilter(label_selector={"kind": "busy"})
    lst = node.rt.ListContainerStats(api_pb2.ListContainerStatsRequest(filter=f), timeout=10).stats
    assert [s.attributes.id for s in lst] == [busy]
    assert lst[0].cpu.usage_core_nano_seconds.value > 0
    f = api_pb2.ContainerStatsFilter(id=idle[:12], pod_sandbox_id=pod)
    lst = node.rt.ListContainerStats(api_pb2.ListContainerStatsRequest(filter=f), timeout=10).stats
    assert [s.attributes.id for s in lst] == [idle]

    req = api_pb2.PodSandboxStatsRequest(pod_sandbox_id=pod)
    ps = node.rt.PodSandboxStats(req, timeout=10).stats
    assert ps.attributes.id == pod and dict(ps.attributes.labels) == {"stats": "yes"}
    assert ps.linux.cpu.usage_core_nano_seconds.value >= s2.cpu.usage_core_nano_seconds.value
    assert ps.linux.memory.working_set_bytes.value > 4_000_000
    assert ps.linux.process.process_count.value >= 2
    assert sorted(c.attributes.id for c in ps.linux.containers) == sorted([busy, idle])
    lps = node.rt.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest(), timeout=10).stats
    assert [p.attributes.id for p in lps] == [pod]
    node.stop(busy)


# ---- events -----------------------------------------------------------------------------

class EventReader:
    """A GetContainerEvents stream read on a thread; events() groups them by container."""

    def __init__(self, node):
        self.call = node.rt.GetContainerEvents(api_pb2.GetEventsRequest(), timeout=60)
        self.q = queue.Queue()
        self.seen = {}
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        time.sleep(0.3)   # the stream is open before anything happens

    def _read(self):
        try:
            for ev in self.call:
                self.q.put(ev)
        except grpc.RpcError:
            pass

    def events(self, want, timeout=10):
        """Reads until every container in want ({id: n}) has n events, or timeout."""
        deadline = time.time() + timeout
        def short():
            return any(len(self.seen.get(c, [])) < n for c, n in want.items())

        while time.time() < deadline and short():
            try:
                ev = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.setdefault(ev.container_id, []).append(ev)
        return self.seen

    def close(self):
        self.call.cancel()
        self.t.join(5)


def test_container_events_stream_created_started_stopped_deleted(node):
    r = EventReader(node)
    pod = node.run_pod()
    ctr = node.run(pod)
    node.stop(ctr)
    node.remove(ctr)
    evs = r.events({ctr: 4})[ctr]
    r.close()
    T = api_pb2
    assert [e.container_event_type for e in evs] == [
        T.CONTAINER_CREATED_EVENT, T.CONTAINER_STARTED_EVENT, T.CONTAINER_STOPPED_EVENT,
        T.CONTAINER_DELETED_EVENT]
    assert all(e.pod_sandbox_status.id == pod for e in evs)
    assert evs[0].containers_statuses[0].state == CREATED
    assert evs[1].containers_statuses[0].state == RUNNING
    assert evs[2].containers_statuses[0].state == EXITED
    assert evs[2].containers_statuses[0].exit_code == 137
    assert all(a.created_at <= b.created_at for a, b in zip(evs, evs[1:]))


def test_a_container_that_exits_by_itself_emits_stopped(node):
    r = EventReader(node)
    pod = node.run_pod()
    quick = node.run(pod, name="quick", cmd=["true"])
    node.wait_state(quick, EXITED)
    evs = r.events({quick: 3}, timeout=5)[quick]
    r.close()
    assert [e.container_event_type for e in evs] == [
        api_pb2.CONTAINER_CREATED_EVENT, api_pb2.CONTAINER_STARTED_EVENT,
        api_pb2.CONTAINER_STOPPED_EVENT]


def test_stopped_is_published_once_and_before_deleted(node):
    """The exit watcher and StopContainer/RemoveContainer/StopPodSandbox claim one
    CONTAINER_STOPPED between them: never two, and never after CONTAINER_DELETED."""
    r = EventReader(node)
    pod = node.run_pod()
    stopped = node.run(pod, name="stopped")
    removed = node.run(pod, name="removed")
    by_pod = node.run(pod, name="by-pod")
    exited = node.run(pod, name="exited", cmd=["sh", "-c", "exit 3"])
    node.wait_state(exited, EXITED)
    node.stop(stopped)
    node.stop(stopped)      # a second stop of an exited container: no second event
    node.stop(exited)       # it exited by itself: the watcher already told
    node.remove(removed)    # running: STOPPED, then DELETED
    node.stop_pod(pod)
    T = api_pb2
    evs = r.events({stopped: 3, removed: 4, by_pod: 3, exited: 3}, timeout=10)
    evs = r.events({stopped: 99}, timeout=1)   # anything extra would come now
    r.close()
    kinds = {c: [e.container_event_type for e in evs.get(c, [])]
             for c in (stopped, removed, by_pod, exited)}
    started = [T.CONTAINER_CREATED_EVENT, T.CONTAINER_STARTED_EVENT, T.CONTAINER_STOPPED_EVENT]
    assert kinds == {stopped: started, by_pod: started, exited: started,
                     removed: started + [T.CONTAINER_DELETED_EVENT]}, kinds
    assert evs[exited][2].containers_statuses[0].exit_code == 3
    assert evs[by_pod][2].containers_statuses[0].state == EXITED


# ---- nothing left behind ------------------------------------------------------------------

def crisp_cgroups_of(ids):
    """Cgroup directories anywhere under /sys/fs/cgroup/*/crisp* naming one of ids."""
    out = []
    for h in cgroup_hierarchies():
        for top in os.listdir(h):
            if not top.startswith("crisp"):
                continue
            for dirpath, dirnames, _ in os.walk(os.path.join(h, top)):
                out += [os.path.join(dirpath, d) for d in dirnames if any(i in d for i in ids)]
    return out


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def test_create_start_stop_remove_cycles_leave_nothing_behind(node):
    n = int(os.environ.get("CRISP_TEST_CYCLES", "50"))
    pods, ctrs, parents = set(), set(), []
    rss_after_warmup = None
    for i in range(n):
        # half the pods name a cgroup parent (as kubelet does), half leave it to crisp
        cgp = node.cgroups.new() if i % 2 else ""
        parents.append(cgp)
        pod = node.run_pod(cgroup_parent=cgp or False, host_network=i % 4 == 3)
        ctr = node.create(pod, cmd=["sh", "-c", "echo hi; sleep 3600"])
        node.start(ctr)
        assert node.exec(ctr, ["true"]).exit_code == 0
        node.stop(ctr)
        node.remove(ctr)
        node.stop_pod(pod)
        node.remove_pod(pod)
        pods.add(pod)
        ctrs.add(ctr)
        if i == 4:
            rss_after_warmup = rss_kib(node.d.proc.pid)
    rss_end = rss_kib(node.d.proc.pid)
    print(f"crispd VmRSS after 5 cycles {rss_after_warmup} KiB, after {n}: {rss_end} KiB")
    assert node.list_pods() == [] and node.list_ctrs() == []
    assert mounts_under(node.d.base) == []
    assert ns_pins_under(node.d.base) == []
    for sub in ("containers", "pods"):
        for top in (node.d.state, node.d.root):
            p = os.path.join(top, sub)
            assert listing(p) == [], p
    assert node.leftover_procs() == []
    assert crisp_cgroups_of(pods | ctrs) == []
    for cgp in filter(None, parents):
        for d in cgroup_dirs(cgp):
            assert [x for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))] == [], d
    assert node.net.leases() == []
    # (an ASan crispd's quarantine and shadow memory grow by design: no RSS figure there)
    if n >= 10 and not sanitized(node.d.proc.pid):
        assert rss_end - rss_after_warmup < 1024, (rss_after_warmup, rss_end)
