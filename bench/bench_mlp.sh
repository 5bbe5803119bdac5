#!/bin/sh
# bench_mlp.sh — the MLP training step (forward, cross-entropy, backward, Adam update) compiled
# by nnc against PyTorch eager on the CPU, in one run: bench/mlp3.nn (784-512-512-10) and
# examples/mlp.nn (784-512-10), batch 64 and 256, 1 and 2 threads.
#
#   bench/bench_mlp.sh BUILD_DIR [--repeat R] [--steps K] [--torch-steps K] [--avx512-ref]
#
# nnc side: `nnc build FILE.nn -D N=B --lib` and bench/mlp_step.c linked against the library
# (the program's own `bench --train` feeds one constant batch with all-zero labels, which the
# model memorizes within a few hundred steps: Adam's second moments then become denormal
# floats and the step measures the FPU's denormal path, so the harness feeds fresh random
# batches, as bench/torch_mlp.py does). PyTorch side: bench/torch_mlp.py with
# /usr/bin/python3 (Debian's python3-torch), torch.set_num_threads(T) and OpenBLAS's own
# thread count set to T (and OMP_WAIT_POLICY=PASSIVE at 2 threads, see below). Each case runs R times, interleaved nnc/PyTorch so both see the
# same load; the table gives the best of the R medians ("median") and the best single step.
# PyTorch runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (the OpenBLAS a program gets on
# this host); --avx512-ref adds a PyTorch column with OPENBLAS_CORETYPE=Cooperlake (OpenBLAS's
# AVX-512 kernels) for reference.
#
# GFLOP/s count the GEMM work of the step: forward X·Wᵀ and weight gradient dYᵀ·X for every
# layer, data gradient dY·W for every layer but the first: 2·B·(2·Σ in·out + Σ_{l>1} in·out).
# "%pk" is the share of 236 GFLOP/s per thread (bench/RESULTS.md, GEMM section).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [--repeat R] [--steps K] [--torch-steps K] [--avx512-ref]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
REPEAT=3
STEPS=300
TSTEPS=100
AVX=0
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) REPEAT=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --torch-steps) TSTEPS=$2; shift 2 ;;
    --avx512-ref) AVX=1; shift ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
