#!/usr/bin/env bash
# run_allreduce_lib.sh — the library's all-reduce hook (NAME_train_step_allreduce) with
# callbacks in place of a communicator: allreduce_lib.c says what is checked; and
# NAME_set_sync_bn of a --sync-bn library (syncbn_lib.c). Needs no MPI.
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
rc=$?
# NAME_set_sync_bn of a --sync-bn library (syncbn_lib.c says what is checked)
cp "$NNC_SRC/tests/mpi/bn.nn" "$T/bn.nn"
sed 's/^model bn /model bng /; s/^train bn /train bng /' "$T/bn.nn" >"$T/bng.nn"
"$NNC" build "$T/bn.nn" --lib --sync-bn -o "$T/libbn.a" || { echo "FAIL: build bn --sync-bn" >&2; exit 1; }
"$NNC" build "$T/bng.nn" -D N=16 --lib -o "$T/libbng.a" || { echo "FAIL: build bng" >&2; exit 1; }
grep -q 'bn_set_sync_bn' "$T/bn.h" || { echo "FAIL: bn.h: no bn_set_sync_bn" >&2; exit 1; }
cc -std=c11 -O1 -Wall -Wextra -Werror $SAN -D_POSIX_C_SOURCE=200809L -I"$T" \
  "$NNC_SRC/tests/mpi/syncbn_lib.c" "$T/libbn.a" "$T/libbng.a" -lcjson -lm -lpthread \
  -o "$T/s" || { echo "FAIL: compiling syncbn_lib.c" >&2; exit 1; }
"$T/s" || rc=1
exit $rc
