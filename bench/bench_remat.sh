#!/usr/bin/env bash
# bench_remat.sh — rematerialization: the budget-vs-recompute curves of sqrt and optimal
# (cost level, `nnc plan --sweep`) on ResNet-50 (training, batch 32) and the 64-layer MLP,
# and the compiled 64-layer MLP at several budgets: the planned memory (`info`), the peak
# RSS of a training run and the measured step time against the planned extra FLOPs.
# Usage: bench/bench_remat.sh [BUILD_DIR]   (default: build)
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$SRC/build}
NNC=$B/nnc
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "## ResNet-50, training step, batch 32 (cost level)"
"$NNC" plan "$SRC/examples/resnet50.nn" -D N=32 --sweep --points 12 --target a100 | sed -n '/budget sweep/,$p'
echo
echo "## 64-layer MLP (tests/plan/deep_mlp.nn, N=1024, W=256), cost level"
"$NNC" plan "$SRC/tests/plan/deep_mlp.nn" --sweep --points 12 | sed -n '/budget sweep/,$p'
echo
echo "## 64-layer MLP compiled: budget, planned memory, peak RSS, step time (1 thread)"
/usr/bin/python3 - "$T" <<'PYEOF'
import numpy as np, sys
r = np.random.default_rng(1)
np.save(sys.argv[1] + "/x.npy", r.standard_normal((2048, 256)).astype(np.float32))
np.save(sys.argv[1] + "/y.npy", r.integers(0, 10, 2048).astype(np.int32))
PYEOF
printf "%-8s %-14s %-12s %-14s %-14s %-10s\n" budget "planned (MiB)" "RSS (MiB)" "train FLOPs" "step (ms)" "extra"
base=""
for m in none 90MiB 75MiB 60MiB 50MiB; do
  if [ $m = none ]; then "$NNC" build "$SRC/tests/plan/deep_mlp.nn" -o "$T/p_$m" >/dev/null
  else "$NNC" build "$SRC/tests/plan/deep_mlp.nn" --memory $m -o "$T/p_$m" >/dev/null; fi
  info=$("$T/p_$m" info)
  planned=$(sed -n 's/^memory: .*; \([0-9.]*\) MiB in all$/\1/p' <<<"$info")
  fl=$(sed -n 's/.*training step \([0-9.]*\) GFLOP.*/\1/p' <<<"$info")
  /usr/bin/time -f "%M" -o "$T/rss" "$T/p_$m" train --data "x=$T/x.npy,label=$T/y.npy" --epochs 1 \
    --threads 1 --quiet >/dev/null
  rss=$(awk '{printf "%.1f", $1/1024}' "$T/rss")
  ms=$("$T/p_$m" bench --train --iters 7 --threads 1 | sed -n 's/.*measured: *\([0-9.]*\) ms per step.*/\1/p')
  [ -z "$base" ] && base=$ms && basefl=$fl
  extra=$(awk -v a="$ms" -v b="$base" -v f="$fl" -v g="$basefl" 'BEGIN{printf "%+.1f%% (FLOPs %+.1f%%)", 100*(a-b)/b, 100*(f-g)/g}')
  printf "%-8s %-14s %-12s %-14s %-14s %s\n" "$m" "$planned" "$rss" "${fl} G" "$ms" "$extra"
done
