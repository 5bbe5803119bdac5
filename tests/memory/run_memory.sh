#!/usr/bin/env bash
# run_memory.sh — a program's memory is what its `info` says (docs/memory.md).
#  1. For mlp, lenet and resnet18 (-D S=32) at two batch sizes each, a built program's
#     `infer` and `train` run under tests/memory/peak_anon, which samples the process's
#     private memory (RssAnon of /proc/PID/status, every 0.5 ms) and reports its peak. The
#     peak must not exceed the expected peak `info --threads 2` states for the run (regions,
#     input staging, outputs of every sample, per-thread GEMM packing, and the runtime
#     allowance of 4 MiB + 1 MiB per thread that rt_mem.h fixes), and must be at least the
#     weights (so a probe that measures nothing fails). An `infer` that allocated the
#     training arena and the optimizer state would exceed it by far (resnet18 at batch 8:
#     296 MiB against 110 MiB expected; bench/RESULTS.md).
#  2. Conversions per batch: the same data as big-endian f64 images and int64 labels gives
#     the same logits (infer) and the same trained weights (train) as the float32 files.
#  3. A data set larger than the memory the process may use: mlp trains one epoch on a
#     75 MB f32 file under a limit of 48 MiB that holds the training step but not a copy of
#     the data. The limit is a cgroup's (v2 memory.max, or v1 memory.limit_in_bytes) where
#     one can be created here; the file is dropped from the page cache first, so its pages
#     are faulted in, and charged, inside the cgroup, where the kernel reclaims them as
#     needed. Where no cgroup is writable the limit is RLIMIT_DATA, which counts private
#     writable memory (a copy of the data) but not a read-only file mapping. Either way a
#     control — Python reading the same file into memory under the same limit — must fail,
#     which shows the limit binds.
# Skipped under sanitizers (their shadow memory is private memory too); NNC_TEST_QUICK=1
# leaves out resnet18.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}" \
  "${NNC_BUILD:?set NNC_BUILD to the build directory}"
