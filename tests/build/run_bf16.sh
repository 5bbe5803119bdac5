#!/usr/bin/env bash
# run_bf16.sh — `--precision bf16` for CPU builds, end to end on examples/mlp.nn and lenet.nn:
#  1. the option: f32 and bf16 are accepted by `nnc build` and `nnc emit`; tf32/f16 (GPU
#     precisions) and unknown names are errors (exit 2) that say what CPU builds take;
#  2. the code chosen for the target CPU (`nnc emit --emit=asm --target-cpu`): vdpbf16ps
#     for CPUs with AVX512-BF16 (znver4, cooperlake), AMX tiles (tdpbf16ps, ldtilecfg) for
#     sapphirerapids (compiled only: this test runs no AMX code), the f32-FMA fallback
#     (no vdpbf16ps) for skylake-avx512 and x86-64-v3, and no vdpbf16ps in an f32 build;
#  3. programs: the host build of mlp (vdpbf16ps where this CPU has it) and its fallback
#     build (--target-cpu skylake-avx512, 16 lanes like the host) give identical logits bit
#     for bit; the bf16 logits of mlp and lenet differ from the f32 build's by the bf16 rounding, within |d| <= 2u·L·max|ref|
#     (u = 2^-8, L = 2 layers for mlp, 5 for lenet), and argmax agrees on most samples;
#  4. `--lib --precision bf16` builds a library.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
expect_fail() { # RC PATTERN cmd...
  local want=$1 pat=$2
  shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -ne "$want" ] || ! grep -q -- "$pat" "$T/err"; then
    die "expected exit $want and '$pat' from: $* (got $rc: $(cat "$T/err"))"
  else
    echo "ok: $* -> $(head -1 "$T/err")"
  fi
}
MLP="$NNC_SRC/examples/mlp.nn"
LENET="$NNC_SRC/examples/lenet.nn"

# 1. the option
expect_fail 2 "CPU builds take f32 or bf16" "$NNC" build "$MLP" -o "$T/x" --precision tf32
expect_fail 2 "CPU builds take f32 or bf16" "$NNC" emit --emit=asm "$MLP" --precision f16
expect_fail 2 "unknown precision 'bf8'" "$NNC" build "$MLP" -o "$T/x" --precision bf8

# 2. instructions for the target CPU
asm_count() { # CPU PRECISION PATTERN
  "$NNC" emit --emit=asm -O1 -D N=8 "$MLP" --target-cpu "$1" --precision "$2" 2>"$T/err" | grep -c -- "$3"
}
for cpu in znver4 cooperlake; do
  n=$(asm_count $cpu bf16 vdpbf16ps)
  [ "${n:-0}" -gt 0 ] && echo "ok: $cpu: $n vdpbf16ps" || die "$cpu: no vdpbf16ps in the bf16 build"
done
for ins in tdpbf16ps ldtilecfg; do # AMX
  n=$(asm_count sapphirerapids bf16 $ins)
  [ "${n:-0}" -gt 0 ] && echo "ok: sapphirerapids: $n $ins" || die "sapphirerapids: no $ins in the bf16 build"
done
for cpu in skylake-avx512 x86-64-v3; do
  n=$(asm_count $cpu bf16 vdpbf16ps)
  f=$(asm_count $cpu bf16 vfmadd)
  [ "${n:-0}" -eq 0 ] && [ "${f:-0}" -gt 0 ] && echo "ok: $cpu: fallback ($f FMAs, no vdpbf16ps)" \
    || die "$cpu: expected the FMA fallback (vdpbf16ps $n, vfmadd $f)"
done
n=$(asm_count znver4 f32 vdpbf16ps)
[ "${n:-0}" -eq 0 ] && echo "ok: f32 build has no vdpbf16ps" || die "f32 build uses vdpbf16ps"

# 3. programs: native and fallback alike, both near f32
"$PY" - "$T" <<'EOF' || die "generating inputs"
import numpy as np, sys
rng = np.random.default_rng(3)
np.save(f"{sys.argv[1]}/mx.npy", rng.standard_normal((40, 784)).astype(np.float32))
np.save(f"{sys.argv[1]}/lx.npy", rng.standard_normal((40, 1, 28, 28)).astype(np.float32))
EOF
native=$("$PY" -c "print(int('avx512_bf16' in open('/proc/cpuinfo').read()))")
[ "$native" = 1 ] || echo "note: this CPU has no AVX512-BF16: both bf16 programs use the fallback"
for net in mlp lenet; do
  src="$NNC_SRC/examples/$net.nn"
  x="$T/${net:0:1}x.npy"
  layers=$([ $net = mlp ] && echo 2 || echo 5)
  vs="f32 bf16"
  [ $net = mlp ] && vs="f32 bf16 fb" # the fallback on one model keeps the test short
  "$NNC" build "$src" -O1 -D N=8 -o "$T/${net}_f32" &&
    "$NNC" build "$src" -O1 -D N=8 --precision bf16 -o "$T/${net}_bf16" &&
    { [ $net != mlp ] || "$NNC" build "$src" -O1 -D N=8 --precision bf16 --target-cpu skylake-avx512 -o "$T/${net}_fb"; } ||
    { die "$net: build failed"; continue; }
  for v in $vs; do
    "$T/${net}_$v" infer --seed 5 --threads 2 --in x="$x" --out logits="$T/${net}_$v.npy" >/dev/null ||
      die "$net: $v infer failed"
  done
  [ $net != mlp ] || { cmp -s "$T/${net}_bf16.npy" "$T/${net}_fb.npy" && echo "ok: $net: vdpbf16ps and fallback logits identical" ||
    die "$net: the fallback's logits differ from the host bf16 build's"; }
  "$PY" - "$T/${net}_bf16.npy" "$T/${net}_f32.npy" "$layers" "$net" <<'EOF' || die "$net: bf16 vs f32"
import numpy as np, sys
b, f = np.load(sys.argv[1]), np.load(sys.argv[2])
tol = 2 * 2.0**-8 * int(sys.argv[3]) * np.abs(f).max()
d = np.abs(b.astype(np.float64) - f).max()
agree = (b.argmax(1) == f.argmax(1)).mean()
print(f"{sys.argv[4]}: bf16 vs f32 max |d| {d:.3g} (bound {tol:.3g}), argmax agreement {agree:.3f}")
sys.exit(0 if 0 < d <= tol and agree >= 0.9 else 1)
EOF
done

# 4. a library
(cd "$T" && "$NNC" build "$MLP" -O1 --lib --precision bf16 -o mlpbf) && [ -f "$T/libmlpbf.a" ] && [ -f "$T/mlpbf.h" ] &&
  echo "ok: --lib --precision bf16" || die "--lib --precision bf16"
exit $fail
