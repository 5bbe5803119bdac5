#!/usr/bin/env bash
# bf16_train.sh — the training loss curves of examples/mlp.nn and lenet.nn built with f32 and
# with `--precision bf16` (GEMM inputs rounded to bf16, f32 accumulation and master weights):
# the same initial weights (`init --seed 7`), the same shuffled batches (`--seed 1`), on
# synthetic data the models can learn (10 classes: a template N(0, 0.5^2) per class plus unit
# noise, 2048 samples; lenet sees them as 1x28x28 images), with held-out loss and accuracy
# on 512 more.
# Prints per-epoch mean training loss side by side.
#
# usage: bench/bf16_train.sh [EPOCHS]   (NNC: the nnc binary, default build/nnc)
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
NNC=${NNC:-$SRC/build/nnc}
PY=/usr/bin/python3
EPOCHS=${1:-5}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" - "$T" <<'EOF'
import numpy as np, sys
rng = np.random.default_rng(1)
means = 0.5 * rng.standard_normal((10, 784))          # one template per class
for name, n in (("", 2048), ("v", 512)):
    y = rng.integers(0, 10, n).astype(np.int32)
    x = (means[y] + rng.standard_normal((n, 784))).astype(np.float32)
    np.save(f"{sys.argv[1]}/{name}x.npy", x)
    np.save(f"{sys.argv[1]}/{name}x_img.npy", x.reshape(-1, 1, 28, 28))
    np.save(f"{sys.argv[1]}/{name}y.npy", y)
EOF
for net in mlp lenet; do
  x=x.npy vx=vx.npy
  [ $net = lenet ] && x=x_img.npy vx=vx_img.npy
  for p in f32 bf16; do
    "$NNC" build "$SRC/examples/$net.nn" --precision $p -o "$T/${net}_$p"
    "$T/${net}_$p" init --seed 7 -o "$T/${net}_w0.safetensors" 2>/dev/null
    "$T/${net}_$p" train --weights "$T/${net}_w0.safetensors" --data "x=$T/$x,label=$T/y.npy" \
      --val "x=$T/$vx,label=$T/vy.npy" --epochs "$EPOCHS" --seed 1 2>/dev/null >"$T/${net}_$p.txt"
  done
  echo "== $net: per epoch, f32 | bf16"
  paste -d'|' "$T/${net}_f32.txt" "$T/${net}_bf16.txt"
done
