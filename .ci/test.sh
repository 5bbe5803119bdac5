#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test; then again with
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNNC_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$jobs"
# NNC_TEST_QUICK: the few cases that repeat a check at a larger size run at their small sizes
# under the sanitizers (tests/unit/test_env.h)
NNC_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