CC=${CC:-cc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_mlp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "== host"
grep -m1 "model name" /proc/cpuinfo | sed 's/^[^:]*: /cpu: /'
echo "vCPUs: $(nproc); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nnc: $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?') ($BUILD)"
HAVE_TORCH=1
if ! $PY -c "import torch" 2>/dev/null; then
  HAVE_TORCH=0
  echo "PyTorch: not installed for $PY; nnc side only"
else
  echo "== PyTorch"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY "$SRC/bench/torch_mlp.py" --info
fi

# model file, layers
MODELS="mlp3:$SRC/bench/mlp3.nn:784,512,512,10 mlp:$SRC/examples/mlp.nn:784,512,10"
echo "== building"
for m in $MODELS; do
  name=${m%%:*}; rest=${m#*:}; file=${rest%%:*}
  for B in 64 256; do
    d="$WORK/${name}_$B"
    mkdir -p "$d"
    "$BUILD/nnc" build "$file" -D N=$B --lib -o "$d/lib$name.a"
    $CC -std=c11 -O2 -I"$SRC/runtime" -DNNC_DESC=nnc_model_$name "$SRC/bench/mlp_step.c" \
      "$d/lib$name.a" -lcjson -lm -lpthread -o "$d/step"
    echo "built $name batch $B"
  done
done

echo "== measuring ($REPEAT runs per case; nnc $STEPS steps, PyTorch $TSTEPS steps, after warm-up)"
RAW="$WORK/raw.txt"
: > "$RAW"
for m in $MODELS; do
  name=${m%%:*}; rest=${m#*:}; layers=${rest#*:}
  for B in 64 256; do
    for T in 1 2; do
      # PyTorch's OpenMP workers spin after every op by default and starve OpenBLAS's own
      # threads on 2 vCPUs (about 3x slower steps at 2 threads): passive waiting for them
      OMPW=; [ $T -gt 1 ] && OMPW=OMP_WAIT_POLICY=PASSIVE
      r=0
      while [ $r -lt "$REPEAT" ]; do
        "$WORK/${name}_$B/step" --threads $T --steps "$STEPS" --warmup 30 |
          sed "s/^nnc [^ ]*/nnc $name/" | tee -a "$RAW"
        if [ $HAVE_TORCH = 1 ]; then
          env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $OMPW $PY "$SRC/bench/torch_mlp.py" \
            --layers "$layers" --batch $B --threads $T --steps "$TSTEPS" --warmup 20 |
            sed "s/^torch [^ ]*/torch $name/" | tee -a "$RAW"
          if [ $AVX = 1 ]; then
            env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=Cooperlake $OMPW $PY "$SRC/bench/torch_mlp.py" \
              --layers "$layers" --batch $B --threads $T --steps "$TSTEPS" --warmup 20 |
              sed "s/^torch [^ ]*/torch512 $name/" | tee -a "$RAW"
          fi
        fi
        r=$((r + 1))
      done
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== results"
$PY - "$RAW" "$AVX" <<'EOF'
import sys
raw, avx = sys.argv[1], sys.argv[2] == "1"
LAYERS = {"mlp3": [784, 512, 512, 10], "mlp": [784, 512, 10]}
PEAK = 236.0
best = {}  # (who, model, B, T) -> [best median, best step]
for line in open(raw):
    f = line.split()
    if len(f) < 12:
        continue
    kv = dict(zip(f[2::2], f[3::2]))
    who, model = f[0], f[1]
    key = (who, model, int(kv["batch"]), int(kv["threads"]))
    med, bst = float(kv["median_ms"]), float(kv["best_ms"])
    cur = best.setdefault(key, [med, bst])
    cur[0], cur[1] = min(cur[0], med), min(cur[1], bst)

def gemm_flops(model, B):
    L = LAYERS[model]
    io = [L[i] * L[i + 1] for i in range(len(L) - 1)]
    return 2.0 * B * (2 * sum(io) + sum(io[1:]))

hdr = ("model  batch thr | nnc ms (best) | torch ms (best) | nnc/torch | samples/s nnc  torch"
       " | GFLOP/s nnc %pk  torch %pk")
if avx:
    hdr += " | torch-avx512 ms, nnc/it"
print(hdr)
for model in ("mlp3", "mlp"):
    for B in (64, 256):
        for T in (1, 2):
            n = best.get(("nnc", model, B, T))
            t = best.get(("torch", model, B, T))
            if not n:
                continue
            fl = gemm_flops(model, B)
            gn = fl / (n[0] * 1e-3) / 1e9
            s = "%-6s %5d %3d | %6.3f (%6.3f) |" % (model, B, T, n[0], n[1])
            if t:
                gt = fl / (t[0] * 1e-3) / 1e9
                s += " %7.3f (%7.3f) | %9.3f | %8.0f %7.0f | %6.1f %4.1f%% %5.1f %4.1f%%" % (
                    t[0], t[1], n[0] / t[0], B / (n[0] * 1e-3), B / (t[0] * 1e-3),
                    gn, 100 * gn / (PEAK * T), gt, 100 * gt / (PEAK * T))
            else:
                s += "       -           |     -     | %8.0f       - | %6.1f %4.1f%%     -" % (
                    B / (n[0] * 1e-3), gn, 100 * gn / (PEAK * T))
            a = best.get(("torch512", model, B, T))
            if avx and a:
                s += " | %7.3f, %5.3f" % (a[0], n[0] / a[0])
            print(s)
print("ms = best of the runs' median step times (best single step in parentheses); "
      "nnc/torch < 1: nnc faster")
EOF
