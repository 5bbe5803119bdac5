/* fold.c — constant folding for the build: every value computed only from constants
 * (fills, iota, and elementwise ops and views over them: the causal mask of
 * `where(tril(ones([T, T])), att, -1e9)`) becomes one CONST holding its values, so the
 * compiled program reads a table instead of running kernels that recompute it each step.
 *
 * Requires: a verified graph whose dims have their final values (the values are those of
 * the current dims). Guarantees: the same values as before (computed by the reference
 * interpreter in double precision, stored in the node's dtype by the backend), the same
 * node indices, names, types and outputs; folded nodes keep no operands, so the nodes that
 * fed only them are dead (the backends plan only live nodes). Fills (`ones([T, T])`) and
 * scalars stay as they are: they cost nothing already. Only f32 and i32 values are folded.
 */
#include <stdlib.h>
#include <string.h>

#include "../ir/interp.h"
#include "passes.h"

/* the largest folded constant, in elements (the object file holds it) */
enum { FOLD_MAX_ELEMS = 1 << 22 };

static bool foldable_op(const IrNode *n) {
  unsigned f = ir_ops[n->op].flags;
  if (n->op == OP_CONST || n->op == OP_IOTA) return true;
  if (f & (OPF_BWD | OPF_EFFECT | OPF_LOSS)) return false;
  return (f & OPF_ELEMWISE) || n->op == OP_RESHAPE || n->op == OP_BROADCAST ||
         n->op == OP_TRANSPOSE || n->op == OP_SLICE || n->op == OP_CONCAT;
}

/* cst[i]: node i depends on constants only */
static void mark_constant(const IrGraph *g, bool *cst) {
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    cst[i] = foldable_op(n);
    for (int j = 0; cst[i] && j < n->nin; j++) cst[i] = cst[n->in[j]];
  }
}

/* fold[i]: node i is a constant worth folding that a non-constant node or an output reads */
static int mark_roots(const IrGraph *g, const bool *cst, bool *fold) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    for (int j = 0; !cst[i] && j < n->nin; j++) fold[n->in[j]] = true;
  }
  for (int o = 0; o < g->noutputs; o++) fold[g->outputs[o].node] = true;
  for (int i = 0; i < g->nnodes; i++) {
    int64_t numel = ir_type_numel(g, &g->nodes[i].type);
    DType dt = g->nodes[i].type.dt;
    fold[i] = fold[i] && cst[i] && !ir_is_fill(&g->nodes[i]) && numel > 1 &&
              numel <= FOLD_MAX_ELEMS && (dt == DT_F32 || dt == DT_I32);
    k += fold[i];
  }
  return k;
}

/* The nodes the folded ones are computed from, alone in a graph of their own (the same
 * dims), evaluated by the interpreter; each folded node then takes its values. need[] is
 * the folded nodes on entry. */
static int fold_eval(IrGraph *g, bool *need, const bool *fold, Diag *d) {
  Arena *a = arena_new();
  IrGraph *h = ir_graph_clone(a, g);
  int *map = calloc((size_t)g->nnodes + 1, sizeof *map), rc = -1;
  if (!map) {
    diag_error(d, g->loc, "out of memory");
    arena_free(a);
    return -1;
  }
  ir_mark_live(g, need);
  h->nnodes = h->noutputs = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (!need[i]) continue;
    IrNode n = g->nodes[i];
    int *in = arena_alloc(a, (size_t)(n.nin ? n.nin : 1) * sizeof *in);
    for (int j = 0; j < n.nin; j++) in[j] = map[n.in[j]];
    map[i] = ir_add(h, n.op, in, n.nin, &n.attr, n.type, n.loc);
  }
  Interp *ip = interp_new(h, &(InterpOptions){0});
  char err[256];
  if (interp_run(ip, err, sizeof err)) {
    diag_error(d, g->loc, "internal error: folding constants: %s", err);
  } else {
    for (int i = 0; i < g->nnodes; i++) {
      if (!fold[i]) continue;
      int64_t n;
      const double *v = interp_value(ip, map[i], &n);
      double *data = arena_alloc(g->arena, (size_t)n * sizeof *data);
      memcpy(data, v, (size_t)n * sizeof *data);
      IrNode *nd = &g->nodes[i];
      memset(&nd->attr, 0, sizeof nd->attr);
      nd->attr.data = data;
      nd->op = OP_CONST;
      nd->nin = 0;
    }
    rc = 0;
  }
  interp_free(ip);
  free(map);
  arena_free(a);
  return rc;
}

int pass_fold_constants(IrGraph *g, Diag *d) {
  bool *cst = calloc((size_t)g->nnodes + 1, sizeof *cst);
  bool *fold = calloc((size_t)g->nnodes + 1, sizeof *fold);
  int rc = -1;
  if (!cst || !fold) {
    diag_error(d, g->loc, "out of memory");
  } else {
    mark_constant(g, cst);
    int k = mark_roots(g, cst, fold);
    memcpy(cst, fold, (size_t)g->nnodes * sizeof *cst);
    rc = k ? fold_eval(g, cst, fold, d) : 0;
    if (rc == 0) rc = k;
  }
  free(cst);
  free(fold);
  return rc;
}
