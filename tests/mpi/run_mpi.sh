#!/usr/bin/env bash
# run_mpi.sh — data-parallel training under mpirun (nnc build --mpi, docs/distributed.md), on
# one machine with oversubscribed ranks:
# - P = 2 and 3 ranks of the mlp at batch 16 against one process at batch 16 x P on the same
#   global batches (the same shuffled order): the loss of every step within rtol 2e-4 +
#   atol 1e-6, the final weights and optimizer state within rtol 1e-3 + atol 1e-4. Not bit
#   for bit: each rank sums the gradient over its 16 samples, MPI adds the P partial sums
#   and multiplies by 1/P, where one process sums 16 x P samples in one order; each such
#   reassociation changes the last bits of a float (relative 1e-7; the losses differ by
#   2.4e-7). Adam divides by sqrt(v), so a gradient near zero, whose relative error is
#   large, still moves its weight by up to lr = 1e-3 per step: the weights differ by up to
#   2e-5 after 30 steps (measured), hence atol 1e-4 for them.
# - two runs with the same P write the same bits; every rank ends every epoch with the same
#   weights (the program checks it and says so);
# - resuming a P = 2 checkpoint with P = 3 continues at the next epoch like one process would;
# - a rank killed with SIGKILL mid-training ends the job within 10 s with mpirun's message,
#   and the last checkpoint is intact (it loads and trains on);
# - data smaller than one global batch is an error before training;
# - lenet at P=2 as one process; a batchnorm network (per-rank statistics) trains;
# - the all-reduce overlapping the backward pass (the default) writes the same bits as
#   --no-overlap (the same buckets, the same MPI reduction), at 25 MiB buckets and at 64 KiB
#   buckets (--bucket-kib), where buckets start during the backward pass;
# - --sync-bn: the batchnorm network at P = 2 x 8 against one process at 16 on the same global
#   batches: every step's loss within rtol 2e-4 + atol 1e-6 and the weights and optimizer
#   state within rtol 1e-3 + atol 1e-4 (the float reassociation of the mlp above; the
#   statistics themselves are summed in double). The running statistics follow the global
#   batch: bit-identical in both ranks (the program compares them after every epoch and says
#   so) and within rtol 1e-4 + atol 1e-7 of one process's (measured: 9e-8 relative; they
#   differ only through the weights' reassociation); the logits of `infer` (eval mode: the
#   running statistics) with the trained checkpoint within rtol 1e-4 + atol 1e-5 of one
#   process's (measured 6e-7, logits up to 1.9). Without --sync-bn the losses differ by more
#   than 1e-3 relative (the per-rank statistics of 8 samples), and the running statistics and
#   the logits fail those tolerances (measured: the running mean 4e-4 apart, logits 0.02),
#   which shows the option acts and the checks can fail;
# - checkpoint warnings (dims of another build) are printed once, by rank 0;
# - --mpi --target cuda-emu: a small mlp at P = 2 x 8 (the generated CUDA C run on the host,
#   on the persistent device context, the gradients all-reduced between the halves of its
#   launch table) against the cuda-emu build at 16: losses and weights within the mlp's
#   tolerances, the same bits with --no-overlap, and 1 + 2 x steps uploads (the weights once,
#   then each step's x and label); --mpi --target cuda builds
#   (NVRTC present) and, without a CUDA driver, stops with "no CUDA driver";
# - --mpi --sync-bn --target cuda-emu: a small batchnorm network at P = 2 x 8 (the statistics'
#   launches, their sums over the processes between them on the host) against the CPU program
#   at 16: losses, weights and running statistics within the CPU --sync-bn test's tolerances,
#   running statistics bit-identical in both ranks; without --sync-bn the running statistics
#   fail them; --mpi --sync-bn --target cuda builds (its sums with NCCL in f64) and stops
#   without a driver as above; --sync-bn --target without --mpi is refused.
# Skipped (with a message) without mpirun or when nnc was built without MPI.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (Open MPI: openmpi-bin)"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
# Open MPI refuses root without these (CI runs as root); Open MPI's own allocations are not
# ours to leak-check under AddressSanitizer
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0
export OMPI_MCA_btl=self,vader # shared memory between the ranks, no network probing
MPIRUN=(mpirun --oversubscribe)
NN="$NNC_SRC/examples/mlp.nn"

