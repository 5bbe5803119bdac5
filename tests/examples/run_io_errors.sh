#!/usr/bin/env bash
# run_io_errors.sh — golden tests for the runtime-side user errors of `nnc run`: weights or
# input files that are missing, unreadable, truncated, or do not match the model. Each case
# checks the exact first line of the diagnostics and a non-zero exit status (1, not a crash).
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
REF="$NNC_SRC/tests/examples/ref_nets.py"
MLP="$NNC_SRC/examples/mlp.nn"
T=$(mktemp -d)
trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"' EXIT
fail=0

"$PY" "$REF" gen mlp 7 "$T" || { echo "FAIL: generating data" >&2; exit 1; }
W="$T/weights.safetensors" X="$T/x.npy" L="$T/label.npy" # batch 5

# case DESC EXPECTED_FIRST_LINE -- nnc run arguments...
case_() {
  local desc=$1 want=$2
  shift 3
  local err rc
  err=$("$NNC" run "$@" --out logits="$T/out.npy" 2>&1 >/dev/null)
  rc=$?
  local first=${err%%$'\n'*}
  if [ $rc -ne 1 ]; then
    echo "FAIL: $desc: exit status $rc, expected 1; output:" >&2
    echo "$err" >&2
    fail=1
  elif [ "$first" != "$want" ]; then
    echo "FAIL: $desc:" >&2
    echo "  expected: $want" >&2
    echo "  got:      $first" >&2
    fail=1
  else
    echo "ok: $desc"
  fi
}

# sanity: the good files run (otherwise every case below would pass for the wrong reason)
if ! "$NNC" run "$MLP" --weights "$W" --in x="$X" --in label="$L" --out logits="$T/out.npy"; then
  echo "FAIL: the valid files do not run" >&2
  exit 1
fi

# --- weights file ----------------------------------------------------------------------------
case_ "missing weights file" \
  "nnc: error: $T/nope.safetensors: cannot open: No such file or directory" \
  -- "$MLP" --weights "$T/nope.safetensors" --in x="$X" --in label="$L"

mkdir "$T/dir.safetensors"
case_ "weights path is a directory" \
  "nnc: error: $T/dir.safetensors: is a directory, not a file" \
  -- "$MLP" --weights "$T/dir.safetensors" --in x="$X" --in label="$L"

if [ "$(id -u)" != 0 ]; then # root reads files whatever their mode
  cp "$W" "$T/noread.safetensors"
  chmod 000 "$T/noread.safetensors"
  case_ "unreadable weights file" \
    "nnc: error: $T/noread.safetensors: cannot open: Permission denied" \
    -- "$MLP" --weights "$T/noread.safetensors" --in x="$X" --in label="$L"
fi

case_ "weights path through a file" \
  "nnc: error: $W/w.safetensors: cannot open: Not a directory" \
  -- "$MLP" --weights "$W/w.safetensors" --in x="$X" --in label="$L"

"$PY" "$REF" st-truncate "$W" 5 "$T/t5.safetensors"
case_ "safetensors shorter than its length field" \
  "nnc: error: $T/t5.safetensors: truncated: a safetensors file starts with an 8-byte header length, but the file has only 5 bytes" \
  -- "$MLP" --weights "$T/t5.safetensors" --in x="$X" --in label="$L"

"$PY" "$REF" st-truncate "$W" 40 "$T/t40.safetensors"
hlen=$("$PY" -c 'import struct,sys; print(struct.unpack("<Q", open(sys.argv[1],"rb").read(8))[0])' "$W")
case_ "safetensors cut inside the header" \
  "nnc: error: $T/t40.safetensors: truncated: header length is $hlen bytes but only 32 bytes follow" \
  -- "$MLP" --weights "$T/t40.safetensors" --in x="$X" --in label="$L"

