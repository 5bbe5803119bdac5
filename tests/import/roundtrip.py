"""Round trips of the example networks through ONNX: examples/mlp.nn and examples/lenet.nn
written as ONNX graphs in the forms PyTorch's exporter produces (Gemm with transB, MatMul +
Add with a transposed weight, the Shape/Gather/Unsqueeze/Concat/Reshape of `x.view(N, -1)`,
a symbolic batch dim), imported with `nnc import`. The imported file must have the hand-
written example's parameter names, parameter count and MACs (as formulas in N), and the
same outputs on the same weights. With PyTorch installed, the same networks exported by
torch.onnx.export are checked against PyTorch's own outputs as well.

usage: roundtrip.py NNC SRC_DIR WORK_DIR"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import ref_nets  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6


def weights(shapes, seed):
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.1).astype(np.float32) for k, s in shapes.items()}


def init(name, arr):
    return numpy_helper.from_array(arr, name)


def mlp_onnx(w):
    """fc1 as Gemm(transB = 1), fc2 as MatMul with the transposed weight + Add"""
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["fc1"], name="/fc1/Gemm",
                              transB=1),
             helper.make_node("Relu", ["fc1"], ["h"], name="/Relu"),
             helper.make_node("MatMul", ["h", "fc2.weight"], ["mm"], name="/fc2/MatMul"),
             helper.make_node("Add", ["mm", "fc2.bias"], ["logits"], name="/fc2/Add")]
    inits = [init("fc1.weight", w["fc1.weight"]), init("fc1.bias", w["fc1.bias"]),
             init("fc2.weight", np.ascontiguousarray(w["fc2.weight"].T)),
             init("fc2.bias", w["fc2.bias"])]
    return graph("mlp", nodes, inits, ["N", 784], ["N", 10], opset=13)


def lenet_onnx(w):
    n = helper.make_node
    nodes = [n("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], kernel_shape=[5, 5],
               pads=[2, 2, 2, 2]),
             n("Relu", ["c1"], ["r1"]),
             n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], kernel_shape=[5, 5]),
             n("Relu", ["c2"], ["r2"]),
             n("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             # x.view(x.size(0), -1), as older exporters wrote it
             n("Shape", ["p2"], ["s"]),
             n("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.INT64, [], [0])),
             n("Gather", ["s", "zero"], ["n"], axis=0),
             n("Unsqueeze", ["n"], ["n1"], axes=[0]),
             n("Constant", [], ["m1"], value=helper.make_tensor("m", TensorProto.INT64, [1], [-1])),
             n("Concat", ["n1", "m1"], ["shape"], axis=0),
             n("Reshape", ["p2", "shape"], ["f"]),
             n("Gemm", ["f", "fc1.weight", "fc1.bias"], ["fc1"], transB=1),
             n("Relu", ["fc1"], ["h1"]),
             n("Gemm", ["h1", "fc2.weight", "fc2.bias"], ["fc2"], transB=1),
             n("Relu", ["fc2"], ["h2"]),
             n("Gemm", ["h2", "fc3.weight", "fc3.bias"], ["logits"], transB=1)]
    inits = [init(k, v) for k, v in w.items()]
    return graph("lenet", nodes, inits, ["N", 1, 28, 28], ["N", 10], opset=11)


def resnet18_onnx(w):
    """torchvision's resnet18 as its exporter writes it (eval mode, names kept)"""
    n, nodes = helper.make_node, []

    def conv_bn(x, pre, bn, k, stride, pad, relu=True):
        nodes.append(n("Conv", [x, pre + ".weight"], [pre], kernel_shape=[k, k], strides=[stride] * 2,
                       pads=[pad] * 4))
        nodes.append(n("BatchNormalization", [pre] + [f"{bn}.{p}" for p in BN], [bn], epsilon=1e-5))
        if relu:
            nodes.append(n("Relu", [bn], [bn + ".relu"]))
        return bn + ".relu" if relu else bn

    x = conv_bn("x", "conv1", "bn1", 7, 2, 3)
    nodes.append(n("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    x = "pool"
    for layer, c in ((1, 64), (2, 128), (3, 256), (4, 512)):
        for i in (0, 1):
            pre, stride = f"layer{layer}.{i}", 2 if layer > 1 and i == 0 else 1
            h = conv_bn(x, pre + ".conv1", pre + ".bn1", 3, stride, 1)
            h = conv_bn(h, pre + ".conv2", pre + ".bn2", 3, 1, 1, relu=False)
            short = x
            if stride == 2:
                short = conv_bn(x, pre + ".downsample.0", pre + ".downsample.1", 1, 2, 0, relu=False)
            nodes.append(n("Add", [h, short], [pre + ".add"]))
            nodes.append(n("Relu", [pre + ".add"], [pre + ".out"]))
            x = pre + ".out"
    nodes += [n("GlobalAveragePool", [x], ["gap"]), n("Flatten", ["gap"], ["flat"], axis=1),
              n("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1)]
    return graph("resnet18", nodes, [init(k, v) for k, v in w.items()], ["N", 3, 32, 32], ["N", 1000],
                 opset=13)


BN = ("weight", "bias", "running_mean", "running_var")


def resnet18_shapes():
    shapes = {"conv1.weight": (64, 3, 7, 7), "fc.weight": (1000, 512), "fc.bias": (1000,)}
    bn = lambda pre, c: shapes.update({f"{pre}.{p}": (c,) for p in BN})
    bn("bn1", 64)
    cin = 64
    for layer, c in ((1, 64), (2, 128), (3, 256), (4, 512)):
        for i in (0, 1):
            pre = f"layer{layer}.{i}"
            shapes[pre + ".conv1.weight"] = (c, cin, 3, 3)
            shapes[pre + ".conv2.weight"] = (c, c, 3, 3)
            bn(pre + ".bn1", c)
            bn(pre + ".bn2", c)
            if layer > 1 and i == 0:
                shapes[pre + ".downsample.0.weight"] = (c, cin, 1, 1)
                bn(pre + ".downsample.1", c)
            cin = c
    return shapes


def graph(name, nodes, inits, in_shape, out_shape, opset):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_shape)],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="nnc-tests")
    onnx.checker.check_model(m)
    return m


SHAPES = {
    "mlp": {"fc1.weight": (512, 784), "fc1.bias": (512,), "fc2.weight": (10, 512), "fc2.bias": (10,)},
    "lenet": {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5),
              "conv2.bias": (16,), "fc1.weight": (120, 400), "fc1.bias": (120,),
              "fc2.weight": (84, 120), "fc2.bias": (84,), "fc3.weight": (10, 84), "fc3.bias": (10,)},
}
X_SHAPE = {"mlp": (5, 784), "lenet": (5, 1, 28, 28), "resnet18": (1, 3, 32, 32), "mobilenet_v2": (2, 3, 32, 32)}