if ! "$NNC" build "$NN" -D N=16 --mpi -o "$T/dp" >"$T/b.log" 2>&1; then
  if grep -q "built without MPI" "$T/b.log"; then echo "SKIP: $(cat "$T/b.log")"; exit 0; fi
  cat "$T/b.log" >&2
  echo "FAIL: nnc build --mpi" >&2
  exit 1
fi
"$NNC" build "$NN" -D N=16 --mpi --lib -o "$T/libx.a" >"$T/b.log" 2>&1 && die "--mpi --lib accepted"
grep -q "a library links no MPI" "$T/b.log" || die "--mpi --lib: message: $(cat "$T/b.log")"
for P in 2 3; do
  "$NNC" build "$NN" -D N=$((16 * P)) -o "$T/ref$P" || die "build ref$P"
done
$PY -c "
import numpy as np; r = np.random.default_rng(3)
np.save('$T/x.npy', r.standard_normal((480, 784), dtype=np.float32))
np.save('$T/y.npy', r.integers(0, 10, 480, dtype=np.int32))
np.save('$T/xs.npy', r.standard_normal((40, 784), dtype=np.float32))
np.save('$T/ys.npy', r.integers(0, 10, 40, dtype=np.int32))"
DATA="x=$T/x.npy,label=$T/y.npy"
# a program built with --mpi runs as one process without mpirun (an MPI singleton)
"$T/dp" init --seed 7 -o "$T/w0.st" || die "dp init"

# the loss logs (step,epoch,loss) agree step by step within the tolerance
same_log() {
  $PY - "$1" "$2" <<'PYEOF' || die "loss logs $1 and $2 differ"
import sys, numpy as np
a, b = (np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2) for f in sys.argv[1:3])
assert a.shape == b.shape and a.shape[0] > 0, (a.shape, b.shape)
assert (a[:, :2] == b[:, :2]).all(), "step/epoch columns differ"
d = np.abs(a[:, 2] - b[:, 2]); tol = 1e-6 + 2e-4 * np.abs(b[:, 2])
print(f"{sys.argv[1]}: {a.shape[0]} steps, max |loss difference| {d.max():.3g}")
assert (d <= tol).all(), f"step {int(a[d.argmax(), 0])}: {a[d.argmax(), 2]} vs {b[d.argmax(), 2]}"
PYEOF
}

for P in 2 3; do
  "${MPIRUN[@]}" -np $P "$T/dp" train --weights "$T/w0.st" --data "$DATA" --epochs 2 --threads 1 \
    --save "$T/dp$P.st" --log "$T/dp$P.csv" >"$T/dp$P.out" 2>&1 || { cat "$T/dp$P.out" >&2; die "mpirun -np $P train"; }
  grep -q "weights bit-identical in all $P processes after every epoch" "$T/dp$P.out" \
    || die "P=$P: no statement that the ranks' weights are identical: $(cat "$T/dp$P.out")"
  [ "$(grep -c '^epoch 2/2' "$T/dp$P.out")" = 1 ] || die "P=$P: rank 0 alone should print progress"
  "$T/ref$P" train --weights "$T/w0.st" --data "$DATA" --epochs 2 --threads 1 --quiet \
    --save "$T/ref$P.st" --log "$T/ref$P.csv" 2>/dev/null || die "ref$P train"
  same_log "$T/dp$P.csv" "$T/ref$P.csv"
  $PY "$NNC_SRC/tests/train/compare_st.py" "$T/dp$P.st" "$T/ref$P.st" 1e-3 1e-4 >"$T/cmp.txt" 2>&1 \
    || { cat "$T/cmp.txt" >&2; die "P=$P: final weights differ from one process on the same global batches"; }
  "${MPIRUN[@]}" -np $P "$T/dp" train --weights "$T/w0.st" --data "$DATA" --epochs 2 --threads 1 \
    --save "$T/dp${P}b.st" --quiet 2>/dev/null || die "mpirun -np $P, second run"
  cmp -s "$T/dp$P.st" "$T/dp${P}b.st" || die "P=$P: two runs wrote different bits"
done
echo "P=2, P=3: loss and weights as one process; repeated runs identical"

