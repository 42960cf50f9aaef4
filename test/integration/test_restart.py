"""crispd restarts: containers belong to their crisp-monitor, not to crispd, so a crispd
killed with SIGKILL and started again on the same root and state finds every pod and
container as it was, the running ones still running (and logging), the ones that exited
while it was down with their real exit code; and it can still stop, exec into and
remove them, leaving no process, mount or lease behind."""
import json
import os
import shutil
import signal
import subprocess
import time

import grpc

from conftest import api_pb2, mounts_under
from pod_helpers import (CREATED, EXITED, NOTREADY, READY, RUNNING, finish_node, rpc_error,
                         start_again, start_node, wait_for)


def restart(node, sig=signal.SIGKILL):
    rc = node.d.stop(sig=sig)
    assert rc == -sig if sig == signal.SIGKILL else rc == 0
    start_again(node)


def monitors_of(node):
    return [p for p in node.leftover_procs()]


def test_everything_survives_a_crispd_sigkill(node):
    p1 = node.run_pod(name="one", labels={"pod": "one"})
    p2 = node.run_pod(name="two", labels={"pod": "two"}, pid=api_pb2.POD)  # a pause process
    ip1 = node.pod_status(p1).status.network.ip
    logger = node.run(p1, name="logger", cmd=["sh", "-c", "i=0; while :; do echo tick $i; "
                                                          "i=$((i+1)); sleep 0.1; done"])
    sleeper = node.run(p2, name="sleeper", cmd=["sleep", "3600"])
    # exits 5 once /tmp/go exists: that happens while crispd is down
    dies_later = node.run(p2, name="dies-later",
                          cmd=["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 5"])
    done = node.run(p1, name="done", cmd=["true"])
    made = node.create(p2, name="made", cmd=["sleep", "3601"])
    stopped = node.run(p2, name="stopped")
    node.stop(stopped)
    node.wait_state(done, EXITED)
    log = node.log_path(logger)
    wait_for(lambda: len(node.log_text(log)) >= 3, what="logger output")
    before = {c.id: c for c in node.list_ctrs()}
    n_monitors = len(monitors_of(node))
    assert n_monitors >= 3   # logger, sleeper, dies-later

    node.d.stop(sig=signal.SIGKILL)
    assert node.d.proc.returncode == -signal.SIGKILL
    killed_at = time.time_ns()
    # the containers carry on without crispd: the logger logs, dies-later exits 5
    n_lines = len(node.log_text(log))
    dl_state = os.path.join(node.d.state, "containers", dies_later)
    with open(os.path.join(dl_state, "pid")) as f:
        dl_pid = int(f.read())
    with open(f"/proc/{dl_pid}/root/tmp/go", "w"):
        pass
    time.sleep(0.6)
    assert len(node.log_text(log)) > n_lines
    wait_for(lambda: os.path.exists(os.path.join(dl_state, "exit.json")), what="dies-later exit")

    start_again(node)
    pods = {p.id: p for p in node.list_pods()}
    assert set(pods) == {p1, p2}
    assert pods[p1].state == READY and pods[p2].state == READY
    assert dict(pods[p1].labels) == {"pod": "one"}
    assert node.pod_status(p1).status.network.ip == ip1
    after = {c.id: c for c in node.list_ctrs()}
    assert set(after) == set(before)
    states = {c: after[c].state for c in after}
    assert states == {logger: RUNNING, sleeper: RUNNING, dies_later: EXITED, done: EXITED,
                      made: CREATED, stopped: EXITED}
    st = node.status(dies_later)
    assert st.exit_code == 5 and st.reason == "Error" and st.finished_at >= killed_at
    st = node.status(done)
    assert st.exit_code == 0 and st.reason == "Completed"
    st = node.status(stopped)
    assert st.exit_code == 137
    st = node.status(logger)
    assert st.started_at == before[logger].created_at or st.started_at > 0
    # still logging to the same file, and exec, stop and start still work
    n = len(node.log_text(log))
    wait_for(lambda: len(node.log_text(log)) > n + 2, what="log growing after the restart")
    r = node.exec(sleeper, ["sh", "-c", "echo $((6*7))"])
    assert r.exit_code == 0 and r.stdout == b"42\n"
    node.start(made)
    assert node.status(made).state == RUNNING
    # it joined the pod's pid namespace, which its pause process kept through the restart
    assert "sleep 3600" in node.sh(made, "ps -o args")[1]
    node.stop(logger)
    st = node.status(logger)
    assert st.state == EXITED and st.exit_code == 137
    ticks = [int(l.split()[1]) for l in node.log_text(log)]
    assert ticks == list(range(len(ticks)))   # nothing lost while crispd was away

    # a second restart, this time a clean one, changes nothing either
    restart(node, signal.SIGTERM)
    assert {c.id: c.state for c in node.list_ctrs()} == {
        logger: EXITED, sleeper: RUNNING, dies_later: EXITED, done: EXITED, made: RUNNING,
        stopped: EXITED}

    node.stop_pod(p2)
    assert node.pod_status(p2).status.state == NOTREADY
    assert node.status(sleeper).state == EXITED
    node.remove_pod(p1)
    node.remove_pod(p2)
    assert node.list_pods() == [] and node.list_ctrs() == []
    assert node.net.leases() == []
    wait_for(lambda: node.leftover_procs() == [], what="monitors gone")
    assert mounts_under(node.d.base) == []
    for sub in ("containers", "pods"):
        p = os.path.join(node.d.state, sub)
        assert not os.path.exists(p) or os.listdir(p) == []


