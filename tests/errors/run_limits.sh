#!/usr/bin/env bash
# Inputs at and past the limits: every command must stop with a clear error and exit 1, never
# crash, wrap around or grow without bound. Dims whose product overflows int64 (check, cost,
# plan, build, emit, run alike), a cost formula that overflows with dims made constant, a
# source that never ends (/dev/zero), 100k nested parentheses.
set -u
: "${NNC:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
# expect_err NAME MESSAGE-REGEX CMD...: exit status 1 and the message on stderr
expect_err() {
  local name=$1 re=$2
  shift 2
  timeout 60 "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -ne 1 ] || ! grep -qE -- "$re" "$T/err"; then
    echo "FAIL $name: exit $rc, expected 1 and /$re/; stderr: $(head -c 600 "$T/err")" >&2
    fail=1
  fi
}
cat >"$T/wide.nn" <<'NN'
model m {
  dim N = 2147483647, M = 2147483647
  input x: f32[N, M, 4]
  y = dense(relu(x), 10)
  output y
}
NN
big="wide.nn:3:3: error: tensor 'x' is too large: f32\[N,M,4\] at N=2147483647, M=2147483647"
cd "$T" || exit 1
for c in check cost plan emit; do expect_err "$c" "$big" "$NNC" $c wide.nn; done
expect_err "cost --train" "$big" "$NNC" cost wide.nn --train
expect_err "build" "$big" "$NNC" build wide.nn -o prog
[ ! -e prog ] || { echo "FAIL build: wrote a program for a model that is too large" >&2; fail=1; }
expect_err "run" "$big" "$NNC" run wide.nn --seed 1
# the values -D gives are the ones checked
expect_err "check -D" "at N=2147483647, M=67108864;" "$NNC" check wide.nn -D M=67108864
"$NNC" check wide.nn -D N=2 -D M=3 >/dev/null 2>"$T/err" || { echo "FAIL: small dims rejected: $(cat "$T/err")" >&2; fail=1; }
# every tensor fits, the GEMM's FLOP formula with M constant does not: 2*M^3 > 2^63
cat >"$T/gemm.nn" <<'NN'
model m {
  dim N = 1, M = 67108864
  input a: f32[N, M, M]
  input w: f32[M, M]
  y = a @ w
  output y
}
NN
expect_err "cost --symbolic" "gemm.nn:5:7: error: the cost of 'y' is too large" "$NNC" cost gemm.nn --symbolic N
"$NNC" cost gemm.nn --symbolic M >/dev/null 2>"$T/err" || { echo "FAIL: cost with M symbolic: $(cat "$T/err")" >&2; fail=1; }
# a source without end, and one just over the cap
expect_err "/dev/zero" "/dev/zero: error: source file too large \(more than 16 MiB\)" "$NNC" check /dev/zero
head -c $((16 * 1048576 + 1)) /dev/zero | tr '\0' ' ' >"$T/big.nn"
expect_err "17 MiB" "big.nn: error: source file too large" "$NNC" check big.nn
expect_err "directory" "error: cannot read file: Is a directory" "$NNC" check "$T"
# nesting far past the parser's stack: the nesting limit, not bison's "memory exhausted"
for open in '(' '-'; do
  python3 -c "import sys; o = sys.argv[1]; c = ')' if o == '(' else ''
print('model m {\n  input x: f32[4]\n  y = ' + o * 100000 + 'x' + c * 100000 + '\n  output y\n}')" "$open" >"$T/deep.nn"
  expect_err "100k '$open'" "deep.nn:3:[0-9]+: error: expression is nested too deeply \(more than 512 levels\)" "$NNC" check deep.nn
  if grep -q "memory exhausted" "$T/err"; then echo "FAIL: bison's message leaks through" >&2; fail=1; fi
done
[ $fail = 0 ] && echo "limits: ok"
exit $fail
