"""Exec, Attach and PortForward end to end: the RPC hands out a URL on crispd's streaming
server, a minimal WebSocket client (RFC 6455 framing over a plain socket, the
v4/v5.channel.k8s.io subprotocols kubelet's clients speak) opens it, and real containers
(busybox-static from the session registry, pods with CNI networking from pod_helpers) sit
behind: `crisp-monitor exec` with pipes or a pty, the monitor's attach stream, and TCP
connections made in the pod's network namespace. The SPDY side of the same server is
covered by test_streaming_load.py. The core exec, attach and port-forward tests run
under both the default handler and `runsc` (the syscall sandbox)."""
import base64
import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
import urllib.parse

import grpc
import pytest

from conftest import api_pb2
from pod_helpers import EXITED, RUNNING, rpc_error, wait_for

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)


class WebSocket:
    """Just enough of a WebSocket client for Kubernetes' channel protocols: binary
    messages whose first byte is the channel, client frames masked, Close answered."""

    def __init__(self, url, protocol="v4.channel.k8s.io", timeout=20):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed during the handshake: {self.buf!r}"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, v in (l.split(":", 1) for l in lines[1:])}
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            assert self.headers["sec-websocket-accept"] == accept
            assert self.headers["sec-websocket-protocol"] == protocol
        self.closed = False

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return b0 & 0x80, b0 & 0x0F, self._read(n)

    def send_raw(self, op, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, channel, data):
        self.send_raw(2, bytes([channel]) + data)

    def recv(self):
        """(channel, data) of the next message; None once the server closed."""
        if self.closed:
            return None
        msg, first_op = b"", None
        while True:
            try:
                fin, op, payload = self._frame()
            except EOFError:
                self.closed = True
                return None
            if op == 8:
                self.closed = True
                try:
                    self.send_raw(8, payload[:2])
                except OSError:
                    pass
                return None
            if op == 9:
                self.send_raw(10, payload)
                continue
            if op in (1, 2):
                first_op = op
            msg += payload
            if fin and first_op is not None:
                return msg[0], msg[1:]

    def collect(self, until=None):
        """Every message until the server closes (or until(out) holds): per-channel bytes."""
        out = {}
        while True:
            m = self.recv()
            if m is None:
                return out
            out[m[0]] = out.get(m[0], b"") + m[1]
            if until and until(out):
                return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def status_of(out):
    return json.loads(out[ERROR]) if out.get(ERROR) else None


def exec_url(node, ctr, cmd, stdin=False, stdout=True, stderr=True, tty=False):
    return node.rt.Exec(api_pb2.ExecRequest(container_id=ctr, cmd=list(cmd), stdin=stdin,
                                            stdout=stdout, stderr=stderr, tty=tty), timeout=10).url


def attach_url(node, ctr, stdin=False, stdout=True, stderr=True, tty=False):
    return node.rt.Attach(api_pb2.AttachRequest(container_id=ctr, stdin=stdin, stdout=stdout,
                                                stderr=stderr, tty=tty), timeout=10).url


def pf_url(node, pod, ports):
    return node.rt.PortForward(api_pb2.PortForwardRequest(pod_sandbox_id=pod, port=list(ports)),
                               timeout=10).url


def resize(ws, width, height):
    ws.send(RESIZE, json.dumps({"Width": width, "Height": height}).encode())


def run_ctr(node, pod, name, cmd, tty=False, stdin=False, stdin_once=False):
    cfg = node.ctr_config(name=name, cmd=cmd)
    cfg.tty, cfg.stdin, cfg.stdin_once = tty, stdin, stdin_once
    ctr = node.create(pod, cfg=cfg)
    node.start(ctr)
    return ctr


@pytest.fixture
def handler():
    return ""


@pytest.fixture
def pod(node, handler):
    return node.run_pod(handler=handler)


@pytest.fixture
def sleeper(node, pod):
    return run_ctr(node, pod, "sleeper", ["sleep", "3600"])


def procs_named(needle):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if f.read().replace(b"\0", b" ").strip() == needle.encode():
                        out.append(int(p))
            except OSError:
                pass
    return out


# ---- exec -------------------------------------------------------------------------------

