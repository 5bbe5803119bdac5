#!/usr/bin/env bash
# The compiled step's estimate is the kernel plan's and a program's profile is that plan:
# for several examples, forward and training step,
#  - `nnc cost --json`'s estimate has one kernel per kernel of `nnc emit --emit=kernels`, in
#    order and under its name, and the bytes each reads and writes equal a recomputation
#    from the printed plan alone (reads: the size written by the producing kernel, or the
#    tensor table's size for parameters and inputs; writes: the printed sizes; copies: their
#    bytes both ways), so the sums equal too; a folded constant (region const) has no size
#    in the text: a kernel reading one must read at least 4 bytes more per constant;
#  - `prog bench --profile --json` of the built program lists exactly those kernels (names,
#    order through their indices, count), each with a time, and its estimates sum to the
#    estimate `nnc cost --threads 1` gives for the step.
# Nothing here is timed.
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME="$tmp/cfg" # the built-in host estimate: the same figures everywhere
PY=/usr/bin/python3
check() { # FILE NAME MODE(forward|train) [-D ...]
  local nn=$1 name=$2 mode=$3
  shift 3
  local tr=()
  [ "$mode" = train ] && tr=(--train)
  "$NNC" emit --emit=kernels "$nn" "${tr[@]}" "$@" > "$tmp/$name.$mode.plan"
  "$NNC" cost "$nn" "${tr[@]}" "$@" --threads 1 --json > "$tmp/$name.$mode.cost"
  "$tmp/$name" bench "${tr[@]}" --profile --json --iters 3 --threads 1 > "$tmp/$name.$mode.prof"
  $PY - "$tmp/$name.$mode.plan" "$tmp/$name.$mode.cost" "$tmp/$name.$mode.prof" "$name $mode" <<'PYEOF'
import json, re, sys
plan, cost, prof, what = open(sys.argv[1]).read(), json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), sys.argv[4]
size = {"f32": 4, "i32": 4, "i64": 8, "f64": 8, "f16": 2, "bf16": 2, "i8": 1, "u8": 1, "bool": 1}
tensors = {}
for reg, off, dt, shape in re.findall(r"^  \w+\s+(params|io)\+(\d+) (\w+)\[([\d,]*)\] ", plan, re.M):
    n = 1
    for d in filter(None, shape.split(",")): n *= int(d)
    tensors[(reg, int(off))] = n * size[dt]
blocks = re.split(r"^  (?=k\d+ )", plan.split("kernels of", 1)[1], flags=re.M)[1:]
written, kernels = {}, []
for b in blocks:
    head = b.split("\n", 1)[0]
    idx, kind = re.match(r"k(\d+) (\w+)", head).groups()
    rd = wr = nconst = 0
    if kind == "copy":
        rd = wr = int(re.search(r"\((\d+) bytes\)", head).group(1))
    for line in b.split("\n"):
        line = line.strip()
        if line.startswith("writes"):
            for vid, reg, off, nb in re.findall(r"%(\d+) (\w+)\+(\d+) \((\d+) bytes\)", line):
                written[vid] = int(nb)
                wr += int(nb)
        elif line.startswith("reads"):
            for vid, reg, off in re.findall(r"%(\d+) (\w+)\+(\d+)", line):
                if reg == "const": nconst += 1  # folded constants: the text has no size
                else: rd += written[vid] if vid in written else tensors[(reg, int(off))]
    kernels.append((int(idx), kind, rd, wr, nconst))
est = cost["estimate"]["kernels"]
bad = []
if [k[0] for k in kernels] != list(range(len(kernels))): bad.append("plan kernels out of order")
if len(est) != len(kernels): bad.append(f"cost has {len(est)} kernels, the plan {len(kernels)}")
for (i, kind, rd, wr, nc), e in zip(kernels, est):
    if not e["name"].startswith(f"k{i} {kind} "): bad.append(f"k{i}: cost names it {e['name']!r}")
    if nc:  # each constant read adds at least one element
        rd = e["read"] if e["read"] >= rd + 4 * nc and (e["read"] - rd) % 4 == 0 else -1
    if (e["read"], e["written"]) != (rd, wr):
        bad.append(f"k{i}: cost reads/writes {e['read']:.0f}/{e['written']:.0f}, the plan {rd}/{wr}")
tot = sum((e["read"] if k[4] else k[2]) + k[3] for k, e in zip(kernels, est))
if cost["estimate"]["bytes"] != tot: bad.append(f"bytes {cost['estimate']['bytes']} != plan {tot}")
pk = sorted(prof["kernels"], key=lambda k: k["index"])
if [k["index"] for k in pk] != list(range(len(kernels))): bad.append("profile indices != plan kernels")
if [k["name"] for k in pk] != [e["name"] for e in est]: bad.append("profile names != plan names")
if any(not (k["time_s"] > 0) for k in pk): bad.append("a kernel without a measured time")
if any(k["bytes"] != e["read"] + e["written"] for k, e in zip(pk, est)): bad.append("profile bytes != plan bytes")
s = sum(k["estimate_s"] for k in pk)
if abs(s - cost["estimate"]["time"]) > 1e-9 * max(1.0, s): bad.append(f"profile estimate {s} != cost estimate {cost['estimate']['time']}")
print(f"{what}: {len(kernels)} kernels, {tot} bytes" + ("" if not bad else ": " + "; ".join(bad)))
sys.exit(1 if bad else 0)
PYEOF
}
for ex in mlp lenet char_lm; do
  "$NNC" build "$NNC_SRC/examples/$ex.nn" -o "$tmp/$ex"
  check "$NNC_SRC/examples/$ex.nn" "$ex" forward
  check "$NNC_SRC/examples/$ex.nn" "$ex" train
