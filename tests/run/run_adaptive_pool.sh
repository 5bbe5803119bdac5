#!/usr/bin/env bash
# adaptive_avgpool/adaptive_maxpool whose windows vary in size (7 -> 3, 5 -> 7, 10 -> 4)
# against PyTorch's definition written out in NumPy (float64): output window i covers
# [floor(i n / o), ceil((i + 1) n / o)). For each model of adaptive_pool.nn:
#  - forward: the interpreter (`nnc run`) to 1e-6 and the compiled program (`infer`) to
#    1e-5 (atol + rtol);
#  - gradient: d loss / d w from `nnc run --grad` and from one compiled sgd step with lr 1
#    (w0 - w1) against central finite differences of the NumPy loss (h = 1e-3 in float64),
#    to 1e-4 relative to the gradient's largest element.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nn="$NNC_SRC/tests/run/adaptive_pool.nn"
die() { echo "FAIL: $*" >&2; exit 1; }
$py - "$tmp" <<'PY'
import sys, numpy as np
d, r = sys.argv[1], np.random.RandomState(7)
for m, xs, ts in (("ap_a", (2, 3, 7, 5), (2, 3, 3, 7)), ("ap_b", (2, 2, 10, 10), (2, 2, 4, 4))):
    np.save(f"{d}/{m}_x.npy", r.randn(*xs).astype(np.float32))
    np.save(f"{d}/{m}_t.npy", r.randn(*ts).astype(np.float32))
PY
for m in ap_a ap_b; do
  io=(--in "x=$tmp/${m}_x.npy" --in "t=$tmp/${m}_t.npy")
  "$NNC" run "$nn" --model $m --seed 3 "${io[@]}" --out "a=$tmp/${m}_ra.npy" \
    --out "m=$tmp/${m}_rm.npy" --save-weights "$tmp/${m}_w0.safetensors" >/dev/null
  "$NNC" run "$nn" --model $m --grad --weights "$tmp/${m}_w0.safetensors" "${io[@]}" \
    -o "$tmp/${m}_g.safetensors" >/dev/null
  "$NNC" build "$nn" --model $m -o "$tmp/$m" >/dev/null
  "$tmp/$m" infer --weights "$tmp/${m}_w0.safetensors" --in "x=$tmp/${m}_x.npy" \
    --out "a=$tmp/${m}_ca.npy" --out "m=$tmp/${m}_cm.npy"
  "$tmp/$m" train --weights "$tmp/${m}_w0.safetensors" --data "x=$tmp/${m}_x.npy,t=$tmp/${m}_t.npy" \
    --save "$tmp/${m}_w1.safetensors" --quiet
done
$py - "$tmp" "$NNC_SRC" <<'PY' || die "adaptive pooling differs from PyTorch's definition"
import importlib.util, sys, numpy as np
d, src = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("ref_nets", src + "/tests/examples/ref_nets.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

def windows(n, o):
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]

def pool(x, oh, ow, f):
    y = np.empty(x.shape[:2] + (oh, ow))
    for i, (h0, h1) in enumerate(windows(x.shape[2], oh)):
        for j, (w0, w1) in enumerate(windows(x.shape[3], ow)):
            y[:, :, i, j] = f(x[:, :, h0:h1, w0:w1], axis=(2, 3))
    return y

ok = True
for m in ("ap_a", "ap_b"):
    x = np.load(f"{d}/{m}_x.npy").astype(np.float64)
    t = np.load(f"{d}/{m}_t.npy").astype(np.float64)
    oh, ow = t.shape[2:]
    w = ref.st_read(f"{d}/{m}_w0.safetensors")["w"].astype(np.float64)
    loss = lambda w: (((pool(x * w, oh, ow, np.mean) - t) ** 2).mean() +
                      ((pool(x * w, oh, ow, np.max) - t) ** 2).mean())
    for k, f, tol in (("a", np.mean, 1e-6), ("m", np.max, 1e-6)):
        want = pool(x * w, oh, ow, f)
        for src_, tl in (("r", tol), ("c", 1e-5)):
            got = np.load(f"{d}/{m}_{src_}{k}.npy")
            err = np.abs(got - want).max() if got.shape == want.shape else np.inf
            print(f"{m} {k} ({'interpreter' if src_ == 'r' else 'compiled'}): shape {got.shape}, "
                  f"max |diff| {err:.3g}")
            ok &= err <= tl + tl * np.abs(want).max()
    fd = np.zeros_like(w)
    h = 1e-3
    for i in np.ndindex(w.shape):
        e = np.zeros_like(w); e[i] = h
        fd[i] = (loss(w + e) - loss(w - e)) / (2 * h)
    g = ref.st_read(f"{d}/{m}_g.safetensors")["w"]
    step = ref.st_read(f"{d}/{m}_w0.safetensors")["w"] - ref.st_read(f"{d}/{m}_w1.safetensors")["w"]
    for name, got in (("nnc run --grad", g), ("compiled sgd step", step)):
        err = np.abs(got - fd).max() / np.abs(fd).max()
        print(f"{m} d loss / d w ({name}) vs finite differences: relative max |diff| {err:.3g}")
        ok &= err <= 1e-4
sys.exit(0 if ok else 1)
PY
echo "adaptive pooling: ok"
