#!/usr/bin/env bash
# tour.sh — the README's tour, runnable: every command of it, in order, in a scratch
# directory, starting from the data it creates. Run from anywhere:
#   bash examples/tour.sh [WORKDIR]   (nnc on PATH or NNC=/path/to/nnc; PYTHON: a python3 with NumPy)
# tests/examples/run_tour.sh runs it and checks that README.md shows the same commands.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
ln -sfn "$src/examples" examples
nnc() { "${NNC:-nnc}" "$@"; }
set -x
# a data set for the mlp: 256 samples x f32[784] and labels i32 in 0..9
"${PYTHON:-python3}" -c "import numpy as np; r = np.random.default_rng(0); np.save('x.npy', r.standard_normal((256, 784), dtype=np.float32)); np.save('y.npy', r.integers(0, 10, 256, dtype=np.int32))"
nnc check examples/resnet18.nn
nnc cost  examples/resnet18.nn --symbolic N
nnc cost  examples/mlp.nn --train --target v100 --svg roofline.svg
nnc emit --emit=ir --train examples/mlp.nn
nnc run   examples/mlp.nn --seed 1 --in x=x.npy --out logits=out.npy --save-weights w.safetensors
nnc run   examples/mlp.nn --grad --weights w.safetensors --in x=x.npy --in label=y.npy -o g.safetensors
nnc build examples/mlp.nn -o mlp && ./mlp train --weights w.safetensors --data x=x.npy,label=y.npy --epochs 3 --save w2.safetensors
nnc build examples/mlp.nn --lib -o libmlp.a
nnc build examples/mlp.nn --shared -o libmlp.so
nnc plan  examples/resnet50.nn -D N=32 --memory 1.5GiB --sweep
