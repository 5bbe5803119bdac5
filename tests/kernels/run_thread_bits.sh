#!/usr/bin/env bash
# run_thread_bits.sh — the compiled node kernels (layernorm, softmax, transposes, max
# pooling, blocked sums, the streamed small-M product) give the same bits on 1 and 2
# threads: gpt2_block and lenet, built once, `infer` on the same random inputs with
# --threads 1 and --threads 2, outputs compared byte for byte; lenet trained for a step on
# each (max pooling's backward, the direct filter gradients), the saved weights compared
# byte for byte; and threads/dw_bn.nn
# (batchnorm statistics, depthwise filter gradients) trained for two steps on each, the
# saved weights compared byte for byte; and threads/wino.nn (Winograd F(4,3) convolutions:
# transforms split by planes, GEMMs by output slices) inferred on each, outputs compared
# byte for byte, and trained for two steps (its training step's forwards and data
# gradients Winograd too, the filters transformed every step, split by panels; its filter
# gradients Winograd, their 36 GEMMs one a task, accumulated over rounds), weights
# compared byte for byte; and threads/epi.nn (elementwise groups in convolution epilogues:
# GEMMs, the depthwise and few-channel kernels, Winograd's output transform; the global mean)
# inferred on each, without and with Winograd, outputs compared byte for byte. The sizes are chosen
# so that the runtime kernels split their work over the
# pool.
set -u
NNC=${NNC:?set NNC to the nnc driver}
SRC=${NNC_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "skipped: numpy is not installed for $PY"; exit 0; }

"$PY" - "$T" <<'PYEOF' || die "writing the inputs"
import sys, numpy as np
t = sys.argv[1]
r = np.random.default_rng(7)
np.save(t + "/gx.npy", r.standard_normal((2, 64, 768), dtype=np.float32))
m = np.triu(np.full((64, 64), -1e9, dtype=np.float32), 1)
np.save(t + "/gmask.npy", m)
np.save(t + "/lx.npy", r.standard_normal((64, 1, 28, 28), dtype=np.float32))
np.save(t + "/lab.npy", r.integers(0, 10, 64, dtype=np.int32))
np.save(t + "/dx.npy", r.standard_normal((32, 3, 32, 32), dtype=np.float32))
np.save(t + "/dlab.npy", r.integers(0, 10, 32, dtype=np.int32))
np.save(t + "/cx.npy", r.standard_normal((16, 64, 7, 7), dtype=np.float32))
np.save(t + "/clab.npy", r.integers(0, 10, 16, dtype=np.int32))
np.save(t + "/wx.npy", r.standard_normal((8, 16, 32, 32), dtype=np.float32))
np.save(t + "/wlab.npy", r.integers(0, 10, 8, dtype=np.int32))
np.save(t + "/ex.npy", r.standard_normal((2, 32, 32, 32), dtype=np.float32) * 4)
np.save(t + "/ex2.npy", r.standard_normal((1, 25, 30, 30), dtype=np.float32) * 4)
np.save(t + "/ex3.npy", r.standard_normal((2, 3, 64, 64), dtype=np.float32) * 4)
PYEOF

"$NNC" build "$SRC/examples/gpt2_block.nn" -D N=2 -D T=64 -o "$T/g" || die "nnc build gpt2_block"
"$NNC" build "$SRC/examples/lenet.nn" -D N=64 -o "$T/l" || die "nnc build lenet"
"$NNC" build "$SRC/tests/kernels/threads/dw_bn.nn" -o "$T/d" || die "nnc build dw_bn"
n=$("$NNC" emit --emit=kernels --train "$SRC/tests/kernels/threads/dw_bn.nn" | grep -c "B read in place")
[ "$n" -ge 2 ] || echo "note: this host's tiles do not read dw_bn.nn's pointwise image and dy in place ($n)"
"$NNC" cost --train --tiles "$SRC/tests/kernels/threads/dw_bn.nn" | grep -q "direct pointwise filter gradient chosen" ||
  echo "note: this host's tiles keep dw_bn.nn's pointwise filter gradient a GEMM (direct form not run)"
# conv_t.nn is for the transposed convolutions, not Winograd; say so where the host's tiles differ
"$NNC" build "$SRC/tests/kernels/threads/conv_t.nn" --no-winograd -o "$T/c" || die "nnc build conv_t"
"$NNC" cost "$SRC/tests/kernels/threads/conv_t.nn" --no-winograd --tiles | grep -q "transposed" ||
  echo "note: this host's tiles keep conv_t.nn's positions in the lanes (transposed form not run)"