# resume under another P: 1 epoch at P=2, then epoch 2 at P=3 against one process at 48
"${MPIRUN[@]}" -np 2 "$T/dp" train --weights "$T/w0.st" --data "$DATA" --epochs 1 --threads 1 \
  --save "$T/e1.st" --quiet 2>/dev/null || die "P=2, one epoch"
"${MPIRUN[@]}" -np 3 "$T/dp" train --weights "$T/e1.st" --data "$DATA" --epochs 1 --threads 1 \
  --save "$T/e2.st" --log "$T/e2.csv" --quiet 2>/dev/null || die "P=3 resume"
"$T/ref3" train --weights "$T/e1.st" --data "$DATA" --epochs 1 --threads 1 --quiet \
  --save "$T/e2r.st" --log "$T/e2r.csv" 2>/dev/null || die "ref3 resume"
grep -q "^16,2," "$T/e2.csv" || die "resume: the P=3 run should go on at epoch 2: $(head -2 "$T/e2.csv")"
same_log "$T/e2.csv" "$T/e2r.csv"
$PY "$NNC_SRC/tests/train/compare_st.py" "$T/e2.st" "$T/e2r.st" 1e-3 1e-4 >"$T/cmp.txt" 2>&1 \
  || { cat "$T/cmp.txt" >&2; die "resume: weights differ from one process"; }

# bad P: 40 samples are fewer than one global batch of 3 x 16
"${MPIRUN[@]}" -np 3 "$T/dp" train --data "x=$T/xs.npy,label=$T/ys.npy" --save "$T/bad.st" \
  --threads 1 >"$T/bad.out" 2>&1 && die "3 x 16 on 40 samples accepted"
grep -q "fewer than one global batch of 48 (3 processes x the batch of 16)" "$T/bad.out" \
  || die "bad P: message: $(cat "$T/bad.out")"
[ -e "$T/bad.st" ] && die "bad P: a checkpoint was written"

# lenet (sgd with momentum, convolutions) at P=2 against one process; a batchnorm network
# trains with each rank's own statistics (its weights still identical in every rank)
"$NNC" build "$NNC_SRC/examples/lenet.nn" -D N=8 --mpi -o "$T/ldp" >/dev/null 2>&1 || die "build lenet --mpi"
"$NNC" build "$NNC_SRC/examples/lenet.nn" -D N=16 -o "$T/lref" >/dev/null 2>&1 || die "build lenet N=16"
cat >"$T/bnnet.nn" <<'NNEOF'
model bnnet {
  dim N = 8
  input x: f32[N, 1, 28, 28]
  input label: i32[N]
  c = conv2d(x, 4, kernel = 3, pad = 1, bias = false)
  h = relu(batchnorm(c))
  logits = dense(flatten(maxpool(h, 2, stride = 2)), 10, name = "fc")
  loss = cross_entropy(logits, label)
  output logits
}
train bnnet {
  minimize loss
  optimizer adam(lr = 1e-3)
}
NNEOF
"$NNC" build "$T/bnnet.nn" --mpi -o "$T/bdp" >/dev/null 2>&1 || die "build bnnet --mpi"
$PY -c "
import numpy as np; r = np.random.default_rng(5)
np.save('$T/lx.npy', r.standard_normal((160, 1, 28, 28), dtype=np.float32))
np.save('$T/ly.npy', r.integers(0, 10, 160, dtype=np.int32))"
LDATA="x=$T/lx.npy,label=$T/ly.npy"
"$T/ldp" init --seed 3 -o "$T/l0.st" || die "lenet init"
"${MPIRUN[@]}" -np 2 "$T/ldp" train --weights "$T/l0.st" --data "$LDATA" --epochs 2 --threads 1 \
  --save "$T/ldp.st" --log "$T/ldp.csv" --quiet 2>/dev/null || die "lenet mpirun -np 2"
"$T/lref" train --weights "$T/l0.st" --data "$LDATA" --epochs 2 --threads 1 --quiet \
  --save "$T/lref.st" --log "$T/lref.csv" 2>/dev/null || die "lenet reference"
same_log "$T/ldp.csv" "$T/lref.csv"
$PY "$NNC_SRC/tests/train/compare_st.py" "$T/ldp.st" "$T/lref.st" 1e-3 1e-4 >"$T/cmp.txt" 2>&1 \
  || { cat "$T/cmp.txt" >&2; die "lenet: weights differ from one process"; }
