"""Pulls from a registry that lies or misbehaves (lying_registry.py): content that does not
match its digests, cut-short and failing transfers, layers that try to write outside their
directory, slow blobs, deadlines and cancellation.

Every image here has a good base layer under the bad one, so "nothing partial is left"
also covers a layer that did unpack and verify before the pull failed. Each failure must
come back as a clear gRPC error while crispd keeps serving, with no image record, no
layer directory, no "*.tmp-*" debris, no helper process and nothing written outside the
store."""
import os
import tarfile
import threading
import time
import uuid

import grpc
import pytest

from conftest import api_pb2, children_of
from lying_registry import (Image, LyingRegistry, good_base_layer, gz, last_data_end, sha256,
                            tar_layer)
from registry_fixtures import image_records, layer_dirs, layer_path, tmp_debris

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def liar():
    reg = LyingRegistry()
    yield reg
    reg.close()


def pull(d, ref, timeout=30):
    return d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)),
                             timeout=timeout).image_ref


def wait_for(cond, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def assert_nothing_left(d, layers_before=frozenset()):
    """The pull left no trace, and crispd still serves."""
    assert d.runtime.Version(api_pb2.VersionRequest(), timeout=2).runtime_name == "crisp"
    assert wait_for(lambda: children_of(d.proc.pid) == []), "pull helper still running"
    assert wait_for(lambda: tmp_debris(d.root) == []), tmp_debris(d.root)
    assert list(d.image.ListImages(api_pb2.ListImagesRequest(), timeout=5).images) == []
    assert image_records(d.root) == []
    assert layer_dirs(d.root) == set(layers_before)
    assert os.listdir(os.path.join(d.root, "content/blobs/sha256")) == []


# ---- lies: each case is (image, blob faults, code, words the message must hold, paths
# that must not exist); u makes names unique, root is crispd's store -----------------

def wrong_layer_bytes(u, root):
    img = Image([good_base_layer(u), tar_layer([("x.txt", "file", b"the real layer\n")])])
    # the same length, so only the digest can tell
    other = next(b for b in (gz(tar_layer([("x.txt", "file", f"the {c}eal layer\n".encode())]))
                             for c in "abcdefghijklmnopqstuvwxyz")
                 if len(b) == len(img.layers[1]))
    return img, {img.layer_digests[1]: ("wrong", other)}, INVALID, \
        [img.layer_digests[1], "digest mismatch"], []


def wrong_layer_size(u, root):
    img = Image([good_base_layer(u), tar_layer([("x.txt", "file", b"the real layer\n")])])
    other = gz(tar_layer([("x.txt", "file", b"a longer, different layer\n" * 50)]))
    return img, {img.layer_digests[1]: ("wrong", other)}, INVALID, \
        [img.layer_digests[1], "larger than"], []


def diff_id_mismatch(u, root):
    tars = [good_base_layer(u), tar_layer([("x.txt", "file", b"layer\n")])]
    img = Image(tars, diff_ids=[sha256(tars[0]), sha256(b"not this layer")])
    return img, {}, INVALID, [img.layer_digests[1], "diff_id"], []


def climbs_out(u, root):
    name = f"../escape-{u}"
    img = Image([good_base_layer(u), tar_layer([(name, "file", b"out\n")])])
    return img, {}, INVALID, [img.layer_digests[1], name], \
        [os.path.join(root, "layers", f"escape-{u}"), os.path.join(root, f"escape-{u}")]


def climbs_far_out(u, root):
    name = "../" * 16 + f"tmp/crisp-escape-{u}"
    img = Image([good_base_layer(u), tar_layer([(name, "file", b"out\n")])])
    return img, {}, INVALID, [img.layer_digests[1], f"crisp-escape-{u}"], \
        [f"/tmp/crisp-escape-{u}"]


def through_absolute_symlink(u, root):
    img = Image([good_base_layer(u), tar_layer([
        ("evil", "symlink", "/"), (f"evil/tmp/crisp-evil-{u}", "file", b"out\n")])])
    return img, {}, INVALID, [img.layer_digests[1], "evil", "symlink"], [f"/tmp/crisp-evil-{u}"]


def through_relative_symlink(u, root):
    img = Image([good_base_layer(u), tar_layer([
        ("up", "symlink", "../" * 16), (f"up/tmp/crisp-up-{u}", "file", b"out\n")])])
    return img, {}, INVALID, [img.layer_digests[1], "up", "symlink"], [f"/tmp/crisp-up-{u}"]


def hardlink_out(u, root):
    img = Image([good_base_layer(u), tar_layer([("pw", "hardlink", "../" * 12 + "etc/passwd")])])
    return img, {}, INVALID, [img.layer_digests[1], "pw"], []


def hardlink_through_symlink(u, root):
    img = Image([good_base_layer(u), tar_layer([
        ("evil", "symlink", "/etc"), ("pw", "hardlink", "evil/passwd")])])
    return img, {}, INVALID, [img.layer_digests[1], "pw"], []


def cut_inside_a_file(u, root):
    # published this way (the digests match the cut bytes): a file's data is missing
    raw = tar_layer([("etc", "dir", None), ("etc/f.txt", "file", b"0123456789" * 100)],
                    fmt=tarfile.USTAR_FORMAT)
    cut = raw[:last_data_end(raw) - 500]
    img = Image([good_base_layer(u), cut])
    return img, {}, INVALID, [img.layer_digests[1], "f.txt"], []


LIES = [wrong_layer_bytes, wrong_layer_size, diff_id_mismatch, climbs_out, climbs_far_out,
        through_absolute_symlink, through_relative_symlink, hardlink_out,
        hardlink_through_symlink, cut_inside_a_file]


@pytest.mark.parametrize("case", LIES, ids=[c.__name__ for c in LIES])
def test_a_lying_layer_fails_the_pull_and_leaves_nothing(crispd, liar, case):
    u = uuid.uuid4().hex[:12]
    img, faults, code, words, sentinels = case(u, crispd.root)
    ref = liar.add(f"lies/{case.__name__.replace('_', '-')}", u, img, faults)
    passwd_links = os.stat("/etc/passwd").st_nlink
    with pytest.raises(grpc.RpcError) as ei:
        pull(crispd, ref)
    assert ei.value.code() == code, ei.value.details()
    msg = ei.value.details()
    assert ref in msg
    for w in words:
        assert w in msg, (w, msg)
    for p in sentinels:
        assert not os.path.lexists(p), p
    assert os.stat("/etc/passwd").st_nlink == passwd_links
    assert_nothing_left(crispd)


def test_a_symlink_from_a_lower_layer_is_never_followed(crispd, liar):
    # each layer unpacks into its own directory: the upper one gets a real lnk/ there,
    # which overlayfs shows over the symlink
    u = uuid.uuid4().hex[:12]
    base = tar_layer([("etc", "dir", None), ("lnk", "symlink", "/tmp")])
    img = Image([base, tar_layer([(f"lnk/crisp-lower-{u}", "file", b"in\n")])])
    assert pull(crispd, liar.add("lies/lower-symlink", u, img)) == img.config_digest
    assert not os.path.lexists(f"/tmp/crisp-lower-{u}")
    bottom, top = (layer_path(crispd.root, c) for c in img.chain_ids())
    assert os.readlink(os.path.join(bottom, "lnk")) == "/tmp"
    assert not os.path.islink(os.path.join(top, "lnk"))
    assert open(os.path.join(top, f"lnk/crisp-lower-{u}")).read() == "in\n"


def test_a_failed_pull_keeps_the_layers_another_image_uses(crispd, liar):
    u = uuid.uuid4().hex[:12]
    base = good_base_layer(u)
    bad = Image([base, good_base_layer(u + "-bad")])
    lie = gz(good_base_layer(u + "-lie"))  # valid, slow, and not what the digest says
    bad_ref = liar.add("lies/shared-bad", u, bad, {bad.layer_digests[1]: ("drip", 1.5, lie)})
    good = Image([base, good_base_layer(u + "-good")])
    good_ref = liar.add("lies/shared-good", u, good)
    result = {}

    def run():
        try:
            pull(crispd, bad_ref)
        except grpc.RpcError as e:
            result["err"] = e

    t = threading.Thread(target=run)
    t.start()
    assert wait_for(lambda: liar.served.get(bad.layer_digests[1], 0) > 0)
    assert pull(crispd, good_ref) == good.config_digest  # shares the base, recorded first
    t.join(30)
    assert result["err"].code() == INVALID and bad.layer_digests[1] in result["err"].details()
    assert layer_dirs(crispd.root) == {c.split(":")[1] for c in good.chain_ids()}
    assert os.path.isfile(os.path.join(layer_path(crispd.root, good.chain_ids()[0]),
                                       "etc/base.txt"))
    assert [i.id for i in crispd.image.ListImages(api_pb2.ListImagesRequest()).images] == [
        good.config_digest]
    assert tmp_debris(crispd.root) == []


def test_a_manifest_whose_digest_header_lies_is_refused(crispd, liar):
    u = uuid.uuid4().hex[:12]
    img = Image([good_base_layer(u)])
    ref = liar.add("lies/digest-header", u, img)
    liar.manifest_faults[f"lies/digest-header:{u}"] = ("digest-header", sha256(b"another"))
    with pytest.raises(grpc.RpcError) as ei:
        pull(crispd, ref)
    assert ei.value.code() == INVALID
    assert ref in ei.value.details() and "Docker-Content-Digest" in ei.value.details()
    assert liar.served.get(img.layer_digests[0], 0) == 0
    assert_nothing_left(crispd)


# ---- transfers that break --------------------------------------------------------------

def test_a_blob_cut_short_fails_as_unavailable_after_retries(crispd, liar):
    u = uuid.uuid4().hex[:12]
    img = Image([good_base_layer(u), good_base_layer(u + "-top")])
    ref = liar.add("faults/cut", u, img, {img.layer_digests[1]: ("truncate",)})
    with pytest.raises(grpc.RpcError) as ei:
        pull(crispd, ref)
    assert ei.value.code() == grpc.StatusCode.UNAVAILABLE, ei.value.details()
    assert ref in ei.value.details() and img.layer_digests[1] in ei.value.details()
    assert liar.served[img.layer_digests[1]] >= 2  # a broken transfer is tried again
    assert_nothing_left(crispd)


def test_a_blob_that_fails_twice_then_works_is_pulled(crispd, liar):
    u = uuid.uuid4().hex[:12]
    img = Image([good_base_layer(u), good_base_layer(u + "-top")])
    ref = liar.add("faults/flaky", u, img, {img.layer_digests[1]: ("fail", 2),
                                           img.config_digest: ("fail", 2)})
    assert pull(crispd, ref) == img.config_digest
    assert liar.served[img.layer_digests[1]] == 3 and liar.served[img.config_digest] == 3
    assert layer_dirs(crispd.root) == {c.split(":")[1] for c in img.chain_ids()}
    assert tmp_debris(crispd.root) == []


def test_a_layer_without_its_final_padding_and_end_blocks_is_complete(crispd, liar):
    # what umoci insert writes, and what Go's archive/tar (containerd) accepts
    u = uuid.uuid4().hex[:12]
    raw = tar_layer([("etc", "dir", None), ("etc/short.txt", "file", b"hello\n")],
                    fmt=tarfile.USTAR_FORMAT)
    img = Image([good_base_layer(u), raw[:last_data_end(raw)]])
    assert len(img.tars[1]) % 512 != 0
    assert pull(crispd, liar.add("faults/unpadded", u, img)) == img.config_digest
    top = layer_path(crispd.root, img.chain_ids()[1])
    assert open(os.path.join(top, "etc/short.txt")).read() == "hello\n"


# ---- slow blobs: other calls, deadlines, cancellation ------------------------------------

def slow_image(liar, u, seconds):
    img = Image([good_base_layer(u), good_base_layer(u + "-slow")])
    ref = liar.add("slow/drip", u, img, {img.layer_digests[1]: ("drip", seconds)})
    return img, ref


def test_quick_calls_answer_during_a_slow_pull(crispd, liar):
    img, ref = slow_image(liar, uuid.uuid4().hex[:12], 2.5)
    result = {}

    def run():
        try:
            result["id"] = pull(crispd, ref)
        except grpc.RpcError as e:
            result["err"] = e

    t = threading.Thread(target=run)
    t.start()
    assert wait_for(lambda: liar.served.get(img.layer_digests[1], 0) > 0)
    worst, calls = 0.0, 0
    while t.is_alive():
        for call in (lambda: crispd.runtime.Version(api_pb2.VersionRequest(), timeout=5),
                     lambda: crispd.image.ListImages(api_pb2.ListImagesRequest(), timeout=5),
                     lambda: crispd.image.ImageStatus(api_pb2.ImageStatusRequest(
                         image=api_pb2.ImageSpec(image=ref)), timeout=5)):
            t0 = time.monotonic()
            call()
            worst = max(worst, time.monotonic() - t0)
            calls += 1
        time.sleep(0.05)
    t.join()
    assert result.get("id") == img.config_digest, result
    assert calls >= 20 and worst < 1.0, (calls, worst)


def test_a_pull_past_its_deadline_fails_cleanly_and_a_later_pull_works(crispd, liar, registry):
    img, ref = slow_image(liar, uuid.uuid4().hex[:12], 30)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as ei:
        pull(crispd, ref, timeout=1)
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 3
    assert_nothing_left(crispd)
    good = registry.ref("busybox:1")
    assert pull(crispd, good) == registry.image_id("busybox:1")
    assert list(crispd.image.ImageStatus(api_pb2.ImageStatusRequest(
        image=api_pb2.ImageSpec(image=good)), timeout=5).image.repo_tags) == [good]


def test_a_cancelled_pull_stops_its_helper_and_leaves_nothing(crispd, liar):
    img, ref = slow_image(liar, uuid.uuid4().hex[:12], 30)
    fut = crispd.image.PullImage.future(
        api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)), timeout=30)
    assert wait_for(lambda: liar.served.get(img.layer_digests[1], 0) > 0)
    assert children_of(crispd.proc.pid) != []  # the helper is at work
    fut.cancel()
    with pytest.raises(grpc.FutureCancelledError):
        fut.result()
    assert_nothing_left(crispd)
