#!/usr/bin/env bash
# bench_remat.sh — rematerialization: the budget-vs-recompute curves of sqrt and optimal
# (cost level, `nnc plan --sweep`) on ResNet-50 (training, batch 32) and the 64-layer MLP,
# and the compiled 64-layer MLP at several budgets: the planned memory (`info`), the peak
# RSS of a training run and the measured step time (best of interleaved runs) against the
# planned extra FLOPs. ROUNDS and K set the number of runs and steps per run.
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
echo "## 64-layer MLP compiled: budget, planned memory, peak RSS, step time (1 thread, pinned)"
# The host this was written on is a shared 2-vCPU VM: step times are the best single step
# over ROUNDS interleaved runs of K steps each (pinned to one CPU with taskset when present),
# which filters out time slices lost to other processes better than a median does.
ROUNDS=${ROUNDS:-5}; K=${K:-7}
PIN=""; command -v taskset >/dev/null && PIN="taskset -c $(( $(nproc) - 1 ))"
/usr/bin/python3 - "$T" <<'PYEOF'
import numpy as np, sys
r = np.random.default_rng(1)
np.save(sys.argv[1] + "/x.npy", r.standard_normal((2048, 256)).astype(np.float32))
np.save(sys.argv[1] + "/y.npy", r.integers(0, 10, 2048).astype(np.int32))
PYEOF
BUDGETS="none 90MiB 75MiB 60MiB 50MiB"
for m in $BUDGETS; do
  if [ $m = none ]; then "$NNC" build "$SRC/tests/plan/deep_mlp.nn" -o "$T/p_$m" >/dev/null
  else "$NNC" build "$SRC/tests/plan/deep_mlp.nn" --memory $m -o "$T/p_$m" >/dev/null; fi
  /usr/bin/time -f "%M" -o "$T/rss_$m" "$T/p_$m" train --data "x=$T/x.npy,label=$T/y.npy" --epochs 1 \
    --threads 1 --quiet >/dev/null
done
for r in $(seq "$ROUNDS"); do
  for m in $BUDGETS; do
    $PIN "$T/p_$m" bench --train --iters "$K" --threads 1 | sed -n 's/.*best \([0-9.]*\) ms.*/\1/p' >> "$T/best_$m"
  done
done
printf "%-8s %-14s %-10s %-12s %-12s %-12s %-12s %s\n" budget "planned (MiB)" "RSS (MiB)" "train FLOPs" "step (ms)" "extra time" "extra FLOPs" "ratio"
base=""
for m in $BUDGETS; do
  info=$("$T/p_$m" info)
  planned=$(sed -n 's/^memory: .*; \([0-9.]*\) MiB in all$/\1/p' <<<"$info")
  fl=$(sed -n 's/.*training step \([0-9.]*\) GFLOP.*/\1/p' <<<"$info")
  rss=$(awk '{printf "%.1f", $1/1024}' "$T/rss_$m")
  ms=$(sort -g "$T/best_$m" | head -1)
  [ -z "$base" ] && base=$ms && basefl=$fl
  awk -v m="$m" -v p="$planned" -v r="$rss" -v f="$fl" -v a="$ms" -v b="$base" -v g="$basefl" 'BEGIN{
    et = 100*(a-b)/b; ef = 100*(f-g)/g; q = "-"; if (ef > 0) q = sprintf("%.2f", et/ef);
    printf "%-8s %-14s %-10s %-12s %-12s %-12s %-12s %s\n", m, p, r, f " G", a, sprintf("%+.1f%%", et),
      sprintf("%+.1f%%", ef), q }'
done