"${MPIRUN[@]}" -np 2 "$T/bdp" train --data "$LDATA" --epochs 2 --threads 1 --save "$T/bn.st" \
  >"$T/bn.out" 2>&1 || { cat "$T/bn.out" >&2; die "batchnorm network under mpirun -np 2"; }
grep -q "weights bit-identical in all 2 processes" "$T/bn.out" || die "batchnorm: $(cat "$T/bn.out")"

# overlapped and blocking all-reduce: the same bits (dp2.st was trained overlapped)
grep -q "overlapping the backward pass" "$T/dp2.out" || die "overlap: not used by default: $(cat "$T/dp2.out")"
"${MPIRUN[@]}" -np 2 "$T/dp" train --weights "$T/w0.st" --data "$DATA" --epochs 2 --threads 1 \
  --save "$T/dpno.st" --no-overlap >"$T/dpno.out" 2>&1 || die "mpirun --no-overlap: $(cat "$T/dpno.out")"
grep -q "overlapping" "$T/dpno.out" && die "--no-overlap: still overlapped"
cmp -s "$T/dp2.st" "$T/dpno.st" || die "overlapped and --no-overlap all-reduce: different bits"
for ov in "" --no-overlap; do
  "${MPIRUN[@]}" -np 2 "$T/dp" train --weights "$T/w0.st" --data "$DATA" --epochs 1 --threads 1 \
    --bucket-kib 64 --save "$T/dpk$ov.st" $ov --quiet 2>/dev/null || die "mpirun --bucket-kib 64 $ov"
done
cmp -s "$T/dpk.st" "$T/dpk--no-overlap.st" || die "64 KiB buckets: overlapped and not differ"
echo "overlapped all-reduce: the same bits as after the backward pass (25 MiB and 64 KiB buckets)"

# --sync-bn: P=2 x 8 as one process at 16; without it, not
"$NNC" build "$T/bnnet.nn" --mpi --sync-bn -o "$T/bsync" >/dev/null 2>&1 || die "build bnnet --sync-bn"
"$NNC" build "$T/bnnet.nn" -D N=16 -o "$T/bref" >/dev/null 2>&1 || die "build bnnet N=16"
"$T/bsync" info | grep -q "global batch (--sync-bn)" || die "info does not say --sync-bn"
"$NNC" build "$T/bnnet.nn" --sync-bn --target cuda -o "$T/bcu" >"$T/b.log" 2>&1 && die "--sync-bn --target cuda without --mpi accepted"
grep -q "needs --mpi" "$T/b.log" || die "--sync-bn --target cuda without --mpi: $(cat "$T/b.log")"
"$T/bref" init --seed 3 -o "$T/b0.st" || die "bnnet init"
"$T/bref" train --weights "$T/b0.st" --data "$LDATA" --epochs 2 --threads 1 --quiet \
  --save "$T/bref.st" --log "$T/bref.csv" 2>/dev/null || die "bnnet reference"
"${MPIRUN[@]}" -np 2 "$T/bsync" train --weights "$T/b0.st" --data "$LDATA" --epochs 2 --threads 1 \
  --save "$T/bsync.st" --log "$T/bsync.csv" >"$T/bsync.out" 2>&1 || die "sync-bn: $(cat "$T/bsync.out")"
[ "$(grep -c "saved with dims N=16" "$T/bsync.out")" = 1 ] || die "checkpoint warning not once: $(cat "$T/bsync.out")"
same_log "$T/bsync.csv" "$T/bref.csv"
grep -q "running statistics too (--sync-bn)" "$T/bsync.out" || die "sync-bn: running statistics not compared: $(cat "$T/bsync.out")"
st_names() { # the tensors of $1 whose names do (1) or do not (0) hold running_
  $PY -c "
import sys; sys.path.insert(0, '$NNC_SRC/tests/examples'); import ref_nets
print(' '.join(n for n in ref_nets.st_read('$1') if ('running_' in n) == bool($2) and n != 'loss'))"
}
$PY "$NNC_SRC/tests/train/compare_st.py" "$T/bsync.st" "$T/bref.st" 1e-3 1e-4 $(st_names "$T/bref.st" 0) \
  >"$T/cmp.txt" 2>&1 || { cat "$T/cmp.txt" >&2; die "sync-bn: weights differ from one process at the global batch"; }
