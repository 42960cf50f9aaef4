"""deploy/: the files a node needs, checked offline. The systemd units go through
`systemd-analyze verify`; the configs parse and crispd accepts them; the kind node
recipe copies only files that exist in the repository or in `make install DESTDIR=...`;
the kind shims do what `kind load` asks of them against a real crispd. kind itself
cannot run here (no docker, no registry access): deploy/kind/README.md says so."""
import configparser
import json
import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import CRISPD, api_pb2
from pod_helpers import rpc_error

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DEPLOY = os.path.join(REPO, "deploy")
KIND = os.path.join(DEPLOY, "kind")
SOCKET_URL = "unix:///run/crisp/crisp.sock"
INSTALLED = ["usr/local/bin/crispd", "usr/local/bin/crisp-pull", "usr/local/bin/crisp-monitor",
             "etc/systemd/system/crispd.service", "etc/crisp/config.json", "etc/crictl.yaml",
             "usr/local/share/doc/crisp/README.md", "usr/local/share/doc/crisp/kubelet.md"]
DOCS = [p for p in INSTALLED if "/doc/" in p]


def deploy_json(*path):
    with open(os.path.join(DEPLOY, *path)) as f:
        return json.load(f)


def read(*path):
    with open(os.path.join(DEPLOY, *path)) as f:
        return f.read()


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    """`make install DESTDIR=...` of the build under test (build/ or build/asan/)."""
    d = str(tmp_path_factory.mktemp("destdir"))
    b = os.path.dirname(os.path.dirname(CRISPD))
    args = ["make", "--no-print-directory", "-C", REPO, "install", f"DESTDIR={d}", f"B={b}"]
    if os.path.basename(b) == "asan":
        args.append("SAN=1")
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def unit(text):
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str
    p.read_string(text)
    return p


# ---- make install ----------------------------------------------------------------------