@pytest.mark.parametrize("handler", ["", "runsc"])
def test_exec_stdin_stdout_stderr_and_exit_code(node, sleeper):
    ws = WebSocket(exec_url(node, sleeper, ["sh", "-c", 'read l; echo "got $l"; echo oops >&2; exit 3'],
                            stdin=True))
    assert ws.status == 101
    ws.send(STDIN, b"hello\n")
    out = ws.collect()
    assert out[STDOUT] == b"got hello\n" and out[STDERR] == b"oops\n"
    st = status_of(out)
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode"
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_exec_success_and_stdin_close_v5(node, sleeper):
    ws = WebSocket(exec_url(node, sleeper, ["sh", "-c", "cat; echo done"], stdin=True, stderr=False),
                   protocol="v5.channel.k8s.io")
    data = os.urandom(300000)
    ws.send(STDIN, data)
    ws.send_raw(2, bytes([255, STDIN]))   # v5: the client closed stdin
    out = ws.collect()
    assert out[STDOUT] == data + b"done\n"
    assert status_of(out) == {"metadata": {}, "status": "Success"}


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_exec_tty_resize(node, sleeper):
    ws = WebSocket(exec_url(node, sleeper, ["sh"], stdin=True, stderr=False, tty=True))
    resize(ws, 100, 30)
    ws.send(STDIN, b"stty size; [ -t 0 ] && echo tty-$((40+2))\r")
    out = ws.collect(until=lambda o: b"tty-42\r\n" in o.get(STDOUT, b""))
    assert b"30 100\r\n" in out[STDOUT]
    resize(ws, 120, 40)
    ws.send(STDIN, b"stty size\r")
    out = ws.collect(until=lambda o: b"40 120\r\n" in o.get(STDOUT, b""))
    ws.send(STDIN, b"exit 5\r")
    out = ws.collect()
    assert status_of(out)["details"]["causes"][0]["message"] == "5"


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_exec_tty_is_a_terminal_of_the_container(node, sleeper):
    # the pty comes from the container's own devpts, so it has a name in there
    ws = WebSocket(exec_url(node, sleeper, ["sh", "-c", "tty; ls /dev/pts; [ -t 0 ] && [ -t 1 ] && "
                                            "echo both-ttys"], stdin=True, stderr=False, tty=True))
    out = ws.collect()
    lines = out[STDOUT].decode().replace("\r", "").split()
    assert re.fullmatch(r"/dev/pts/\d+", lines[0]), lines
    assert lines[0].rsplit("/", 1)[1] in lines[1:] and "both-ttys" in lines
    assert status_of(out)["status"] == "Success"


def test_exec_runs_with_the_containers_isolation(node, pod):
    sc = api_pb2.LinuxContainerSecurityContext(run_as_user=api_pb2.Int64Value(value=1234))
    cfg = node.ctr_config(name="u", cmd=["sleep", "3600"], sc=sc)
    ctr = node.create(pod, cfg=cfg)
    node.start(ctr)
    ws = WebSocket(exec_url(node, ctr, ["sh", "-c", "id -u; hostname; cat /proc/1/cmdline; echo"]))
    out = ws.collect()
    uid, host, init = out[STDOUT].decode().splitlines()[:3]
    assert uid == "1234" and host == node.pod_cfgs[pod].hostname
    assert init.replace("\0", " ").strip() == "sleep 3600"   # its own pid namespace
    assert status_of(out)["status"] == "Success"


def test_exec_missing_command_reports_an_error(node, sleeper):
    ws = WebSocket(exec_url(node, sleeper, ["no-such-command"]))
    out = ws.collect()
    st = status_of(out)
    assert st["reason"] == "InternalError" and "no-such-command" in st["message"]


def test_exec_client_going_away_kills_the_command(node, sleeper):
    ws = WebSocket(exec_url(node, sleeper, ["sleep", "987654"], stderr=False))
    wait_for(lambda: procs_named("sleep 987654"), what="the exec'd command")
    ws.close()
    wait_for(lambda: not procs_named("sleep 987654"), what="the command to be killed")
    assert node.status(sleeper).state == RUNNING


def test_exec_request_validation(node, pod, sleeper):
    e = rpc_error(node.rt.Exec, api_pb2.ExecRequest(container_id=sleeper, cmd=["sh"], stdout=True,
                                                     stderr=True, tty=True), timeout=10)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = rpc_error(node.rt.Exec, api_pb2.ExecRequest(container_id=sleeper, cmd=["sh"]), timeout=10)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = rpc_error(node.rt.Exec, api_pb2.ExecRequest(container_id=sleeper, stdout=True), timeout=10)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = rpc_error(exec_url, node, "0" * 64, ["true"])
    assert e.code() == grpc.StatusCode.NOT_FOUND
    created = node.create(pod, name="idle")
    e = rpc_error(exec_url, node, created, ["true"])
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_exec_url_is_single_use(node, sleeper):
    url = exec_url(node, sleeper, ["true"])
    assert WebSocket(url).collect().get(ERROR) is not None
    ws = WebSocket(url)
    assert ws.status == 404
    ws.close()


# ---- attach -----------------------------------------------------------------------------