def sh(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"FAIL: {' '.join(args)}:\n{r.stderr}")
    return r.stdout


BLOCKS = {"resnet18": ("layer1.0", "layer1.1"), "mobilenet_v2": ("features.5", "features.6")}
EXAMPLE_DIMS = {"resnet18": ["-D", "S=32"], "mobilenet_v2": ["-D", "S=32"]}  # the ONNX graphs have 32x32 images


def cost(nnc, nn, dims=()):
    t = json.loads(sh(nnc, "cost", nn, "--json", "--symbolic", "N", *dims))["totals"]
    return t["params"], t["fwd_macs_formula"]


def check_import(nnc, src, work, net, onnx_path, w, x, want=None):
    nn, st = os.path.join(work, net + ".nn"), os.path.join(work, net + ".safetensors")
    sh(nnc, "import", onnx_path, "-o", nn, "--weights", st, "-D", "N=16")
    if "dim N = 16" not in open(nn).read():
        raise SystemExit(f"FAIL: {net}: -D N=16 did not set the symbolic batch's default")
    example = os.path.join(src, "examples", net + ".nn")
    got_names, ex_names = sorted(ref_nets.st_read(st)), sorted(w)
    if got_names != ex_names:
        raise SystemExit(f"FAIL: {net}: parameters {got_names}, the example has {ex_names}")
    dims = EXAMPLE_DIMS.get(net, [])
    ci, ce = cost(nnc, nn), cost(nnc, example, dims)
    if ci != ce:
        raise SystemExit(f"FAIL: {net}: params/MACs {ci}, the example {ce}")
    ref_w = os.path.join(work, net + ".ref.safetensors")
    ref_nets.write_file(ref_w, ref_nets.st_bytes(w))
    np.save(os.path.join(work, "x.npy"), x)
    np.save(os.path.join(work, "label.npy"), np.zeros(x.shape[0], np.int32))
    sh(nnc, "run", nn, "--weights", st, "--in", f"x={work}/x.npy", "--out", f"logits={work}/a.npy")
    xin = "img" if net in ("resnet18", "mobilenet_v2") else "x"
    sh(nnc, "run", example, *dims, "--weights", ref_w, "--in", f"{xin}={work}/x.npy",
       "--in", f"label={work}/label.npy", "--out", f"logits={work}/b.npy")
    a, b = np.load(f"{work}/a.npy"), np.load(f"{work}/b.npy")
    err = np.abs(a - b).max()
    print(f"{net}: {ci[0]} params, {ci[1]} MACs as the example; max |imported - example| = {err:.3g}")
    if err > ATOL + RTOL * np.abs(b).max():
        raise SystemExit(f"FAIL: {net}: outputs differ by {err}")
    if net in ("mlp", "lenet"):  # a backward pass of the larger nets in the interpreter takes too long
        trains_like_example(nnc, work, net, nn, st, example, ref_w)
    else:
        text = open(nn).read()
        calls = text.count("_block(")
        print(f"{net}: {text.count('block ')} block definition(s), {calls - text.count('block ')} calls")
        first, second = BLOCKS[net]
        blk = first.replace(".", "_") + "_block"
        if f"block {blk}(x)" not in text or not re.search(rf'= {blk}\(\w+, name = "{second}"\)', text):
            raise SystemExit(f"FAIL: {net}: {first} and {second} are not one block:\n{text}")
    if want is not None:
        e2 = np.abs(a - want).max()
        print(f"{net}: max |nnc - pytorch| = {e2:.3g}")
        if e2 > 1e-4 + 1e-4 * np.abs(want).max():
            raise SystemExit(f"FAIL: {net}: outputs differ from PyTorch's by {e2}")


