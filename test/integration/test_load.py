"""Load: status calls never wait behind slow work, and memory stays flat.

Many pods with two containers each (CRISP_LOAD_PODS, 30 by default, 200 with
CRISP_SOAK=1); 50 kubelet-like pollers (crisp-pleg, a C client: Python's GIL would be
measured otherwise) calling ListContainers, ListPodSandbox, ContainerStatus and
PodSandboxStatus in a loop while pods churn through a slow CNI plugin (a test plugin
that sleeps 2 s on ADD and DEL) and 3 pulls of big images trickle in from a slow
registry. No status or list call may take as long as one slow CNI call, and the p99 of
each of the four must stay under 5 ms in the soak (pollers every second, as kubelet's
PLEG; the lists carry all 400 containers and 200 pods); `make test` polls every 250 ms
and, since it also runs under ASan on a shared machine, uses a softer bound
(CRISP_LOAD_P99_MS, 25 ms) and none under ASan; the real figures are printed either way.

Then crispd's RSS over many lifecycle cycles (CRISP_LOAD_CYCLES, a few hundred by
default, 10,000 with CRISP_SOAK=1) must not grow beyond a small allowance."""
import json
import os
import subprocess
import threading
import time

import grpc

from conftest import api_pb2
from lying_registry import Image, LyingRegistry, tar_layer
from pod_helpers import Node, finish_node, rss_kib, start_node, wait_for

SOAK = os.environ.get("CRISP_SOAK") == "1"
PODS = int(os.environ.get("CRISP_LOAD_PODS", "200" if SOAK else "30"))
CYCLES = int(os.environ.get("CRISP_LOAD_CYCLES", "10000" if SOAK else "300"))
LOAD_SECONDS = float(os.environ.get("CRISP_LOAD_SECONDS", "60" if SOAK else "20"))
P99_MS = float(os.environ.get("CRISP_LOAD_P99_MS", "5" if SOAK else "25"))
# kubelet's PLEG relists every second; a shorter interval is a harsher test
INTERVAL_MS = int(os.environ.get("CRISP_LOAD_INTERVAL_MS", "1000" if SOAK else "250"))
CLIENTS = 50
# what kubelet's PLEG and status loops call; each one's p99 is held to the bound
POLLED = ("ListContainers", "ListPodSandbox", "ContainerStatus", "PodSandboxStatus")
HERE = os.path.dirname(os.path.abspath(__file__))
PLEG = os.environ.get("CRISP_PLEG") or os.path.join(HERE, "../../build/bin/crisp-pleg")

SLOW_CNI = """#!/bin/sh
# a CNI plugin that passes its chain's result on, after 2 s for the churn pods
case "$CNI_ARGS" in *K8S_POD_NAME=churn*) sleep 2 ;; esac
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
  ADD) exec jq -c '.prevResult // {"cniVersion": .cniVersion}' ;;
  *) cat >/dev/null ;;
esac
"""


def slow_cni(node, bindir):
    os.makedirs(bindir, exist_ok=True)
    plugin = os.path.join(bindir, "crisp-slow")
    with open(plugin, "w") as f:
        f.write(SLOW_CNI)
    os.chmod(plugin, 0o755)
    conf = json.loads(json.dumps(node.net.conf))
    conf["plugins"].append({"type": "crisp-slow"})
    with open(os.path.join(node.d.base, "cni", "10-crisp.conflist"), "w") as f:
        json.dump(conf, f)


def big_image(tag):
    return Image([tar_layer([("big.bin", "file", os.urandom(4 << 20)),
                             ("tag", "file", tag.encode())])])


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def parse_pleg(out):
    res = {}
    for line in out.splitlines():
        kv = dict(x.split("=", 1) for x in line.split())
        res[kv["method"]] = {k: float(v) for k, v in kv.items() if k != "method"}
    return res


def test_status_calls_never_wait_behind_pulls_or_cni(make_crispd, registry, cni_net,
                                                     cgroup_parents, tmpbase):
    base = os.path.join(tmpbase, "d")
    bindir = os.path.join(tmpbase, "cni-bin")
    cfg = {"cni": {"conf_dir": os.path.join(base, "cni"),
                   "bin_dirs": [bindir, "/opt/cni/bin", "/usr/lib/cni"]}}
    node = start_node(make_crispd, registry, cni_net, cgroup_parents, config=cfg)
    reg = LyingRegistry()
    try:
        run_load(node, reg, bindir)
    finally:
        reg.close()
        finish_node(node)


