"""What kubelet does to a node's runtime besides the pod lifecycle: it rotates container
logs (rename + ReopenContainerLog, as its container log manager does), garbage-collects
images from the ImageFsInfo figures (and removes images containers still use), and asks
the runtime for its cgroup driver."""
import glob
import os
import time

import grpc

from conftest import api_pb2
from pod_helpers import EXITED, rpc_error, wait_for
from registry_fixtures import du, layer_dirs

RUNNING = api_pb2.CONTAINER_RUNNING
LINE_PAD = 1000   # bytes of padding per numbered line


def parse_cri_log(paths):
    """The stdout payload lines of CRI log files, in order (P pieces joined)."""
    out, cur = [], ""
    for p in paths:
        with open(p, errors="replace") as f:
            for line in f:
                ts, stream, tag, msg = (line.rstrip("\n").split(" ", 3) + [""])[:4]
                assert stream in ("stdout", "stderr") and tag in ("P", "F"), line[:80]
                cur += msg
                if tag == "F":
                    out.append(cur)
                    cur = ""
    assert cur == "", "a partial line was never finished"
    return out


def test_log_rotation_under_10_mb_per_s_loses_and_duplicates_no_line(node):
    """kubelet's log manager renames the live log to <log>.<timestamp> and then calls
    ReopenContainerLog; until the reopen the monitor still writes to the renamed file.
    The container writes numbered 1 KiB lines at ~10 MB/s for ~5 s while the test
    rotates every 100 ms, as fast as kubelet ever would."""
    batches, per = 50, 1000   # 1000 lines (~1 MB) every ~100 ms: ~10 MB/s for ~5 s
    n = batches * per
    script = (f'pad=$(head -c {LINE_PAD} /dev/zero | tr "\\0" x); i=0; '
              f'while [ $i -lt {n} ]; do j=0; while [ $j -lt {per} ]; do j=$((j+1)); '
              f'i=$((i+1)); echo "$i $pad"; done; sleep 0.09; done')
    pod = node.run_pod()
    t0 = time.monotonic()
    ctr = node.run(pod, cmd=("sh", "-c", script))
    path = node.log_path(ctr)
    rotated, reopens, k = [], 0, 0
    while node.status(ctr).state == RUNNING:
        time.sleep(0.1)
        if not os.path.exists(path):
            continue
        k += 1
        dst = f"{path}.{k:04d}"
        os.rename(path, dst)
        rotated.append(dst)
        try:
            node.rt.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=ctr),
                                       timeout=10)
            reopens += 1
        except grpc.RpcError as e:   # it exited between the status and the reopen
            assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
            break
    st = node.wait_state(ctr, EXITED, timeout=60)
    elapsed = time.monotonic() - t0
    assert st.exit_code == 0
    files = rotated + ([path] if os.path.exists(path) else [])
    lines = parse_cri_log(files)
    nums = [int(l.split(" ", 1)[0]) for l in lines]
    assert len(nums) == n, f"{n - len(nums)} lines lost (or {len(nums) - n} duplicated)"
    assert nums == list(range(1, n + 1)), "lines duplicated or reordered across rotations"
    assert all(len(l) == len(str(i)) + 1 + LINE_PAD for i, l in zip(nums, lines))
    total = sum(os.path.getsize(f) for f in files)
    rate = n * (LINE_PAD + 7) / elapsed / 1e6
    print(f"\nlog rotation: {n} lines, {total / 1e6:.1f} MB of CRI log in {elapsed:.2f} s "
          f"({rate:.1f} MB/s of output), {reopens} reopens, {len(files)} files")
    assert reopens >= 20, f"only {reopens} rotations happened"
    assert rate >= 7, f"the container logged only {rate:.1f} MB/s"


# ---- image garbage collection ----------------------------------------------------------

STORE_DIRS = ("content", "layers", "images", "holds", "quarantine", "containers", "pods")


def du_store(root):
    """(bytes, inodes) of what crisp keeps under root, as `du -x` counts them."""
    return du(*(os.path.join(root, top) for top in STORE_DIRS))


def fs_info(d):
    r = d.image.ImageFsInfo(api_pb2.ImageFsInfoRequest(), timeout=10)
    assert len(r.image_filesystems) == 1 and len(r.container_filesystems) == 1
    i, c = r.image_filesystems[0], r.container_filesystems[0]
    # one filesystem, reported under both names
    assert (i.fs_id.mountpoint, i.used_bytes.value, i.inodes_used.value) == \
        (c.fs_id.mountpoint, c.used_bytes.value, c.inodes_used.value)
    return i.used_bytes.value, i.inodes_used.value


