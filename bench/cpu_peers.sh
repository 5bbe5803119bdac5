#!/bin/sh
# cpu_peers.sh — nnc against the best CPU runtimes installed, in one run, interleaved:
#
#   GEMM N³ (N = 256..4096)          nnc single-matmul model (bench/gemm.nn)  vs OpenBLAS sgemm
#   GEMM shapes of the examples' layers (--only shapes; with 1024³ as the reference rate)
#   ResNet-18 / MobileNetV2 inference, batch 1 and 8, 224²           vs ONNX Runtime
#   training steps: ResNet-18 and MobileNetV2 (batch 8, 112²), LeNet (batch 64)  vs PyTorch eager
#   MLP 784-512-512-10 training step (Adam), batch 64 and 256        vs JAX (jit)
#
# each at 1 and 2 threads. Usage:
#
#   bench/cpu_peers.sh BUILD_DIR [--repeat R] [--only gemm|shapes|infer|train|mlp] [--sizes "256 512"]
#                                [--threads "1 2"] [--peak GFLOPS]
#
# nnc side: `nnc build` of the example (or bench/gemm.nn, bench/mlp3.nn) at the case's dims and
# the program's `bench [--train] --threads T` (median step; its training runs restore the
# weights every 16 steps so the model keeps learning). Peer side: bench/cpu_peers.py with
# /usr/bin/python3 (the peers installed there; a missing one is reported and skipped). Every
# process is pinned with taskset to CPUs 0..T-1; each case runs R times, nnc and the peer
# alternating, and the table gives the median of the R medians with the best single step.
# "peer/nnc" > 1 means nnc is faster. NNC_BUILD_FLAGS adds options to every `nnc build`
# (e.g. NNC_BUILD_FLAGS=--no-winograd for the implicit-GEMM convolutions). OpenBLAS runs
# with OPENBLAS_CORETYPE unset (its own detection; the kernel set it picked is printed). "%pk" is the share of --peak GFLOP/s per
# thread (default 116.7, `nnc probe` on the Zen 4 of bench/RESULTS.md).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [--repeat R] [--only gemm|shapes|infer|train|mlp] [--sizes LIST] [--threads LIST] [--peak G]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
REPEAT=3
ONLY=all
SIZES="256 512 1024 2048 4096"
THREADS="1 2"
PEAK=116.7
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) REPEAT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --peak) PEAK=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
PEERS="$SRC/bench/cpu_peers.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpu_peers.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
RAW="$WORK/raw.txt"
: > "$RAW"

echo "== host"
grep -m1 "model name" /proc/cpuinfo | sed 's/^[^:]*: /cpu: /'
echo "vCPUs: $(nproc); flags: $(grep -m1 -o 'avx512f\|avx512_bf16\|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nnc: $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?') ($BUILD)"
echo "== peers found (for $PY)"
env -u OPENBLAS_CORETYPE $PY "$PEERS" --find

cpus() { [ "$1" = 1 ] && echo 0 || echo "0-$(($1 - 1))"; }

# nnc_prog NAME FILE DIMS...: builds once, prints the program's path
nnc_prog() {
  name=$1; file=$2; shift 2
  prog="$WORK/$name"
  if [ ! -x "$prog" ]; then
    dflags=""
    for d in "$@"; do dflags="$dflags -D $d"; done
    # shellcheck disable=SC2086
    "$BUILD/nnc" build "$file" $dflags ${NNC_BUILD_FLAGS:-} -o "$prog" >&2
  fi
  echo "$prog"
}

