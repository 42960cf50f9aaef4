"""Registries written in Python for the image service tests.

A real registry cannot lie, so LyingRegistry serves images built here (layer tars made
with tarfile and gzip, digests and diff_ids computed here) and misbehaves on request for
one blob: wrong bytes, a cut-short body, 500s before the right bytes, or a slow drip.
RegistryFront sits before a real registry and proxies to it, counting what it was asked
and optionally requiring Bearer tokens from its own token endpoint (Basic credentials in,
{"token": ...} out), the way Docker Hub and most hosted registries do.

Both serve plain http on 127.0.0.1 with a free port, on daemon threads; close() stops them.
"""
import base64
import gzip
import hashlib
import http.client
import io
import json
import secrets
import socket
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- building layers and images ---------------------------------------------------

def tar_layer(entries, fmt=tarfile.PAX_FORMAT):
    """An uncompressed tar from (name, kind, arg) entries: kind "file" (arg: bytes),
    "dir", "symlink" (arg: target), "hardlink" (arg: target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 0
            data = None
            if kind == "file":
                data = arg
                ti.size = len(arg)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = arg
                ti.mode = 0o777
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = arg
                ti.mode = 0o644
            else:
                raise ValueError(kind)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def last_data_end(raw):
    """Offset where the last entry's data ends in tar bytes (no padding, no end blocks)."""
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as t:
        last = t.getmembers()[-1]
        return last.offset_data + last.size


def gz(raw):
    return gzip.compress(raw, mtime=0)


class Image:
    """A single-platform OCI image: layers[i] is the gzip blob of tars[i]."""

    def __init__(self, tars, user="", diff_ids=None):
        self.tars = list(tars)
        self.layers = [gz(t) for t in self.tars]
        self.diff_ids = list(diff_ids or [sha256(t) for t in self.tars])
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "User": user},
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
        }, separators=(",", ":")).encode()
        self.config_digest = sha256(self.config)
        self.layer_digests = [sha256(b) for b in self.layers]
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config_digest,
                       "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": d, "size": len(b)}
                       for d, b in zip(self.layer_digests, self.layers)],
        }, separators=(",", ":")).encode()
        self.manifest_digest = sha256(self.manifest)

    def chain_ids(self):
        out = []
        for d in self.diff_ids:
            out.append(d if not out else sha256(f"{out[-1]} {d}".encode()))
        return out


def good_base_layer(tag):
    """A small well-behaved layer, unique per tag (so each test has its own chain)."""
    return tar_layer([("etc", "dir", None), ("etc/base.txt", "file", tag.encode() + b"\n"),
                      ("big.bin", "file", secrets.token_bytes(4096))])


