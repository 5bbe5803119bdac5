#!/usr/bin/env bash
# run_cost.sh — `nnc cost` end to end on the small examples: JSON schema and figures against
# hand-derived formulas, symbolic scaling with -D, the training step, CSV, matmul-chain
# reassociation, the SVG (parsed, and its circles are exactly the ops of the JSON rows), and
# `nnc probe` writing a host target that `--target` then reads.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
EX="$NNC_SRC/examples"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

if ! "$NNC" cost --help >/dev/null 2>&1; then
  echo "FAIL: 'nnc cost' is not available (is cmd_cost registered in driver/main.c?)" >&2
  exit 1
fi

# mlp: x[N,784] -> dense 512 -> relu -> dense 10; MACs = N*(784*512 + 512*10)
"$NNC" cost "$EX/mlp.nn" --target a100 --json > "$T/mlp.json" || die "nnc cost mlp.nn"
"$NNC" cost "$EX/mlp.nn" --target a100 --json -D N=128 > "$T/mlp128.json" || die "nnc cost -D N=128"
"$NNC" cost "$EX/mlp.nn" --target a100 --json --train --per op > "$T/mlp_train.json" || die "--train"
$PY - "$T" <<'PYEOF' || fail=1
import json, sys
t = sys.argv[1]
a = json.load(open(t + "/mlp.json"))
b = json.load(open(t + "/mlp128.json"))
tr = json.load(open(t + "/mlp_train.json"))
bad = []
def check(cond, msg):
    if not cond: bad.append(msg)
P = 784*512 + 512 + 512*10 + 10
N = a["dims"]["N"]
check(a["totals"]["params"] == P, "params %s != %d" % (a["totals"]["params"], P))
check(a["totals"]["fwd_macs"] == N*(784*512 + 512*10), "fwd_macs %s" % a["totals"]["fwd_macs"])
check(a["totals"]["fwd_macs_formula"] == "%d*N" % (784*512 + 512*10), a["totals"]["fwd_macs_formula"])
check(b["totals"]["fwd_macs"] == 128*(784*512 + 512*10), "fwd_macs at N=128")
check(a["totals"]["fwd_flops"] >= 2*a["totals"]["fwd_macs"], "flops < 2*macs")
for k in ["weights", "grads", "optimizer", "activations", "peak"]:
    check(k in a["memory"], "memory." + k + " missing")
check(a["memory"]["weights"] == 4*P, "weights bytes")
check(a["totals"]["train_flops"] is not None and a["totals"]["train_flops"] > a["totals"]["fwd_flops"], "train_flops")
# training step: Adam keeps 2 states per parameter; gradients as large as the weights
m = tr["memory"]
check(m["grads"] == 4*P, "grads %s" % m["grads"])
check(8*P <= m["optimizer"] <= 8*P + 64, "optimizer %s" % m["optimizer"])
check(m["activations"] > 0 and m["peak"] >= m["weights"] + m["grads"] + m["optimizer"], "peak")
check(1 < tr["totals"]["bwd_fwd_ratio"] < 2.2, "bwd/fwd %s" % tr["totals"]["bwd_fwd_ratio"])
ops = tr["ops"]
for r in ops:
    for k in ["name", "op", "shape", "flops", "bytes", "intensity", "bound", "time"]:
        if k not in r: bad.append("op row lacks " + k); break
check(any(r["phase"] == "bwd" for r in ops) and any(r["phase"] == "opt" for r in ops), "phases")
check(abs(sum(r["flops"] for r in ops) - tr["totals"]["train_flops"]) < 1, "rows do not sum to train_flops")
for r in ops:
    if r["bytes"] > 0:
        check(abs(r["intensity"] - r["flops"]/r["bytes"]) <= 1e-9*max(1, r["intensity"]), "intensity of " + r["name"])
