#!/bin/bash
# The syscall sandbox against native and gVisor (runsc, ptrace platform), same run.
#   test/bench/sandbox.sh BUILD_DIR
# Runs the sbx_micro tests and a tar+gzip workload natively, under crisp-sandbox and
# under `runsc --platform=ptrace --network=none do`, prints ns/op and ratios to native,
# and flags the issue's targets (OK / MISS). Installs Debian's runsc if missing.
set -euo pipefail
B=${1:?usage: sandbox.sh BUILD_DIR}
SBX="$B/bin/crisp-sandbox"
MICRO="$B/bin/sbx_micro"
BB=/bin/busybox
WORK=$(mktemp -d /tmp/sbx-bench.XXXXXX)
RUNSC_ROOT="$WORK/runsc-root"
trap 'rm -rf "$WORK"' EXIT

if ! command -v runsc >/dev/null; then
  echo "installing Debian's runsc"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null; }
fi
RUNSC=(runsc --root "$RUNSC_ROOT" --platform=ptrace --network=none do)
if ! "${RUNSC[@]}" /bin/true 2>"$WORK/runsc.err"; then
  echo "runsc cannot run here: $(tail -1 "$WORK/runsc.err")"
  RUNSC=()
fi

# test  N(native and crisp-sandbox)  N(runsc: it is 10-300x slower per op)
TESTS="getppid:2000000:100000 open:200000:20000 stat:500000:20000 forkexec:500:50
pipe:8192:1024 mmap:200000:20000 futex:50000:5000 uname:50000:10000"

micro() {   # micro RUNNER... -- TEST N  -> ns/op
  local out
  out=$("$@" 2>/dev/null | tail -1)
  echo "${out##* }"
}

ratio() { echo "scale=2; $1 / $2" | bc -l; }
flag() {    # flag VALUE LIMIT -> OK|MISS (VALUE <= LIMIT)
  if [ "$(echo "$1 <= $2" | bc -l)" = 1 ]; then echo OK; else echo MISS; fi
}

min() { if [ -z "$1" ] || [ "$2" = fail ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

echo
echo "== syscall micro-benchmarks (ns/op; best of 3 interleaved runs of best-of-3 rounds) =="
printf "%-9s %11s %11s %11s %8s %8s  %s\n" test native sandbox runsc sbx/nat runsc/nat target
for spec in $TESTS; do
  IFS=: read -r t n nr <<<"$spec"
  nat="" sbx="" rs=""
  for _ in 1 2 3; do   # interleaved: a busy neighbour slows all three alike
    nat=$(min "$nat" "$(micro "$MICRO" "$t" "$n")")
    sbx=$(min "$sbx" "$(micro "$SBX" run -- "$MICRO" "$t" "$n")")
    if [ ${#RUNSC[@]} -gt 0 ]; then rs=$(min "$rs" "$(micro "${RUNSC[@]}" "$MICRO" "$t" "$nr")"); fi
  done
  r1=$(ratio "$sbx" "$nat")
  r2=-
  [ -n "$rs" ] && r2=$(ratio "$rs" "$nat")
  case $t in
    getppid|stat|pipe|mmap|open) tgt="<=1.10x $(flag "$r1" 1.10)" ;;
    forkexec) tgt="<=1.10x $(flag "$r1" 1.10)" ;;
    futex) tgt="<=1.15x $(flag "$r1" 1.15)" ;;
    uname) tgt="<12000ns $(flag "$sbx" 12000)" ;;
  esac
  printf "%-9s %11s %11s %11s %8s %8s  %s\n" "$t" "$nat" "$sbx" "${rs:--}" "$r1" "$r2" "$tgt"
done

# tar+gzip: pack and unpack a source tree (~2,000 header files, ~40 MB): the mix of
# file syscalls and compression that unpacking an image layer or a release is. Rounds
# are interleaved (native, sandbox, runsc, again) and each keeps its best, so a busy
# neighbour slows all three alike instead of deciding a ratio.
echo
echo "== tar+gzip workload (seconds, best of 5 interleaved rounds) =="
mkdir -p "$WORK/src/include"
for d in linux c++ x86_64-linux-gnu; do
  [ -d "/usr/include/$d" ] && cp -r "/usr/include/$d" "$WORK/src/include/"
done
SCRIPT="cd $WORK && rm -rf out a.tgz && $BB tar -czf a.tgz src && mkdir out && $BB tar -xzf a.tgz -C out"
once() {   # once RUNNER... -> seconds, or "fail"
  local s e
  s=$(date +%s%N)
  "$@" "$BB" sh -c "$SCRIPT" >/dev/null 2>&1 || { echo fail; return; }
  e=$(date +%s%N)
  echo "scale=3; ($e - $s) / 1000000000" | bc -l
}
tn="" ts="" tr=""
for _ in 1 2 3 4 5; do
  tn=$(min "$tn" "$(once env)")
  ts=$(min "$ts" "$(once "$SBX" run --)")
  if [ ${#RUNSC[@]} -gt 0 ]; then tr=$(min "$tr" "$(once "${RUNSC[@]}")"); fi
done
printf "native %ss  sandbox %ss (%sx, <=1.10x %s)" "$tn" "$ts" "$(ratio "$ts" "$tn")" \
  "$(flag "$(ratio "$ts" "$tn")" 1.10)"
if [ -n "$tr" ] && [ "$tr" != fail ]; then
  printf "  runsc %ss (%sx); runsc/sandbox %sx (>=4.5x %s)\n" "$tr" "$(ratio "$tr" "$tn")" \
    "$(ratio "$tr" "$ts")" "$(flag 4.5 "$(ratio "$tr" "$ts")")"
else
  printf "  runsc %s\n" "${tr:--}"
fi

# start-up added by the sandbox: a static no-op, natively and sandboxed, interleaved
echo
echo "== start-up (static no-op, 200 runs each way, medians) =="
line=$(/usr/bin/python3 "$(dirname "$0")/sbx_startup.py" "$SBX" "$MICRO" 200)
added=$(echo "$line" | sed -n 's/.*added \([0-9.-]*\) ms/\1/p')
echo "$line (<2ms $(flag "$added" 2))"
