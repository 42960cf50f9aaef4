"""`crispd images import`: image archives loaded into a running crispd through its
root-only admin socket, the way `kind load` uses `ctr images import` on a containerd
node. Archives are made with skopeo from the session registry's images (OCI archive,
docker-archive), some of them then damaged on purpose."""
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from conftest import CRISPD, api_pb2
from pod_helpers import Node, finish_node
from registry_fixtures import image_records, layer_dirs, tmp_debris


def spec(name):
    return api_pb2.ImageSpec(image=name)


def skopeo_archive(registry, image, dest):
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                    f"docker://{registry.ref(image)}", dest], check=True, timeout=120)


@pytest.fixture(scope="module")
def archives(registry, tmp_path_factory):
    """OCI and docker archives of crisp-test/base:1 (busybox + /etc/passwd) and an OCI
    archive of layers:1 (3 layers), named crisp.test/..."""
    d = tmp_path_factory.mktemp("archives")
    out = {"oci": str(d / "base-oci.tar"), "docker": str(d / "base-docker.tar"),
           "layers": str(d / "layers-oci.tar")}
    skopeo_archive(registry, "base:1", f"oci-archive:{out['oci']}:crisp.test/oci:1")
    skopeo_archive(registry, "base:1", f"docker-archive:{out['docker']}:crisp.test/docker:1")
    skopeo_archive(registry, "layers:1", f"oci-archive:{out['layers']}:crisp.test/layers:3")
    return out


def import_cmd(d, *args, stdin=None, user=None):
    cmd = [CRISPD, "images", "import", "--config", d.config_path, "--state", d.state, *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, stdin=stdin, capture_output=True, text=True, timeout=120)