for x in bad: print("FAIL: mlp:", x, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF

# CSV: header + one line per op
"$NNC" cost "$EX/mlp.nn" --target a100 --csv --per op > "$T/mlp.csv" || die "--csv"
head -1 "$T/mlp.csv" | grep -q '^name,op,shape,phase,params,flops' || die "csv header: $(head -1 "$T/mlp.csv")"
[ "$(wc -l < "$T/mlp.csv")" -ge 4 ] || die "csv has too few rows"
# per layer (the torchinfo view): every row has its op, output shape, phase and parameters;
# the parameters add up to the model's, and the last row totals every column
"$NNC" cost "$EX/mlp.nn" --target a100 --csv > "$T/layers.csv" || die "--csv per layer"
$PY - "$T/layers.csv" <<'PYEOF' || die "per-layer csv: $(cat "$T/layers.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
body, total = rows[:-1], rows[-1]
fc1 = next(r for r in body if r["name"] == "fc1")
assert fc1["op"] == "matmul" and fc1["shape"] == "f32[N,512]" and fc1["phase"] == "fwd", fc1
assert fc1["params"] == "401920", fc1
assert total["name"] == "total" and int(total["params"]) == 407050, total
for k in ("flops", "macs", "bytes_read", "bytes_written"):
    assert int(total[k]) == sum(int(r[k]) for r in body), k
PYEOF

# --top keeps the K most expensive rows, sorted by time
"$NNC" cost "$EX/lenet.nn" --target v100 --per op --top 3 --json > "$T/top.json" || die "--top"
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["ops"]; t=[x["time"] for x in r]; sys.exit(0 if len(r)==3 and t==sorted(t, reverse=True) else 1)' "$T/top.json" || die "--top 3 rows"

# reassociation: (X^T X) w -> X^T (X w), 2*N*D MACs instead of N*D^2 + D^2
out=$("$NNC" cost "$NNC_SRC/tests/cost/gram.nn" --target cpu-avx2) || die "gram.nn"
echo "$out" | grep -q 'reassociated (X^T·X)·w -> X^T·(X·w)' || die "no reassociation reported: $out"
echo "$out" | grep -q 'forward MACs .* = 2\*N\*D' || die "MACs after reassociation: $out"

# SVG: well-formed, one circle per op with FLOPs and bytes, memory bars
"$NNC" cost "$EX/lenet.nn" --target v100 --train --per op --json --svg "$T/lenet.svg" > "$T/lenet.json" || die "--svg"
$PY - "$T/lenet.svg" "$T/lenet.json" <<'PYEOF' || fail=1
import json, sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
rows = json.load(open(sys.argv[2]))["ops"]
want = sorted((r["node"], r["op"]) for r in rows if r["flops"] > 0 and r["bytes"] > 0)
got = sorted((int(c.getAttribute("data-node")), c.getAttribute("data-op"))
             for c in doc.getElementsByTagName("circle") if c.getAttribute("class") == "op")
bars = [r.getAttribute("data-part") for r in doc.getElementsByTagName("rect") if r.getAttribute("class") == "mem"]
ok = True
if got != want:
    print("FAIL: svg circles %d, ops with flops and bytes %d" % (len(got), len(want)), file=sys.stderr); ok = False
if bars != ["weights", "gradients", "optimizer", "activations", "inputs", "other at the peak"]:
    print("FAIL: memory bars", bars, file=sys.stderr); ok = False
# the most time-consuming ops are labelled by name, the colours explained, bytes in MiB/KiB
labels = {int(t.getAttribute("data-node")) for t in doc.getElementsByTagName("text")
          if t.getAttribute("class") == "label"}
slowest = sorted((r for r in rows if r["flops"] > 0 and r["bytes"] > 0), key=lambda r: -r["time"])[:8]
if not labels or not {r["node"] for r in slowest[:3]} <= labels:
    print("FAIL: labels", sorted(labels), "slowest", [r["node"] for r in slowest], file=sys.stderr); ok = False
legend = [t.firstChild.data for g in doc.getElementsByTagName("g") if g.getAttribute("class") == "legend"
          for t in g.getElementsByTagName("text")]
if len(legend) != 2 or "compute-bound" not in legend[0] or "memory-bound" not in legend[1]:
    print("FAIL: legend", legend, file=sys.stderr); ok = False
texts = " ".join(t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild)
if " MB" in texts or "MiB" not in texts and "KiB" not in texts:
    print("FAIL: byte units", texts, file=sys.stderr); ok = False
W, H = float(doc.documentElement.getAttribute("width")), float(doc.documentElement.getAttribute("height"))
for c in doc.getElementsByTagName("circle"):
    if not (0 <= float(c.getAttribute("cx")) <= W and 0 <= float(c.getAttribute("cy")) <= H):
        print("FAIL: circle outside the canvas:", c.getAttribute("data-name"), file=sys.stderr); ok = False
if not any(p.getAttribute("class") == "roof" for p in doc.getElementsByTagName("polyline")):
    print("FAIL: no roof line", file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
ls "$T"/lenet.svg.tmp* >/dev/null 2>&1 && die "temporary SVG file left behind"

# tiles: one decision per GEMM-like op, with a reason
"$NNC" cost "$EX/lenet.nn" --target a100 --tiles --json > "$T/tiles.json" || die "--tiles"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["tiles"]; sys.exit(0 if len(t)==5 and all(x["reason"] for x in t) else 1)' "$T/tiles.json" || die "tiles of lenet (2 convs + 3 dense)"

# errors: unknown target, --train without a train block
"$NNC" cost "$EX/mlp.nn" --target tpu9 >/dev/null 2>"$T/err" && die "unknown target accepted"
grep -q "unknown target 'tpu9'" "$T/err" || die "unknown target message: $(cat "$T/err")"
"$NNC" cost "$NNC_SRC/tests/cost/gram.nn" --train >/dev/null 2>"$T/err" && die "--train without train block"
grep -q "no 'train gram' block" "$T/err" || die "--train message: $(cat "$T/err")"

# data-parallel: the gradients (4 bytes per trainable parameter) in one 25 MiB bucket, all
# of it after backward; the ring formula recomputed here from the report's own figures
"$NNC" cost "$EX/mlp.nn" --train --target a100 --ranks 4 --link 100Gb/s --json > "$T/dp.json" || die "--ranks"
$PY - "$T/dp.json" <<'PYEOF' || die "data_parallel figures: $(cat "$T/dp.json" | head -c 600)"
import json, sys
d = json.load(open(sys.argv[1])); c = d["data_parallel"]; p = 4
grad = 4 * d["totals"]["params"]
ring = 2 * (p - 1) / p * grad / 12.5e9 + 2 * (p - 1) * c["link_latency"]
ok = c["ranks"] == p and c["grad_bytes"] == grad and c["buckets"] == 1 and abs(c["allreduce_time"] - ring) < 1e-12 \
     and abs(c["exposed_time"] - ring) < 1e-12 and abs(c["step_time"] - c["step_time_1"] - ring) < 1e-12 \
     and abs(c["efficiency"] - c["step_time_1"] / c["step_time"]) < 1e-12
sys.exit(0 if ok else 1)
PYEOF
"$NNC" cost "$EX/mlp.nn" --train --ranks 2 --link nvlink4 | grep -q "scaling efficiency" || die "--ranks text report"
"$NNC" cost "$EX/mlp.nn" --ranks 2 >/dev/null 2>"$T/err"; [ $? = 2 ] || die "--ranks without --train: exit 2"
grep -q "needs --train" "$T/err" || die "--ranks without --train message: $(cat "$T/err")"
"$NNC" cost "$EX/mlp.nn" --train --ranks 2 --link warp9 >/dev/null 2>"$T/err" && die "unknown link accepted"
grep -q "unknown link 'warp9'; known: shm" "$T/err" || die "unknown link message: $(cat "$T/err")"

# --compare: one row per model, each equal to that model's own report
"$NNC" cost --compare "$EX/resnet18.nn" "$EX/mobilenet_v2.nn" -D N=2 --target a100 --json > "$T/cmp.json" || die "--compare"
"$NNC" cost "$EX/mobilenet_v2.nn" -D N=2 --target a100 --json > "$T/mb.json" || die "cost mobilenet_v2"
$PY - "$T/cmp.json" "$T/mb.json" <<'PYEOF' || die "--compare rows: $(head -c 800 "$T/cmp.json")"
import json, sys
c = json.load(open(sys.argv[1]))["models"]; m = json.load(open(sys.argv[2]))["totals"]
ok = [x["model"] for x in c] == ["resnet18", "mobilenet_v2"] and c[0]["params"] == 11689512 \
     and c[1]["params"] == m["params"] == 3504872 and c[1]["flops"] == m["fwd_flops"] and c[1]["batch"] == 2
sys.exit(0 if ok else 1)
PYEOF
"$NNC" cost --compare "$EX/mlp.nn" "$EX/lenet.nn" --train | grep -q "^lenet vs mlp: params x0.15" || die "--compare text"
"$NNC" cost --compare "$EX/mlp.nn" >/dev/null 2>"$T/err"; [ $? = 2 ] || die "--compare with one file: exit 2"
grep -q "takes 2 to 32 .nn files, not 1" "$T/err" || die "--compare one file: $(cat "$T/err")"
# --measure: each model built for this machine and benched; the measured steps side by side
"$NNC" cost --compare "$EX/linreg.nn" "$EX/mlp.nn" -D N=16 --threads 1 --measure --json > "$T/cmpm.json" \
  || die "--compare --measure"
$PY - "$T/cmpm.json" <<'PYEOF' || die "--compare --measure rows: $(head -c 800 "$T/cmpm.json")"
import json, sys
c = json.load(open(sys.argv[1]))["models"]
ok = [x["model"] for x in c] == ["linreg", "mlp"] and all(0 < x["measured_best"] <= x["measured"] < 10 for x in c)
sys.exit(0 if ok else 1)
PYEOF
"$NNC" cost --compare "$EX/linreg.nn" "$EX/mlp.nn" --measure --target a100 >/dev/null 2>"$T/err"; [ $? = 2 ] \
  || die "--measure on another target: exit 2"
grep -q "needs --target host, not 'a100'" "$T/err" || die "--measure target: $(cat "$T/err")"
"$NNC" cost "$EX/mlp.nn" --measure >/dev/null 2>"$T/err"; [ $? = 2 ] || die "--measure alone: exit 2"
# --measure builds under $TMPDIR; an unusable one is a clean error naming it
TMPDIR="$T/nonexistent" "$NNC" cost --compare "$EX/linreg.nn" "$EX/mlp.nn" --measure --threads 1 >/dev/null 2>"$T/err"; [ $? = 1 ] \
  || die "--measure with a missing TMPDIR: exit 1"
grep -q "cannot create a temporary directory $T/nonexistent/nnc-compare-" "$T/err" || die "--measure TMPDIR: $(cat "$T/err")"

# probe: writes the host target (atomically), which --target host then uses
XDG_CONFIG_HOME="$T/cfg" "$NNC" probe --quick > "$T/probe.out" || die "nnc probe"
[ -f "$T/cfg/nnc/host.json" ] || die "probe wrote no $T/cfg/nnc/host.json"
$PY -c 'import json,sys; h=json.load(open(sys.argv[1])); sys.exit(0 if h["name"]=="host" and h["measured"] and h["peak_tflops"]["f32"]>0 and h["mem_bw_gbs"]>0 else 1)' "$T/cfg/nnc/host.json" || die "host.json content"
# every level measured; L1 reads are far faster than DRAM on any machine; the date is recorded.
# The one-thread peak is not several times the all-thread one (a unit or labelling error);
# the bound is loose because a machine shared with other jobs can halve the all-thread figure
$PY -c 'import json,sys,re; h=json.load(open(sys.argv[1])); sys.exit(0 if h["peak_f32_1t_tflops"]>0 and h["peak_f32_1t_tflops"]<=h["peak_tflops"]["f32"]*4 and h["l1_bw_gbs"]>h["mem_bw_gbs"] and h["l2_bw_gbs"]>0 and h["l3_bw_gbs"]>0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", h["measured_at"]) else 1)' "$T/cfg/nnc/host.json" || die "host.json per-level figures: $(cat "$T/cfg/nnc/host.json")"
# the figures from the backend's own code: fork/join, one thread's triad; the GEMM's when the
# noise let the probe solve for them (else absent: the model's defaults apply)
$PY -c 'import json,sys; h=json.load(open(sys.argv[1])); g=[h.get(k) for k in ("pack_bw_gbs","pack_strided_bw_gbs","pack_transposed_bw_gbs","gemm_ukr_eff")]; sys.exit(0 if h["overhead_us"]>0 and h["mem_bw_1t_gbs"]>0 and h["softmax_ns"]>0 and (g==[None]*4 or (min(g)>0 and g[3]<=1)) else 1)' "$T/cfg/nnc/host.json" || die "host.json probe figures: $(cat "$T/cfg/nnc/host.json")"
grep -q "thread pool fork/join" "$T/probe.out" || die "probe output: $(cat "$T/probe.out")"
grep -q "^  [0-9]*-bit " "$T/probe.out" || die "probe prints no per-width table: $(cat "$T/probe.out")"
XDG_CONFIG_HOME="$T/cfg" "$NNC" cost "$EX/mlp.nn" --json > "$T/host.json" || die "cost --target host"
$PY -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["target"]["name"]=="host" else 1)' "$T/host.json" || die "default target is host"
$PY -c 'import json,sys; t=json.load(open(sys.argv[1]))["target"]; sys.exit(0 if t["measured"] and t["measured_at"] and t["peak_f32"]>0 else 1)' "$T/host.json" || die "cost JSON names the measured figures it used"
XDG_CONFIG_HOME="$T/cfg" "$NNC" cost "$EX/mlp.nn" | grep -q "figures used: peak FP32 .* measured by nnc probe at 20" || die "cost report does not say which figures it used"

exit $fail
