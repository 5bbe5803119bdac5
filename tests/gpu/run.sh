#!/usr/bin/env bash
# tests/gpu/run.sh — the CUDA backend on a machine with an NVIDIA GPU, in one prepared run
# (under 8 minutes): builds the GPU tools for the local architecture, checks the driver
# loader on a real device, runs every generated GEMM test case on the device against a
# double-precision reference, benchmarks f32 / tf32 / bf16 / f16 GEMMs of 1024..8192
# against cuBLAS, and (with the CMake build) builds examples with `nnc build --target
# cuda:sm_XX` for the local architecture and compares them with their CPU builds
# (tests/gpu/models.sh), and trains the mlp data-parallel on two GPUs with NCCL where the
# machine has two (tests/gpu/mpi.sh). Results go to stdout and to $OUT/gpu_gemm.txt when OUT is set.
#
#   bash tests/gpu/run.sh                    # NNC_GPU_SIZES=1024,4096 to shorten
#
# Needs the CUDA toolkit (CUDA_HOME, default /usr/local/cuda: NVRTC, cuBLAS) and a C
# compiler with libcjson; uses the CMake build when nnc's dependencies are present, and
# otherwise compiles the few sources the benchmark needs directly.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
BUILD=${NNC_GPU_BUILD:-$SRC/build-gpu}
SIZES=${NNC_GPU_SIZES:-1024,2048,4096,8192}
mkdir -p "$BUILD"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true

build_cmake() {
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCUDAToolkit_ROOT="$CUDA_HOME" >"$BUILD/cmake.log" 2>&1 &&
    ninja -C "$BUILD" gpu_gemm test_rt_cuda nnc nnc_runtime >"$BUILD/ninja.log" 2>&1
}

build_direct() {
  cd "$SRC"
  cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -o "$BUILD/gpu_gemm" tests/gpu/gpu_gemm.c \
    codegen/cuda/*.c codegen/cuda/nvrtc/cuda_nvrtc.c passes/tiles.c passes/hw.c ir/*.c runtime/*.c \
    -I"$CUDA_HOME/include" -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lnvrtc -lcjson -ldl -lm -lpthread
}

MODELS=0
if build_cmake; then
  echo "built with CMake in $BUILD"
  "$BUILD/test_rt_cuda"
  MODELS=1
elif build_direct; then
  echo "CMake build unavailable (see $BUILD/cmake.log); built gpu_gemm directly"
else
  echo "run.sh: cannot build gpu_gemm" >&2
  exit 1
fi

export LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -n "${OUT:-}" ]; then
  timeout 420 "$BUILD/gpu_gemm" --sizes "$SIZES" | tee "$OUT/gpu_gemm.txt"
else
  timeout 420 "$BUILD/gpu_gemm" --sizes "$SIZES"
fi

# the examples on the device: --target cuda for the local compute capability (nearest
# supported arch at or below it)
if [ $MODELS = 1 ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
  arch=sm_80
  for a in 86 89 90; do [ "${cc:-0}" -ge $a ] && arch=sm_$a; done
  MT=$(mktemp -d)
  echo "examples with --target cuda:$arch (compute capability ${cc:-?})"
  if [ -n "${OUT:-}" ]; then
    timeout 240 bash "$SRC/tests/gpu/models.sh" "$BUILD/nnc" "$arch" "$MT" | tee "$OUT/gpu_models.txt"
  else
    timeout 240 bash "$SRC/tests/gpu/models.sh" "$BUILD/nnc" "$arch" "$MT"
  fi
  # data-parallel on two GPUs with NCCL (skips with one GPU)
  timeout 180 bash "$SRC/tests/gpu/mpi.sh" "$BUILD/nnc" "$arch" "$MT" | tee ${OUT:+"$OUT/gpu_mpi.txt"}
  rm -rf "$MT"
fi
