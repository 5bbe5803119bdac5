#!/usr/bin/env bash
# Exit statuses of docs/cli.md (0 ok, 1 the model or a file is wrong, 2 a usage error) for the
# cases that used to disagree, `nnc plan --json` (valid JSON, the figures of the text plan),
# and `nnc --help` naming every --emit form.
set -uo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
mlp="$NNC_SRC/examples/mlp.nn"
fail=0
expect() { # expect STATUS CMD...
  local want=$1
  shift
  "$@" >/dev/null 2>&1
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL: exit $rc, want $want: $*"
    fail=1
  fi
}
expect 0 "$NNC" check "$mlp" -D N=4
expect 2 "$NNC" check "$mlp" -D M=3
expect 2 "$NNC" check "$mlp" -D N=0
expect 2 "$NNC" check "$mlp" -D N
expect 2 "$NNC" cost "$mlp" -D M=3
expect 2 "$NNC" cost "$mlp" --target a100x
expect 2 "$NNC" plan "$mlp" --target a100x
expect 2 "$NNC" plan "$mlp" --bogus
expect 2 "$NNC" run "$mlp" --seed 1 -D N=0 --in x=/nonexistent.npy
expect 2 "$NNC" nosuchcommand
expect 1 "$NNC" check "$NNC_SRC/tests/errors/shape_mismatch.nn"
expect 1 "$NNC" run "$mlp" --seed 1 --in x=/nonexistent.npy
"$NNC" plan "$mlp" --json --sweep --points 3 | /usr/bin/python3 -c "
import json, sys
p = json.load(sys.stdin)
assert p['model'] == 'mlp' and p['fits'] and p['params_bytes'] > 0, p
assert p['planned_bytes'] >= p['params_bytes'] + p['io_bytes'], p
assert len(p['sweep']) == 3 and all('optimal' in s for s in p['sweep']), p['sweep']
print('plan --json: planned', p['planned_bytes'], 'bytes')" || fail=1
"$NNC" --help | grep -q -- "--emit=ast|ir|kernels|llvm|asm" || { echo "FAIL: nnc --help lacks --emit forms"; fail=1; }
[ $fail = 0 ] && echo "cli: ok"
exit $fail