RUNNING=$(st_names "$T/bref.st" 1)
[ -n "$RUNNING" ] || die "sync-bn: no running statistics in the checkpoint"
$PY "$NNC_SRC/tests/train/compare_st.py" "$T/bsync.st" "$T/bref.st" 1e-4 1e-7 $RUNNING >"$T/cmp.txt" 2>&1 \
  || { cat "$T/cmp.txt" >&2; die "sync-bn: running statistics differ from one process at the global batch"; }
"${MPIRUN[@]}" -np 2 "$T/bdp" train --weights "$T/b0.st" --data "$LDATA" --epochs 2 --threads 1 \
  --log "$T/blocal.csv" --save "$T/blocal.st" --quiet 2>/dev/null || die "bnnet local statistics"
$PY "$NNC_SRC/tests/train/compare_st.py" "$T/blocal.st" "$T/bref.st" 1e-4 1e-7 $RUNNING >/dev/null 2>&1 \
  && die "without --sync-bn the running statistics should differ from one process"
# eval mode normalizes with the running statistics: the trained network infers as one process's
"$T/bsync" infer --weights "$T/bsync.st" --in "x=$T/lx.npy" --out "logits=$T/ysync.npy" >/dev/null 2>&1 \
  || die "sync-bn: infer"
for w in ref local; do
  "$T/bref" infer --weights "$T/b$w.st" --in "x=$T/lx.npy" --out "logits=$T/y$w.npy" >/dev/null 2>&1 \
    || die "bnnet: infer with b$w.st"
done
$PY - "$T/ysync.npy" "$T/yref.npy" "$T/ylocal.npy" <<'PYEOF' || die "sync-bn: inference after training differs from one process"
import sys, numpy as np
s, r, l = (np.load(f) for f in sys.argv[1:4])
d = lambda a: np.max(np.abs(a - r) - 1e-4 * np.abs(r))
print(f"sync-bn inference: max |logits - one process| {np.max(np.abs(s - r)):.3g} "
      f"(local statistics: {np.max(np.abs(l - r)):.3g})")
assert d(s) <= 1e-5, d(s)
assert d(l) > 1e-5, "local statistics should fail the tolerance"
PYEOF
$PY - "$T/blocal.csv" "$T/bref.csv" <<'PYEOF' || die "without --sync-bn the losses should differ from one process"
import sys, numpy as np
a, b = (np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2)[:, 2] for f in sys.argv[1:3])
r = np.max(np.abs(a - b) / np.abs(b))
print(f"local batchnorm statistics: max relative loss difference {r:.3g} from one process")
assert r > 1e-3, r
PYEOF
echo "sync-bn: P=2 as one process on the global batch"

