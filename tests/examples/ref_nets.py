#!/usr/bin/python3
"""ref_nets.py -- an independent NumPy implementation of examples/mlp.nn and examples/lenet.nn.

It shares no code with nnc: safetensors files are read and written here with struct + json
(the format is an 8-byte little-endian header length, a JSON header mapping each tensor name
to {dtype, shape, data_offsets}, then the raw little-endian data), and every layer is
written out with NumPy in float64. The end-to-end tests use it to generate random weights and
inputs, to compute the reference result of the forward pass, and to build the broken files
the runtime must reject.

Usage (run with /usr/bin/python3, which has NumPy):
  ref_nets.py gen NET SEED OUTDIR        weights.safetensors, x.npy, label.npy in OUTDIR
  ref_nets.py forward NET W.safetensors X.npy LABEL.npy OUTDIR
                                         logits.npy (float64) and loss.npy in OUTDIR
  ref_nets.py grad NET W.safetensors X.npy LABEL.npy OUT.safetensors
                                         gradients of the loss for every parameter (F64),
                                         by hand-written backpropagation
  ref_nets.py selftest                   checks grad against central finite differences
  ref_nets.py compare GOT.npy REF.npy RTOL ATOL
                                         prints the max differences; exit 1 beyond tolerance
  ref_nets.py st-drop W.safetensors NAME OUT.safetensors     copy without tensor NAME
  ref_nets.py st-reshape W.safetensors NAME OUT.safetensors  tensor NAME with its axes
                                         reversed (same data, wrong shape)
  ref_nets.py st-truncate W.safetensors BYTES OUT.safetensors keep the first BYTES bytes
  ref_nets.py npy NPY DTYPE DIM...       random array of that dtype and shape
"""
import json
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------------------
# safetensors, by hand

_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
              "I32": np.int32, "I64": np.int64}
_ST_NAMES = {np.dtype(v).str: k for k, v in _ST_DTYPES.items()}


def st_read(path):
    """name -> ndarray (in the file's dtype); keeps the file's order."""
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    data = buf[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<")
        lo, hi = info["data_offsets"]
        shape = tuple(info["shape"])
        arr = np.frombuffer(data[lo:hi], dtype=dt)
        assert arr.size == int(np.prod(shape, dtype=np.int64)), name
        out[name] = arr.reshape(shape).astype(dt.newbyteorder("="))
    return out


def st_bytes(tensors):
    """the bytes of a safetensors file holding tensors (an ordered name -> ndarray map)"""
    header, chunks, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.array(arr, order="C")  # keeps 0-d arrays 0-d (ascontiguousarray would not)
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _ST_NAMES[a.dtype.newbyteorder("<").str],
                        "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------
# the networks, in float64

def dense(x, w, b):
    # PyTorch nn.Linear: weight [out, in], y = x W^T + b
    return x @ w.T + b


def relu(x):
    return np.maximum(x, 0.0)


def conv2d(x, w, b, pad):
    """x [N,C,H,W], w [O,C,KH,KW], stride 1, zero padding pad; cross-correlation as in
    PyTorch, written as a sum over kernel offsets (no im2col shared with anyone)."""
    n, c, h, wd = x.shape
    o, c2, kh, kw = w.shape
    assert c == c2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + oh, j:j + ow]             # [N,C,OH,OW]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y + b[None, :, None, None]


def maxpool2(x):
    """2x2 window, stride 2 (H, W even here)"""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def cross_entropy(logits, label):
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return np.mean(lse - logits[np.arange(len(label)), label])


def mlp(p, x):
    # 784 -> 512 -> relu -> 10
    h = relu(dense(x, p["fc1.weight"], p["fc1.bias"]))
    return dense(h, p["fc2.weight"], p["fc2.bias"])


def lenet(p, x):
    # LeNet-5 on 1x28x28 (conv1 padded to keep 28x28), ReLU and max pooling
    h = maxpool2(relu(conv2d(x, p["conv1.weight"], p["conv1.bias"], 2)))   # 6x14x14
    h = maxpool2(relu(conv2d(h, p["conv2.weight"], p["conv2.bias"], 0)))   # 16x5x5
    h = h.reshape(h.shape[0], -1)                                           # 400
    h = relu(dense(h, p["fc1.weight"], p["fc1.bias"]))
    h = relu(dense(h, p["fc2.weight"], p["fc2.bias"]))
    return dense(h, p["fc3.weight"], p["fc3.bias"])