def test_a_container_killed_with_its_monitor_is_reported_exited(node):
    pod = node.run_pod()
    ctr = node.run(pod)
    state = os.path.join(node.d.state, "containers", ctr)
    with open(os.path.join(state, "monitor.pid")) as f:
        mon = int(f.read())
    with open(os.path.join(state, "pid")) as f:
        pid = int(f.read())
    node.d.stop(sig=signal.SIGKILL)
    os.kill(mon, signal.SIGKILL)   # the monitor (started by this test's crispd) dies too
    start_again(node)
    st = node.status(ctr)
    assert st.state == EXITED, st
    assert st.exit_code != 0 and st.message
    # the orphaned container process goes with the container
    node.remove(ctr)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/cmdline", "rb").read() != b"sleep\x003600\x00",
             what="container process gone")
    assert rpc_error(node.status, ctr).code() == grpc.StatusCode.NOT_FOUND


def lose_netns_pin(node, pod):
    pin = os.path.join(node.d.state, "pods", pod, "ns", "net")
    subprocess.run(["umount", pin], check=True)
    os.unlink(pin)


def test_a_ready_pod_that_lost_its_network_namespace_comes_back_not_ready(node):
    """What a StopPodSandbox or RemovePodSandbox cut short between its network
    namespace going and its record changing would leave (crispd now records not-ready
    first; a store from before may still hold one): the pod must not be reported ready,
    since no container could join it. Its running container still holds the namespace,
    so crispd pins it again from there, and the CNI DEL at stop undoes the pod's
    network entirely: the bridge plugin finds the pod's interface and removes the
    masquerade chain it made for the pod (without the namespace it cannot)."""
    pod = node.run_pod()
    ctr = node.run(pod)
    assert node.net.pod_rules(pod) != []   # the bridge plugin's masquerade rules
    node.d.stop(sig=signal.SIGKILL)
    lose_netns_pin(node, pod)
    start_again(node)
    assert node.pod_status(pod).status.state == NOTREADY
    assert "lost its network namespace" in node.d.log()
    assert "lost network namespace pin was made again" in node.d.log()
    err = rpc_error(node.create, pod, name="late")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "not ready" in err.details(), err
    # its container still runs until kubelet stops the pod, which then goes cleanly
    assert node.status(ctr).state == RUNNING
    node.stop_pod(pod)
    assert node.status(ctr).state == EXITED
    assert node.net.pod_rules(pod) == []
    node.remove_pod(pod)
    assert node.list_pods() == [] and node.net.leases() == []
    assert mounts_under(node.d.base) == []


def test_a_container_whose_layer_hold_was_lost_holds_its_layers_again(node):
    """A container's layer hold is written without waiting for the disk (removing an image
    or a hold puts the pending ones there first), so a power loss can take the hold and
    leave the container's record. The next start holds the container's layers again:
    removing its image afterwards keeps them, and the container still starts."""
    pod = node.run_pod()
    ctr = node.create(pod, name="held", cmd=["sleep", "3600"])
    hold = os.path.join(node.d.root, "holds", f"{ctr}.json")
    assert os.path.exists(hold)
    node.d.stop(sig=signal.SIGKILL)
    os.unlink(hold)   # what the power loss took
    start_again(node)
    assert os.path.exists(hold)
    assert "held a container's layers again" in node.d.log()
    layers = os.path.join(node.d.root, "layers")
    before = sorted(os.listdir(layers))
    node.d.image.RemoveImage(api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=node.image)),
                             timeout=30)
    assert sorted(os.listdir(layers)) == before
    node.start(ctr)
    node.wait_state(ctr, RUNNING)
    assert node.sh(ctr, "echo still here")[1] == "still here\n"
    node.stop(ctr)
    node.remove(ctr)
    assert not os.path.exists(hold)
    assert [n for n in os.listdir(layers) if not n.startswith(".")] == []


