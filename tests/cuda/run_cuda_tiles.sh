#!/usr/bin/env bash
# run_cuda_tiles.sh — the CUDA kernels built for a model are the ones `nnc cost --tiles`
# reports: for every matmul of gpt2_block (on H100), mlp and lenet (on A100), the block and
# warp tile, K tile, stages, split-K, threads and CTAs per SM read back from the generated
# kernel text equal the JSON report's. Then the convolutions of a training step (lenet and
# tests/cuda/models/conv_cases.nn on A100 = cuda:sm_80): every forward, backward-data and
# backward-filter node of `nnc cost --train --tiles` has, in `nnc emit --emit=cuda --train`,
# an implicit-GEMM kernel of the same GEMM (m, n, k, groups as batch) and geometry (split-K
# included), except depthwise ones (one input channel per group), which have a direct kernel;
# conv_cases also at --precision bf16 and f16 (16-bit tensor cores in every non-depthwise
# convolution, forward and backward).
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
for spec in examples/lenet.nn:f32 tests/cuda/models/conv_cases.nn:f32 tests/cuda/models/conv_cases.nn:bf16 \
            tests/cuda/models/conv_cases.nn:f16; do
  path=${spec%%:*} prec=${spec##*:}
  model=$(basename "$path" .nn)_$prec
  "$NNC" cost "$NNC_SRC/$path" --train --target a100-sxm-80gb --precision "$prec" --tiles --json > "$T/$model.train.json" || { echo "FAIL: nnc cost --train $model"; fail=1; continue; }
  "$NNC" emit --emit=cuda "$NNC_SRC/$path" --train --target cuda:sm_80 --precision "$prec" > "$T/$model.cu" || { echo "FAIL: nnc emit $model"; fail=1; continue; }
  $PY - "$T/$model.train.json" "$T/$model.cu" "$model" <<'PYEOF' || fail=1
import json, re, sys
convs = ("conv2d", "conv2d_bwd_data", "conv2d_bwd_filter")
rep = {t["node"]: t for t in json.load(open(sys.argv[1]))["tiles"] if t["op"] in convs}
src = open(sys.argv[2]).read()
keys = ["bm", "bn", "bk", "wm", "wn", "stages", "split_k", "threads", "ctas_per_sm"]
got, dw = {}, set()
# the training step's kernels only (the forward plan's node ids are the forward graph's)
for m in re.finditer(r"/\* \w+_train_k\d+_gemm: (\w+) %(\d+) as implicit GEMM (\d+) x (\d+) x (\d+), batch (\d+)", src):
    tail = src[m.end():]
    h = re.search(r"block (\d+)x(\d+)x(\d+), warps \d+x\d+ of (\d+)x(\d+), (\d+) stages, pad \d+, split-K (\d+)", tail)
    lb = re.search(r"__launch_bounds__\((\d+), (\d+)\)", tail)
    node = int(m.group(2))
    got[node] = dict(zip(keys, [int(x) for x in h.groups() + lb.groups()]))
    got[node].update(op=m.group(1), m=int(m.group(3)), n=int(m.group(4)), k=int(m.group(5)), batch=int(m.group(6)))
for m in re.finditer(r"/\* \w+_train_k\d+_dw: depthwise (\w+) %(\d+), direct", src):
    dw.add(int(m.group(2)))
bad = [n for n in rep if n not in dw and (n not in got or any(rep[n][k] != got[n][k] for k in keys + ["op", "m", "n", "k", "batch"]))]
bad += [n for n in dw if n not in rep or rep[n]["batch"] < 2]
if not got or bad or set(got) | dw != set(rep):
    print("FAIL: %s: conv kernels differ from the report at nodes %s" % (sys.argv[3], bad or sorted((set(got) | dw) ^ set(rep))))
    sys.exit(1)
split = sum(1 for n in got if got[n]["split_k"] > 1)
print("%s: %d conv GEMM kernels (%d split-K) match nnc cost --train --tiles; %d depthwise direct" % (sys.argv[3], len(got), split, len(dw)))
PYEOF
done
exit $fail
