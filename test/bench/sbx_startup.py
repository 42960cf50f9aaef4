"""Start-up added by crisp-sandbox: runs a static no-op natively and under the sandbox,
interleaved, and prints the medians and their difference (ms). Interleaving and medians
keep a busy machine's noise out of the difference."""
import statistics
import subprocess
import sys
import time

sbx, prog = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
nat, san = [], []
for _ in range(n):
    for cmd, out in (([prog, "noop"], nat), ([sbx, "run", "--", prog, "noop"], san)):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        out.append((time.perf_counter() - t0) * 1000)
a, b = statistics.median(nat), statistics.median(san)
print(f"native {a:.2f} ms  sandbox {b:.2f} ms  added {b - a:.2f} ms")
