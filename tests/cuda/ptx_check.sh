#!/usr/bin/env bash
# ptx_check.sh NNC PTXAS ARCH [--precision P] [MODEL...] — every example's (or the named ones') CUDA source (forward and,
# where the model has a train block, the training step) compiles with NVRTC for ARCH (`nnc emit --emit=ptx`,
# at precision P: f32 by default, tf32, bf16, f16), the PTX assembles with the toolkit's ptxas, and ptxas -v
# reports no local-memory spills in any GEMM kernel (*_gemm, *_gemm_reduce).
set -u
NNC=$1 PTXAS=$2 ARCH=$3
shift 3
prec=()
if [ "${1:-}" = --precision ]; then prec=(--precision "$2"); shift 2; fi
SRC=$(cd "$(dirname "$0")/../.." && pwd)
files=()
for m in "$@"; do files+=("$SRC/examples/$m.nn"); done
[ $# -gt 0 ] || files=("$SRC"/examples/*.nn)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for f in "${files[@]}"; do
  name=$(basename "$f" .nn)
  train=()
  grep -q "^train " "$f" && train=(--train)
  if ! "$NNC" emit --emit=ptx --target "cuda:$ARCH" "${prec[@]}" "${train[@]}" "$f" > "$tmp/$name.ptx" 2> "$tmp/$name.err"; then
    echo "FAIL $name: nnc emit --emit=ptx"; cat "$tmp/$name.err"; fail=1; continue
  fi
  if ! "$PTXAS" -v -arch="$ARCH" "$tmp/$name.ptx" -o "$tmp/$name.cubin" > "$tmp/$name.v" 2>&1; then
    echo "FAIL $name: ptxas"; head -20 "$tmp/$name.v"; fail=1; continue
  fi
  # per entry: the function name, then its spill line
  awk -v model="$name" '
    /Compiling entry function/ { fn = $0; sub(/.*function .\047?/, "", fn); sub(/\047.*/, "", fn); n++ }
    /spill stores/ && fn ~ /_gemm/ {
      g++
      split($0, a, ","); st = a[2] + 0; ld = a[3] + 0
      if (st || ld) { printf "FAIL %s: %s spills (%s)\n", model, fn, $0; bad = 1 }
    }
    END { printf "%-14s %3d kernels, %2d GEMM kernels without spills\n", model, n, g - bad; exit bad }' "$tmp/$name.v" || fail=1
done
exit $fail
