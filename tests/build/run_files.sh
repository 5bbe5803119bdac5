#!/usr/bin/env bash
# Files a program leaves or accepts: a temporary that a killed writer left beside its target
# is removed on the next write of that target (one a live writer holds stays); a loss log on a
# full disk stops training with the errno text; a checkpoint whose metadata names another
# model or other dims loads with a warning, and is refused with --strict.
set -u
: "${NNC:?}" "${NNC_SRC:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
cd "$T" || exit 1
"$NNC" build "$NNC_SRC/examples/mlp.nn" -o mlp >/dev/null || die "build mlp"
"$NNC" build "$NNC_SRC/examples/mlp.nn" -D N=32 -o mlp32 >/dev/null || die "build mlp -D N=32"
$PY - <<'PYEOF'
import numpy as np
r = np.random.default_rng(0)
np.save("x.npy", r.standard_normal((128, 784)).astype(np.float32))
np.save("y.npy", r.integers(0, 10, 128).astype(np.int32))
PYEOF
# 1. stale temporaries: one left by a dead writer (no lock), one held by a live writer
./mlp init --seed 1 -o ck.safetensors >/dev/null || die "init"
head -c 100000 /dev/zero >ck.safetensors.tmp.dead01
head -c 100 /dev/zero >ck.safetensors.tmp.live01
head -c 100 /dev/zero >other.safetensors.tmp.dead02
$PY - <<'PYEOF' || die "writing over stale temporaries"
import fcntl, subprocess, sys
with open("ck.safetensors.tmp.live01", "rb") as held:
    fcntl.flock(held, fcntl.LOCK_EX)
    subprocess.run(["./mlp", "init", "--seed", "2", "-o", "ck.safetensors"], check=True,
                   stdout=subprocess.DEVNULL)
PYEOF
[ ! -e ck.safetensors.tmp.dead01 ] || die "the dead writer's temporary is still there"
[ -e ck.safetensors.tmp.live01 ] || die "a live writer's temporary was removed"
[ -e other.safetensors.tmp.dead02 ] || die "another target's temporary was removed"
# 2. the loss log on a full disk
./mlp train --seed 1 --data x=x.npy,label=y.npy --log /dev/full --epochs 1 >out 2>err
rc=$?
[ $rc = 1 ] && grep -qF "/dev/full: write failed: No space left on device" err ||
  die "--log /dev/full: exit $rc, $(cat err)"
# 3. checkpoint metadata: other dims, another model
./mlp infer --weights ck.safetensors --in x=x.npy >out 2>err || die "infer: $(cat err)"
[ ! -s err ] || die "a matching checkpoint warns: $(cat err)"
./mlp32 infer --weights ck.safetensors --in x=x.npy >out 2>err || die "infer N=32: $(cat err)"
grep -qF "warning: ck.safetensors: saved with dims N=64, loaded into a build with N=32" err ||
  die "no warning about the dims: $(cat err)"
./mlp32 infer --strict --weights ck.safetensors --in x=x.npy >out 2>err && die "--strict accepted other dims"
grep -qF "error: ck.safetensors: saved with dims N=64, loaded into a build with N=32 (--strict)" err ||
  die "--strict: $(cat err)"
$PY - <<'PYEOF' || die "rewriting the metadata"
import json, struct
b = open("ck.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"]["nnc.model"] = "lenet"
s = json.dumps(h).encode()
s += b" " * (-len(s) % 8)
open("other.safetensors", "wb").write(struct.pack("<Q", len(s)) + s + b[8 + n:])
PYEOF
./mlp infer --strict --weights other.safetensors --in x=x.npy >out 2>err && die "--strict accepted another model"
grep -qF "saved by model 'lenet', loaded into model 'mlp' (--strict)" err || die "another model: $(cat err)"
[ $fail = 0 ] && echo "files: ok"
exit $fail