# --- backward: each takes the upstream gradient and what the forward pass saw -------------

def dense_bwd(dy, x, w):
    return dy @ w, dy.T @ x, dy.sum(axis=0)                    # dx, dw, db


def conv2d_bwd(dy, x, w, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = dy.shape[2], dy.shape[3]
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + oh, j:j + ow]
            dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, patch)
            dxp[:, :, i:i + oh, j:j + ow] += np.einsum("nohw,oc->nchw", dy, w[:, :, i, j])
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw, dy.sum(axis=(0, 2, 3))


def maxpool2_bwd(dy, x):
    """routes each gradient to the maximum of its window (the first one on ties)"""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)
    onehot = np.eye(4)[win.argmax(axis=4)] * dy[..., None]     # [n,c,h/2,w/2,4]
    return onehot.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h, w)


def cross_entropy_bwd(logits, label):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)
    sm[np.arange(len(label)), label] -= 1.0
    return sm / len(label)


def mlp_grad(p, x, label):
    a1 = dense(x, p["fc1.weight"], p["fc1.bias"])
    h = relu(a1)
    logits = dense(h, p["fc2.weight"], p["fc2.bias"])
    g = {}
    dl = cross_entropy_bwd(logits, label)
    dh, g["fc2.weight"], g["fc2.bias"] = dense_bwd(dl, h, p["fc2.weight"])
    _, g["fc1.weight"], g["fc1.bias"] = dense_bwd(dh * (a1 > 0), x, p["fc1.weight"])
    return g


