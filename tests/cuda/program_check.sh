#!/usr/bin/env bash
# program_check.sh NNC — programs built with --target cuda-emu and --target cuda.
#  1. mlp built for the CPU and for cuda-emu (the generated CUDA C run on the CPU) from the
#     same file: `infer` from the same weights agrees within 1e-4 + 1e-4|ref|;
#  2. one epoch of `train` (same seed, same data) in each: the checkpoints are interchangeable
#     (the cuda-emu one loads in the CPU program) and their logits agree within 1e-3 + 1e-3|ref|
#     (f32 sums in other orders, through 4 optimizer steps);
#  3. --target cuda embeds NVRTC's PTX (where nnc has NVRTC): `info` works without a GPU and
#     says the backend; `infer` exits 1 with "no CUDA driver" / "no CUDA device" (no GPU here);
#  4. --precision bf16 and f16 builds train the same epoch (see 4. below);
#  5. host-device copies of the persistent device context, counted (see below);
#  6. dropout: the same masks in the CPU and cuda-emu programs (see below).
. "$(dirname "$0")/common.sh"
if ! $PY -c 'import numpy' 2>/dev/null; then echo "skipped: numpy is not installed"; exit 0; fi
MLP="$SRC/examples/mlp.nn"
"$NNC" build "$MLP" -D N=16 -o "$T/cpu" || die "build cpu"
"$NNC" build "$MLP" -D N=16 --target cuda-emu -o "$T/emu" || die "build --target cuda-emu"
"$T/emu" info > "$T/info.txt" || die "emu info"
grep -q "backend: cuda-emu" "$T/info.txt" || die "info does not name the backend"
$PY - "$T" <<'PYEOF' || die "data"
import sys, numpy as np
t = sys.argv[1]; rng = np.random.default_rng(3)
np.save(t + "/x.npy", rng.normal(0, 1, (64, 784)).astype(np.float32))
np.save(t + "/y.npy", rng.integers(0, 10, 64).astype(np.int32))
PYEOF
"$T/cpu" init --seed 7 -o "$T/w0.safetensors" || die "init"
for p in cpu emu; do
  "$T/$p" infer --weights "$T/w0.safetensors" --in x="$T/x.npy" --out logits="$T/l0_$p.npy" || die "$p infer"
  "$T/$p" train --weights "$T/w0.safetensors" --data "x=$T/x.npy,label=$T/y.npy" --epochs 1 --seed 3 \
    --save "$T/w1_$p.safetensors" --quiet </dev/null || die "$p train"
  # the checkpoint of either backend, read by the CPU program
  "$T/cpu" infer --weights "$T/w1_$p.safetensors" --in x="$T/x.npy" --out logits="$T/l1_$p.npy" ||
    die "cpu infer with the $p checkpoint"
done
$PY - "$T" <<'PYEOF' || die "cuda-emu differs from the CPU program"
import sys, numpy as np
t = sys.argv[1]; ok = True
for what, tol in (("l0", 1e-4), ("l1", 1e-3)):
    a = np.load(t + "/%s_cpu.npy" % what); b = np.load(t + "/%s_emu.npy" % what)
    d = np.abs(a - b); lim = tol + tol * np.abs(a)
    print("%s: %s, max |diff| %.3g (limit %g + %g|ref|)" % ("infer" if what == "l0" else "after one epoch", a.shape, d.max(), tol, tol))
    ok &= a.shape == b.shape and bool((d <= lim).all())
sys.exit(0 if ok else 1)
PYEOF
# 4. --precision bf16 and f16 (GEMM inputs rounded to 16 bits; f16 with dynamic loss scaling in
#    the training step, its state after the tensor table): the same epoch from the same weights;
#    the checkpoint loads in the CPU program and its logits agree with the f32 CPU program's
#    within 8u + 8u|ref| (u = 2^-8 for bf16, 2^-11 for f16: the unit roundoff of the GEMM inputs,
#    as the model tests' tolerance)
for p in bf16 f16; do
  "$NNC" build "$MLP" -D N=16 --target cuda-emu --precision $p -o "$T/emu_$p" || die "build --precision $p"
  "$T/emu_$p" train --weights "$T/w0.safetensors" --data "x=$T/x.npy,label=$T/y.npy" --epochs 1 --seed 3 \
    --save "$T/w1_$p.safetensors" --quiet </dev/null || die "$p train"
  "$T/cpu" infer --weights "$T/w1_$p.safetensors" --in x="$T/x.npy" --out logits="$T/l1_$p.npy" || die "cpu infer, $p checkpoint"
done
$PY - "$T" <<'PYEOF' || die "bf16/f16 cuda-emu training differs from the CPU program"
import sys, numpy as np
t = sys.argv[1]; ok = True; ref = np.load(t + "/l1_cpu.npy")
for p, u in (("bf16", 2.0 ** -8), ("f16", 2.0 ** -11)):
    a = np.load(t + "/l1_%s.npy" % p); d = np.abs(a - ref)
    print("%s, after one epoch: max |diff| %.3g (limit %.3g + %.3g|ref|)" % (p, d.max(), 8 * u, 8 * u))
    ok &= a.shape == ref.shape and bool((d <= 8 * u * (1 + np.abs(ref))).all())
