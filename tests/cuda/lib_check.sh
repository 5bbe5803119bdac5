#!/usr/bin/env bash
# lib_check.sh NNC BUILD_DIR — `nnc build --lib --target cuda-emu`: the CUDA library.
#  1. examples/embed/main.c, the C program of the library example, compiles unchanged against
#     the CPU library and the cuda-emu one (the same mlp.h API); both runs (3 training steps,
#     500 held-out samples, a save/load round trip with identical logits) print the same
#     losses within 1e-4 + 1e-4|loss| and the same accuracy;
#  2. the device header: NAME_DEVICE_* memory macros equal to the plan's regions, and a
#     program driving NAME_forward_device / NAME_train_step_device / NAME_device_tensor on
#     device memory (cuda-emu's device memory is host memory) gets bit-identical outputs,
#     losses and weights to the host entry points from the same state;
#  3. a CPU library's context refuses the device entry point with the reason;
#  4. --shared --target cuda-emu: libmlp.so with the same mlp.h; examples/embed/main.c linked
#     against it prints exactly what it printed against the static cuda-emu library, and the
#     Python package (python/nnc_model) on it agrees with the CPU --shared library: forward
#     over 20 samples within 1e-4 + 1e-4|ref|, 3 train_step losses within 1e-4 + 1e-4|loss|
#     (skipped in a sanitizer build, whose runtime needs the sanitizer in the Python process);
#  5. --lib --target cuda builds (without a GPU its context is refused with "no CUDA
#     driver/device").
set -u
NNC=$1
BUILD=${2:-}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && SAN="-fsanitize=address,undefined"
CFLAGS="-std=c11 -Wall -Wextra -Werror $SAN"
LIBS="-lcjson -lm -lpthread"
mkdir -p "$T/cpu" "$T/emu"
"$NNC" build "$SRC/examples/mlp.nn" -D N=8 --lib -o "$T/cpu/libmlp.a" || die "build --lib"
"$NNC" build "$SRC/examples/mlp.nn" -D N=8 --lib --target cuda-emu -o "$T/emu/libmlp.a" ||
  die "build --lib --target cuda-emu"
for p in cpu emu; do
  extra=""
  [ $p = emu ] && extra="-lstdc++"
  cc $CFLAGS -I"$T/$p" "$SRC/examples/embed/main.c" "$T/$p/libmlp.a" $LIBS $extra -o "$T/$p/embed" ||
    die "examples/embed/main.c against the $p library"
  # exit status 1 is the example's "accuracy under 90%" after only 3 steps: not a failure here
  "$T/$p/embed" --steps 3 --threads 1 --save "$T/$p/w.safetensors" > "$T/$p/out.txt"
  [ $? -le 1 ] || die "$p embed crashed"
  grep -q "reloaded logits identical" "$T/$p/out.txt" || { cat "$T/$p/out.txt"; die "$p: save/load round trip"; }
done
cat "$T/emu/out.txt"
/usr/bin/python3 - "$T" <<'PYEOF' || die "the cuda-emu library's run differs from the CPU library's"
import re, sys
t = sys.argv[1]
def get(p):
    m = re.search(r"loss (\S+) -> (\S+) after 3 steps; held-out accuracy (\S+)", open(t + "/%s/out.txt" % p).read())
    return [float(x) for x in m.groups()]
