"""The image service against a real registry (Debian's docker-registry, images built with
umoci from busybox-static by test/fixtures/registry.sh): pulls by tag, digest and short
name, platform choice, lookups, listing, removal, restarts, what lands on disk (whiteouts,
opaque directories, owners, modes, and the overlay they make), mirrors, and concurrent
pulls."""
import json
import os
import stat
import subprocess
import threading

import grpc
import pytest

from conftest import api_pb2, mounts_under
from lying_registry import RegistryFront
from registry_fixtures import du, image_records, layer_dirs, layer_path, tmp_debris


def spec(name):
    return api_pb2.ImageSpec(image=name)


def pull(d, ref, timeout=60, **auth):
    req = api_pb2.PullImageRequest(image=spec(ref))
    if auth:
        req.auth.CopyFrom(api_pb2.AuthConfig(**auth))
    return d.image.PullImage(req, timeout=timeout).image_ref


def status(d, name, verbose=False):
    return d.image.ImageStatus(api_pb2.ImageStatusRequest(image=spec(name), verbose=verbose),
                               timeout=5)


def listed(d, name=None):
    f = api_pb2.ImageFilter(image=spec(name)) if name is not None else None
    return list(d.image.ListImages(api_pb2.ListImagesRequest(filter=f), timeout=5).images)


def fs_usage(d):
    u = d.image.ImageFsInfo(api_pb2.ImageFsInfoRequest(), timeout=10).image_filesystems[0]
    return u.used_bytes.value, u.inodes_used.value


def hexes(chains):
    return {c.split(":", 1)[1] for c in chains}


# ---- pulling and naming ----------------------------------------------------------------

def test_pull_by_tag_records_the_tag_the_manifest_digest_and_the_layer(crispd, registry):
    ref = registry.ref("busybox:1")
    image_id = pull(crispd, ref)
    assert image_id == registry.image_id("busybox:1")
    r = status(crispd, ref, verbose=True)
    img = r.image
    assert img.id == image_id and img.spec.image == image_id
    assert list(img.repo_tags) == [ref]
    manifest_digest = registry.digests["busybox:1"]
    assert list(img.repo_digests) == [f"{registry.host}/crisp-test/busybox@{manifest_digest}"]
    m = registry.manifest("crisp-test/busybox", "1")
    assert img.size == m["config"]["size"] + sum(l["size"] for l in m["layers"])
    info = json.loads(r.info["info"])
    chains = registry.chains("busybox:1")
    assert info["manifestDigest"] == manifest_digest and info["chainIDs"] == chains
    assert info["imageSpec"]["rootfs"]["diff_ids"] == chains[:1]
    assert layer_dirs(crispd.root) == hexes(chains)
    assert os.access(os.path.join(layer_path(crispd.root, chains[0]), "bin/busybox"), os.X_OK)
    assert tmp_debris(crispd.root) == []


@pytest.mark.parametrize("form", ["digest", "tag+digest"])
def test_pull_by_digest_records_the_repo_digest_and_no_tag(crispd, registry, form):
    digest = registry.digests["busybox:1"]
    name = f"{registry.host}/crisp-test/busybox"
    ref = f"{name}@{digest}" if form == "digest" else f"{name}:1@{digest}"
    image_id = pull(crispd, ref)
    assert image_id == registry.image_id("busybox:1")
    img = status(crispd, f"{name}@{digest}").image
    assert img.id == image_id
    assert list(img.repo_digests) == [f"{name}@{digest}"]
    assert list(img.repo_tags) == []
    assert not status(crispd, f"{name}:1").HasField("image")


def test_short_names_resolve_to_docker_io_through_a_mirror(make_crispd, registry):
    d = make_crispd(config={"registries": {"mirrors": {"docker.io": [f"http://{registry.host}"]}}})
    image_id = pull(d, "busybox")
    img = status(d, "docker.io/library/busybox:latest").image
    assert img.id == image_id
    assert list(img.repo_tags) == ["docker.io/library/busybox:latest"]
    assert list(img.repo_digests) == [
        "docker.io/library/busybox@" + registry.digests["library/busybox:latest"]]
    for name in ("busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox",
                 "index.docker.io/library/busybox:latest"):
        assert status(d, name).image.id == image_id, name
    assert pull(d, "library/busybox:latest") == image_id
    assert list(status(d, "busybox").image.repo_tags) == ["docker.io/library/busybox:latest"]
    sib = pull(d, "crisp-test/sibling:1")
    assert sib == registry.image_id("sibling:1")
    assert list(status(d, "crisp-test/sibling:1").image.repo_tags) == [
        "docker.io/crisp-test/sibling:1"]