sys.exit(0 if ok else 1)
PYEOF
"$NNC" build "$MLP" --target cuda-emu --precision bf16 --loss-scale 1024 -o "$T/bad" 2> "$T/bad.err" &&
  die "--loss-scale with bf16 accepted"
grep -q "loss-scale is for --precision f16" "$T/bad.err" || die "no message for --loss-scale with bf16"
"$NNC" build "$MLP" --target cuda-emu --precision f16 --loss-scale 1000 -o "$T/bad" 2> "$T/bad.err" &&
  die "--loss-scale 1000 accepted"
grep -q "a power of two" "$T/bad.err" || die "no message for --loss-scale 1000"
# 5. the persistent device context: two epochs of 4 steps with a save after each upload the
#    params once and each step's batch (x, label), and download each step's loss and the
#    params at each save: 1 + 8*2 uploads, 8 + 2 downloads
"$T/emu" train --weights "$T/w0.safetensors" --data "x=$T/x.npy,label=$T/y.npy" --epochs 2 --seed 3 \
  --save "$T/w2.safetensors" </dev/null > /dev/null 2> "$T/xfer.txt" || die "emu train, 2 epochs"
line=$(grep "host-device copies" "$T/xfer.txt") || { cat "$T/xfer.txt"; die "no transfer count"; }
echo "$line"
read -r up upb down downb <<< "$(echo "$line" | sed -E 's/.*: ([0-9]+) uploads \(([0-9]+) bytes\), ([0-9]+) downloads \(([0-9]+) bytes\)/\1 \2 \3 \4/')"
[ "$up" = 17 ] && [ "$down" = 10 ] || die "transfers: $up uploads, $down downloads (expected 17 and 10)"
# the params region goes up once and comes down twice; each batch is 16*784*4 + 16*4 bytes
[ $((upb - 8 * 50240)) = $(((downb - 8 * 4) / 2)) ] || die "transfer bytes: $upb up, $downb down"
# 6. dropout in training: the CPU program and the cuda-emu program draw the same masks (the
#    same Philox function of seed, step and index), so their loss logs agree to f32 rounding
DROP="$SRC/tests/cuda/dropout.nn"
"$NNC" build "$DROP" --target cuda-emu -o "$T/demu" || die "build dropout --target cuda-emu"
"$NNC" build "$DROP" -o "$T/dcpu" || die "build dropout"
$PY - "$T" <<'PYEOF' || die "dropout data"
import sys, numpy as np
t = sys.argv[1]; rng = np.random.default_rng(5)
np.save(t + "/dx.npy", rng.normal(0, 1, (16, 12)).astype(np.float32))
np.save(t + "/dt.npy", rng.normal(0, 1, (16, 5)).astype(np.float32))
PYEOF
for p in dcpu demu; do
  "$T/$p" train --seed 11 --data "x=$T/dx.npy,t=$T/dt.npy" --epochs 2 --log "$T/$p.csv" --quiet </dev/null ||
    die "$p train"
done
$PY - "$T" <<'PYEOF' || die "dropout: cuda-emu's losses differ from the CPU program's"
import sys, numpy as np
t = sys.argv[1]
a = np.loadtxt(t + "/dcpu.csv", delimiter=",", skiprows=1, usecols=2)
b = np.loadtxt(t + "/demu.csv", delimiter=",", skiprows=1, usecols=2)
d = np.abs(a - b).max()
print("dropout: %d steps, max |loss diff| %.3g (limit 1e-5 + 1e-5|loss|)" % (len(a), d))
sys.exit(0 if len(a) == 8 and len(a) == len(b) and (np.abs(a - b) <= 1e-5 + 1e-5 * np.abs(a)).all() else 1)
PYEOF
if "$NNC" emit --emit=ptx --target cuda "$MLP" > /dev/null 2>&1; then
  "$NNC" build "$MLP" -D N=16 --target cuda:sm_80 -o "$T/gpu" || die "build --target cuda"
  "$T/gpu" info | grep -q "backend: cuda:sm_80" || die "gpu info"
  "$T/gpu" infer --weights "$T/w0.safetensors" --in x="$T/x.npy" --out logits="$T/lg.npy" 2> "$T/gpu.err"
  rc=$?
  if [ -e /dev/nvidia0 ]; then
    [ $rc = 0 ] || { cat "$T/gpu.err"; die "gpu infer on a machine with a GPU"; }
  else
    [ $rc = 1 ] || { cat "$T/gpu.err"; die "gpu infer without a GPU: exit $rc, expected 1"; }
    grep -Eq "no CUDA (driver|device)" "$T/gpu.err" || { cat "$T/gpu.err"; die "no 'no CUDA driver/device' message"; }
    echo "cuda program without a GPU: $(head -1 "$T/gpu.err")"
  fi
else
  echo "nnc has no NVRTC: --target cuda not checked"
fi
echo "ok"
