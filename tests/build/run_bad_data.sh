#!/usr/bin/env bash
# Bad data and careless callers against built programs and libraries: out-of-range labels and
# embedding indices are refused on the way in with the reference interpreter's message (not a
# NaN loss, not a read outside the table), non-finite inputs and weights are refused,
# `train --check-finite` stops at the first non-finite value, and the
# library's entry points survive NULL arguments, report every failure through NAME_error and
# cap the thread count. Also: a --data list naming an input twice (an error path that leaked).
set -u
: "${NNC:?}" "${NNC_SRC:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
# expect_fail RC MESSAGE cmd...: exit status RC and MESSAGE (fixed string) on stderr
expect_fail() {
  local want=$1 msg=$2
  shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ $rc = "$want" ] && grep -qF -- "$msg" "$T/err" ||
    die "$*: exit $rc (want $want), stderr '$(head -c 400 "$T/err")', want '$msg'"
}
cd "$T" || exit 1
cat >emb.nn <<'NN'
model emb {
  dim N = 4
  input tok: i32[N]
  input label: i32[N]
  e = embedding(tok, 7, 5)
  logits = dense(e, 3)
  loss = cross_entropy(logits, label)
  output logits
}
train emb { minimize loss  optimizer sgd(lr = 0.1) }
NN
"$NNC" build "$NNC_SRC/examples/mlp.nn" -o mlp >/dev/null || die "build mlp"
"$NNC" build emb.nn -o emb >/dev/null || die "build emb"
"$NNC" build emb.nn --lib -o libemb.a >/dev/null || die "build emb --lib"
$PY - <<'PYEOF'
import numpy as np
r = np.random.default_rng(0)
x = r.standard_normal((128, 784)).astype(np.float32)
y = r.integers(0, 10, 128).astype(np.int32)
np.save("x.npy", x)
y1 = y.copy(); y1[70] = -1; np.save("y_neg.npy", y1)
y2 = y.copy(); y2[5] = 10; np.save("y_big.npy", y2)
np.save("y.npy", y)
xn = x.copy(); xn[3, 5] = np.nan; np.save("x_nan.npy", xn)
np.save("tok.npy", np.array([0, 6, 7, 1], np.int32))
np.save("lab.npy", np.array([0, 1, 2, 0], np.int32))
PYEOF
# labels: the interpreter's message, at the position in the file
msg="label -1 at position 70 is outside [0, 10)"
expect_fail 1 "$msg" "$NNC" run "$NNC_SRC/examples/mlp.nn" --seed 1 --in x=x.npy --in label=y_neg.npy
expect_fail 1 "y_neg.npy: input 'label': $msg" ./mlp train --seed 1 --data x=x.npy,label=y_neg.npy --epochs 1
expect_fail 1 "y_big.npy: input 'label': label 10 at position 5 is outside [0, 10)" \
  ./mlp train --seed 1 --data x=x.npy,label=y_big.npy --epochs 1
# embedding indices: the table has 7 rows
expect_fail 1 "index 7 at position 2 is outside [0, 7)" "$NNC" run emb.nn --seed 1 --in tok=tok.npy --in label=lab.npy
expect_fail 1 "tok.npy: input 'tok': index 7 at position 2 is outside [0, 7)" \
  ./emb infer --seed 1 --in tok=tok.npy --out logits=l.npy
