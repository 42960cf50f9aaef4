"""Pod sandbox lifecycle through the real gRPC API, with real namespaces and a real CNI
bridge network (pod_helpers.cni_net): RunPodSandbox -> PodSandboxStatus -> ListPodSandbox
(every filter) -> StopPodSandbox -> RemovePodSandbox, their idempotence, runtime handler
routing, duplicate and bad metadata, and the hostname, /etc/hosts and /etc/resolv.conf a
container of the pod sees."""
import ipaddress
import json
import os
import time

import grpc
import pytest

from conftest import api_pb2, mounts_under
from pod_helpers import NOTREADY, NS_CONTAINER, NS_POD, READY, ns_pins_under, rpc_error


def test_run_pod_is_ready_with_an_ip_in_the_cni_subnet_and_its_config(node):
    t0 = time.time_ns()
    cfg = node.pod_config(name="web", labels={"app": "web", "tier": "front"},
                          annotations={"crisp.test/note": "hello", "empty": ""})
    pod = node.run_pod(cfg)
    assert len(pod) == 64 and all(ch in "0123456789abcdef" for ch in pod)
    r = node.pod_status(pod, verbose=True)
    st = r.status
    assert st.id == pod
    assert st.state == READY
    assert t0 <= st.created_at <= time.time_ns()
    assert (st.metadata.name, st.metadata.namespace, st.metadata.uid, st.metadata.attempt) == (
        "web", "crisp-it", cfg.metadata.uid, 0)
    ip = ipaddress.ip_address(st.network.ip)
    assert ip in node.net.subnet and ip != next(node.net.subnet.hosts())   # not the gateway
    assert st.network.ip in node.net.leases()   # host-local handed it out
    opts = st.linux.namespaces.options
    assert (opts.network, opts.pid, opts.ipc) == (NS_POD, NS_CONTAINER, NS_POD)
    assert dict(st.labels) == {"app": "web", "tier": "front"}
    assert dict(st.annotations) == {"crisp.test/note": "hello", "empty": ""}
    assert st.runtime_handler == "runc"
    info = json.loads(r.info["info"])
    assert info["id"] == pod and info["runtimeHandler"] == "runc" and info["hostname"] == "web"
    assert abs(r.timestamp - time.time_ns()) < 10e9
    # the pod's namespaces are pinned under the state dir
    pod_dir = os.path.join(node.d.state, "pods", pod)
    assert any(m.startswith(pod_dir) for m in mounts_under(node.d.state))


@pytest.mark.parametrize("handler", ["", "runc"])
def test_the_default_and_the_named_runc_handler_both_report_runc(node, handler):
    pod = node.run_pod(host_network=True, handler=handler)
    st = node.pod_status(pod).status
    assert st.runtime_handler == "runc" and st.state == READY
    assert st.network.ip == ""   # a hostNetwork pod has the node's addresses, no CNI
    assert node.list_pods(id=pod)[0].runtime_handler == "runc"


def test_an_unknown_handler_fails_naming_the_configured_handlers_and_leaves_nothing(node):
    e = rpc_error(node.run_pod, host_network=True, handler="kata")
    assert e.code() == grpc.StatusCode.NOT_FOUND
    assert '"kata"' in e.details() and "runc" in e.details() and "runsc" in e.details()
    assert node.list_pods() == []
    assert not os.path.exists(os.path.join(node.d.state, "pods")) or \
        os.listdir(os.path.join(node.d.state, "pods")) == []


def test_list_filters_by_id_prefix_state_and_labels(node):
    a = node.run_pod(host_network=True, labels={"app": "a", "env": "prod"})
    b = node.run_pod(host_network=True, labels={"app": "b", "env": "prod"})
    c = node.run_pod(host_network=True, labels={"app": "c", "env": "dev"})
    node.stop_pod(c)

    def ids(**f):
        return sorted(p.id for p in node.list_pods(**f))

    assert ids() == sorted([a, b, c])
    assert ids(id=a) == [a]
    assert ids(id=a[:12]) == [a]
    assert ids(id="f" * 64) == []
    ready = api_pb2.PodSandboxStateValue(state=READY)
    notready = api_pb2.PodSandboxStateValue(state=NOTREADY)
    assert ids(state=ready) == sorted([a, b])
    assert ids(state=notready) == [c]
    assert ids(label_selector={"env": "prod"}) == sorted([a, b])
    assert ids(label_selector={"env": "prod", "app": "b"}) == [b]
    assert ids(label_selector={"env": "prod", "app": "c"}) == []
    assert ids(label_selector={"nope": "x"}) == []
    assert ids(state=ready, label_selector={"app": "a"}) == [a]
    assert ids(state=notready, label_selector={"app": "a"}) == []
    assert ids(id=b, state=notready) == []
    got = {p.id: p for p in node.list_pods()}
    assert got[a].state == READY and got[c].state == NOTREADY
    assert dict(got[a].labels) == {"app": "a", "env": "prod"}
    assert got[b].metadata.name == node.pod_cfgs[b].metadata.name
    assert got[a].created_at > 0 and got[a].runtime_handler == "runc"


