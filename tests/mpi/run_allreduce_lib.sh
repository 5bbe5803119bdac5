#!/usr/bin/env bash
# run_allreduce_lib.sh — the library's all-reduce hook (NAME_train_step_allreduce) with
# callbacks in place of a communicator: allreduce_lib.c says what is checked. Needs no MPI.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$NNC" build "$NNC_SRC/examples/mlp.nn" -D N=16 --lib -o "$T/libmlp.a" || { echo "FAIL: build mlp" >&2; exit 1; }
sed 's/^model mlp /model mlpg /; s/^train mlp /train mlpg /' "$NNC_SRC/examples/mlp.nn" >"$T/mlpg.nn"
"$NNC" build "$T/mlpg.nn" -D N=32 --lib -o "$T/libmlpg.a" || { echo "FAIL: build mlpg" >&2; exit 1; }
grep -q '^#define MLP_HAS_ALLREDUCE 1' "$T/mlp.h" || { echo "FAIL: mlp.h: no MLP_HAS_ALLREDUCE 1" >&2; exit 1; }
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "${NNC_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null &&
  SAN="-fsanitize=address,undefined"
# both archives hold the runtime: the linker takes its members from the first
cc -std=c11 -O1 -Wall -Wextra -Werror $SAN -D_POSIX_C_SOURCE=200809L -I"$T" -I"$NNC_SRC/runtime" \
  "$NNC_SRC/tests/mpi/allreduce_lib.c" "$T/libmlp.a" "$T/libmlpg.a" -lcjson -lm -lpthread \
  -o "$T/t" || { echo "FAIL: compiling allreduce_lib.c" >&2; exit 1; }
"$T/t"
