#!/usr/bin/env bash
# resume_check.sh NNC — the f16 loss-scale state travels in checkpoints.
# linreg at --precision f16 (dynamic loss scaling from 2^16) with targets of about 30, whose
# gradients overflow f16 at scales 2^16, 2^15 and 2^14: the first three steps are skipped and
# the scale halves to 2^13. Trained for 2 epochs of 4 steps without a break, and for 1 epoch,
# saved (the checkpoint's metadata must say nnc.loss_scale 8192 and 1 good step), then resumed
# from that checkpoint for the second epoch: the final checkpoints' tensors are identical bits.
# Control: the same resume from the checkpoint with the two loss-scale keys removed restarts at
# 2^16 and must end elsewhere; a CPU program's checkpoint (no state) loads with the default.
. "$(dirname "$0")/common.sh"
if ! $PY -c 'import numpy' 2>/dev/null; then echo "skipped: numpy is not installed"; exit 0; fi
LR="$SRC/examples/linreg.nn"
"$NNC" build "$LR" -D N=16 -D D=7 --target cuda-emu --precision f16 -o "$T/f16" || die "build f16"
"$NNC" build "$LR" -D N=16 -D D=7 -o "$T/cpu" || die "build cpu"
$PY - "$T" <<'PYEOF' || die "data"
import sys, numpy as np
t = sys.argv[1]; rng = np.random.default_rng(5)
x = rng.normal(0, 1, (64, 7)).astype(np.float32)
np.save(t + "/x.npy", x)
np.save(t + "/y.npy", (30 * np.sign(x[:, 0]) + x @ np.arange(7)).astype(np.float32))
PYEOF
DATA="X=$T/x.npy,y=$T/y.npy"
# a checkpoint's metadata and tensors (safetensors: header length, JSON header, data)
cat > "$T/st.py" <<'PYEOF'
import json, struct
def read(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); meta = h.pop("__metadata__", {})
    return meta, {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}, h, b[8 + n:]
def write(p, meta, h, data):
    h = dict(h); h["__metadata__"] = meta
    s = json.dumps(h).encode(); s += b" " * (-len(s) % 8)
    open(p, "wb").write(struct.pack("<Q", len(s)) + s + data)
PYEOF
export PYTHONPATH="$T"
run() { "$T/$1" train ${2:+--weights "$2"} --data "$DATA" --epochs "$3" --seed 3 --save "$4" --quiet </dev/null; }
run f16 "" 2 "$T/whole.st" || die "2 epochs"
run f16 "" 1 "$T/half.st" || die "epoch 1"
run f16 "$T/half.st" 1 "$T/resumed.st" || die "resumed epoch 2"
run cpu "" 1 "$T/cpu.st" || die "cpu epoch 1"
run f16 "$T/cpu.st" 1 "$T/from_cpu.st" || die "f16 epoch 2 from the CPU checkpoint"
$PY - "$T" <<'PYEOF' || die "the loss-scale state"
import sys
from st import read, write
t = sys.argv[1]
ok = True
meta, _, h, data = read(t + "/half.st")
print("after epoch 1: scale %s, good steps %s" % (meta.get("nnc.loss_scale"), meta.get("nnc.loss_scale_good_steps")))
ok &= meta.get("nnc.loss_scale") == "8192" and meta.get("nnc.loss_scale_good_steps") == "1"
cpu_meta, _, _, _ = read(t + "/cpu.st")
ok &= "nnc.loss_scale" not in cpu_meta
fc_meta, _, _, _ = read(t + "/from_cpu.st")
print("one epoch from the CPU checkpoint: scale %s (from 2^16 again)" % fc_meta.get("nnc.loss_scale"))
ok &= fc_meta.get("nnc.loss_scale") == "8192" and fc_meta.get("nnc.loss_scale_good_steps") == "1"
for k in ("nnc.loss_scale", "nnc.loss_scale_good_steps"): meta.pop(k)
write(t + "/stripped.st", meta, h, data)
sys.exit(0 if ok else 1)
PYEOF
run f16 "$T/stripped.st" 1 "$T/stripped_resumed.st" || die "resumed from the stripped checkpoint"
$PY - "$T" <<'PYEOF' || die "the resumed run is not the uninterrupted one"
import sys
from st import read
t = sys.argv[1]
(mw, w, _, _), (mr, r, _, _), (ms, s, _, _) = (read(t + f) for f in ("/whole.st", "/resumed.st", "/stripped_resumed.st"))
same = w == r and mw.get("nnc.loss_scale") == mr.get("nnc.loss_scale") and mw.get("nnc.step") == mr.get("nnc.step")
print("resumed vs uninterrupted: %s (scale %s, step %s)" % ("identical bits" if same else "DIFFERENT", mr.get("nnc.loss_scale"), mr.get("nnc.step")))
control = s != w
print("control, resumed without the state: %s (scale %s)" % ("differs, as it must" if control else "SAME", ms.get("nnc.loss_scale")))
sys.exit(0 if same and control else 1)
PYEOF
echo "ok: the f16 loss-scale state resumes from checkpoints"
