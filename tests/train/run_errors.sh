#!/usr/bin/env bash
# run_errors.sh — `nnc run --grad` / `--train` usage and data errors: the exact message and
# exit status (2: usage, 1: the model or the files are wrong) of each. Runs in a temporary
# directory on a copy of examples/mlp.nn so the file names in the messages are fixed.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
cp "$NNC_SRC/examples/mlp.nn" mlp.nn
sed '/^train/,$d' mlp.nn >notrain.nn
"$PY" - <<'PYEOF' || exit 1
import numpy as np
np.save("x.npy", np.zeros((100, 784), np.float32))
np.save("x783.npy", np.zeros((100, 783), np.float32))
np.save("xflat.npy", np.zeros((100,), np.float32))
np.save("y.npy", np.arange(100, dtype=np.int32) % 10)
np.save("y90.npy", np.zeros(90, np.int32))
np.save("yhalf.npy", np.full(100, 0.5, np.float32))
PYEOF
fail=0
n=0

# expect STATUS 'MESSAGE' ARGS...: nnc run ARGS exits with STATUS and prints exactly MESSAGE
# (the lines of stderr up to "N errors generated.") to stderr
expect() {
  local want_rc=$1 want=$2
  shift 2
  n=$((n + 1))
  "$NNC" run "$@" >out 2>err
  local rc=$?
  local got
  got=$(grep -v '^[0-9]* errors\? generated\.$' err)
  if [ "$rc" != "$want_rc" ] || [ "$got" != "$want" ]; then
    echo "FAIL: nnc run $*" >&2
    echo "  expected status $want_rc and: $want" >&2
    echo "  got status $rc and: $got" >&2
    fail=1
  fi
}
D=(--data x=x.npy --data label=y.npy)
I=(--in x=x.npy --in label=y.npy)

# usage
expect 2 "nnc run: error: --grad and --train exclude each other; give one" \
  mlp.nn --grad --train --seed 1
expect 2 "nnc run: error: -o is only used with --grad" mlp.nn --seed 1 "${I[@]}" -o g.safetensors
expect 2 "nnc run: error: --loss is only used with --grad or --train" mlp.nn --seed 1 "${I[@]}" --loss loss
expect 2 "nnc run: error: --data is only used with --train" mlp.nn --seed 1 --grad --data x=x.npy
expect 2 "nnc run: error: --epochs is only used with --train" mlp.nn --seed 1 --grad "${I[@]}" --epochs 2
expect 2 "nnc run: error: --lr is only used with --train" mlp.nn --seed 1 "${I[@]}" --lr 0.1
expect 2 "nnc run: error: --save-weights is only used with the forward pass or --train" \
  mlp.nn --grad --seed 1 "${I[@]}" --save-weights w.safetensors
expect 2 "nnc run: error: give --weights FILE.safetensors or --seed S for the parameters" \
  mlp.nn --grad "${I[@]}"
expect 2 "nnc run: error: --train reads its inputs from --data NAME=FILE.npy, not --in" \
  mlp.nn --train "${I[@]}" --epochs 1 --batch 10
expect 2 "nnc run: error: --train needs the data: --data NAME=FILE.npy for each input" \
  mlp.nn --train --epochs 1 --batch 10
expect 2 "nnc run: error: --train needs --epochs E and --batch B" mlp.nn --train "${D[@]}" --batch 10
expect 2 "nnc run: error: --batch expects a positive integer, got '0'" mlp.nn --train "${D[@]}" --epochs 1 --batch 0
expect 2 "nnc run: error: --lr expects a positive number, got '-1'" mlp.nn --train "${D[@]}" --epochs 1 --batch 10 --lr -1
expect 2 "nnc run: error: --data x is given twice" mlp.nn --train --data x=x.npy --data x=x.npy --epochs 1 --batch 10

# the loss
expect 1 "notrain.nn: error: model 'mlp' has no train section with 'minimize'; name the loss with --loss NAME" \
  notrain.nn --grad --seed 1 "${I[@]}"
expect 1 "nnc: error: --loss nope: model 'mlp' has no value named 'nope'" \
  mlp.nn --grad --seed 1 "${I[@]}" --loss nope
expect 1 "nnc: error: --loss nope: model 'mlp' has no value named 'nope'" \
  mlp.nn --train "${D[@]}" --epochs 1 --batch 10 --loss nope
expect 1 "notrain.nn: error: model 'mlp' has no train section; --train needs one, e.g. 'train mlp { minimize LOSS  optimizer adam(lr = 1e-3) }'" \
  notrain.nn --train "${D[@]}" --epochs 1 --batch 10

# the data
expect 1 "x783.npy: error: each sample of input 'x' must have shape [784] (the model declares f32[N,784]; axis 0 is the batch), but the array f32[100,783] has samples of shape [783]" \
  mlp.nn --train --data x=x783.npy --data label=y.npy --epochs 1 --batch 10
expect 1 "xflat.npy: error: each sample of input 'x' must have shape [784] (the model declares f32[N,784]; axis 0 is the batch), but the array f32[100] has samples of shape []" \
  mlp.nn --train --data x=xflat.npy --data label=y.npy --epochs 1 --batch 10
expect 1 "y90.npy: error: has 90 samples (axis 0), but x.npy has 100; every --data array needs one row per sample" \
  mlp.nn --train --data x=x.npy --data label=y90.npy --epochs 1 --batch 10
expect 1 "y.npy: error: --data lab: model 'mlp' has no input named 'lab'
note: the model's inputs are: x label" \
  mlp.nn --train --data x=x.npy --data lab=y.npy --epochs 1 --batch 10
expect 1 "mlp.nn: error: input 'label' has no data; pass --data label=FILE.npy" \
  mlp.nn --train --data x=x.npy --epochs 1 --batch 10
expect 1 "yhalf.npy: error: input 'label' is i32 but element 0 is 0.5; save integer labels" \
  mlp.nn --train --data x=x.npy --data label=yhalf.npy --epochs 1 --batch 10
expect 1 "x.npy: error: the data set has 100 samples, fewer than --batch 200" \
  mlp.nn --train "${D[@]}" --epochs 1 --batch 200
expect 1 "nnc: error: -D N=32 contradicts --batch 10 (N is the batch dim of input 'x')" \
  mlp.nn --train "${D[@]}" --epochs 1 --batch 10 -D N=32
expect 1 "nnc: error: nope.safetensors: cannot open: No such file or directory" \
  mlp.nn --train "${D[@]}" --epochs 1 --batch 10 --weights nope.safetensors

# optimizer state: all of it or none
"$NNC" run mlp.nn --train "${D[@]}" --epochs 1 --batch 50 --save-weights w.safetensors >/dev/null 2>&1 \
  && "$PY" - <<'PYEOF' || { echo "FAIL: preparing a partial state file" >&2; fail=1; }
import importlib.util, os
spec = importlib.util.spec_from_file_location(
    "ref_nets", os.path.join(os.environ["NNC_SRC"], "tests/examples/ref_nets.py"))
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
t = r.st_read("w.safetensors")
del t["optimizer.step"]  # (st_bytes would write the 0-d step as shape [1])
r.write_file("partial.safetensors", r.st_bytes(t))
PYEOF
expect 1 "partial.safetensors: error: holds 8 of the 9 optimizer state tensors of adam; give all of them to resume training, or none to start the state at zero" \
  mlp.nn --train "${D[@]}" --epochs 1 --batch 50 --weights partial.safetensors

echo "$n error cases checked"
exit $fail
