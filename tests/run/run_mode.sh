#!/usr/bin/env bash
# `nnc run --mode train|eval` on batchnorm + dropout (fresh weights: gamma 1, beta 0, running
# mean 0, running var 1), checked against the formulas in NumPy (atol 1e-5):
#   forward, default eval: y = x / sqrt(1 + eps)
#   forward --mode train:  y = 0 or 2 * (x - batch mean) / sqrt(batch var + eps) (p = 0.5)
#   --grad --mode eval:    loss = mean((x / sqrt(1 + eps) - t)^2) and
#                          d loss / d bn.bias = sum over rows of 2 (y - t) / numel
# and usage errors (a bad mode, --mode with --train) exit 2.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nn="$NNC_SRC/tests/run/mode.nn"
$py -c "
import numpy as np
r = np.random.RandomState(2)
np.save('$tmp/x.npy', r.randn(6, 4).astype(np.float32) * 2 + 1)
np.save('$tmp/t.npy', r.randn(6, 4).astype(np.float32))"
"$NNC" run "$nn" --seed 1 --in x="$tmp/x.npy" --out y="$tmp/eval.npy"
"$NNC" run "$nn" --seed 1 --mode train --in x="$tmp/x.npy" --out y="$tmp/train.npy"
"$NNC" run "$nn" --seed 1 --grad --mode eval --loss loss --in x="$tmp/x.npy" --in t="$tmp/t.npy" \
  -o "$tmp/g.safetensors"
$py - "$tmp" "$NNC_SRC" <<'PY'
import importlib.util, sys, numpy as np
d, src = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("ref_nets", src + "/tests/examples/ref_nets.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
x, t = np.load(d + "/x.npy").astype(np.float64), np.load(d + "/t.npy").astype(np.float64)
eps = 1e-5
ok = True
def check(name, got, want):
    global ok
    err = np.max(np.abs(np.asarray(got) - want))
    print(f"{name}: max |got - ref| = {err:.3g}")
    ok &= np.shape(got) == np.shape(want) and err <= 1e-5
ye = x / np.sqrt(1 + eps)
check("eval forward", np.load(d + "/eval.npy"), ye)
yt = np.load(d + "/train.npy")
norm = 2 * (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
kept = yt != 0
print("train forward: kept", kept.sum(), "of", kept.size)
ok &= 0 < kept.sum() < kept.size
check("train forward (kept elements)", yt[kept], norm[kept])
g = ref.st_read(d + "/g.safetensors")
check("eval loss", g["loss"], np.mean((ye - t) ** 2))
check("eval d loss / d bn.bias", g["bn.bias"], (2 * (ye - t) / ye.size).sum(0))
sys.exit(0 if ok else 1)
PY
set +e
"$NNC" run "$nn" --seed 1 --mode test --in x="$tmp/x.npy" 2>/dev/null; rc1=$?
"$NNC" run "$nn" --train --mode eval --data x="$tmp/x.npy",t="$tmp/t.npy" --epochs 1 --batch 2 2>/dev/null; rc2=$?
set -e
[ $rc1 = 2 ] && [ $rc2 = 2 ] || { echo "FAIL: usage errors exit $rc1, $rc2 (want 2)"; exit 1; }
echo "mode: ok"
