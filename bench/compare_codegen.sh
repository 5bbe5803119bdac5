#!/bin/sh
# compare_codegen.sh — are two nnc builds' CPU backends the same? Prints, for every example
# (and a rematerialized mlp step), whether `nnc emit --emit=llvm` — the optimized module with
# every kernel, entry point and the descriptor — is byte-identical between OLD and NEW.
# Identical modules compile to identical programs, so their results are bit-identical.
#
#   bench/compare_codegen.sh OLD_NNC NEW_NNC [-D N=8]
#
# Exits 1 when any module differs (the first lines of the diff are printed).
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 OLD_NNC NEW_NNC [nnc options...]" >&2
  exit 2
fi
OLD=$1 NEW=$2
shift 2
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/compare_codegen.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
fail=0
check() { # name, then nnc emit arguments
  name=$1
  shift
  "$OLD" emit --emit=llvm "$@" >"$W/old.ll" 2>"$W/old.err"; ro=$?
  "$NEW" emit --emit=llvm "$@" >"$W/new.ll" 2>"$W/new.err"; rn=$?
  if [ $ro != $rn ] || ! cmp -s "$W/old.ll" "$W/new.ll" || ! cmp -s "$W/old.err" "$W/new.err"; then
    echo "DIFFERS  $name (exit $ro vs $rn)"
    diff "$W/old.ll" "$W/new.ll" | head -20
    diff "$W/old.err" "$W/new.err" | head -5
    fail=1
  else
    echo "same     $name ($(wc -c <"$W/new.ll") bytes of IR)"
  fi
}
for f in "$SRC"/examples/*.nn; do
  check "$(basename "$f")" "$f" "$@"
done
# a budget below what the step needs: rematerialization and the budget fitting take part
sed 's/^  minimize  loss$/  minimize  loss\n  memory 130 MiB/' "$SRC/examples/resnet18.nn" >"$W/r18_budget.nn"
check "resnet18.nn -D N=2, memory 130 MiB" "$W/r18_budget.nn" -D N=2
exit $fail
