#!/usr/bin/env bash
# wino_accuracy.sh — the error of Winograd F(4,3) convolutions against the reference
# interpreter (double precision), beside the implicit GEMM's (--no-winograd), for
#   - one 3x3 stride-1 convolution at each of ResNet-18's shapes (batch 1, He-initialized
#     weights, standard-normal inputs),
#   - the outputs of the examples with 3x3 stride-1 convolutions (resnet18, resnet50,
#     inception_a at a batch of 4, initialized weights, standard-normal images).
# For each: the largest |error|, that over the largest |reference| value, the largest
# error relative to each element (over elements at least 1e-3 of the largest), and for
# the examples how many of the images keep their argmax. docs/cpu-convolutions.md has the
# table.
#   bench/wino_accuracy.sh [BUILD_DIR] > table.md
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
NNC=$build/nnc
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" -c 'import numpy' 2>/dev/null || { echo "skipped: numpy is not installed for $PY"; exit 0; }

compare() { # ref got [argmax]
  "$PY" - "$@" <<'PYEOF'
import sys, numpy as np
ref = np.load(sys.argv[1]).astype(np.float64)
got = np.load(sys.argv[2]).astype(np.float64)
d = np.abs(got - ref)
scale = np.abs(ref).max()
big = np.abs(ref) >= 1e-3 * scale
rel = (d[big] / np.abs(ref[big])).max()
s = f"{d.max():.3g} | {d.max() / scale:.3g} | {rel:.3g}"
if len(sys.argv) > 3:
    a = ref.reshape(ref.shape[0], -1).argmax(1) == got.reshape(got.shape[0], -1).argmax(1)
    s += f" | {a.sum()}/{a.size}"
print(s, end="")
PYEOF
}

# one model: its interpreter run and both builds, on the input $in from $T/$name/x.npy
run_model() { # name file input output defines...
  local name=$1 file=$2 in=$3 out=$4; shift 4
  local d=$T/$name
  "$NNC" run "$file" "$@" --seed 1 --in "$in=$d/x.npy" --out "$out=$d/ref.npy" \
    --save-weights "$d/w.safetensors" > /dev/null
  for v in wino gemm; do
    local flag=()
    [ $v = gemm ] && flag=(--no-winograd)
    "$NNC" build "$file" "$@" "${flag[@]}" -o "$d/p_$v" > /dev/null
    "$d/p_$v" infer --weights "$d/w.safetensors" --in "$in=$d/x.npy" --out "$out=$d/$v.npy" \
      --threads 1 > /dev/null
  done
}

echo "| case | Winograd: max abs | / max abs ref | max rel (elements >= 1e-3 max) | implicit GEMM: max abs | / max abs ref | max rel |"
echo "|---|---|---|---|---|---|---|"
for s in "64 56" "128 28" "256 14" "512 7"; do
  read -r C H <<< "$s"
  name=conv_${C}_$H
  mkdir -p "$T/$name"
  printf 'model c {\n  input x: f32[1, %d, %d, %d]\n  y = conv2d(x, %d, kernel = 3, pad = 1, bias = false)\n  output y\n}\n' \
    "$C" "$H" "$H" "$C" > "$T/$name/m.nn"
  "$PY" -c "import numpy as np; np.save('$T/$name/x.npy', np.random.default_rng(3).standard_normal((1, $C, $H, $H), dtype=np.float32))"
  run_model "$name" "$T/$name/m.nn" x y
  echo "| 3x3 conv ${C}->${C}, ${H}x${H}, pad 1 | $(compare "$T/$name/ref.npy" "$T/$name/wino.npy") | $(compare "$T/$name/ref.npy" "$T/$name/gemm.npy") |"
done
echo
echo "| model (batch 4) | Winograd: max abs | / max abs ref | max rel | argmax kept | implicit GEMM: max abs | / max abs ref | max rel | argmax kept |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in "resnet18|img|4,3,224,224|logits" "resnet50|img|4,3,224,224|logits" \
         "inception_a|x|4,192,35,35|y"; do
  IFS='|' read -r name in shape out <<< "$m"
  mkdir -p "$T/$name"
  "$PY" -c "import numpy as np; np.save('$T/$name/x.npy', np.random.default_rng(5).standard_normal(($shape), dtype=np.float32))"
  run_model "$name" "$here/examples/$name.nn" "$in" "$out" -D N=4
  echo "| $name | $(compare "$T/$name/ref.npy" "$T/$name/wino.npy" 1) | $(compare "$T/$name/ref.npy" "$T/$name/gemm.npy" 1) |"
done
