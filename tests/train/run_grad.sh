#!/usr/bin/env bash
# run_grad.sh — `nnc run --grad` on examples/mlp.nn and examples/lenet.nn: the loss and every
# parameter's gradient match an independent NumPy implementation with hand-written
# backpropagation (tests/examples/ref_nets.py, itself checked against finite differences by
# its selftest) to 1e-4 relative, elementwise, for random weights and inputs.
# Both sides start from the same float32 weights and inputs; nnc computes in double and
# writes float32 (relative rounding 6e-8), NumPy computes in float64. atol 1e-9 only matters
# for gradient entries below 1e-5 (the largest are O(0.01..0.5)).
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
REF="$NNC_SRC/tests/examples/ref_nets.py"
CMP="$NNC_SRC/tests/train/compare_st.py"
RTOL=1e-4
ATOL=1e-9
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

for net in mlp lenet; do
  for seed in 3 4; do
    d="$T/$net.$seed"
    mkdir -p "$d"
    "$PY" "$REF" gen "$net" "$seed" "$d" || { echo "FAIL: $net: generating data" >&2; fail=1; continue; }
    "$PY" "$REF" grad "$net" "$d/weights.safetensors" "$d/x.npy" "$d/label.npy" "$d/ref.safetensors" \
      && "$PY" "$REF" forward "$net" "$d/weights.safetensors" "$d/x.npy" "$d/label.npy" "$d" \
      || { echo "FAIL: $net: the NumPy reference failed" >&2; fail=1; continue; }
    if ! "$NNC" run "$NNC_SRC/examples/$net.nn" --grad --weights "$d/weights.safetensors" \
        --in x="$d/x.npy" --in label="$d/label.npy" -o "$d/grads.safetensors" 2>"$d/err"; then
      echo "FAIL: $net (seed $seed): nnc run --grad exited non-zero:" >&2
      cat "$d/err" >&2
      fail=1
      continue
    fi
    echo "$net (seed $seed):"
    "$PY" "$CMP" "$d/grads.safetensors" "$d/ref.safetensors" $RTOL $ATOL --loss "$d/loss.npy" || fail=1
  done
done

# the comparison can fail: one gradient entry off by 1e-3 relative must be caught
d="$T/mlp.3"
if [ -f "$d/grads.safetensors" ]; then
  "$PY" - "$REF" "$d" <<'PYEOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("ref_nets", sys.argv[1])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
d = sys.argv[2]
t = r.st_read(f"{d}/grads.safetensors")
w = t["fc1.weight"].copy()
i = abs(w).argmax()
w.flat[i] *= 1 + 1e-3
t["fc1.weight"] = w
r.write_file(f"{d}/bad.safetensors", r.st_bytes(t))
PYEOF
  if "$PY" "$CMP" "$d/bad.safetensors" "$d/ref.safetensors" $RTOL $ATOL --loss "$d/loss.npy" >/dev/null; then
    echo "FAIL: a gradient entry off by 1e-3 relative went unnoticed" >&2
    fail=1
  else
    echo "ok: a gradient entry off by 1e-3 relative is detected"
  fi
fi

# --grad with the loss named explicitly gives the same file
d="$T/mlp.4"
if [ -f "$d/grads.safetensors" ]; then
  if "$NNC" run "$NNC_SRC/examples/mlp.nn" --grad --loss loss --weights "$d/weights.safetensors" \
      --in x="$d/x.npy" --in label="$d/label.npy" -o "$d/grads2.safetensors"; then
    "$PY" "$CMP" "$d/grads2.safetensors" "$d/grads.safetensors" 0 0 >/dev/null \
      || { echo "FAIL: --loss loss differs from the train section's minimize" >&2; fail=1; }
  else
    echo "FAIL: --grad --loss loss exited non-zero" >&2
    fail=1
  fi
fi
exit $fail
