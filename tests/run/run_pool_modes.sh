#!/usr/bin/env bash
# avgpool/maxpool with ceil_mode and count_include_pad, and adaptive_avgpool/adaptive_maxpool,
# against PyTorch's definitions written out in NumPy (float64): output extents
#   ceil_mode: ceil((n + 2p - k) / s) + 1, minus 1 when the last window would start at or
#   beyond n + p; divisor: the window clipped to the padded input (count_include_pad) or to
#   the input itself; adaptive: window i covers [floor(i n / o), ceil((i + 1) n / o)).
# Shapes must match exactly and values to 1e-6 (atol). `nnc run` evaluates in double.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nn="$NNC_SRC/tests/run/pool_modes.nn"
$py -c "
import numpy as np
r = np.random.RandomState(4)
np.save('$tmp/x.npy', r.randn(2, 3, 6, 5).astype(np.float32))
np.save('$tmp/y.npy', r.randn(2, 3, 14, 21).astype(np.float32))"
outs=""
for v in a b c d e f; do outs="$outs --out $v=$tmp/$v.npy"; done
# shellcheck disable=SC2086
"$NNC" run "$nn" --seed 0 --in x="$tmp/x.npy" --in y="$tmp/y.npy" $outs
$py - "$tmp" <<'PY'
import math, sys, numpy as np
d = sys.argv[1]
x, y = np.load(d + "/x.npy").astype(np.float64), np.load(d + "/y.npy").astype(np.float64)

def out_size(n, k, s, p, ceil):
    o = (-(-(n + 2 * p - k) // s) if ceil else (n + 2 * p - k) // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o

def pool(x, k, s, p, ceil=False, include_pad=True, mx=False):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k, s, p, ceil), out_size(W, k, s, p, ceil)
    out = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, H + p), min(ws + k, W + p)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
            win = x[:, :, hs:he, ws:we]
            if mx:
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                div = size if include_pad else (he - hs) * (we - ws)
                out[:, :, i, j] = win.sum(axis=(2, 3)) / div
    return out

def adaptive(x, oh, ow, mx):
    N, C, H, W = x.shape
    out = np.zeros((N, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, i * H // oh:-(-(i + 1) * H // oh), j * W // ow:-(-(j + 1) * W // ow)]
            out[:, :, i, j] = win.max(axis=(2, 3)) if mx else win.mean(axis=(2, 3))
    return out

want = {
    "a": pool(x, 3, 2, 1, ceil=True),
    "b": pool(x, 3, 2, 1, ceil=True, include_pad=False),
    "c": pool(x, 3, 2, 0, ceil=True, mx=True),
    "d": pool(x, 2, 2, 1, include_pad=False),
    "e": adaptive(y, 7, 7, False),
    "f": adaptive(y, 2, 3, True),
}
ok = True
for k, w in want.items():
    g = np.load(f"{d}/{k}.npy")
    err = np.max(np.abs(g - w)) if g.shape == w.shape else float("inf")
    print(f"{k}: shape {g.shape} (PyTorch {w.shape}), max |diff| {err:.3g}")
    ok &= err <= 1e-6
sys.exit(0 if ok else 1)
PY
echo "pool modes: ok"
