#!/usr/bin/env bash
# run_cuda_tiles.sh — the CUDA kernels built for a model are the ones `nnc cost --tiles`
# reports: for every matmul of gpt2_block (on H100), mlp and lenet (on A100), the block and
# warp tile, K tile, stages, split-K, threads and CTAs per SM read back from the generated
# kernel text equal the JSON report's. (Convolutions have no CUDA kernels yet.)
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?}" "${NNC_BUILD:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
for spec in gpt2_block:h100 mlp:a100 lenet:a100; do
  model=${spec%%:*} target=${spec##*:}
  "$NNC" cost "$NNC_SRC/examples/$model.nn" --target "$target" --tiles --json > "$T/$model.json" || { echo "FAIL: nnc cost $model"; fail=1; continue; }
  "$NNC_BUILD/cuda_model_kernels" "$NNC_SRC/examples/$model.nn" "$target" > "$T/$model.txt" || { echo "FAIL: kernels of $model"; fail=1; continue; }
  $PY - "$T/$model.json" "$T/$model.txt" "$model" <<'PYEOF' || fail=1
import json, sys
rep = {t["node"]: t for t in json.load(open(sys.argv[1]))["tiles"] if t["op"] == "matmul"}
keys = ["bm", "bn", "bk", "wm", "wn", "stages", "split_k", "threads", "ctas_per_sm"]
got = {}
for line in open(sys.argv[2]):
    v = [int(x) for x in line.split()]
    got[v[0]] = dict(zip(keys, v[1:]))
bad = [n for n in rep if n not in got or any(rep[n][k] != got[n][k] for k in keys)]
if not rep or bad or set(got) != set(rep):
    print("FAIL: %s: kernels differ from the report at nodes %s" % (sys.argv[3], bad or sorted(set(got) ^ set(rep))))
    sys.exit(1)
print("%s: %d matmul kernels match nnc cost --tiles" % (sys.argv[3], len(rep)))
PYEOF
done
exit $fail
