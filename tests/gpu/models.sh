#!/usr/bin/env bash
# tests/gpu/models.sh NNC ARCH OUTDIR — on a machine with an NVIDIA GPU: examples built with
# --target cuda:ARCH against the same examples built for the CPU (the CPU backend is itself
# checked against the interpreter): `infer` from the same weights within 1e-3 + 1e-3|ref|,
# and the logits after one epoch of `train` (same data and seed) within 1e-2 + 1e-2|ref|.
# Called by tests/gpu/run.sh; prints one line per model, exit 1 on any difference.
# NNC_GPU_MODELS (e.g. "mlp:N=16") and NNC_GPU_TARGET (e.g. cuda-emu, to check this script on
# a machine without a GPU) override the defaults.
set -u
NNC=$1 ARCH=$2 T=$3
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-/usr/bin/python3}
fail=0
TARGET=${NNC_GPU_TARGET:-cuda:$ARCH}
for spec in ${NNC_GPU_MODELS:-mlp:N=16 lenet:N=8 resnet18:N=4:S=64 mobilenet_v2:N=2:S=64}; do
  IFS=: read -r model d1 d2 <<< "$spec"
  defs=(-D "$d1"); [ -n "${d2:-}" ] && defs+=(-D "$d2")
  "$NNC" build "$SRC/examples/$model.nn" "${defs[@]}" -o "$T/${model}_cpu" &&
    "$NNC" build "$SRC/examples/$model.nn" "${defs[@]}" --target "$TARGET" -o "$T/${model}_gpu" ||
    { echo "FAIL $model: build"; fail=1; continue; }
  shape=$("$T/${model}_cpu" info | sed -n 's/^ *x  *f32\[\(.*\)\]$/\1/p')
  $PY - "$T" "$model" "$shape" <<'PYEOF' || { echo "FAIL $model: data"; fail=1; continue; }
import sys, numpy as np
t, m, shape = sys.argv[1], sys.argv[2], [int(v) for v in sys.argv[3].split(",")]
rng = np.random.default_rng(1); n = 4 * shape[0]
np.save("%s/%s_x.npy" % (t, m), rng.normal(0, 1, [n] + shape[1:]).astype(np.float32))
np.save("%s/%s_y.npy" % (t, m), rng.integers(0, 10, n).astype(np.int32))
PYEOF
  "$T/${model}_cpu" init --seed 7 -o "$T/${model}_w0.safetensors" || { fail=1; continue; }
  for p in cpu gpu; do
    "$T/${model}_$p" infer --weights "$T/${model}_w0.safetensors" --in x="$T/${model}_x.npy" \
      --out logits="$T/${model}_l0_$p.npy" &&
      "$T/${model}_$p" train --weights "$T/${model}_w0.safetensors" --epochs 1 --seed 3 --quiet \
        --data "x=$T/${model}_x.npy,label=$T/${model}_y.npy" --save "$T/${model}_w1_$p.safetensors" </dev/null &&
      "$T/${model}_cpu" infer --weights "$T/${model}_w1_$p.safetensors" --in x="$T/${model}_x.npy" \
        --out logits="$T/${model}_l1_$p.npy" || { echo "FAIL $model: $p run"; fail=1; continue 2; }
  done
  $PY - "$T" "$model" <<'PYEOF' || fail=1
import sys, numpy as np
t, m = sys.argv[1], sys.argv[2]; ok = True; msg = []
for what, tol in (("l0", 1e-3), ("l1", 1e-2)):
    a = np.load("%s/%s_%s_cpu.npy" % (t, m, what)); b = np.load("%s/%s_%s_gpu.npy" % (t, m, what))
    d = np.abs(a - b); ok &= bool((d <= tol + tol * np.abs(a)).all())
    msg.append("%s max |diff| %.3g" % ("infer" if what == "l0" else "trained", d.max()))
print("%s %-13s %s" % ("ok  " if ok else "FAIL", m, ", ".join(msg)))
sys.exit(0 if ok else 1)
PYEOF
done
exit $fail
