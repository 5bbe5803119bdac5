#!/usr/bin/env bash
# Dims bound from input files are compiled in: `x / sqrt(K)` with K taken from a [3,9] input
# must divide by 3, not by sqrt of K's default (2).
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py -c "import numpy as np; np.save('$tmp/x.npy', np.arange(27, dtype=np.float32).reshape(3, 9))"
"$NNC" run "$NNC_SRC/tests/run/scale.nn" --seed 0 --in x="$tmp/x.npy" --out y="$tmp/y.npy"
$py - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
x, y = np.load(d + "/x.npy"), np.load(d + "/y.npy")
want = x / 3.0
err = np.max(np.abs(y - want))
print("shape", y.shape, "max |y - x/3| =", err)
sys.exit(0 if y.shape == (3, 9) and err <= 1e-6 else 1)
PY
# an explicit -D that disagrees with the file is an error, not a silent rebinding
if "$NNC" run "$NNC_SRC/tests/run/scale.nn" -D K=4 --seed 0 --in x="$tmp/x.npy" 2>"$tmp/err"; then
  echo "expected a shape error"; exit 1
fi
grep -q "wrong shape for input 'x'" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "rebind: ok"