def imported(d, *args, stdin=None):
    r = import_cmd(d, *args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def status(d, name):
    return d.image.ImageStatus(api_pb2.ImageStatusRequest(image=spec(name)), timeout=5).image


def assert_store_empty(d):
    assert image_records(d.root) == []
    assert layer_dirs(d.root) == set()
    assert tmp_debris(d.root) == []
    assert not [n for n in os.listdir(d.root) if n.startswith("import.tmp-")]
    assert list(d.image.ListImages(api_pb2.ListImagesRequest(), timeout=5).images) == []


def rewrite_tar(src, dst, change):
    """Copies tar src to dst, passing each (name, bytes) of a regular file through
    change(name, data) -> data."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if data is not None:
                data = change(m.name, data)
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)


# ---- importing ---------------------------------------------------------------------

def test_oci_archive_by_path_is_listed_under_its_ref_name(crispd, registry, archives):
    out = imported(crispd, archives["oci"])
    image_id = registry.image_id("base:1")
    assert out == [f"imported {image_id} crisp.test/oci:1"]
    img = status(crispd, "crisp.test/oci:1")
    assert img.id == image_id and list(img.repo_tags) == ["crisp.test/oci:1"]
    assert len(img.repo_digests) == 1 and img.repo_digests[0].startswith("crisp.test/oci@sha256:")
    listed = crispd.image.ListImages(api_pb2.ListImagesRequest(), timeout=5).images
    assert [i.id for i in listed] == [image_id]
    assert layer_dirs(crispd.root) == {c.split(":")[1] for c in registry.chains("base:1")}
    assert tmp_debris(crispd.root) == []


def test_docker_archive_from_stdin_gets_its_repo_tag_normalised(crispd, registry, archives):
    with open(archives["docker"], "rb") as f:
        out = imported(crispd, "-", stdin=f)
    image_id = registry.image_id("base:1")
    assert out == [f"imported {image_id} crisp.test/docker:1"]
    assert list(status(crispd, "crisp.test/docker:1").repo_tags) == ["crisp.test/docker:1"]


def test_gzipped_archive_with_a_name_override_from_stdin(crispd, registry, archives, tmp_path):
    gz = tmp_path / "oci.tar.gz"
    with open(archives["oci"], "rb") as f, gzip.open(gz, "wb") as g:
        g.write(f.read())
    with open(gz, "rb") as f:
        out = imported(crispd, "--name", "kind/app", "-", stdin=f)
    image_id = registry.image_id("base:1")
    assert out == [f"imported {image_id} docker.io/kind/app:latest"]
    assert status(crispd, "kind/app").id == image_id
    assert not status(crispd, "crisp.test/oci:1").id   # the override replaced the name


def test_importing_twice_and_both_formats_keeps_one_image_with_both_names(crispd, registry,
                                                                         archives):
    imported(crispd, archives["oci"])
    imported(crispd, archives["oci"])
    imported(crispd, archives["docker"])
    img = status(crispd, registry.image_id("base:1"))
    assert sorted(img.repo_tags) == ["crisp.test/docker:1", "crisp.test/oci:1"]
    assert len(image_records(crispd.root)) == 1


def test_multi_layer_image_and_a_path_crispd_could_not_open(crispd, registry, archives,
                                                           tmp_path):
    # the archive is opened by the client and passed as a descriptor: crispd never sees
    # the path (a directory only root can reach, then gone before crispd could look)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    p = private / "layers.tar"
    with open(archives["layers"], "rb") as f:
        p.write_bytes(f.read())
    out = imported(crispd, str(p))
    assert out == [f"imported {registry.image_id('layers:1')} crisp.test/layers:3"]
    assert layer_dirs(crispd.root) == {c.split(":")[1] for c in registry.chains("layers:1")}


def test_a_container_runs_from_an_imported_image_without_a_registry(make_crispd, registry,
                                                                   cni_net, cgroup_parents,
                                                                   archives):
    d = make_crispd(start=False)
    cni_net.install(os.path.join(d.base, "cni"))
    d.start()
    node = Node(d, registry, cni_net, cgroup_parents)
    try:
        with open(archives["docker"], "rb") as f:
            imported(d, "-", stdin=f)
        # imagePullPolicy: Never -> kubelet only asks ImageStatus, then creates
        assert status(d, "crisp.test/docker:1").id
        pod = node.run_pod()
        c = node.run(pod, image="crisp.test/docker:1", cmd=("sleep", "3600"))
        node.wait_state(c, api_pb2.CONTAINER_RUNNING)
        assert node.status(c).image_ref == status(d, "crisp.test/docker:1").id
        rc, out, _ = node.sh(c, "echo from-imported; grep -c www-data /etc/passwd")
        assert rc == 0 and out.split() == ["from-imported", "1"], out
    finally:
        finish_node(node)


# ---- failures leave nothing ---------------------------------------------------------

def test_truncated_archive_fails_with_one_line_and_leaves_nothing(crispd, archives):
    with open(archives["oci"], "rb") as f:
        data = f.read()
    r = subprocess.run([CRISPD, "images", "import", "--state", crispd.state, "-"],
                       input=data[:len(data) // 2], capture_output=True, timeout=60)
    assert r.returncode == 1 and r.stdout == b""
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("crispd images import: ")
    assert "truncated" in err.lower(), err
    assert_store_empty(crispd)


def test_layer_with_a_wrong_digest_fails_naming_the_blob(crispd, archives, tmp_path):
    bad = str(tmp_path / "bad.tar")
    flipped = []

    def flip(name, data):
        if name.startswith("blobs/sha256/") and len(data) > 100000:   # the layer
            flipped.append(name)
            data = bytearray(data)
            data[len(data) // 2] ^= 0xff
            return bytes(data)
        return data
    rewrite_tar(archives["oci"], bad, flip)
    assert len(flipped) == 1
    r = import_cmd(crispd, bad)
    assert r.returncode == 1
    assert flipped[0].split("/")[-1] in r.stderr and "digest" in r.stderr, r.stderr
    assert_store_empty(crispd)


def test_second_layer_broken_after_the_first_was_stored_takes_it_back(crispd, archives,
                                                                     tmp_path):
    # layers:1 shares nothing with the store here: its base layer is committed before
    # the third layer's config diff_id fails to match, and must go again
    bad = str(tmp_path / "bad-diffid.tar")

    def wrong_diff_id(name, data):
        try:
            j = json.loads(data)
        except ValueError:
            return data
        if isinstance(j, dict) and "rootfs" in j:
            j["rootfs"]["diff_ids"][2] = "sha256:" + "0" * 64
            return json.dumps(j).encode()
        return data

    # changing the config changes its digest: rewrite the manifest to match, so the only
    # fault left is the diff_id of layer 3
    with tarfile.open(archives["layers"]) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    mdesc = index["manifests"][0]
    mname = "blobs/sha256/" + mdesc["digest"].split(":")[1]
    manifest = json.loads(files[mname])
    cname = "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]
    config = wrong_diff_id(cname, files[cname])
    chex = hashlib.sha256(config).hexdigest()
    manifest["config"].update(digest="sha256:" + chex, size=len(config))
    mbytes = json.dumps(manifest).encode()
    mhex = hashlib.sha256(mbytes).hexdigest()
    mdesc.update(digest="sha256:" + mhex, size=len(mbytes))
    del files[mname], files[cname]
    files["blobs/sha256/" + chex] = config
    files["blobs/sha256/" + mhex] = mbytes
    files["index.json"] = json.dumps(index).encode()
    with tarfile.open(bad, "w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    r = import_cmd(crispd, bad)
    assert r.returncode == 1
    assert "diff_id" in r.stderr and "0" * 64 in r.stderr, r.stderr
    assert_store_empty(crispd)


def test_unsupported_media_type_and_non_archives_are_refused_by_name(crispd, archives,
                                                                    tmp_path):
    bad = str(tmp_path / "mt.tar")

    def mt(name, data):
        if name == "index.json":
            j = json.loads(data)
            j["manifests"][0]["mediaType"] = "application/vnd.example.thing+json"
            return json.dumps(j).encode()
        return data
    rewrite_tar(archives["oci"], bad, mt)
    r = import_cmd(crispd, bad)
    assert r.returncode == 1
    assert 'unsupported media type "application/vnd.example.thing+json"' in r.stderr, r.stderr
    # a tar that is no image archive, and bytes that are no tar
    plain = str(tmp_path / "plain.tar")
    with tarfile.open(plain, "w") as t:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 2
        t.addfile(ti, io.BytesIO(b"hi"))
    r = import_cmd(crispd, plain)
    assert r.returncode == 1 and "no index.json" in r.stderr and "manifest.json" in r.stderr
    r = subprocess.run([CRISPD, "images", "import", "--state", crispd.state, "-"],
                       input=b"not an archive\n" * 100, capture_output=True, timeout=30)
    assert r.returncode == 1 and b"not a tar archive" in r.stderr
    # an archive entry that climbs out is refused, not spooled anywhere
    evil = str(tmp_path / "evil.tar")
    with tarfile.open(evil, "w") as t:
        ti = tarfile.TarInfo("../../escape")
        ti.size = 1
        t.addfile(ti, io.BytesIO(b"x"))
    r = import_cmd(crispd, evil)
    assert r.returncode == 1 and "not a plain relative path" in r.stderr, r.stderr
    assert_store_empty(crispd)


def test_name_override_needs_a_single_image_and_a_valid_name(crispd, archives):
    r = import_cmd(crispd, "--name", "Bad/Name", archives["oci"])
    assert r.returncode == 1 and "Bad/Name" in r.stderr
    r = import_cmd(crispd, "--name", "x@sha256:" + "a" * 64, archives["oci"])
    assert r.returncode == 1 and "digest cannot name" in r.stderr
    assert_store_empty(crispd)


def test_import_without_crispd_says_it_is_not_running(tmp_path, archives):
    r = subprocess.run([CRISPD, "images", "import", "--state", str(tmp_path), archives["oci"]],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "crispd is not running" in r.stderr
    r = subprocess.run([CRISPD, "images", "import", "--state", str(tmp_path), "/nonexistent"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "/nonexistent" in r.stderr


# ---- the admin socket is root's ------------------------------------------------------

def test_admin_socket_is_root_only(crispd, archives, tmp_path):
    sock = os.path.join(crispd.state, "admin.sock")
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    # nobody may walk to the socket (the test's temporary dir is 0700, crispd's state
    # dir 0711 as on a node) and gets the archive as stdin, opened by root: only the
    # socket's mode can stop it
    top = os.path.dirname(crispd.base)
    os.chmod(top, 0o711)
    with open(archives["oci"], "rb") as f:
        r = import_cmd(crispd, "-", stdin=f, user=65534)
    assert r.returncode == 1 and "permission denied" in r.stderr, r.stderr
    # with the file mode opened up, crispd itself still refuses (SO_PEERCRED)
    os.chmod(sock, 0o666)
    try:
        with open(archives["oci"], "rb") as f:
            r = import_cmd(crispd, "-", stdin=f, user=65534)
    finally:
        os.chmod(sock, 0o600)
        os.chmod(top, 0o700)
    assert r.returncode == 1 and "root only (uid 65534)" in r.stderr, r.stderr
    assert_store_empty(crispd)


def test_admin_socket_goes_with_crispd(make_crispd):
    d = make_crispd()
    sock = os.path.join(d.state, "admin.sock")
    assert os.path.exists(sock)
    assert d.stop() == 0
    assert not os.path.exists(sock)


def test_crispd_stops_promptly_with_a_silent_admin_client_and_an_import_under_way(
        make_crispd, archives):
    import socket
    import time
    d = make_crispd()
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(os.path.join(d.state, "admin.sock"))
    # an import whose archive never ends: half of it, then the pipe stays open
    r, w = os.pipe()
    client = subprocess.Popen([CRISPD, "images", "import", "--state", d.state, "-"], stdin=r,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    with open(archives["layers"], "rb") as f:
        data = f.read()
    os.write(w, data[:len(data) // 2])
    time.sleep(0.5)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
    out, err = client.communicate(timeout=10)
    os.close(w)
    silent.close()
    assert client.returncode == 1 and b"cancelled" in err, err
    assert not [n for n in os.listdir(d.root) if n.startswith("import.tmp-")]
    assert image_records(d.root) == [] and layer_dirs(d.root) == set()
