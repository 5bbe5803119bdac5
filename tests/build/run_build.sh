#!/usr/bin/env bash
# run_build.sh — `nnc build` end to end on examples/mlp.nn (784-512-10, batch N=64, adam):
#  1. the program: `info` lists shapes, parameters, optimizer and the cost estimate;
#  2. `init --seed 7` writes exactly the weights `nnc run --seed 7` uses (bit for bit);
#  3. `infer` on 100 samples (one full batch and a padded partial one) matches `nnc run` on
#     the same weights within |d| <= 1e-4 + 1e-4|ref|, and gives identical bits when
#     repeated with the same thread count; a build with -D N=32 gives the same logits;
#  4. `train` on a learnable data set (10 Gaussian clusters in 784 dimensions: class means
#     N(0, 0.2^2 I), unit noise; 1024 samples,
#     2 epochs of 16 steps) follows the interpreter's loss curve (`nnc run --train`, same
#     shuffle and seed): per-epoch mean losses within 1e-3 relative, parameters within 1e-2;
#     the held-out accuracy of the trained weights reaches 0.9 (chance 0.1); without a TTY,
#     one line per epoch with loss and samples/s on stdout;
#  5. resuming from the checkpoint (optimizer state included) for 1 epoch gives the same
#     file as 3 epochs straight;
#  6. `bench` prints measured time next to the cost-model estimate;
#  7. errors name the file at fault and exit non-zero;
#  8. `--lib`: libNAME.a + NAME.h, used by a C program that reproduces the infer logits;
#     `nnc emit --emit=llvm|asm`.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
MLP="$NNC_SRC/examples/mlp.nn"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
# expect_fail RC PATTERN cmd...: the command exits with RC and its stderr contains PATTERN
expect_fail() {
  local want=$1 pat=$2
  shift 2
  "$@" >"$T/out.txt" 2>"$T/err.txt"
  local rc=$?
  [ "$rc" = "$want" ] || { die "'$*' exited $rc, expected $want"; cat "$T/err.txt" >&2; return; }
  grep -qF -- "$pat" "$T/err.txt" || { die "'$*': message lacks '$pat':"; cat "$T/err.txt" >&2; }
}

# the helpers below read and write safetensors without third-party packages
cat > "$T/st.py" <<'PYEOF'
import json, struct, numpy as np
DT = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "F16": np.float16}
def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    out = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"])
    return out, meta
def write(path, tensors):
    h, data, off = {}, b"", 0
    for k, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        h[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        data += a.tobytes(); off += a.nbytes
    hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
    open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + data)
PYEOF

if ! "$NNC" build --help >/dev/null 2>&1; then
  echo "FAIL: 'nnc build' is not available" >&2
  exit 1
fi
if ! "$NNC" build "$MLP" -o "$T/mlp" 2>"$T/build.err"; then
  cat "$T/build.err" >&2
  echo "FAIL: nnc build examples/mlp.nn" >&2
  exit 1
fi

# --- 1. info --------------------------------------------------------------------------------
"$T/mlp" info >"$T/info.txt" || die "mlp info"
for pat in 'batch 64' 'fc1.weight *f32\[512,784\] *uniform' 'fc2.bias *f32\[10\]' \
  'x *f32\[64,784\]' 'logits *f32\[64,10\]' 'adam' 'fc1.weight.adam_m' 'cost model: forward'; do
  grep -Eq -- "$pat" "$T/info.txt" || die "info lacks /$pat/"
done

# --- data --------------------------------------------------------------------------------
$PY - "$T" <<'PYEOF' || die "generating data"
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(5)
means = rng.normal(0, 0.2, (10, 784))
def blobs(n):
    y = rng.integers(0, 10, n)
    return (means[y] + rng.normal(0, 1, (n, 784))).astype(np.float32), y.astype(np.int64)
x, y = blobs(1024); np.save(t + "/train_x.npy", x); np.save(t + "/train_y.npy", y)
x, y = blobs(500); np.save(t + "/test_x.npy", x); np.save(t + "/test_y.npy", y)
x, y = blobs(100); np.save(t + "/x100.npy", x); np.save(t + "/y100.npy", y.astype(np.int32))
np.save(t + "/bad_x.npy", np.zeros((100, 785), np.float32))
PYEOF