def test_stop_is_notready_idempotent_and_gives_back_the_network(node):
    pod = node.run_pod()
    ip = node.pod_status(pod).status.network.ip
    pod_dir = os.path.join(node.d.state, "pods", pod)
    assert ip in node.net.leases()
    node.stop_pod(pod)
    st = node.pod_status(pod).status
    assert st.state == NOTREADY
    assert ip not in node.net.leases()          # CNI DEL released the address
    # namespaces unpinned (the pod's /dev/shm stays until the pod is removed)
    assert ns_pins_under(pod_dir) == []
    assert [m for m in mounts_under(pod_dir) if not m.endswith("/shm")] == []
    node.stop_pod(pod)                          # again: fine
    assert node.pod_status(pod).status.state == NOTREADY
    node.stop_pod("0" * 64)                     # a pod that never existed: fine too


def test_remove_is_idempotent_and_forgets_the_pod(node):
    pod = node.run_pod()
    pod_dir = os.path.join(node.d.state, "pods", pod)
    node.remove_pod(pod)   # without a stop first: remove stops it
    assert rpc_error(node.pod_status, pod).code() == grpc.StatusCode.NOT_FOUND
    assert node.list_pods() == []
    assert not os.path.exists(pod_dir)
    assert not os.path.exists(os.path.join(node.d.root, "pods", pod + ".json"))
    assert node.net.leases() == []
    node.remove_pod(pod)
    node.remove_pod("0" * 64)


def test_a_duplicate_name_namespace_uid_attempt_is_already_exists(node):
    cfg = node.pod_config(name="dup", host_network=True, uid="uid-dup")
    first = node.run_pod(cfg)
    e = rpc_error(node.run_pod, cfg)
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS
    assert [p.id for p in node.list_pods()] == [first]
    # another attempt of the same pod is a new pod
    again = api_pb2.PodSandboxConfig()
    again.CopyFrom(cfg)
    again.metadata.attempt = 1
    second = node.run_pod(again)
    assert sorted(p.id for p in node.list_pods()) == sorted([first, second])
    # once removed, the name is free again
    node.remove_pod(first)
    third = node.run_pod(cfg)
    assert third not in (first, second)


@pytest.mark.parametrize("bad", ["no metadata", "no name", "no namespace", "no uid"])
def test_bad_metadata_is_invalid_argument(node, bad):
    cfg = node.pod_config(host_network=True)
    if bad == "no metadata":
        cfg.ClearField("metadata")
    else:
        setattr(cfg.metadata, bad.split()[1], "")
    e = rpc_error(node.run_pod, cfg)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.details()
    assert node.list_pods() == []


def test_hostname_hosts_and_resolv_conf_follow_the_pod_config(node):
    dns = api_pb2.DNSConfig(servers=["10.96.0.10", "1.1.1.1"],
                            searches=["crisp-it.svc.cluster.local", "svc.cluster.local"],
                            options=["ndots:5", "edns0"])
    pod = node.run_pod(name="dnspod", hostname="web-0", dns=dns)
    ip = node.pod_status(pod).status.network.ip
    ctr = node.run(pod)
    rc, out, _ = node.sh(ctr, "hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf")
    assert rc == 0
    hostname, hosts, resolv = out.split("---\n")
    assert hostname.strip() == "web-0"
    host_lines = [l.split() for l in hosts.splitlines() if l and not l.startswith("#")]
    assert ["127.0.0.1", "localhost"] in host_lines
    assert [ip, "web-0"] in host_lines
    lines = resolv.splitlines()
    assert [l for l in lines if l.startswith("nameserver")] == [
        "nameserver 10.96.0.10", "nameserver 1.1.1.1"]
    assert "search crisp-it.svc.cluster.local svc.cluster.local" in lines
    assert "options ndots:5 edns0" in lines
    # the container's network namespace is the pod's: it has the pod's address
    rc, out, _ = node.sh(ctr, "ip -4 -o addr show eth0")
    assert rc == 0 and f" {ip}/{node.net.subnet.prefixlen} " in out


def test_pod_removal_takes_its_containers_with_it(node):
    pod = node.run_pod()
    running = node.run(pod, name="running")
    created = node.create(pod, name="created")
    node.remove_pod(pod)
    assert node.list_ctrs() == []
    for c in (running, created):
        assert rpc_error(node.status, c).code() == grpc.StatusCode.NOT_FOUND
