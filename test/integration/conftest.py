"""Integration harness: a real crispd on a temporary socket, root and state dir,
driven by a gRPC client generated from cri/api.proto (build/py, made by `make`).

Every daemon a test starts is stopped with SIGTERM at teardown, and the teardown
asserts that it exited 0, removed its socket, and left no child process and no
mount under its directories."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

PYGEN = os.environ.get("CRISP_PYGEN") or os.path.join(os.path.dirname(__file__), "../../build/py")
sys.path.insert(0, os.path.abspath(PYGEN))
CRISPD = os.environ.get("CRISPD") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "../../build/bin/crispd"))

import grpc  # noqa: E402
import api_pb2  # noqa: E402
import api_pb2_grpc  # noqa: E402


def children_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(p))
        except (OSError, IndexError):
            pass
    return out


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(prefix)]


class Crispd:
    """One crispd process and a client for it."""

    def __init__(self, base, config=None, extra_args=(), env=None):
        self.base = base
        self.root = os.path.join(base, "root")
        self.state = os.path.join(base, "state")
        self.sock = os.path.join(base, "run", "crisp.sock")
        self.log_path = os.path.join(base, "crispd.log")
        self.config_path = os.path.join(base, "config.json")
        cfg = {"cni": {"conf_dir": os.path.join(base, "cni")}}
        cfg.update(config or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.args = [CRISPD, "--config", self.config_path, "--root", self.root,
                     "--state", self.state, "--listen", self.sock, *extra_args]
        self.env = env
        self.proc = None
        self.channel = None

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"crispd exited {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.sock):
                try:
                    self.connect()
                    self.runtime.Version(api_pb2.VersionRequest(), timeout=2)
                    return
                except grpc.RpcError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"crispd not ready in {timeout}s:\n{self.log()}")

    def connect(self):
        if self.channel is None:
            self.channel = grpc.insecure_channel(
                "unix://" + self.sock,
                options=[("grpc.max_send_message_length", 64 << 20),
                         ("grpc.max_receive_message_length", 64 << 20)])
            self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
            self.image = api_pb2_grpc.ImageServiceStub(self.channel)
        return self.channel

    def raw(self, path, payload, timeout=5):
        """Calls a method with raw request bytes; returns raw response bytes."""
        call = self.connect().unary_unary(path, request_serializer=None, response_deserializer=None)
        return call(payload, timeout=timeout)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        kids = children_of(self.proc.pid)
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"crispd did not stop within {timeout}s:\n{self.log()}")
        self.logf.close()
        self.leftover_children = [k for k in kids if os.path.exists(f"/proc/{k}")]
        return rc


@pytest.fixture
def tmpbase():
    with tempfile.TemporaryDirectory(prefix="crisp-it-") as d:
        yield d
        assert mounts_under(d) == [], f"mounts left under {d}"


@pytest.fixture
def make_crispd(tmpbase):
    """Factory: make_crispd(config=..., name=...) -> started Crispd."""
    started = []

    def make(config=None, name="d", start=True, extra_args=()):
        base = os.path.join(tmpbase, name)
        os.makedirs(base, exist_ok=True)
        d = Crispd(base, config, extra_args)
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            rc = d.stop()
            assert rc == 0, f"crispd exited {rc} on SIGTERM:\n{d.log()}"
            assert not os.path.exists(d.sock), "socket left behind"
            assert d.leftover_children == [], f"children left: {d.leftover_children}"


@pytest.fixture
def crispd(make_crispd):
    return make_crispd()


# the image service tests' session-scoped real registries (see registry_fixtures.py)
from registry_fixtures import auth_registry, registry  # noqa: E402,F401
# the pod and container lifecycle tests' fixtures: CNI network, cgroup parents, a node
from pod_helpers import cgroup_parents, cni_net, node  # noqa: E402,F401
