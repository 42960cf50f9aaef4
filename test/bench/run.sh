#!/bin/bash
# test/bench/run.sh BUILD_DIR - crispd against Debian's containerd, measured in the same run:
#   idle RSS (after start-up settles) and unary calls per second (Version, Status,
#   ListContainers on an empty store) from one load client (crisp-bench, grpc C core),
#   with 1 and with 16 calls in flight. Prints a table and the ratios.
# Each daemon gets its own socket, root and state dir under a temp dir, removed at the end.
# Each rate is the median of ROUNDS runs that alternate between the two daemons, so a
# burst of noise on this 2-core machine does not decide a ratio.
# env: BENCH_SECONDS (default 3 per run), BENCH_ROUNDS (default 3)
set -euo pipefail
B=${1:?usage: run.sh BUILD_DIR}
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
CRISPD=$B/bin/crispd
BENCH=$B/bin/crisp-bench
CONTAINERD=$(command -v containerd || true)
[ -x "$CONTAINERD" ] || { echo "containerd not installed (apt-get install containerd)" >&2; exit 2; }
W=$(mktemp -d /tmp/crisp-bench-XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for m in $(findmnt -rn -o TARGET | grep -F "$W/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT

wait_sock() { # SOCKET
	for _ in $(seq 1 200); do
		"$BENCH" "$1" Version 0.01 1 >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "no answer on $1" >&2; return 1
}
rss_kib() { # PID: resident set of the daemon and any children it started
	local total=0 p
	for p in "$1" $(pgrep -P "$1" || true); do
		total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
	done
	echo "$total"
}

# --- crispd
mkdir -p "$W/crisp"
echo '{"cni":{"conf_dir":"'"$W"'/crisp/cni"}}' >"$W/crisp/config.json"
"$CRISPD" --config "$W/crisp/config.json" ${CRISPD_ARGS:-} --root "$W/crisp/root" --state "$W/crisp/state" \
	--listen "$W/crisp/crisp.sock" --log-level warn 2>"$W/crisp/log" &
CRISP_PID=$!; PIDS+=("$CRISP_PID")
wait_sock "$W/crisp/crisp.sock"

# --- containerd (Debian's), CRI plugin on, its own dirs and sockets
mkdir -p "$W/ctrd"
cat >"$W/ctrd/config.toml" <<EOT
version = 2
root = "$W/ctrd/root"
state = "$W/ctrd/state"
[grpc]
  address = "$W/ctrd/containerd.sock"
[ttrpc]
  address = "$W/ctrd/containerd-ttrpc.sock"
[debug]
  level = "warn"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$W/ctrd/cni"
EOT
"$CONTAINERD" --config "$W/ctrd/config.toml" 2>"$W/ctrd/log" &
CTRD_PID=$!; PIDS+=("$CTRD_PID")
wait_sock "$W/ctrd/containerd.sock"

sleep 3  # let both settle before reading idle memory
CRISP_RSS=$(rss_kib "$CRISP_PID")
CTRD_RSS=$(rss_kib "$CTRD_PID")

printf '\n%-34s %12s %12s %8s\n' "measure" "crispd" "containerd" "ratio"
printf '%-34s %9.1f MiB %9.1f MiB %7.1fx  (containerd / crispd)\n' "idle RSS" \
	"$(echo "$CRISP_RSS/1024" | bc -l)" "$(echo "$CTRD_RSS/1024" | bc -l)" \
	"$(echo "$CTRD_RSS/$CRISP_RSS" | bc -l)"
field() { sed -E "s/.*$1=([0-9.]+).*/\1/"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for depth in 1 16; do
	for m in Version Status ListContainers; do
		: >"$W/a"; : >"$W/b"
		for _ in $(seq 1 "$ROUNDS"); do
			"$BENCH" "$W/crisp/crisp.sock" "$m" "$SECS" "$depth" >>"$W/a"
			"$BENCH" "$W/ctrd/containerd.sock" "$m" "$SECS" "$depth" >>"$W/b"
		done
		ra=$(field rate <"$W/a" | median); rb=$(field rate <"$W/b" | median)
		pa=$(field p99_us <"$W/a" | median); pb=$(field p99_us <"$W/b" | median)
		printf '%-34s %10.0f/s %10.0f/s %7.2fx  (crispd / containerd)  p99 %sus vs %sus\n' \
			"$m calls, $depth in flight" "$ra" "$rb" "$(echo "$ra/$rb" | bc -l)" "$pa" "$pb"
	done
done
# after serving: the request path's code is resident again (crispd drops only the pages
# start-up alone used, trim.h), and containerd's heap has grown; both read 3 s later
sleep 3
CRISP_RSS2=$(rss_kib "$CRISP_PID")
CTRD_RSS2=$(rss_kib "$CTRD_PID")
printf '%-34s %9.1f MiB %9.1f MiB %7.1fx  (containerd / crispd)\n' "idle RSS after the load" \
	"$(echo "$CRISP_RSS2/1024" | bc -l)" "$(echo "$CTRD_RSS2/1024" | bc -l)" \
	"$(echo "$CTRD_RSS2/$CRISP_RSS2" | bc -l)"
anon_kib() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
printf '%-34s %9.1f MiB %9.1f MiB %7.1fx  (containerd / crispd)\n' "of it anonymous (heap, stacks)" \
	"$(echo "$(anon_kib "$CRISP_PID")/1024" | bc -l)" "$(echo "$(anon_kib "$CTRD_PID")/1024" | bc -l)" \
	"$(echo "$(anon_kib "$CTRD_PID")/$(anon_kib "$CRISP_PID")" | bc -l)"
echo "containerd: $("$CONTAINERD" --version)"
