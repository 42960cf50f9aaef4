"""Streaming under load and abuse, and the SPDY side end to end: port-forward moving
100 MB through one connection and 50 connections at once (SPDY, as crictl's default
transport, and SPDY tunnelled in WebSocket, as `crictl port-forward --transport
websocket`), exec and attach over SPDY and the tunnel, a pod's hostPort reached from
the node (portmap), expired and reused tokens, and garbage of every kind on the
streaming port leaving crispd serving."""
import hashlib
import os
import random
import socket
import struct
import threading
import time
import urllib.parse

import pytest

from conftest import api_pb2
from pod_helpers import build_static, finish_node, start_node, wait_for
from spdy_client import HandshakeError, SpdyConn, port_forward, remote_command, status
from test_streaming import WebSocket, exec_url, pf_url, attach_url, run_ctr, STDOUT, ERROR

MB = 1 << 20
TRANSPORTS = ["spdy", "tunnel"]


@pytest.fixture
def pod(node):
    return node.run_pod()


def echo_server(node, pod, port):
    run_ctr(node, pod, f"echo{port}", ["busybox", "nc", "-ll", "-p", str(port), "-e", "cat"])

    def up():
        c = SpdyConn(pf_url(node, pod, [port]), "portforward.k8s.io")
        try:
            data, err = port_forward(c, port, "0")
            data.write(b"ping")
            return wait_for(lambda: data.data == b"ping" or data.fin.is_set(), timeout=5) and \
                data.data == b"ping"
        finally:
            c.close()
    wait_for(up, timeout=20, interval=0.3, what="the echo server")


@pytest.fixture(scope="session")
def echo_httpd_dir(tmp_path_factory):
    """echo_httpd.c built static, in a directory to bind-mount into a container: an HTTP
    echo that takes 50 connections at once (busybox httpd's listen backlog of 9 does
    not, and `nc -ll` resets connections that queue while it forks)."""
    d = tmp_path_factory.mktemp("echo_httpd")
    build_static(d, "echo_httpd.c", "echo_httpd")
    return str(d)


def httpd_echo(node, pod, port, bin_dir):
    cfg = node.ctr_config(name=f"httpd{port}", cmd=["/x/echo_httpd", str(port)], mounts=[
        api_pb2.Mount(container_path="/x", host_path=bin_dir, readonly=True)])
    node.start(node.create(pod, cfg=cfg))


def post(body):
    return b"POST /echo HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def reply_body(raw):
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head[:200]
    return body


def pump(stream, data, chunk=256 * 1024):
    for off in range(0, len(data), chunk):
        stream.write(data[off:off + chunk])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_port_forward_moves_100_mb_through_one_connection(node, pod, transport):
    echo_server(node, pod, 8090)
    run_ctr(node, pod, "sum", ["busybox", "nc", "-ll", "-p", "8091", "-e", "sh", "-c",
                               f"head -c {100 * MB} | sha256sum"])
    payload = os.urandom(MB) * 100
    want = hashlib.sha256(payload).hexdigest()

    # both ways at once: every byte goes into the pod and comes back
    conn = SpdyConn(pf_url(node, pod, [8090]), "portforward.k8s.io", tunnel=transport == "tunnel")
    back = hashlib.sha256()
    got = [0]
    done = threading.Event()

    def on_data(b):
        back.update(b)
        got[0] += len(b)
        if got[0] >= len(payload):
            done.set()
    data, err = port_forward(conn, 8090, "1")
    data.on_data = on_data
    t0 = time.time()
    writer = threading.Thread(target=pump, args=(data, payload))
    writer.start()
    assert done.wait(180), f"only {got[0]} of {len(payload)} bytes came back"
    writer.join(10)
    elapsed = time.time() - t0
    assert got[0] == len(payload) and back.hexdigest() == want
    assert err.data == b""
    conn.close()
    print(f"\n{transport}: 100 MB echoed in {elapsed:.1f}s")

    # what the pod received, checked inside the pod
    conn = SpdyConn(pf_url(node, pod, [8091]), "portforward.k8s.io", tunnel=transport == "tunnel")
    data, err = port_forward(conn, 8091, "2")
    pump(data, payload)
    wait_for(lambda: len(data.data) >= 64 or data.fin.is_set(), timeout=120, what="the pod's checksum")
    assert data.data.decode().split()[0] == want
    conn.close()


