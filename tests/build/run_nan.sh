#!/usr/bin/env bash
# NaN is not masked: relu (alone and fused into a GEMM epilogue), a max reduction and max
# pooling propagate a NaN of their input, in the reference interpreter (`nnc run`) and in
# compiled code (a library called with a NaN input, weights from the same seed) alike, and the other rows stay finite
# and agree between the two within 1e-4 + 1e-4|ref|.
set -u
: "${NNC:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
cd "$T" || exit 1
cat >nanm.nn <<'NN'
model nanm {
  dim N = 4
  input x: f32[N, 6]
  input img: f32[N, 1, 4, 4]
  r = relu(x)
  h = relu(dense(x, 8))
  m = max(x, axes = [1])
  p = maxpool(img, 2, stride = 2)
  output r, h, m, p
}
NN
$PY - <<'PYEOF'
import numpy as np
r = np.random.default_rng(1)
x = r.standard_normal((4, 6)).astype(np.float32)
x[1, 2] = np.nan
img = r.standard_normal((4, 1, 4, 4)).astype(np.float32)
img[2, 0, 3, 0] = np.nan
np.save("x.npy", x); np.save("img.npy", img)
x.tofile("x.bin"); img.tofile("img.bin")
PYEOF
"$NNC" run nanm.nn --seed 3 --in x=x.npy --in img=img.npy --out r=ir.npy --out h=ih.npy \
  --out m=im.npy --out p=ip.npy >/dev/null 2>err.txt || die "nnc run: $(cat err.txt)"
"$NNC" build nanm.nn --lib -o libnanm.a >/dev/null || die "build --lib"
cat >use.c <<'CEOF'
#include <stdio.h>
#include "nanm.h"
static float x[24], img[64], r[24], h[32], m[4], p[16];
static void dump(const char *path, const float *v, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) { fwrite(v, sizeof *v, n, f); fclose(f); }
}
int main(void) {
  FILE *f = fopen("x.bin", "rb"), *g = fopen("img.bin", "rb");
  if (!f || !g || fread(x, 4, 24, f) != 24 || fread(img, 4, 64, g) != 64) return 2;
  fclose(f); fclose(g);
  nanm_ctx *c = nanm_create_threads(1);
  if (!c || nanm_init(c, 3) || nanm_forward(c, x, img, r, h, m, p)) {
    printf("%s\n", nanm_error(c));
    return 1;
  }
  dump("cr.bin", r, 24); dump("ch.bin", h, 32); dump("cm.bin", m, 4); dump("cp.bin", p, 16);
  nanm_destroy(c);
  return 0;
}
CEOF
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "${NNC_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null &&
  SAN="-fsanitize=address,undefined"
cc -std=c11 -Wall -Wextra -Werror $SAN -I. use.c libnanm.a -lcjson -lm -lpthread -o use 2>cc.txt ||
  die "compiling against nanm.h: $(cat cc.txt)"
./use || die "library forward"
$PY - <<'PYEOF' || fail=1
import numpy as np, sys
bad = []
# where NaN must appear: x[1,2] feeds r[1,2], every h[1,:], m[1]; img[2,0,3,0] feeds p[2,0,1,0]
want = {"r": lambda a: a.reshape(4, 6)[1, 2], "h": lambda a: a.reshape(4, 8)[1],
        "m": lambda a: a.reshape(4)[1], "p": lambda a: a.reshape(4, 4)[2, 2]}
rest = {"r": lambda a: np.delete(a.reshape(4, 6)[1], 2), "h": lambda a: a.reshape(4, 8)[[0, 2, 3]],
        "m": lambda a: a.reshape(4)[[0, 2, 3]], "p": lambda a: np.delete(a.reshape(4, 4)[2], 2)}
for k in "rhmp":
    ref = np.load(f"i{k}.npy").astype(np.float64).ravel()
    got = np.fromfile(f"c{k}.bin", np.float32).astype(np.float64)
    for name, v in (("interpreter", ref), ("compiled", got)):
        if not np.all(np.isnan(want[k](v))): bad.append(f"{k}: {name} masks the NaN: {want[k](v)}")
        if not np.all(np.isfinite(rest[k](v))): bad.append(f"{k}: {name} spreads NaN too far")
    ok = np.isfinite(ref)
    if not np.array_equal(ok, np.isfinite(got)): bad.append(f"{k}: NaN positions differ")
    d = np.abs(got[ok] - ref[ok]) - (1e-4 + 1e-4 * np.abs(ref[ok]))
    if d.size and d.max() > 0: bad.append(f"{k}: max excess difference {d.max():.3g}")
print("\n".join("FAIL: " + b for b in bad) or "nan: interpreter and compiled code propagate NaN")
sys.exit(1 if bad else 0)
PYEOF
exit $fail
