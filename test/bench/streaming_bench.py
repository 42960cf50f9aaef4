#!/usr/bin/env python3
"""Streaming benchmark driver (test/bench/streaming.sh sets up the daemons): crispd and
containerd in the same run, each with one pod (CNI networking, kubelet's default
namespaces) and one busybox container serving TCP in the pod's network namespace:

- exec round trip: an Exec RPC for `true`, then the streaming URL opened over SPDY as
  `crictl exec <ctr> true` does (upgrade, error/stdout/stderr streams), until the
  status arrives; and ExecSync `true` for comparison;
- port-forward throughput: PortForward, one SPDY connection, BYTES from the pod
  (busybox httpd, a CGI answering `GET /cgi-bin/zero?N` with N zero bytes from
  `head -c N /dev/zero`) read through one forwarded connection (MB/s), and through
  CONNS forwarded connections at once on one SPDY session (aggregate). httpd takes
  many connections at once, which `nc -ll` does not reliably.

Each measurement runs in rounds alternating between the daemons; medians and the
ratios are printed. The client is test/integration/spdy_client.py (Python, the same
for both daemons)."""
import argparse
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "../integration"))
from lifecycle_bench import Daemon, fail  # noqa: E402
from spdy_client import SpdyConn, port_forward, remote_command, status  # noqa: E402

MB = 1 << 20
PF_PORT = 8080
CGI_ZERO = "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec head -c \"$QUERY_STRING\" /dev/zero\n"


def setup(d, image, pb):
    cfg = d.pod_config(f"streaming-{d.name}")
    pod = d.run_pod(cfg)
    ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    ccfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="srv", attempt=0), image=pb.ImageSpec(image=image),
        command=["sh", "-c", 'mkdir -p /www/cgi-bin && printf "%s" "$CGI" > /www/cgi-bin/zero && '
                 f'chmod +x /www/cgi-bin/zero && exec httpd -f -p {PF_PORT} -h /www'],
        envs=[pb.KeyValue(key="CGI", value=CGI_ZERO)],
        log_path="srv/0.log",
        linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
            namespace_options=ns)))
    cid = d.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=ccfg,
                                                         sandbox_config=cfg), timeout=120).container_id
    d.start(cid)
    return pod, cid


def exec_streaming(d, pb, cid):
    t0 = time.perf_counter()
    url = d.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["true"], stdout=True, stderr=True),
                    timeout=30).url
    c = SpdyConn(url, "v4.channel.k8s.io")
    s = remote_command(c)
    st = status(s, timeout=30)
    dt = time.perf_counter() - t0
    c.close()
    if st and st.get("status") != "Success":
        fail(f"{d.name}: exec true: {st}")
    return dt


def exec_sync(d, pb, cid):
    t0 = time.perf_counter()
    r = d.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10), timeout=30)
    dt = time.perf_counter() - t0
    if r.exit_code:
        fail(f"{d.name}: ExecSync true exited {r.exit_code}")
    return dt


def forward(d, pb, pod, conns, size):
    """Seconds to read size bytes through each of conns forwarded connections at once."""
    url = d.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=[PF_PORT]), timeout=30).url
    c = SpdyConn(url, "portforward.k8s.io")
    got = [0] * conns
    t0 = time.perf_counter()
    pairs = []
    for i in range(conns):
        def count(b, i=i):
            got[i] += len(b)
        data, err = port_forward(c, PF_PORT, str(i))
        data.on_data = count
        data.write(b"GET /cgi-bin/zero?%d HTTP/1.0\r\n\r\n" % size)
        pairs.append((data, err))
    for data, _ in pairs:
        data.fin.wait(300)
    dt = time.perf_counter() - t0
    c.close()
    if not all(size < g < size + 200 for g in got):   # the body and httpd's short head
        raise RuntimeError(f"{d.name}: port-forward read {got}, wanted {size} each (and a "
                           f"response head): {[bytes(e.data) for _, e in pairs if e.data][:1]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pygen", required=True)
    ap.add_argument("--busybox", required=True)
    ap.add_argument("--pause", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--execs", type=int, default=20, help="exec round trips per daemon and round")
    ap.add_argument("--bytes", type=int, default=256 * MB)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--daemon", action="append", required=True,
                    help="NAME,SOCK,PID,MARK,CGPARENT,LOGDIR,SUBNET")
    a = ap.parse_args()
    sys.path.insert(0, a.pygen)
    import grpc
    import api_pb2 as pb
    import api_pb2_grpc
    ds = [Daemon(s, grpc, pb, api_pb2_grpc) for s in a.daemon]
    res = {d.name: {"exec": [], "execsync": [], "pf1": [], "pfn": []} for d in ds}
    try:
        targets = {}
        for d in ds:
            for ref in (a.busybox, a.pause):
                d.pull(ref)
            targets[d.name] = setup(d, a.busybox, pb)
        for d in ds:   # warm up: the streaming server's first token starts its threads
            pod, cid = targets[d.name]
            exec_streaming(d, pb, cid)
            exec_sync(d, pb, cid)
            for _ in range(20):   # httpd may take a moment to listen
                try:
                    forward(d, pb, pod, 1, MB)
                    break
                except RuntimeError:
                    time.sleep(0.5)
            else:
                fail(f"{d.name}: the pod's httpd does not answer")
        per_conn = a.bytes // a.conns
        for r in range(a.rounds):
            for d in (ds if r % 2 == 0 else list(reversed(ds))):
                pod, cid = targets[d.name]
                x = res[d.name]
                x["exec"] += [exec_streaming(d, pb, cid) for _ in range(a.execs)]
                x["execsync"] += [exec_sync(d, pb, cid) for _ in range(a.execs)]
                x["pf1"].append(a.bytes / MB / forward(d, pb, pod, 1, a.bytes))
                x["pfn"].append(a.conns * per_conn / MB / forward(d, pb, pod, a.conns, per_conn))
    finally:
        for d in ds:
            d.sweep()

    c, k = res[ds[0].name], res[ds[1].name]
    extra = ds[2:]   # crispd with the sandbox handler, if asked for
    med = statistics.median
    print(f"\n{'measure':<44} {'crispd':>10} {'containerd':>11}  {'ratio':>6}"
          + "".join(f"  {d.name:>14}" for d in extra))
    rows = [("exec `true` via streaming URL (SPDY), ms", "exec", 1000, False),
            ("ExecSync `true`, ms", "execsync", 1000, False),
            (f"port-forward, 1 connection, {a.bytes // MB} MiB, MB/s", "pf1", 1, True),
            (f"port-forward, {a.conns} connections at once, MB/s", "pfn", 1, True)]
    ok = True
    for label, key, scale, higher in rows:
        cm, km = med(c[key]) * scale, med(k[key]) * scale
        ratio = cm / km if higher else km / cm   # > 1: crispd better
        ok = ok and (ratio >= 1 or key == "execsync")
        print(f"{label:<44} {cm:10.1f} {km:11.1f}  {ratio:5.2f}x"
              + "".join(f"  {med(res[d.name][key]) * scale:14.1f}" for d in extra))
    print(f"(medians of {a.rounds} alternating rounds; {a.execs} execs per round; ratio > 1 means "
          f"crispd is faster)")
    print(f"target: crispd at least as fast on exec round trip and port-forward: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