# With the WebSocket tunnel, about one run in three sees some of the 50 connections
# closed by the pod's side before it answers (crispd then reports "reset by peer" or
# "broken pipe" on their error streams); plain SPDY never does. Not understood yet: kept
# visible as an expected failure rather than hidden by retries.
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_port_forward_50_connections_at_once(node, pod, transport, echo_httpd_dir):
    httpd_echo(node, pod, 8092, echo_httpd_dir)

    def up():
        c = SpdyConn(pf_url(node, pod, [8092]), "portforward.k8s.io")
        d, _ = port_forward(c, 8092, "0")
        d.write(post(b"up"))
        d.fin.wait(5)
        c.close()
        return d.data.endswith(b"\r\n\r\nup")
    wait_for(up, timeout=20, interval=0.3, what="the httpd echo")

    # 50 forwarded connections on one SPDY session, all open at once
    conn = SpdyConn(pf_url(node, pod, [8092]), "portforward.k8s.io", tunnel=transport == "tunnel")
    payloads = [os.urandom(random.randint(1000, 300000)) for _ in range(50)]
    pairs = [port_forward(conn, 8092, str(i)) for i in range(50)]
    writers = [threading.Thread(target=pump, args=(d, post(p), 16384)) for (d, _), p in zip(pairs, payloads)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    for (d, e), p in zip(pairs, payloads):
        assert d.fin.wait(60), "a forwarded connection did not end"
        assert reply_body(d.data) == p, bytes(e.data)
        # busybox httpd at times resets a connection it is done with: crispd passes
        # that on (as kubelet does); anything else would be a failure
        assert e.data == b"" or b"reset by peer" in e.data, bytes(e.data)
    conn.close()

    # and 50 WebSocket sessions at once, one connection each
    results = [None] * 50

    def one(i):
        ws = WebSocket(pf_url(node, pod, [8092]))
        ws.recv(), ws.recv()
        msg = payloads[i][:50000]
        ws.send(0, post(msg))
        out = ws.collect()   # httpd closes after the reply, so does the session
        ws.close()
        results[i] = reply_body(out.get(0, b"")) == msg and not out.get(1)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(results), results


def test_port_forward_reports_a_reset_by_the_pod(node, pod):
    # a pod that resets the connection: the client gets kubelet's error, not a silent end
    run_ctr(node, pod, "rst", ["busybox", "nc", "-ll", "-p", "8094", "-e", "true"])
    c = SpdyConn(pf_url(node, pod, [8094]), "portforward.k8s.io")

    def reset_seen():
        d, e = port_forward(c, 8094, str(time.time()))
        try:
            for _ in range(20):
                d.write(os.urandom(65536))
                time.sleep(0.01)
        except OSError:
            pass
        d.fin.wait(5)
        e.fin.wait(5)
        return bytes(e.data)
    err = wait_for(lambda: (lambda m: m if b"error forwarding port 8094" in m else None)(reset_seen()),
                   timeout=20, interval=0.2, what="a reset reported")
    assert b"reset" in err or b"Broken pipe" in err, err
    c.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("handler", ["", "runsc"])
def test_exec_and_attach_over_spdy(node, transport, handler):
    pod = node.run_pod(handler=handler)
    tunnel = transport == "tunnel"
    ctr = run_ctr(node, pod, "sleeper", ["sleep", "3600"])
    c = SpdyConn(exec_url(node, ctr, ["sh", "-c", "read l; echo out $l; echo err >&2; exit 7"], stdin=True),
                 "v4.channel.k8s.io", tunnel=tunnel)
    assert c.headers.get("x-stream-protocol-version", "v4.channel.k8s.io") == "v4.channel.k8s.io"
    s = remote_command(c, stdin=True)
    s["stdin"].write(b"hello\n", fin=True)
    st = status(s)
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"][0]["message"] == "7"
    s["stdout"].wait(10)
    assert bytes(s["stdout"].data) == b"out hello\n" and bytes(s["stderr"].data) == b"err\n"
    c.close()

    c = SpdyConn(exec_url(node, ctr, ["sh"], stdin=True, stderr=False, tty=True), "v4.channel.k8s.io",
                 tunnel=tunnel)
    s = remote_command(c, stdin=True, tty=True)
    s["resize"].write(b'{"Width":77,"Height":22}')
    s["stdin"].write(b"stty size; [ -t 1 ] && echo is-a-tty-$((40+2))\r")   # not the echo
    wait_for(lambda: b"is-a-tty-42\r\n" in s["stdout"].data, what="tty output")
    assert b"22 77\r\n" in s["stdout"].data
    s["stdin"].write(b"exit 3\r")
    assert status(s)["details"]["causes"][0]["message"] == "3"
    c.close()

    tick = run_ctr(node, pod, "ticker", ["sh", "-c", "while :; do echo tick; sleep 0.2; done"])
    c = SpdyConn(attach_url(node, tick, stderr=False), "v4.channel.k8s.io", tunnel=tunnel)
    s = remote_command(c, stderr=False)
    wait_for(lambda: s["stdout"].data.count(b"tick") >= 2, what="attached output")
    c.close()
    time.sleep(0.3)
    assert node.status(tick).state == api_pb2.CONTAINER_RUNNING


def test_tunnel_refuses_what_it_does_not_speak(node, pod):
    ws = WebSocket(pf_url(node, pod, [80]), protocol="SPDY/3.1+v9.portforward.k8s.io")
    assert ws.status == 403
    ws.close()


# ---- hostPort ---------------------------------------------------------------------------

def node_address():
    """The IPv4 address of the interface the default route uses (the node IP), or None."""
    import subprocess
    route = subprocess.run(["ip", "-4", "-o", "route", "show", "default"], capture_output=True,
                           text=True).stdout.split()
    if "dev" not in route:
        return None
    dev = route[route.index("dev") + 1]
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", dev, "scope", "global"],
                         capture_output=True, text=True).stdout.split()
    return out[3].split("/")[0] if len(out) > 3 else None