# --- 2. init == the interpreter's initializers ---------------------------------------------
"$T/mlp" init --seed 7 -o "$T/w0.safetensors" || die "mlp init"
"$NNC" run "$MLP" --seed 7 --in x="$T/x100.npy" --in label="$T/y100.npy" \
  --save-weights "$T/wref.safetensors" --out logits="$T/ref100.npy" >/dev/null ||
  die "nnc run --seed 7"
$PY - "$T" <<'PYEOF' || die "init differs from nnc run --seed"
import sys, numpy as np
sys.path.insert(0, sys.argv[1]); import st
a, meta = st.read(sys.argv[1] + "/w0.safetensors"); r, _ = st.read(sys.argv[1] + "/wref.safetensors")
bad = [k for k in r if k not in a or a[k].shape != r[k].shape or
       not np.array_equal(a[k].astype(np.float32), r[k].astype(np.float32))]
print("init: %d tensors compared, model %s" % (len(r), meta.get("nnc.model")))
sys.exit(1 if bad or not r or meta.get("nnc.model") != "mlp" else 0)
PYEOF

# --- 3. infer vs nnc run; determinism; -D N=32 ---------------------------------------------
"$T/mlp" infer --weights "$T/w0.safetensors" --in x="$T/x100.npy" --out logits="$T/c100.npy" \
  --threads 2 || die "mlp infer"
"$T/mlp" infer --weights "$T/w0.safetensors" --in x="$T/x100.npy" --out logits="$T/c100b.npy" \
  --threads 2 || die "mlp infer (again)"
cmp -s "$T/c100.npy" "$T/c100b.npy" || die "two runs with 2 threads gave different bits"
"$NNC" build "$MLP" -D N=32 -o "$T/mlp32" || die "nnc build -D N=32"
"$T/mlp32" info | grep -q 'batch 32' || die "mlp32 info: batch 32"
"$T/mlp32" infer --weights "$T/w0.safetensors" --in x="$T/x100.npy" --out logits="$T/c32.npy" ||
  die "mlp32 infer"
$PY - "$T" <<'PYEOF' || die "infer differs from nnc run"
import sys, numpy as np
t = sys.argv[1]
ref = np.load(t + "/ref100.npy"); got = np.load(t + "/c100.npy"); g32 = np.load(t + "/c32.npy")
ok = True
for name, g in (("N=64", got), ("N=32", g32)):
    d = np.abs(g - ref); tol = 1e-4 + 1e-4 * np.abs(ref)
    print("infer %s: shape %s, max |diff| %.3g" % (name, g.shape, d.max()))
    ok &= g.shape == (100, 10) and bool((d <= tol).all())
sys.exit(0 if ok else 1)
PYEOF

# --- 4. train vs the interpreter; accuracy --------------------------------------------------
DATA="x=$T/train_x.npy,label=$T/train_y.npy"
"$T/mlp" train --weights "$T/w0.safetensors" --data "$DATA" --epochs 2 --seed 3 --threads 2 \
  --save "$T/w2.safetensors" --log "$T/loss.csv" >"$T/train.out" 2>"$T/train.err" </dev/null ||
  { cat "$T/train.err" >&2; die "mlp train"; }
[ "$(grep -c '^epoch [12]/2 .*loss .*samples/s' "$T/train.out")" = 2 ] ||
  { cat "$T/train.out" >&2; die "train: expected one line per epoch on stdout"; }
"$NNC" run "$MLP" --train --weights "$T/w0.safetensors" --data x="$T/train_x.npy" \
  --data label="$T/train_y.npy" --epochs 2 --batch 64 \
  --seed 3 --save-weights "$T/wi.safetensors" >"$T/interp.txt" 2>/dev/null ||
  die "nnc run --train"
"$T/mlp" infer --weights "$T/w2.safetensors" --in x="$T/test_x.npy" --out logits="$T/test.npy" ||
  die "mlp infer (held-out)"