# ---- a small HTTP server base ------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that hangs up (a killed pull helper) is part of the tests
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Base:
    """Runs handler_cls on 127.0.0.1:<free port>; records every request."""

    def __init__(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._count(self)
                try:
                    outer.handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_HEAD = do_GET

        self.lock = threading.Lock()
        self.requests = []          # (method, path)
        self.stopping = threading.Event()
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _count(self, h):
        with self.lock:
            self.requests.append((h.command, h.path.split("?")[0]))

    def count(self, method, path_suffix):
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))

    def close(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def reply(h, status, body=b"", headers=None, content_type="application/json"):
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    @staticmethod
    def error(h, status, code, message, headers=None):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        _Base.reply(h, status, body, headers)


def _split(path):
    """/v2/<name>/(manifests|blobs)/<ref> -> (name, kind, ref), else None."""
    path = path.split("?")[0]
    if not path.startswith("/v2/"):
        return None
    parts = path[4:].rsplit("/", 2)
    if len(parts) != 3 or parts[1] not in ("manifests", "blobs"):
        return None
    return parts[0], parts[1], parts[2]


# ---- the lying registry -------------------------------------------------------------

class LyingRegistry(_Base):
    """Serves the images added with add(); blob behaviour per digest:
      ("wrong", bytes)       serve these bytes instead of the blob
      ("truncate",)          announce the full length, send half, close the connection
      ("fail", n)            answer 500 to the first n requests, then the right bytes
      ("drip", seconds)      send the right bytes in small pieces over that long
      ("drip", seconds, b)   the same with the bytes b instead (a slow lie)
    Manifest behaviour per "<name>:<ref>": ("digest-header", value) sends a wrong
    Docker-Content-Digest."""

    def __init__(self):
        self.manifests = {}   # (name, ref) -> (bytes, media type)
        self.blobs = {}       # digest -> bytes
        self.blob_faults = {}
        self.manifest_faults = {}
        self.served = {}      # digest -> requests seen
        super().__init__()

    def add(self, name, tag, image, faults=None):
        for d, b in zip(image.layer_digests, image.layers):
            self.blobs[d] = b
        self.blobs[image.config_digest] = image.config
        self.manifests[(name, tag)] = (image.manifest, OCI_MANIFEST)
        self.manifests[(name, image.manifest_digest)] = (image.manifest, OCI_MANIFEST)
        self.blob_faults.update(faults or {})
        return f"{self.host}/{name}:{tag}"

    def handle(self, h):
        if h.path.split("?")[0] in ("/v2/", "/v2"):
            return self.reply(h, 200, b"{}")
        parsed = _split(h.path)
        if not parsed:
            return self.error(h, 404, "NOT_FOUND", "no such endpoint")
        name, kind, ref = parsed
        if kind == "manifests":
            return self.serve_manifest(h, name, ref)
        return self.serve_blob(h, ref)

    def serve_manifest(self, h, name, ref):
        m = self.manifests.get((name, ref))
        if not m:
            return self.error(h, 404, "MANIFEST_UNKNOWN", f"manifest {name}:{ref} unknown")
        body, mt = m
        dcd = sha256(body)
        fault = self.manifest_faults.get(f"{name}:{ref}")
        if fault and fault[0] == "digest-header":
            dcd = fault[1]
        self.reply(h, 200, body, {"Docker-Content-Digest": dcd}, content_type=mt)

    def serve_blob(self, h, digest):
        body = self.blobs.get(digest)
        if body is None:
            return self.error(h, 404, "BLOB_UNKNOWN", f"blob {digest} unknown")
        with self.lock:
            seen = self.served.get(digest, 0)
            self.served[digest] = seen + 1
        fault = self.blob_faults.get(digest)
        kind = fault[0] if fault else None
        if kind == "wrong":
            return self.reply(h, 200, fault[1], content_type="application/octet-stream")
        if kind == "fail" and seen < fault[1]:
            return self.error(h, 500, "UNKNOWN", "the registry is having a bad day")
        if kind == "truncate":
            return self.send_cut(h, body)
        if kind == "drip":
            return self.send_drip(h, fault[2] if len(fault) > 2 else body, fault[1])
        self.reply(h, 200, body, {"Docker-Content-Digest": digest},
                   content_type="application/octet-stream")

    @staticmethod
    def send_cut(h, body):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:len(body) // 2])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    def send_drip(self, h, body, seconds):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        pieces = 40
        step = max(1, -(-len(body) // pieces))
        for i in range(0, len(body), step):
            if self.stopping.is_set():
                h.close_connection = True
                return
            h.wfile.write(body[i:i + step])
            h.wfile.flush()
            time.sleep(seconds / pieces)


# ---- a front for a real registry: counting proxy and token auth ---------------------

class RegistryFront(_Base):
    """Proxies /v2/ to the registry at upstream ("127.0.0.1:port").

    token_creds=(user, password): every /v2/ request needs "Authorization: Bearer <t>"
    with a token from GET /token, which needs those Basic credentials; otherwise 401
    with a Bearer challenge naming /token. blob_delay delays every blob answer."""

    def __init__(self, upstream, token_creds=None, blob_delay=0.0):
        self.upstream = upstream
        self.token_creds = token_creds
        self.blob_delay = blob_delay
        self.tokens = set()
        self.token_requests = []   # (Authorization header, query)
        super().__init__()

    def challenge(self, scope=None):
        c = f'Bearer realm="http://{self.host}/token",service="crisp-test"'
        return c + (f',scope="{scope}"' if scope else "")

    def handle(self, h):
        path = h.path.split("?")[0]
        if path == "/token":
            return self.issue_token(h)
        if self.token_creds:
            got = h.headers.get("Authorization", "")
            if not (got.startswith("Bearer ") and got[7:] in self.tokens):
                parsed = _split(path)
                scope = f"repository:{parsed[0]}:pull" if parsed else None
                return self.error(h, 401, "UNAUTHORIZED", "authentication required",
                                  {"WWW-Authenticate": self.challenge(scope)})
        parsed = _split(path)
        if parsed and parsed[1] == "blobs" and self.blob_delay:
            time.sleep(self.blob_delay)
        self.proxy(h)

    def issue_token(self, h):
        auth = h.headers.get("Authorization", "")
        with self.lock:
            self.token_requests.append((auth, h.path.partition("?")[2]))
        user, pw = self.token_creds or ("", "")
        want = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        if auth != want:
            return self.error(h, 401, "UNAUTHORIZED", "bad credentials for the token server")
        tok = secrets.token_hex(16)
        with self.lock:
            self.tokens.add(tok)
        self.reply(h, 200, json.dumps({"token": tok, "expires_in": 300}).encode())

    def proxy(self, h):
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() in ("accept", "range")}
            conn.request(h.command, h.path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            keep = {k: v for k, v in r.getheaders()
                    if k.lower() in ("docker-content-digest", "etag", "location")}
            self.reply(h, r.status, body, keep,
                       content_type=r.getheader("Content-Type", "application/octet-stream"))
        finally:
            conn.close()