PY=/usr/bin/python3
PEAK="$NNC_BUILD/peak_anon"
T=$(mktemp -d)
CG=""
cleanup() { [ -n "$CG" ] && rmdir "$CG" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

if grep -q 'NNC_SANITIZE:BOOL=ON' "$NNC_BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "SKIP: memory is not measurable under sanitizers"
  exit 0
fi
[ -x "$PEAK" ] || { echo "FAIL: $PEAK not built" >&2; exit 1; }

# data: NAME B SAMPLES — image/feature arrays as f32 and as big-endian f64, labels as i32
# and big-endian i64
gen() {
  "$PY" - "$T" "$@" <<'PYEOF'
import sys, numpy as np
t, name, shape, n = sys.argv[1], sys.argv[2], eval(sys.argv[3]), int(sys.argv[4])
r = np.random.default_rng(n)
x = r.standard_normal((n,) + shape, dtype=np.float32)
y = r.integers(0, 10, n).astype(np.int32)
np.save(f"{t}/{name}_x.npy", x); np.save(f"{t}/{name}_y.npy", y)
np.save(f"{t}/{name}_x64.npy", x.astype(">f8")); np.save(f"{t}/{name}_y64.npy", y.astype(">i8"))
PYEOF
}

# measure PROG LABEL EXPECTED FLOOR -- ARGS: peak private memory within [FLOOR, EXPECTED]
measure() {
  local prog=$1 label=$2 want=$3 floor=$4
  shift 5
  "$PEAK" -- "$prog" "$@" --threads 2 > "$T/run.out" 2> "$T/run.err" \
    || { die "$label: exited $? ($(tail -3 "$T/run.err"))"; return; }
  local got
  got=$(sed -n 's/^peak_anon_bytes //p' "$T/run.err")
  printf '  %-28s expected %10d  measured %10d  (%d%%)\n' "$label" "$want" "$got" \
    $((100 * got / want))
  [ "$got" -le "$want" ] || die "$label: peak private memory $got bytes above the expected $want"
  [ "$got" -ge "$floor" ] || die "$label: peak private memory $got bytes below the weights ($floor)"
}

# one model at one batch: build, read info, infer and train on 3 batches + 1 sample
check() {
  local ex=$1 b=$2 shape=$3 xname=$4 extra=$5
  local prog="$T/${ex}_$b" n=$((3 * b + 1)) tag="${ex}_$b"
  "$NNC" build "$NNC_SRC/examples/$ex.nn" -O1 -D N="$b" $extra -o "$prog" > "$T/b.log" 2>&1 \
    || { cat "$T/b.log" >&2; die "build $ex -D N=$b"; return; }
  gen "$tag" "$shape" "$n" || { die "$tag: data"; return; }
  "$prog" info --threads 2 > "$T/info.txt"
  local line inf per tr w
  line=$(grep '^expected peak bytes:' "$T/info.txt")
  inf=$(echo "$line" | sed -n 's/.*infer \([0-9]*\) + \([0-9]*\)\/sample.*/\1/p')
  per=$(echo "$line" | sed -n 's/.*infer \([0-9]*\) + \([0-9]*\)\/sample.*/\2/p')
  tr=$(echo "$line" | sed -n 's/.*train \([0-9]*\) + 8\/sample.*/\1/p')
  w=$(sed -n 's/^parameters: .* elements (\(.*\))$/\1/p' "$T/info.txt")
  [ -n "$inf" ] && [ -n "$per" ] && [ -n "$tr" ] || { die "$tag: info has no expected peak: $line"; return; }
  local floor
  floor=$("$PY" -c "import sys; print(int(sum(4 * int(x) for x in sys.argv[1:])))" \
    $(sed -n 's/^parameters: [0-9]* tensors\{0,1\}, \([0-9]*\) elements.*/\1/p' "$T/info.txt"))
  echo "$ex -D N=$b ($n samples; weights $w):"
  measure "$prog" "infer" $((inf + per * n)) "$floor" -- infer --seed 1 \
    --in "$xname=$T/${tag}_x.npy" --out "logits=$T/${tag}_o.npy"
  measure "$prog" "train (1 epoch)" $((tr + 8 * n)) "$floor" -- train --seed 3 -q \
    --data "$xname=$T/${tag}_x.npy,label=$T/${tag}_y.npy" --save "$T/${tag}_w.safetensors"
  # conversions per batch give the same numbers as the direct copy
  "$prog" infer --seed 1 --threads 2 --in "$xname=$T/${tag}_x64.npy" --out "logits=$T/${tag}_o64.npy" \
    > /dev/null 2>&1 || die "$tag: infer on f64 data"
  "$prog" train --seed 3 -q --threads 2 --data "$xname=$T/${tag}_x64.npy,label=$T/${tag}_y64.npy" \
    --save "$T/${tag}_w64.safetensors" > /dev/null 2>&1 || die "$tag: train on f64/i64 data"
  cmp -s "$T/${tag}_o.npy" "$T/${tag}_o64.npy" || die "$tag: logits differ between f32 and f64 inputs"
  "$PY" - "$T/${tag}_w.safetensors" "$T/${tag}_w64.safetensors" <<'PYEOF' || die "$tag: weights differ between f32 and f64/i64 data"
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
sys.exit(0 if a == b and a else 1)
PYEOF
}

check mlp 16 "(784,)" x ""
check mlp 64 "(784,)" x ""
check lenet 8 "(1, 28, 28)" x ""
check lenet 32 "(1, 28, 28)" x ""
if [ "${NNC_TEST_QUICK:-0}" != 1 ]; then
  check resnet18 2 "(3, 32, 32)" img "-D S=32"
  check resnet18 8 "(3, 32, 32)" img "-D S=32"
fi

# ---- 3. a data set larger than the memory limit ----------------------------------------------

# Runs "$@" under a memory limit of $LIMIT bytes: in the cgroup $CG when there is one, else
# with RLIMIT_DATA through peak_anon.
limited() {
  if [ -n "$CG" ]; then
    bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$CG" "$@"
  else
    "$PEAK" --data-limit "$LIMIT" -- "$@"
  fi
}

make_cgroup() {
  local base
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    base=/sys/fs/cgroup
    grep -qw memory "$base/cgroup.subtree_control" 2>/dev/null \
      || echo +memory > "$base/cgroup.subtree_control" 2>/dev/null
    CG="$base/nnc_memtest.$$"
    mkdir "$CG" 2>/dev/null && echo "$LIMIT" > "$CG/memory.max" 2>/dev/null \
      && echo 0 > "$CG/memory.swap.max" 2>/dev/null && METHOD="cgroup v2 memory.max" && return
  elif [ -d /sys/fs/cgroup/memory ]; then
    CG="/sys/fs/cgroup/memory/nnc_memtest.$$"
    mkdir "$CG" 2>/dev/null && echo "$LIMIT" > "$CG/memory.limit_in_bytes" 2>/dev/null \
      && METHOD="cgroup v1 memory.limit_in_bytes" && return
  fi
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
  CG=""
  METHOD="RLIMIT_DATA"
}

LIMIT=$((48 * 1048576))
S=24000
BIG="$T/big"
"$NNC" build "$NNC_SRC/examples/mlp.nn" -D N=64 -o "$BIG" > "$T/b.log" 2>&1 \
  || { cat "$T/b.log" >&2; die "build mlp"; }
"$PY" - "$T" "$S" <<'PYEOF' || die "large data set"
import os, sys, numpy as np
t, n = sys.argv[1], int(sys.argv[2])
r = np.random.default_rng(7)
x = np.lib.format.open_memmap(t + "/big_x.npy", mode="w+", dtype=np.float32, shape=(n, 784))
for s in range(0, n, 4096):
    x[s:s + 4096] = r.standard_normal((min(4096, n - s), 784), dtype=np.float32)
x.flush(); del x
np.save(t + "/big_y.npy", r.integers(0, 10, n).astype(np.int32))
for f in ("big_x.npy", "big_y.npy"):  # out of the page cache: read again under the limit
    fd = os.open(t + "/" + f, os.O_RDONLY); os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
PYEOF
make_cgroup
size=$(stat -c %s "$T/big_x.npy")
need=$("$BIG" info --threads 1 | sed -n 's/.*train \([0-9]*\) + 8\/sample.*/\1/p')
echo "large data set: $size bytes of x; limit $LIMIT bytes ($METHOD); train expects $((need + 8 * S)) bytes"
[ "$size" -gt "$LIMIT" ] && [ $((need + 8 * S)) -lt "$LIMIT" ] || die "the test's sizes do not separate a copy from a mapping"
limited "$BIG" train --threads 1 -q --seed 1 --data "x=$T/big_x.npy,label=$T/big_y.npy" \
  --save "$T/big_w.safetensors" > "$T/big.log" 2>&1 \
  || die "training on $size bytes of data under a $LIMIT-byte limit ($METHOD): exit $? ($(tail -3 "$T/big.log"))"
[ -s "$T/big_w.safetensors" ] || die "large data set: no weights saved"
limited "$PY" -c "import sys; b = open(sys.argv[1], 'rb').read(); print(len(b))" "$T/big_x.npy" \
  > "$T/ctl.log" 2>&1 && die "the control (a copy of the data) ran under the limit ($METHOD): the limit does not bind"
[ $fail = 0 ] && echo "memory: ok"
exit $fail
