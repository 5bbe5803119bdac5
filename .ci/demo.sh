#!/usr/bin/env bash
# The README's demo command: install dependencies, build nnc, check an example, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build nnc
NNC=build/nnc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== nnc check examples/mlp.nn"
$NNC check examples/mlp.nn
echo
echo "== a batch of 4 random images through the mlp (weights from the initializers)"
/usr/bin/python3 -c "import numpy as np; np.save('$work/x.npy', np.random.default_rng(0).random((4,784), dtype=np.float32)); np.save('$work/label.npy', np.arange(4, dtype=np.int32))"
$NNC run examples/mlp.nn --seed 1 --in x="$work/x.npy" --in label="$work/label.npy" --out logits="$work/logits.npy"
/usr/bin/python3 -c "import numpy as np; l=np.load('$work/logits.npy'); print('logits', l.shape, l.dtype); print(np.array2string(l, precision=4))"
