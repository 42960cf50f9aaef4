#!/bin/bash
# test/bench/lifecycle.sh BUILD_DIR - pod + container lifecycle benchmark: crispd against
# Debian's containerd + runc, measured in the same run, over the CRI API, with real pod
# networking on both sides.
#
# For each of BENCH_LC_PODS pods (default 50), two at a time (two client threads):
#   RunPodSandbox -> CreateContainer (busybox-static, `sleep 3600`) -> StartContainer ->
#   ExecSync (`echo hi`) -> StopContainer (timeout 0) -> RemoveContainer ->
#   StopPodSandbox -> RemovePodSandbox
# each step timed; the pods run in BENCH_LC_ROUNDS rounds that alternate between the two
# daemons (so a burst of noise on this small, shared machine does not decide a ratio),
# after BENCH_LC_WARMUP untimed lifecycles per daemon that also check states and pod IPs.
# In every round the same CNI conflist also runs alone, without a runtime (ADD, a pause,
# DEL), to estimate the share of RunPodSandbox/StopPodSandbox that is CNI plugin time,
# the same on both sides. Then the memory of each runtime with BENCH_LC_MEM_PODS pods
# (default 20) running, each with its one running container: the daemon plus its
# per-pod/per-container helpers (crispd + crisp-monitor [+ crisp-pause]; containerd +
# containerd-shim-runc-v2 + pause), never the containers' own processes.
# lifecycle_bench.py does the driving and measuring; see there for the details.
#
# Setup, all under a temp dir removed at the end:
# - a local registry (test/fixtures/registry.sh) with crisp-test/busybox:1 (registry.sh
#   push) and bench/pause:1, a static C `pause` built here and packed with umoci, which is
#   containerd's sandbox_image; both images are pulled by both daemons before timing;
# - one CNI conflist per daemon (bridge + host-local + portmap from Debian's
#   containernetworking-plugins), each with its own network name, bridge and /24:
#   crisp-lcbench / crispbench0 and ctrd-lcbench / ctrdbench0, on the first two of
#   10.231.0.0/24, 10.232.0.0/24 ... 10.254.0.0/24 that no address or route of the host
#   overlaps (or BENCH_LC_SUBNETS="A B"); host-local's leases in the temp dir; the script
#   refuses to run if those bridges or iptables names are already in use;
# - pods ask for the cgroup parents /crispbench-<tag>/pod<uid> and /ctrdbench-<tag>/pod<uid>
#   (cgroupfs, as kubelet's cgroupfs driver would) and kubelet's default namespaces
#   (network and IPC per pod, PID per container), so crispd pins the pod's namespaces
#   without a process and containerd runs its pause container;
# - the daemons' roots on the disk, their volatile state dirs on a tmpfs (as /run is on a
#   node); containerd (CRI plugin) gets its own root, state, sockets, runc root, opt dir,
#   netns mounts under its state dir, and restrict_oom_score_adj (this VM refuses the
#   negative oom_score_adj runc would give the pause container otherwise).
# Cleanup (always): both daemons stopped by pid; any container, shim, monitor or pause
# process of the bench left (found by the bench's cgroups and by command lines naming the
# temp dir) is killed; mounts under the temp dir are detached; the bench's cgroups, both
# bridges, the iptables rules and chains whose CNI comment names one of the bench's two
# networks, libcni's cache files for them and the dirs only this run created under
# /var/lib/cni and /run/containerd are removed; net.ipv4.ip_forward (the bridge plugin
# sets it) is put back unless other bridges now exist; the temp dir is removed.
#
# env: BENCH_LC_PODS (50), BENCH_LC_WORKERS (2), BENCH_LC_ROUNDS (5), BENCH_LC_WARMUP (2),
#      BENCH_LC_MEM_PODS (20), BENCH_LC_SUBNETS, CRISPD_ARGS (extra crispd flags),
#      BENCH_LC_KEEP=1 keeps the temp dir (daemon logs; everything else is still undone)
#      BENCH_MODE=streaming runs streaming_bench.py on the same setup instead (what
#      test/bench/streaming.sh does)
set -euo pipefail
B=${1:?usage: lifecycle.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
CRISPD=$B/bin/crispd
REGISTRY="$ROOT/test/fixtures/registry.sh"
CNI_BIN=/usr/lib/cni
NET_CRISP=crisp-lcbench BR_CRISP=crispbench0
NET_CTRD=ctrd-lcbench BR_CTRD=ctrdbench0

need_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "lifecycle.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}
need_pkgs containerd runc containernetworking-plugins umoci skopeo busybox-static \
	docker-registry jq curl python3-grpcio iproute2 iptables gcc libc6-dev
die() { echo "lifecycle.sh: $*" >&2; exit 1; }
CONTAINERD=$(command -v containerd)
runc --version >/dev/null 2>&1 || die "runc does not run (containerd's runtime): $(runc --version 2>&1)"
command -v containerd-shim-runc-v2 >/dev/null || die "containerd-shim-runc-v2 missing"
for p in bridge host-local portmap; do [ -x "$CNI_BIN/$p" ] || die "CNI plugin $CNI_BIN/$p missing"; done
[ -x "$CRISPD" ] && [ -x "$B/bin/crisp-monitor" ] && [ -x "$B/bin/crisp-bench" ] && [ -e "$B/py/api_pb2.py" ] ||
	die "build first: make all $B/bin/crisp-bench $B/py/api_pb2.py"

# ---- the host must not already use what the bench creates ---------------------------
for br in "$BR_CRISP" "$BR_CTRD"; do
	! ip link show "$br" >/dev/null 2>&1 || die "a link named $br exists already (a leftover? ip link del $br)"
done
# two /24s that no address or route of this host overlaps: BENCH_LC_SUBNETS="A B" if
# given (checked), else the first free ones of 10.231.0.0/24, 10.232.0.0/24 ... 10.254.0.0/24
read -r SUBNET_CRISP SUBNET_CTRD < <("$PY" - "${BENCH_LC_SUBNETS:-}" <<'EOF2'
import ipaddress, re, subprocess, sys
used = []
for cmd in (["ip", "-o", "-4", "addr"], ["ip", "-4", "route"]):
    for m in re.finditer(r"(?<![\d.])(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", subprocess.check_output(cmd, text=True)):
        used.append(ipaddress.ip_network(m.group(1), strict=False))
used = [n for n in used if n.prefixlen > 0]   # not the default route
free = lambda n: not any(n.overlaps(u) for u in used)
want = sys.argv[1].split()
if want:
    nets = [ipaddress.ip_network(w) for w in want]
    bad = [str(n) for n in nets if not free(n)]
    if len(nets) != 2 or bad:
        sys.exit(f"lifecycle.sh: BENCH_LC_SUBNETS: {' '.join(bad) or 'need two'} in use on this host")
else:
    nets = [n for n in (ipaddress.ip_network(f"10.{x}.0.0/24") for x in range(231, 255)) if free(n)][:2]
    if len(nets) < 2:
        sys.exit("lifecycle.sh: no two free subnets in 10.231-254.0.0/24 (set BENCH_LC_SUBNETS)")
print(nets[0], nets[1])
EOF2
)
[ -n "${SUBNET_CTRD:-}" ] || exit 1
if iptables-save 2>/dev/null | grep -qE "name: \\\\?\"($NET_CRISP|$NET_CTRD)\\\\?\""; then
	die "iptables already has rules for $NET_CRISP/$NET_CTRD (a leftover run?)"
fi

W=$(mktemp -d /tmp/crisp-lc-bench-XXXXXX)
TAG=${W##*-}
CG_CRISP=crispbench-$TAG CG_CTRD=ctrdbench-$TAG
IP_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
# dirs that libcni (containerd's CNI cache) and the shims (their sockets) may create on
# the host: the ones that do not exist yet are removed at the end if left empty
NEW_DIRS=()
for d in /var/lib/cni /var/lib/cni/results /run/containerd /run/containerd/s; do
	[ -e "$d" ] || NEW_DIRS=("$d" "${NEW_DIRS[@]}")
done
PIDS=()

cg_dirs() { # every directory of the bench's cgroups, deepest first
	local m
	for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do
		for g in "$CG_CRISP" "$CG_CTRD"; do
			[ -d "$m/$g" ] && find "$m/$g" -depth -type d
		done
	done 2>/dev/null || true
}
bench_procs() { # pids whose command line names the temp dir (monitors, shims, crisp-pause)
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF "$W/" && echo "$p"
	done
	return 0
}
ipt_cleanup() { # rules and chains of the nat/filter tables whose CNI comment names our networks
	local t line chain
	for t in nat filter; do
		iptables -t "$t" -S 2>/dev/null | grep -E "name: \\\\?\"($NET_CRISP|$NET_CTRD)\\\\?\"" |
			grep '^-A ' | while read -r line; do
			chain=$(awk '{print $2}' <<<"$line")
			eval "iptables -t $t ${line/-A /-D }" 2>/dev/null || true
			echo "$chain"
		done | sort -u | grep '^CNI-' | grep -vE '^CNI-(HOSTPORT|DN-HOSTPORT)' |
			while read -r chain; do
				# a per-container chain (CNI-<hash>, CNI-DN-<hash>): drop it if nothing
				# else jumps to it
				iptables -t "$t" -S | grep -q -- "-j $chain\$" ||
					{ iptables -t "$t" -F "$chain" && iptables -t "$t" -X "$chain"; } 2>/dev/null || true
			done
	done
}
ctrd_host_leftovers() { # what a containerd stopped with pods left behind outside the temp dir
	local id
	for id in $({ ls "$W/ctrd/root/io.containerd.grpc.v1.cri/sandboxes" \
		"$W/run/ctrd/io.containerd.runtime.v2.task/k8s.io"; } 2>/dev/null | grep -E '^[0-9a-f]{64}$' | sort -u); do
		# libcni's result cache (loopback and the bench network) and the shim's socket, named
		# sha256(<containerd address>/<namespace>/<id>) under /run/containerd/s
		rm -f /var/lib/cni/results/*-"$id"-* \
			"/run/containerd/s/$(printf '%s' "$W/ctrd/containerd.sock/k8s.io/$id" | sha256sum | cut -c1-64)"
	done
}
cleanup() {
	local rc=$? p m d
	set +e
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
	done
	# whatever of the bench still runs: containers and pause (in the bench's cgroups),
	# then monitors, shims and crisp-pause (their command lines name the temp dir)
	for _ in 1 2 3; do
		for d in $(cg_dirs); do
			[ -e "$d/cgroup.procs" ] && for p in $(cat "$d/cgroup.procs"); do kill -KILL "$p" 2>/dev/null; done
		done
		for p in $(bench_procs); do kill -KILL "$p" 2>/dev/null; done
		sleep 0.2
	done
	"$REGISTRY" stop "$W/reg" >/dev/null 2>&1
	ctrd_host_leftovers
	for m in $(findmnt -rn -o TARGET | grep -F "$W/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
	for d in $(cg_dirs); do rmdir "$d" 2>/dev/null; done
	[ -z "$(cg_dirs)" ] || echo "lifecycle.sh: cgroups left: $(cg_dirs | head -3)" >&2
	for br in "$BR_CRISP" "$BR_CTRD"; do ip link show "$br" >/dev/null 2>&1 && ip link del "$br"; done
	ipt_cleanup
	rm -f /var/lib/cni/results/"$NET_CRISP"-* /var/lib/cni/results/"$NET_CTRD"-* 2>/dev/null
	rm -rf /var/lib/cni/networks/"$NET_CRISP" /var/lib/cni/networks/"$NET_CTRD" 2>/dev/null
	for d in "${NEW_DIRS[@]}"; do rmdir "$d" 2>/dev/null; done
	# the bridge plugin turned forwarding on; put it back unless another bridge (someone
	# else's pod network) now relies on it
	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$IP_FORWARD" ]; then
		if [ -z "$(ip -o link show type bridge)" ]; then
			echo "$IP_FORWARD" >/proc/sys/net/ipv4/ip_forward
		else
			echo "lifecycle.sh: net.ipv4.ip_forward left at 1: bridges of others exist" >&2
		fi
	fi
	left=$(bench_procs)
	[ -z "$left" ] || echo "lifecycle.sh: processes left: $left" >&2
	if [ "${BENCH_LC_KEEP:-0}" = 1 ]; then
		findmnt -rn -o TARGET | grep -qF "$W/" || echo "lifecycle.sh: logs kept in $W" >&2
	else
		rm -rf --one-file-system "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- images: busybox-static (registry.sh) and a static pause --------------------------
"$REGISTRY" start "$W/reg" 2>"$W/registry-start.log" || { cat "$W/registry-start.log" >&2; exit 1; }
PORT=$(cat "$W/reg/port")
REG=127.0.0.1:$PORT
"$REGISTRY" push "$W/reg" 2>"$W/registry-push.log" || { cat "$W/registry-push.log" >&2; exit 1; }
BUSYBOX=$REG/crisp-test/busybox:1
PAUSE=$REG/bench/pause:1
mkdir -p "$W/pause/rootfs"
cat >"$W/pause/pause.c" <<'EOF'
/* pause: the pod's infra process for containerd's sandbox, as Kubernetes' own pause:
 * sleeps, reaps orphans, exits 0 on SIGINT/SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) ; }
int main(void)
{
  struct sigaction sa = {0};
  sa.sa_handler = stop;
  sigaction(SIGINT, &sa, 0);
  sigaction(SIGTERM, &sa, 0);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, 0);
  for (;;)
    pause();
}
EOF
gcc -static -Os -s -o "$W/pause/rootfs/pause" "$W/pause/pause.c"
(
	cd "$W/pause"
	(cd rootfs && tar --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@1704067200 -cf ../layer.tar pause)
	umoci init --layout oci
	umoci new --image oci:pause
	umoci raw add-layer --image oci:pause --history.created 2024-01-01T00:00:00Z \
		--history.created_by "crisp lifecycle bench: static pause" layer.tar
	umoci config --image oci:pause --no-history --created 2024-01-01T00:00:00Z --os linux \
		--architecture amd64 --config.entrypoint /pause
) >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$W/pause/oci:pause" "docker://$PAUSE"

# ---- CNI: one network per daemon ----------------------------------------------------
conflist() { # NAME BRIDGE SUBNET DATADIR
	cat <<EOT
{
  "cniVersion": "1.0.0",
  "name": "$1",
  "plugins": [
    {
      "type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$4", "ranges": [[{ "subnet": "$3" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
  ]
}
EOT
}
mkdir -p "$W/crisp/cni" "$W/ctrd/cni" "$W/crisp/logs" "$W/ctrd/logs" "$W/run" "$W/cni-only"
# the volatile state dirs on a tmpfs, as /run is on a node (crispd's default state is
# /run/crisp, containerd's /run/containerd); the roots stay on the disk under /tmp
mount -t tmpfs -o mode=0711,size=512m crisp-lc-bench "$W/run"
conflist "$NET_CRISP" "$BR_CRISP" "$SUBNET_CRISP" "$W/crisp/ipam" >"$W/crisp/cni/10-$NET_CRISP.conflist"
conflist "$NET_CTRD" "$BR_CTRD" "$SUBNET_CTRD" "$W/ctrd/ipam" >"$W/ctrd/cni/10-$NET_CTRD.conflist"

# ---- daemons ------------------------------------------------------------------------
wait_sock() { # SOCKET PID
	local _
	for _ in $(seq 1 200); do
		"$B/bin/crisp-bench" "$1" Version 0.01 1 >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || { echo "lifecycle.sh: daemon for $1 exited" >&2; return 1; }
		sleep 0.05
	done
	echo "lifecycle.sh: no answer on $1" >&2; return 1
}

printf '{"cni":{"conf_dir":"%s","bin_dirs":["%s"]},"registries":{"insecure":["%s"]}}\n' \
	"$W/crisp/cni" "$CNI_BIN" "$REG" >"$W/crisp/config.json"
"$CRISPD" --config "$W/crisp/config.json" ${CRISPD_ARGS:-} --root "$W/crisp/root" \
	--state "$W/run/crisp" --listen "$W/crisp/crisp.sock" --log-level warn 2>"$W/crisp/log" &
CRISP_PID=$!; PIDS+=("$CRISP_PID")

cat >"$W/ctrd/config.toml" <<EOT
version = 2
root = "$W/ctrd/root"
state = "$W/run/ctrd"
[grpc]
  address = "$W/ctrd/containerd.sock"
[ttrpc]
  address = "$W/ctrd/containerd-ttrpc.sock"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/ctrd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = "$PAUSE"
  disable_apparmor = true
  # this host refuses to lower oom_score_adj (runc would fail writing the sandbox's -998)
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$W/ctrd/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "$W/run/ctrd-runc"
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOT
"$CONTAINERD" --config "$W/ctrd/config.toml" 2>"$W/ctrd/log" &
CTRD_PID=$!; PIDS+=("$CTRD_PID")
wait_sock "$W/crisp/crisp.sock" "$CRISP_PID"
wait_sock "$W/ctrd/containerd.sock" "$CTRD_PID"
sleep 2

echo
set +e
if [ "${BENCH_MODE:-lifecycle}" = streaming ]; then   # test/bench/streaming.sh
	echo "streaming: exec round trip and port-forward throughput, one pod per daemon," \
		"CNI bridge networking (crispd $SUBNET_CRISP, containerd $SUBNET_CTRD)"
	"$PY" "$HERE/streaming_bench.py" --pygen "$B/py" --busybox "$BUSYBOX" --pause "$PAUSE" \
		--rounds "${BENCH_ST_ROUNDS:-3}" --execs "${BENCH_ST_EXECS:-20}" \
		--bytes "$((${BENCH_ST_MIB:-256} << 20))" --conns "${BENCH_ST_CONNS:-8}" \
		--daemon "crispd,$W/crisp/crisp.sock,$CRISP_PID,$W/run/crisp,/$CG_CRISP,$W/crisp/logs,$SUBNET_CRISP" \
		--daemon "containerd,$W/ctrd/containerd.sock,$CTRD_PID,$W/ctrd,/$CG_CTRD,$W/ctrd/logs,$SUBNET_CTRD" \
		${BENCH_LC_SANDBOX:+--daemon "crispd-$BENCH_LC_SANDBOX,$W/crisp/crisp.sock,$CRISP_PID,$W/run/crisp,/$CG_CRISP,$W/crisp/logs,$SUBNET_CRISP,$BENCH_LC_SANDBOX"}
	rc=$?
	[ $rc -eq 0 ] || { echo "streaming.sh: failed; crispd log:" >&2; tail -20 "$W/crisp/log" >&2
		echo "containerd log:" >&2; tail -20 "$W/ctrd/log" >&2; exit $rc; }
	echo "containerd: $("$CONTAINERD" --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
	exit 0
fi
echo "pod+container lifecycle: ${BENCH_LC_PODS:-50} pods per daemon, ${BENCH_LC_WORKERS:-2} at a time," \
	"CNI bridge networking (crispd $SUBNET_CRISP, containerd $SUBNET_CTRD)"
"$PY" "$HERE/lifecycle_bench.py" --pygen "$B/py" --busybox "$BUSYBOX" --pause "$PAUSE" \
	--pods "${BENCH_LC_PODS:-50}" --workers "${BENCH_LC_WORKERS:-2}" \
	--rounds "${BENCH_LC_ROUNDS:-5}" --warmup "${BENCH_LC_WARMUP:-2}" \
	--mem-pods "${BENCH_LC_MEM_PODS:-20}" \
	--cni-conf "$W/crisp/cni/10-$NET_CRISP.conflist" --cni-bin "$CNI_BIN" --cni-dir "$W/cni-only" \
	--daemon "crispd,$W/crisp/crisp.sock,$CRISP_PID,$W/run/crisp,/$CG_CRISP,$W/crisp/logs,$SUBNET_CRISP" \
	--daemon "containerd,$W/ctrd/containerd.sock,$CTRD_PID,$W/ctrd,/$CG_CTRD,$W/ctrd/logs,$SUBNET_CTRD" \
	${BENCH_LC_SANDBOX:+--daemon "crispd-$BENCH_LC_SANDBOX,$W/crisp/crisp.sock,$CRISP_PID,$W/run/crisp,/$CG_CRISP,$W/crisp/logs,$SUBNET_CRISP,$BENCH_LC_SANDBOX"}
rc=$?
set -e
if [ $rc -ne 0 ]; then
	echo "lifecycle.sh: the lifecycle benchmark failed; crispd log:" >&2; tail -20 "$W/crisp/log" >&2
	echo "containerd log:" >&2; tail -20 "$W/ctrd/log" >&2
	exit $rc
fi
echo "containerd: $("$CONTAINERD" --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
