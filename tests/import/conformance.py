"""ONNX's own conformance tests through `nnc import` + `nnc run` (and, for a subset, the
compiled program): every test of the onnx package's backend test data (suites given on the
command line) is imported; a test whose model nnc refuses is skipped with the importer's
first error as the reason, every other one is run on each of its data sets and compared with
the expected outputs. Writes the list of run and skipped tests, prints the counts, and exits
non-zero when a run test fails.

usage: conformance.py NNC OUT_DIR LIST_FILE SUITE... [--build N]"""
import concurrent.futures
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import ref_nets  # noqa: E402  (safetensors reading/writing)

RTOL, ATOL = 1e-3, 1e-4   # float32 ONNX reference vs nnc's double-precision interpreter
DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
NOTE = re.compile(r"^# (input|param|output) +(\S+)(?: (f32\[[^\]]*\]))? <- (graph input )?'(.*)'( transposed)?(?: \(bool[^)]*\))?$")


def notes(nn_path):
    """the importer's header comments: where each input, parameter and output came from"""
    out = {"input": {}, "param": {}, "output": {}}
    with open(nn_path) as f:
        for line in f:
            m = NOTE.match(line.rstrip("\n"))
            if not m:
                continue
            kind, name, shape, from_input, onnx_name, transposed = m.groups()
            if kind == "param" and not from_input:
                continue
            dims = [int(d) for d in shape[4:-1].split(",") if d.strip()] if shape else None
            out[kind][onnx_name] = (name, dims, bool(transposed))
    return out


def datasets(test_dir, model):
    graph_inputs = [i.name for i in model.graph.input
                    if i.name not in {t.name for t in model.graph.initializer}]
    for d in sorted(os.listdir(test_dir)):
        if not d.startswith("test_data_set"):
            continue
        sets = []
        for kind, names in (("input", graph_inputs), ("output", [o.name for o in model.graph.output])):
            vals = {}
            for k, name in enumerate(names):
                p = os.path.join(test_dir, d, f"{kind}_{k}.pb")
                t = onnx.TensorProto()
                with open(p, "rb") as f:
                    t.ParseFromString(f.read())
                vals[name] = numpy_helper.to_array(t)
            sets.append(vals)
        yield d, sets[0], sets[1]


def feed(work, nn, ins, weights):
    """the --in/--weights arguments: inputs as .npy, weights file plus weight-like inputs"""
    args, extra = [], {}
    for onnx_name, arr in ins.items():
        if onnx_name in nn["input"]:
            p = os.path.join(work, nn["input"][onnx_name][0] + ".npy")
            np.save(p, arr.astype(np.int32 if arr.dtype.kind in "iu" else np.float32))
            args += ["--in", f"{nn['input'][onnx_name][0]}={p}"]
        if onnx_name in nn["param"]:
            name, dims, transposed = nn["param"][onnx_name]
            a = arr.T if transposed else arr
            extra[name] = np.ascontiguousarray(a.astype(np.float32).reshape(dims))
    tensors = ref_nets.st_read(weights) if os.path.getsize(weights) > 8 else {}
    tensors.update(extra)
    wpath = os.path.join(work, "all.safetensors")
    ref_nets.write_file(wpath, ref_nets.st_bytes(tensors))
    return args + ["--weights", wpath]


def compare(got_path, want, what):
    got = np.load(got_path)
    want = want.astype(np.float64)
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, expected {want.shape}"
    err = np.abs(got - want)
    bad = err > ATOL + RTOL * np.abs(want)
    if bad.any():
        return f"{what}: max |diff| {err.max():.3g} (tolerance {ATOL} + {RTOL}*|ref|)"
    return None


def bake_int_inputs(test_dir, work):
    """Integer graph inputs (shapes, axes, indices: the arguments nnc folds at compile time)
    become initializers holding the test's values, when the test has one data set. Returns
    the model path to import and the names baked."""
    model = onnx.load(os.path.join(test_dir, "model.onnx"))
    try:
        sets = list(datasets(test_dir, model))
    except (ValueError, TypeError):  # sequences, optionals: not plain tensors
        return os.path.join(test_dir, "model.onnx"), []
    inits = {t.name for t in model.graph.initializer}
    ints = [i for i in model.graph.input if i.name not in inits
            and i.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)]
    if not ints or len(sets) != 1:
        return os.path.join(test_dir, "model.onnx"), []
    for i in ints:
        model.graph.initializer.append(numpy_helper.from_array(sets[0][1][i.name], i.name))
    path = os.path.join(work, "baked.onnx")
    onnx.save(model, path)
    return path, [i.name for i in ints]


