#!/usr/bin/python3
"""compare_st.py -- compares the tensors of two safetensors files by name.

Usage: compare_st.py GOT.safetensors REF.safetensors RTOL ATOL [--loss LOSS.npy] [NAME...]
Every tensor of REF (or only the NAMEs) must be in GOT with the same shape and satisfy
|got - ref| <= ATOL + RTOL*|ref| elementwise; GOT may not hold tensors REF lacks unless
NAMEs are given. --loss adds LOSS.npy to REF as the tensor "loss". Prints the max differences per tensor; exit 1 on any failure. The files are
read with tests/examples/ref_nets.py's own safetensors reader (struct + json, no nnc code).
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


def main(argv):
    got, ref = ref_nets.st_read(argv[1]), ref_nets.st_read(argv[2])
    rtol, atol = float(argv[3]), float(argv[4])
    rest = argv[5:]
    if rest[:1] == ["--loss"]:
        ref["loss"] = np.load(rest[1])
        rest = rest[2:]
    names = rest or list(ref)
    bad = 0
    if not rest and set(got) != set(ref):
        print(f"FAIL: tensor names differ: only in {argv[1]}: {sorted(set(got) - set(ref))}, "
              f"only in {argv[2]}: {sorted(set(ref) - set(got))}")
        bad = 1
    for name in names:
        if name not in got or name not in ref:
            print(f"FAIL {name}: missing from {argv[1] if name not in got else argv[2]}")
            bad = 1
            continue
        g, r = got[name].astype(np.float64), ref[name].astype(np.float64)
        if g.shape != r.shape:
            print(f"FAIL {name}: shape {g.shape}, reference {r.shape}")
            bad = 1
            continue
        diff = np.abs(g - r)
        rel = diff / np.maximum(np.abs(r), np.finfo(np.float64).tiny)
        over = diff > atol + rtol * np.abs(r)
        print(f"  {name}: max |got-ref| = {diff.max():.3e}, max relative = {rel.max():.3e}, "
              f"max |ref| = {np.abs(r).max():.3e}")
        if over.any():
            i = np.unravel_index(np.argmax(diff - rtol * np.abs(r)), r.shape)
            print(f"FAIL {name}: {int(over.sum())} of {r.size} elements beyond rtol {rtol:g} "
                  f"atol {atol:g}; worst at {tuple(int(k) for k in i)}: got {g[i]!r}, "
                  f"reference {r[i]!r}")
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv))
