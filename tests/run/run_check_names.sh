#!/usr/bin/env bash
# `nnc check --names` lists the parameters; `--against W.safetensors` diffs them with a
# checkpoint: a checkpoint saved from the model passes (exit 0), one with a renamed tensor
# and one with a wrong shape fail (exit 1) and name the tensors; `--json` is valid JSON with
# the parameter count; usage mistakes exit 2.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mlp="$NNC_SRC/examples/mlp.nn"
die() { echo "FAIL: $*"; exit 1; }
"$NNC" check "$mlp" --names >"$tmp/names.txt"
grep -q "fc1.weight .*f32\[512,784\] .*param" "$tmp/names.txt" || die "--names: $(cat "$tmp/names.txt")"
$py -c "import numpy as np; np.save('$tmp/x.npy', np.zeros((2, 784), np.float32))"
"$NNC" run "$mlp" --seed 1 --in x="$tmp/x.npy" --save-weights "$tmp/w.safetensors" >/dev/null
"$NNC" check "$mlp" --names --against "$tmp/w.safetensors" >"$tmp/ok.txt" || die "a matching checkpoint"
grep -q "0 parameters missing or misshapen, 0 tensors not used" "$tmp/ok.txt" || die "$(cat "$tmp/ok.txt")"
$py - "$tmp" "$NNC_SRC" <<'PY'
import importlib.util, sys, numpy as np
d, src = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("ref_nets", src + "/tests/examples/ref_nets.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
w = ref.st_read(d + "/w.safetensors")
w["features.fc1.weight"] = w.pop("fc1.weight")
w["fc2.bias"] = np.zeros(11, np.float32)
ref.write_file(d + "/bad.safetensors", ref.st_bytes(w))
PY
if "$NNC" check "$mlp" --names --against "$tmp/bad.safetensors" >"$tmp/bad.txt"; then
  die "a mismatching checkpoint must exit 1"
fi
for want in "missing    fc1.weight" "shape      fc2.bias" "unexpected features.fc1.weight" \
            "2 parameters missing or misshapen, 1 tensor not used"; do
  grep -qF "$want" "$tmp/bad.txt" || die "expected '$want' in: $(cat "$tmp/bad.txt")"
done
"$NNC" check "$mlp" --json | $py -c "
import json, sys
m = json.load(sys.stdin)['models'][0]
assert m['name'] == 'mlp' and m['parameters'] == 407050, m
assert [p['name'] for p in m['params']] == ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']"
set +e
"$NNC" check "$mlp" --against "$tmp/w.safetensors" 2>/dev/null; rc1=$?
"$NNC" check "$mlp" --bogus 2>/dev/null; rc2=$?
set -e
[ $rc1 = 2 ] && [ $rc2 = 2 ] || die "usage errors exit $rc1, $rc2 (want 2)"
echo "check names: ok"
