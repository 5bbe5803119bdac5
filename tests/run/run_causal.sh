#!/usr/bin/env bash
# The causal mask built inside examples/char_lm.nn (tril of a constant, where, arange
# positions): changing the last token must leave the logits of every earlier position
# bit-identical and change the last one, in the interpreter (`nnc run`) and in the compiled
# program; the compiled logits agree with the interpreter's (rtol 1e-4, atol 1e-5). The
# forward pass runs without the `label` input, which `logits` does not depend on. The mask
# and the position ids are folded at build time: neither the forward nor the training
# step's kernel plan has a kernel with an iota or a comparison, every layer's masking
# `where` reads its [T,T] table from the plan's constants, and folding removed 7 forward
# kernels (2 iotas and a compare per layer, and the iota of the positions).
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lm="$NNC_SRC/examples/char_lm.nn"
$py - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
a = np.random.RandomState(0).randint(0, 65, (2, 8)).astype(np.int32)
b = a.copy()
b[:, -1] = (b[:, -1] + 1) % 65
np.save(d + "/idx1.npy", a)
np.save(d + "/idx2.npy", b)
PY
"$NNC" build "$lm" -D N=2 -D T=8 -o "$tmp/lm"
for i in 1 2; do
  "$NNC" run "$lm" -D N=2 -D T=8 --seed 3 --in idx="$tmp/idx$i.npy" --out logits="$tmp/r$i.npy"
  "$tmp/lm" infer --seed 3 --in idx="$tmp/idx$i.npy" --out logits="$tmp/c$i.npy"
done
$py - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
ok = True
for kind in "rc":
    a, b = np.load(f"{d}/{kind}1.npy"), np.load(f"{d}/{kind}2.npy")
    past, last = np.abs(a[:, :-1] - b[:, :-1]).max(), np.abs(a[:, -1] - b[:, -1]).max()
    print(f"{'interpreter' if kind == 'r' else 'compiled'}: earlier positions differ by {past}, "
          f"the last by {last:.3g}")
    ok &= a.shape == (2, 8, 65) and past == 0 and last > 1e-3
r, c = np.load(d + "/r1.npy"), np.load(d + "/c1.npy")
ratio = np.max(np.abs(c - r) / (1e-5 + 1e-4 * np.abs(r)))
print("compiled vs interpreter: worst ratio to tolerance", ratio)
sys.exit(0 if ok and ratio <= 1 else 1)
PY
for mode in "" --train; do
  # shellcheck disable=SC2086
  "$NNC" emit --emit=kernels "$lm" -D N=2 -D T=8 $mode >"$tmp/plan$mode.txt"
  if grep -E '^     members .*%[0-9]+ (iota|lt|le|gt|ge|eq|ne)\b' "$tmp/plan$mode.txt"; then
    echo "FAIL: a kernel computes the mask or the positions ($mode)" >&2
    exit 1
  fi
  n=$(grep -cE '^     reads .*%[0-9]+ const\+' "$tmp/plan$mode.txt" || true)
  [ "$n" -ge 3 ] || { echo "FAIL: $n kernels read folded constants ($mode)" >&2; exit 1; }
done
grep -q "^kernels of 'char_lm' for the CPU backend: 41 kernels, arena [0-9]* bytes, constants" "$tmp/plan.txt" ||
  { echo "FAIL: $(grep '^kernels of' "$tmp/plan.txt") (54 unfolded, 47 folded, 41 with the GEMMs' epilogue groups)" >&2; exit 1; }
echo "causal: ok"
