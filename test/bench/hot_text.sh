#!/bin/bash
# test/bench/hot_text.sh [BUILD_DIR] - regenerate cmd/crispd-hot.ld (README "Memory").
# Profiles crispd, on an empty root, from its start-up trim on (trim.h) while it serves
# what kubelet polls every second (python3-grpcio), the benchmark's load (crisp-bench, 1
# and 16 in flight) and 3 s of idling, twice: under callgrind (Debian's valgrind) for the
# code it runs, and natively for the read-only data it reads (crispd-split: every page its
# own mapping, test/bench/hot_split.c; smaps's Referenced after clear_refs).
# test/bench/hot_text.py turns both into the linker script; rebuild crispd afterwards.
# valgrind lacks seccomp(2), so the callgrind run's config has no runsc handler (that only
# changes start-up, which the profile leaves out).
set -euo pipefail
B=${1:-build}
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 2; }
make --no-print-directory B="$B" "$B/bin/crispd-split" "$B/bin/crisp-bench" "$B/py/api_pb2.py"
W=$(mktemp -d /tmp/crisp-hot-XXXXXX)
P=
cleanup() {
	[ -z "$P" ] || { kill -TERM "$P" 2>/dev/null || true; wait "$P" 2>/dev/null || true; }
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
echo '{"cni":{"conf_dir":"'"$W"'/cni"},"runtimes":{"runc":{"executor":"namespaces"}}}' >"$W/config.json"
echo '{"cni":{"conf_dir":"'"$W"'/cni"}}' >"$W/native.json"
# part 1: start-up; part 2: from trim_startup_pages to the dump below; then shutdown
valgrind -q --tool=callgrind --dump-instr=yes --dump-before=trim_startup_pages \
	--callgrind-out-file="$W/cg.out" "$B/bin/crispd-split" --config "$W/config.json" --root "$W/root" \
	--state "$W/state" --listen "$W/crisp.sock" --log-level warn &
P=$!
for _ in $(seq 1 600); do [ -e "$W/cg.out.1" ] && [ -S "$W/crisp.sock" ] && break; sleep 0.1; done
[ -e "$W/cg.out.1" ] || { echo "crispd did not start under valgrind" >&2; exit 1; }
poll() {
	/usr/bin/python3 - "$W/crisp.sock" "$B/py" <<'EOT'
import sys, time
sys.path.insert(0, sys.argv[2])
import grpc, api_pb2 as pb, api_pb2_grpc as pg
ch = grpc.insecure_channel('unix:' + sys.argv[1])
rt, im = pg.RuntimeServiceStub(ch), pg.ImageServiceStub(ch)
for i in range(3):
    rt.Version(pb.VersionRequest())
    rt.Status(pb.StatusRequest())
    rt.RuntimeConfig(pb.RuntimeConfigRequest())
    rt.ListPodSandbox(pb.ListPodSandboxRequest())
    rt.ListContainers(pb.ListContainersRequest())
    rt.ListContainerStats(pb.ListContainerStatsRequest())
    rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest())
    im.ImageFsInfo(pb.ImageFsInfoRequest())
    im.ListImages(pb.ListImagesRequest())
    time.sleep(1)
ch.close()
EOT
}
serve() {
	poll
	for depth in 1 16; do
		for m in Version Status ListContainers ListPodSandbox; do
			"$B/bin/crisp-bench" "$W/crisp.sock" "$m" 0.5 "$depth" >/dev/null
		done
	done
	poll
	sleep 3
}
serve
callgrind_control -d "$P" >/dev/null 2>&1
[ -e "$W/cg.out.2" ] || sleep 2
kill -TERM "$P"; wait "$P" || true
rm -f "$W/crisp.sock"
# the data: natively, 3 runs (threads that start while the trim runs vary); the trim
# dropped every page of it not written (trim.h), so a page resident when the load is
# over was read since
for _ in 1 2 3; do
	rm -rf "$W/root2" "$W/state2" "$W/crisp.sock"
	"$B/bin/crispd-split" --config "$W/native.json" --root "$W/root2" --state "$W/state2" \
		--listen "$W/crisp.sock" --log-level warn &
	P=$!
	for _ in $(seq 1 200); do [ -S "$W/crisp.sock" ] && break; sleep 0.05; done
	serve
	awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); m = ($6 ~ /crispd-split$/) ? r[1] : "" }
		/^Rss:/ && m != "" && $2 > 0 { print m }' "/proc/$P/smaps" >>"$W/pages"
	kill -TERM "$P"; wait "$P" || true
done
P=
# --also: what the profile cannot see, found by recording crispd's page faults natively
# (perf record -e page-faults -d): lock contention (valgrind runs one thread at a time:
# absl's spin lock and mutex slow paths, sched_yield, clock_nanosleep), the thread start
# of grpc's timer threads under load (pthread_getschedparam, the cycle clock's frequency),
# the completion queue's ready check and the no-op hook a contended spin lock calls; and
# threads that start while the trim runs, which the profile sees start before it (grpc's
# thread pool and its event engine's poller, crispd's trash and exit watcher)
ALSO=(_ZN4absl7debian313base_internal8SpinLock8SpinLoopEv _ZN4absl7debian313base_internal8SpinLock8SlowLockEv
	AbslInternalSpinLockDelay_debian3 AbslInternalSpinLockWake_debian3 __sched_yield __clock_nanosleep
	pthread_getschedparam __sched_getparam _ZN4absl7debian313base_internal18UnscaledCycleClock9FrequencyEv
	_ZN4absl7debian313base_internal10CycleClock3NowEv _ZN11ExecCtxNext18CheckReadyToFinishEv
	_ZN9grpc_core7ExecCtx18CheckReadyToFinishEv _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE
	_ZN4absl7debian324synchronization_internal6Waiter4WaitENS1_13KernelTimeoutE
	_ZN4absl7debian313base_internal10AtomicHookIPFvPKvlEE13DummyFunctionES4_l
	_ZZN17grpc_event_engine12experimental10ThreadPool11StartThreadESt10shared_ptrINS1_5StateEENS1_17StartThreadReasonEENUlPvE_4_FUNES6_
	_ZN4absl7debian322internal_any_invocable22LocalManagerNontrivialIZN17grpc_event_engine12experimental16PosixEventEngineC4EvEUlvE_EEvNS1_14FunctionToCallEPNS1_15TypeErasedStateES9_
	_ZN4absl7debian322internal_any_invocable12EmptyManagerENS1_14FunctionToCallEPNS1_15TypeErasedStateES4_
	_ZN17grpc_event_engine12experimental12MillisecondsENSt6chrono8durationIlSt5ratioILl1ELl1000000000EEEE
	__pthread_cond_broadcast run watch)
/usr/bin/python3 test/bench/hot_text.py "$B/bin/crispd-split" "$B/bin/crispd-split.map" "$W/cg.out.2" \
	--pages "$W/pages" "${ALSO[@]/#/--also=}" >cmd/crispd-hot.ld.new
mv cmd/crispd-hot.ld.new cmd/crispd-hot.ld
grep "input sections" cmd/crispd-hot.ld
