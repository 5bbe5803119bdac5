#!/usr/bin/env bash
# The Python package (python/nnc_model, ctypes + NumPy) on a model built with
# `nnc build --shared`: it installs with pip (offline, into a temporary directory), reads the
# model's inputs and outputs from the library, and
#   - forward() on 20 samples (3 batches, the last one partial) matches `nnc run` (the
#     interpreter) with the same weights, saved by the package: rtol 1e-4, atol 1e-5;
#   - the first train_step() loss matches `nnc run --grad`'s loss on that batch (rtol 1e-4),
#     and 30 steps on one batch bring the loss below a third of it;
#   - a wrong input shape raises NncError.
# A sanitizer build skips the test: its runtime needs the sanitizer in the Python process.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}" "${NNC_BUILD:?}"
if grep -q '^NNC_SANITIZE:BOOL=ON' "$NNC_BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "python: skipped (sanitizer build)"
  exit 0
fi
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$NNC_SRC/python" "$tmp/src"
$py -m pip install --quiet --no-build-isolation --no-deps --no-index --target "$tmp/site" \
  "$tmp/src" 2>&1 | grep -v "WARNING: Running pip as the 'root' user" || true
[ -f "$tmp/site/nnc_model/__init__.py" ] || { echo "FAIL: pip did not install the package"; exit 1; }
mlp="$NNC_SRC/examples/mlp.nn"
"$NNC" build "$mlp" --shared -D N=8 -o "$tmp/libmlp.so"
[ -f "$tmp/mlp.h" ] || { echo "FAIL: no header beside libmlp.so"; exit 1; }
cd "$tmp"
PYTHONPATH="$tmp/site" $py - <<'PY'
import numpy as np, nnc_model
m = nnc_model.Model("./libmlp.so")
assert m.batch == 8 and [t.name for t in m.inputs] == ["x", "label"], m.inputs
m.init(seed=1)
m.save("w.safetensors")
r = np.random.RandomState(0)
x = r.randn(20, 784).astype(np.float32)
y = r.randint(0, 10, 20).astype(np.int32)
np.save("x.npy", x)
np.save("xb.npy", x[:8]); np.save("yb.npy", y[:8])
np.save("py_logits.npy", m.forward(x=x)["logits"])
losses = [m.train_step(x=x[:8], label=y[:8]) for _ in range(30)]
np.save("py_loss0.npy", np.float32(losses[0]))
print(f"train_step: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
assert losses[-1] < losses[0] / 3, losses
try:
    m.forward(x=np.zeros((4, 783), np.float32))
    raise SystemExit("FAIL: a wrong shape was accepted")
except nnc_model.NncError as e:
    print("wrong shape:", e)
PY
"$NNC" run "$mlp" --weights w.safetensors --in x=x.npy --out logits=ref_logits.npy
"$NNC" run "$mlp" --grad --weights w.safetensors --in x=xb.npy --in label=yb.npy -o g.safetensors
$py - "$NNC_SRC" <<'PY'
import importlib.util, sys, numpy as np
spec = importlib.util.spec_from_file_location("ref_nets", sys.argv[1] + "/tests/examples/ref_nets.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
got, want = np.load("py_logits.npy"), np.load("ref_logits.npy")
ratio = np.max(np.abs(got - want) / (1e-5 + 1e-4 * np.abs(want)))
l0, lr = float(np.load("py_loss0.npy")), float(ref.st_read("g.safetensors")["loss"])
print(f"forward vs interpreter: worst ratio to tolerance {ratio:.3g}; loss {l0:.6f} vs {lr:.6f}")
sys.exit(0 if got.shape == (20, 10) and ratio <= 1 and abs(l0 - lr) <= 1e-4 * abs(lr) else 1)
PY
echo "python: ok"