a, b = get("cpu"), get("emu")
print("cpu: loss %g -> %g, acc %g; cuda-emu: loss %g -> %g, acc %g" % tuple(a + b))
sys.exit(0 if all(abs(x - y) <= 1e-4 + 1e-4 * abs(x) for x, y in zip(a[:2], b[:2])) and a[2] == b[2] else 1)
PYEOF
grep -q "#define MLP_DEVICE_PARAM_BYTES" "$T/emu/mlp.h" || die "mlp.h: no MLP_DEVICE_PARAM_BYTES"
grep -q "MLP_DEVICE" "$T/cpu/mlp.h" && die "the CPU library's header has device macros"
cat > "$T/dev.c" <<'CEOF'
/* the device entry points against the host ones, from the same state */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mlp.h"
enum { B = MLP_BATCH, X = MLP_X_NUMEL, L = MLP_LOGITS_NUMEL };
int main(void) {
  if (MLP_DEVICE_PARAM_BYTES != MLP_PARAMS_BYTES || MLP_DEVICE_IO_BYTES != MLP_IO_BYTES ||
      MLP_DEVICE_ARENA_BYTES_TRAIN != MLP_ARENA_BYTES_TRAIN)
    return printf("device macros differ from the regions\n"), 1;
  mlp_ctx *h = mlp_create_threads(1), *d = mlp_create_threads(1);
  if (!h || !d || mlp_init(h, 5) || mlp_init(d, 5)) return printf("create/init\n"), 1;
  /* cuda-emu's device memory is host memory: these stand for cudaMalloc'd buffers */
  float *x = malloc(sizeof(float) * X), *lh = malloc(sizeof(float) * L), *ld = malloc(sizeof(float) * L);
  int32_t *lab = malloc(sizeof(int32_t) * B);
  float dloss = -1;
  unsigned s = 1;
  for (int step = 0; step < 3; step++) {
    for (int i = 0; i < X; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < B; i++) lab[i] = (int32_t)(i % 10);
    float hl = mlp_train_step(h, x, lab);
    if (mlp_train_step_device(d, x, lab, &dloss, NULL)) return printf("%s\n", mlp_error(d)), 1;
    if (hl != dloss) return printf("step %d: loss %.9g (host) vs %.9g (device)\n", step, hl, dloss), 1;
  }
  if (mlp_forward(h, x, lh) || mlp_forward_device(d, x, ld, NULL)) return printf("forward\n"), 1;
  if (memcmp(lh, ld, sizeof(float) * L)) return printf("forward: logits differ\n"), 1;
  /* a weight read on the device equals the host context's; the host copy of d is refreshed */
  const float *wd = mlp_device_tensor(d, "fc2.bias"), *wh = mlp_tensor(h, "fc2.bias");
  if (!wd || !wh || memcmp(wd, wh, sizeof(float) * 10)) return printf("fc2.bias differs on the device\n"), 1;
  if (memcmp(mlp_tensor(d, "fc1.weight"), mlp_tensor(h, "fc1.weight"), (size_t)784 * 512 * sizeof(float)))
    return printf("fc1.weight differs after reading it back\n"), 1;
  printf("device entry points: 3 training steps and a forward pass identical to the host's (loss %.6g)\n", dloss);
  mlp_destroy(h);
  mlp_destroy(d);
  free(x), free(lh), free(ld), free(lab);
  return 0;
}
CEOF
cc $CFLAGS -I"$T/emu" "$T/dev.c" "$T/emu/libmlp.a" $LIBS -lstdc++ -o "$T/dev" || die "compiling dev.c"
"$T/dev" || die "device entry points"
cat > "$T/cpudev.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
#include "mlp.h"
int rt_ctx_run_device(struct RtCtx *c, int train, const void *const *d_in, void *const *d_out, void *stream);
int main(void) {
  mlp_ctx *c = mlp_create_threads(1);
  const void *in[1] = {0};
  void *out[1] = {0};
  if (!c || rt_ctx_run_device(c, 0, in, out, NULL) == 0) return 1;
  printf("CPU library: %s\n", mlp_error(c));
  int rc = strstr(mlp_error(c), "--target cuda") ? 0 : 1;
  mlp_destroy(c);
  return rc;
}
CEOF
cc $CFLAGS -I"$T/cpu" "$T/cpudev.c" "$T/cpu/libmlp.a" $LIBS -o "$T/cpudev" && "$T/cpudev" ||
  die "a CPU library's context and the device entry point"
# 4. --shared --target cuda-emu
mkdir -p "$T/so_emu" "$T/so_cpu"
"$NNC" build "$SRC/examples/mlp.nn" -D N=8 --shared --target cuda-emu -o "$T/so_emu/libmlp.so" ||
  die "build --shared --target cuda-emu"
