"""A small SPDY/3.1 client for Kubernetes' streaming protocols, written for the tests
and the streaming bench: the HTTP upgrade kubelet's clients do (POST + Upgrade:
SPDY/3.1 + X-Stream-Protocol-Version), or the same SPDY bytes tunnelled in
WebSocket binary messages (subprotocol "SPDY/3.1+<protocol>", client-go's
tunneling dialer). Streams are opened by the client with a "streamtype" header, as
spdystream does; header blocks go out zlib-compressed without the SPDY dictionary
(a stream without FDICT needs none) and the server's header blocks are skipped, so
the client needs no copy of the dictionary. Like spdystream, it sends no
WINDOW_UPDATE and relies on TCP back-pressure."""
import base64
import hashlib
import json
import os
import socket
import struct
import threading
import urllib.parse
import zlib

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 1


class HandshakeError(Exception):
    def __init__(self, status, head):
        super().__init__(f"upgrade refused: {status}")
        self.status = status
        self.head = head


def _mask(data, key):
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def _read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise HandshakeError(0, buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return status, headers, rest, head


class _Tunnel:
    """The WebSocket framing around the SPDY byte stream."""

    def __init__(self, sock, rest):
        self.sock = sock
        self.buf = rest
        self.wlock = threading.Lock()

    def send(self, data):
        key = os.urandom(4)
        n = len(data)
        if n < 126:
            head = bytes([0x82, 0x80 | n])
        elif n < 65536:
            head = bytes([0x82, 0x80 | 126]) + struct.pack(">H", n)
        else:
            head = bytes([0x82, 0x80 | 127]) + struct.pack(">Q", n)
        with self.wlock:
            self.sock.sendall(head + key + _mask(data, key))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv(self):
        while True:
            self._need(2)
            op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            hl = 2
            if n == 126:
                self._need(4)
                n, hl = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, hl = struct.unpack(">Q", self.buf[2:10])[0], 10
            self._need(hl + n)
            payload, self.buf = self.buf[hl:hl + n], self.buf[hl + n:]
            if op == 8:
                raise EOFError
            if op in (0, 2) and payload:
                return payload


class _Plain:
    def __init__(self, sock, rest):
        self.sock = sock
        self.pending = rest
        self.wlock = threading.Lock()

    def send(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def recv(self):
        if self.pending:
            out, self.pending = self.pending, b""
            return out
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError
        return chunk


class Stream:
    def __init__(self, conn, sid, on_data=None):
        self.conn, self.id = conn, sid
        self.data = bytearray()
        self.on_data = on_data
        self.fin = threading.Event()
        self.reset = False

    def write(self, data, fin=False):
        self.conn._data(self.id, data, fin)

    def close(self):
        self.conn._data(self.id, b"", True)

    def wait(self, timeout=60):
        if not self.fin.wait(timeout):
            raise TimeoutError(f"stream {self.id} did not end")
        return bytes(self.data)


class SpdyConn:
    def __init__(self, url, protocol, tunnel=False, timeout=30):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tunnel:
            key = base64.b64encode(os.urandom(16)).decode()
            self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                               f"Sec-WebSocket-Version: 13\r\n"
                               f"Sec-WebSocket-Protocol: SPDY/3.1+{protocol}\r\n\r\n").encode())
        else:
            self.sock.sendall((f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: Upgrade\r\n"
                               f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n"
                               "Content-Length: 0\r\n\r\n").encode())
        status, self.headers, rest, head = _read_head(self.sock)
        if status != 101:
            self.sock.close()
            raise HandshakeError(status, head)
        if tunnel:
            want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            assert self.headers["sec-websocket-accept"] == want
            assert self.headers["sec-websocket-protocol"] == f"SPDY/3.1+{protocol}"
        self.io = _Tunnel(self.sock, rest) if tunnel else _Plain(self.sock, rest)
        self.sock.settimeout(None)
        self.z = zlib.compressobj()
        self.zlock = threading.Lock()
        self.next_id = 1
        self.streams = {}
        self.goaway = threading.Event()
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    # writing
    def _control(self, typ, flags, payload):
        self.io.send(struct.pack(">HHI", 0x8003, typ, flags << 24 | len(payload)) + payload)

    def _data(self, sid, data, fin):
        for off in range(0, max(len(data), 1), 65536):
            chunk = data[off:off + 65536]
            last = off + 65536 >= len(data)
            flags = FLAG_FIN if fin and last else 0
            self.io.send(struct.pack(">II", sid, flags << 24 | len(chunk)) + chunk)

    def open(self, headers, fin=False, on_data=None):
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            k, v = k.encode(), str(v).encode()
            block += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        with self.zlock:   # one compression context per connection, in stream order
            sid = self.next_id
            self.next_id += 2
            st = Stream(self, sid, on_data)
            self.streams[sid] = st
            z = self.z.compress(block) + self.z.flush(zlib.Z_SYNC_FLUSH)
            self._control(SYN_STREAM, FLAG_FIN if fin else 0, struct.pack(">IIBB", sid, 0, 0, 0) + z)
        return st

    def ping(self, pid=1):
        self._control(PING, 0, struct.pack(">I", pid))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # reading
    def _read_loop(self):
        buf = b""
        try:
            while True:
                while len(buf) < 8:
                    buf += self.io.recv()
                n = int.from_bytes(buf[5:8], "big")
                while len(buf) < 8 + n:
                    buf += self.io.recv()
                frame, buf = buf[:8 + n], buf[8 + n:]
                self._frame(frame)
        except (EOFError, OSError):
            pass
        self.goaway.set()
        for st in list(self.streams.values()):
            st.fin.set()

    def _frame(self, f):
        flags = f[4]
        if not f[0] & 0x80:
            st = self.streams.get(struct.unpack(">I", f[:4])[0] & 0x7FFFFFFF)
            if st is None:
                return
            if st.on_data:
                st.on_data(f[8:])
            else:
                st.data += f[8:]
            if flags & FLAG_FIN:
                st.fin.set()
            return
        typ = struct.unpack(">H", f[2:4])[0]
        if typ == RST_STREAM:
            st = self.streams.get(struct.unpack(">I", f[8:12])[0] & 0x7FFFFFFF)
            if st:
                st.reset = True
                st.fin.set()
        elif typ == PING:
            self.pong = f[8:12]
        elif typ == GOAWAY:
            self.goaway.set()


def port_forward(conn, port, request_id):
    """Opens one forwarded connection (error stream, then data stream, as client-go
    does); returns (data, error) streams."""
    err = conn.open({"streamtype": "error", "port": port, "requestid": request_id}, fin=True)
    data = conn.open({"streamtype": "data", "port": port, "requestid": request_id})
    return data, err


def remote_command(conn, stdin=False, stdout=True, stderr=True, tty=False):
    """Opens the exec/attach streams as client-go's v4 executor does."""
    s = {"error": conn.open({"streamtype": "error"})}
    if stdin:
        s["stdin"] = conn.open({"streamtype": "stdin"})
    if stdout:
        s["stdout"] = conn.open({"streamtype": "stdout"})
    if stderr and not tty:
        s["stderr"] = conn.open({"streamtype": "stderr"})
    if tty:
        s["resize"] = conn.open({"streamtype": "resize"})
    return s


def status(streams, timeout=60):
    raw = streams["error"].wait(timeout)
    return json.loads(raw) if raw else None
