"""Store integrity: a record corrupted on disk while crispd is stopped is quarantined at
the next start with a warn line naming it, never a crash and never dropped silently;
everything else stays usable. `crispd --check-store` reports what it finds (counts per
kind, each problem with its path and reason) and changes nothing unless --repair."""
import json
import os
import subprocess

from conftest import CRISPD, api_pb2, mounts_under
from pod_helpers import CREATED, RUNNING, start_again


def check_store(d, *extra):
    r = subprocess.run([CRISPD, "--config", d.config_path, "--root", d.root, "--state", d.state,
                        "--check-store", *extra], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def tree(path):
    """Every file under path with its size and mtime (what "changes nothing" compares)."""
    out = {}
    for dp, dns, fns in os.walk(path):
        for n in fns + dns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_check_store_on_an_empty_or_missing_root_is_clean(make_crispd):
    d = make_crispd(start=False)
    rc, out, err = check_store(d)
    assert rc == 0, out + err
    assert "problems: 0" in out
    assert not os.path.exists(d.root), "a check-only run must not create the store"


def test_check_store_finds_corrupt_records_and_repair_quarantines_them(make_crispd):
    d = make_crispd(start=True)
    d.stop()
    pods = os.path.join(d.root, "pods")
    ctrs = os.path.join(d.root, "containers")
    images = os.path.join(d.root, "images")
    layers = os.path.join(d.root, "layers")
    bad = {
        os.path.join(pods, "a" * 64 + ".json"): "{not json",
        os.path.join(ctrs, "b" * 64 + ".json"): json.dumps({"id": "b" * 64}),
        os.path.join(images, "c" * 64 + ".json"): "[]",
        os.path.join(layers, "d" * 64 + ".json"): "\0\0\0",
    }
    for p, text in bad.items():
        with open(p, "w") as f:
            f.write(text)
    before = tree(d.root)

    rc, out, err = check_store(d)
    assert rc == 1, out + err
    assert "problems: 4" in out, out
    for p in bad:
        assert p in out, f"{p} not reported:\n{out}"
    assert "malformed" in out or "parse" in out
    assert tree(d.root) == before, "--check-store changed the store"

    rc, out, err = check_store(d, "--repair")
    assert rc == 1, out + err
    assert out.count("moved to") == 4, out
    q = sorted(os.listdir(os.path.join(d.root, "quarantine")))
    assert q == sorted(["pod-" + "a" * 64 + ".json", "container-" + "b" * 64 + ".json",
                        "image-" + "c" * 64 + ".json", "layer-" + "d" * 64 + ".json"]), q
    for p in bad:
        assert not os.path.exists(p)

    rc, out, err = check_store(d)
    assert rc == 0, out + err
    assert "problems: 0" in out


def test_repair_is_refused_while_crispd_serves_the_root(make_crispd):
    d = make_crispd()
    rc, out, err = check_store(d, "--repair")
    assert rc == 1
    assert "in use by another process" in out, out
    d.runtime.Version(api_pb2.VersionRequest(), timeout=5)


def test_repair_needs_check_store(make_crispd):
    d = make_crispd(start=False)
    r = subprocess.run([CRISPD, "--repair"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--check-store" in r.stderr


def test_corrupt_records_are_quarantined_at_start_and_the_rest_keeps_working(node):
    p1 = node.run_pod(name="keep")
    p2 = node.run_pod(name="lose")
    c1 = node.run(p1, name="runner")
    c2 = node.create(p2, name="orphan")          # its pod record gets corrupted
    c3 = node.create(p1, name="broken")          # its own record gets corrupted
    d = node.d
    assert d.stop() == 0
    pod_rec = os.path.join(d.root, "pods", p2 + ".json")
    ctr_rec = os.path.join(d.root, "containers", c3 + ".json")
    with open(pod_rec, "w") as f:
        f.write('{"id": "' + p2 + '", "config": "zz')     # cut short
    with open(ctr_rec) as f:
        rec = json.load(f)
    rec["config"] = "not hex"
    with open(ctr_rec, "w") as f:
        json.dump(rec, f)

    rc, out, _ = check_store(d)
    assert rc == 1
    assert pod_rec in out and ctr_rec in out
    assert c2 in out and "does not exist" in out    # the container whose pod is gone
    assert "pod=1" in out and "container=2" in out, out

    start_again(node)
    log = d.log()
    assert f'path={pod_rec}' in log and f'path={ctr_rec}' in log, log[-3000:]
    warns = [l for l in log.splitlines() if "level=warn" in l and "quarantined" in l]
    assert len(warns) == 2, warns
    assert os.path.exists(os.path.join(d.root, "quarantine", f"pod-{p2}.json"))
    assert os.path.exists(os.path.join(d.root, "quarantine", f"container-{c3}.json"))
    assert not os.path.exists(pod_rec) and not os.path.exists(ctr_rec)

    # the rest is intact: pod p1 and its running container, the orphan still listed
    assert [p.id for p in node.list_pods()] == [p1]
    ids = {c.id: c.state for c in node.list_ctrs()}
    assert ids == {c1: RUNNING, c2: CREATED}, ids
    assert node.sh(c1, "echo alive")[1] == "alive\n"
    # kubelet's garbage collection removes a container whose pod is gone: that works
    node.remove(c2)
    assert c2 not in {c.id for c in node.list_ctrs()}
    # and new work goes on
    p3 = node.run_pod(name="after")
    c4 = node.run(p3, name="after")
    assert node.sh(c4, "echo new")[1] == "new\n"

    # what the quarantined pod had on the host stays as evidence; the test removes it
    pinned = os.path.join(d.state, "pods", p2)
    for m in sorted(mounts_under(pinned), reverse=True):
        subprocess.run(["umount", "-l", m], check=True)
