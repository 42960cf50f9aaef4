#!/bin/bash
# test/bench/streaming.sh BUILD_DIR - streaming benchmark: exec round trip (an Exec
# through the streaming URL over SPDY running `true`, as `crictl exec <ctr> true`, and
# ExecSync `true`) and port-forward throughput (one forwarded connection, and
# BENCH_ST_CONNS at once on one SPDY session) for crispd and Debian's containerd in the
# same run. The setup and the cleanup are lifecycle.sh's (a local registry, one CNI
# bridge network per daemon, both daemons side by side; everything undone at the end);
# streaming_bench.py drives and measures.
# BENCH_LC_SANDBOX=runsc (what `make bench` sets) adds a column for crispd pods under that
# handler.
# env: BENCH_ST_ROUNDS (3), BENCH_ST_EXECS (20 per round), BENCH_ST_MIB (256),
#      BENCH_ST_CONNS (8), and lifecycle.sh's BENCH_LC_SUBNETS, BENCH_LC_KEEP, CRISPD_ARGS
set -euo pipefail
BENCH_MODE=streaming exec "$(dirname "$0")/lifecycle.sh" "$@"
