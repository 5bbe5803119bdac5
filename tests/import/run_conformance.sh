#!/usr/bin/env bash
# ONNX's conformance tests (the onnx package's backend test data) through `nnc import` and
# `nnc run`, a few (spread over the list) also through a compiled program; the list of run and
# skipped tests (with the reason) is written to the build directory. Skipped when the onnx
# package is missing.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}" "${NNC_BUILD:?}"
py=/usr/bin/python3
if ! $py -c 'from onnx import TensorProto' 2>/dev/null; then  # (a bare 'import onnx' also finds the build tree's onnx/ folder)
  echo "onnx conformance: skipped (the onnx Python package is not installed; .ci/setup.sh installs it)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
suites="pytorch-converted pytorch-operator simple node" build=4
# sanitized builds (NNC_TEST_QUICK=1) run the module suites only: the node suite's 1288 models
# take minutes under AddressSanitizer
[ "${NNC_TEST_QUICK:-0}" = 1 ] && suites="pytorch-converted pytorch-operator simple" build=1
$py "$NNC_SRC/tests/import/conformance.py" "$NNC" "$tmp" "$NNC_BUILD/onnx_conformance.txt" \
  $suites --build "$build"