@pytest.mark.parametrize("handler", ["", "runsc"])
def test_attach_sees_output_and_detaching_leaves_the_container(node, pod):
    ctr = run_ctr(node, pod, "ticker", ["sh", "-c", "i=0; while :; do echo tick $i; echo tock $i >&2;"
                                        " i=$((i+1)); sleep 0.2; done"])
    a, b = WebSocket(attach_url(node, ctr)), WebSocket(attach_url(node, ctr, stderr=False))
    out_a = a.collect(until=lambda o: o.get(STDOUT, b"").count(b"tick") >= 2 and STDERR in o)
    out_b = b.collect(until=lambda o: o.get(STDOUT, b"").count(b"tick") >= 2)
    assert b"tock" in out_a[STDERR] and STDERR not in out_b
    a.close()
    b.close()
    time.sleep(0.5)
    assert node.status(ctr).state == RUNNING
    c = WebSocket(attach_url(node, ctr, stderr=False))
    assert b"tick" in c.collect(until=lambda o: b"tick" in o.get(STDOUT, b""))[STDOUT]
    c.close()


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_attach_stdin_round_trip(node, pod):
    ctr = run_ctr(node, pod, "echo", ["sh", "-c", 'while read l; do echo "got $l"; done'], stdin=True)
    ws = WebSocket(attach_url(node, ctr, stdin=True, stderr=False))
    for word in (b"one", b"two"):
        ws.send(STDIN, word + b"\n")
        ws.collect(until=lambda o: b"got " + word + b"\n" in o.get(STDOUT, b""))
    ws.close()
    time.sleep(0.3)
    assert node.status(ctr).state == RUNNING   # no stdin_once: stdin stays open
    ws = WebSocket(attach_url(node, ctr, stdin=True, stderr=False))
    ws.send(STDIN, b"three\n")
    ws.collect(until=lambda o: b"got three\n" in o.get(STDOUT, b""))
    ws.close()


def test_attach_stdin_once_closes_stdin_after_the_first_session(node, pod):
    ctr = run_ctr(node, pod, "once", ["sh", "-c", 'cat; echo "stdin over"'], stdin=True, stdin_once=True)
    ws = WebSocket(attach_url(node, ctr, stdin=True, stderr=False), protocol="v5.channel.k8s.io")
    ws.send(STDIN, b"data\n")
    ws.collect(until=lambda o: o.get(STDOUT, b"") == b"data\n")
    ws.send_raw(2, bytes([255, STDIN]))
    out = ws.collect()   # the container exits, so the session ends
    assert out.get(STDOUT, b"").endswith(b"stdin over\n")
    assert status_of(out) == {"metadata": {}, "status": "Success"}
    st = node.wait_state(ctr, EXITED)
    assert st.exit_code == 0


def ctr_pid(node, ctr):
    info = json.loads(node.rt.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=ctr, verbose=True), timeout=10).info["info"])
    return info["pid"]


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_attach_tty_resize(node, pod):
    ctr = run_ctr(node, pod, "tty", ["sh"], tty=True, stdin=True)
    ws = WebSocket(attach_url(node, ctr, stdin=True, stderr=False, tty=True))
    resize(ws, 90, 25)
    time.sleep(0.2)
    ws.send(STDIN, b"stty size\r")
    ws.collect(until=lambda o: b"25 90\r\n" in o.get(STDOUT, b""))
    resize(ws, 132, 43)
    time.sleep(0.2)
    ws.send(STDIN, b"stty size\r")
    ws.collect(until=lambda o: b"43 132\r\n" in o.get(STDOUT, b""))
    ws.send(STDIN, b"exit 4\r")
    ws.collect()
    assert node.wait_state(ctr, EXITED).exit_code == 4


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_a_tty_containers_terminal_is_a_pty_of_its_own_devpts(node, pod):
    # made by the container's init in the container's devpts, not in the host's: `tty`
    # names a /dev/pts/N that exists in there, and /dev/console is the same terminal
    ctr = run_ctr(node, pod, "tty", ["sh"], tty=True, stdin=True)
    pid = ctr_pid(node, ctr)
    st = os.stat(f"/proc/{pid}/fd/0")
    assert st.st_dev == os.stat(f"/proc/{pid}/root/dev/pts").st_dev
    assert st.st_dev != os.stat("/dev/pts").st_dev
    ws = WebSocket(attach_url(node, ctr, stdin=True, stderr=False, tty=True))
    resize(ws, 250, 40)   # the line below is echoed on one line
    time.sleep(0.2)
    ws.send(STDIN, b"tty; ls -1 /dev/pts; [ -t 0 ] && [ -t 1 ] && echo both-$((1+1)); "
                   b"[ $(stat -c %t:%T /dev/console) = $(stat -c %t:%T $(tty)) ] && echo con-$((2+3))\r")
    out = ws.collect(until=lambda o: b"con-5\r\n" in o.get(STDOUT, b""))
    text = out[STDOUT].decode().replace("\r", "")   # the shell's echo of the line, then ours
    assert re.search(r"^/dev/pts/0\n0\nptmx\nboth-2\ncon-5$", text, re.M), text
    ws.send(STDIN, b"exit 6\r")
    ws.collect()
    assert node.wait_state(ctr, EXITED).exit_code == 6


