#!/usr/bin/env bash
# run_mpi_gpu_order.sh — the order of the GPU data-parallel step's device calls, without a
# GPU: a small mlp built `--mpi --target cuda` (NVRTC) runs under `mpirun -np 2` against the
# fake driver of tests/cuda/fake_libcuda.c, which also stands in for NCCL (libcuda.so.1 and
# libnccl.so.2 are links to it): its launches do nothing, and every launch, event, stream
# and NCCL call is logged. Checked per step and rank, against the launch table, the
# gradients' ready kernels (the generated source's tables, kept by a CXX wrapper) and the
# CPU path's bucket partition at 4 KiB and 1 KiB (docs/distributed.md):
# - overlapped (the default): one non-blocking communication stream; each bucket is one NCCL
#   group of ncclAllReduce(f32, avg) on that stream, its buffers the bucket's gradients (or
#   its piece of one), in bucket order, issued right after the launch that completes the
#   last kernel writing or reading its gradients (not earlier, not later), behind an event
#   recorded on the default stream after that launch and waited for by the communication
#   stream; before the first optimizer launch the default stream waits for an event
#   recorded on the communication stream, after the last group; no all-reduce on the
#   default stream;
# - --no-overlap: no stream or event, one group of every gradient on the default stream
#   right before the first optimizer launch;
# - --sync-bn (tests/mpi/bn.nn, 1 KiB buckets): NCCL does not order one communicator's
#   collectives issued on two streams, so every sync-bn sum (f64, default stream) issued
#   after a bucket's group must follow a wait of the default stream for an event recorded
#   on the communication stream after that group; some sums do follow buckets here.
# The numbers are the fake's (zeros): the sums are checked by run_mpi.sh on cuda-emu.
# Skipped without mpirun, MPI in nnc, NVRTC or the fake driver (NNC_BUILD).
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
PY=/usr/bin/python3
FAKE=${NNC_BUILD:-/nonexistent}/libnnc_fake_libcuda_dev.so
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (Open MPI: openmpi-bin)"; exit 0; }
[ -f "$FAKE" ] || { echo "SKIP: no fake CUDA driver at $FAKE"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0
export OMPI_MCA_btl=self,vader
cp "$NNC_SRC/tests/mpi/small.nn" "$T/small.nn"
printf '#!/bin/sh\nfor a; do case "$a" in *cuda_model.cpp) cp "$a" %s;; esac; done\nexec %s "$@"\n' \
  "$T/kept.cpp" "${CXX:-c++}" >"$T/cxxkeep"
chmod +x "$T/cxxkeep"
if ! CXX="$T/cxxkeep" "$NNC" build "$T/small.nn" --mpi --target cuda -o "$T/gdp" >"$T/b.log" 2>&1; then
  grep -q "built without MPI\|without the CUDA toolkit" "$T/b.log" && { echo "SKIP: $(tail -1 "$T/b.log")"; exit 0; }
  cat "$T/b.log" >&2
  echo "FAIL: nnc build --mpi --target cuda" >&2
  exit 1
fi
mkdir "$T/lib"
ln -s "$FAKE" "$T/lib/libcuda.so.1"
ln -s "$FAKE" "$T/lib/libnccl.so.2"
$PY -c "
import numpy as np; r = np.random.default_rng(4)
np.save('$T/x.npy', r.standard_normal((32, 64), dtype=np.float32))
np.save('$T/y.npy', r.integers(0, 10, 32, dtype=np.int32))"
fail=0
for mode in 4 1 no; do
  args=(--bucket-kib "$mode")
  [ $mode = no ] && args=(--no-overlap)
  rm -f "$T"/log.*
  FAKE_CUDA_LOG="$T/log" LD_LIBRARY_PATH="$T/lib" mpirun --oversubscribe -x FAKE_CUDA_LOG -x LD_LIBRARY_PATH \
    -np 2 "$T/gdp" train --data "x=$T/x.npy,label=$T/y.npy" --epochs 1 --threads 1 "${args[@]}" >"$T/run.out" 2>&1 \
    || { cat "$T/run.out" >&2; echo "FAIL: mpirun ($mode)" >&2; fail=1; continue; }
  $PY - "$T/kept.cpp" "$mode" "$T"/log.* <<'PYEOF' || { echo "FAIL: the device calls ($mode)" >&2; fail=1; }
import re, sys
src, mode, logs = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3:]
launch_k = [int(k) for k in re.findall(r'\{"small_train_k(\d+)[^"]*", \{', src)]
grads = [tuple(int(v) for v in g) for g in
         re.findall(r'\{(\d+)LL, (\d+)LL, (\d+), (\d+)\},', src.split("nnc_cuda_grads[] = {")[1].split("};")[0])]
split = int(re.search(r"return i == (\d+) && h->grads_device", src).group(1))  # first optimizer launch
assert len(logs) == 2 and launch_k and grads, (logs, launch_k, grads)
total = sum(g[1] for g in grads)

