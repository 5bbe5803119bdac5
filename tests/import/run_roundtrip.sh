#!/usr/bin/env bash
# examples/mlp.nn and examples/lenet.nn as ONNX graphs (in the forms PyTorch exports) import to
# files with the examples' parameter names, counts, MACs and outputs; with PyTorch installed,
# also the networks exported by torch.onnx.export. Skipped when the onnx package is missing.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
if ! $py -c 'from onnx import TensorProto' 2>/dev/null; then  # (a bare 'import onnx' also finds the build tree's onnx/ folder)
  echo "import round trips: skipped (the onnx Python package is not installed; .ci/setup.sh installs it)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py "$NNC_SRC/tests/import/roundtrip.py" "$NNC" "$NNC_SRC" "$tmp"