def trains_like_example(nnc, work, net, nn, st, example, ref_w):
    """with a loss added by hand, the imported file's gradients are the example's"""
    text = open(nn).read().rstrip()
    assert text.endswith("}")
    trained = os.path.join(work, net + ".train.nn")
    with open(trained, "w") as f:
        f.write(text[:-1] + "  input label: i32[N]\n  loss = cross_entropy(logits, label)\n}\n"
                f"train {net} {{ minimize loss }}\n")
    args = ["--grad", "--in", f"x={work}/x.npy", "--in", f"label={work}/label.npy"]
    sh(nnc, "run", trained, "--weights", st, *args, "-o", f"{work}/ga.safetensors")
    sh(nnc, "run", example, "--weights", ref_w, *args, "-o", f"{work}/gb.safetensors")
    ga, gb = ref_nets.st_read(f"{work}/ga.safetensors"), ref_nets.st_read(f"{work}/gb.safetensors")
    if sorted(ga) != sorted(gb):
        raise SystemExit(f"FAIL: {net}: gradients of {sorted(ga)}, the example {sorted(gb)}")
    err = max(float(np.abs(ga[k] - gb[k]).max()) for k in ga)
    print(f"{net}: with a loss added, gradients of all {len(ga) - 1} parameters as the example's "
          f"(max |diff| {err:.3g})")
    if err > 1e-6:
        raise SystemExit(f"FAIL: {net}: gradients differ by {err}")


def import_run(nnc, work, stem, model, feeds, must_contain=()):
    """model (an onnx ModelProto) imported as STEM.nn, whose text must contain every string
    of must_contain, run by `nnc run` with its weights on feeds (name -> array); returns
    output y and the path of the saved model"""
    path, nn = f"{work}/{stem}.onnx", f"{work}/{stem}.nn"
    onnx.save(model, path)
    sh(nnc, "import", path, "-o", nn)
    text = open(nn).read()
    for want in must_contain:
        if want not in text:
            raise SystemExit(f"FAIL: {stem}: no '{want}' in\n{text}")
    args = []
    for name, arr in feeds.items():
        np.save(f"{work}/{stem}.{name}.npy", arr)
        args += ["--in", f"{name}={work}/{stem}.{name}.npy"]
    sh(nnc, "run", nn, "--weights", f"{work}/{stem}.safetensors", *args, "--out", f"y={work}/{stem}.y.npy")
    return np.load(f"{work}/{stem}.y.npy"), path, text


def expect_close(what, got, want, tol):
    err = np.abs(got - want).max()
    print(f"{what}: max |diff| = {err:.3g}")
    if err > tol:
        raise SystemExit(f"FAIL: {what} differs by {err} (tolerance {tol})")


