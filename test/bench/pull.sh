#!/bin/bash
# test/bench/pull.sh BUILD_DIR - image pull benchmark: crispd against Debian's containerd,
# measured in the same run, over the CRI API (PullImage), from a local registry.
#
# The image: busybox-static plus 5 data layers of ~28 MiB each (a 12 MiB incompressible
# file, 100 files of 128 KiB mixing random and text blocks, 500 small text files), ~145 MiB
# unpacked, ~105 MiB gzip-compressed, generated deterministically by pull_gen.py and built
# with umoci. It is built once into BUILD_DIR/pull-bench (an OCI layout) and rebuilt only
# when the stamp (a hash of the generator and of the build steps below) changes.
#
# Each run: a registry (test/fixtures/registry.sh start) on 127.0.0.1:<free port>, the image
# pushed with skopeo, crispd and containerd started on their own socket, root and state
# under a temp dir (containerd reaches the registry over http through a CRI registry
# mirror entry), then pull_bench.py pulls the image BENCH_PULL_ROUNDS times through each
# daemon (alternating, RemoveImage in between, each pull a full download and unpack) and
# reports the median pull time, the peak RSS of each daemon plus its children, sampled
# every BENCH_PULL_INTERVAL seconds, and the ratios. Everything is stopped by pid and the
# temp dir removed at the end.
# env: BENCH_PULL_ROUNDS (default 3), BENCH_PULL_INTERVAL (default 0.025),
#      BENCH_PULL_CACHE (default BUILD_DIR/pull-bench), CRISPD_ARGS (extra crispd flags)
set -euo pipefail
B=${1:?usage: pull.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${BENCH_PULL_ROUNDS:-3}
INTERVAL=${BENCH_PULL_INTERVAL:-0.025}
CACHE=${BENCH_PULL_CACHE:-$B/pull-bench}
PY=/usr/bin/python3
CRISPD=$B/bin/crispd
REGISTRY="$ROOT/test/fixtures/registry.sh"
IMAGE_BUILD_VERSION=2   # bump when build_image changes what it makes

need_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "pull.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}
need_pkgs containerd umoci skopeo busybox-static docker-registry jq curl python3-grpcio
CONTAINERD=$(command -v containerd)
[ -x "$CRISPD" ] && [ -x "$B/bin/crisp-pull" ] && [ -e "$B/py/api_pb2.py" ] ||
	{ echo "pull.sh: build first: make all $B/py/api_pb2.py" >&2; exit 2; }

# ---- the image, cached -------------------------------------------------------------
STAMP="v$IMAGE_BUILD_VERSION $(sha256sum "$HERE/pull_gen.py" | cut -c1-16) $(umoci --version | tr -d '\n')"

# Layers are made with GNU tar (sorted names, numeric owners, one mtime) and added with
# `umoci raw add-layer`: Debian's umoci 0.4.7 `insert` writes tar streams that end early
# (the last file's padding and the end-of-archive blocks are missing), which crispd
# rightly refuses as truncated.
EPOCH=1704067200   # 2024-01-01T00:00:00Z
mklayer() { # DIR OUT.tar
	(cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$2.list"
	tar --format=gnu --no-recursion --numeric-owner --owner=0 --group=0 --mtime="@$EPOCH" \
		-C "$1" -cf "$2" -T "$2.list"
	rm -f "$2.list"
}
add_layer() { # OCI TAR COMMENT
	umoci raw add-layer --image "$1:big" --history.created 2024-01-01T00:00:00Z \
		--history.created_by "crisp pull benchmark: $3" "$2"
}
build_image() {
	local tmp=$CACHE.tmp oci i
	rm -rf "$tmp" "$CACHE"
	mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp"
	oci=$tmp/oci
	echo "pull.sh: building the benchmark image in $CACHE (once)" >&2
	cp /bin/busybox "$tmp/rootfs/bin/busybox"
	for a in sh ls cat echo sleep true; do ln -s busybox "$tmp/rootfs/bin/$a"; done
	echo "root:x:0:0:root:/root:/bin/sh" >"$tmp/rootfs/etc/passwd"
	echo "root:x:0:" >"$tmp/rootfs/etc/group"
	umoci init --layout "$oci"
	umoci new --image "$oci:big"
	mklayer "$tmp/rootfs" "$tmp/layer.tar"
	add_layer "$oci" "$tmp/layer.tar" "busybox"
	for i in 1 2 3 4 5; do
		rm -rf "$tmp/layer" "$tmp/layer.tar"
		"$PY" "$HERE/pull_gen.py" "$tmp/layer/data/$i" "$i"
		mklayer "$tmp/layer" "$tmp/layer.tar"
		add_layer "$oci" "$tmp/layer.tar" "data layer $i"
	done
	umoci config --image "$oci:big" --no-history --created 2024-01-01T00:00:00Z \
		--os linux --architecture amd64 --config.cmd /bin/sh --config.env PATH=/bin \
		--config.workingdir /
	umoci gc --layout "$oci"
	rm -rf "$tmp/rootfs" "$tmp/layer" "$tmp/layer.tar"
	echo "$STAMP" >"$tmp/stamp"
	mv "$tmp" "$CACHE"
}

if [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$STAMP" ]; then
	build_image
fi

# ---- registry and daemons ----------------------------------------------------------
W=$(mktemp -d /tmp/crisp-pull-bench-XXXXXX)
PIDS=()
cleanup() {
	local p m
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	"$REGISTRY" stop "$W/reg" >/dev/null 2>&1 || true
	for m in $(findmnt -rn -o TARGET | grep -F "$W/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT

"$REGISTRY" start "$W/reg" 2>"$W/registry-start.log" || { cat "$W/registry-start.log" >&2; exit 1; }
PORT=$(cat "$W/reg/port")
REG=127.0.0.1:$PORT
REF=$REG/crisp-bench/big:1
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$CACHE/oci:big" "docker://$REF"
PACKED=$(jq '[.layers[].size] | add' <(skopeo inspect --raw --tls-verify=false "docker://$REF"))

wait_sock() { # SOCKET PID
	local i
	for i in $(seq 1 200); do
		"$B/bin/crisp-bench" "$1" Version 0.01 1 >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || { echo "pull.sh: daemon for $1 exited" >&2; return 1; }
		sleep 0.05
	done
	echo "pull.sh: no answer on $1" >&2; return 1
}

mkdir -p "$W/crisp"
printf '{"cni":{"conf_dir":"%s"},"registries":{"insecure":["%s"]}}\n' "$W/crisp/cni" "$REG" \
	>"$W/crisp/config.json"
"$CRISPD" --config "$W/crisp/config.json" ${CRISPD_ARGS:-} --root "$W/crisp/root" \
	--state "$W/crisp/state" --listen "$W/crisp/crisp.sock" --log-level warn 2>"$W/crisp/log" &
CRISP_PID=$!; PIDS+=("$CRISP_PID")

# containerd 1.6: the CRI plugin's registry.mirrors entry gives it the http endpoint
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
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOT
"$CONTAINERD" --config "$W/ctrd/config.toml" 2>"$W/ctrd/log" &
CTRD_PID=$!; PIDS+=("$CTRD_PID")
wait_sock "$W/crisp/crisp.sock" "$CRISP_PID"
wait_sock "$W/ctrd/containerd.sock" "$CTRD_PID"
sleep 2

echo
echo "image pull: $REF, 6 layers, $((PACKED / 1048576)) MiB compressed, $ROUNDS rounds each (one line per pull):"
set +e
"$PY" "$HERE/pull_bench.py" --pygen "$B/py" --image "$REF" --rounds "$ROUNDS" \
	--interval "$INTERVAL" --packed-mib "$((PACKED * 9 / 10 / 1048576))" \
	--daemon "crispd,$W/crisp/crisp.sock,$CRISP_PID,$W/crisp/root" \
	--daemon "containerd,$W/ctrd/containerd.sock,$CTRD_PID,$W/ctrd/root" >"$W/table"
rc=$?
set -e
if [ $rc -ne 0 ]; then
	echo "pull.sh: the pull benchmark failed; crispd log:" >&2; tail -20 "$W/crisp/log" >&2
	echo "containerd log:" >&2; tail -20 "$W/ctrd/log" >&2
	exit $rc
fi
printf '\n%-34s %12s %12s %8s\n' "measure" "crispd" "containerd" "ratio"
cat "$W/table"