"$NNC" build "$SRC/examples/mlp.nn" -D N=8 --shared -o "$T/so_cpu/libmlp.so" || die "build --shared"
cc $CFLAGS -I"$T/so_emu" "$SRC/examples/embed/main.c" -L"$T/so_emu" -Wl,-rpath,"$T/so_emu" -lmlp -o "$T/so_emu/embed" ||
  die "examples/embed/main.c against the cuda-emu shared library"
"$T/so_emu/embed" --steps 3 --threads 1 --save "$T/so_emu/w.safetensors" > "$T/so_emu/out.txt"
[ $? -le 1 ] || die "embed against the shared cuda-emu library crashed"
# the same lines but the saved file's directory
cmp -s <(sed "s|$T/emu/|DIR/|" "$T/emu/out.txt") <(sed "s|$T/so_emu/|DIR/|" "$T/so_emu/out.txt") ||
  { cat "$T/so_emu/out.txt"; die "shared and static cuda-emu libraries differ"; }
echo "shared cuda-emu library: examples/embed prints what the static one printed"
if [ -z "$SAN" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  cp -r "$SRC/python" "$T/pysrc"
  /usr/bin/python3 -m pip install --quiet --no-build-isolation --no-deps --no-index --target "$T/site" \
    "$T/pysrc" 2>&1 | grep -v "WARNING: Running pip as the 'root' user"
  [ -f "$T/site/nnc_model/__init__.py" ] || die "pip did not install the package"
  PYTHONPATH="$T/site" /usr/bin/python3 - "$T" <<'PYEOF' || die "the Python package on the cuda-emu library"
import sys, numpy as np, nnc_model
t = sys.argv[1]
r = np.random.RandomState(0)
x = r.randn(20, 784).astype(np.float32); y = r.randint(0, 10, 20).astype(np.int32)
res = {}
for p in ("cpu", "emu"):
    m = nnc_model.Model(t + "/so_%s/libmlp.so" % p)
    m.init(seed=1)
    out = m.forward(x=x)["logits"]
    losses = [m.train_step(x=x[:8], label=y[:8]) for _ in range(3)]
    res[p] = (out, np.array(losses)); del m
(a, la), (b, lb) = res["cpu"], res["emu"]
ok = a.shape == b.shape == (20, 10) and bool((np.abs(a - b) <= 1e-4 + 1e-4 * np.abs(a)).all())
ok &= bool((np.abs(la - lb) <= 1e-4 + 1e-4 * np.abs(la)).all())
print("Python, shared cuda-emu vs CPU library: forward max |diff| %.3g, losses %s vs %s" % (np.abs(a - b).max(), lb, la))
sys.exit(0 if ok else 1)
PYEOF
else
  echo "shared cuda-emu library from Python: skipped (sanitizer build or no numpy)"
fi
# 5. --lib --target cuda (PTX embedded, where nnc has NVRTC) links, and without a GPU its
#    context is refused with the reason
if "$NNC" emit --emit=ptx --target cuda "$SRC/examples/linreg.nn" > /dev/null 2>&1; then
  mkdir -p "$T/gpu"
  "$NNC" build "$SRC/examples/mlp.nn" -D N=8 --lib --target cuda -o "$T/gpu/libmlp.a" || die "--lib --target cuda"
  cat > "$T/gpu.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
#include "mlp.h"
int main(void) {
  char err[512] = "";
  struct RtCtx *c = rt_ctx_create(&nnc_model_mlp_cuda, 1, err, sizeof err);
  if (c) { /* a machine with a GPU */
    printf("CUDA library: a context on the device\n");
    rt_ctx_destroy(c);
    return 0;
  }
  printf("CUDA library without a GPU: %s\n", err);
  return strstr(err, "no CUDA") ? 0 : 1;
}
CEOF
  cc $CFLAGS -I"$T/gpu" "$T/gpu.c" "$T/gpu/libmlp.a" $LIBS -lstdc++ -o "$T/gpuprog" || die "compiling against the cuda library"
  "$T/gpuprog" || die "the cuda library's context"
fi
echo "ok"
