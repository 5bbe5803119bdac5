#!/usr/bin/env bash
# A PyTorch-style checkpoint carries '<bn>.num_batches_tracked' counters: they load with one
# note, no warning per layer, and the output is unchanged.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py -c "import numpy as np; np.save('$tmp/x.npy', np.random.default_rng(1).standard_normal((2,3,8,8)).astype(np.float32))"
"$NNC" run "$NNC_SRC/tests/run/bn.nn" --seed 3 --in x="$tmp/x.npy" --save-weights "$tmp/w.safetensors" >/dev/null
"$NNC" run "$NNC_SRC/tests/run/bn.nn" --weights "$tmp/w.safetensors" --in x="$tmp/x.npy" --out y="$tmp/y0.npy"
PYTHONPATH="$NNC_SRC/tests/examples" $py - "$tmp" <<'PY'
import sys, numpy as np, ref_nets
d = sys.argv[1]
t = ref_nets.st_read(d + "/w.safetensors")
t["bn1.num_batches_tracked"] = np.array([7], dtype=np.int64)
ref_nets.write_file(d + "/w2.safetensors", ref_nets.st_bytes(t))
PY
"$NNC" run "$NNC_SRC/tests/run/bn.nn" --weights "$tmp/w2.safetensors" --in x="$tmp/x.npy" --out y="$tmp/y1.npy" 2>"$tmp/err"
cat "$tmp/err"
grep -q "1 batchnorm 'num_batches_tracked' counters not used" "$tmp/err"
! grep -q "warning" "$tmp/err"
cmp "$tmp/y0.npy" "$tmp/y1.npy"
echo "torch checkpoint: ok"
