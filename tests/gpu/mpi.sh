#!/usr/bin/env bash
# tests/gpu/mpi.sh NNC ARCH DIR — data-parallel training on GPUs (run by tests/gpu/run.sh):
# the mlp built with `--mpi --target cuda:ARCH` at batch 16, two ranks (one GPU each:
# CUDA_VISIBLE_DEVICES from Open MPI's local rank), the gradients averaged with NCCL on the
# devices, three ways: overlapping the backward launches (the default: the buckets on a
# second stream, docs/distributed.md), the same at 4 KiB buckets (buckets start while the
# backward launches run; fc1.weight in pieces), and --no-overlap (one NCCL group after the
# backward launches); each against the CPU build at batch 32 on the same global batches:
# every step's loss within rtol 2e-4 + atol 1e-6 and the weights within rtol 1e-3 + atol
# 1e-4 (as tests/mpi/run_mpi.sh, for the same float reassociation). Whether the overlapped
# weights are the bits of --no-overlap is printed, not required (NCCL may sum pieces in
# another order). NCCL refuses two ranks on one GPU, so with one GPU (or without mpirun) it
# says why it skips.
set -u
NNC=$1 ARCH=$2 T=$3
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
command -v mpirun >/dev/null || { echo "SKIP mpi: mpirun not found"; exit 0; }
ngpu=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
[ "$ngpu" -ge 2 ] || { echo "SKIP mpi: $ngpu GPU(s); NCCL needs one GPU per rank"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$NNC" build "$SRC/examples/mlp.nn" -D N=16 --mpi --target "cuda:$ARCH" -o "$T/gdp" || { echo "FAIL mpi: build"; exit 1; }
"$NNC" build "$SRC/examples/mlp.nn" -D N=32 -o "$T/cref" || { echo "FAIL mpi: cpu build"; exit 1; }
$PY -c "
import numpy as np; r = np.random.default_rng(3)
np.save('$T/x.npy', r.standard_normal((320, 784), dtype=np.float32))
np.save('$T/y.npy', r.integers(0, 10, 320, dtype=np.int32))"
D="x=$T/x.npy,label=$T/y.npy"
"$T/cref" init --seed 7 -o "$T/w0.st"
"$T/cref" train --weights "$T/w0.st" --data "$D" --epochs 1 --save "$T/c.st" --log "$T/c.csv" --quiet 2>/dev/null
for mode in overlap kib4 no; do
  args=()
  [ $mode = kib4 ] && args=(--bucket-kib 4)
  [ $mode = no ] && args=(--no-overlap)
  timeout 120 mpirun --oversubscribe -np 2 bash -c 'export CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK; exec "$@"' _ \
    "$T/gdp" train --weights "$T/w0.st" --data "$D" --epochs 1 --save "$T/g$mode.st" --log "$T/g$mode.csv" \
    "${args[@]}" >"$T/g$mode.out" 2>&1 || { cat "$T/g$mode.out"; echo "FAIL mpi: mpirun -np 2 (NCCL, $mode)"; exit 1; }
  grep "all-reduce" "$T/g$mode.out"
  $PY - "$T/g$mode.csv" "$T/c.csv" "$mode" <<'PYEOF' || { echo "FAIL mpi: losses differ from one CPU process ($mode)"; exit 1; }
import sys, numpy as np
a, b = (np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2)[:, 2] for f in sys.argv[1:3])
d = np.abs(a - b)
print(f"mpi ({sys.argv[3]}): {len(a)} steps on 2 GPUs (NCCL), max |loss difference| to one CPU process {d.max():.3g}")
assert len(a) == len(b) and (d <= 1e-6 + 2e-4 * np.abs(b)).all()
PYEOF
  $PY "$SRC/tests/train/compare_st.py" "$T/g$mode.st" "$T/c.st" 1e-3 1e-4 >"$T/cmp.txt" 2>&1 \
    || { cat "$T/cmp.txt"; echo "FAIL mpi: weights differ ($mode)"; exit 1; }
done
grep -q "with NCCL on a second stream" "$T/goverlap.out" || { echo "FAIL mpi: not overlapped by default"; exit 1; }
for mode in overlap kib4; do
  cmp -s "$T/g$mode.st" "$T/gno.st" && echo "mpi: $mode: the bits of --no-overlap" \
    || echo "mpi: $mode: other bits than --no-overlap (within the tolerances above)"
done
echo "mpi: 2 GPUs with NCCL train as one process, overlapped and not"
