#!/usr/bin/env bash
# run_train.sh — `nnc run --train` on examples/mlp.nn.
#  1. Learning: 10 Gaussian clusters in 784 dimensions (class means N(0, 0.15^2 I), unit
#     noise; tests/train/train_ref.py blobs), 1000 training samples, batch 48 (20 steps, 40
#     samples dropped per epoch), 3 epochs of the model's own adam(lr = 1e-3) from random
#     PyTorch-style weights. The mean loss of the last epoch must fall below 0.3 (chance:
#     ln 10 = 2.30), the training accuracy of the last epoch reach 0.95, and the accuracy on
#     500 held-out samples, computed by NumPy from the saved weights, reach 0.85 (chance
#     0.10); a correct run gives about 0.08, 1.00 and 0.93.
#     These thresholds alone catch gross errors (a wrong sign, a missing or transposed
#     weight gradient) but not every wrong gradient: with the ReLU rule replaced by a wrong
#     one the first layer still gets a descent-like direction and the second layer, whose
#     gradient is right, learns the clusters anyway (tried: loss 0.21, accuracy 0.999,
#     held-out 0.93). So the same run is also replayed step for step in NumPy
#     (train_ref.py train: the same splitmix64 Fisher-Yates shuffle, hand-written backprop
#     from ref_nets.py, Adam from its formulas): the per-epoch losses and accuracies and
#     the final parameters and Adam state must match to 1e-4 relative, which a wrong
#     gradient entry anywhere cannot (its Adam update moves by O(lr)).
#  2. Full batch with --lr: 3 steps (64 samples, --batch 64, --lr 0.01) match 3 Adam steps
#     in NumPy to 1e-4 relative — parameters, adam_m and adam_v — and optimizer.step is 3.
#  3. Resuming: 2 epochs, then 1 more from the saved weights + optimizer state, equals the
#     3 steps of part 2 (same rtol; atol 2e-8 on the parameters for the float32 rounding of the saved
#     weights, 1e-13 on the state).
#  4. Reproducibility: mini-batch training with the same --seed gives the same file twice;
#     another seed shuffles differently and gives different weights.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
REF="$NNC_SRC/tests/examples/ref_nets.py"
TR="$NNC_SRC/tests/train/train_ref.py"
CMP="$NNC_SRC/tests/train/compare_st.py"
MLP="$NNC_SRC/examples/mlp.nn"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

"$PY" "$TR" blobs 1 1000 "$T/x.npy" "$T/y.npy" && "$PY" "$TR" blobs 2 500 "$T/vx.npy" "$T/vy.npy" \
  && "$PY" "$TR" blobs 3 64 "$T/sx.npy" "$T/sy.npy" && mkdir "$T/w0" && "$PY" "$REF" gen mlp 5 "$T/w0" \
  || { echo "FAIL: generating the data" >&2; exit 1; }

# 1. learning, and the whole shuffled mini-batch run replayed in NumPy
if "$NNC" run "$MLP" --train --data x="$T/x.npy" --data label="$T/y.npy" --epochs 3 --batch 48 \
    --seed 1 --weights "$T/w0/weights.safetensors" --save-weights "$T/w.safetensors" \
    >"$T/out" 2>"$T/err"; then
  cat "$T/out"
  "$PY" "$TR" train "$T/w0/weights.safetensors" "$T/x.npy" "$T/y.npy" 3 48 1 0.001 \
    "$T/ref_w.safetensors" >"$T/ref_out" || bad "NumPy training replay"
  "$PY" - "$T/out" "$T/err" "$T/ref_out" <<'PYEOF' || fail=1
import re, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("epoch ")]
ep = [re.fullmatch(r"epoch (\d+)/3: loss (\S+)  accuracy (\S+)\n", l) for l in lines]
if len(ep) != 3 or not all(ep):
    sys.exit(f"FAIL: expected 3 lines 'epoch E/3: loss L  accuracy A', got {lines!r}")
ok = True
ref = [re.fullmatch(r"epoch \d+: loss (\S+)  accuracy (\S+)\n", l) for l in open(sys.argv[3])]
for e, (m, r) in enumerate(zip(ep, ref)):
    # printed with 6 decimals (loss) and 4 (accuracy)
    if abs(float(m[2]) - float(r[1])) > 1e-6 + 1e-4 * float(r[1]) or \
            abs(float(m[3]) - float(r[2])) > 6e-5:
        print(f"FAIL: epoch {e + 1}: nnc loss {m[2]} accuracy {m[3]}, "
              f"NumPy loss {r[1]} accuracy {r[2]}")
        ok = False
loss, acc = float(ep[-1][2]), float(ep[-1][3])
good = loss < 0.3 and acc >= 0.95
ok = ok and good
print(f"{'ok' if good else 'FAIL'}: last epoch: loss {loss} (< 0.3), training accuracy {acc} "
      f"(>= 0.95)")