def run_one(nnc, work, test_dir, build):
    os.makedirs(work, exist_ok=True)
    nn_path, w_path = os.path.join(work, "m.nn"), os.path.join(work, "m.safetensors")
    model_path, baked = os.path.join(test_dir, "model.onnx"), []
    r = subprocess.run([nnc, "import", model_path, "-o", nn_path,
                        "--weights", w_path], capture_output=True, text=True)
    if r.returncode and "Sanitizer" not in r.stderr:  # then with integer inputs as constants
        model_path, baked = bake_int_inputs(test_dir, work)
        if baked:
            r = subprocess.run([nnc, "import", model_path, "-o", nn_path,
                                "--weights", w_path], capture_output=True, text=True)
    if "Sanitizer" in r.stderr or "runtime error:" in r.stderr:
        return "fail", "nnc import: " + r.stderr.strip()[:600]
    if r.returncode:
        first = r.stderr.strip().splitlines()[0] if r.stderr.strip() else "import failed"
        return "skip", first.split("error: ", 1)[-1]
    nn = notes(nn_path)
    model = onnx.load(os.path.join(test_dir, "model.onnx"))
    prog = None
    if build:
        prog = os.path.join(work, "prog")
        r = subprocess.run([nnc, "build", nn_path, "-o", prog], capture_output=True, text=True)
        if r.returncode:
            return "fail", "nnc build: " + r.stderr.strip()[:300]
    try:
        sets = list(datasets(test_dir, model))
    except (ValueError, TypeError) as e:
        return "skip", f"test data that is not plain tensors ({e})"
    for dname, ins, outs in sets:
        args = feed(work, nn, ins, w_path)
        for tool in [[nnc, "run", nn_path]] + ([[prog, "infer"]] if prog else []):
            outargs = []
            for onnx_name in outs:
                oid = nn["output"][onnx_name][0]
                outargs += ["--out", f"{oid}={os.path.join(work, oid + '.out.npy')}"]
            r = subprocess.run(tool + args + outargs, capture_output=True, text=True)
            label = "program" if tool[0] == prog else "nnc run"
            if r.returncode:
                return "fail", f"{label} on {dname}: " + r.stderr.strip()[:300]
            for onnx_name, want in outs.items():
                oid = nn["output"][onnx_name][0]
                msg = compare(os.path.join(work, oid + ".out.npy"), want, f"{label} {dname} {oid}")
                if msg:
                    return "fail", msg
    why = ["compiled too"] if prog else []
    why += ["integer inputs %s baked in as constants" % ", ".join(baked)] if baked else []
    return "pass", "; ".join(why)


def main():
    nnc, out_dir, list_file = sys.argv[1:4]
    suites = [a for a in sys.argv[4:] if not a.startswith("--")]
    nbuild = int(sys.argv[sys.argv.index("--build") + 1]) if "--build" in sys.argv else 0
    suites = [s for s in suites if not s.isdigit()]
    counts = {"pass": 0, "fail": 0, "skip": 0}
    tests = [(suite, t) for suite in suites for t in sorted(os.listdir(os.path.join(DATA, suite)))]

    def one(st):
        test_dir, work = os.path.join(DATA, *st), os.path.join(out_dir, *st)
        return run_one(nnc, work, test_dir, False)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(one, tests))
    passed = [i for i, (status, _) in enumerate(results) if status == "pass"]
    compiled = {passed[k * len(passed) // nbuild] for k in range(nbuild)} if passed else set()
    lines, built = [], 0
    for i, ((suite, t), (status, why)) in enumerate(zip(tests, results)):
        if i in compiled:  # evenly spread over the passing ones: also as compiled programs
            built += 1
            status, why = run_one(nnc, os.path.join(out_dir, suite, t),
                                  os.path.join(DATA, suite, t), True)
        counts[status] += 1
        lines.append(f"{status:4} {suite}/{t}" + (f": {why}" if why else ""))
        if status == "fail":
            print(lines[-1], flush=True)
    with open(list_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"onnx conformance ({', '.join(suites)}): {counts['pass']} passed "
          f"({built} also compiled), {counts['fail']} failed, {counts['skip']} skipped; "
          f"list in {list_file}")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
