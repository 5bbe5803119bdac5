#!/usr/bin/env bash
# selfcheck.sh GPU_GEMM — what can be checked of tests/gpu/ without a GPU: run.sh parses,
# and the benchmark either refuses cleanly (exit 1, "no CUDA driver" / "no CUDA device") or,
# on a GPU machine, passes its device test cases (no square sizes, so it stays quick).
set -u
bash -n "$(dirname "$0")/run.sh" || { echo "run.sh: syntax error"; exit 1; }
out=$("$1" --sizes 0 2>&1); rc=$?
echo "$out" | tail -3
if [ $rc -eq 1 ] && echo "$out" | grep -q "no CUDA \(driver\|device\)"; then exit 0; fi
[ $rc -eq 0 ] || { echo "gpu_gemm failed (exit $rc)"; exit 1; }