def model(nodes, inputs, inits=(), opset=13, out_shape=None):
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info(k, t, s) for k, t, s in inputs],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def gelu_patterns(nnc, work):
    """the erf form of GELU in the two orders exporters write it imports as one gelu(x)"""
    import math
    n = helper.make_node
    c = lambda name, v: n("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [], [v]))
    forms = {
        "torch": [c("s2", math.sqrt(2)), n("Div", ["x", "s2"], ["a"]), n("Erf", ["a"], ["b"]),
                  c("one", 1.0), n("Add", ["b", "one"], ["c"]), n("Mul", ["x", "c"], ["d"]),
                  c("half", 0.5), n("Mul", ["d", "half"], ["y"])],
        "hf": [c("half", 0.5), n("Mul", ["x", "half"], ["m"]), c("r2", math.sqrt(0.5)),
               n("Mul", ["x", "r2"], ["a"]), n("Erf", ["a"], ["b"]), c("one", 1.0),
               n("Add", ["one", "b"], ["c"]), n("Mul", ["m", "c"], ["y"])],
    }
    x = np.linspace(-4, 4, 24, dtype=np.float32).reshape(2, 12)
    want = np.array([[v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in r] for r in x.astype(np.float64)])
    for form, nodes in forms.items():
        got, _, text = import_run(nnc, work, "gelu_" + form, model(nodes, [("x", TensorProto.FLOAT, [2, 12])]),
                                  {"x": x}, ["y = gelu(x)"])
        if text.count(" = ") != 1:
            raise SystemExit(f"FAIL: gelu ({form}) is more than one statement:\n{text}")
        expect_close(f"gelu, {form} form, as gelu(x) vs the erf formula", got, want, 1e-6)


def embedding_gather(nnc, work):
    """Gather of an initializer's rows by integer input ids (a token embedding) imports as
    embedding(ids, V, D) with the table under <scope>.weight"""
    rng = np.random.default_rng(5)
    table = rng.standard_normal((11, 6)).astype(np.float32)
    ids = rng.integers(0, 11, (2, 7)).astype(np.int64)
    m = model([helper.make_node("Gather", ["embed.weight", "input_ids"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
              [("input_ids", TensorProto.INT64, ["N", 7])], [init("embed.weight", table)])
    got, _, _ = import_run(nnc, work, "emb", m, {"input_ids": ids},
                           ['embedding(input_ids, 11, 6, name = "embed")'])
    expect_close("embedding: Gather by input ids vs numpy", got, np.maximum(table[ids], 0), 1e-7)


def int_mask_cast(nnc, work):
    """an integer mask from the graph cast to float (attention masks) as to(m, f32)"""
    n = helper.make_node
    m = model([n("Cast", ["m"], ["mf"], to=TensorProto.FLOAT), n("Mul", ["x", "mf"], ["y"])],
              [("x", TensorProto.FLOAT, [2, 3]), ("m", TensorProto.INT64, [2, 3])])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    mask = np.array([[1, 0, 1], [0, 1, 1]], np.int64)
    got, _, _ = import_run(nnc, work, "cast", m, {"x": x, "m": mask}, ["mf = to(m, f32)"])
    expect_close("integer mask cast to float vs numpy", got, x * mask, 0)


def pad_folding(nnc, work):
    """a zero Pad before a Conv and before an AveragePool folds into their padding; the result
    matches onnx.reference's evaluation of the model"""
    from onnx.reference import ReferenceEvaluator
    n = helper.make_node
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    m = model([n("Pad", ["x"], ["xp"], pads=[0, 0, 1, 2, 0, 0, 1, 2]),
               n("Conv", ["xp", "conv.weight"], ["c"], kernel_shape=[3, 3]),
               n("Pad", ["c"], ["cp"], pads=[0, 0, 1, 1, 0, 0, 1, 1]),
               n("AveragePool", ["cp"], ["y"], kernel_shape=[3, 3])],
              [("x", TensorProto.FLOAT, [2, 3, 8, 8])], [init("conv.weight", w)], opset=9)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    got, path, _ = import_run(nnc, work, "pad", m, {"x": x}, ["pad = [1, 2]", "stride = 1, pad = 1)"])
    want = ReferenceEvaluator(path).run(None, {"x": x})[0]
    expect_close("pad folding into Conv and AveragePool vs onnx.reference", got, want, 1e-5)


def nearest_resize(nnc, work):
    """Resize (half_pixel, opset 13) and Upsample (opset 9), nearest by integer factors, as
    repeated pixels, against onnx.reference"""
    from onnx.reference import ReferenceEvaluator
    n = helper.make_node
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    scales = init("scales", np.array([1, 1, 2, 3], np.float32))
    forms = {"resize": model([n("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
                             [("x", TensorProto.FLOAT, [2, 3, 4, 5])], [scales]),
             "upsample": model([n("Upsample", ["x", "scales"], ["y"], mode="nearest")],
                               [("x", TensorProto.FLOAT, [2, 3, 4, 5])], [scales], opset=9)}
    for form, m in forms.items():
        got, path, _ = import_run(nnc, work, form, m, {"x": x}, ["concat("])
        want = ReferenceEvaluator(path).run(None, {"x": x})[0]
        if got.shape != want.shape:
            raise SystemExit(f"FAIL: {form}: shape {got.shape}, expected {want.shape}")
        expect_close(f"{form} nearest x2, x3 vs onnx.reference", got, want, 0)


def attention_ops(nnc, work):
    """LayerNormalization, MatMul + Add layers, attention scores (Transpose, MatMul, Div,
    Softmax), Split and Concat as a transformer export writes them (opset 17), against
    onnx.reference"""
    from onnx.reference import ReferenceEvaluator
    n, rng = helper.make_node, np.random.default_rng(4)
    w = {"ln.weight": 1 + 0.1 * rng.standard_normal(8), "ln.bias": 0.1 * rng.standard_normal(8),
         "q.weight": rng.standard_normal((8, 8)) / 3, "q.bias": rng.standard_normal(8) / 3,
         "k.weight": rng.standard_normal((8, 8)) / 3, "k.bias": rng.standard_normal(8) / 3,
         "scale": np.array(np.sqrt(8.0))}
    inits = [init(k, v.astype(np.float32)) for k, v in w.items()]
    inits.append(init("split", np.array([3, 5], np.int64)))
    nodes = [n("LayerNormalization", ["x", "ln.weight", "ln.bias"], ["h"], axis=-1, epsilon=1e-5),
             n("MatMul", ["h", "q.weight"], ["qm"]), n("Add", ["qm", "q.bias"], ["q"]),
             n("MatMul", ["h", "k.weight"], ["km"]), n("Add", ["km", "k.bias"], ["k"]),
             n("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), n("MatMul", ["q", "kt"], ["s"]),
             n("Div", ["s", "scale"], ["ss"]), n("Softmax", ["ss"], ["a"], axis=-1),
             n("MatMul", ["a", "h"], ["o"]), n("Split", ["o", "split"], ["o1", "o2"], axis=2),
             n("Concat", ["o2", "o1"], ["y"], axis=2)]
    m = model(nodes, [("x", TensorProto.FLOAT, [2, 5, 8])], inits, opset=17)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    got, path, _ = import_run(nnc, work, "attn", m, {"x": x},
                              ['layernorm(x, dims = 1', 'dense(h, 8, name = "q")', "softmax(ss, axis = 2)"])
    want = ReferenceEvaluator(path).run(None, {"x": x})[0]
    expect_close("attention ops (opset 17) vs onnx.reference", got, want, 1e-5)


def causal_tied(nnc, work):
    """what a GPT-style export writes: a position embedding by constant arange ids, a causal
    mask as Where on a constant bool tril, and the output projection MatMul by the Transpose of
    the token embedding (weight tying), against onnx.reference"""
    from onnx.reference import ReferenceEvaluator
    n, rng = helper.make_node, np.random.default_rng(8)
    wte, wpe = rng.standard_normal((11, 6)).astype(np.float32), rng.standard_normal((5, 6)).astype(np.float32)
    inits = [init("wte.weight", wte), init("wpe.weight", wpe), init("pos", np.arange(5, dtype=np.int64)),
             init("mask", np.tril(np.ones((5, 5), bool))), init("neg", np.array(-1e9, np.float32))]
    nodes = [n("Gather", ["wte.weight", "ids"], ["tok"]), n("Gather", ["wpe.weight", "pos"], ["p"]),
             n("Add", ["tok", "p"], ["x"]), n("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             n("MatMul", ["x", "xt"], ["s"]), n("Where", ["mask", "s", "neg"], ["sm"]),
             n("Softmax", ["sm"], ["a"], axis=-1), n("MatMul", ["a", "x"], ["h"]),
             n("Transpose", ["wte.weight"], ["wt"], perm=[1, 0]), n("MatMul", ["h", "wt"], ["y"])]
    m = model(nodes, [("ids", TensorProto.INT64, [2, 5])], inits)
    ids = rng.integers(0, 11, (2, 5)).astype(np.int64)
    got, path, _ = import_run(nnc, work, "causal", m, {"ids": ids},
                              ["embedding(arange(5, dtype = i32), 5, 6, name = \"wpe\")",
                               "where(tril(ones([5, 5])), s, (-1e+09))", "bias = false, weight = wte.weight)"])
    want = ReferenceEvaluator(path).run(None, {"ids": ids})[0]
    expect_close("causal mask (tril), arange positions, tied projection vs onnx.reference", got, want, 1e-4)


def trilu_range(nnc, work):
    """Trilu on a computed tensor as tril(x, k), Range and Trilu of constants folded, against
    onnx.reference"""
    from onnx.reference import ReferenceEvaluator
    n = helper.make_node
    c = lambda name, v: init(name, np.array(v, np.int64))
    nodes = [n("Range", ["zero", "five", "one"], ["r"]), n("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             n("Add", ["x", "rf"], ["a"]), n("Trilu", ["a", "km1"], ["t"], upper=0),
             n("Trilu", ["ones"], ["u"], upper=1), n("Mul", ["t", "u"], ["y"])]
    m = model(nodes, [("x", TensorProto.FLOAT, [2, 5, 5])],
              [c("zero", 0), c("five", 5), c("one", 1), c("km1", -1), init("ones", np.ones((5, 5), np.float32))])
    x = np.random.default_rng(9).standard_normal((2, 5, 5)).astype(np.float32)
    got, path, text = import_run(nnc, work, "trilu", m, {"x": x}, ["t = tril(a, -1)"])
    if "triu(" in text:  # (a Range that were not folded would have failed the import)
        raise SystemExit(f"FAIL: the Trilu of a constant is not folded:\n{text}")
    want = ReferenceEvaluator(path).run(None, {"x": x})[0]
    expect_close("Trilu on a tensor, Range and Trilu folded, vs onnx.reference", got, want, 1e-6)


def torch_round_trips(nnc, src, work):
    try:
        import torch
        import torchvision
    except ImportError:
        print("torch export round trips: skipped (PyTorch is not installed; "
              "NNC_WITH_TORCH=1 bash .ci/setup.sh installs python3-torch and python3-torchvision)")
        return
    import warnings
    warnings.filterwarnings("ignore")  # the exporter's notes on constant folding and opsets
    tdir = os.path.join(work, "torch")
    for net, mod in torch_models(torch, torchvision).items():
        x = np.random.default_rng(3).standard_normal(X_SHAPE[net]).astype(np.float32)
        path = os.path.join(tdir, net + ".onnx")
        # PRESERVE keeps BatchNormalization nodes (EVAL folds them into the convolutions, which
        # drops the batchnorm parameters the examples have); the model is in eval mode
        torch.onnx.export(mod, torch.from_numpy(x), path, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        w = {k: v.detach().numpy() for k, v in mod.state_dict().items()
             if not k.endswith("num_batches_tracked")}
        with torch.no_grad():
            want = mod(torch.from_numpy(x)).numpy()
        check_import(nnc, src, tdir, net, path, w, x, want)
        if net == "mobilenet_v2":
            compiled_infer(nnc, tdir, net, x, want)
    folded_export(nnc, src, tdir, torch, torchvision)
    char_lm_round_trip(nnc, src, tdir, torch)
    gpt2_block_round_trip(nnc, src, tdir, torch)


def torch_models(torch, torchvision):
    """the examples' PyTorch counterparts, in eval mode, with random batchnorm statistics (a
    trained network's; fresh ones are all equal, which the exporter deduplicates)"""
    import torch.nn as tnn

    class MLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = tnn.Linear(784, 512), tnn.Linear(512, 10)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    class LeNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5, padding=2), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = x.view(x.size(0), -1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    torch.manual_seed(0)
    nets = {"mlp": MLP(), "lenet": LeNet(), "resnet18": torchvision.models.resnet18(),
            "mobilenet_v2": torchvision.models.mobilenet_v2()}
    for mod in nets.values():
        mod.eval()
        for m in mod.modules():
            if isinstance(m, tnn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c))
                m.running_var.copy_(0.5 + torch.rand(c))
                m.weight.data.copy_(1 + 0.1 * torch.randn(c))
                m.bias.data.copy_(0.1 * torch.randn(c))
    return nets


def char_lm_module(torch):
    """examples/char_lm.nn in PyTorch, with its state_dict names: token and position
    embeddings, two pre-norm blocks whose causal mask is torch.where on a tril buffer, GELU,
    and the output projection tied to the token embedding"""
    import math
    import torch.nn as tnn
    V, T, H, K = 65, 32, 4, 16
    D = H * K

    class Attn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = tnn.Linear(D, 3 * D), tnn.Linear(D, D)
            self.register_buffer("mask", torch.tril(torch.ones(T, T)).bool(), persistent=False)

        def forward(self, x):
            n = x.shape[0]
            q, k, v = [t.reshape(n, T, H, K).permute(0, 2, 1, 3) for t in self.c_attn(x).split(D, dim=2)]
            att = torch.where(self.mask, q @ k.transpose(-2, -1) / math.sqrt(K), torch.tensor(-1e9))
            return self.c_proj((att.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(n, T, D))

    class MLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc, self.c_proj = tnn.Linear(D, 4 * D), tnn.Linear(4 * D, D)

        def forward(self, x):
            return self.c_proj(torch.nn.functional.gelu(self.c_fc(x)))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2, self.mlp = tnn.LayerNorm(D), Attn(), tnn.LayerNorm(D), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class CharLM(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tnn.Embedding(V, D), tnn.Embedding(T, D)
            self.h, self.ln_f = tnn.ModuleList([Block(), Block()]), tnn.LayerNorm(D)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(T))
            for b in self.h:
                x = b(x)
            return self.ln_f(x) @ self.wte.weight.t()

    torch.manual_seed(1)
    mod = CharLM().eval()
    for m in mod.modules():  # trained-looking layernorms (fresh ones are deduplicated by the exporter)
        if isinstance(m, tnn.LayerNorm):
            m.weight.data.copy_(1 + 0.1 * torch.randn(D))
            m.bias.data.copy_(0.1 * torch.randn(D))
    return mod, V, T


def same_cost(nnc, net, nn, example, batches):
    """the imported file's parameter count and MACs are the example's (command line) at each N"""
    for n in batches:
        got = [json.loads(sh(nnc, "cost", *f, "-D", f"N={n}", "--json"))["totals"] for f in ([nn], example)]
        got = [(g["params"], g["fwd_macs"]) for g in got]
        if got[0] != got[1]:
            raise SystemExit(f"FAIL: {net} at N={n}: params/MACs {got[0]}, the example {got[1]}")
    print(f"{net}: {got[0][0]} params, {got[0][1]} MACs at N={batches[-1]} as the example")


def gpt2_block_round_trip(nnc, src, work, torch):
    """examples/gpt2_block.nn's PyTorch counterpart (HuggingFace's GPT2Block: Conv1D weights
    [in, out], the attention mask an input) exported at opset 17, at a small size: the
    example's parameter names, count and MACs (the dense weights stored [out, in]), and its
    and PyTorch's outputs"""
    import math
    import torch.nn as tnn
    n, t, heads, k = 2, 16, 2, 16
    d = heads * k

    class Conv1D(tnn.Module):
        def __init__(self, nin, nout):
            super().__init__()
            self.weight = tnn.Parameter(0.2 * torch.randn(nin, nout))
            self.bias = tnn.Parameter(0.1 * torch.randn(nout))

        def forward(self, x):
            return x @ self.weight + self.bias

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
            self.attn, self.mlp = tnn.Module(), tnn.Module()
            self.attn.c_attn, self.attn.c_proj = Conv1D(d, 3 * d), Conv1D(d, d)
            self.mlp.c_fc, self.mlp.c_proj = Conv1D(d, 4 * d), Conv1D(4 * d, d)

        def forward(self, x, mask):
            qkv = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
            q, kk, v = [a.reshape(x.shape[0], t, heads, k).permute(0, 2, 1, 3) for a in qkv]
            att = torch.softmax(q @ kk.transpose(-2, -1) / math.sqrt(k) + mask, -1)
            x = x + self.attn.c_proj((att @ v).permute(0, 2, 1, 3).reshape(x.shape[0], t, d))
            return x + self.mlp.c_proj(torch.nn.functional.gelu(self.mlp.c_fc(self.ln_2(x))))

    torch.manual_seed(2)
    mod = Block().eval()
    for ln in (mod.ln_1, mod.ln_2):
        ln.weight.data.copy_(1 + 0.1 * torch.randn(d))
        ln.bias.data.copy_(0.1 * torch.randn(d))
    x = np.random.default_rng(6).standard_normal((n, t, d)).astype(np.float32)
    mask = np.triu(np.full((t, t), -1e9, np.float32), 1)
    path, nn, st = (os.path.join(work, "gpt2_block" + e) for e in (".onnx", ".nn", ".safetensors"))
    torch.onnx.export(mod, (torch.from_numpy(x), torch.from_numpy(mask)), path, input_names=["x", "mask"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    sh(nnc, "import", path, "-o", nn, "--weights", st)
    w = {key: v.detach().numpy() for key, v in mod.state_dict().items()}
    if sorted(ref_nets.st_read(st)) != sorted(w):
        raise SystemExit(f"FAIL: gpt2_block: parameters {sorted(ref_nets.st_read(st))}, PyTorch's {sorted(w)}")
    example = [os.path.join(src, "examples", "gpt2_block.nn"), "-D", f"T={t}", "-D", f"H={heads}", "-D", f"K={k}"]
    same_cost(nnc, "gpt2_block", nn, example, (n,))
    ref_w = os.path.join(work, "gpt2_block.ref.safetensors")
    ref_nets.write_file(ref_w, ref_nets.st_bytes(w))
    np.save(f"{work}/gx.npy", x)
    np.save(f"{work}/gm.npy", mask)
    feeds = ["--in", f"x={work}/gx.npy", "--in", f"mask={work}/gm.npy"]
    sh(nnc, "run", nn, "--weights", st, *feeds, "--out", f"y={work}/ga.npy")
    sh(nnc, "run", *example, "-D", f"N={n}", "--weights", ref_w, *feeds, "--out", f"y={work}/gb.npy")
    with torch.no_grad():
        want = mod(torch.from_numpy(x), torch.from_numpy(mask)).numpy()
    a, b = np.load(f"{work}/ga.npy"), np.load(f"{work}/gb.npy")
    expect_close("gpt2_block: imported vs examples/gpt2_block.nn", a, b, 1e-5 * np.abs(b).max())
    expect_close("gpt2_block: imported vs PyTorch", a, want, 1e-4 + 1e-4 * np.abs(want).max())


def char_lm_round_trip(nnc, src, work, torch):
    """the char_lm counterpart exported at opset 17 imports to a file with the example's
    parameter names, count and MACs (weight tying kept, the causal mask as tril), and
    PyTorch's and the example's outputs"""
    mod, vocab, t = char_lm_module(torch)
    idx = np.random.default_rng(5).integers(0, vocab, (2, t))
    path, nn, st = (os.path.join(work, "char_lm" + e) for e in (".onnx", ".nn", ".safetensors"))
    torch.onnx.export(mod, torch.from_numpy(idx), path, input_names=["idx"], output_names=["logits"],
                      dynamic_axes={"idx": {0: "N"}, "logits": {0: "N"}}, opset_version=17,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    sh(nnc, "import", path, "-o", nn, "--weights", st)
    text = open(nn).read()
    for want in ("weight = wte.weight)", "where(tril(ones([32, 32]))", "arange(32, dtype = i32)"):
        if want not in text:
            raise SystemExit(f"FAIL: char_lm: no '{want}' in\n{text}")
    w = {k: v.detach().numpy() for k, v in mod.state_dict().items()}
    if sorted(ref_nets.st_read(st)) != sorted(w):
        raise SystemExit(f"FAIL: char_lm: parameters {sorted(ref_nets.st_read(st))}, PyTorch's {sorted(w)}")
    example = os.path.join(src, "examples", "char_lm.nn")
    # (`cost --symbolic` does not take char_lm.nn's blocks: two batch sizes)
    same_cost(nnc, "char_lm", nn, [example], (2, 16))
    ref_w = os.path.join(work, "char_lm.ref.safetensors")
    ref_nets.write_file(ref_w, ref_nets.st_bytes(w))
    np.save(f"{work}/idx.npy", idx.astype(np.int32))
    sh(nnc, "run", nn, "--weights", st, "--in", f"idx={work}/idx.npy", "--out", f"logits={work}/la.npy")
    sh(nnc, "run", example, "-D", "N=2", "--weights", ref_w, "--in", f"idx={work}/idx.npy",
       "--out", f"logits={work}/lb.npy")
    with torch.no_grad():
        want = mod(torch.from_numpy(idx)).numpy()
    a, b = np.load(f"{work}/la.npy"), np.load(f"{work}/lb.npy")
    # (PyTorch's layernorm eps 1e-5 is exported as float32, 9.99999975e-06)
    expect_close("char_lm: imported vs examples/char_lm.nn", a, b, 1e-5 * np.abs(b).max())
    expect_close("char_lm: imported vs PyTorch", a, want, 1e-4 + 1e-4 * np.abs(want).max())


def compiled_infer(nnc, work, net, x, want):
    """the imported file built with `nnc build` runs as a program (`infer`) to PyTorch's outputs"""
    nn, prog = os.path.join(work, net + ".nn"), os.path.join(work, net + ".prog")
    sh(nnc, "build", nn, "-o", prog, "-D", f"N={x.shape[0]}")
    np.save(f"{work}/cx.npy", x)
    sh(prog, "infer", "--weights", os.path.join(work, net + ".safetensors"), "--in", f"x={work}/cx.npy",
       "--out", f"logits={work}/cy.npy", "--threads", "1")
    expect_close(f"{net}: compiled program (nnc build + infer) vs PyTorch", np.load(f"{work}/cy.npy"), want,
                 1e-4 + 1e-4 * np.abs(want).max())


def folded_export(nnc, src, work, torch, torchvision):
    """torch.onnx.export's default (EVAL) folds batchnorm into the convolutions and renames the
    weights; the import still has resnet18's MACs and PyTorch's outputs"""
    mod = torch_models(torch, torchvision)["resnet18"]
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    path, nn = os.path.join(work, "folded.onnx"), os.path.join(work, "folded.nn")
    torch.onnx.export(mod, torch.from_numpy(x), path, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    sh(nnc, "import", path, "-o", nn)
    text = open(nn).read()
    if "batchnorm(" in text:
        raise SystemExit("FAIL: the EVAL export still has batchnorm nodes; the test exports nothing new")
    macs = cost(nnc, nn)[1]
    want_macs = cost(nnc, os.path.join(src, "examples", "resnet18.nn"), EXAMPLE_DIMS["resnet18"])[1]
    if macs != want_macs:
        raise SystemExit(f"FAIL: resnet18, default export: {macs} MACs, the example {want_macs}")
    np.save(f"{work}/fx.npy", x)
    sh(nnc, "run", nn, "--weights", f"{work}/folded.safetensors", "--in", f"x={work}/fx.npy",
       "--out", f"logits={work}/fy.npy")
    with torch.no_grad():
        want = mod(torch.from_numpy(x)).numpy()
    print(f"resnet18, default export (batchnorm folded): {macs} MACs as the example")
    expect_close("resnet18, default export, nnc vs PyTorch", np.load(f"{work}/fy.npy"), want,
                 1e-4 + 1e-4 * np.abs(want).max())


def main():
    nnc, src, work = sys.argv[1:4]
    os.makedirs(os.path.join(work, "torch"), exist_ok=True)
    SHAPES["resnet18"] = resnet18_shapes()
    for net, build in (("mlp", mlp_onnx), ("lenet", lenet_onnx), ("resnet18", resnet18_onnx)):
        w = weights(SHAPES[net], 1)
        for k in w:  # running variances must be positive
            w[k] = np.abs(w[k]) + 0.5 if k.endswith("running_var") else w[k]
        path = os.path.join(work, net + ".onnx")
        onnx.save(build(w), path)
        x = np.random.default_rng(2).standard_normal(X_SHAPE[net]).astype(np.float32)
        check_import(nnc, src, work, net, path, w, x)
    gelu_patterns(nnc, work)
    embedding_gather(nnc, work)
    int_mask_cast(nnc, work)
    pad_folding(nnc, work)
    attention_ops(nnc, work)
    nearest_resize(nnc, work)
    causal_tied(nnc, work)
    trilu_range(nnc, work)
    torch_round_trips(nnc, src, work)
    print("import round trips: ok")


if __name__ == "__main__":
    main()
