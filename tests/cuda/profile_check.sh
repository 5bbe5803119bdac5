#!/usr/bin/env bash
# profile_check.sh NNC — `bench --profile` of a cuda-emu program (each emulated launch timed
# by the host clock): for mlp's forward pass and training step, the JSON report parses, its
# kernels are the launch table's (`nnc emit --emit=cuda --train`: the same names, one each),
# every measured time is positive and every kernel carries the GPU estimate of its launch;
# the text report and the --svg roofline are written. (The device path's timing, a pair of
# events around each launch, is tested with a fake driver in test_rt_cuda.)
. "$(dirname "$0")/common.sh"
MLP="$SRC/examples/mlp.nn"
"$NNC" build "$MLP" -D N=4 --target cuda-emu -o "$T/emu" || die "build --target cuda-emu"
"$NNC" emit --emit=cuda "$MLP" -D N=4 --train > "$T/mlp.cu" || die "emit"
"$T/emu" bench --iters 1 --profile --json > "$T/fwd.json" || die "bench --profile --json"
"$T/emu" bench --train --iters 1 --profile --json --svg "$T/train.svg" > "$T/train.json" || die "bench --train --profile"
"$T/emu" bench --iters 1 --profile > "$T/fwd.txt" || die "bench --profile (text)"
grep -q "mlp_fwd_k0_gemm" "$T/fwd.txt" || die "the text report names no launch"
$PY - "$T" <<'PYEOF' || die "the profile is not the launch table's"
import json, re, sys
import xml.etree.ElementTree as ET
t = sys.argv[1]
src = open(t + "/mlp.cu").read()
ok = True
for entry, title in (("fwd", "forward"), ("train", "training step")):
    table = re.search(r"/\* launch table: %s \((\d+) launches.*?\n(.*?) \*/" % title, src, re.S)
    names = re.findall(r"^ \*   (\w+)", table.group(2), re.M)
    rep = json.load(open("%s/%s.json" % (t, entry)))
    ks = sorted(rep["kernels"], key=lambda k: k["index"])
    got = [k["name"].split(" ")[0] for k in ks]
    times_ok = all(k["time_s"] > 0 and k["estimate_s"] > 0 for k in ks)
    print("%s: %d launches in the table, %d profiled kernels, %s, times %s" % (title, len(names), len(ks),
          "same names in order" if got == names else "DIFFERENT", "positive" if times_ok else "NOT POSITIVE"))
    ok &= got == names and len(names) == int(table.group(1)) and times_ok and rep["kernels_time_s"] > 0
ET.parse(t + "/train.svg")
sys.exit(0 if ok else 1)
PYEOF
echo "ok: bench --profile of a cuda-emu program reports its launch table"
