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
  train_ref.py train W0.safetensors X.npy Y.npy EPOCHS BATCH SEED LR OUT.safetensors
      what `nnc run --train` does, step for step: each epoch shuffles the sample indices
      (Fisher-Yates, j = splitmix64() % (i + 1) for i = n-1 .. 1, one splitmix64 stream
      seeded with SEED that runs on across epochs, the permutation carried over), takes
      n // BATCH batches in that order and makes one Adam step per batch; prints
      "epoch E: loss L  accuracy A" per epoch (mean batch loss, training accuracy before
      each step's update) and writes the parameters and Adam state
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


NAMES = [k for k, _ in ref_nets.NETS["mlp"][1]]


class Adam:
    def __init__(self, p, lr):
        self.p, self.lr, self.t = p, lr, 0
        self.b1, self.b2, self.eps = 0.9, 0.999, 1e-8
        self.m = {k: np.zeros_like(p[k]) for k in NAMES}
        self.v = {k: np.zeros_like(p[k]) for k in NAMES}

    def step(self, g):
        self.t += 1
        b1, b2, t = self.b1, self.b2, self.t
        for k in NAMES:
            self.m[k] = b1 * self.m[k] + (1 - b1) * g[k]
            self.v[k] = b2 * self.v[k] + (1 - b2) * g[k] ** 2
            mhat = self.m[k] / (1 - b1 ** t)
            vhat = self.v[k] / (1 - b2 ** t)
            self.p[k] = self.p[k] - self.lr * mhat / (np.sqrt(vhat) + self.eps)

    def save(self, out):
        res = dict(self.p)
        for k in NAMES:
            res[k + ".adam_m"] = self.m[k]
            res[k + ".adam_v"] = self.v[k]
        ref_nets.write_file(out, ref_nets.st_bytes(res))


def load(w0, xpath, ypath):
    w = ref_nets.st_read(w0)
    p = {k: w[k].astype(np.float64) for k in NAMES}
    return p, np.load(xpath).astype(np.float64), np.load(ypath).astype(np.int64)


def adam(w0, xpath, ypath, steps, lr, out):
    p, x, y = load(w0, xpath, ypath)
    opt = Adam(p, lr)
    for _ in range(steps):
        opt.step(ref_nets.mlp_grad(p, x, y))
    opt.save(out)


M64 = (1 << 64) - 1


def splitmix64(state):
    state[0] = (state[0] + 0x9E3779B97F4A7C15) & M64
    z = state[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def train(w0, xpath, ypath, epochs, batch, seed, lr, out):
    p, x, y = load(w0, xpath, ypath)
    opt = Adam(p, lr)
    n = len(y)
    perm = list(range(n))
    rng = [seed]
    for e in range(epochs):
        for i in range(n - 1, 0, -1):
            j = splitmix64(rng) % (i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        losses, correct = [], 0
        for s in range(n // batch):
            idx = perm[s * batch:(s + 1) * batch]
            xb, yb = x[idx], y[idx]
            logits = ref_nets.mlp(p, xb)
            losses.append(ref_nets.cross_entropy(logits, yb))
            correct += int(np.sum(logits.argmax(axis=1) == yb))
            opt.step(ref_nets.mlp_grad(p, xb, yb))
        print(f"epoch {e + 1}: loss {np.mean(losses):.9g}  accuracy "
              f"{correct / (n // batch * batch):.9g}")
    opt.save(out)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "blobs":
        blobs(int(argv[2]), int(argv[3]), argv[4], argv[5])
    elif cmd == "accuracy":
        accuracy(*argv[2:5])
    elif cmd == "adam":
        adam(argv[2], argv[3], argv[4], int(argv[5]), float(argv[6]), argv[7])
    elif cmd == "train":
        train(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]), int(argv[7]),
              float(argv[8]), argv[9])
    elif cmd == "show":
        t = ref_nets.st_read(argv[2])[argv[3]]
        print(t.shape, t.reshape(-1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