# non-finite inputs and weights
expect_fail 1 "x_nan.npy: input 'x': element 2357 is NaN" ./mlp infer --seed 1 --in x=x_nan.npy --out logits=l.npy
./mlp init --seed 1 -o w.safetensors >/dev/null || die "init"
$PY - <<'PYEOF'
import json, struct
b = open("w.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
d = bytearray(b[8 + n:])
s = h["fc2.bias"]["data_offsets"][0]
d[s + 12:s + 16] = struct.pack("<f", float("-inf"))
open("w_inf.safetensors", "wb").write(b[:8 + n] + bytes(d))
PYEOF
expect_fail 1 "w_inf.safetensors: tensor 'fc2.bias': element 3 is -inf" \
  ./mlp infer --weights w_inf.safetensors --in x=x.npy --out logits=l.npy
# --check-finite: huge (finite) weights overflow the optimizer state in the first step, while
# the loss stays finite; the option names the step and the tensor
$PY - <<'PYEOF'
import json, struct, numpy as np
b = open("w.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
d = bytearray(b[8 + n:])
s, e = h["fc1.weight"]["data_offsets"]
d[s:e] = (np.frombuffer(bytes(d[s:e]), np.float32) * np.float32(1e36)).tobytes()
open("w_big.safetensors", "wb").write(b[:8 + n] + bytes(d))
PYEOF
./mlp train --weights w_big.safetensors --data x=x.npy,label=y.npy --epochs 1 --quiet >/dev/null 2>&1 ||
  die "training from huge weights without --check-finite should run"
expect_fail 1 "step 1 (epoch 1): optimizer state 'fc2.weight.adam_v': element 0 is +inf" \
  ./mlp train --weights w_big.safetensors --data x=x.npy,label=y.npy --epochs 1 --check-finite
expect_fail 2 "--data names 'x' twice" ./mlp train --data x=x.npy,label=y.npy,x=x.npy --epochs 1
# the library: errors through emb_error, NULL arguments, the thread cap
cat >use.c <<'CEOF'
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "emb.h"
int32_t rt_ctx_threads(const struct RtCtx *c);
#define CHECK(c, ...) do { if (!(c)) { printf("FAIL: " __VA_ARGS__); puts(""); bad = 1; } } while (0)
int main(void) {
  int bad = 0;
  int32_t tok[4] = {0, 1, 2, 3}, lab[4] = {0, 1, -1, 2}, okl[4] = {0, 1, 2, 2};
  float logits[12];
  emb_ctx *c = emb_create_threads(100000);
  CHECK(c, "create_threads(100000) failed");
  if (!c) return 1;
  CHECK(rt_ctx_threads(c) <= 256, "%d threads started", rt_ctx_threads(c));
  CHECK(emb_init(c, 1) == 0, "init: %s", emb_error(c));
  float loss = emb_train_step(c, tok, lab);
  CHECK(isnan(loss), "train_step with label -1 gave %g", loss);
  CHECK(strstr(emb_error(c), "input 'label': label -1 at position 2 is outside [0, 3)"),
        "train_step error: '%s'", emb_error(c));
  CHECK(isfinite(emb_train_step(c, tok, okl)), "train_step on good labels: %s", emb_error(c));
  tok[3] = 9;
  CHECK(emb_forward(c, tok, logits) == -1 && strstr(emb_error(c), "index 9 at position 3"),
        "forward with index 9: '%s'", emb_error(c));
  CHECK(emb_forward(c, NULL, logits) == -1 && strstr(emb_error(c), "argument 'tok' is NULL"),
        "forward(NULL input): '%s'", emb_error(c));
  CHECK(emb_infer(c, 4, tok, NULL) == -1 && strstr(emb_error(c), "argument 'logits' is NULL"),
        "infer(NULL output): '%s'", emb_error(c));
  CHECK(isnan(emb_train_step(c, tok, NULL)) && strstr(emb_error(c), "argument 'label' is NULL"),
        "train_step(NULL label): '%s'", emb_error(c));
  CHECK(emb_load(c, NULL) == -1 && strstr(emb_error(c), "NULL path"), "load(NULL): '%s'", emb_error(c));
  CHECK(emb_save(c, NULL) == -1 && strstr(emb_error(c), "NULL path"), "save(NULL): '%s'", emb_error(c));
  CHECK(emb_load(c, "/nonexistent.safetensors") == -1 && strstr(emb_error(c), "/nonexistent"),
        "load of a missing file: '%s'", emb_error(c));
  CHECK(emb_tensor(c, NULL) == NULL && emb_tensor(c, "nope") == NULL, "tensor of a bad name");
  CHECK(emb_init(NULL, 1) == -1 && emb_forward(NULL, tok, logits) == -1 &&
        emb_load(NULL, "x") == -1 && emb_save(NULL, "x") == -1 && emb_tensor(NULL, "e") == NULL &&
        isnan(emb_train_step(NULL, tok, okl)) && emb_infer(NULL, 4, tok, logits) == -1,
        "NULL context accepted");
  CHECK(!strcmp(emb_error(NULL), "no context"), "error(NULL) = '%s'", emb_error(NULL));
  emb_destroy(c);
  emb_destroy(NULL);
  if (!bad) puts("library contract: ok");
  return bad;
}
CEOF
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "${NNC_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null &&
  SAN="-fsanitize=address,undefined"
if cc -std=c11 -Wall -Wextra -Werror $SAN -I. use.c libemb.a -lcjson -lm -lpthread -o use 2>cc.txt; then
  ./use || die "library contract"
else
  die "compiling against emb.h: $(cat cc.txt)"
fi
[ $fail = 0 ] && echo "bad data: ok"
exit $fail
