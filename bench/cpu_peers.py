#!/usr/bin/python3
"""cpu_peers.py -- the peer side of bench/cpu_peers.sh: one measurement per call, printed as
one line `peer NAME median_ms M best_ms B` (or `skip NAME: reason` when the peer is not
installed). The caller pins the process to its CPUs (taskset) and passes the thread count.

  cpu_peers.py --find                                 which peers are installed, their versions
  cpu_peers.py blas N THREADS [K N2]                  OpenBLAS cblas_sgemm N x N x N (or N x K x N2:
                                                      A[N, K] times B[K, N2])
  cpu_peers.py ort resnet18|mobilenet_v2 BATCH SIDE THREADS    ONNX Runtime inference
  cpu_peers.py torch-train resnet18|mobilenet_v2|lenet BATCH SIDE THREADS   PyTorch eager step
  cpu_peers.py jax-mlp BATCH THREADS                  JAX jit step, MLP 784-512-512-10, Adam

The networks are the ones of examples/*.nn (torchvision's resnet18 and mobilenet_v2, the
LeNet-5 of examples/lenet.nn, bench/mlp3.nn), with the optimizers of their train sections.

CPU_PEERS_CLOCK=process times each step by the process's CPU time (time.process_time)
instead of the wall clock: on a loaded machine, the figure to set beside an nnc program's
CPU time per step.
"""
import ctypes
import ctypes.util
import os
import statistics
import sys
import tempfile
import time


def timeit(step, warmup, min_iters, min_s=1.0):
    for _ in range(warmup):
        step()
    ts = []
    clock = time.process_time if os.environ.get("CPU_PEERS_CLOCK") == "process" else time.perf_counter
    t_end = time.perf_counter() + min_s
    while len(ts) < min_iters or (time.perf_counter() < t_end and len(ts) < 1000):
        t0 = clock()
        step()
        ts.append(clock() - t0)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def report(name, med, best):
    print(f"peer {name} median_ms {med:.4f} best_ms {best:.4f}")


# ---- OpenBLAS ---------------------------------------------------------------------------

def openblas():
    for nm in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if nm:
            try:
                return ctypes.CDLL(nm)
            except OSError:
                pass
    return None


def blas(m, threads, k=None, n=None):
    import numpy as np
    lib = openblas()
    if lib is None:
        print("skip openblas: libopenblas not found")
        return
    k = m if k is None else k
    n = m if n is None else n
    lib.openblas_set_num_threads(threads)
    lib.openblas_get_corename.restype = ctypes.c_char_p
    core = lib.openblas_get_corename().decode()
    r = np.random.default_rng(0)
    a = r.standard_normal((m, k), dtype=np.float32)
    b = r.standard_normal((k, n), dtype=np.float32)
    c = np.zeros((m, n), dtype=np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    pa, pb, pc = (x.ctypes.data_as(fp) for x in (a, b, c))
    one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def step():  # CblasRowMajor = 101, CblasNoTrans = 111
        lib.cblas_sgemm(101, 111, 111, m, n, k, one, pa, k, pb, n, zero, pc, n)

    big = 2.0 * m * n * k >= 2.0 * 2048 ** 3
    med, best = timeit(step, 2, 3 if big else 10)
    ref = a[:8].astype(np.float64) @ b.astype(np.float64)
    err = float(np.abs(c[:8] - ref).max() / np.abs(ref).max())
    if err > 1e-4:
        print(f"error openblas: result differs from numpy by {err:.2e}")
        sys.exit(1)
    report(f"openblas-{core}", med, best)


# ---- networks (torch) -------------------------------------------------------------------

def torch_net(name):
    import torch.nn as nn
    import torchvision
    if name == "resnet18":
        return torchvision.models.resnet18(), 1000
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(), 1000
    if name == "lenet":  # examples/lenet.nn
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10)), 10
    raise SystemExit(f"unknown network {name}")


def optimizer(name, params):
    import torch
    if name == "resnet18":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    if name == "mobilenet_v2":
        return torch.optim.SGD(params, lr=0.045, momentum=0.9, weight_decay=4e-5)
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def ort(name, batch, side, threads):
    try:
        import onnxruntime as rt
        import torch
    except ImportError as e:
        print(f"skip onnxruntime: {e}")
        return
    import numpy as np
    torch.set_num_threads(threads)
    net, _ = torch_net(name)
    net.eval()
    x = torch.randn(batch, 3, side, side)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{name}.onnx")
        torch.onnx.export(net, x, path, opset_version=17, input_names=["img"],
                          output_names=["logits"])
        so = rt.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"img": x.numpy().astype(np.float32)}
    med, best = timeit(lambda: sess.run(None, feed), 3, 10)
    report(f"onnxruntime-{rt.__version__}", med, best)


def torch_train(name, batch, side, threads):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"skip torch: {e}")
        return
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, classes = torch_net(name)
    net.train()
    opt = optimizer(name, net.parameters())
    chans = 1 if name == "lenet" else 3
    x = torch.rand(batch, chans, side, side) * 2 - 1
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    med, best = timeit(step, 3, 5)
    report(f"torch-{torch.__version__.split('+')[0]}", med, best)


# ---- JAX --------------------------------------------------------------------------------

def jax_mlp(batch, threads):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        print(f"skip jax: {e}")
        return
    sizes = (784, 512, 512, 10)
    key = jax.random.PRNGKey(0)
    params = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        key, k1, k2 = jax.random.split(key, 3)
        s = 1.0 / i ** 0.5
        params.append((jax.random.uniform(k1, (o, i), minval=-s, maxval=s),
                       jax.random.uniform(k2, (o,), minval=-s, maxval=s)))

    def loss(ps, x, y):
        h = x
        for j, (w, b) in enumerate(ps):
            h = h @ w.T + b
            if j + 1 < len(ps):
                h = jax.nn.relu(h)
        lp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(lp, y[:, None], axis=1))

    @jax.jit
    def step(ps, m, v, t, x, y):  # Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8
        g = jax.grad(loss)(ps, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        ps = jax.tree_util.tree_map(
            lambda p, a, b: p - 1e-3 * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), ps, m, v)
        return ps, m, v, t

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]
    key, k1, k2 = jax.random.split(key, 3)
    x = jax.random.uniform(k1, (batch, 784), minval=-1, maxval=1)
    y = jax.random.randint(k2, (batch,), 0, 10)

    def run():
        state[:] = step(*state, x, y)
        jax.block_until_ready(state[0])

    med, best = timeit(run, 5, 20)
    report(f"jax-{jax.__version__}", med, best)


def find():
    def ver(mod):
        try:
            return __import__(mod).__version__
        except Exception:  # noqa: BLE001 - any failure means "not usable"
            return None
    lib = openblas()
    if lib is not None:
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        print(f"openblas: {lib.openblas_get_config().decode()}; kernels: "
              f"{lib.openblas_get_corename().decode()}")
    else:
        print("openblas: not found")
    for mod in ("numpy", "torch", "torchvision", "onnxruntime", "jax"):
        v = ver(mod)
        print(f"{mod}: {v if v else 'not installed'}")


def main(a):
    if a[:1] == ["--find"]:
        return find()
    kind, rest = a[0], a[1:]
    if kind == "blas":
        return blas(*(int(x) for x in rest))
    if kind == "ort":
        return ort(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    if kind == "torch-train":
        return torch_train(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    if kind == "jax-mlp":
        return jax_mlp(int(rest[0]), int(rest[1]))
    raise SystemExit(f"unknown measurement {kind}")


if __name__ == "__main__":
    main(sys.argv[1:])
