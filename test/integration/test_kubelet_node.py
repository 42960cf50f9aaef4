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
from registry_fixtures import layer_dirs

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
