#!/usr/bin/env bash
# run_plan.sh — `nnc plan` end to end: the report under a budget (the plan fits, the figures
# are consistent), sizes and their errors, the infeasible-budget error, the budget from the
# train section's `memory` line, --remat none/sqrt, and the sweep table and SVG (parsed: two
# curves, optimal never above sqrt, optimal reaching a lower budget); nnc cost's peak is the
# plan's.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
EX="$NNC_SRC/examples"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

"$NNC" plan --help >/dev/null 2>&1 || { echo "FAIL: 'nnc plan' is not available" >&2; exit 1; }

# resnet18 at batch 8: a budget below the unmodified step fits with recomputation
"$NNC" plan "$EX/resnet18.nn" -D N=8 --memory 200MiB --target a100 > "$T/r18.txt" 2> "$T/r18.err" \
  || die "resnet18 at 200MiB: $(cat "$T/r18.err")"
$PY - "$T/r18.txt" <<'PYEOF' || fail=1
import re, sys
t = open(sys.argv[1]).read()
def mib(s):
    v, u = s.split()
    return float(v) * {"B": 1 / 1048576, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[u]
planned = mib(re.search(r"planned:\s+([\d.]+ \w+)", t).group(1))
sched = mib(re.search(r"step, scheduled:\s+([\d.]+ \w+)", t).group(1))
share = float(re.search(r"= ([\d.]+)% of the step", t).group(1))
bad = []
if not planned <= 200: bad.append("planned %.2f MiB above the budget" % planned)
if not sched > 200: bad.append("the unmodified step (%.2f MiB) already fits: the test plans nothing" % sched)
if not 0 < share < 50: bad.append("recompute share %.2f%%" % share)
if "a100" not in t: bad.append("target missing")
if not re.search(r"^\s+1\s+img", t, re.M): bad.append("group table missing")
if bad:
    print("FAIL: resnet18 plan:", "; ".join(bad), file=sys.stderr); print(t, file=sys.stderr); sys.exit(1)
PYEOF

# sizes
for s in 256MiB 1.5GB 300M 2g "1.25 GiB"; do
  "$NNC" plan "$EX/mlp.nn" --memory "$s" > /dev/null 2> "$T/e" || die "size '$s' rejected: $(cat "$T/e")"
done
"$NNC" plan "$EX/mlp.nn" --memory 4096 > "$T/o" 2>/dev/null; [ $? -eq 1 ] || die "4096 bytes: parsed, but fits?"
grep -q "budget:  *4.00 KiB" "$T/o" || die "4096: $(cat "$T/o")" 
for s in 12XB abc -5MiB 0 ""; do
  "$NNC" plan "$EX/mlp.nn" --memory "$s" > /dev/null 2> "$T/e"; rc=$?
  [ $rc -eq 2 ] || die "size '$s': exit $rc, expected 2"
  grep -q -- "--memory: .*size" "$T/e" || die "size '$s': message: $(cat "$T/e")"
done
grep -q "unknown unit 'XB'" <("$NNC" plan "$EX/mlp.nn" --memory 12XB 2>&1) || die "unit named in the error"

# infeasible: the smallest feasible budget, what forces it, and what to ask for
"$NNC" plan "$EX/resnet18.nn" -D N=8 --memory 100MiB > /dev/null 2> "$T/e"; rc=$?
[ $rc -eq 1 ] || die "infeasible budget: exit $rc"
grep -q "budget 100.00 MiB is below the minimum" "$T/e" || die "infeasible message: $(cat "$T/e")"
grep -q "the weights (" "$T/e" && grep -q "largest single tensor" "$T/e" || die "infeasible: what forces it"
want=$(sed -n 's/.*use --memory \([0-9.]*MiB\) or more.*/\1/p' "$T/e")
[ -n "$want" ] || die "no suggested budget"
[ -n "$want" ] && { "$NNC" plan "$EX/resnet18.nn" -D N=8 --memory "$want" > /dev/null 2>&1 \
  || die "the suggested budget $want does not fit"; }

# none and sqrt
"$NNC" plan "$EX/resnet18.nn" -D N=8 --memory 200MiB --remat none > /dev/null 2> "$T/e" && die "none should not fit"
grep -q -- "--remat optimal" "$T/e" || die "--remat none hint: $(cat "$T/e")"
"$NNC" plan "$EX/resnet18.nn" -D N=8 --memory 180MiB --remat sqrt > "$T/sq.txt" 2>&1 || die "sqrt at 180MiB"
"$NNC" plan "$EX/mlp.nn" --remat fastest > /dev/null 2>&1; [ $? -eq 2 ] || die "bad --remat accepted"

# the budget from the train section's memory line
sed 's/optimizer adam(lr = 1e-3)/optimizer adam(lr = 1e-3)\n  memory 1 MiB/' "$EX/mlp.nn" > "$T/mlp_mem.nn"
grep -q "memory 1 MiB" "$T/mlp_mem.nn" || die "could not write the memory line"
"$NNC" plan "$T/mlp_mem.nn" > "$T/m.txt" 2> "$T/e" && die "1 MiB for the mlp should not fit"
grep -q "budget:  *1.00 MiB" "$T/m.txt" || die "memory line not used: $(cat "$T/m.txt")"

# sweep + SVG on the 64-layer chain
"$NNC" plan "$NNC_SRC/tests/plan/deep_mlp.nn" --sweep --points 8 --svg "$T/sweep.svg" > "$T/sw.txt" \
  || die "sweep"
grep -q "budget sweep" "$T/sw.txt" || die "no sweep table"
ls "$T"/sweep.svg.tmp.* >/dev/null 2>&1 && die "temporary SVG left behind"
$PY - "$T/sweep.svg" <<'PYEOF' || fail=1
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
pts = {}
for c in root.iter("{http://www.w3.org/2000/svg}circle"):
    pts.setdefault(c.get("class"), {})[int(c.get("data-budget"))] = float(c.get("data-recompute"))
bad = []
if set(pts) != {"sqrt", "optimal"}: bad.append("curves: %s" % sorted(pts))
else:
    if len(pts["optimal"]) != 8: bad.append("optimal has %d points" % len(pts["optimal"]))
    for b, f in pts["sqrt"].items():
        if b not in pts["optimal"] or pts["optimal"][b] > f * (1 + 1e-12): bad.append("budget %d: optimal above sqrt" % b)
    if min(pts["optimal"]) >= min(pts["sqrt"]): bad.append("optimal does not reach a lower budget")
if len(root.findall("s:polyline", ns)) != 2: bad.append("polylines")
if bad: print("FAIL: sweep svg:", "; ".join(bad), file=sys.stderr); sys.exit(1)
PYEOF

# nnc cost reports the memory plan's peak: params + io + arena of the step in node order, the
# figure nnc plan prints as "step, node order"; the live set at the peak is a lower bound
for ex in mlp lenet; do
  "$NNC" cost "$EX/$ex.nn" --train --json > "$T/c_$ex.json" 2>/dev/null || die "cost $ex"
  "$NNC" plan "$EX/$ex.nn" > "$T/p_$ex.txt" 2>/dev/null || die "plan $ex"
  $PY - "$T/c_$ex.json" "$T/p_$ex.txt" "$ex" <<'PYEOF' || fail=1
import json, re, sys
m = json.load(open(sys.argv[1]))["memory"]
t = open(sys.argv[2]).read()
v, u = re.search(r"step, node order:\s+([\d.]+) (\w+)", t).groups()
plan = float(v) * {"KiB": 1024, "MiB": 1 << 20, "GiB": 1 << 30}[u]
bad = []
if m["peak"] != m["params_region"] + m["io_region"] + m["arena"]: bad.append("peak != params + io + arena")
if abs(m["peak"] - plan) > 0.006 * (1 << 20): bad.append("peak %d vs nnc plan %s %s" % (m["peak"], v, u))
if not (m["peak_live"] <= m["peak"] and m["peak"] - m["peak_live"] < 0.01 * m["peak"]): bad.append("live %d vs peak %d" % (m["peak_live"], m["peak"]))
if m["peak"] < m["weights"] + m["optimizer"] + m["inputs"]: bad.append("peak below what persists")
if bad: print("FAIL: cost peak of %s:" % sys.argv[3], "; ".join(bad), file=sys.stderr); sys.exit(1)
PYEOF
done

# a model without a train section: the inference plan
"$NNC" plan "$EX/gpt2_block.nn" -D N=1 > "$T/g.txt" 2>&1 || die "inference plan"
grep -q "inference plan only" "$T/g.txt" || die "inference plan text"

exit $fail
