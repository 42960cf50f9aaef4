#!/usr/bin/python3
"""pull_bench.py - the driver of the image pull benchmark (test/bench/pull.sh starts the
registry and the daemons, this pulls and measures).

  pull_bench.py --pygen DIR --image REF --rounds N --interval S \\
      --daemon crispd,SOCK,PID,ROOT --daemon containerd,SOCK,PID,ROOT

Each round pulls REF once through every daemon's CRI ImageService (the same client for
all), the order swapped every round, and removes it again (RemoveImage) so that every
pull is a full download and unpack. Before each pull: the image must be absent, the
daemon's store must be back to (nearly) empty, and the machine's dirty pages are written
out (sync), so no daemon pays for another's writes. During the pull a thread samples,
every S seconds, the resident set (from /proc) of the daemon plus all its descendants
(crispd's crisp-pull helpers); the peak of that sum is reported.

Checks that make the figures honest (a failed check fails the run):
  - after the pull, the daemon's store grew by at least the image's unpacked size
    (containerd: its overlayfs snapshots, i.e. CRI's PullImage unpacked; crispd: layers/)
    and, for containerd, its content store by at least the compressed size (downloaded);
  - after RemoveImage, the store shrank back (containerd's content and snapshots were
    garbage-collected, so the next round downloads and unpacks again).

Prints the table rows (run.sh style) on stdout, one line per pull on stderr.
"""
import argparse
import os
import statistics
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20


def du(path):
    """Bytes allocated under path (like du -s), 0 if it does not exist."""
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total


def ppid_map():
    m = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                m[int(p)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return m


def tree(pid):
    """pid and all its descendants."""
    m = ppid_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in m.items() if pp == p)
    return out


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0  # it exited between the scan and the read


class Sampler(threading.Thread):
    """Peak of the summed RSS of a process tree, sampled every interval seconds. The tree
    is rescanned every 4th sample (a full /proc scan costs ~2 ms; reading known pids'
    statm costs ~20 us each), and at the start."""

    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop = threading.Event()
        self.peak = 0
        self.peak_parts = {}
        self.samples = 0
        self.max_procs = 1

    def run(self):
        pids = tree(self.pid)
        n = 0
        while True:
            if n % 4 == 0:
                pids = tree(self.pid)
            parts = {p: rss_bytes(p) for p in pids}
            total = sum(parts.values())
            self.samples += 1
            self.max_procs = max(self.max_procs, sum(1 for v in parts.values() if v))
            if total > self.peak:
                self.peak, self.peak_parts = total, parts
            n += 1
            if self.stop.wait(self.interval):
                return


class Daemon:
    def __init__(self, spec, grpc, api_pb2, api_pb2_grpc):
        self.name, self.sock, pid, self.root = spec.split(",", 3)
        self.pid = int(pid)
        self.pb = api_pb2
        self.chan = grpc.insecure_channel("unix://" + self.sock)
        self.img = api_pb2_grpc.ImageServiceStub(self.chan)
        self.times, self.peaks, self.helper_peaks, self.disk = [], [], [], []
        if self.name == "containerd":
            self.content = os.path.join(self.root, "io.containerd.content.v1.content")
            self.unpacked = os.path.join(self.root, "io.containerd.snapshotter.v1.overlayfs")
        else:
            self.content = None
            self.unpacked = os.path.join(self.root, "layers")

    def spec(self, ref):
        return self.pb.ImageSpec(image=ref)

    def present(self, ref):
        r = self.img.ImageStatus(self.pb.ImageStatusRequest(image=self.spec(ref)), timeout=60)
        return r.image.id if r.HasField("image") and r.image.id else None

    def remove(self, ref):
        if self.present(ref):
            self.img.RemoveImage(self.pb.RemoveImageRequest(image=self.spec(ref)), timeout=300)
        if self.present(ref):
            raise SystemExit(f"{self.name}: {ref} still listed after RemoveImage")

    def sizes(self):
        return (du(self.content) if self.content else 0), du(self.unpacked)


def fail(msg):
    print(f"pull_bench: {msg}", file=sys.stderr)
    sys.exit(1)


