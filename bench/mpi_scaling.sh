#!/usr/bin/env bash
# mpi_scaling.sh — data-parallel training on this machine (bench/RESULTS.md): the step time
# of the mlp (batch N per rank) in one process and under `mpirun -np 2` (one thread per
# rank, so two ranks use two cores), interleaved over REPS repetitions (median and best of
# the epochs after the first), and the measured time of one all-reduce of the gradients
# (bench_allreduce.c, from a barrier) against `nnc cost --train --ranks 2 --link shm`; then
# the all-reduce overlapping the backward pass (the default) against --no-overlap at P=2, in
# 25 MiB buckets and in BKIB KiB buckets, against the overlap `nnc cost --bucket-kib` estimates.
# Then the same four P=2 variants of the mlp at batch 16 built `--mpi --target cuda-emu`
# (EMU_REPS repetitions, 0 to skip): the CUDA build's overlapped all-reduce between its
# launches, on the emulation. Emulation timings are the CPU's running the generated CUDA C
# one launch at a time, not a GPU's: they show the host-side cost of the buckets, not what
# NCCL overlaps on a GPU.
#   bench/mpi_scaling.sh [NNC] [N] [REPS] [BKIB]
set -eu
NNC=${1:-build/nnc}
N=${2:-64}
REPS=${3:-5}
BKIB=${4:-256}
EMU_REPS=${EMU_REPS:-2}
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
"$NNC" build "$SRC/examples/mlp.nn" -D N="$N" -o "$T/p1"
"$NNC" build "$SRC/examples/mlp.nn" -D N="$N" --mpi -o "$T/p2"
mpicc -O2 "$SRC/bench/bench_allreduce.c" -o "$T/bar"
/usr/bin/python3 -c "
import numpy as np; r = np.random.default_rng(0)
np.save('$T/x.npy', r.standard_normal((64 * $N, 784), dtype=np.float32))
np.save('$T/y.npy', r.integers(0, 10, 64 * $N, dtype=np.int32))"
D="x=$T/x.npy,label=$T/y.npy"
# also: two single processes at once, what this machine gives two processes without MPI
MPI=(mpirun --oversubscribe -np 2 "$T/p2" train --data "$D" --epochs 3 --threads 1)
for r in $(seq "$REPS"); do
  "$T/p1" train --data "$D" --epochs 3 --threads 1 >>"$T/p1.txt" 2>&1
  "${MPI[@]}" >>"$T/p2.txt" 2>&1
  "${MPI[@]}" --no-overlap >>"$T/p2n.txt" 2>&1
  "${MPI[@]}" --bucket-kib "$BKIB" >>"$T/p2b.txt" 2>&1
  "${MPI[@]}" --bucket-kib "$BKIB" --no-overlap >>"$T/p2bn.txt" 2>&1
  "$T/p1" train --data "$D" --epochs 3 --threads 1 >>"$T/pp.txt" 2>&1 &
  "$T/p1" train --data "$D" --epochs 3 --threads 1 >/dev/null 2>&1
  wait
done
# epoch lines: "epoch k/3  loss L  S samples/s  T s"; steps per epoch: samples / global batch
/usr/bin/python3 - "$T/p1.txt" "$T/p2.txt" "$N" "$T/pp.txt" "$T/p2n.txt" "$T/p2b.txt" "$T/p2bn.txt" "$BKIB" <<'PYEOF'
import re, statistics, sys
N = int(sys.argv[3])
a = sys.argv
for path, P, what in ((a[1], 1, "one process"), (a[2], 2, "mpirun -np 2 (overlapped)"),
                      (a[5], 2, "mpirun -np 2 --no-overlap"),
                      (a[6], 2, f"mpirun -np 2 --bucket-kib {a[8]} (overlapped)"),
                      (a[7], 2, f"mpirun -np 2 --bucket-kib {a[8]} --no-overlap"),
                      (a[4], 1, "one of two single processes running at once")):
    ts = [float(m.group(2)) for m in re.finditer(r"epoch (\d)/3 .* ([0-9.]+) s", open(path).read())
          if m.group(1) != "1"]
    steps = 64 * N // (N * P)
    ms = sorted(1e3 * t / steps for t in ts)
    print(f"{what:44s} P={P}: global batch {N * P:4d}, step median {statistics.median(ms):.2f} ms, best {ms[0]:.2f} ms, "
          f"{N * P / statistics.median(ms) * 1e3:.0f} samples/s (median; {len(ms)} epochs)")
PYEOF
for f in p2 p2n p2b p2bn; do grep -o "all-reduce of the gradients.*" "$T/$f.txt" | tail -1; done
mpirun --oversubscribe -np 2 "$T/bar" 1628200 200
for b in 25600 "$BKIB"; do
  echo "nnc cost --bucket-kib $b:"
  "$NNC" cost "$SRC/examples/mlp.nn" -D N="$N" --train --ranks 2 --link shm --bucket-kib "$b" |
    grep -E "gradients per rank|ring all-reduce|overlapped|step per rank|scaling"
done
[ "$EMU_REPS" -gt 0 ] || exit 0
"$NNC" build "$SRC/examples/mlp.nn" -D N=16 --mpi --target cuda-emu -o "$T/e2"
/usr/bin/python3 -c "
import numpy as np; x = np.load('$T/x.npy')[:512]; y = np.load('$T/y.npy')[:512]
np.save('$T/ex.npy', x); np.save('$T/ey.npy', y)"
D="x=$T/ex.npy,label=$T/ey.npy" # 512 samples: 16 steps of 2 x 16 an epoch
for r in $(seq "$EMU_REPS"); do
  for v in ov no ovb nob; do
    a=()
    case $v in no) a=(--no-overlap) ;; ovb) a=(--bucket-kib "$BKIB") ;; nob) a=(--bucket-kib "$BKIB" --no-overlap) ;; esac
    mpirun --oversubscribe -np 2 "$T/e2" train --data "$D" --epochs 2 --threads 1 "${a[@]}" 2>&1 |
      head -c 100000 >>"$T/e$v.txt"
  done
done
# the step time from the second epoch's line (16 steps)
/usr/bin/python3 - "$T" "$BKIB" <<'PYEOF'
import re, statistics, sys
T, B = sys.argv[1], sys.argv[2]
for v, what in (("ov", "cuda-emu, overlapped, 25 MiB"), ("no", "cuda-emu, --no-overlap"),
                ("ovb", f"cuda-emu, overlapped, --bucket-kib {B}"), ("nob", f"cuda-emu, --no-overlap, --bucket-kib {B}")):
    txt = open(f"{T}/e{v}.txt").read()
    ts = [float(m.group(2)) for m in re.finditer(r"epoch (\d)/2 .* ([0-9.]+) s", txt) if m.group(1) == "2"]
    ms = sorted(1e3 * t / 16 for t in ts)
    line = re.findall(r"all-reduce of the gradients.*", txt)
    print(f"{what:44s} P=2: step median {statistics.median(ms):.1f} ms, best {ms[0]:.1f} ms ({len(ms)} epochs); "
          f"{line[-1] if line else ''}")
PYEOF
