#!/usr/bin/env bash
# A built program's `train --val`: after every epoch, the held-out loss (and accuracy for a
# classifier) of the forward pass in inference mode, on the epoch line on stdout. The last
# epoch's figures must equal the interpreter's on the weights that epoch saved: the loss of
# `nnc run --grad --mode eval` (1e-5 relative) and the accuracy of `nnc run --out logits`
# (exact, over the positions whose label is not ignored). Held-out sets of 21 and 7 samples
# are not multiples of the batch (the last chunk is padded). Also: the note on stderr for
# samples that do not fill a batch, progress never on stdout, the same training with and
# without --val (the held-out pass changes no state), and the refusals.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nn="$NNC_SRC/tests/build/val.nn"
die() { echo "FAIL: $*" >&2; exit 1; }
$py - "$tmp" <<'PY'
import sys, numpy as np
d, r = sys.argv[1], np.random.RandomState(3)
W = r.randn(6, 3)
x = r.randn(71, 6).astype(np.float32)
np.save(d + "/cx.npy", x[:50]); np.save(d + "/cy.npy", (x[:50] @ W).argmax(1).astype(np.int32))
np.save(d + "/cvx.npy", x[50:]); np.save(d + "/cvy.npy", (x[50:] @ W).argmax(1).astype(np.int32))
xs = r.randn(23, 3, 5).astype(np.float32)
ys = r.randint(0, 7, (23, 3)).astype(np.int32)
ys[1, 0] = ys[18, 2] = ys[20, 1] = -100
np.save(d + "/sx.npy", xs[:16]); np.save(d + "/sy.npy", ys[:16])
np.save(d + "/svx.npy", xs[16:]); np.save(d + "/svy.npy", ys[16:])
xr = r.randn(61, 4).astype(np.float32)
tr = (xr @ r.randn(4, 2)).astype(np.float32)
np.save(d + "/rx.npy", xr[:40]); np.save(d + "/rt.npy", tr[:40])
np.save(d + "/rvx.npy", xr[40:]); np.save(d + "/rvt.npy", tr[40:])
PY

# check MODEL X LABEL OUTPUT P L: trains 3 epochs on Px.npy, PL.npy with --val on Pvx.npy,
# PvL.npy and compares the third epoch's figures
check() {
  local m=$1 xi=$2 li=$3 out=$4 p=$5 l=$6
  "$NNC" build "$nn" --model "$m" -o "$tmp/$m" >/dev/null
  "$tmp/$m" train --data "$xi=$tmp/${p}x.npy,$li=$tmp/${p}$l.npy" --epochs 3 --seed 2 \
    --val "$xi=$tmp/${p}vx.npy,$li=$tmp/${p}v$l.npy" --save "$tmp/$m.safetensors" \
    --log "$tmp/$m.csv" >"$tmp/$m.out" 2>"$tmp/$m.err" || die "$m train: $(cat "$tmp/$m.err")"
  grep -q '^epoch 3/3  loss [0-9.]*  val_loss ' "$tmp/$m.out" || die "$m: no epoch line: $(cat "$tmp/$m.out")"
  grep -q "samples/s" "$tmp/$m.err" && die "$m: epoch lines on stderr"
  "$NNC" run "$nn" --model "$m" --grad --mode eval --loss loss --weights "$tmp/$m.safetensors" \
    --in "$xi=$tmp/${p}vx.npy" --in "$li=$tmp/${p}v$l.npy" 2>/dev/null | grep '^loss:' >"$tmp/$m.ref"
  "$NNC" run "$nn" --model "$m" --weights "$tmp/$m.safetensors" --in "$xi=$tmp/${p}vx.npy" \
    --out "$out=$tmp/$m.npy" 2>/dev/null
  $py - "$tmp" "$m" "${p}v$l" <<'PY' || die "$m: held-out figures differ from the interpreter's"
import re, sys, numpy as np
d, m, lab = sys.argv[1:]
line = [l for l in open(f"{d}/{m}.out") if l.startswith("epoch 3/3")][0]
got_loss = float(re.search(r"val_loss (\S+)", line).group(1))
ref_loss = float(open(f"{d}/{m}.ref").read().split()[1])
ok = abs(got_loss - ref_loss) <= 1e-5 * abs(ref_loss) + 5e-7
print(f"{m}: val_loss {got_loss} interpreter {ref_loss}")
acc = re.search(r"val_acc (\S+)", line)
if acc:
    z, y = np.load(f"{d}/{m}.npy"), np.load(f"{d}/{lab}.npy")
    keep = y != -100
    ref_acc = (z.argmax(-1) == y)[keep].mean()
    print(f"{m}: val_acc {acc.group(1)} interpreter {ref_acc:.4f}")
    ok &= acc.group(1) == f"{ref_acc:.4f}"
sys.exit(0 if ok else 1)
PY
}
check val_cls x label logits c y
check val_seq x y logits s y
check val_reg x t pred r t
grep -q 'val_acc' "$tmp/val_reg.out" && die "val_reg: accuracy for a regression"
grep -q '^note: 2 of the 50 samples do not fill a batch of 8' "$tmp/val_cls.err" ||
  die "no dropped-samples note: $(cat "$tmp/val_cls.err")"
grep -q 'note' "$tmp/val_seq.err" && die "a note although 16 samples fill 4 batches"

# the held-out pass leaves training as it was: the same loss log without --val
"$tmp/val_cls" train --data "x=$tmp/cx.npy,label=$tmp/cy.npy" --epochs 3 --seed 2 \
  --log "$tmp/plain.csv" --quiet >"$tmp/q.out" 2>&1
cmp -s "$tmp/plain.csv" "$tmp/val_cls.csv" || die "--val changed the training run"
[ ! -s "$tmp/q.out" ] || die "--quiet printed: $(cat "$tmp/q.out")"

# refusals: a loss that is not of an output, a held-out set without its labels
expect_fail() {
  local want=$1
  shift
  if "$@" >"$tmp/f.out" 2>&1; then die "accepted: $*"; fi
  grep -qF -- "$want" "$tmp/f.out" || die "expected '$want', got: $(cat "$tmp/f.out")"
}
"$NNC" build "$nn" --model val_hidden -o "$tmp/val_hidden" >/dev/null
expect_fail "--val: the loss of model 'val_hidden' is not a cross_entropy or mse of one of its outputs" \
  "$tmp/val_hidden" train --data "x=$tmp/rx.npy,t=$tmp/rt.npy" --val "x=$tmp/rvx.npy,t=$tmp/rvt.npy"
expect_fail "missing --val label=FILE.npy" \
  "$tmp/val_cls" train --data "x=$tmp/cx.npy,label=$tmp/cy.npy" --val "x=$tmp/cvx.npy"
expect_fail "has 50 samples but" \
  "$tmp/val_cls" train --data "x=$tmp/cx.npy,label=$tmp/cy.npy" --val "x=$tmp/cvx.npy,label=$tmp/cy.npy"
echo "ok"
