#!/usr/bin/env bash
# cross_entropy(logits [N,T,C], labels [N,T], ignore_index = 0, label_smoothing = 0.1)
# against PyTorch's definition written out in NumPy (float64): per position
#   l = (1 - eps) * (lse(z) - z[y]) + eps * (lse(z) - mean_c z[c]),
# the mean over positions whose label is not ignore_index, and its gradient
#   dz = (softmax(z) - (1 - eps) * onehot(y) - eps / C) / count, 0 on ignored positions.
# The loss and d loss / d z from `nnc run --grad` must agree to 1e-5 relative (atol 1e-8);
# the labels include ignored positions. Then model ce_pad, trained on labels that include
# -100 (ignore_index), gives the same per-epoch losses compiled (`nnc build`, whose input
# checks must accept -100) as in the interpreter (`nnc run --train`), to 1e-5.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nn="$NNC_SRC/tests/train/ce_options.nn"
$py -c "
import numpy as np
y = np.random.RandomState(1).randint(0, 7, (3, 5)).astype(np.int32)
y[0, :2] = 0   # ignored positions
y[1, 3] = 6
np.save('$tmp/label.npy', y)"
"$NNC" run "$nn" --seed 5 --in label="$tmp/label.npy" --save-weights "$tmp/w.safetensors" >/dev/null
"$NNC" run "$nn" --grad --loss loss --weights "$tmp/w.safetensors" --in label="$tmp/label.npy" -o "$tmp/g.safetensors"
$py - "$tmp" "$NNC_SRC" <<'PY'
import importlib.util, sys, numpy as np
d, src = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("ref_nets", src + "/tests/examples/ref_nets.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
z = ref.st_read(d + "/w.safetensors")["z"].astype(np.float64)
g = ref.st_read(d + "/g.safetensors")
y = np.load(d + "/label.npy")
eps, C = 0.1, z.shape[-1]
keep = y != 0
lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
zy = np.take_along_axis(z, y[..., None], -1)[..., 0]
per = (1 - eps) * (lse - zy) + eps * (lse - z.mean(-1))
loss = per[keep].sum() / keep.sum()
p = np.exp(z - lse[..., None])
dz = (p - (1 - eps) * np.eye(C)[y] - eps / C) / keep.sum()
dz[~keep] = 0
ok = True
for name, got, want in [("loss", g["loss"], loss), ("d loss / d z", g["z"], dz)]:
    err = np.max(np.abs(got - want) / (1e-8 + 1e-5 * np.abs(want)))
    print(f"{name}: max |got - ref| = {np.max(np.abs(got - want)):.3g} (ratio to tolerance {err:.3g})")
    ok &= np.shape(got) == np.shape(want) and err <= 1
sys.exit(0 if ok else 1)
PY
$py -c "
import numpy as np
r = np.random.RandomState(0)
np.save('$tmp/px.npy', r.randn(8, 3, 5).astype(np.float32))
y = r.randint(0, 7, (8, 3)).astype(np.int32)
y[0, 0] = y[3, 2] = -100
np.save('$tmp/py.npy', y)"
"$NNC" build "$nn" --model ce_pad -o "$tmp/pad"
"$tmp/pad" train --data x="$tmp/px.npy",y="$tmp/py.npy" --epochs 3 --quiet --log "$tmp/c.csv"
"$NNC" run "$nn" --model ce_pad --train --data x="$tmp/px.npy" --data y="$tmp/py.npy" --epochs 3 \
  --batch 4 >"$tmp/r.txt"
$py - "$tmp" <<'PY'
import re, sys, numpy as np
d = sys.argv[1]
rows = np.loadtxt(d + "/c.csv", delimiter=",", skiprows=1)
compiled = [rows[rows[:, 1] == e, 2].mean() for e in (1, 2, 3)]
interp = [float(m) for m in re.findall(r"loss ([0-9.eE+-]+)", open(d + "/r.txt").read())]
print("ignore_index -100: compiled", np.round(compiled, 6), "interpreter", np.round(interp, 6))
sys.exit(0 if len(interp) == 3 and np.allclose(compiled, interp, rtol=1e-5, atol=1e-6) else 1)
PY
echo "ce options: ok"