def test_an_index_resolves_to_the_linux_amd64_image(crispd, registry):
    index = registry.manifest("crisp-test/platforms", "1")
    platforms = [(p["platform"]["os"], p["platform"]["architecture"]) for p in index["manifests"]]
    assert platforms.index(("linux", "amd64")) > 0 and ("windows", "amd64") in platforms
    configs = {}
    for p in index["manifests"]:
        m = registry.manifest("crisp-test/platforms", p["digest"])
        configs[(p["platform"]["os"], p["platform"]["architecture"])] = m["config"]["digest"]
    assert len(set(configs.values())) == len(configs)  # every platform is a different image
    ref = registry.ref("platforms:1")
    image_id = pull(crispd, ref)
    assert image_id == configs[("linux", "amd64")]
    r = status(crispd, ref, verbose=True)
    cfg = json.loads(r.info["info"])["imageSpec"]
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64")
    index_digest = registry.digests["platforms:1"]
    assert list(r.image.repo_digests) == [f"{registry.host}/crisp-test/platforms@{index_digest}"]
    by_digest = f"{registry.host}/crisp-test/platforms@{index_digest}"
    assert pull(crispd, by_digest) == image_id


def test_image_status_finds_an_image_by_id_prefix_tag_and_repo_digest(crispd, registry):
    ref = registry.ref("layers:1")
    image_id = pull(crispd, ref)
    other = pull(crispd, registry.ref("sibling:1"))
    hexid = image_id.split(":", 1)[1]
    repo_digest = f"{registry.host}/crisp-test/layers@{registry.digests['layers:1']}"
    for key in (image_id, hexid, hexid[:12], "sha256:" + hexid[:12], hexid[:40], ref,
                repo_digest):
        assert status(crispd, key).image.id == image_id, key
    for missing in (hexid[:11] + "z", registry.ref("layers:2"),
                    f"{registry.host}/crisp-test/layers@sha256:" + "0" * 64):
        assert not status(crispd, missing).HasField("image"), missing
    assert sorted(i.id for i in listed(crispd)) == sorted([image_id, other])
    for key in (ref, hexid[:12], repo_digest):
        assert [i.id for i in listed(crispd, key)] == [image_id], key
    assert listed(crispd, registry.ref("nothing:1")) == []
    assert [i.id for i in listed(crispd, "")] != []  # an empty filter lists everything


def test_images_report_the_user_their_config_names(crispd, registry):
    named = pull(crispd, registry.ref("user-named:1"))
    numeric = pull(crispd, registry.ref("user-numeric:1"))
    plain = pull(crispd, registry.ref("base:1"))
    assert len({named, numeric, plain}) == 3
    img = status(crispd, named).image
    assert img.username == "www-data" and not img.HasField("uid")
    img = status(crispd, numeric).image
    assert img.uid.value == 1000 and img.username == ""
    img = status(crispd, plain).image
    assert not img.HasField("uid") and img.username == ""
    by_id = {i.id: i for i in listed(crispd)}
    assert by_id[named].username == "www-data" and by_id[numeric].uid.value == 1000
    # the three share their only layer
    assert len(layer_dirs(crispd.root)) == 1


def test_a_shared_base_layer_is_stored_and_counted_once(crispd, registry):
    layers, sibling = registry.chains("layers:1"), registry.chains("sibling:1")
    assert layers[0] == sibling[0] and len(layers) == 3 and len(sibling) == 2
    pull(crispd, registry.ref("layers:1"))
    assert layer_dirs(crispd.root) == hexes(layers)
    bytes1, inodes1 = fs_usage(crispd)
    pull(crispd, registry.ref("sibling:1"))
    assert layer_dirs(crispd.root) == hexes(layers + sibling)
    assert len(layer_dirs(crispd.root)) == 4
    bytes2, inodes2 = fs_usage(crispd)
    base_bytes, base_inodes = du(layer_path(crispd.root, layers[0]))
    assert base_bytes > 1 << 20
    # the sibling adds one small layer, its config, manifest and record: not the base again
    assert 0 < bytes2 - bytes1 < base_bytes // 4
    assert 0 < inodes2 - inodes1 < 20 < base_inodes