def run_load(node, reg, bindir):
    t0 = time.time()
    pods, ctrs = [], []
    for i in range(PODS):
        p = node.run_pod(name=f"steady{i}")
        pods.append(p)
        for k in range(2):
            ctrs.append(node.run(p, name=f"c{k}", cmd=["sleep", "100000"], log=False))
    print(f"{PODS} pods, {len(ctrs)} containers in {time.time() - t0:.1f} s")
    slow_cni(node, bindir)
    ids = os.path.join(node.d.base, "ids")
    with open(ids, "w") as f:
        f.writelines([f"c {c}\n" for c in ctrs] + [f"p {p}\n" for p in pods])

    stop = threading.Event()
    errors, churned, pulled = [], [0], []

    def churn(k):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                p = node.run_pod(name=f"churn{k}-{n}", timeout=60)
                c = node.run(p, name="c", cmd=["sleep", "100"], log=False)
                node.stop(c)
                node.stop_pod(p, timeout=60)
                node.remove_pod(p, timeout=60)
                churned[0] += 1
            except grpc.RpcError as e:
                errors.append(f"churn: {e.code()} {e.details()}")
                return

    def pull(tag):
        ref = reg.add(f"crisp-test/big{tag}", "1", big_image(tag))
        img = reg.manifests[(f"crisp-test/big{tag}", "1")][0]
        for d in json.loads(img)["layers"]:
            reg.blob_faults[d["digest"]] = ("drip", LOAD_SECONDS * 0.75)
        try:
            node.d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)),
                                   timeout=LOAD_SECONDS * 3)
            pulled.append(ref)
        except grpc.RpcError as e:
            errors.append(f"pull: {e.code()} {e.details()}")

    workers = [threading.Thread(target=churn, args=(k,)) for k in range(2)]
    workers += [threading.Thread(target=pull, args=(str(k),)) for k in range(3)]
    for w in workers:
        w.start()
    time.sleep(1)   # the pulls and the first churn pods are under way
    r = subprocess.run([PLEG, node.d.sock, str(LOAD_SECONDS), str(CLIENTS), str(INTERVAL_MS), ids],
                       capture_output=True, text=True, timeout=LOAD_SECONDS + 60)
    stop.set()
    for w in workers:
        w.join(LOAD_SECONDS * 3)
    assert r.returncode == 0, r.stderr
    res = parse_pleg(r.stdout)
    print(r.stdout.strip())
    p99s = {m: res[m]["p99_us"] / 1000 for m in POLLED}
    p99 = max(p99s.values())
    worst = max(res[m]["max_us"] for m in POLLED) / 1000
    print(f"{CLIENTS} pollers every {INTERVAL_MS} ms over {len(ctrs)} containers: p99 "
          + ", ".join(f"{m} {v:.2f} ms" for m, v in p99s.items())
          + f" (bound {P99_MS} ms), max {worst:.1f} ms, {churned[0]} pods churned through "
          f"the slow CNI, {len(pulled)} slow pulls done, crispd RSS {rss_kib(node.d.proc.pid)} KiB")
    assert errors == [], errors
    assert len(pulled) == 3 and churned[0] >= 2
    assert all(res[m]["errors"] == 0 for m in res), res
    assert res["all"]["calls"] > CLIENTS * (LOAD_SECONDS - 2) * 4 * 1000 / INTERVAL_MS / 2
    # a call that waited behind a CNI call (2 s) or a pull (seconds) would show here
    assert worst < 1000, f"a status or list call took {worst:.0f} ms"
    if sanitized(node.d.proc.pid):
        return   # an ASan crispd is several times slower: only the bound above holds
    assert p99 < P99_MS, f"p99 over {P99_MS} ms: {p99s}"
    for p in pods:
        node.stop_pod(p)
        node.remove_pod(p)


def test_memory_stays_flat_over_lifecycle_cycles(make_crispd, registry, cni_net, cgroup_parents):
    node = start_node(make_crispd, registry, cni_net, cgroup_parents)
    try:
        cycles(node)
    finally:
        finish_node(node)


def cycles(node):
    pod = node.run_pod(name="cycles")
    warm = max(50, CYCLES // 20)
    rss = []
    t0 = time.time()
    for i in range(CYCLES):
        # every tenth cycle a whole pod (CNI, namespaces), else a container in one pod
        if i % 10 == 9:
            p = node.run_pod(name=f"cycle{i}", host_network=i % 20 == 19)
            c = node.run(p, name="c", cmd=["sleep", "100"])
            node.stop_pod(p)
            node.remove_pod(p)
        else:
            c = node.run(pod, name=f"c{i}", cmd=["sh", "-c", "echo hi; sleep 100"])
            if i % 3 == 0:
                assert node.exec(c, ["true"]).exit_code == 0
            node.status(c)
            node.stop(c)
            node.remove(c)
        if i + 1 == warm or (i + 1) % max(1, CYCLES // 10) == 0:
            rss.append((i + 1, rss_kib(node.d.proc.pid)))
    el = time.time() - t0
    after_warm = [r for n, r in rss if n >= warm]
    growth = after_warm[-1] - after_warm[0]
    print(f"{CYCLES} lifecycle cycles in {el:.0f} s; crispd RSS (cycles, KiB): {rss}; "
          f"growth after {warm} warm-up cycles: {growth} KiB")
    node.stop_pod(pod)
    node.remove_pod(pod)
    if sanitized(node.d.proc.pid):
        return   # ASan's quarantine grows by design
    assert growth < 2048, rss