done
"$NNC" build "$NNC_SRC/examples/gpt2_block.nn" -D N=1 -D T=16 -o "$tmp/gpt2"
check "$NNC_SRC/examples/gpt2_block.nn" gpt2 forward -D N=1 -D T=16
# a depthwise convolution fused into its pointwise reader (where the host's tiles fuse it):
# the depthwise's reads and the projection's writes, nothing between them
"$NNC" build "$NNC_SRC/tests/kernels/dw_pw_fused.nn" -o "$tmp/dpf"
check "$NNC_SRC/tests/kernels/dw_pw_fused.nn" dpf forward
# --svg: every kernel with FLOPs and bytes, measured and estimated, on the roofline
"$tmp/lenet" bench --train --profile --svg "$tmp/l.svg" --iters 2 --threads 1 > /dev/null
$PY - "$tmp/l.svg" "$tmp/lenet.train.cost" <<'PYEOF'
import json, re, sys
svg = open(sys.argv[1]).read()
ks = json.load(open(sys.argv[2]))["estimate"]["kernels"]
want = sorted(i for i, k in enumerate(ks) if k["flops"] > 0 and k["read"] + k["written"] > 0)
for cls in ("measured", "estimate"):
    got = sorted(int(i) for i in re.findall(r'class="%s" data-kernel="(\d+)"' % cls, svg))
    if got != want: sys.exit(f"svg {cls} kernels {got} != {want}")
if 'class="roof"' not in svg or not svg.rstrip().endswith("</svg>"): sys.exit("svg: no roof or truncated")
print(f"svg: {len(want)} kernels")
PYEOF
"$tmp/lenet" bench --profile --svg "$tmp/none/x.svg" --iters 2 > /dev/null 2> "$tmp/err" && { echo "svg into a missing directory: exit 0"; exit 1; }
grep -q "lenet bench: error: .*none/x.svg" "$tmp/err" || { echo "svg error: $(cat "$tmp/err")"; exit 1; }
# the option errors
"$tmp/mlp" bench --json > /dev/null 2> "$tmp/err" && { echo "bench --json without --profile: exit 0"; exit 1; }
grep -q -- "--json is an output of --profile" "$tmp/err" || { echo "bench --json: $(cat "$tmp/err")"; exit 1; }
# the library's profiling call: mlp_profile, then the kernel names and times of a step
"$NNC" build "$NNC_SRC/examples/mlp.nn" --lib -o "$tmp/libmlp.a"
cat > "$tmp/use.c" <<'CEOF'
#include <stdio.h>
#include "mlp.h"
int main(void) {
  mlp_ctx *c = mlp_create_threads(1);
  if (!c || mlp_init(c, 1) || mlp_profile(c, 1)) return 1;
  float loss;
  const void *in[2] = {0};
  void *out[1] = {0};
  for (int train = 0; train < 2; train++) {
    if (train ? rt_ctx_train_step(c, in, &loss) : rt_ctx_infer(c, MLP_BATCH, in, out)) return 1;
    double t[64];
    int n = mlp_profile_last(c, train, t, 64);
    for (int i = 0; i < n; i++) {
      double est = -1;
      const char *name = mlp_kernel_name(c, train, i, &est);
      if (!name || !(t[i] >= 0) || !(est > 0)) return 2;
      printf("%s %s\n", train ? "train" : "forward", name);
    }
    if (mlp_kernel_name(c, train, n, NULL)) return 3;
  }
  mlp_profile(c, 0);
  double t[4];
  if (mlp_profile_last(c, 0, t, 4) != 0) return 4; /* off: nothing */
  mlp_destroy(c);
  return 0;
}
CEOF
SAN=""
grep -q 'NNC_SANITIZE:BOOL=ON' "${NNC_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null &&
  SAN="-fsanitize=address,undefined"
cc -std=c11 -Wall -Wextra -Werror $SAN -I"$tmp" "$tmp/use.c" "$tmp/libmlp.a" -lcjson -lm -lpthread \
  -o "$tmp/use"
"$tmp/use" > "$tmp/lib.txt" || { echo "program using mlp_profile: exit $?"; exit 1; }
$PY - "$tmp/lib.txt" "$tmp/mlp.forward.cost" "$tmp/mlp.train.cost" <<'PYEOF'
import json, sys
got = open(sys.argv[1]).read().split("\n")[:-1]
want = [f"{m} {k['name']}" for m, f in (("forward", sys.argv[2]), ("train", sys.argv[3]))
        for k in json.load(open(f))["estimate"]["kernels"]]
print(f"library: {len(got)} kernels named")
sys.exit(0 if got == want else 1)
PYEOF
echo "profile = plan: ok"