def test_after_a_reboot_stopping_a_pod_gives_its_address_back(node):
    """A reboot takes crispd's state dir (a tmpfs, /run/crisp) with the network
    namespaces and every process, but not what the CNI plugins keep on the disk (here
    host-local's lease). The pod's CNI cache is under the root, so the StopPodSandbox
    kubelet sends after the reboot still runs the DEL that gives the address back, as
    containerd's cache in /var/lib/cni does."""
    pod = node.run_pod()
    ctr = node.run(pod)
    assert len(node.net.leases()) == 1
    with open(os.path.join(node.d.state, "containers", ctr, "pid")) as f:
        ctr_pid = int(f.read())
    # the reboot: crispd, the monitors and the containers die, the state dir goes
    node.d.stop(sig=signal.SIGKILL)
    for pid in node.leftover_procs() + [ctr_pid]:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: node.leftover_procs() == [] and not os.path.exists(f"/proc/{ctr_pid}"),
             what="the pod's processes gone")
    for m in sorted(mounts_under(node.d.state), reverse=True):
        subprocess.run(["umount", "-l", m], check=True)
    shutil.rmtree(node.d.state)
    start_again(node)
    assert node.pod_status(pod).status.state == NOTREADY
    assert node.status(ctr).state == EXITED
    node.stop_pod(pod)
    assert node.net.leases() == []
    node.remove(ctr)
    node.remove_pod(pod)
    assert not os.path.exists(os.path.join(node.d.root, "pods", pod))
    assert node.list_pods() == [] and node.list_ctrs() == []


def test_a_pod_whose_namespace_pin_is_unmounted_under_crispd_still_stops_cleanly(node):
    """The pin lost while crispd runs (an admin's umount of the state dir's mounts):
    StopPodSandbox pins the namespace again from the pod's running container before it
    stops it, so CNI DEL leaves no iptables rule or chain of the pod on the node."""
    pod = node.run_pod()
    node.run(pod)
    rules = node.net.pod_rules(pod)
    chains = {a[a.index("-j") + 1] for a in rules if "-j" in a and a[-1].startswith("CNI-")}
    assert chains, rules
    lose_netns_pin(node, pod)
    node.stop_pod(pod)
    assert "lost network namespace pin was made again" in node.d.log()
    assert node.net.pod_rules(pod) == []
    nat = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert not chains & set(nat), "the pod's CNI chains are left"
    node.remove_pod(pod)
    assert node.net.leases() == [] and mounts_under(node.d.base) == []


LATE_ADD = """#!/bin/sh
# a CNI plugin whose ADD takes 3 s and then leaves a mark on the node (as a bridge ADD
# leaves a veth, an address and a masquerade chain); its DEL takes the mark away
mark="$(dirname "$0")/mark-$CNI_CONTAINERID"
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
  ADD) sleep 3; touch "$mark"; exec jq -c '.prevResult // {"cniVersion": .cniVersion}' ;;
  DEL) rm -f "$mark"; cat >/dev/null ;;
  *) cat >/dev/null ;;
esac
"""


def test_an_add_a_killed_crispd_left_running_does_not_outlast_the_undo(
        make_crispd, registry, cni_net, cgroup_parents, tmpbase):
    """crispd runs each CNI plugin in a process group of its own, so a SIGKILL leaves an
    ADD running. The next crispd undoes the interrupted RunPodSandbox with a DEL; an ADD
    still running would finish after it and leave its state on the node for good. The
    undo ends such plugins (found by CNI_CONTAINERID) first."""
    base = os.path.join(tmpbase, "d")
    bindir = os.path.join(tmpbase, "cni-bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "crisp-late"), "w") as f:
        f.write(LATE_ADD)
    os.chmod(os.path.join(bindir, "crisp-late"), 0o755)
    cfg = {"cni": {"conf_dir": os.path.join(base, "cni"),
                   "bin_dirs": [bindir, "/opt/cni/bin", "/usr/lib/cni"]}}
    node = start_node(make_crispd, registry, cni_net, cgroup_parents, config=cfg)
    try:
        conf = json.loads(json.dumps(node.net.conf))
        conf["plugins"].append({"type": "crisp-late"})
        with open(os.path.join(base, "cni", "10-crisp.conflist"), "w") as f:
            json.dump(conf, f)
        call = node.rt.RunPodSandbox.future(
            api_pb2.RunPodSandboxRequest(config=node.pod_config(name="late")), timeout=30)
        pods = os.path.join(node.d.state, "pods")
        wait_for(lambda: os.path.isdir(pods) and os.listdir(pods), what="the pod being made")
        pod = os.listdir(pods)[0]
        time.sleep(1)   # inside the slow ADD
        node.d.stop(sig=signal.SIGKILL)
        assert call.exception() is not None
        start_again(node)
        assert "undid a RunPodSandbox a restart interrupted" in node.d.log()
        assert node.list_pods() == []
        time.sleep(3.5)   # the orphaned ADD would have finished by now
        assert not os.path.exists(os.path.join(bindir, f"mark-{pod}"))
        assert node.net.leases() == [] and node.net.pod_rules(pod) == []
        assert "ended CNI plugins an earlier crispd left running" in node.d.log()
    finally:
        finish_node(node)
