#!/usr/bin/env python3
"""bench_memory.py — report vs measurement of every example's memory (bench/RESULTS.md).

For each example: `nnc build` with the dims below, `NAME info --threads T` for the expected
peak of `infer` and `train`, then both commands on random data under tests/memory's
peak_anon, which samples the private memory (RssAnon) of the process. Prints a Markdown
table.

usage: bench_memory.py BUILD_DIR [--threads T] [--only NAME,...]
"""
import os, re, subprocess, sys, tempfile
import numpy as np

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# example, -D dims, samples for infer, samples for train (None: no train section)
RUNS = [
    ("linreg", ["N=100"], 1000, 1000),
    ("mlp", ["N=64"], 64, 60000),
    ("lenet", ["N=64"], 256, 2048),
    ("resnet18", ["N=8"], 8, 32),
    ("resnet50", ["N=4", "S=128"], 8, 16),
    ("mobilenet_v2", ["N=4", "S=128"], 8, 16),
    ("inception_a", ["N=8"], 16, None),
    ("gpt2_block", ["N=4"], 8, None),
]


def tensors_of(info, title):
    out, on = [], False
    for line in info.splitlines():
        if line == title:
            on = True
            continue
        if on and not line.startswith("  "):
            break
        if on:
            name, ty = line.split()[:2]
            dt, dims = re.match(r"(\w+)\[(.*)\]", ty).groups()
            out.append((name, dt, [int(d) for d in dims.split(",") if d]))
    return out


def data(t, inputs, batch, n, tag):
    r = np.random.default_rng(1)
    files = []
    for name, dt, shape in inputs:
        shp = ([n] + shape[1:]) if shape and shape[0] == batch else shape
        if dt == "i32":
            a = r.integers(0, 10, shp).astype(np.int32)
        else:
            a = r.standard_normal(shp, dtype=np.float32)
        p = f"{t}/{tag}_{name}.npy"
        np.save(p, a)
        files.append(f"{name}={p}")
    return ",".join(files)


def peak(build, cmd):
    r = subprocess.run([f"{build}/peak_anon", "--"] + cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-500:]}")
    return int(re.search(r"peak_anon_bytes (\d+)", r.stderr).group(1))


def mib(b):
    return f"{b / 1048576:.1f}"


def main():
    build = sys.argv[1]
    threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "2"
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
    print(f"| example | dims | infer: samples | expected MiB | measured MiB | train: samples | expected MiB | measured MiB |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as t:
        for ex, dims, ni, nt in RUNS:
            if only and ex not in only:
                continue
            prog = f"{t}/{ex}"
            cmd = [f"{build}/nnc", "build", f"{SRC}/examples/{ex}.nn", "-o", prog]
            for d in dims:
                cmd += ["-D", d]
            subprocess.run(cmd, check=True, capture_output=True)
            info = subprocess.run([prog, "info", "--threads", threads], check=True,
                                  capture_output=True, text=True).stdout
            m = re.search(r"expected peak bytes: infer (\d+) \+ (\d+)/sample(?:, train (\d+) \+ 8/sample)?", info)
            batch = int(re.search(r"batch (\d+)", info).group(1))
            ins = tensors_of(info, "inputs:")
            outs = tensors_of(info, "outputs:")
            fwd = [i for i in ins if not (i[1] == "i32" and i[0] == "label")]
            want_i = int(m.group(1)) + int(m.group(2)) * ni
            got_i = peak(build, [prog, "infer", "--seed", "1", "--threads", threads, "--in",
                                 data(t, fwd, batch, ni, "i"), "--out", f"{outs[0][0]}={t}/o.npy"])
            row = f"| {ex} | {' '.join(dims)} | {ni} | {mib(want_i)} | {mib(got_i)} |"
            if nt and m.group(3):
                want_t = int(m.group(3)) + 8 * nt
                got_t = peak(build, [prog, "train", "--seed", "1", "-q", "--threads", threads,
                                     "--data", data(t, ins, batch, nt, "t")])
                row += f" {nt} | {mib(want_t)} | {mib(got_t)} |"
            else:
                row += " — | — | — |"
            print(row, flush=True)


main()
