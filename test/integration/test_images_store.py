"""The read side of the ImageService on an empty store: what kubelet and crictl see
before anything is pulled."""
import grpc
import pytest

from conftest import api_pb2


def spec(name):
    return api_pb2.ImageSpec(image=name)


def test_image_status_of_a_missing_image_is_empty_not_an_error(crispd):
    for name in ("busybox", "docker.io/library/busybox:latest", "localhost:5000/a/b:1",
                 "sha256:" + "a" * 64, "a" * 64, "abcdef012345"):
        r = crispd.image.ImageStatus(api_pb2.ImageStatusRequest(image=spec(name), verbose=True))
        assert not r.HasField("image"), name
        assert len(r.info) == 0


@pytest.mark.parametrize("name,why", [
    ("Busybox", "lowercase"),
    ("busybox:bad tag", ""),
    ("docker.io/library/busybox@sha256:abc", ""),
    ("a/b/", ""),
])
def test_invalid_references_are_invalid_argument_naming_them(crispd, name, why):
    with pytest.raises(grpc.RpcError) as ei:
        crispd.image.ImageStatus(api_pb2.ImageStatusRequest(image=spec(name)))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert name in ei.value.details() and why in ei.value.details()


def test_removing_a_missing_image_succeeds(crispd):
    crispd.image.RemoveImage(api_pb2.RemoveImageRequest(image=spec("busybox:1.36")))
    crispd.image.RemoveImage(api_pb2.RemoveImageRequest(image=spec("sha256:" + "b" * 64)))


def test_list_images_is_empty_and_a_filter_matching_nothing_too(crispd):
    assert list(crispd.image.ListImages(api_pb2.ListImagesRequest()).images) == []
    r = crispd.image.ListImages(api_pb2.ListImagesRequest(
        filter=api_pb2.ImageFilter(image=spec("busybox"))))
    assert list(r.images) == []


def test_image_fs_info_reports_the_store_filesystem(crispd):
    r = crispd.image.ImageFsInfo(api_pb2.ImageFsInfoRequest())
    assert len(r.image_filesystems) == 1 and len(r.container_filesystems) == 1
    fs = r.image_filesystems[0]
    assert fs.fs_id.mountpoint.startswith("/")
    assert fs.used_bytes.value > 0 and fs.inodes_used.value > 0
    assert fs.timestamp > 0
