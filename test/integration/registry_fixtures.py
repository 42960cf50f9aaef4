"""Session-scoped real registries for the image service tests, and helpers to look at
what a pull left in crispd's store.

`registry`: Debian's docker-registry started once per test session by
test/fixtures/registry.sh, with the standard images (push) and the extra ones
(push-extra); `auth_registry`: another one that requires htpasswd Basic auth, with the
standard images. Both are stopped by their PID at the end and their directories removed.
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

REGISTRY_SH = os.path.abspath(os.path.join(os.path.dirname(__file__), "../fixtures/registry.sh"))
AUTH_USER, AUTH_PASS = "crisp", "s3cret-Pw"

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids):
    out = []
    for d in diff_ids:
        out.append(d if not out else sha256(f"{out[-1]} {d}".encode()))
    return out


class Registry:
    """A registry.sh registry: host "127.0.0.1:port", its images' digests, raw reads."""

    def __init__(self, d, creds=None):
        self.dir = d
        self.creds = creds
        with open(os.path.join(d, "port")) as f:
            self.port = int(f.read())
        with open(os.path.join(d, "pid")) as f:
            self.pid = int(f.read())
        self.host = f"127.0.0.1:{self.port}"
        self.digests = {}
        for name in ("digests", "digests.extra"):
            try:
                with open(os.path.join(d, name)) as f:
                    for line in f:
                        k, _, v = line.strip().partition("=")
                        self.digests[k] = v
            except FileNotFoundError:
                pass

    def ref(self, name):
        """"busybox:1" -> "127.0.0.1:port/crisp-test/busybox:1"."""
        return f"{self.host}/crisp-test/{name}"

    def get(self, path, accept=None):
        rq = urllib.request.Request(f"http://{self.host}{path}")
        if accept:
            rq.add_header("Accept", accept)
        if self.creds:
            tok = base64.b64encode(":".join(self.creds).encode()).decode()
            rq.add_header("Authorization", "Basic " + tok)
        with urllib.request.urlopen(rq, timeout=10) as r:
            return r.read()

    def manifest(self, repo, ref):
        return json.loads(self.get(f"/v2/{repo}/manifests/{ref}", ACCEPT))

    def image_manifest(self, repo, ref):
        """The linux/amd64 image manifest of repo:ref (through an index if it is one)."""
        m = self.manifest(repo, ref)
        for d in m.get("manifests", []):
            p = d.get("platform", {})
            if p.get("os") == "linux" and p.get("architecture") == "amd64":
                return self.manifest(repo, d["digest"])
        return m

    def config(self, repo, ref):
        digest = self.image_manifest(repo, ref)["config"]["digest"]
        return digest, json.loads(self.get(f"/v2/{repo}/blobs/{digest}"))

    def image_id(self, name):
        """"layers:1" -> the image ID crispd must report (the config digest)."""
        repo, _, tag = name.rpartition(":")
        return self.config(f"crisp-test/{repo}", tag)[0]

    def chains(self, name):
        repo, _, tag = name.rpartition(":")
        return chain_ids(self.config(f"crisp-test/{repo}", tag)[1]["rootfs"]["diff_ids"])


def _run(*args):
    subprocess.run(["bash", REGISTRY_SH, *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=120)


def _stop(d):
    """Stops the registry by its recorded PID (not our child: registry.sh detached it)."""
    try:
        with open(os.path.join(d, "pid")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        pid = None
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(d, ignore_errors=True)


def _start(creds=None, extra=True):
    d = tempfile.mkdtemp(prefix="crisp-registry-")
    try:
        _run("start", d, *([":".join(creds)] if creds else []))
        _run("push", d)
        if extra:
            _run("push-extra", d)
    except BaseException:
        _stop(d)
        raise
    return d


@pytest.fixture(scope="session")
def registry():
    d = _start()
    yield Registry(d)
    _stop(d)
    assert not os.path.exists(d)


@pytest.fixture(scope="session")
def auth_registry():
    d = _start((AUTH_USER, AUTH_PASS), extra=False)
    yield Registry(d, (AUTH_USER, AUTH_PASS))
    _stop(d)


# ---- what a pull left in the store -------------------------------------------------

def layer_dirs(root):
    """Names of the directories under <root>/layers (unpacked layers and any debris)."""
    p = os.path.join(root, "layers")
    if not os.path.isdir(p):
        return set()
    return {n for n in os.listdir(p) if os.path.isdir(os.path.join(p, n))}


def tmp_debris(root):
    """Every path under root whose name marks work in progress ("*.tmp-*")."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.join(dirpath, n) for n in dirnames + filenames if ".tmp-" in n]
    return out


def image_records(root):
    p = os.path.join(root, "images")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def layer_path(root, chain_id):
    return os.path.join(root, "layers", chain_id.split(":", 1)[1])


def du(*paths):
    """(bytes, inodes) under paths as `du -x` counts them (hard links once)."""
    seen, total = set(), 0
    for path in paths:
        for dirpath, dirnames, filenames in os.walk(path):
            for n in [dirpath] + [os.path.join(dirpath, f) for f in filenames + dirnames]:
                st = os.lstat(n)
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total, len(seen)
