#!/usr/bin/env bash
# ONNX's conformance tests (the onnx package's backend test data) through `nnc import` and
# `nnc run`, a few also through a compiled program; the list of run and skipped tests (with
# the reason) is written to the build directory. Skipped when the onnx package is missing.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}" "${NNC_BUILD:?}"
py=/usr/bin/python3
if ! $py -c 'import onnx' 2>/dev/null; then
  echo "onnx conformance: skipped (the onnx Python package is not installed; .ci/setup.sh installs it)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build=4
[ "${NNC_TEST_QUICK:-0}" = 1 ] && build=1
$py "$NNC_SRC/tests/import/conformance.py" "$NNC" "$tmp" "$NNC_BUILD/onnx_conformance.txt" \
  pytorch-converted pytorch-operator simple node --build "$build"
