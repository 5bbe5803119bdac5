#!/usr/bin/env bash
# cost_gpu_check.sh NNC — `nnc cost --target h100|a100` over the CUDA plan (not timed):
#  1. the estimate's launches are the CUDA launch table's, name for name in execution order,
#     for the forward pass and the training step (mlp; lenet: direct and implicit-GEMM
#     convolutions, node kernels, split-K reductions), as `nnc emit --emit=cuda` prints it;
#  2. bytes and FLOPs of mlp's GEMM launches from the shapes: A, B and bias read, C written
#     (split-K: the workspace split x M x N x 4 written by the GEMM, read by its reduction);
#     2MNK <= FLOPs <= 2MNK + 4MN (the bias and relu epilogue); the total is the sum;
#  3. `info` of a cuda-emu program shows the device memory, the GEMM tiles and the estimate.
. "$(dirname "$0")/common.sh"
for spec in "mlp h100 sm_90" "lenet a100 sm_80"; do
  set -- $spec
  m=$1 hw=$2 arch=$3
  for tr in "" --train; do
    "$NNC" emit --emit=cuda --target cuda:$arch -D N=64 $tr "$SRC/examples/$m.nn" > "$T/src.cu" || die "emit $m $tr"
    "$NNC" cost --target $hw -D N=64 $tr --json "$SRC/examples/$m.nn" > "$T/cost.json" || die "cost $m $tr"
    $PY - "$T" "$tr" <<'PYEOF' || die "$m $tr: the estimate's launches are not the launch table's"
import json, re, sys
t, train = sys.argv[1], sys.argv[2] == "--train"
src = open(t + "/src.cu").read()
title = "training step" if train else "forward"
m = re.search(r"/\* launch table: %s \((\d+) launches[^\n]*\n((?: \*   [^\n]*\n)*)" % title, src)
names = re.findall(r"^ \*   (\S+)", m.group(2), re.M)
assert len(names) == int(m.group(1))
e = json.load(open(t + "/cost.json"))["estimate"]
got = [k["name"].split(" ")[0] for k in e["kernels"]]
print("%s: %d launches in the table, %d in the estimate, %.3f ms" % (title, len(names), len(got), e["time"] * 1e3))
assert e["basis"] == "CUDA launch table" and got == names, (got[:5], names[:5])
assert abs(e["time"] - sum(k["time"] for k in e["kernels"])) <= 1e-12 + 1e-9 * e["time"]
assert abs(e["bytes"] - sum(k["read"] + k["written"] for k in e["kernels"])) <= 1e-6 * e["bytes"]
PYEOF
  done
done
"$NNC" cost --target h100 -D N=64 --json "$SRC/examples/mlp.nn" > "$T/cost.json" || die "cost mlp"
$PY - "$T" <<'PYEOF' || die "mlp's GEMM launches: bytes or FLOPs differ from the shapes"
import json, re, sys
e = json.load(open(sys.argv[1] + "/cost.json"))["estimate"]["kernels"]
rows = {k["name"].split(" ")[0]: k for k in e}
for ki, (M, K, N) in enumerate([(64, 784, 512), (64, 512, 10)]):
    g = rows["mlp_fwd_k%d_gemm" % ki]
    sk = re.search(r" sk(\d+)", g["tile"])
    split = int(sk.group(1)) if sk else 1
    rd, c, ws = 4 * (M * K + K * N + N), 4 * M * N, 4 * split * M * N
    assert g["read"] == rd, (ki, g["read"], rd)
    assert 2 * M * N * K <= g["flops"] <= 2 * M * N * K + 4 * M * N, (ki, g["flops"])
    if split > 1:
        r = rows["mlp_fwd_k%d_gemm_reduce" % ki]
        assert g["written"] == ws and r["read"] == ws and r["written"] == c, (ki, g, r)
    else:
        assert g["written"] == c
    print("k%d: %dx%dx%d, split-K %d: read %d, written %d bytes as the shapes give" % (ki, M, K, N, split, g["read"], g["written"]))
PYEOF
"$NNC" build "$SRC/examples/mlp.nn" -D N=16 --target cuda-emu -o "$T/emu" || die "build cuda-emu"
"$T/emu" info > "$T/info.txt" || die "info"
for w in "device memory: params" "GEMM tiles (sm_80): k0 " "training step on a100-sxm-80gb: " "cost model: forward"; do
  grep -qF "$w" "$T/info.txt" || { cat "$T/info.txt"; die "info: no '$w'"; }
done
grep -E "^(device memory|forward on|training step on)" "$T/info.txt"
echo "ok"
