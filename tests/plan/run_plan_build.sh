#!/usr/bin/env bash
# run_plan_build.sh — budgets the binary keeps: `nnc build --memory [--remat]` on the 64-layer
# MLP.
# The program's `info` reports params + io + arena, and the expected peak of a one-thread training
# process, within the budget; training with and
# without rematerialization gives the same losses (recomputation repeats the same float
# operations); the peak RSS of a training run drops by at least 40% of the planned saving;
# NAME.h from --lib carries the same arena sizes as the program's info and the descriptor.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
NN="$NNC_SRC/tests/plan/deep_mlp.nn"

"$NNC" build "$NN" -D N=256 -o "$T/full" > "$T/b.log" 2>&1 || { cat "$T/b.log" >&2; echo "FAIL: build" >&2; exit 1; }
"$NNC" build "$NN" -D N=256 --memory 46MiB -o "$T/lean" > "$T/b.log" 2>&1 || { cat "$T/b.log" >&2; echo "FAIL: build --memory" >&2; exit 1; }
"$NNC" build "$NN" -D N=256 --memory 20MiB -o "$T/none" > "$T/b.log" 2>&1 && die "20MiB should not fit"
grep -q "use --memory" "$T/b.log" || die "build: infeasible message: $(cat "$T/b.log")"

"$NNC" build "$NN" -D N=256 --memory 46MiB --remat sqrt -o "$T/sqrt" > "$T/b.log" 2>&1 || die "build --remat sqrt: $(cat "$T/b.log")"
"$NNC" build "$NN" -D N=256 --memory 46MiB --remat none -o "$T/x" > "$T/b.log" 2>&1 && die "--remat none at 46MiB should not fit"
grep -q -- "--remat optimal fits it" "$T/b.log" || die "--remat none: message: $(cat "$T/b.log")"
"$NNC" build "$NN" -D N=256 --remat sqrt -o "$T/x" > "$T/b.log" 2>&1 && die "--remat sqrt without a budget accepted"
grep -q "needs a budget" "$T/b.log" || die "--remat without a budget: message: $(cat "$T/b.log")"
"$NNC" build "$NN" --remat fast -o "$T/x" > /dev/null 2>&1; [ $? -eq 2 ] || die "bad --remat accepted"
grep -q "^memory plan: budget 46.00 MiB (remat sqrt" <("$T/sqrt" info) || die "info of the sqrt build"

total() { sed -n 's/^memory: .*; \([0-9.]*\) MiB in all$/\1/p' <("$1" info); }
tf=$(total "$T/full"); tl=$(total "$T/lean")
[ -n "$tf" ] && [ -n "$tl" ] || die "info: no memory line"
$PY -c "import sys; f,l=float('$tf'),float('$tl'); sys.exit(0 if l <= 46 and f > 46 else 1)" \
  || die "info: full $tf MiB, lean $tl MiB (budget 46)"

# the arena the generated code needs, three ways: the program's info, NAME.h from --lib with
# the same options, and the descriptor inside libNAME.a (read by a C program)
"$NNC" build "$NN" -D N=256 --memory 46MiB --lib -o "$T/libdm.a" > "$T/b.log" 2>&1 || die "build --lib --memory: $(cat "$T/b.log")"
"$T/lean" info > "$T/lean.info"
grep -q "^memory plan: budget 46.00 MiB (remat optimal" "$T/lean.info" || die "info: no plan line: $(cat "$T/lean.info")"
grep -q "^memory plan: no budget" <("$T/full" info) || die "info of the unbudgeted program: no plan line"
af=$(sed -n 's/^arena: \([0-9]*\) bytes (forward), \([0-9]*\) bytes (training step).*/\1/p' "$T/lean.info")
at=$(sed -n 's/^arena: \([0-9]*\) bytes (forward), \([0-9]*\) bytes (training step).*/\2/p' "$T/lean.info")
hd() { sed -n "s/^#define DM_$1 \([0-9]*\)$/\1/p" "$T/dm.h"; }
[ -n "$af" ] && [ "$af" = "$(hd ARENA_BYTES_FORWARD)" ] || die "forward arena: info '$af', dm.h '$(hd ARENA_BYTES_FORWARD)'"
[ -n "$at" ] && [ "$at" = "$(hd ARENA_BYTES_TRAIN)" ] || die "training arena: info '$at', dm.h '$(hd ARENA_BYTES_TRAIN)'"
[ "$(hd TRAIN_STEP_BYTES)" -le $((46 * 1048576)) ] 2>/dev/null || die "DM_TRAIN_STEP_BYTES $(hd TRAIN_STEP_BYTES) above the budget"
# the budget bounds the expected peak of a one-thread training process, not only the step
# (the thread's GEMM packing buffers, known once the kernels are generated, on top)
pk=$("$T/lean" info --threads 1 | sed -n 's/.*train \([0-9]*\) + 8\/sample.*/\1/p')
[ -n "$pk" ] && [ $((pk - $(hd THREAD_BYTES_TRAIN))) -le $((46 * 1048576)) ] \
  || die "expected peak of train '$pk' (packing $(hd THREAD_BYTES_TRAIN)) above the budget"