$PY - "$T" <<'PYEOF' || die "training: loss curve or accuracy"
import sys, re, numpy as np
t = sys.argv[1]; sys.path.insert(0, t); import st
comp = [float(m) for m in re.findall(r"^epoch \d+/2\s+loss (\S+)", open(t + "/train.out").read(), re.M)]
ref = [float(m) for m in re.findall(r"^epoch \d+/2: loss (\S+)", open(t + "/interp.txt").read(), re.M)]
steps = np.loadtxt(t + "/loss.csv", delimiter=",", skiprows=1)
a, meta = st.read(t + "/w2.safetensors"); r, _ = st.read(t + "/wi.safetensors")
pd = max(float(np.abs(a[k] - r[k]).max()) for k in r if k in a)
acc = float((np.load(t + "/test.npy").argmax(1) == np.load(t + "/test_y.npy")).mean())
print("epoch losses: compiled %s, interpreter %s; params max |diff| %.3g; held-out acc %.3f"
      % (comp, ref, pd, acc))
ok = len(comp) == 2 and len(ref) == 2 and len(steps) == 32
ok = ok and all(abs(c - r_) <= 1e-3 * abs(r_) for c, r_ in zip(comp, ref))
ok = ok and pd <= 1e-2 and acc >= 0.9 and comp[1] < 0.5 * steps[0, 2]
ok = ok and meta.get("nnc.step") == "32" and "fc1.weight.adam_m" in a
sys.exit(0 if ok else 1)
PYEOF

# --- 5. resume == straight through ------------------------------------------------------
"$T/mlp" train --weights "$T/w2.safetensors" --data "$DATA" --epochs 1 --seed 3 --threads 2 \
  --save "$T/w3.safetensors" --quiet || die "train (resume)"
"$T/mlp" train --weights "$T/w0.safetensors" --data "$DATA" --epochs 3 --seed 3 --threads 2 \
  --save "$T/w3s.safetensors" --quiet || die "train (3 epochs)"
$PY - "$T" <<'PYEOF' || die "resumed training differs from training straight through"
import sys, numpy as np
t = sys.argv[1]; sys.path.insert(0, t); import st
a, ma = st.read(t + "/w3.safetensors"); b, mb = st.read(t + "/w3s.safetensors")
ok = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a) and ma["nnc.step"] == "48"
print("resume: %d tensors, identical: %s" % (len(a), ok))
sys.exit(0 if ok else 1)
PYEOF

# --- 6. bench ----------------------------------------------------------------------------
"$T/mlp" bench --iters 3 >"$T/bench.txt" || die "mlp bench"
"$T/mlp" bench --train --iters 3 --threads 1 >>"$T/bench.txt" || die "mlp bench --train"
grep -q 'forward, batch 64' "$T/bench.txt" || die "bench: forward line"
grep -q 'training step, batch 64, 1 thread' "$T/bench.txt" || die "bench: training line"
[ "$(grep -c 'cost model:' "$T/bench.txt")" = 2 ] || die "bench: cost-model estimate"
cat "$T/bench.txt"

# --- 7. errors ---------------------------------------------------------------------------
expect_fail 1 "$T/bad_x.npy" "$T/mlp" infer --weights "$T/w0.safetensors" --in x="$T/bad_x.npy"
expect_fail 1 "$T/none.safetensors" "$T/mlp" infer --weights "$T/none.safetensors" --in x="$T/x100.npy"
expect_fail 1 "missing --in x=" "$T/mlp" infer --weights "$T/w0.safetensors"
expect_fail 1 "no input named 'y'" "$T/mlp" infer --weights "$T/w0.safetensors" --in y="$T/x100.npy"
$PY -c "
import sys; sys.path.insert(0, '$T'); import st, numpy as np
st.write('$T/wbad.safetensors', {'fc1.weight': np.zeros((512, 783)), 'fc1.bias': np.zeros(512),
         'fc2.weight': np.zeros((10, 512)), 'fc2.bias': np.zeros(10)})"
expect_fail 1 "$T/wbad.safetensors: tensor 'fc1.weight' is f32[512,783]" \
  "$T/mlp" infer --weights "$T/wbad.safetensors" --in x="$T/x100.npy"
