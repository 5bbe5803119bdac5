#!/usr/bin/python3
"""torch_mlp.py — the PyTorch eager (CPU) side of bench/bench_mlp.sh.

Times one training step (forward, cross-entropy, backward, Adam update) of an MLP with
nn.Linear layers and ReLU between them, the network of bench/mlp3.nn or examples/mlp.nn,
with the same optimizer settings as their train sections (adam, lr 1e-3, betas 0.9/0.999,
eps 1e-8). Data as in bench/mlp_step.c: a fresh batch every step, made outside the timed
region, inputs uniform in [-1, 1), labels uniform over the classes.

    /usr/bin/python3 bench/torch_mlp.py --layers 784,512,512,10 --batch 64 --threads 1
    /usr/bin/python3 bench/torch_mlp.py --info      # which BLAS / kernels PyTorch uses

Prints one line per run: `torch <layers> batch B threads T steps K median_ms M best_ms B
mean_ms A loss_first L0 loss_last L1 blas_threads T2`.
"""
import argparse
import ctypes
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def loaded_libs():
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in p or "dnnl" in p or "mkl" in p or "gomp" in p:
                libs.add(p)
    return sorted(libs)


def openblas():
    """the OpenBLAS library torch loaded (through libblas.so.3), or None"""
    for p in loaded_libs():
        if "libopenblas" in p:
            return ctypes.CDLL(p)
    return None


def blas_info():
    """The BLAS PyTorch runs its float32 GEMMs on, and OpenBLAS's kernel set if that is it."""
    print("torch", torch.__version__, "| mkldnn available:", torch.backends.mkldnn.is_available())
    for line in torch.__config__.show().splitlines():
        line = line.strip()
        if "BLAS" in line or "MKL" in line or "CPU capability" in line or "OpenMP" in line:
            print("  config:", line[:200])
    libs = loaded_libs()
    for p in libs:
        print("  loaded:", p)
    try:
        import threadpoolctl  # noqa: F401
        for d in threadpoolctl.threadpool_info():
            print("  threadpoolctl:", d.get("internal_api"), d.get("architecture"),
                  d.get("version"), d.get("filepath"))
    except ImportError:
        lib = openblas()
        if lib:
            for fn in ("openblas_get_corename", "openblas_get_config"):
                f = getattr(lib, fn)
                f.restype = ctypes.c_char_p
                print("  %s: %s" % (fn, f().decode()))


def make_model(layers):
    mods = []
    for i in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
        if i + 2 < len(layers):
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="784,512,512,10")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--foreach", action="store_true",
                    help="Adam's multi-tensor implementation (default: PyTorch's default)")
    ap.add_argument("--info", action="store_true")
    a = ap.parse_args()
    if a.info:
        blas_info()
        return 0
    torch.set_num_threads(a.threads)
    # torch.set_num_threads sizes PyTorch's OpenMP pool only; OpenBLAS (which runs the
    # float32 GEMMs of this build) keeps one thread per CPU unless told
    lib = openblas()
    blas_threads = 0
    if lib:
        lib.openblas_set_num_threads(a.threads)
        blas_threads = lib.openblas_get_num_threads()
    torch.manual_seed(1)
    layers = [int(v) for v in a.layers.split(",")]
    model = make_model(layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           foreach=True if a.foreach else None)
    ts = []
    first = last = float("nan")
    for s in range(a.warmup + a.steps):
        x = torch.rand(a.batch, layers[0]) * 2 - 1
        y = torch.randint(0, layers[-1], (a.batch,))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        lv = loss.item()
        t1 = time.perf_counter()
        if s == 0:
            first = lv
        last = lv
        if s >= a.warmup:
            ts.append(t1 - t0)
    print("torch %s batch %d threads %d steps %d median_ms %.4f best_ms %.4f mean_ms %.4f "
          "loss_first %.4f loss_last %.4f blas_threads %d" % (
              "-".join(map(str, layers)), a.batch, torch.get_num_threads(), a.steps,
              1e3 * statistics.median(ts), 1e3 * min(ts), 1e3 * sum(ts) / len(ts), first, last, blas_threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