note = ("note: 1000 samples in batches of 48: 20 steps per epoch; the last 40 samples of "
        "each shuffled epoch are not used\n")
if open(sys.argv[2]).read() != note:
    print(f"FAIL: expected stderr {note!r}, got {open(sys.argv[2]).read()!r}")
    ok = False
sys.exit(0 if ok else 1)
PYEOF
  echo "60 shuffled mini-batch steps against NumPy:"
  "$PY" "$CMP" "$T/w.safetensors" "$T/ref_w.safetensors" 1e-4 1e-9 \
    fc1.weight fc1.bias fc2.weight fc2.bias fc1.weight.adam_m fc1.weight.adam_v || fail=1
  acc=$("$PY" "$TR" accuracy "$T/w.safetensors" "$T/vx.npy" "$T/vy.npy")
  if "$PY" -c "import sys; sys.exit(0 if float('$acc') >= 0.85 else 1)"; then
    echo "ok: held-out accuracy $acc (>= 0.85)"
  else
    bad "held-out accuracy $acc < 0.85"
  fi
  "$PY" "$TR" show "$T/w.safetensors" optimizer.step | grep -qx '() \[60.\]' \
    || bad "optimizer.step after 3 x 20 steps: $("$PY" "$TR" show "$T/w.safetensors" optimizer.step)"
else
  bad "training exited non-zero:"
  cat "$T/err" >&2
fi

# 2. exactness against NumPy
run3() { # run3 WEIGHTS EPOCHS OUT
  "$NNC" run "$MLP" --train --data x="$T/sx.npy" --data label="$T/sy.npy" --batch 64 --lr 0.01 \
    --weights "$1" --epochs "$2" --save-weights "$3" >/dev/null
}
"$PY" "$TR" adam "$T/w0/weights.safetensors" "$T/sx.npy" "$T/sy.npy" 3 0.01 "$T/ref3.safetensors" \
  || bad "NumPy Adam reference"
if run3 "$T/w0/weights.safetensors" 3 "$T/s3.safetensors"; then
  echo "3 full-batch adam steps against NumPy:"
  "$PY" "$CMP" "$T/s3.safetensors" "$T/ref3.safetensors" 1e-4 1e-9 \
    fc1.weight fc1.bias fc2.weight fc2.bias fc1.weight.adam_m fc1.weight.adam_v fc1.bias.adam_m \
    fc1.bias.adam_v fc2.weight.adam_m fc2.weight.adam_v fc2.bias.adam_m fc2.bias.adam_v || fail=1
  "$PY" "$TR" show "$T/s3.safetensors" optimizer.step | grep -qx '() \[3.\]' \
    || bad "optimizer.step after 3 steps: $("$PY" "$TR" show "$T/s3.safetensors" optimizer.step)"
else
  bad "--train of 3 full-batch steps exited non-zero"
fi

# 3. resuming from saved weights and optimizer state
if run3 "$T/w0/weights.safetensors" 2 "$T/s2.safetensors" \
    && run3 "$T/s2.safetensors" 1 "$T/s21.safetensors" 2>"$T/err"; then
  grep -qx "note: resuming the adam state from $T/s2.safetensors" "$T/err" \
    || bad "no resume note: $(cat "$T/err")"
  echo "2 + 1 resumed steps against NumPy:"
  # atol 2e-8: the resumed run starts from the float32-rounded file (weights up to 0.07)
  "$PY" "$CMP" "$T/s21.safetensors" "$T/ref3.safetensors" 1e-4 2e-8 \
    fc1.weight fc1.bias fc2.weight fc2.bias || fail=1
  "$PY" "$CMP" "$T/s21.safetensors" "$T/ref3.safetensors" 1e-4 1e-13 \
    fc1.weight.adam_m fc1.weight.adam_v fc2.weight.adam_m fc2.weight.adam_v || fail=1
else
  bad "resumed training exited non-zero"
fi

# 4. reproducibility of the shuffled order
small() { # small SEED OUT
  "$NNC" run "$MLP" --train --data x="$T/sx.npy" --data label="$T/sy.npy" --batch 16 --epochs 2 \
    --seed "$1" --save-weights "$2" >/dev/null
}
if small 7 "$T/a.safetensors" && small 7 "$T/b.safetensors" && small 8 "$T/c.safetensors"; then
  cmp -s "$T/a.safetensors" "$T/b.safetensors" || bad "the same --seed gave different weights"
  cmp -s "$T/a.safetensors" "$T/c.safetensors" && bad "--seed 7 and 8 gave identical weights"
  echo "ok: --seed reproduces the run; another seed changes it"
else
  bad "mini-batch training exited non-zero"
fi
exit $fail