expect_fail 1 "missing --data label=" "$T/mlp" train --data x="$T/train_x.npy"
expect_fail 2 "adam" "$T/mlp" train --data "$DATA" --lr 0.1
expect_fail 2 "unknown command 'fit'" "$T/mlp" fit
expect_fail 2 "needs a value" "$T/mlp" init -o
expect_fail 1 "$T/absent.nn" "$NNC" build "$T/absent.nn" -o "$T/x"
expect_fail 2 "-o NAME" "$NNC" build "$MLP"
expect_fail 1 "no such directory" "$NNC" build "$MLP" -o "$T/nodir/x"
printf 'model m {\n  input x: f32[4]\n  y = relu(x\n  output y\n}\n' >"$T/broken.nn"
expect_fail 1 "broken.nn" "$NNC" build "$T/broken.nn" -o "$T/broken"
[ -e "$T/broken" ] && die "a failed build left an output behind"

# --- 8. --lib and emit ---------------------------------------------------------------------
"$NNC" build "$MLP" --lib -o "$T/libmm.a" || die "nnc build --lib"
[ -f "$T/libmm.a" ] && [ -f "$T/mm.h" ] || die "--lib: libmm.a and mm.h expected"
grep -q '#define MM_PARAMS_BYTES' "$T/mm.h" || die "mm.h: MM_PARAMS_BYTES"
grep -q 'mm_forward(mm_ctx \*ctx, const float \*x, float \*logits)' "$T/mm.h" || die "mm.h: mm_forward"
grep -q 'mm_train_step(mm_ctx \*ctx, const float \*x, const int32_t \*label)' "$T/mm.h" ||
  die "mm.h: mm_train_step"
cat >"$T/use.c" <<'CEOF'
#include <stdio.h>
#include "mm.h"
#include "rt_io.h"
int main(int argc, char **argv) {
  char err[512];
  RtTensor x = {0}, y = {0};
  if (argc != 4 || rt_npy_read(argv[2], &x, err, sizeof err)) return 3;
  mm_ctx *c = mm_create_threads(2);
  if (!c || mm_load(c, argv[1])) { fprintf(stderr, "%s\n", c ? mm_error(c) : "create"); return 1; }
  int64_t shape[2] = {x.shape[0], MM_LOGITS_DIM1};
  rt_tensor_alloc(&y, DT_F32, 2, shape);
  if (mm_infer(c, x.shape[0], x.data, y.data) || rt_npy_write(argv[3], &y, err, sizeof err)) return 1;
  mm_destroy(c);
  rt_tensor_free(&x);
  rt_tensor_free(&y);
  return 0;
}
CEOF
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "${NNC_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null &&
  SAN="-fsanitize=address,undefined"
if cc -std=c11 -Wall -Wextra -Werror $SAN -I"$T" -I"$NNC_SRC/runtime" "$T/use.c" "$T/libmm.a" \
  -lcjson -lm -lpthread -o "$T/use" 2>"$T/cc.txt"; then
  "$T/use" "$T/w0.safetensors" "$T/x100.npy" "$T/lib100.npy" || die "program using libmm.a"
  $PY -c "
import numpy as np, sys
a = np.load('$T/lib100.npy'); b = np.load('$T/c100.npy')
sys.exit(0 if a.shape == b.shape and np.array_equal(a, b) else 1)" ||
    die "libmm.a logits differ from the program's"
else
  cat "$T/cc.txt" >&2
  die "compiling against mm.h + libmm.a"
fi
"$NNC" emit --emit=llvm "$MLP" >"$T/mlp.ll" || die "emit --emit=llvm"
grep -q 'nnc_model_mlp' "$T/mlp.ll" || die "emit llvm: no descriptor nnc_model_mlp"
"$NNC" emit --emit=asm "$MLP" >"$T/mlp.s" || die "emit --emit=asm"
[ -s "$T/mlp.s" ] || die "emit asm: empty"

[ $fail = 0 ] && echo "run_build: all checks passed"
exit $fail