def test_node_reaches_a_pods_host_port(node):
    with socket.socket() as s:   # a port free on the node now
        s.bind(("0.0.0.0", 0))
        host_port = s.getsockname()[1]
    cfg = node.pod_config()
    cfg.port_mappings.append(api_pb2.PortMapping(protocol=api_pb2.TCP, container_port=8093,
                                                 host_port=host_port))
    pod = node.run_pod(cfg=cfg)
    run_ctr(node, pod, "srv", ["busybox", "nc", "-ll", "-p", "8093", "-e", "echo", "hello from the pod"])
    pod_ip = node.pod_status(pod).status.network.ip
    # DNAT in the node's nat table (PREROUTING for others, OUTPUT for the node itself);
    # the bridge's gateway address is the node's own address on the pod network
    gateway = str(next(node.net.subnet.hosts()))

    def fetch(addr):
        try:
            with socket.create_connection((addr, host_port), timeout=3) as s:
                s.settimeout(3)
                return s.recv(100)
        except OSError:
            return None
    # portmap also DNATs 127.0.0.1 (route_localnet on the bridge, then masquerade)
    addrs = [gateway, "127.0.0.1"] + [a for a in (node_address(),) if a and a != pod_ip]
    assert wait_for(lambda: fetch(gateway), timeout=10, what="the hostPort") == b"hello from the pod\n"
    for a in addrs[1:]:
        assert fetch(a) == b"hello from the pod\n", f"hostPort through {a}"
    node.stop_pod(pod)
    assert fetch(gateway) is None   # the mapping went with the pod


# ---- tokens -----------------------------------------------------------------------------

@pytest.fixture
def short_token_node(make_crispd, registry, cni_net, cgroup_parents, monkeypatch):
    monkeypatch.setenv("CRISP_STREAM_TOKEN_TTL_MS", "1500")
    n = start_node(make_crispd, registry, cni_net, cgroup_parents, name="short")
    yield n
    finish_node(n)


def test_expired_and_reused_tokens_are_refused_with_404(short_token_node):
    node = short_token_node
    pod = node.run_pod()
    ctr = run_ctr(node, pod, "sleeper", ["sleep", "3600"])
    url = exec_url(node, ctr, ["echo", "fresh"])
    stale = [exec_url(node, ctr, ["true"]), attach_url(node, ctr), pf_url(node, pod, [80])]
    stale_spdy = pf_url(node, pod, [80])
    out = WebSocket(url).collect()
    assert out[STDOUT] == b"fresh\n"
    ws = WebSocket(url)   # reused
    assert ws.status == 404
    ws.close()
    time.sleep(2)
    for u in stale:     # expired, never used: WebSocket and SPDY alike
        ws = WebSocket(u)
        assert ws.status == 404, u
        ws.close()
    with pytest.raises(HandshakeError) as e:
        SpdyConn(stale_spdy, "portforward.k8s.io")
    assert e.value.status == 404
    assert WebSocket(exec_url(node, ctr, ["echo", "new"])).collect()[STDOUT] == b"new\n"


def test_bad_token_lifetime_setting_fails_start(make_crispd, monkeypatch):
    monkeypatch.setenv("CRISP_STREAM_TOKEN_TTL_MS", "soon")
    d = make_crispd(start=False)
    d.start(wait=False)
    assert d.proc.wait(10) != 0
    assert "CRISP_STREAM_TOKEN_TTL_MS" in d.log()


# ---- garbage ----------------------------------------------------------------------------

