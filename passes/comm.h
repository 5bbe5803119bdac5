/* comm.h — the communication cost of data-parallel training (comm.c).
 *
 * Every rank holds the parameters and computes the gradients of its share of the global
 * batch; the gradients are averaged by a ring all-reduce, in buckets that start while the
 * backward pass is still running (as PyTorch DDP and the compiled programs' --mpi do).
 *
 * Requires: r = cost_analyze + cost_roofline of a training-step graph and info the
 * TrainInfo of that graph (its gradient nodes).
 * Guarantees: times in seconds at the graph's current dims; t_exposed + t_overlap =
 * t_allreduce; t_step = t_step1 + t_exposed; nothing is modified.
 */
#ifndef NN_COMM_H
#define NN_COMM_H
#include "cost.h"
#include "hw.h"
#include "passes.h"

#define COMM_BUCKET_BYTES (25.0 * 1024 * 1024) /* gradient bucket, as PyTorch DDP's default */
#define COMM_MAX_RANKS 1000000                 /* --ranks beyond this is refused */

typedef struct CommPlan {
  int ranks;
  HwLink link;
  double grad_bytes;   /* all gradients of one rank */
  double bucket_bytes;
  int nbuckets;
  double t_allreduce;  /* every bucket's ring all-reduce, added up */
  double t_overlap;    /* the part that runs while the backward pass still computes */
  double t_exposed;    /* the part after the backward pass: added to the step */
  double t_step1;      /* the step on one rank (the roofline estimate) */
  double t_step;       /* the step with communication, per rank */
  double efficiency;   /* t_step1 / t_step: throughput per rank against one alone */
} CommPlan;

/* ring all-reduce of `bytes` on `ranks` ranks: 2(P-1)/P x bytes / bw + 2(P-1) x latency */
double comm_ring_time(double bytes, int ranks, const HwLink *l);

/* plan the all-reduce of r's gradients; 0 ok, -1 when ranks is out of [1, COMM_MAX_RANKS]
 * or memory runs out */
int comm_plan(const CostResult *r, const TrainInfo *info, int ranks, const HwLink *l,
              double bucket_bytes, CommPlan *out);
#endif