def test_remove_by_tag_removes_every_tag_and_keeps_layers_others_use(crispd, registry):
    a, b = registry.ref("twotags:a"), registry.ref("twotags:b")
    image_id = pull(crispd, a)
    assert pull(crispd, b) == image_id
    sibling = pull(crispd, registry.ref("sibling:1"))
    assert sorted(status(crispd, image_id).image.repo_tags) == sorted([a, b])
    two, sib = registry.chains("twotags:a"), registry.chains("sibling:1")
    assert two[0] == sib[0] and two[1] != sib[1]
    assert layer_dirs(crispd.root) == hexes(two + sib)

    crispd.image.RemoveImage(api_pb2.RemoveImageRequest(image=spec(a)), timeout=10)
    for name in (a, b, image_id):
        assert not status(crispd, name).HasField("image"), name
    assert [i.id for i in listed(crispd)] == [sibling]
    assert layer_dirs(crispd.root) == hexes(sib)  # the shared base stays, two.txt's layer goes
    assert not os.path.exists(layer_path(crispd.root, two[1]) + ".json")
    assert len(image_records(crispd.root)) == 1
    for name in (a, b, image_id):  # removing what is gone succeeds
        crispd.image.RemoveImage(api_pb2.RemoveImageRequest(image=spec(name)), timeout=10)

    crispd.image.RemoveImage(api_pb2.RemoveImageRequest(image=spec(sibling)), timeout=10)
    assert listed(crispd) == [] and layer_dirs(crispd.root) == set()
    assert image_records(crispd.root) == [] and tmp_debris(crispd.root) == []


def test_image_records_survive_a_restart(crispd, registry):
    pull(crispd, registry.ref("layers:1"))
    pull(crispd, f"{registry.host}/crisp-test/busybox@{registry.digests['busybox:1']}")
    pull(crispd, registry.ref("user-named:1"))
    before = sorted((i.SerializeToString(deterministic=True) for i in listed(crispd)))
    dirs = layer_dirs(crispd.root)
    assert crispd.stop() == 0
    crispd.start()
    after = sorted((i.SerializeToString(deterministic=True) for i in listed(crispd)))
    assert after == before and len(after) == 3
    assert layer_dirs(crispd.root) == dirs
    assert status(crispd, registry.ref("layers:1")).image.id == registry.image_id("layers:1")
    assert status(crispd, registry.ref("user-named:1")).image.username == "www-data"
    assert pull(crispd, registry.ref("layers:1")) == registry.image_id("layers:1")


# ---- what lands on disk ------------------------------------------------------------------

def is_whiteout(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and st.st_uid == 0 and st.st_gid == 0


def opaque(path):
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False)
    except OSError:
        return None


def test_layers_hold_overlay_whiteouts_opaque_dirs_owners_and_modes(crispd, registry):
    pull(crispd, registry.ref("layers:1"))
    l1, l2, l3 = (layer_path(crispd.root, c) for c in registry.chains("layers:1"))
    # base: the files the upper layers delete are plain files here
    assert open(os.path.join(l1, "data/gone.txt")).read() == "gone\n"
    assert os.path.isfile(os.path.join(l1, "data/dir-gone/sub/b"))
    assert sorted(os.listdir(os.path.join(l1, "opq"))) == ["old1", "sub"]
    assert opaque(os.path.join(l1, "opq")) is None
    # layer 2: a deleted file and a deleted directory are 0:0 character devices
    assert is_whiteout(os.path.join(l2, "data/gone.txt"))
    assert is_whiteout(os.path.join(l2, "data/dir-gone"))
    assert open(os.path.join(l2, "data/new2.txt")).read() == "new2\n"
    st = os.lstat(os.path.join(l2, "owned"))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    st = os.lstat(os.path.join(l2, "owned/f"))
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (1234, 5678)
    st = os.lstat(os.path.join(l2, "owned/suid"))
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (0, 0)
    # layer 3: opq/ is opaque and holds only the new file
    assert opaque(os.path.join(l3, "opq")) == b"y"
    assert os.listdir(os.path.join(l3, "opq")) == ["new.txt"]
    for layer in (l1, l2, l3):
        for dirpath, dirnames, filenames in os.walk(layer):
            assert not [n for n in dirnames + filenames if n.startswith(".wh.")], dirpath