def assert_matches_du(d, what):
    (b, n), (db, dn) = fs_info(d), du_store(d.root)
    assert abs(b - db) <= 64 * 1024 + db // 100, f"{what}: ImageFsInfo {b} B, du {db} B"
    assert abs(n - dn) <= 16, f"{what}: ImageFsInfo {n} inodes, du {dn}"
    return b, n


def pull(d, ref):
    return d.image.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=ref)),
                             timeout=60).image_ref


def remove_image(d, ref):
    d.image.RemoveImage(api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=ref)),
                        timeout=30)


def image_status(d, ref):
    return d.image.ImageStatus(api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=ref)),
                               timeout=10).image


def test_image_fs_info_follows_pulls_writes_and_removals_and_matches_du(node):
    d = node.d
    b0, n0 = assert_matches_du(d, "base image only")
    layers = node.registry.ref("layers:1")
    pull(d, layers)
    b1, n1 = assert_matches_du(d, "after a pull")
    assert b1 > b0 and n1 > n0
    # a container's writable layer is on the same filesystem and counts too
    pod = node.run_pod()
    ctr = node.run(pod, cmd=("sh", "-c", "head -c 4194304 /dev/zero > /big; "
                                         "mkdir /many; for i in 1 2 3 4 5 6 7 8 9 10;"
                                         " do touch /many/$i; done; sleep 3600"))
    wait_for(lambda: fs_info(d)[0] - b1 >= 4 << 20, what="the 4 MiB file counted")
    b2, n2 = assert_matches_du(d, "with a writable layer")
    assert (4 << 20) <= b2 - b1 < (5 << 20) and n2 - n1 >= 12
    node.stop(ctr)
    node.remove(ctr)
    node.stop_pod(pod)
    node.remove_pod(pod)
    remove_image(d, layers)
    b3, n3 = assert_matches_du(d, "after the removals")
    assert abs(b3 - b0) <= 64 * 1024 and abs(n3 - n0) <= 8


def test_removing_an_image_a_container_uses_removes_its_names_not_its_layers(node):
    """As containerd: RemoveImage of an image a container runs succeeds; the image is
    gone from ListImages and ImageStatus (kubelet's GC counts it freed), its layers stay
    until the last container using them is removed."""
    d = node.d
    image_id = image_status(d, node.image).id
    pod = node.run_pod()
    ctr = node.run(pod)
    node.wait_state(ctr, RUNNING)
    held = layer_dirs(d.root)
    assert held
    b0, _ = fs_info(d)
    remove_image(d, node.image)
    assert not image_status(d, node.image).id and not image_status(d, image_id).id
    assert image_id not in [i.id for i in d.image.ListImages(api_pb2.ListImagesRequest()).images]
    assert layer_dirs(d.root) == held
    assert node.status(ctr).state == RUNNING
    assert node.sh(ctr, "echo still here")[1] == "still here\n"
    assert node.status(ctr).image_ref == image_id
    e = rpc_error(node.create, pod, name="second")
    assert e.code() == grpc.StatusCode.NOT_FOUND and node.image in e.details()
    assert fs_info(d)[0] >= b0 - 64 * 1024   # the layers are still on disk
    # pulled again, it reuses the layers the container kept
    assert pull(d, node.image) == image_id
    assert layer_dirs(d.root) == held
    remove_image(d, node.image)
    node.stop(ctr)
    node.remove(ctr)
    assert layer_dirs(d.root) == set()


# ---- cgroup driver ---------------------------------------------------------------------

def test_runtime_config_reports_the_configured_cgroup_driver(make_crispd):
    """kubelet >= 1.28 (KubeletCgroupDriverFromCRI) takes --cgroup-driver from here."""
    for name, driver, want in (("fs", None, api_pb2.CGROUPFS),
                               ("sd", "systemd", api_pb2.SYSTEMD)):
        d = make_crispd(name=name, config={"cgroup_driver": driver} if driver else None)
        r = d.runtime.RuntimeConfig(api_pb2.RuntimeConfigRequest(), timeout=5)
        assert r.linux.cgroup_driver == want
        d.stop()
