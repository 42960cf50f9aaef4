"""Pulls from registries that want credentials: docker-registry with htpasswd Basic auth,
and a token front (lying_registry.RegistryFront) that, like Docker Hub, answers 401 with
a Bearer challenge, hands out tokens for Basic credentials at its realm and proxies
authorised requests to a real registry."""
import base64
import json
import urllib.request

import grpc
import pytest

from conftest import api_pb2, children_of
from lying_registry import RegistryFront
from registry_fixtures import AUTH_PASS, AUTH_USER, image_records, layer_dirs, tmp_debris


def pull(d, ref, auth=None, timeout=30):
    req = api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref), auth=auth)
    return d.image.PullImage(req, timeout=timeout).image_ref


def refused(d, ref, auth=None):
    with pytest.raises(grpc.RpcError) as ei:
        pull(d, ref, auth)
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED, ei.value.details()
    assert ref in ei.value.details()
    assert d.runtime.Version(api_pb2.VersionRequest(), timeout=2).runtime_name == "crisp"
    assert list(d.image.ListImages(api_pb2.ListImagesRequest(), timeout=5).images) == []
    assert image_records(d.root) == [] and layer_dirs(d.root) == set()
    assert tmp_debris(d.root) == [] and children_of(d.proc.pid) == []
    return ei.value.details()


def b64(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- Basic auth (htpasswd) -------------------------------------------------------------

def test_basic_auth_without_credentials_is_permission_denied_naming_the_image(
        crispd, auth_registry):
    msg = refused(crispd, auth_registry.ref("busybox:1"))
    assert "401" in msg and "credentials" in msg


def test_basic_auth_with_a_wrong_password_is_permission_denied(crispd, auth_registry):
    refused(crispd, auth_registry.ref("busybox:1"),
            api_pb2.AuthConfig(username=AUTH_USER, password="wrong"))
    refused(crispd, auth_registry.ref("busybox:1"),
            api_pb2.AuthConfig(auth=b64(AUTH_USER, "wrong")))


@pytest.mark.parametrize("form", ["username+password", "auth"])
def test_basic_auth_with_credentials_pulls(crispd, auth_registry, form):
    ref = auth_registry.ref("busybox:1")
    auth = (api_pb2.AuthConfig(username=AUTH_USER, password=AUTH_PASS) if form != "auth"
            else api_pb2.AuthConfig(auth=b64(AUTH_USER, AUTH_PASS)))
    image_id = pull(crispd, ref, auth)
    assert image_id == auth_registry.image_id("busybox:1")
    img = crispd.image.ImageStatus(api_pb2.ImageStatusRequest(
        image=api_pb2.ImageSpec(image=ref)), timeout=5).image
    assert img.id == image_id and list(img.repo_tags) == [ref]


# ---- Bearer tokens -----------------------------------------------------------------------

@pytest.fixture
def token_front(registry):
    front = RegistryFront(registry.host, token_creds=(AUTH_USER, AUTH_PASS))
    yield front
    front.close()


def test_token_auth_fetches_one_token_for_every_blob_of_a_pull(crispd, registry, token_front):
    ref = f"{token_front.host}/crisp-test/layers:1"
    auth = api_pb2.AuthConfig(username=AUTH_USER, password=AUTH_PASS)
    assert pull(crispd, ref, auth) == registry.image_id("layers:1")
    m = registry.image_manifest("crisp-test/layers", "1")
    blobs = [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]
    assert len(blobs) == 4
    for digest in blobs:
        assert token_front.count("GET", f"/blobs/{digest}") >= 1
    assert len(token_front.token_requests) == 1, token_front.token_requests
    header, query = token_front.token_requests[0]
    assert header == "Basic " + b64(AUTH_USER, AUTH_PASS)
    assert "service=crisp-test" in query
    assert "scope=repository%3Acrisp-test%2Flayers%3Apull" in query
    assert sorted(layer_dirs(crispd.root)) == sorted(
        c.split(":")[1] for c in registry.chains("layers:1"))


def test_token_auth_without_credentials_is_refused_clearly(crispd, token_front):
    msg = refused(crispd, f"{token_front.host}/crisp-test/busybox:1")
    assert "token server" in msg and "anonymous" in msg


def test_token_auth_with_wrong_credentials_is_refused_clearly(crispd, token_front):
    msg = refused(crispd, f"{token_front.host}/crisp-test/busybox:1",
                  api_pb2.AuthConfig(username=AUTH_USER, password="wrong"))
    assert "token server" in msg and "credentials" in msg


def test_a_registry_token_is_used_as_is(crispd, registry, token_front):
    rq = urllib.request.Request(f"http://{token_front.host}/token?service=crisp-test")
    rq.add_header("Authorization", "Basic " + b64(AUTH_USER, AUTH_PASS))
    with urllib.request.urlopen(rq, timeout=5) as r:
        token = json.loads(r.read())["token"]
    ref = f"{token_front.host}/crisp-test/busybox:1"
    assert pull(crispd, ref, api_pb2.AuthConfig(registry_token=token)) == \
        registry.image_id("busybox:1")
    assert len(token_front.token_requests) == 1  # only ours