def test_an_overlay_of_the_layers_shows_the_image(crispd, registry, tmpbase):
    pull(crispd, registry.ref("layers:1"))
    lower = ":".join(layer_path(crispd.root, c) for c in reversed(registry.chains("layers:1")))
    mnt = os.path.join(tmpbase, "merged")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={lower}", mnt],
                   check=True, capture_output=True)
    try:
        assert sorted(os.listdir(os.path.join(mnt, "data"))) == ["keep.txt", "new2.txt"]
        assert open(os.path.join(mnt, "data/keep.txt")).read() == "keep\n"
        assert not os.path.lexists(os.path.join(mnt, "data/gone.txt"))
        assert not os.path.lexists(os.path.join(mnt, "data/dir-gone"))
        assert os.listdir(os.path.join(mnt, "opq")) == ["new.txt"]
        assert open(os.path.join(mnt, "opq/new.txt")).read() == "new\n"
        st = os.stat(os.path.join(mnt, "owned/f"))
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o640)
        assert "www-data" in open(os.path.join(mnt, "etc/passwd")).read()
        out = subprocess.run([os.path.join(mnt, "bin/busybox"), "echo", "hi"],
                             capture_output=True, text=True, check=True)
        assert out.stdout == "hi\n"
    finally:
        subprocess.run(["umount", mnt], check=True)
    assert mounts_under(tmpbase) == []


# ---- mirrors ---------------------------------------------------------------------------

def test_mirrors_are_tried_in_order_and_the_tag_names_the_upstream(make_crispd, registry):
    d = make_crispd(config={"registries": {"mirrors": {
        "registry.example.test": ["http://127.0.0.1:1", f"http://{registry.host}"]}}})
    ref = "registry.example.test/crisp-test/busybox:1"
    image_id = pull(d, ref)
    assert image_id == registry.image_id("busybox:1")
    img = status(d, ref).image
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [
        "registry.example.test/crisp-test/busybox@" + registry.digests["busybox:1"]]


def test_a_registry_no_endpoint_serves_is_unavailable_naming_each(make_crispd, registry):
    d = make_crispd(config={"registries": {"mirrors": {"127.0.0.1:2": ["http://127.0.0.1:1"]}}})
    ref = "127.0.0.1:2/crisp-test/busybox:1"
    with pytest.raises(grpc.RpcError) as ei:
        pull(d, ref, timeout=30)
    assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
    msg = ei.value.details()
    assert ref in msg and "http://127.0.0.1:1" in msg and "http://127.0.0.1:2" in msg
    assert listed(d) == [] and layer_dirs(d.root) == set()


# ---- concurrency -------------------------------------------------------------------------

def pull_all_at_once(d, refs):
    results, barrier = {}, threading.Barrier(len(refs))

    def one(i, ref):
        barrier.wait()
        try:
            results[i] = pull(d, ref)
        except grpc.RpcError as e:
            results[i] = e

    threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(refs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return [results.get(i) for i in range(len(refs))]


def blobs_of(registry, repo, tag):
    m = registry.image_manifest(repo, tag)
    return [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]


def test_one_image_pulled_twice_at_once_is_downloaded_once(crispd, registry):
    front = RegistryFront(registry.host, blob_delay=0.3)
    try:
        ref = f"{front.host}/crisp-test/layers:1"
        got = pull_all_at_once(crispd, [ref, ref])
        assert got == [registry.image_id("layers:1")] * 2
        for digest in blobs_of(registry, "crisp-test/layers", "1"):
            assert front.count("GET", f"/blobs/{digest}") == 1, digest
        assert front.count("GET", "/manifests/1") == 1
    finally:
        front.close()
    assert list(status(crispd, ref).image.repo_tags) == [ref]
    assert layer_dirs(crispd.root) == hexes(registry.chains("layers:1"))


def test_two_images_sharing_a_layer_pulled_at_once_fetch_it_once(crispd, registry):
    front = RegistryFront(registry.host, blob_delay=0.3)
    try:
        refs = [f"{front.host}/crisp-test/layers:1", f"{front.host}/crisp-test/sibling:1"]
        got = pull_all_at_once(crispd, refs)
        assert got == [registry.image_id("layers:1"), registry.image_id("sibling:1")]
        base = registry.image_manifest("crisp-test/layers", "1")["layers"][0]["digest"]
        assert front.count("GET", f"/blobs/{base}") == 1
    finally:
        front.close()
    assert layer_dirs(crispd.root) == hexes(registry.chains("layers:1") +
                                            registry.chains("sibling:1"))
    assert tmp_debris(crispd.root) == []