"$NNC" build "$SRC/tests/kernels/threads/wino.nn" -o "$T/w" || die "nnc build wino"
n=$("$NNC" emit --emit=kernels "$SRC/tests/kernels/threads/wino.nn" | grep -c "winograd F(4,3)")
[ "$n" = 3 ] || die "wino.nn: $n of its 3 convolutions planned as Winograd F(4,3)"
"$NNC" emit --emit=kernels --train "$SRC/tests/kernels/threads/wino.nn" > "$T/wk.txt" || die "nnc emit wino"
n=$(grep -c "winograd F(4,3):" "$T/wk.txt")
[ "$n" = 5 ] || die "wino.nn's training step: $n of its 3 convolutions and 2 data gradients planned as Winograd F(4,3)"
n=$(grep -c "winograd F(4,3) filter gradient:" "$T/wk.txt")
[ "$n" = 3 ] || die "wino.nn's training step: $n of its 3 filter gradients planned as Winograd"
"$NNC" build "$SRC/tests/kernels/threads/epi.nn" --no-winograd -o "$T/e" || die "nnc build epi"
n=$("$NNC" emit --emit=kernels "$SRC/tests/kernels/threads/epi.nn" --no-winograd | grep -c "then elementwise")
[ "$n" = 4 ] || die "epi.nn: $n of its 4 convolutions with their groups fused"
"$NNC" build "$SRC/tests/kernels/threads/epi.nn" -o "$T/e2" || die "nnc build epi (winograd)"
n=$("$NNC" emit --emit=kernels "$SRC/tests/kernels/threads/epi.nn" | grep -A6 "then elementwise of %22: %23 add, %24 relu$" |
    grep -c "winograd F(4,3)")
[ "$n" = 1 ] || echo "note: this host's tiles do not run epi.nn's c3 as Winograd with its add + relu"
for t in 1 2; do
  "$T/d" train --data x="$T/dx.npy",label="$T/dlab.npy" --epochs 1 --seed 3 --quiet \
    --save "$T/dw$t.safetensors" --threads $t || die "dw_bn train --threads $t"
  "$T/c" train --data x="$T/cx.npy",label="$T/clab.npy" --epochs 1 --seed 3 --quiet \
    --save "$T/cw$t.safetensors" --threads $t || die "conv_t train --threads $t"
  "$T/c" infer --weights "$T/cw1.safetensors" --in x="$T/cx.npy" --in label="$T/clab.npy" \
    --out logits="$T/cy$t.npy" --threads $t || die "conv_t infer --threads $t"
  "$T/g" infer --in x="$T/gx.npy" --in mask="$T/gmask.npy" --out y="$T/gy$t.npy" --seed 1 \
    --threads $t \
    || die "gpt2_block infer --threads $t"
  "$T/l" infer --in x="$T/lx.npy" --in label="$T/lab.npy" --out logits="$T/ly$t.npy" --seed 1 \
    --threads $t || die "lenet infer --threads $t"
  "$T/l" train --data x="$T/lx.npy",label="$T/lab.npy" --epochs 1 --seed 3 --quiet \
    --save "$T/lw$t.safetensors" --threads $t || die "lenet train --threads $t"
  "$T/w" infer --in x="$T/wx.npy" --in label="$T/wlab.npy" --out logits="$T/wy$t.npy" --seed 1 \
    --threads $t || die "wino infer --threads $t"
  "$T/w" train --data x="$T/wx.npy",label="$T/wlab.npy" --epochs 2 --seed 3 --quiet \
    --save "$T/ww$t.safetensors" --threads $t || die "wino train --threads $t"
  for e in e e2; do
    "$T/$e" infer --in x="$T/ex.npy" --in x2="$T/ex2.npy" --in x3="$T/ex3.npy" --out m="$T/${e}m$t.npy" \
      --out y="$T/${e}y$t.npy" --out d="$T/${e}d$t.npy" --out st="$T/${e}s$t.npy" --seed 1 \
      --threads $t || die "$e infer --threads $t"
  done
done
cmp -s "$T/gy1.npy" "$T/gy2.npy" || die "gpt2_block: 1 and 2 threads gave different bits"
cmp -s "$T/ly1.npy" "$T/ly2.npy" || die "lenet: 1 and 2 threads gave different bits"
cmp -s "$T/lw1.safetensors" "$T/lw2.safetensors" || die "lenet: 1 and 2 threads trained different weights"
cmp -s "$T/dw1.safetensors" "$T/dw2.safetensors" || die "dw_bn: 1 and 2 threads trained different weights"
cmp -s "$T/cw1.safetensors" "$T/cw2.safetensors" || die "conv_t: 1 and 2 threads trained different weights"
cmp -s "$T/cy1.npy" "$T/cy2.npy" || die "conv_t: 1 and 2 threads inferred different bits"
cmp -s "$T/wy1.npy" "$T/wy2.npy" || die "wino: 1 and 2 threads gave different bits"
cmp -s "$T/ww1.safetensors" "$T/ww2.safetensors" || die "wino: 1 and 2 threads trained different weights"
for e in e e2; do
  for o in m y d s; do
    cmp -s "$T/$e${o}1.npy" "$T/$e${o}2.npy" || die "epi ($e, output $o): 1 and 2 threads gave different bits"
  done
done
"$PY" - "$T" <<'PYEOF' || die "outputs are not finite"
import sys, numpy as np
for f in ("gy1", "ly1", "wy1", "cy1", "em1", "ey1", "ed1", "es1", "e2m1", "e2y1", "e2d1", "e2s1"):
    a = np.load(sys.argv[1] + "/" + f + ".npy")
    assert a.size and np.isfinite(a).all(), f
PYEOF
echo "ok: gpt2_block, lenet, wino, conv_t and epi outputs, lenet, dw_bn, conv_t and wino trained weights bit-identical on 1 and 2 threads"
