#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test; then again with
# AddressSanitizer + UndefinedBehaviorSanitizer. Warnings are errors here (NNC_WERROR), and the
# other build types and clang-19 are compiled too, since each optimization level and each
# compiler warns about different things; the clang build also runs every fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNNC_WERROR=ON >/dev/null
ninja -C build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNNC_SANITIZE=ON -DNNC_WERROR=ON >/dev/null
ninja -C build-asan -j"$jobs"
# NNC_TEST_QUICK: the few cases that repeat a check at a larger size run at their small sizes
# under the sanitizers (tests/unit/test_env.h)
NNC_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
# compile only: GCC at -O0 (Debug) and -O3 (Release), clang-19 at -O3 with the fuzz targets
for cfg in "debug Debug" "release Release" "clang Release -DCMAKE_C_COMPILER=clang-19 -DNNC_FUZZ=ON"; do
  set -- $cfg
  dir=build-$1 type=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DNNC_WERROR=ON "$@" >/dev/null
  ninja -C "$dir" -j"$jobs"
done
# each fuzz target for a few seconds from its committed corpus (tests/fuzz/CMakeLists.txt)
ctest --test-dir build-clang --output-on-failure -R '^fuzz/'
