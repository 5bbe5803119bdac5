#!/usr/bin/env bash
# cost_precision.sh NNC — `nnc cost --target h100-sxm --precision P` prices a CUDA build's GEMMs
# at P: for mlp's fc1 matmul (N=4096) the reported time is max(FLOPs / peak, bytes / bandwidth)
# + launch overhead, with the f32 peak at f32 and the bf16 tensor-core peak at bf16 (both from
# `nnc cost --list-targets`: its 16-bit tensor-core column, the same for bf16 on H100), and the
# bytes those of f32 operands either way (the kernels read f32 and round on load); and
# --precision is refused for a CPU target.
. "$(dirname "$0")/common.sh"
"$NNC" cost --list-targets > "$T/targets.txt" || die "list-targets"
for p in f32 bf16; do
  "$NNC" cost "$SRC/examples/mlp.nn" -D N=4096 --target h100-sxm --precision $p --per op --json > "$T/$p.json" ||
    die "nnc cost --precision $p"
done
$PY - "$T" <<'PYEOF' || die "GEMM times do not follow the precision"
import json, sys
t = sys.argv[1]
row = [l.split() for l in open(t + "/targets.txt") if l.startswith("h100-sxm ")][0]
peaks = {"f32": float(row[2]) * 1e12, "bf16": float(row[3]) * 1e12}
ok = True; bytes_seen = set()
for p, peak in peaks.items():
    j = json.load(open("%s/%s.json" % (t, p)))
    bw, ovh = j["target"]["mem_bw"], j["target"]["overhead"]
    op = [o for o in j["ops"] if o["name"] == "fc1/matmul"][0]
    want = max(op["flops"] / peak, op["bytes"] / bw) + ovh
    print("%-4s fc1/matmul: %.4g us (expected %.4g us at %.1f TFLOP/s), %d bytes" % (p, op["time"] * 1e6, want * 1e6, peak / 1e12, op["bytes"]))
    ok &= abs(op["time"] - want) <= 1e-9 * want
    bytes_seen.add(op["bytes"])
sys.exit(0 if ok and len(bytes_seen) == 1 and peaks["bf16"] > peaks["f32"] else 1)
PYEOF
if "$NNC" cost "$SRC/examples/mlp.nn" --precision bf16 > /dev/null 2> "$T/err"; then die "--precision accepted for the host CPU"; fi
grep -q "with a GPU --target" "$T/err" || die "no message for --precision on a CPU target"
echo ok