def lenet_grad(p, x, label):
    c1 = conv2d(x, p["conv1.weight"], p["conv1.bias"], 2)
    r1 = relu(c1)
    p1 = maxpool2(r1)
    c2 = conv2d(p1, p["conv2.weight"], p["conv2.bias"], 0)
    r2 = relu(c2)
    p2 = maxpool2(r2)
    f = p2.reshape(p2.shape[0], -1)
    a1 = dense(f, p["fc1.weight"], p["fc1.bias"])
    h1 = relu(a1)
    a2 = dense(h1, p["fc2.weight"], p["fc2.bias"])
    h2 = relu(a2)
    logits = dense(h2, p["fc3.weight"], p["fc3.bias"])
    g = {}
    d = cross_entropy_bwd(logits, label)
    d, g["fc3.weight"], g["fc3.bias"] = dense_bwd(d, h2, p["fc3.weight"])
    d, g["fc2.weight"], g["fc2.bias"] = dense_bwd(d * (a2 > 0), h1, p["fc2.weight"])
    d, g["fc1.weight"], g["fc1.bias"] = dense_bwd(d * (a1 > 0), f, p["fc1.weight"])
    d = maxpool2_bwd(d.reshape(p2.shape), r2) * (c2 > 0)
    d, g["conv2.weight"], g["conv2.bias"] = conv2d_bwd(d, p1, p["conv2.weight"], 0)
    d = maxpool2_bwd(d, r1) * (c1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv2d_bwd(d, x, p["conv1.weight"], 2)
    return g


GRADS = {"mlp": mlp_grad, "lenet": lenet_grad}


def selftest():
    """every gradient entry checked against a central difference of the float64 loss"""
    rng = np.random.default_rng(0)
    bad = 0
    for net, (fn, params, xshape) in NETS.items():
        p = {name: rng.uniform(-1, 1, size=shape) / np.sqrt(np.prod(shape[1:]) if len(shape) > 1
                                                             else shape[0])
             for name, shape in params}
        x = rng.standard_normal((3,) + xshape)
        label = rng.integers(0, 10, size=3)
        g = GRADS[net](p, x, label)
        worst = 0.0
        for name, _ in params:
            flat = p[name].reshape(-1)
            # every entry of the small tensors, a random sample of the big ones
            idx = range(flat.size) if flat.size <= 200 else rng.choice(flat.size, 200, False)
            for i in idx:
                old = flat[i]
                flat[i] = old + 1e-6
                up = cross_entropy(fn(p, x), label)
                flat[i] = old - 1e-6
                dn = cross_entropy(fn(p, x), label)
                flat[i] = old
                fd = (up - dn) / 2e-6
                err = abs(fd - g[name].reshape(-1)[i])
                worst = max(worst, err)
                if err > 1e-6 + 1e-4 * abs(fd):
                    bad += 1
                    print(f"FAIL {net} {name}[{i}]: backprop {g[name].reshape(-1)[i]!r}, "
                          f"finite difference {fd!r}")
        print(f"{net}: max |backprop - finite difference| = {worst:.3e}")
    return 1 if bad else 0


# name -> (forward, [(param, shape)], input shape without the batch)
NETS = {
    "mlp": (mlp, [("fc1.weight", (512, 784)), ("fc1.bias", (512,)),
                  ("fc2.weight", (10, 512)), ("fc2.bias", (10,))], (784,)),
    "lenet": (lenet, [("conv1.weight", (6, 1, 5, 5)), ("conv1.bias", (6,)),
                      ("conv2.weight", (16, 6, 5, 5)), ("conv2.bias", (16,)),
                      ("fc1.weight", (120, 400)), ("fc1.bias", (120,)),
                      ("fc2.weight", (84, 120)), ("fc2.bias", (84,)),
                      ("fc3.weight", (10, 84)), ("fc3.bias", (10,))], (1, 28, 28)),
}
BATCH = 5


def gen(net, seed, outdir):
    rng = np.random.default_rng(seed)
    _, params, xshape = NETS[net]
    tensors = {}
    for name, shape in params:
        # PyTorch's default Linear/Conv init range, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        # so activations keep a sensible scale through the layers
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        tensors[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    write_file(f"{outdir}/weights.safetensors", st_bytes(tensors))
    np.save(f"{outdir}/x.npy", rng.standard_normal((BATCH,) + xshape).astype(np.float32))
    np.save(f"{outdir}/label.npy", rng.integers(0, 10, size=BATCH).astype(np.int32))


def forward(net, wpath, xpath, lpath, outdir):
    fn, params, _ = NETS[net]
    p = {k: v.astype(np.float64) for k, v in st_read(wpath).items()}
    x = np.load(xpath).astype(np.float64)
    label = np.load(lpath).astype(np.int64)
    logits = fn(p, x)
    np.save(f"{outdir}/logits.npy", logits)
    np.save(f"{outdir}/loss.npy", np.array(cross_entropy(logits, label)))


def compare(got_path, ref_path, rtol, atol):
    got = np.load(got_path).astype(np.float64)
    ref = np.load(ref_path).astype(np.float64)
    if got.shape != ref.shape:
        print(f"FAIL {got_path}: shape {got.shape}, reference {ref.shape}")
        return 1
    diff = np.abs(got - ref)
    rel = diff / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
    bad = diff > atol + rtol * np.abs(ref)
    print(f"{got_path}: max |got-ref| = {diff.max():.3e}, max relative = {rel.max():.3e}, "
          f"max |ref| = {np.abs(ref).max():.3e} (rtol {rtol:g}, atol {atol:g})")
    if bad.any():
        i = np.unravel_index(np.argmax(diff - rtol * np.abs(ref)), ref.shape)
        print(f"FAIL: {int(bad.sum())} of {ref.size} elements beyond tolerance; "
              f"worst at {tuple(int(k) for k in i)}: got {got[i]!r}, reference {ref[i]!r}")
        return 1
    return 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "gen":
        gen(argv[2], int(argv[3]), argv[4])
    elif cmd == "forward":
        forward(*argv[2:7])
    elif cmd == "grad":
        p = {k: v.astype(np.float64) for k, v in st_read(argv[3]).items()}
        x = np.load(argv[4]).astype(np.float64)
        label = np.load(argv[5]).astype(np.int64)
        g = GRADS[argv[2]](p, x, label)
        write_file(argv[6], st_bytes({k: g[k] for k, _ in NETS[argv[2]][1]}))
    elif cmd == "selftest":
        return selftest()
    elif cmd == "compare":
        return compare(argv[2], argv[3], float(argv[4]), float(argv[5]))
    elif cmd == "st-drop":
        t = st_read(argv[2])
        del t[argv[3]]
        write_file(argv[4], st_bytes(t))
    elif cmd == "st-reshape":
        t = st_read(argv[2])
        t[argv[3]] = t[argv[3]].reshape(t[argv[3]].shape[::-1])
        write_file(argv[4], st_bytes(t))
    elif cmd == "st-truncate":
        with open(argv[2], "rb") as f:
            write_file(argv[4], f.read()[:int(argv[3])])
    elif cmd == "npy":
        shape = tuple(int(d) for d in argv[4:])
        rng = np.random.default_rng(1)
        np.save(argv[2], rng.standard_normal(shape).astype(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