def buckets(cap):  # the CPU path's partition (rt_embed.c), each with its (count, ready) list
    out, cur = [], []
    for off, n, t, ready in reversed(grads):
        if cur and (n > cap or sum(c for c, _ in cur) + n > cap):
            out.append(cur); cur = []
        if n > cap:
            out += [[(min(cap, n - s), ready)] for s in range(0, n, cap)]
        else:
            cur.append((n, ready))
    return out + ([cur] if cur else [])

def after_launch(ready):  # the launch after which every kernel up to ready is complete
    return max(i for i in range(split) if launch_k[i] <= ready)

for path in logs:
    toks = open(path).read().split()
    body = " ".join(toks)
    if mode == "no":
        assert "stream:" not in body and "record:" not in body and "wait:" not in body, body[:300]
        per = " ".join(["launch"] * split + ["group("] + [f"allreduce:{g[1]}@0" for g in grads] + [")"]
                       + ["launch"] * (len(launch_k) - split))
        assert body == " ".join([per] * (body.count("group(")) ), (body[:400], per)
        print(f"{path.rsplit('/', 1)[1]}: --no-overlap: one group of {len(grads)} gradients on the "
              f"default stream before the optimizer's launches, {body.count('group(')} steps")
        continue
    bs = buckets(int(mode) * 1024 // 4)
    assert toks[:3] == ["stream:100:1", "create:1:2", "create:2:2"], toks[:3]
    assert toks[-3:] == ["destroy:1", "destroy:2", "sdestroy:100"], toks[-3:]
    toks = toks[3:-3]
    nsteps = 0
    while toks:
        at = {}  # launch -> the buckets issued after it
        for b in bs:
            at.setdefault(after_launch(max(r for _, r in b)), []).append(b)
        # a fence after each launch that ends the kernels up to some gradient's ready kernel,
        # then the buckets final there
        want = []
        marked = -1
        for i in range(len(launch_k)):
            if i == split:
                want += ["record:1", "wait:100:1", "record:2@100", "wait:0:2"]
            want.append("launch")
            nxt = launch_k[i + 1] if i + 1 < split else (10 ** 9 if i < split else -1)
            if i < split and nxt > launch_k[i] and any(marked < g[3] < nxt for g in grads):
                marked = max(g[3] for g in grads if g[3] < nxt)
                want += ["record:1", "wait:100:1"]
                for b in at.get(i, []):
                    want += ["group("] + [f"allreduce:{c}@100" for c, _ in b] + [")"]
        got, toks = toks[:len(want)], toks[len(want):]
        assert got == want, f"step {nsteps}:\n got  {' '.join(got)}\n want {' '.join(want)}"
        assert sum(c for b in bs for c, _ in b) == total
        nsteps += 1
    print(f"{path.rsplit('/', 1)[1]}: {mode} KiB buckets: {len(bs)} NCCL groups a step on the "
          f"communication stream, each after its gradients' last launch; {nsteps} steps")
PYEOF
done
printf '#!/bin/sh\nfor a; do case "$a" in *cuda_model.cpp) cp "$a" %s;; esac; done\nexec %s "$@"\n' \
  "$T/kept_bn.cpp" "${CXX:-c++}" >"$T/cxxkeep"
CXX="$T/cxxkeep" "$NNC" build "$NNC_SRC/tests/mpi/bn.nn" --mpi --sync-bn --target cuda -o "$T/gbn" >"$T/b.log" 2>&1 \
  || { cat "$T/b.log" >&2; echo "FAIL: nnc build bn.nn --mpi --sync-bn --target cuda" >&2; exit 1; }
$PY -c "
import numpy as np; r = np.random.default_rng(6)
np.save('$T/qx.npy', r.standard_normal((32, 2, 6, 6), dtype=np.float32))
np.save('$T/qy.npy', r.integers(0, 5, 32, dtype=np.int32))"
rm -f "$T"/log.*
FAKE_CUDA_LOG="$T/log" LD_LIBRARY_PATH="$T/lib" mpirun --oversubscribe -x FAKE_CUDA_LOG -x LD_LIBRARY_PATH \
  -np 2 "$T/gbn" train --data "x=$T/qx.npy,label=$T/qy.npy" --epochs 1 --threads 1 --bucket-kib 1 >"$T/run.out" 2>&1 \
  || { cat "$T/run.out" >&2; echo "FAIL: mpirun (sync-bn)" >&2; exit 1; }
$PY - "$T"/log.* <<'PYEOF' || { echo "FAIL: sync-bn sums not ordered after the buckets" >&2; fail=1; }
import sys
for path in sys.argv[1:]:
    pending, after, sums, groups = False, 0, 0, 0
    for t in open(path).read().split():
        if t.startswith("allreduce:") and t.endswith("@100"):
            pending, groups = True, groups + 1
        elif t == "wait:0:2":
            pending = False
        elif t.startswith("allreduce?:"):  # a sync-bn sum: f64, sum
            assert t.endswith("@0") and not pending, f"{path}: a sum while buckets may run: {t}"
            sums, after = sums + 1, after + (groups > 0)
    assert sums and after, (sums, after)
    print(f"{path.rsplit('/', 1)[1]}: --sync-bn: {sums} sums on the default stream, {after} of them "
          f"after buckets, each behind the communication stream's event")
PYEOF
exit $fail
