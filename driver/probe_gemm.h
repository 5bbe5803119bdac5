/* probe_gemm.h — measurements of `nnc probe` that run the backend's own code: the runtime
 * thread pool's fork/join round trip, the runtime's softmax and the
 * generated GEMM's panel packing and micro-kernel
 * (docs/cost-model.md, "Figures from nnc probe"). Each is the best of `reps` repetitions. */
#ifndef NN_PROBE_GEMM_H
#define NN_PROBE_GEMM_H
#include "../passes/hw.h"

typedef struct ProbeGemm {
  double pack_bw;         /* bytes/s of B panels packed from rows adjacent in memory, 1 thread */
  double pack_strided_bw; /* the same gathered from strided rows (A stored M x K, filters) */
  double pack_transposed_bw; /* from rows contiguous along k, transposed in registers (B stored
                                N x K: a dense layer's weight) */
  double ukr_eff;         /* fraction of one thread's FMA peak the micro-kernel reaches */
} ProbeGemm;

/* seconds of one rt_parallel_for of nt empty tasks on a pool of nt threads (0 if nt < 2) */
double probe_fork_join(int nt, int reps);
/* seconds per element of the runtime's softmax on one thread */
double probe_softmax(int reps);
/* products of the generated GEMM on one thread with the tiles pass's blocking for hw;
 * 0 ok, -1 when a figure could not be measured (then *out is zero) */
int probe_gemm(const HwTarget *hw, int reps, double seconds, ProbeGemm *out);
#endif