# --mpi with the CUDA backend
cp "$NNC_SRC/tests/mpi/small.nn" "$T/small.nn"
$PY -c "
import numpy as np; r = np.random.default_rng(4)
np.save('$T/sx.npy', r.standard_normal((64, 64), dtype=np.float32))
np.save('$T/sy.npy', r.integers(0, 10, 64, dtype=np.int32))"
SDATA="x=$T/sx.npy,label=$T/sy.npy"
# the buckets of small.nn's gradients at K KiB (docs/distributed.md): in reverse tensor order
# (fc2.bias, fc2.weight, fc1.bias, fc1.weight); gradients up to a bucket gathered, up to a
# bucket a gather; a larger one alone, in pieces of a bucket
small_buckets() {
  $PY -c "
cap, n, cur = $1 * 1024 // 4, 0, 0
for g in [10, 32 * 10, 32, 64 * 32]:
    if cur and (g > cap or cur + g > cap): n, cur = n + 1, 0
    if g > cap: n += -(-g // cap)
    else: cur += g
print(n + (cur > 0))"
}
# cuda-emu's all-reduce overlapping the backward launches, at 1 KiB buckets (12 a step: the
# gathered biases and fc2.weight's and fc1.weight's pieces in place) and 4 KiB (3): the same
# bits as --no-overlap, losses and weights as one process at 16, each bucket started once a
# step (the summary's count), as many as the CPU program's buckets. A mutant whose every
# bucket starts after the first launch (its marks table shifted by a CXX wrapper), before
# the backward pass has written the gradients, must fail these checks.
emu_overlap() {
  "$NNC" build "$T/small.nn" --mpi -o "$T/cpdp" >/dev/null 2>&1 || die "build small --mpi (CPU)"
  for k in 1 4; do
    "${MPIRUN[@]}" -np 2 "$T/edp" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 \
      --bucket-kib $k --save "$T/eo$k.st" --log "$T/eo$k.csv" >"$T/eo$k.out" 2>&1 || die "cuda-emu --bucket-kib $k: $(cat "$T/eo$k.out")"
    "${MPIRUN[@]}" -np 2 "$T/edp" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 \
      --bucket-kib $k --no-overlap --save "$T/en$k.st" >"$T/en$k.out" 2>&1 || die "cuda-emu --bucket-kib $k --no-overlap"
    grep -q "overlapping" "$T/en$k.out" && die "cuda-emu --no-overlap: still overlapped: $(cat "$T/en$k.out")"
    cmp -s "$T/eo$k.st" "$T/en$k.st" || die "cuda-emu, $k KiB buckets: overlapped and --no-overlap differ"
    same_log "$T/eo$k.csv" "$T/eref.csv"
    $PY "$NNC_SRC/tests/train/compare_st.py" "$T/eo$k.st" "$T/eref.st" 1e-3 1e-4 >"$T/cmp.txt" 2>&1 \
      || { cat "$T/cmp.txt" >&2; die "cuda-emu, $k KiB buckets: weights differ from one process"; }
    "${MPIRUN[@]}" -np 2 "$T/cpdp" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 \
      --bucket-kib $k --save "$T/co$k.st" >"$T/co$k.out" 2>&1 || die "CPU --bucket-kib $k"
    steps=$(($(wc -l <"$T/eo$k.csv") - 1)) nb=$(small_buckets $k)
    got=$(sed -n 's/.*overlapping the backward pass: \([0-9]*\) buckets.*/\1/p' "$T/eo$k.out")
    cpu=$(sed -n 's/.*overlapping the backward pass: \([0-9]*\) buckets.*/\1/p' "$T/co$k.out")
    [ "$got" = $((steps * nb)) ] && [ "$cpu" = "$got" ] \
      || die "cuda-emu, $k KiB: $got buckets started (CPU: $cpu), want $steps steps x $nb"
    echo "cuda-emu, $k KiB buckets: $got buckets in $steps steps, the bits of --no-overlap"
  done
  printf '#!/bin/sh\nfor a; do case "$a" in *cuda_model.cpp) sed -i "s/^static const int nnc_ready_after\\[\\] = {/&1000000, /" "$a";; esac; done\nexec %s "$@"\n' \
    "${CXX:-c++}" >"$T/cxxmut"
  chmod +x "$T/cxxmut"
  CXX="$T/cxxmut" "$NNC" build "$T/small.nn" --mpi --target cuda-emu -o "$T/emut" >/dev/null 2>&1 || die "build the mutant"
  if "${MPIRUN[@]}" -np 2 "$T/emut" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 \
    --bucket-kib 4 --save "$T/emut.st" --quiet >/dev/null 2>&1 && cmp -s "$T/emut.st" "$T/en4.st"; then
    die "cuda-emu: buckets started before their gradients were written went unnoticed"
  fi
}
if "$NNC" build "$T/small.nn" --mpi --target cuda-emu -o "$T/edp" >"$T/b.log" 2>&1; then
  "$NNC" build "$T/small.nn" -D N=16 --target cuda-emu -o "$T/eref" >/dev/null 2>&1 || die "build small cuda-emu N=16"
  "$T/eref" init --seed 2 -o "$T/s0.st" || die "small init"
  "${MPIRUN[@]}" -np 2 "$T/edp" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 \
    --save "$T/edp.st" --log "$T/edp.csv" >"$T/edp.out" 2>&1 || die "cuda-emu --mpi: $(cat "$T/edp.out")"
  grep -q "weights bit-identical in all 2 processes" "$T/edp.out" || die "cuda-emu --mpi: $(cat "$T/edp.out")"
  # the persistent device context: the weights go up once, then each step uploads x and label
  steps=$(($(wc -l <"$T/edp.csv") - 1))
  grep -q "cuda-emu: host-device copies: $((1 + 2 * steps)) uploads" "$T/edp.out" \
    || die "cuda-emu --mpi: not 1 + 2 x $steps uploads: $(grep copies "$T/edp.out")"
  "${MPIRUN[@]}" -np 2 "$T/edp" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 \
    --save "$T/edpno.st" --no-overlap --quiet 2>/dev/null || die "cuda-emu --mpi --no-overlap"
  cmp -s "$T/edp.st" "$T/edpno.st" || die "cuda-emu --mpi: --no-overlap gives other bits"
  "$T/eref" train --weights "$T/s0.st" --data "$SDATA" --epochs 2 --threads 1 --quiet \
    --save "$T/eref.st" --log "$T/eref.csv" 2>/dev/null || die "small cuda-emu reference"
  same_log "$T/edp.csv" "$T/eref.csv"
  $PY "$NNC_SRC/tests/train/compare_st.py" "$T/edp.st" "$T/eref.st" 1e-3 1e-4 >"$T/cmp.txt" 2>&1 \
    || { cat "$T/cmp.txt" >&2; die "cuda-emu --mpi: weights differ from one process"; }
  echo "--mpi --target cuda-emu: P=2 as one process"
  emu_overlap
else
  echo "SKIP cuda-emu --mpi: $(tail -1 "$T/b.log")"
fi
# --sync-bn with the CUDA backend: the statistics' launches with the host sums between them
# (cuda-emu) at P = 2 x 8 against the CPU program at 16, with the tolerances of the CPU test;
# without --sync-bn the running statistics must fail them
sed 's/^model bn /model bnsmall /; s/^train bn /train bnsmall /; s/lr = 1e-2/lr = 1e-3/' \
  "$NNC_SRC/tests/mpi/bn.nn" >"$T/bnsmall.nn"
$PY -c "
import numpy as np; r = np.random.default_rng(6)
np.save('$T/qx.npy', r.standard_normal((64, 2, 6, 6), dtype=np.float32))
np.save('$T/qy.npy', r.integers(0, 5, 64, dtype=np.int32))"
QDATA="x=$T/qx.npy,label=$T/qy.npy"
if "$NNC" build "$T/bnsmall.nn" --mpi --sync-bn --target cuda-emu -o "$T/qsync" >"$T/b.log" 2>&1; then
  "$NNC" build "$T/bnsmall.nn" -D N=16 -o "$T/qref" >/dev/null 2>&1 || die "build bnsmall N=16"
  "$NNC" build "$T/bnsmall.nn" --mpi --target cuda-emu -o "$T/qdp" >/dev/null 2>&1 || die "build bnsmall cuda-emu"
  "$T/qref" init --seed 4 -o "$T/q0.st" || die "bnsmall init"
  "$T/qref" train --weights "$T/q0.st" --data "$QDATA" --epochs 2 --threads 1 --quiet \
    --save "$T/qref.st" --log "$T/qref.csv" 2>/dev/null || die "bnsmall reference"
  "${MPIRUN[@]}" -np 2 "$T/qsync" train --weights "$T/q0.st" --data "$QDATA" --epochs 2 --threads 1 \
    --save "$T/qsync.st" --log "$T/qsync.csv" >"$T/qsync.out" 2>&1 || die "cuda-emu --sync-bn: $(cat "$T/qsync.out")"
  grep -q "running statistics too (--sync-bn)" "$T/qsync.out" || die "cuda-emu --sync-bn: $(cat "$T/qsync.out")"
  same_log "$T/qsync.csv" "$T/qref.csv"
  $PY "$NNC_SRC/tests/train/compare_st.py" "$T/qsync.st" "$T/qref.st" 1e-3 1e-4 $(st_names "$T/qref.st" 0) \
    >"$T/cmp.txt" 2>&1 || { cat "$T/cmp.txt" >&2; die "cuda-emu --sync-bn: weights differ from one process"; }
  QRUN=$(st_names "$T/qref.st" 1)
  $PY "$NNC_SRC/tests/train/compare_st.py" "$T/qsync.st" "$T/qref.st" 1e-4 1e-7 $QRUN >"$T/cmp.txt" 2>&1 \
    || { cat "$T/cmp.txt" >&2; die "cuda-emu --sync-bn: running statistics differ from one process"; }
  "${MPIRUN[@]}" -np 2 "$T/qdp" train --weights "$T/q0.st" --data "$QDATA" --epochs 2 --threads 1 \
    --save "$T/qlocal.st" --quiet 2>/dev/null || die "bnsmall cuda-emu local statistics"
  $PY "$NNC_SRC/tests/train/compare_st.py" "$T/qlocal.st" "$T/qref.st" 1e-4 1e-7 $QRUN >/dev/null 2>&1 \
    && die "cuda-emu without --sync-bn: the running statistics should differ from one process"
  echo "--sync-bn --target cuda-emu: P=2 as one process on the global batch"
else
  echo "SKIP cuda-emu --sync-bn: $(tail -1 "$T/b.log")"
fi
if "$NNC" build "$T/bnsmall.nn" --mpi --sync-bn --target cuda -o "$T/qcu" >"$T/b.log" 2>&1; then
  "${MPIRUN[@]}" -np 2 "$T/qcu" train --data "$QDATA" --threads 1 >"$T/qcu.out" 2>&1 \
    && echo "note: a CUDA driver is present; tests/gpu/mpi.sh runs NCCL on GPUs" \
    || grep -q "no CUDA driver\|no CUDA device" "$T/qcu.out" || die "--sync-bn --target cuda without a GPU: $(cat "$T/qcu.out")"
else
  grep -q "without the CUDA toolkit" "$T/b.log" && echo "SKIP --sync-bn --target cuda: no NVRTC" \
    || die "--mpi --sync-bn --target cuda: $(cat "$T/b.log")"
fi
if "$NNC" build "$T/small.nn" --mpi --target cuda -o "$T/cdp" >"$T/b.log" 2>&1; then
  "${MPIRUN[@]}" -np 2 "$T/cdp" train --data "$SDATA" --threads 1 >"$T/cdp.out" 2>&1 \
    && echo "note: a CUDA driver is present; tests/gpu/mpi.sh runs NCCL on GPUs" \
    || grep -q "no CUDA driver\|no CUDA device" "$T/cdp.out" || die "--mpi --target cuda without a GPU: $(cat "$T/cdp.out")"
else
  grep -q "without the CUDA toolkit" "$T/b.log" && echo "SKIP --mpi --target cuda: no NVRTC" \
    || die "--mpi --target cuda: $(cat "$T/b.log")"
fi

# a rank killed mid-training: the job ends within 10 s, the last checkpoint stays good
"${MPIRUN[@]}" -np 2 "$T/dp" train --weights "$T/w0.st" --data "$DATA" --epochs 100000 \
  --threads 1 --save "$T/k.st" --quiet >"$T/kill.out" 2>&1 &
MP=$!
for _ in $(seq 300); do [ -s "$T/k.st" ] && break; sleep 0.1; done
[ -s "$T/k.st" ] || die "kill: no checkpoint after 30 s"
sleep 0.5
victim=$(pgrep -P $MP | tail -1)
if [ -z "$victim" ]; then
  die "kill: no rank process under mpirun"
  kill $MP 2>/dev/null
else
  t0=$(date +%s.%N)
  kill -KILL "$victim"
  for _ in $(seq 150); do kill -0 $MP 2>/dev/null || break; sleep 0.1; done
  if kill -0 $MP 2>/dev/null; then
    die "kill: the job still runs 15 s after a rank was killed"
    kill -KILL $MP 2>/dev/null
  fi
  wait $MP && die "kill: mpirun exited with 0"
  dt=$($PY -c "import time; print(f'{time.time() - $t0:.1f}')")
  echo "killed rank $victim: the job ended after $dt s"
  $PY -c "import sys; sys.exit(0 if $dt <= 10 else 1)" || die "kill: the job took $dt s to end"
  grep -q "signal 9\|Killed" "$T/kill.out" || die "kill: no message naming the killed rank: $(cat "$T/kill.out")"
  "$T/ref2" train --weights "$T/k.st" --data "$DATA" --epochs 1 --threads 1 --quiet \
    2>"$T/k.err" || die "kill: the last checkpoint does not load: $(cat "$T/k.err")"
fi
cat "$T/kill.out" | head -20
exit $fail
