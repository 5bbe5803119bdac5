/* lower.h — the CPU backend's kernel plan: a graph cut into kernels (fusion decisions) and a
 * static arena plan for the intermediates. Internal to codegen/: lower.c builds it,
 * llvm_model.c and llvm_ops.c emit it.
 *
 * Storage: every value a kernel writes or reads lives in one of three regions (rt_model.h):
 * params (PARAM nodes, in-place optimizer updates), io (inputs, forward outputs, the loss),
 * arena (everything else, planned here by liveness in kernel order with best-fit reuse).
 * RESHAPE and identity dropout are aliases of their operand's storage. Values inside a fused
 * elementwise group that nobody outside the group reads are never stored.
 */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H
#include <stdbool.h>
#include <stdint.h>

#include "../../ir/ir.h"
#include "../../passes/passes.h"
#include "../../runtime/rt_model.h"

enum { CG_REGION_NONE = -1, CG_REGION_ARENA = 2 }; /* besides RT_REGION_PARAMS / RT_REGION_IO */

typedef struct CgVal {
  int rank;
  int64_t shape[IR_MAX_RANK];
  int64_t numel, nbytes;
  bool needed;   /* contributes to an output, the loss or an ASSIGN */
  bool stored;   /* written to memory (else: in registers of its group, or unneeded) */
  int region;    /* CG_REGION_*, RT_REGION_* */
  int64_t offset;
  int root;      /* node whose storage this value uses (itself unless an alias) */
  int kernel;    /* producing kernel, -1 for leaves and aliases */
} CgVal;

typedef enum {
  CGK_EW,     /* fused elementwise group over one iteration shape */
  CGK_GEMM,   /* MATMUL, with bias/relu epilogue members */
  CGK_CONV,   /* CONV2D / CONV2D_BWD_DATA / CONV2D_BWD_FILTER (+ epilogue for CONV2D) */
  CGK_NODE,   /* any other single node (runtime kernels, data movement, const fills) */
  CGK_COPY    /* copy of src's storage into dst's (deferred ASSIGNs, outputs) */
} CgKernelKind;

typedef struct CgKernel {
  CgKernelKind kind;
  int anchor;   /* execution order key: kernels run in increasing anchor */
  int node;     /* GEMM/CONV/NODE: the op node; EW: the last member */
  int *members; /* EW: the member nodes in node order; GEMM/CONV: the op then epilogue */
  int nmembers, cap;
  int out;      /* the node whose value the kernel produces last (GEMM: end of the chain) */
  bool bias, relu; /* GEMM/CONV epilogue */
  int bias_node;
  bool sealed;
  int copy_src, copy_dst_region; /* CGK_COPY */
  int64_t copy_dst_offset, copy_bytes;
  int64_t scratch_offset, scratch_bytes; /* arena scratch (im2col) */
} CgKernel;

typedef struct CgPlan {
  const IrGraph *g;
  CgVal *v;        /* [g->nnodes] */
  int *kof;        /* [g->nnodes] kernel of each node, -1 none */
  bool *inplace;   /* [g->nnodes] ASSIGN written straight into its PARAM */
  CgKernel *k;     /* in execution order after cg_plan */
  int nk, capk;
  int64_t arena_bytes;
} CgPlan;

/* Where leaves and outputs of one graph live: filled by the caller from the descriptor. */
typedef struct CgBinding {
  int *region;      /* [nnodes] preassigned region for PARAM/INPUT nodes, -1 otherwise */
  int64_t *offset;  /* [nnodes] */
  int nout;         /* io slots for values: node, offset (outputs and the loss) */
  int *out_node;
  int64_t *out_offset;
} CgBinding;

/* Builds the plan; -1 with a diagnostic (unsupported dtype, bad shape). vec_floats is used
 * only to size im2col scratch alignment. */
int cg_plan(CgPlan *p, const IrGraph *g, const CgBinding *b, Diag *d);
void cg_plan_free(CgPlan *p);
/* shape of node i at the graph's current dims; returns the rank */
int cg_shape(const IrGraph *g, int i, int64_t *shape);
bool cg_dtype_ok(DType dt);

/* ---- conv geometry shared by the plan (scratch size) and the emitter ------------------- */
typedef struct CgConv {
  int64_t N, C, H, W, O, OH, OW, KH, KW, G;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t Cg, Og, K, P; /* per group: channels in/out, K = Cg*KH*KW, P = OH*OW */
  bool direct;          /* 1x1, stride 1, no pad: no im2col */
} CgConv;
void cg_conv_geom(const CgPlan *p, int node, CgConv *c);
#endif