# one measurement of each side, appended to RAW as "CASE THREADS SIDE NAME MEDIAN BEST"
nnc_run() { # CASE T PROG BENCHARGS...
  c=$1; t=$2; prog=$3; shift 3
  out=$(taskset -c "$(cpus "$t")" "$prog" bench --threads "$t" "$@")
  med=$(echo "$out" | sed -n 's/.*measured: *\([0-9.]*\) \([mµu]*s\) per step (median; best \([0-9.]*\) \([mµu]*s\)).*/\1 \2 \3 \4/p')
  set -- $med
  echo "$c $t nnc nnc $(to_ms "$1" "$2") $(to_ms "$3" "$4")" >> "$RAW"
}
to_ms() { case $2 in ms) echo "$1" ;; s) awk "BEGIN{print $1*1000}" ;; *) awk "BEGIN{print $1/1000}" ;; esac; }
peer_run() { # CASE T ARGS...
  c=$1; t=$2; shift 2
  out=$(env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE taskset -c "$(cpus "$t")" $PY "$PEERS" "$@" 2>"$WORK/peer.err" | grep '^peer\|^skip\|^error' || true)
  case $out in
    peer*) set -- $out; echo "$c $t peer $2 $4 $6" >> "$RAW" ;;
    *) echo "  $c: ${out:-peer failed: $(tail -1 "$WORK/peer.err")}" ;;
  esac
}
both() { # CASE T PROG "BENCHARGS" PEERARGS...
  c=$1; t=$2; prog=$3; bargs=$4; shift 4
  r=0
  while [ $r -lt "$REPEAT" ]; do
    # shellcheck disable=SC2086
    nnc_run "$c" "$t" "$prog" $bargs
    peer_run "$c" "$t" "$@"
    r=$((r + 1))
  done
  echo "  measured $c, $t thread(s)"
}

echo "== building and measuring ($REPEAT runs per case, interleaved)"
if [ "$ONLY" = all ] || [ "$ONLY" = gemm ]; then
  for n in $SIZES; do
    p=$(nnc_prog "gemm$n" "$SRC/bench/gemm.nn" "M=$n" "K=$n" "N=$n")
    it=""; [ "$n" -ge 2048 ] && it="--iters 5"
    for t in $THREADS; do both "gemm$n" "$t" "$p" "$it" blas "$n" "$t"; done
  done
