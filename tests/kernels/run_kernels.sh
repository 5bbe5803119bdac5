#!/usr/bin/env bash
# run_kernels.sh — golden kernel plans: `nnc emit --emit=kernels` on every tests/kernels/*.nn
# against the expectation written in the file itself, after a line `# >>> kernels`: the
# expected output, each line prefixed with "# ". `# args: ...` gives extra arguments (every
# file names a fixed --target, so the tiles do not depend on the host). The sizes printed
# for train_adam.nn must be the ones `nnc build --lib` writes into its header.
#   UPDATE=1 bash run_kernels.sh   rewrites the expectations from the current output
set -u
NNC=${NNC:?set NNC to the nnc driver}
dir=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
count=0
for path in "$dir"/*.nn; do
  f=$(basename "$path")
  count=$((count + 1))
  args=$(sed -n 's/^# args://p' "$path" | head -n 1)
  # shellcheck disable=SC2086
  if ! (cd "$dir" && "$NNC" emit --emit=kernels "$f" $args) >"$T/got" 2>"$T/err"; then
    echo "FAIL: $f: nnc emit --emit=kernels $args exited non-zero:" >&2
    cat "$T/err" >&2
    fail=1
    continue
  fi
  if [ -n "${UPDATE:-}" ]; then
    sed '/^# >>> kernels$/,$d' "$path" >"$T/new"
    { echo "# >>> kernels"; sed 's/^/# /; s/ $//' "$T/got"; } >>"$T/new"
    cp "$T/new" "$path"
    continue
  fi
  sed -n '/^# >>> kernels$/,$p' "$path" | tail -n +2 | sed 's/^# \{0,1\}//' >"$T/want"
  [ -s "$T/want" ] || { echo "FAIL: $f has no '# >>> kernels' expectation" >&2; fail=1; continue; }
  if ! diff -u "$T/want" "$T/got" >"$T/diff"; then
    echo "FAIL: $f: the kernel plan differs from the expectation:" >&2
    head -40 "$T/diff" >&2
    fail=1
  fi
done
[ "$count" -ge 4 ] || { echo "FAIL: only $count golden files" >&2; fail=1; }
# the printed plan is the one nnc build compiles: its arenas and regions are NAME.h's
if "$NNC" build "$dir/train_adam.nn" --lib -o "$T/libta.a" 2>"$T/err"; then
  fwd=$("$NNC" emit --emit=kernels --target cpu-avx2 "$dir/train_adam.nn")
  trn=$("$NNC" emit --emit=kernels --target cpu-avx2 --train "$dir/train_adam.nn")
  macro() { sed -n "s/^#define TA_$1 \([0-9]*\)$/\1/p" "$T/ta.h"; }
  arena() { sed -n 's/^kernels of .*, arena \([0-9]*\) bytes$/\1/p'; }
  want="$(macro ARENA_BYTES_FORWARD) $(macro ARENA_BYTES_TRAIN) $(macro PARAMS_BYTES) $(macro IO_BYTES)"
  got="$(echo "$fwd" | arena) $(echo "$trn" | arena) $(echo "$fwd" | sed -n 's/^tensors: params \([0-9]*\) bytes, io \([0-9]*\) bytes$/\1 \2/p')"
  [ "$want" = "$got" ] || { echo "FAIL: plan sizes '$got' differ from ta.h's '$want'" >&2; fail=1; }
else
  echo "FAIL: nnc build --lib train_adam.nn: $(cat "$T/err")" >&2
  fail=1
fi
# errors: a model the plan rejects, and a stage without its section
printf 'model m {\n  input x: f32[4]\n  output x\n}\n' >"$T/notrain.nn"
"$NNC" emit --emit=kernels --train "$T/notrain.nn" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "has no train block" "$T/err" || { echo "FAIL: --train without a train block: $(cat "$T/err")" >&2; fail=1; }
"$NNC" emit --emit=kernels --target nosuchcpu "$T/notrain.nn" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "unknown target 'nosuchcpu'" "$T/err" || { echo "FAIL: bad --target: $(cat "$T/err")" >&2; fail=1; }
printf 'model m {\n  dim N = 4\n  input x: f32[N, N]\n  output x\n}\n' >"$T/big.nn"
"$NNC" emit --emit=kernels "$T/big.nn" -D N=1073741824 >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "big.nn:3:3: error: .*too large" "$T/err" || { echo "FAIL: 2^62-byte input: $(cat "$T/err")" >&2; fail=1; }
[ $fail = 0 ] && echo "ok: $count golden kernel plans"
exit $fail
