#!/usr/bin/env bash
# run_cost_nets.sh — acceptance on the example networks at 224x224: parameter counts equal
# torchvision's (exactly) and forward MACs are within 0.5% of the published figures
# (conv + linear multiply-accumulates, the fvcore convention; docs/cost-model.md). The
# training step's backward/forward ratio of the first layer is below 2 (no input gradient).
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
EX="$NNC_SRC/examples"
fail=0
# name params macs
while read -r name params macs; do
  if ! out=$("$NNC" cost "$EX/$name.nn" --target a100 -D N=1 --json 2>&1); then
    echo "FAIL: nnc cost $name.nn:" >&2; echo "$out" >&2; fail=1; continue
  fi
  echo "$out" | $PY -c '
import json, sys
name, params, macs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t = json.load(sys.stdin)["totals"]
rel = abs(t["fwd_macs"] - macs) / macs
print("%s: %d parameters (published %d), %d MACs (published %.4g, %.3f%% off)" % (name, t["params"], params, t["fwd_macs"], macs, 100 * rel))
sys.exit(0 if t["params"] == params and rel <= 0.005 else 1)' "$name" "$params" "$macs" || { echo "FAIL: $name" >&2; fail=1; }
done <<'LIST'
resnet18 11689512 1.814e9
resnet50 25557032 4.089e9
mobilenet_v2 3504872 0.300e9
LIST

# first layer of ResNet-18: weight gradient only -> bwd/fwd < 2
if out=$("$NNC" cost "$EX/resnet18.nn" --target a100 -D N=2 --train --per layer --json 2>&1); then
  echo "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
ops = d["ops"]
f = sum(r["flops"] for r in ops if r["scope"] == "conv1" and r["phase"] == "fwd")
b = sum(r["flops"] for r in ops if r["scope"] == "conv1" and r["phase"] == "bwd")
print("resnet18 conv1: bwd/fwd = %.3f; whole step %.3f" % (b / f, d["totals"]["bwd_fwd_ratio"]))
sys.exit(0 if f > 0 and 0 < b / f < 2 else 1)' || { echo "FAIL: resnet18 first-layer ratio" >&2; fail=1; }
else
  echo "FAIL: nnc cost --train resnet18.nn:" >&2; echo "$out" >&2; fail=1
fi
exit $fail