fi
# the products of the examples' layers, as C[M,N] = A[M,K]·B[K,N] (dense layers multiply by
# the weight's transpose, and convolutions gather their B; these are the bare shapes): mlp
# and lenet (batch 64), char_lm (16x32 rows), gpt2_block (64 rows), ResNet-18's four stages
# at batch 1 as implicit GEMMs (filters x K = C·9 x positions) and its classifier,
# MobileNetV2's last pointwise layer. Not in --only all: run it alone.
SHAPES="mlp.fc1:64x784x512 mlp.fc2:64x512x512 mlp.fc3:64x512x10 lenet.fc1:64x400x120
lenet.fc2:64x120x84 char_lm.qkv:512x64x192 char_lm.c_fc:512x64x256 char_lm.c_proj:512x256x64
char_lm.head:512x64x65 gpt2.qkv:64x768x2304 gpt2.c_fc:64x768x3072 gpt2.c_proj:64x3072x768
resnet18.l1:64x576x3136 resnet18.l2:128x1152x784 resnet18.l3:256x2304x196
resnet18.l4:512x4608x49 resnet18.fc:1x512x1000 mobilenet.pw18:1280x320x49"
if [ "$ONLY" = shapes ]; then
  p=$(nnc_prog gemm1024 "$SRC/bench/gemm.nn" M=1024 K=1024 N=1024)
  for t in $THREADS; do both gemm1024 "$t" "$p" "" blas 1024 "$t"; done
  for s in $SHAPES; do
    dims=${s#*:}; m=${dims%%x*}; kn=${dims#*x}; k=${kn%%x*}; n=${kn#*x}
    p=$(nnc_prog "shape_$dims" "$SRC/bench/gemm.nn" "M=$m" "K=$k" "N=$n")
    for t in $THREADS; do both "${s%%:*}:$dims" "$t" "$p" "" blas "$m" "$t" "$k" "$n"; done
  done
fi
if [ "$ONLY" = all ] || [ "$ONLY" = infer ]; then
  for net in resnet18 mobilenet_v2; do
    for b in 1 8; do
      p=$(nnc_prog "${net}_b$b" "$SRC/examples/$net.nn" "N=$b" S=224)
      for t in $THREADS; do both "${net}_infer_b$b" "$t" "$p" "" ort "$net" "$b" 224 "$t"; done
    done
  done
fi
if [ "$ONLY" = all ] || [ "$ONLY" = train ]; then
  for net in resnet18 mobilenet_v2; do
    p=$(nnc_prog "${net}_t8" "$SRC/examples/$net.nn" N=8 S=112)
    for t in $THREADS; do both "${net}_train_b8_112" "$t" "$p" "--train" torch-train "$net" 8 112 "$t"; done
  done
  p=$(nnc_prog lenet_t64 "$SRC/examples/lenet.nn" N=64)
  for t in $THREADS; do both lenet_train_b64 "$t" "$p" "--train" torch-train lenet 64 28 "$t"; done
fi
if [ "$ONLY" = all ] || [ "$ONLY" = mlp ]; then
  for b in 64 256; do
    p=$(nnc_prog "mlp3_$b" "$SRC/bench/mlp3.nn" "N=$b")
    for t in $THREADS; do both "mlp3_train_b$b" "$t" "$p" "--train" jax-mlp "$b" "$t"; done
  done
fi

echo "== results (ms: median of $REPEAT medians, best single step in parentheses; peer/nnc > 1: nnc faster)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v peak="$PEAK" '
  function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    k = $1 " " $2
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    meds[k, $3] = meds[k, $3] " " $5
    if (!((k, $3) in best) || $6 < best[k, $3]) best[k, $3] = $6
    if ($3 == "peer") pname[k] = $4
  }
  END {
    printf "%-24s %3s | %18s | %-26s %18s | %8s\n", "case", "thr", "nnc ms", "peer", "peer ms", "peer/nnc"
    for (i = 1; i <= nk; i++) {
      k = order[i]; split(k, f, " ")
      mn = med(meds[k, "nnc"]); pn = (k, "peer") in best ? med(meds[k, "peer"]) : 0
      extra = ""
      fl = 0
      if (f[1] ~ /^gemm/) { n = substr(f[1], 5) + 0; fl = 2 * n * n * n / 1e6 }
      if (f[1] ~ /:[0-9]+x[0-9]+x[0-9]+$/) {
        split(substr(f[1], index(f[1], ":") + 1), d, "x"); fl = 2 * d[1] * d[2] * d[3] / 1e6
        ai = 2 * d[1] * d[2] * d[3] / (4 * (d[1] * d[2] + d[2] * d[3] + d[1] * d[3]))
      }
      if (fl > 0) {
        extra = sprintf("  GFLOP/s nnc %.1f (%.0f%%pk)", fl / mn, 100 * fl / mn / (peak * f[2]))
        if (pn > 0) extra = extra sprintf(", blas %.1f (%.0f%%pk)", fl / pn, 100 * fl / pn / (peak * f[2]))
        if (f[1] == "gemm1024") sq[f[2]] = fl / mn
        else if (f[1] ~ /:/ && sq[f[2]] > 0)
          extra = extra sprintf(", nnc/1024³ %.2f, FLOP/B %.1f", fl / mn / sq[f[2]], ai)
      }
      if (pn > 0)
        printf "%-24s %3s | %9.3f (%6.3f) | %-26s %9.3f (%6.3f) | %8.2f%s\n", f[1], f[2], mn,
               best[k, "nnc"], pname[k], pn, best[k, "peer"], pn / mn, extra
      else
        printf "%-24s %3s | %9.3f (%6.3f) | %-26s %18s | %8s%s\n", f[1], f[2], mn,
               best[k, "nnc"], "(no peer)", "-", "-", extra
    }
  }' "$RAW"
