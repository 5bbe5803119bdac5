#!/usr/bin/env bash
# The README's main-job command: install dependencies, build nnc, then the full tour on the
# mlp example: cost report, compile to a native program, train it on a generated learnable
# data set, run inference on held-out data and print the accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build nnc nnc_runtime
NNC=$PWD/build/nnc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "nnc check examples/mlp.nn"
$NNC check examples/mlp.nn

say "nnc cost examples/mlp.nn --train   (a training step: forward, backward, adam)"
$NNC cost examples/mlp.nn --train

say "nnc build examples/mlp.nn -o mlp   (LLVM, native code for this CPU)"
$NNC build examples/mlp.nn -o "$work/mlp"
"$work/mlp" info

say "a learnable data set: 10 Gaussian clusters in 784 dimensions (numpy)"
/usr/bin/python3 - "$work" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
means = rng.normal(0, 0.1, (10, 784)).astype(np.float32)
def make(n, seed):
    r = np.random.default_rng(seed)
    y = r.integers(0, 10, n).astype(np.int32)
    x = (means[y] + r.normal(0, 1, (n, 784))).astype(np.float32)
    return x, y
for name, n, seed in (("train", 4096, 1), ("test", 1000, 2)):
    x, y = make(n, seed)
    np.save(f"{d}/x_{name}.npy", x); np.save(f"{d}/y_{name}.npy", y)
print("train: 4096 samples, test: 1000 samples, 10 classes")
PY

say "mlp init + train (3 epochs, batch 64, adam; held-out loss and accuracy after each)"
"$work/mlp" init --seed 1 -o "$work/w0.safetensors"
"$work/mlp" train --weights "$work/w0.safetensors" --data x="$work/x_train.npy",label="$work/y_train.npy" \
  --val x="$work/x_test.npy",label="$work/y_test.npy" --epochs 3 --save "$work/w.safetensors"

say "mlp infer on held-out data"
"$work/mlp" infer --weights "$work/w.safetensors" --in x="$work/x_test.npy" --out logits="$work/logits.npy"
/usr/bin/python3 -c "
import numpy as np
l = np.load('$work/logits.npy'); y = np.load('$work/y_test.npy')
print(f'held-out accuracy: {(l.argmax(1) == y).mean():.3f} on {len(y)} samples (chance 0.100)')"

say "the same forward pass in the reference interpreter agrees"
$NNC run examples/mlp.nn --weights "$work/w.safetensors" --in x="$work/x_test.npy" \
  --in label="$work/y_test.npy" --out logits="$work/logits_ref.npy"
/usr/bin/python3 -c "
import numpy as np
a = np.load('$work/logits.npy'); b = np.load('$work/logits_ref.npy')
print(f'max |compiled - interpreter| = {np.abs(a - b).max():.2e}')"
