/* remat.h — rematerialization: fit a training step into a memory budget by recomputing
 * forward activations during the backward pass instead of keeping them.
 *
 * Requires: a verified training-step graph from pass_train_graph (or pass_grad_graph) and its
 * TrainInfo; dims at the values to plan for.
 * Guarantees: the result is a new graph in the same arena (same DimCtx) that computes the
 * same values bit for bit: every recomputed node is a clone of a forward node with the same
 * op, operands (clones or kept originals) and attributes, placed just before the backward
 * nodes that read it. Clones carry phase PH_BWD, the forward node's scope with the suffix
 * "@recompute" and name "<name>@recompute", so cost reports show recompute FLOPs as their
 * own rows (remat_is_recompute). Its node order is a memory-aware schedule (eager optimizer
 * updates and running statistics, leaves placed before their first reader), and its memory
 * plan (memplan.h) fits the budget: params + io + arena <= budget.
 *
 * Method (docs/memory.md): the forward graph is cut into segments at its articulation
 * points (positions where a single tensor carries everything later forward nodes need);
 * a plan keeps some segment boundaries and recomputes every other group of segments from the
 * boundary before it. `sqrt` keeps ~sqrt(k) boundaries evenly spread by activation bytes
 * (Chen et al. 2016); `optimal` solves for the keep-set with the fewest recompute FLOPs under
 * the budget with an exact dynamic program over Pareto fronts of (kept bytes, FLOPs).
 */
#ifndef NN_REMAT_H
#define NN_REMAT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memplan.h"
#include "passes.h"

typedef enum { REMAT_NONE, REMAT_SQRT, REMAT_OPTIMAL } RematMode;
const char *remat_mode_name(RematMode m);
int remat_mode_parse(const char *s); /* -1 if unknown */

/* ---- the chain model ------------------------------------------------------------------
 * Segments 1..k. A keep-set keep[1..k-1] marks the boundaries that are stored; they cut the
 * chain into groups [i..j]. Every group but the last is recomputed once from the boundary
 * before it, costing RC(i, j) FLOPs. While group [i..j] is processed the arena holds the
 * kept boundaries before it plus P(i, j), so
 *   peak(keep) = max over groups [i..j] of ( sum_{t < i, keep[t]} b[t] + P(i, j) )
 *   cost(keep) = sum over groups but the last of RC(i, j). */
typedef struct RematChain {
  int k;
  double *b;  /* [k + 1], b[t] for t = 1..k-1 */
  double *P;  /* [(k + 1) * (k + 1)], P(i, j) at [i * (k + 1) + j] */
  double *RC; /* likewise */
} RematChain;
#define REMAT_AT(m, arr, i, j) ((arr)[(size_t)(i) * (size_t)((m)->k + 1) + (size_t)(j)])

void remat_chain_eval(const RematChain *m, const bool *keep, double *peak, double *cost);
/* the keep-set of least cost with peak <= budget; returns its cost, or -1 when no keep-set
 * fits (keep untouched). Exact (docs/memory.md has the argument). */
double remat_chain_optimal(const RematChain *m, double budget, bool *keep);
/* the least peak of any keep-set, and one keep-set reaching it */
double remat_chain_min_peak(const RematChain *m, bool *keep);
/* Chen's sqrt(k) scheme: ceil(sqrt(k)) groups of about equal weight (w[1..k]) */
void remat_chain_sqrt(const RematChain *m, const double *w, bool *keep);

/* ---- the pass ------------------------------------------------------------------------- */

typedef struct RematOptions {
  RematMode mode;
  int64_t budget; /* bytes for params + io + arena; 0 = no budget (schedule only) */
} RematOptions;

typedef struct RematGroup {
  int first_seg, last_seg;
  int first_node, last_node; /* forward nodes of the group in the scheduled graph */
  int boundary;              /* the node kept at its end (scheduled graph), -1 none */
  bool recomputed;
  int nclones;
  double flops;
} RematGroup;

typedef struct RematPlan {
  IrGraph *g;          /* the result (== sched when nothing is recomputed) */
  TrainInfo info;      /* info for g */
  IrGraph *sched;      /* the scheduled step without recomputation */
  MemPlan mp;          /* plan of g */
  int64_t budget;
  int64_t total_orig;  /* params + io + arena in the original node order */
  int64_t total_sched; /* ... scheduled, nothing recomputed */
  int64_t total;       /* ... of g */
  int64_t min_total;   /* the smallest budget `optimal` meets (sweep start, error text) */
  int nsegs, ngroups;
  RematGroup *groups;  /* [ngroups], in forward order */
  int nclones;
  double recompute_flops, step_flops; /* step_flops: the step without recomputation */
  int dp_rounds;       /* times the DP budget was tightened after the real plan overshot */
  char msg[1024];      /* why the budget cannot be met */
} RematPlan;

/* 0 ok; -1 when the budget cannot be met (plan->msg says why and what would fit; the
 * plan's other fields describe the smallest plan found); -2 internal error (msg). */
int pass_remat(IrGraph *g, const TrainInfo *info, const RematOptions *o, RematPlan *plan);
bool remat_is_recompute(const IrNode *n);

/* The chain model of a step (after scheduling), for tests and reports: m is filled with
 * malloc'ed arrays (remat_chain_free). 0 ok. */
int remat_model(IrGraph *g, const TrainInfo *info, RematChain *m);
void remat_chain_free(RematChain *m);
/* Rewrite g with an explicit keep-set over the model's boundaries (keep[1..k-1]); the plan
 * is filled as by pass_remat without a budget. 0 ok. */
int remat_apply(IrGraph *g, const TrainInfo *info, const bool *keep, RematPlan *pl);

/* a budget as users write it: "256MiB", "1.5GB", "300M" (K, M, G, T without B are binary),
 * "4096" (bytes). Returns bytes, or -1 with err filled. */
int64_t remat_parse_size(const char *s, char *err, size_t errn);

/* one point of a budget sweep */
typedef struct RematPoint {
  int64_t budget;
  bool ok[3];          /* by RematMode */
  double flops[3];     /* recompute FLOPs */
  int64_t total[3];    /* planned params + io + arena */
} RematPoint;
/* n budgets from the smallest `optimal` meets to the unmodified step's; 0 ok */
int remat_sweep(IrGraph *g, const TrainInfo *info, int n, RematPoint *out, RematPlan *base);
#endif
