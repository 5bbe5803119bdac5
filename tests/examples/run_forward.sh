#!/usr/bin/env bash
# run_forward.sh — `nnc run` of examples/mlp.nn and examples/lenet.nn with random weights
# (safetensors) and inputs (.npy) matches an independent NumPy implementation of the same
# networks (tests/examples/ref_nets.py) to 1e-5 relative: logits and the cross-entropy loss.
# The weights and inputs are float32 in the files, so both sides start from the same values;
# nnc accumulates in double and writes float32, NumPy computes in float64.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
REF="$NNC_SRC/tests/examples/ref_nets.py"
RTOL=1e-5
ATOL=1e-7 # only matters for outputs within ~1e-2 of zero; the logits are O(0.1..1)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

for net in mlp lenet; do
  for seed in 1 2; do
    d="$T/$net.$seed"
    mkdir -p "$d"
    "$PY" "$REF" gen "$net" "$seed" "$d" || { echo "FAIL: $net: generating data" >&2; fail=1; continue; }
    "$PY" "$REF" forward "$net" "$d/weights.safetensors" "$d/x.npy" "$d/label.npy" "$d" \
      || { echo "FAIL: $net: the NumPy reference failed" >&2; fail=1; continue; }
    if ! "$NNC" run "$NNC_SRC/examples/$net.nn" --weights "$d/weights.safetensors" \
        --in x="$d/x.npy" --in label="$d/label.npy" \
        --out logits="$d/nnc_logits.npy" --out loss="$d/nnc_loss.npy" 2>"$d/err"; then
      echo "FAIL: $net (seed $seed): nnc run exited non-zero:" >&2
      cat "$d/err" >&2
      fail=1
      continue
    fi
    echo "$net (seed $seed):"
    "$PY" "$REF" compare "$d/nnc_logits.npy" "$d/logits.npy" $RTOL $ATOL || fail=1
    "$PY" "$REF" compare "$d/nnc_loss.npy" "$d/loss.npy" $RTOL $ATOL || fail=1
  done
done

# the batch dim N is bound from the input file: a batch of 5 ran above (the default is
# larger), and a run with -D N=5 must agree with it exactly
d="$T/mlp.1"
if [ -f "$d/nnc_logits.npy" ]; then
  if "$NNC" run "$NNC_SRC/examples/mlp.nn" -D N=5 --weights "$d/weights.safetensors" \
      --in x="$d/x.npy" --in label="$d/label.npy" --out logits="$d/nnc_logits_D.npy"; then
    "$PY" "$REF" compare "$d/nnc_logits_D.npy" "$d/nnc_logits.npy" 0 0 || fail=1
  else
    echo "FAIL: mlp with -D N=5 exited non-zero" >&2
    fail=1
  fi
fi

# a test that cannot fail proves nothing: corrupt one weight and the comparison must fail
d="$T/mlp.2"
if [ -f "$d/weights.safetensors" ]; then
  "$PY" - "$REF" "$d" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("ref_nets", sys.argv[1])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
d = sys.argv[2]
t = r.st_read(f"{d}/weights.safetensors")
t["fc2.bias"] = t["fc2.bias"].copy()
t["fc2.bias"][3] += 1e-3
r.write_file(f"{d}/bad.safetensors", r.st_bytes(t))
EOF
  if "$NNC" run "$NNC_SRC/examples/mlp.nn" --weights "$d/bad.safetensors" \
      --in x="$d/x.npy" --in label="$d/label.npy" --out logits="$d/bad_logits.npy"; then
    if "$PY" "$REF" compare "$d/bad_logits.npy" "$d/logits.npy" $RTOL $ATOL >/dev/null; then
      echo "FAIL: a perturbed weight went unnoticed by the comparison" >&2
      fail=1
    else
      echo "ok: a perturbed weight (1e-3 on one bias) is detected"
    fi
  else
    echo "FAIL: mlp with perturbed weights exited non-zero" >&2
    fail=1
  fi
fi
exit $fail