cat > "$T/desc.c" <<'CEOF'
#include <stdio.h>
#include "dm.h"
#include "rt_model.h"
extern const RtModelDesc nnc_model_deep_mlp;
int main(void) {
  const RtModelDesc *d = &nnc_model_deep_mlp;
  int ok = d->arena_bytes_forward == DM_ARENA_BYTES_FORWARD && d->arena_bytes_train == DM_ARENA_BYTES_TRAIN &&
           DM_TRAIN_STEP_BYTES == d->params_bytes + d->io_bytes + d->arena_bytes_train &&
           DM_ARENA_BYTES == (DM_ARENA_BYTES_FORWARD > DM_ARENA_BYTES_TRAIN ? DM_ARENA_BYTES_FORWARD : DM_ARENA_BYTES_TRAIN);
  if (!ok) printf("descriptor %lld/%lld, header %lld/%lld\n", (long long)d->arena_bytes_forward,
                  (long long)d->arena_bytes_train, (long long)DM_ARENA_BYTES_FORWARD, (long long)DM_ARENA_BYTES_TRAIN);
  return !ok;
}
CEOF
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "${NNC_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null && SAN="-fsanitize=address,undefined"
if cc -std=c11 -Wall -Wextra -Werror $SAN -I"$T" -I"$NNC_SRC/runtime" "$T/desc.c" "$T/libdm.a" -lcjson -lm -lpthread \
    -o "$T/desc" 2> "$T/cc.log"; then
  "$T/desc" || die "dm.h and the descriptor in libdm.a disagree"
else
  die "compiling against dm.h + libdm.a: $(cat "$T/cc.log")"
fi

$PY - "$T" <<'PYEOF'
import numpy as np, sys
t = sys.argv[1]
r = np.random.default_rng(3)
np.save(t + "/x.npy", r.standard_normal((512, 256)).astype(np.float32))
np.save(t + "/y.npy", r.integers(0, 10, 512).astype(np.int32))
PYEOF
for b in full lean sqrt; do
  /usr/bin/time -f "%M" -o "$T/$b.rss" "$T/$b" train --data "x=$T/x.npy,label=$T/y.npy" --epochs 2 \
    --seed 5 --threads 1 --quiet --log "$T/$b.csv" > "$T/$b.out" 2>&1 || die "train $b: $(cat "$T/$b.out")"
done
[ "$(wc -l < "$T/full.csv")" -ge 3 ] || die "no loss log: $(cat "$T/full.out")"
cmp -s "$T/full.csv" "$T/lean.csv" || die "losses differ with rematerialization: $(paste -d' ' "$T/full.csv" "$T/lean.csv" | head -5)"
cmp -s "$T/full.csv" "$T/sqrt.csv" || die "losses differ with sqrt rematerialization: $(paste -d' ' "$T/full.csv" "$T/sqrt.csv" | head -5)"
# (not under sanitizers: their shadow memory and quarantine dwarf and blur the arena)
[ -n "$SAN" ] || $PY - "$T" "$tf" "$tl" <<'PYEOF' || fail=1
import sys
t, tf, tl = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rf = int(open(t + "/full.rss").read()) / 1024
rl = int(open(t + "/lean.rss").read()) / 1024
# Measured: 52.7 -> 44.4 MiB against 57.0 -> 40.9 planned (this machine; 52.8 -> 44.7 in a
# fresh Debian root): the full step never has all of its planned arena resident at once, so
# the drop is about half the planned one, and half proved too tight between systems.
if not rf - rl >= 0.4 * (tf - tl):
    print("FAIL: peak RSS %.1f -> %.1f MiB, planned %.1f -> %.1f MiB" % (rf, rl, tf, tl), file=sys.stderr)
    sys.exit(1)
PYEOF
exit $fail
