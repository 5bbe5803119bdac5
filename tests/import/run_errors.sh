#!/usr/bin/env bash
# `nnc import` refuses what it cannot translate faithfully: one error per unsupported op kind
# (naming the first node and the count), attributes nnc cannot honour, files that are not
# ONNX; exit status 1 and no output file in every case.
set -euo pipefail
: "${NNC:?}"
py=/usr/bin/python3
if ! $py -c 'from onnx import TensorProto' 2>/dev/null; then  # (a bare 'import onnx' also finds the build tree's onnx/ folder)
  echo "import errors: skipped (the onnx Python package is not installed)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py - "$tmp" <<'PY'
import sys, numpy as np, onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh
d = sys.argv[1]
def save(name, nodes, inits=(), shape=(2, 3, 8, 8)):
    g = h.make_graph(nodes, name, [h.make_tensor_value_info("x", T.FLOAT, shape)],
                     [h.make_tensor_value_info("y", T.FLOAT, None)], list(inits))
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), f"{d}/{name}.onnx")
save("ops", [h.make_node("Sin", ["x"], ["a"], name="sin_1"), h.make_node("Sin", ["a"], ["b"], name="sin_2"),
             h.make_node("Relu", ["b"], ["c"]), h.make_node("Sign", ["c"], ["y"], name="sign_0")])
w = nh.from_array(np.zeros((4, 3, 3, 3), np.float32), "conv.weight")
save("pads", [h.make_node("Conv", ["x", "conv.weight"], ["y"], name="conv", pads=[0, 0, 1, 1])], [w])
save("gemm", [h.make_node("Flatten", ["x"], ["f"]),
              h.make_node("Gemm", ["f", "fc.weight"], ["y"], name="fc", alpha=2.0, transB=1)],
     [nh.from_array(np.zeros((5, 192), np.float32), "fc.weight")])
save("erf", [h.make_node("Erf", ["x"], ["y"], name="erf_0")])
save("argmax", [h.make_node("ArgMax", ["x"], ["y"], name="am", axis=1)])
save("andf", [h.make_node("And", ["x", "x"], ["y"], name="and_0")])
save("conv3d", [h.make_node("Conv", ["x", "conv.weight"], ["y"], name="c3", kernel_shape=[1, 1, 1])],
     [nh.from_array(np.zeros((4, 3, 1, 1, 1), np.float32), "conv.weight")], shape=(2, 3, 4, 4, 4))
save("pool1d", [h.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[3, 3])], shape=(2, 3, 8))
open(f"{d}/junk.onnx", "wb").write(b"\xff\xff\xff\xff not a protobuf")
PY
expect() { # FILE PATTERN...: import fails with exit 1, stderr has every pattern, no output
  local f=$1; shift
  local rc=0
  "$NNC" import "$tmp/$f.onnx" -o "$tmp/$f.nn" 2>"$tmp/err" || rc=$?
  cat "$tmp/err"
  [ "$rc" = 1 ] || { echo "FAIL: $f: exit status $rc, expected 1"; exit 1; }
  [ ! -e "$tmp/$f.nn" ] && [ ! -e "$tmp/$f.safetensors" ] || { echo "FAIL: $f: output written"; exit 1; }
  for p in "$@"; do grep -qF -- "$p" "$tmp/err" || { echo "FAIL: $f: no '$p'"; exit 1; }; done
}
expect ops "node 'sin_1' (Sin): operator 'Sin' (opset 13, 2 nodes) has no nnc equivalent" \
  "node 'sign_0' (Sign): operator 'Sign' (opset 13, 1 node)" "2 errors generated."
[ "$(grep -c 'error:' "$tmp/err")" = 2 ] || { echo "FAIL: one error per op kind expected"; exit 1; }
expect pads "node 'conv' (Conv): asymmetric padding (pads = [0, 0, 1, 1]); nnc pads both sides equally"
expect gemm "node 'fc' (Gemm): alpha = 2, beta = 1: nnc maps Gemm onto dense"
expect erf "node 'erf_0' (Erf): nnc has no erf; Erf is imported only as part of GELU"
expect argmax "node 'am' (ArgMax): operator 'ArgMax' (opset 13, 1 node) has no nnc equivalent (nnc has no argmax"
expect andf "node 'and_0' (And): 'x' is float where And takes bool"
expect conv3d "node 'c3' (Conv): input of rank 5; nnc has 1-D and 2-D convolution only"
expect pool1d "node 'mp' (MaxPool): attribute kernel_shape does not fit a 1-D MaxPool"
expect junk "junk.onnx: error: not an ONNX model"
rc=0; "$NNC" import "$tmp/missing.onnx" -o "$tmp/m.nn" 2>"$tmp/err" || rc=$?
cat "$tmp/err"; [ "$rc" = 1 ] && grep -q "missing.onnx" "$tmp/err"
rc=0; "$NNC" import "$tmp/ops.onnx" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || { echo "FAIL: usage error expected without -o"; exit 1; }
# corrupted files (bytes flipped, truncated) are errors or imports, never crashes
$py - "$tmp" <<'PY'
import os, random, sys
d = sys.argv[1]
src = open(f"{d}/gemm.onnx", "rb").read() + b""
r = random.Random(7)
for i in range(60):
    b = bytearray(src)
    for _ in range(r.randint(1, 6)):
        b[r.randrange(len(b))] = r.randrange(256)
    if i % 3 == 0:
        b = b[: r.randrange(len(b))]
    open(f"{d}/mut{i}.onnx", "wb").write(bytes(b))
PY
for i in $(seq 0 59); do
  rc=0; "$NNC" import "$tmp/mut$i.onnx" -o "$tmp/mut.nn" 2>"$tmp/err" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 1 ] || { echo "FAIL: corrupted file $i: exit status $rc"; exit 1; }
  ! grep -qE "Sanitizer|runtime error:" "$tmp/err" || { cat "$tmp/err"; echo "FAIL: corrupted file $i"; exit 1; }
done
echo "import errors: ok"