def test_make_install_puts_every_node_file_in_place(destdir):
    found = {os.path.relpath(os.path.join(dp, f), destdir)
             for dp, _, fs in os.walk(destdir) for f in fs}
    assert set(INSTALLED) <= found
    assert {f for f in found - set(INSTALLED) if not f.startswith("usr/local/bin/")} == set()
    for b in INSTALLED[:3]:
        assert os.access(os.path.join(destdir, b), os.X_OK)
    with open(os.path.join(destdir, "etc/crisp/config.json")) as f:
        assert json.load(f) == deploy_json("config.json")
    r = subprocess.run([os.path.join(destdir, "usr/local/bin/crispd"), "--version"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("crispd ")


def test_installed_crispd_finds_its_helpers_and_accepts_the_shipped_config(make_crispd,
                                                                          destdir):
    d = make_crispd(start=False, config=deploy_json("config.json"))
    d.args[0] = os.path.join(destdir, "usr/local/bin/crispd")
    d.start()
    st = d.runtime.Status(api_pb2.StatusRequest(verbose=True), timeout=5)
    cfg = json.loads(st.info["config"])
    assert cfg["cgroup_driver"] == "cgroupfs"
    # crispd starts only when crisp-pull is next to it; the helper then answers a pull
    # (nothing listens on port 1: it says so)
    e = rpc_error(d.image.PullImage, api_pb2.PullImageRequest(
        image=api_pb2.ImageSpec(image="127.0.0.1:1/none:1")), timeout=60)
    assert "127.0.0.1:1" in e.details()


# ---- the systemd unit --------------------------------------------------------------------

def verify_units(tmp_path, texts):
    """Runs systemd-analyze verify on units written to tmp_path; returns its output."""
    paths = []
    for name, text in texts.items():
        p = tmp_path / name
        p.write_text(text)
        paths.append(str(p))
    r = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_crispd_unit_keys(destdir):
    u = unit(read("crispd.service"))
    s = u["Service"]
    assert s["KillMode"] == "process"          # containers outlive a daemon restart
    assert s["Delegate"] == "yes"
    assert s["Restart"] == "always" and int(s["RestartSec"]) <= 5
    assert int(s["LimitNOFILE"]) >= 1 << 20
    assert s["TasksMax"] == "infinity" and s["LimitNPROC"] == "infinity"
    assert int(s["OOMScoreAdjust"]) == -999
    assert int(s["TimeoutStopSec"]) > 10       # crispd's own grace is 10 s
    # systemd would empty /run/crisp on stop: the running containers' state is there
    assert "RuntimeDirectory" not in s and "RuntimeDirectoryPreserve" not in s
    argv = s["ExecStart"].split()
    assert argv[:3] == ["/usr/local/bin/crispd", "--config", "/etc/crisp/config.json"]
    for p in (argv[0], argv[2]):
        assert os.path.exists(os.path.join(destdir, p.lstrip("/"))), p
    assert "kubelet.service" in u["Unit"]["Before"].split()
    for doc in u["Unit"]["Documentation"].split():   # the docs it names are installed
        assert os.path.exists(os.path.join(destdir, doc[len("file:///"):])), doc
    assert u["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze here")
def test_units_pass_systemd_analyze_verify(tmp_path, destdir):
    installed = os.path.join(destdir, "usr/local/bin")
    crispd = read("crispd.service").replace("/usr/local/bin/", installed + "/")
    preload = read("kind", "crisp-preload.service").replace(
        "/usr/local/bin/crisp-kind-preload", os.path.join(KIND, "crisp-kind-preload"))
    rc, out = verify_units(tmp_path, {"crispd.service": crispd, "crisp-preload.service": preload})
    assert rc == 0 and out == "", out
    # and the check is real: a bad value is reported
    bad = tmp_path / "bad"
    bad.mkdir()
    rc, out = verify_units(bad, {"crispd.service": crispd.replace("KillMode=process",
                                                                  "KillMode=bogus")})
    assert "kill mode" in out.lower(), out


def test_kubelet_drop_in_orders_kubelet_after_crispd():
    u = unit(read("kind", "kubelet-crispd.conf"))
    for key in ("After", "Wants"):
        assert {"crispd.service", "crisp-preload.service"} <= set(u["Unit"][key].split())


# ---- configs and manifests ----------------------------------------------------------------

def test_crictl_yaml_points_at_the_configured_socket():
    c = yaml.safe_load(read("crictl.yaml"))
    listen = "unix://" + deploy_json("config.json")["listen"]
    assert c["runtime-endpoint"] == c["image-endpoint"] == listen == SOCKET_URL


def test_kubelet_doc_names_the_endpoints_crispd_listens_on():
    doc = read("kubelet.md")
    assert f"--container-runtime-endpoint={SOCKET_URL}" in doc
    assert f"--image-service-endpoint={SOCKET_URL}" in doc
    assert "KubeletCgroupDriverFromCRI" in doc and "RuntimeConfig" in doc


def test_runtime_classes_name_handlers_crispd_serves(make_crispd):
    docs = [d for d in yaml.safe_load_all(read("runtimeclasses.yaml")) if d]
    assert {d["kind"] for d in docs} == {"RuntimeClass"}
    assert all(d["apiVersion"] == "node.k8s.io/v1" for d in docs)
    handlers = {d["handler"] for d in docs}
    assert handlers == {"runc", "runsc"}
    for i, cfg in enumerate((deploy_json("config.json"), deploy_json("kind", "config.json"))):
        assert handlers <= set(cfg["runtimes"])
        d = make_crispd(name=f"rc{i}", config=cfg)
        st = d.runtime.Status(api_pb2.StatusRequest(), timeout=5)
        assert handlers <= {h.name for h in st.runtime_handlers}
        d.stop()


def test_kind_cluster_config_points_kubeadm_and_kubelet_at_crispd():
    c = yaml.safe_load(read("kind", "cluster.yaml"))
    assert c["kind"] == "Cluster" and c["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert "containerdConfigPatches" not in c   # no containerd on these nodes
    node_cfg = deploy_json("kind", "config.json")
    url = "unix://" + node_cfg["listen"]
    assert url == SOCKET_URL
    patches = {}
    for text in c["kubeadmConfigPatches"]:
        p = yaml.safe_load(text)
        patches[p["kind"]] = p
    assert patches["InitConfiguration"]["nodeRegistration"]["criSocket"] == url
    assert patches["JoinConfiguration"]["nodeRegistration"]["criSocket"] == url
    k = patches["KubeletConfiguration"]
    assert k["containerRuntimeEndpoint"] == k["imageServiceEndpoint"] == url
    assert k["cgroupDriver"] == node_cfg["cgroup_driver"]
    tag = re.search(r"ARG KIND_NODE_IMAGE=kindest/node:(\S+)", read("kind", "Dockerfile")).group(1)
    assert {n["image"] for n in c["nodes"]} == {f"crisp/kind-node:{tag}"}
    assert {n["role"] for n in c["nodes"]} == {"control-plane", "worker"}


def dockerfile_instructions(text):
    """(instruction, arguments) with continuations joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            op, _, args = cur.strip().partition(" ")
            out.append((op.upper(), args.strip()))
            cur = ""
    return out


def test_kind_recipe_copies_only_files_that_exist(destdir):
    ins = dockerfile_instructions(read("kind", "Dockerfile"))
    froms = [a for op, a in ins if op == "FROM"]
    assert froms == ["debian:bookworm AS build", "${KIND_NODE_IMAGE}"]
    copies = [a.split() for op, a in ins if op == "COPY"]
    from_build, from_repo, dests = [], [], []
    for c in copies:
        if c[0] == "--from=build":
            from_build += c[1:-1]
        elif c[:2] != [".", "/src"]:
            from_repo += c[:-1]
        dests.append(c[-1])
    for src in from_build:
        assert src.startswith("/out/"), src
        assert os.path.exists(os.path.join(destdir, src[len("/out/"):])), src
    # crispd's three processes, its unit and crictl.yaml (the node has its own config)
    assert sorted(s[len("/out/"):] for s in from_build) == \
        sorted(p for p in INSTALLED if p != "etc/crisp/config.json" and p not in DOCS)
    for src in from_repo:
        assert os.path.isfile(os.path.join(REPO, src)), src
    assert set(os.listdir(KIND)) - {"README.md", "Dockerfile", "cluster.yaml"} == \
        {os.path.relpath(s, "deploy/kind") for s in from_repo}
    for exe in ("ctr", "containerd", "crisp-kind-preload"):
        assert os.access(os.path.join(KIND, exe), os.X_OK), exe
    assert "/etc/crisp/config.json" in dests and "/etc/crictl.yaml" in dests
    runs = " ".join(a for op, a in ins if op == "RUN")
    assert "systemctl enable crispd.service crisp-preload.service" in runs
    assert "ln -s /dev/null /etc/systemd/system/containerd.service" in runs


# ---- the kind shims against a real crispd ------------------------------------------------

@pytest.fixture(scope="module")
def docker_archive(registry, tmp_path_factory):
    p = str(tmp_path_factory.mktemp("kind") / "app.tar")
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                    f"docker://{registry.ref('base:1')}", f"docker-archive:{p}:kind.test/app:dev"],
                   check=True, timeout=120)
    return p


def shim(d, *argv, stdin=None):
    env = dict(os.environ, CRISPD=CRISPD, CRISP_STATE=d.state)
    return subprocess.run(list(argv), stdin=stdin, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("argv", [
    ["--namespace=k8s.io", "images", "import", "--all-platforms", "--digests",
     "--snapshotter=overlayfs", "-"],                        # kind 0.17+
    ["--namespace=k8s.io", "images", "import", "--digests", "-"],   # kind 0.27+
    ["--namespace=k8s.io", "images", "import", "-"],          # older kinds
])
def test_kind_load_through_the_ctr_shim_imports_into_crispd(crispd, registry, docker_archive,
                                                            argv):
    with open(docker_archive, "rb") as f:
        r = shim(crispd, os.path.join(KIND, "ctr"), *argv, stdin=f)
    assert r.returncode == 0, r.stderr
    img = crispd.image.ImageStatus(api_pb2.ImageStatusRequest(
        image=api_pb2.ImageSpec(image="kind.test/app:dev")), timeout=5).image
    assert img.id == registry.image_id("base:1")
    assert list(img.repo_tags) == ["kind.test/app:dev"]


def test_ctr_shim_refuses_everything_else(crispd):
    for argv in (["images", "ls"], ["--namespace=k8s.io", "containers", "list"],
                 ["images", "import", "--weird", "-"], ["images", "import"]):
        r = shim(crispd, os.path.join(KIND, "ctr"), *argv)
        assert r.returncode == 1 and "crictl" in r.stderr, (argv, r.stderr)


def test_containerd_shim_answers_config_dump_only():
    r = subprocess.run([os.path.join(KIND, "containerd"), "config", "dump"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    cfg = tomllib.loads(r.stdout)
    plugins = cfg["plugins"]
    assert plugins["io.containerd.grpc.v1.cri"]["containerd"]["snapshotter"] == "overlayfs"
    assert plugins["io.containerd.cri.v1.images"]["snapshotter"] == "overlayfs"
    r = subprocess.run([os.path.join(KIND, "containerd")], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1 and "crispd" in r.stderr


def test_preload_imports_every_archive_and_reports_a_bad_one(crispd, registry, docker_archive,
                                                            tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    shutil.copy(docker_archive, d / "1.tar")
    (d / "2.tar").write_bytes(b"not a tar" * 100)
    r = shim(crispd, os.path.join(KIND, "crisp-kind-preload"), str(d))
    assert r.returncode == 1 and "2.tar" not in r.stdout and "not a tar" in r.stderr
    assert "imported" in r.stdout
    assert crispd.image.ImageStatus(api_pb2.ImageStatusRequest(
        image=api_pb2.ImageSpec(image="kind.test/app:dev")), timeout=5).image.id
