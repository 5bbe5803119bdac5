#!/usr/bin/env bash
# run_names.sh — every parameter and buffer of the examples has the name and shape of the
# reference implementation's state_dict (tests/examples/torch_names.py, written from
# torchvision's and HuggingFace's module structure), so real checkpoints load by name.
# Symbolic shapes from the IR are evaluated at the dims' default values.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
for net in mlp lenet resnet18 resnet50 mobilenet_v2 inception_a gpt2_block; do
  if ! "$NNC" emit --emit=ir "$NNC_SRC/examples/$net.nn" >"$T/$net.ir"; then
    echo "FAIL: $net: nnc emit failed" >&2
    fail=1
    continue
  fi
  # '  %2 = param "conv1.weight" ... : f32[64,3,7,7]  # [conv1]' -> 'conv1.weight f32[64,3,7,7]'
  "$PY" - "$T/$net.ir" >"$T/$net.got" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
dims = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", text.split("{", 1)[0]))
rows = []
for name, dt, shape in re.findall(r'= param "([^"]+)".* : (\w+)\[([^\]]*)\]', text):
    vals = [str(eval(e, {"__builtins__": {}}, dict(dims))) for e in shape.split(",") if e]
    rows.append(f"{name} {dt}[{','.join(vals)}]")
print("\n".join(sorted(rows)))
PYEOF
  "$PY" "$NNC_SRC/tests/examples/torch_names.py" "$net" >"$T/$net.want"
  if diff -u "$T/$net.want" "$T/$net.got" >"$T/$net.diff"; then
    echo "ok: $net: $(wc -l <"$T/$net.want") tensors named and shaped as the reference"
  else
    echo "FAIL: $net: state_dict differs from the reference (- reference, + nnc):" >&2
    grep '^[-+][^-+]' "$T/$net.diff" | head -20 >&2
    fail=1
  fi
done
exit $fail