def test_attach_validation(node, pod):
    created = node.create(pod, name="idle")
    e = rpc_error(attach_url, node, created)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    e = rpc_error(attach_url, node, "f" * 64)
    assert e.code() == grpc.StatusCode.NOT_FOUND


# ---- port-forward ------------------------------------------------------------------------

def forward(node, pod, port, payload):
    """One connection through a WebSocket port-forward: sends payload, returns the bytes
    that came back before the server ended it, and the error channel's text."""
    ws = WebSocket(pf_url(node, pod, [port]))
    assert ws.recv() == (0, struct.pack("<H", port)) and ws.recv() == (1, struct.pack("<H", port))
    if payload:
        ws.send(0, payload)
    out = ws.collect(until=lambda o: payload and len(o.get(0, b"")) >= len(payload))
    ws.close()
    return out.get(0, b""), out.get(1, b"").decode()


@pytest.mark.parametrize("handler", ["", "runsc"])
def test_port_forward_into_the_pod_network_namespace(node, pod):
    run_ctr(node, pod, "nc", ["busybox", "nc", "-ll", "-p", "8080", "-e", "cat"])
    data = b"hello through the pod's loopback\n"
    got = wait_for(lambda: forward(node, pod, 8080, data)[0] == data, what="the echo server")
    assert got
    big = os.urandom(200000)
    assert forward(node, pod, 8080, big)[0] == big

    # many at once, each its own connection to the pod
    results = [None] * 12

    def one(i):
        msg = f"conn {i}\n".encode() * 100
        results[i] = forward(node, pod, 8080, msg)[0] == msg
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(results)


def test_port_forward_pod_closing_ends_the_forward(node, pod):
    run_ctr(node, pod, "date", ["busybox", "nc", "-ll", "-p", "8081", "-e", "echo", "bye"])
    got = wait_for(lambda: forward(node, pod, 8081, b"")[0], what="the server's answer")
    assert got == b"bye\n"


def test_port_forward_reaches_the_pod_not_the_node(node, pod):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    try:
        data, err = forward(node, pod, port, b"x")
        assert data == b"" and "connect to localhost:%d" % port in err
        assert "error forwarding port %d to pod %s" % (port, pod) in err

        host_pod = node.run_pod(host_network=True)
        accepted = []
        t = threading.Thread(target=lambda: accepted.append(srv.accept()))
        t.start()
        ws = WebSocket(pf_url(node, host_pod, [port]))
        ws.recv(), ws.recv()
        ws.send(0, b"to the node")
        t.join(10)
        conn = accepted[0][0]
        assert conn.recv(100) == b"to the node"
        conn.sendall(b"from the node")
        conn.close()
        assert ws.collect().get(0) == b"from the node"
    finally:
        srv.close()


def test_port_forward_validation(node, pod):
    e = rpc_error(pf_url, node, "a" * 64, [80])
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = rpc_error(pf_url, node, pod, [70000])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    node.stop_pod(pod)
    e = rpc_error(pf_url, node, pod, [80])
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION


# ---- lifetime ---------------------------------------------------------------------------

def test_crispd_stops_cleanly_with_sessions_open(node, pod):
    from pod_helpers import start_again
    ctr = run_ctr(node, pod, "srv", ["busybox", "nc", "-ll", "-p", "8082", "-e", "cat"])
    wait_for(lambda: forward(node, pod, 8082, b"up")[0] == b"up", what="the echo server")
    ex = WebSocket(exec_url(node, ctr, ["sleep", "876543"], stderr=False))
    wait_for(lambda: procs_named("sleep 876543"), what="the exec'd command")
    at = WebSocket(attach_url(node, ctr, stderr=False))
    pf = WebSocket(pf_url(node, pod, [8082]))
    assert pf.recv() == (0, struct.pack("<H", 8082))
    t0 = time.time()
    assert node.d.stop() == 0
    assert time.time() - t0 < 8
    for ws in (ex, at, pf):
        ws.collect()   # ends: the server closed every connection
        ws.close()
    wait_for(lambda: not procs_named("sleep 876543"), what="the exec'd command to be killed")
    start_again(node)
    assert node.status(ctr).state == RUNNING   # containers outlive crispd
