#!/usr/bin/python3
"""train_ref.py -- data sets and NumPy references for tests/train/run_train.sh.

Shares no code with nnc: the network, its gradient and the safetensors reader come from
tests/examples/ref_nets.py; Adam is written out here from its published formulas
(Kingma & Ba 2015, as in torch.optim.Adam with weight_decay 0).

Usage (run with /usr/bin/python3):
  train_ref.py blobs SEED N OUT_X.npy OUT_Y.npy
      N samples of 10 Gaussian clusters in 784 dimensions (class means drawn once from
      SEED, N(0, 0.15^2 I); unit isotropic noise), float32 x and int32 labels
  train_ref.py accuracy W.safetensors X.npy Y.npy
      prints the mlp's accuracy with these weights (argmax of the logits, first maximum)
  train_ref.py adam W0.safetensors X.npy Y.npy STEPS LR OUT.safetensors
      STEPS full-batch Adam steps (beta1 0.9, beta2 0.999, eps 1e-8) of the mlp from W0;
      writes the parameters, <p>.adam_m and <p>.adam_v in float64
  train_ref.py show W.safetensors NAME
      prints the shape and the values of one tensor ("() [3.]")
"""
import importlib.util
import os
import sys

import numpy as np

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "ref_nets", os.path.join(_here, "..", "examples", "ref_nets.py"))
ref_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref_nets)


def blobs(seed, n, xpath, ypath):
    means = np.random.default_rng(1000).standard_normal((10, 784)) * 0.15
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = means[y] + rng.standard_normal((n, 784))
    np.save(xpath, x.astype(np.float32))
    np.save(ypath, y.astype(np.int32))


def accuracy(wpath, xpath, ypath):
    p = {k: v.astype(np.float64) for k, v in ref_nets.st_read(wpath).items()}
    logits = ref_nets.mlp(p, np.load(xpath).astype(np.float64))
    y = np.load(ypath)
    print(f"{np.mean(logits.argmax(axis=1) == y):.4f}")


def adam(w0, xpath, ypath, steps, lr, out):
    names = [k for k, _ in ref_nets.NETS["mlp"][1]]
    w = ref_nets.st_read(w0)
    p = {k: w[k].astype(np.float64) for k in names}
    x = np.load(xpath).astype(np.float64)
    y = np.load(ypath).astype(np.int64)
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = {k: np.zeros_like(p[k]) for k in names}
    v = {k: np.zeros_like(p[k]) for k in names}
    for t in range(1, steps + 1):
        g = ref_nets.mlp_grad(p, x, y)
        for k in names:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            mhat = m[k] / (1 - b1 ** t)
            vhat = v[k] / (1 - b2 ** t)
            p[k] = p[k] - lr * mhat / (np.sqrt(vhat) + eps)
    res = dict(p)
    for k in names:
        res[k + ".adam_m"] = m[k]
        res[k + ".adam_v"] = v[k]
    ref_nets.write_file(out, ref_nets.st_bytes(res))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "blobs":
        blobs(int(argv[2]), int(argv[3]), argv[4], argv[5])
    elif cmd == "accuracy":
        accuracy(*argv[2:5])
    elif cmd == "adam":
        adam(argv[2], argv[3], argv[4], int(argv[5]), float(argv[6]), argv[7])
    elif cmd == "show":
        t = ref_nets.st_read(argv[2])[argv[3]]
        print(t.shape, t.reshape(-1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