def stream_addr(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def send_and_close(addr, data, read=True):
    try:
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(data)
            if read:
                s.settimeout(5)
                try:
                    return s.recv(4096)
                except (socket.timeout, ConnectionResetError):
                    return None
    except OSError:
        return None


def spdy_upgraded(url, protocol):
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=5)
    s.sendall((f"POST {u.path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               f"X-Stream-Protocol-Version: {protocol}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def ctl(typ, flags, payload, version=3):
    return struct.pack(">HHI", 0x8000 | version, typ, flags << 24 | len(payload)) + payload


BAD_SPDY = [
    ctl(1, 0, b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + os.urandom(200)),   # junk header block
    ctl(1, 0, b"\x00\x00\x00\x01", version=2),                                  # wrong version
    ctl(1, 0, b"\x00\x00"),                                                     # short SYN_STREAM
    struct.pack(">II", 99, 0x01000005) + b"hello",                              # DATA, unknown stream
    struct.pack(">HHI", 0x8003, 1, 0x00FFFFFF),                                 # 16 MiB promised
    ctl(4, 0, b"\xff\xff\xff\xff" + os.urandom(64)),                            # SETTINGS, absurd count
    ctl(9, 0, b"\x00\x00\x00\x00\x7f\xff\xff\xff") * 3,                         # window overflow
    ctl(3, 0, b"\x00\x00\x00\x07\x00\x00\x00\x01"),                             # RST of nothing
    ctl(77, 0, b"abc"),                                                         # unknown type
    os.urandom(5000),
]


def ws_frame(op, payload, masked=True, rsv=0, fin=True, length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | op
    if n < 126:
        head = bytes([b0, (0x80 if masked else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if masked else 0) | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, (0x80 if masked else 0) | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


BAD_WS = [
    ws_frame(2, b"\x00abc", masked=False),            # unmasked client frame
    ws_frame(2, b"\x00abc", rsv=0x40),                # reserved bit
    ws_frame(2, b"", length=1 << 62),                 # absurd length
    ws_frame(9, b"x" * 200),                          # control frame too long
    ws_frame(8, b"\x03"),                             # one-byte close
    ws_frame(0, b"\x00orphan"),                       # continuation of nothing
    ws_frame(2, b"\x00a", fin=False) + ws_frame(2, b"\x00b"),   # new message inside one
    ws_frame(1, b"\x00\xff\xfe"),                     # text that is not UTF-8
    ws_frame(5, b"x"),                                # unknown opcode
    ws_frame(2, b"\x04{{{{{{{{"),                     # resize channel garbage
    os.urandom(3000),
]


def serving(node, ctr):
    try:
        out = WebSocket(exec_url(node, ctr, ["echo", "alive"])).collect()
    except (OSError, AssertionError):   # refused while the handshake slots are taken
        return False
    return out.get(STDOUT) == b"alive\n"


def test_garbage_never_crashes_crispd(node, pod):
    ctr = run_ctr(node, pod, "sleeper", ["sleep", "3600"])
    addr = stream_addr(exec_url(node, ctr, ["true"]))
    rnd = random.Random(6)

    # random bytes and half requests, straight at the port
    for i in range(30):
        send_and_close(addr, bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 17, 900, 70000]))),
                       read=i % 2 == 0)
    for half in (b"GET /exec/", b"GET /exec/abc HTTP/1.1\r\nHost: x\r\n",
                 b"POST /portforward/" + b"A" * 22 + b" HTTP/1.1\r\nUpgrade: SPDY/3.1\r\nConn",
                 b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 100000 + b"\r\n\r\n",
                 b"\r\n\r\n", b"GET /attach/%00%ff HTTP/1.1\r\n\r\n",
                 b"GET /exec/" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n"):
        send_and_close(addr, half)
    assert serving(node, ctr)

    # bad SPDY after a real upgrade (a port-forward and an exec token each time)
    for i, bad in enumerate(BAD_SPDY):
        url = pf_url(node, pod, [80]) if i % 2 else exec_url(node, ctr, ["cat"], stdin=True)
        s = spdy_upgraded(url, "portforward.k8s.io" if i % 2 else "v4.channel.k8s.io")
        try:
            s.sendall(bad)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(15)
            while s.recv(65536):
                pass
        except OSError:
            pass
        s.close()
    assert serving(node, ctr)

    # bad WebSocket frames after a real upgrade
    for bad in BAD_WS:
        ws = WebSocket(exec_url(node, ctr, ["cat"], stdin=True))
        try:
            ws.sock.sendall(bad)
            ws.sock.settimeout(15)
            ws.collect()
        except (OSError, AssertionError):
            pass
        ws.close()
    assert serving(node, ctr)

    # slowloris: many connections dribbling a request head
    slow = []
    for _ in range(80):
        try:
            s = socket.create_connection(addr, timeout=5)
            s.sendall(b"GET /exec/")
            slow.append(s)
        except OSError:
            pass
    for _ in range(3):
        for s in slow:
            try:
                s.sendall(b"a")
            except OSError:
                pass
        time.sleep(1)
    # at most 64 connections may be without a request head: the head timeout (10 s)
    # frees every slot, so crispd serves again without help
    wait_for(lambda: serving(node, ctr), timeout=30, interval=1, what="serving after slowloris")
    for s in slow:
        s.close()
    assert node.d.proc.poll() is None
    assert node.status(ctr).state == api_pb2.CONTAINER_RUNNING
