/* cost.h — cost analysis: FLOPs, MACs, bytes, memory and roofline time of a graph.
 *
 * Requires: a verified graph (types of every node known). Works on any graph: the forward
 * model (inference) or a training-step graph whose nodes carry phases PH_FWD/PH_BWD/PH_OPT.
 * Guarantees: every figure is a Dim polynomial in the graph's symbolic dims, exact under the
 * counting conventions of docs/cost-model.md; numbers are obtained with dim_evalf at the
 * current dim values. The graph is not modified.
 */
#ifndef NN_COST_H
#define NN_COST_H
#include <stdbool.h>

#include "../ir/ir.h"
#include "hw.h"

/* what one node costs */
typedef struct CostNode {
  Dim *flops;  /* all floating-point operations, 2 per MAC, transcendentals counted once */
  Dim *macs;   /* multiply-accumulates of GEMM-like ops (matmul, conv and their grads) */
  Dim *transc; /* transcendental evaluations (exp, log, sqrt, tanh, erf), also in flops */
  Dim *rd, *wr; /* compulsory bytes read (each distinct operand once) and written */
  bool kernel;  /* runs as a kernel (leaves and views do not: no bytes, no overhead) */
} CostNode;

/* sums over a set of nodes */
typedef struct CostSum {
  Dim *flops, *macs, *transc, *rd, *wr;
  double time; /* seconds, after cost_roofline */
  int nkernels;
} CostSum;

typedef struct CostMem {
  Dim *weights;     /* model parameters incl. buffers (running stats), not optimizer state */
  Dim *grads;       /* one gradient per trainable parameter (training graphs) */
  Dim *optimizer;   /* optimizer state: non-trainable PARAMs only the PH_OPT nodes read */
  Dim *activations; /* training: forward values read by backward nodes (saved residuals);
                       inference: all forward intermediate values (no reuse) */
  Dim *inputs;      /* INPUT nodes */
  double peak;      /* bytes, from the liveness walk at the current dims */
  int peak_node;    /* where the peak occurs */
  Dim *peak_dim;    /* the live set at peak_node as a formula (valid near these dims) */
} CostMem;

/* roofline figures of one node on a target, at the current dims */
typedef struct CostTime {
  double flops, bytes, intensity; /* FLOP/byte; 0 when no bytes */
  double peak;                    /* FLOP/s used for this node */
  double t_compute, t_memory, time; /* time = max(t_compute, t_memory) + overhead */
  bool compute_bound;
} CostTime;

typedef struct CostResult {
  IrGraph *g;
  CostNode *node;       /* [g->nnodes] */
  CostSum phase[3];     /* indexed by Phase */
  CostSum total;
  bool training;        /* the graph has backward nodes */
  int overflow_node;    /* first node whose formulas overflowed int64 (saturated), or -1 */
  Dim *params;          /* all PARAM elements of the model (not optimizer state) */
  Dim *params_trainable;
  Dim *param_bytes_dt[DT_COUNT];
  CostMem mem;
  /* after cost_roofline */
  const HwTarget *hw;
  CostTime *time;       /* [g->nnodes] */
  /* set before cost_roofline for a GPU build's --precision: f32 matmuls and ungrouped
   * forward convolutions run at the tensor-core peak of gemm_dt (DT_BF16, DT_F16) or of TF32
   * (gemm_tf32); their bytes stay those of f32 (the kernels round the f32 operands on load) */
  DType gemm_dt;
  bool gemm_tf32;
} CostResult;

/* the cost rule of one node (docs/cost-model.md); 0 ok */
void cost_node(IrGraph *g, int i, CostNode *out);
/* true when cost.c has a rule for op (tests/unit/test_optable.c) */
bool cost_rule_defined(OpKind op);

/* analyse the whole graph; allocations in a (NULL = g->arena) */
CostResult *cost_analyze(IrGraph *g, Arena *a);
/* "too large" at the node whose cost formulas overflowed, if any; -1 then, else 0 */
int cost_check(const CostResult *r, Diag *d);
/* fill r->time and the time fields of the sums for target hw (kept by pointer) */
void cost_roofline(CostResult *r, const HwTarget *hw);
/* roofline of a single figure: used by cost_roofline and by tests on worked examples */
CostTime cost_time_of(double flops, double bytes, double peak, double bw, double overhead);

/* aggregation by scope */
typedef enum { COST_BY_OP, COST_BY_LAYER, COST_BY_BLOCK } CostGroupBy;
typedef struct CostGroup {
  const char *key;   /* op: node name or "%i"; layer: scope; block: scope prefix */
  CostSum sum;       /* all phases */
  CostSum phase[3];
  int first_node;    /* smallest node index in the group (for stable ordering) */
  int nnodes;
} CostGroup;
/* groups in order of first appearance; returns the count, *out arena-allocated */
int cost_group(const CostResult *r, CostGroupBy by, CostGroup **out, Arena *a);
/* the layer key of a node ("(top)" when unscoped) and its block key (scope minus its last
 * dotted component) */
const char *cost_layer_key(const IrNode *n);
const char *cost_block_key(Arena *a, const IrNode *n);

/* ---- cost-driven rewriting (passes/simplify.c) ------------------------------------------ */

typedef struct SimplifyLog {
  int n;
  char msg[16][320];
} SimplifyLog;
/* Reassociate matmul chains (A·B)·C ⇄ A·(B·C) whenever the other order needs fewer MACs at
 * the current dim values, e.g. (Xᵀ·X)·w → Xᵀ·(X·w). Requires a verified graph; the inner
 * product must have no other use. Returns g itself when nothing changed, otherwise a new
 * graph in g's arena (same DimCtx) with node names/scopes kept; log (may be NULL) gets one
 * line per rewrite with both formulas. */
IrGraph *pass_reassoc_matmul(IrGraph *g, SimplifyLog *log);
#endif