# cut 4 bytes off the data: ref_nets.py writes the tensors in order, fc2.bias ([10] f32,
# 40 bytes) last, so exactly that one runs past the end
size=$(stat -c %s "$W")
"$PY" "$REF" st-truncate "$W" $((size - 4)) "$T/tdata.safetensors"
dlen=$((size - 4 - 8 - hlen))
case_ "safetensors cut inside the data" \
  "nnc: error: $T/tdata.safetensors: tensor 'fc2.bias' data range [$((dlen + 4 - 40)), $((dlen + 4))) exceeds the data section ($dlen bytes); the file is truncated or its header is wrong" \
  -- "$MLP" --weights "$T/tdata.safetensors" --in x="$X" --in label="$L"

"$PY" "$REF" st-drop "$W" fc1.bias "$T/nobias.safetensors"
case_ "weights without a tensor the model needs" \
  "$T/nobias.safetensors: error: missing tensor 'fc1.bias' (f32[512])" \
  -- "$MLP" --weights "$T/nobias.safetensors" --in x="$X" --in label="$L"

"$PY" "$REF" st-reshape "$W" fc1.weight "$T/transposed.safetensors"
case_ "a tensor of the wrong shape" \
  "$T/transposed.safetensors: error: tensor 'fc1.weight' has shape f32[784,512], but the model expects f32[512,784]" \
  -- "$MLP" --weights "$T/transposed.safetensors" --in x="$X" --in label="$L"

# --- inputs ----------------------------------------------------------------------------------
"$PY" "$REF" npy "$T/x748.npy" float32 5 748
case_ "input with a wrong axis size" \
  "$T/x748.npy: error: wrong shape for input 'x': expected f32[5,784] (declared f32[N,784]), got f32[5,748]; set the dims with -D NAME=VALUE if they differ" \
  -- "$MLP" --weights "$W" --in x="$T/x748.npy" --in label="$L"

"$PY" "$REF" npy "$T/img.npy" float32 5 28 28
case_ "input of the wrong rank" \
  "$T/img.npy: error: wrong shape for input 'x': expected f32[5,784] (declared f32[N,784]), got f32[5,28,28]" \
  -- "$MLP" --weights "$W" --in x="$T/img.npy" --in label="$L"

"$PY" "$REF" npy "$T/x6.npy" float32 6 784
case_ "inputs that disagree on the batch dim" \
  "$L: error: axis 0 has size 5, but $T/x6.npy has N=6; the inputs disagree on N" \
  -- "$MLP" --weights "$W" --in x="$T/x6.npy" --in label="$L"

case_ "input whose shape contradicts -D" \
  "$T/x6.npy: error: wrong shape for input 'x': expected f32[4,784] (declared f32[N,784]), got f32[6,784]; set the dims with -D NAME=VALUE if they differ" \
  -- "$MLP" -D N=4 --weights "$W" --in x="$T/x6.npy" --in label="$L"

case_ "unknown input name" \
  "nnc: error: --in image: model 'mlp' has no input named 'image'" \
  -- "$MLP" --weights "$W" --in image="$X" --in label="$L"

# the forward pass needs only the inputs of the reported values: x, not label
case_ "missing input" \
  "$MLP: error: input 'x' has no value; pass --in x=FILE.npy" \
  -- "$MLP" --weights "$W" --in label="$L"

"$PY" "$REF" npy "$T/flabel.npy" float64 5
case_ "non-integer labels" \
  "$T/flabel.npy: error: input 'label' is i32 but element 0 is $("$PY" -c 'import numpy as np,sys; print("%g" % np.load(sys.argv[1])[0])' "$T/flabel.npy"); save integer labels" \
  -- "$MLP" --weights "$W" --in x="$X" --in label="$T/flabel.npy"

printf 'not a numpy file' >"$T/junk.npy"
case_ "input that is not a .npy file" \
  "nnc: error: $T/junk.npy: not a .npy file (it does not start with \\x93NUMPY)" \
  -- "$MLP" --weights "$W" --in x="$T/junk.npy" --in label="$L"

case_ "missing input file" \
  "nnc: error: $T/none.npy: cannot open: No such file or directory" \
  -- "$MLP" --weights "$W" --in x="$T/none.npy" --in label="$L"

exit $fail
