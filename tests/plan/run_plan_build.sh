#!/usr/bin/env bash
# run_plan_build.sh — budgets the binary keeps: `nnc build --memory` on the 64-layer MLP.
# The program's `info` reports params + io + arena within the budget; training with and
# without rematerialization gives the same losses (recomputation repeats the same float
# operations); the peak RSS of a training run drops by at least half the planned saving.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
NN="$NNC_SRC/tests/plan/deep_mlp.nn"

"$NNC" build "$NN" -D N=256 -o "$T/full" > "$T/b.log" 2>&1 || { cat "$T/b.log" >&2; echo "FAIL: build" >&2; exit 1; }
"$NNC" build "$NN" -D N=256 --memory 40MiB -o "$T/lean" > "$T/b.log" 2>&1 || { cat "$T/b.log" >&2; echo "FAIL: build --memory" >&2; exit 1; }
"$NNC" build "$NN" -D N=256 --memory 20MiB -o "$T/none" > "$T/b.log" 2>&1 && die "20MiB should not fit"
grep -q "use --memory" "$T/b.log" || die "build: infeasible message: $(cat "$T/b.log")"

total() { sed -n 's/^memory: .*; \([0-9.]*\) MiB in all$/\1/p' <("$1" info); }
tf=$(total "$T/full"); tl=$(total "$T/lean")
[ -n "$tf" ] && [ -n "$tl" ] || die "info: no memory line"
$PY -c "import sys; f,l=float('$tf'),float('$tl'); sys.exit(0 if l <= 40 and f > 40 else 1)" \
  || die "info: full $tf MiB, lean $tl MiB (budget 40)"

$PY - "$T" <<'PYEOF'
import numpy as np, sys
t = sys.argv[1]
r = np.random.default_rng(3)
np.save(t + "/x.npy", r.standard_normal((512, 256)).astype(np.float32))
np.save(t + "/y.npy", r.integers(0, 10, 512).astype(np.int32))
PYEOF
for b in full lean; do
  /usr/bin/time -f "%M" -o "$T/$b.rss" "$T/$b" train --data "x=$T/x.npy,label=$T/y.npy" --epochs 2 \
    --seed 5 --threads 1 --quiet --log "$T/$b.csv" > "$T/$b.out" 2>&1 || die "train $b: $(cat "$T/$b.out")"
done
[ "$(wc -l < "$T/full.csv")" -ge 3 ] || die "no loss log: $(cat "$T/full.out")"
cmp -s "$T/full.csv" "$T/lean.csv" || die "losses differ with rematerialization: $(paste -d' ' "$T/full.csv" "$T/lean.csv" | head -5)"
$PY - "$T" "$tf" "$tl" <<'PYEOF' || fail=1
import sys
t, tf, tl = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rf = int(open(t + "/full.rss").read()) / 1024
rl = int(open(t + "/lean.rss").read()) / 1024
if not rf - rl >= 0.5 * (tf - tl):
    print("FAIL: peak RSS %.1f -> %.1f MiB, planned %.1f -> %.1f MiB" % (rf, rl, tf, tl), file=sys.stderr)
    sys.exit(1)
PYEOF
exit $fail