def pull_once(d, ref, interval, unpacked_min, packed_min, rnd):
    d.remove(ref)
    c0, u0 = d.sizes()
    if c0 > 8 * MiB or u0 > 8 * MiB:
        fail(f"{d.name}: store not empty before round {rnd} (content {c0 / MiB:.1f} MiB, "
             f"unpacked {u0 / MiB:.1f} MiB): RemoveImage did not collect the last pull")
    os.sync()
    time.sleep(0.3)
    s = Sampler(d.pid, interval)
    s.start()
    t0 = time.monotonic()
    r = d.img.PullImage(d.pb.PullImageRequest(image=d.spec(ref)), timeout=900)
    dt = time.monotonic() - t0
    s.stop.set()
    s.join()
    c1, u1 = d.sizes()
    helper = sum(v for p, v in s.peak_parts.items() if p != d.pid)
    print(f"  round {rnd} {d.name:<10} {dt:6.2f} s  peak RSS {s.peak / MiB:6.1f} MiB "
          f"(daemon {s.peak_parts.get(d.pid, 0) / MiB:.1f} + children {helper / MiB:.1f}, "
          f"{s.samples} samples, up to {s.max_procs} processes)  "
          f"store +{(u1 - u0) / MiB:.0f} MiB unpacked"
          + (f", +{(c1 - c0) / MiB:.0f} MiB content" if d.content else "")
          + f"  id {r.image_ref[:19]}", file=sys.stderr)
    if u1 - u0 < unpacked_min:
        fail(f"{d.name}: the pull unpacked only {(u1 - u0) / MiB:.1f} MiB "
             f"(expected at least {unpacked_min / MiB:.0f} MiB)")
    if d.content and c1 - c0 < packed_min:
        fail(f"{d.name}: the pull stored only {(c1 - c0) / MiB:.1f} MiB of content "
             f"(expected at least {packed_min / MiB:.0f} MiB downloaded)")
    d.times.append(dt)
    d.peaks.append(s.peak)
    d.helper_peaks.append(helper)
    d.disk.append((c1 - c0) + (u1 - u0))
    d.remove(ref)
    c2, u2 = d.sizes()
    if c2 > 8 * MiB or u2 > 8 * MiB:
        fail(f"{d.name}: RemoveImage left content {c2 / MiB:.1f} MiB, unpacked {u2 / MiB:.1f} "
             f"MiB: the next round would not download again")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pygen", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=float, default=0.025)
    ap.add_argument("--unpacked-mib", type=float, default=130, help="least growth of a store")
    ap.add_argument("--packed-mib", type=float, default=95, help="least content downloaded")
    ap.add_argument("--daemon", action="append", required=True, help="NAME,SOCK,PID,ROOT")
    a = ap.parse_args()
    sys.path.insert(0, a.pygen)
    import grpc
    import api_pb2
    import api_pb2_grpc
    ds = [Daemon(s, grpc, api_pb2, api_pb2_grpc) for s in a.daemon]
    for rnd in range(1, a.rounds + 1):
        order = ds if rnd % 2 else list(reversed(ds))
        for d in order:
            pull_once(d, a.image, a.interval, a.unpacked_mib * MiB, a.packed_mib * MiB, rnd)
    crisp, ctrd = ds[0], ds[1]
    tc, tk = statistics.median(crisp.times), statistics.median(ctrd.times)
    pc, pk = max(crisp.peaks), max(ctrd.peaks)
    runs = lambda d: " ".join(f"{t:.2f}" for t in d.times)
    print(f"{'image pull+unpack, median of ' + str(a.rounds):<34} {tc:10.2f} s {tk:10.2f} s "
          f"{tk / tc:7.2f}x  (containerd / crispd)  runs {runs(crisp)} vs {runs(ctrd)} s")
    print(f"{'peak RSS during the pull':<34} {pc / MiB:8.1f} MiB {pk / MiB:8.1f} MiB "
          f"{pk / pc:7.1f}x  (containerd / crispd)  crisp-pull alone {max(crisp.helper_peaks) / MiB:.1f} MiB")
    print(f"{'disk written per pull':<34} {statistics.median(crisp.disk) / MiB:8.0f} MiB "
          f"{statistics.median(ctrd.disk) / MiB:8.0f} MiB")
    ok_t = tk / tc >= 1.5
    ok_m = pc < 32 * MiB
    print(f"targets: crispd >= 1.5x faster: {'met' if ok_t else 'MISSED'} ({tk / tc:.2f}x); "
          f"crispd peak RSS < 32 MiB: {'met' if ok_m else 'MISSED'} ({pc / MiB:.1f} MiB)")


if __name__ == "__main__":
    main()
