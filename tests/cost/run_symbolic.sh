#!/usr/bin/env bash
# --symbolic keeps only the listed dims symbolic: ResNet-18's MACs become one term in N
# (torchvision's 1.814 GMACs per image), without it the image side S appears in floor terms.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
out=$("$NNC" cost "$NNC_SRC/examples/resnet18.nn" --symbolic N)
echo "$out" | grep -E '^  forward MACs +14,512,586,752 .* = 1814073344\*N$'
full=$("$NNC" cost "$NNC_SRC/examples/resnet18.nn")
echo "$full" | grep -E '^  forward MACs .*floor\(\(S - 1\)/2\)\^2' >/dev/null
# the same value either way
[ "$(echo "$out" | grep '^  forward MACs' | awk '{print $3}')" = \
  "$(echo "$full" | grep '^  forward MACs' | awk '{print $3}')" ]
# blocks read the model's dims, fixed ones included: char_lm's attention uses T, H and K
lm=$("$NNC" cost "$NNC_SRC/examples/char_lm.nn" --symbolic N)
echo "$lm" | grep -E '^  forward MACs .* = [0-9]+\*N$' >/dev/null
[ "$(echo "$lm" | grep '^  forward MACs' | awk '{print $3}')" = \
  "$("$NNC" cost "$NNC_SRC/examples/char_lm.nn" | grep '^  forward MACs' | awk '{print $3}')" ]
err=$(mktemp); trap 'rm -f "$err"' EXIT
if "$NNC" cost "$NNC_SRC/examples/resnet18.nn" --symbolic Q 2>"$err"; then exit 1; fi
grep -q "error: --symbolic: model 'resnet18' has no dim named 'Q'" "$err"
echo "symbolic: ok"
