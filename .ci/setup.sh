#!/usr/bin/env bash
# Installs everything nnc needs to build and test, from Debian's packages. Idempotent:
# packages already installed are left alone, and apt is not touched when nothing is missing.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config flex bison check libcjson-dev
      llvm-19-dev clang-19 libclang-rt-19-dev libzstd-dev libopenblas-dev python3 python3-numpy
      time libprotobuf-c-dev protobuf-c-compiler python3-pip python3-setuptools
      libopenmpi-dev openmpi-bin)
# optional: PyTorch for the benchmarks' reference (bench/) and the torch.onnx.export round
# trips (tests/import/), only when asked for
if [ "${NNC_WITH_TORCH:-0}" = 1 ]; then pkgs+=(python3-torch python3-torchvision); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
# the ONNX conformance test data (tests/import/) ships in the onnx package, which Debian lacks:
# pip, into the system python3 that the tests run, pinned so that the test list is stable
if ! /usr/bin/python3 -c 'from onnx import TensorProto' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing onnx from PyPI"
  # PyPI unreachable (no network, or a TLS proxy this machine does not trust) is not fatal:
  # everything else still builds and tests, and the ONNX tests say that they were skipped
  if ! $SUDO /usr/bin/python3 -m pip install --quiet --break-system-packages onnx==1.17.0; then
    echo "setup: warning: could not install onnx from PyPI; the ONNX import tests will be skipped" >&2
  fi
fi
