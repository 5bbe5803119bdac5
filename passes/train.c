/* train.c — builds the training-step graph: forward (train semantics) + loss + backward +
 * optimizer update, as one ordinary IR graph.
 *
 * Requires: a verified forward model graph and the name of its scalar loss value.
 * Guarantees: the forward graph is left untouched (the step is built on a clone sharing its
 * DimCtx); batchnorm and dropout run with training semantics; every batchnorm whose running
 * statistics are PARAMs gets their PyTorch update as ASSIGNs
 *   running_mean = (1 - m) * running_mean + m * mean(x)
 *   running_var  = (1 - m) * running_var  + m * var(x, correction = 1)
 * the backward pass comes from pass_autodiff, the update from pass_optimizer; dead helper
 * nodes are removed and the result passes ir_verify.
 */
#include <string.h>

#include "passes.h"

typedef struct Stats {
  int *assigns;
  int n;
} Stats;

static int stat_node(IrGraph *g, int bn, OpKind op, const int *in, int nin, const IrAttr *at,
                     const IrType *hint, Diag *d) {
  ShapeErr err;
  SrcLoc loc = g->nodes[bn].loc;
  int n = ir_build(g, op, in, nin, at, hint, loc, &err);
  if (n < 0) {
    diag_error(d, loc, "internal error: batchnorm running statistics: %s", err.msg);
    return -1;
  }
  g->nodes[n].scope = g->nodes[bn].scope;
  g->nodes[n].phase = PH_FWD;
  return n;
}

/* running = running * (1 - m) + stat * m; returns the ASSIGN or -1 */
static int running_update(IrGraph *g, int bn, int running, int stat, Diag *d) {
  double m = g->nodes[bn].attr.momentum;
  IrType s = {.dt = g->nodes[running].type.dt, .rank = 0};
  IrAttr km = {.value = 1 - m}, kn = {.value = m};
  int c1 = stat_node(g, bn, OP_CONST, NULL, 0, &km, &s, d);
  int c2 = stat_node(g, bn, OP_CONST, NULL, 0, &kn, &s, d);
  if (c1 < 0 || c2 < 0 || stat < 0) return -1;
  int a[2] = {running, c1}, b[2] = {stat, c2};
  int x = stat_node(g, bn, OP_MUL, a, 2, NULL, NULL, d);
  int y = stat_node(g, bn, OP_MUL, b, 2, NULL, NULL, d);
  if (x < 0 || y < 0) return -1;
  int s2[2] = {x, y};
  int nv = stat_node(g, bn, OP_ADD, s2, 2, NULL, NULL, d);
  if (nv < 0) return -1;
  int as[2] = {running, nv};
  IrType rt = g->nodes[running].type;
  return stat_node(g, bn, OP_ASSIGN, as, 2, NULL, &rt, d);
}

static int bn_running_stats(IrGraph *g, int bn, Stats *st, Diag *d) {
  IrNode f = g->nodes[bn];
  int x = f.in[0], rm = f.in[3], rv = f.in[4];
  if (f.attr.momentum == 0 || g->nodes[rm].op != OP_PARAM || g->nodes[rv].op != OP_PARAM)
    return 0;
  IrAttr at = {0};
  for (int i = 0; i < f.type.rank; i++)
    if (i != 1) at.axes[at.naxes++] = i;
  int mean = stat_node(g, bn, OP_MEAN, &x, 1, &at, NULL, d);
  at.correction = 1;
  int var = stat_node(g, bn, OP_VAR, &x, 1, &at, NULL, d);
  int a1 = running_update(g, bn, rm, mean, d);
  int a2 = running_update(g, bn, rv, var, d);
  if (a1 < 0 || a2 < 0) return -1;
  st->assigns[st->n++] = a1;
  st->assigns[st->n++] = a2;
  return 0;
}

static bool has_output(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, name)) return true;
  return false;
}

static void remap_all(int *v, int n, const int *map) {
  for (int i = 0; i < n; i++) v[i] = map[v[i]];
}

static IrGraph *build(IrGraph *fwd, const char *minimize, SrcLoc loc, const IrTrain *t,
                      bool train, TrainInfo *info, Diag *d) {
  memset(info, 0, sizeof *info);
  IrGraph *g = ir_graph_clone(fwd->arena, fwd);
  int loss = minimize ? ir_find_value(g, minimize) : -1;
  if (loss < 0) {
    diag_error(d, loc, "model '%s' has no value '%s' to minimize", fwd->name,
               minimize ? minimize : "");
    return NULL;
  }
  int nf = g->nnodes, nbn = 0;
  for (int i = 0; i < nf; i++) {
    IrNode *n = &g->nodes[i];
    if (n->op == OP_BATCHNORM || n->op == OP_DROPOUT) n->attr.train = train;
    nbn += n->op == OP_BATCHNORM && train;
  }
  Stats st = {arena_alloc(g->arena, (size_t)(2 * nbn + 1) * sizeof(int)), 0};
  for (int i = 0; i < nf; i++)
    if (train && g->nodes[i].op == OP_BATCHNORM && bn_running_stats(g, i, &st, d)) return NULL;
  info->assigns = st.assigns;
  info->nassign = st.n;
  if (pass_autodiff(g, loss, info, d)) return NULL;
  if (!has_output(g, "loss")) ir_add_output(g, "loss", loss);
  for (int i = 0; i < info->nparams; i++)
    ir_add_output(g, g->nodes[info->grads[i]].name, info->grads[i]);
  if (t && pass_optimizer(g, t, info, d)) return NULL;
  int *map = arena_alloc(g->arena, (size_t)g->nnodes * sizeof(int));
  pass_dce_tail(g, info->first_bwd, map);
  remap_all(info->grads, info->nparams, map);
  remap_all(info->state, info->nstate, map);
  remap_all(info->assigns, info->nassign, map);
  if (ir_verify(g, stderr)) {
    diag_error(d, loc, "internal error: the training graph of '%s' does not verify", fwd->name);
    return NULL;
  }
  return ir_check_sizes(g, d) ? NULL : g;
}

IrGraph *pass_train_graph(IrGraph *fwd, const IrTrain *t, TrainInfo *info, Diag *d) {
  return build(fwd, t->minimize, t->loc, t, true, info, d);
}

IrGraph *pass_grad_graph(IrGraph *fwd, const char *minimize, SrcLoc loc, TrainInfo *info,
                         Diag *d) {
  return build(fwd, minimize, loc, NULL, true, info, d);
}

IrGraph *pass_grad_graph_mode(IrGraph *fwd, const char *minimize, SrcLoc loc, bool train,
                              TrainInfo *info, Diag *d) {
  return build(fwd, minimize, loc, NULL, train, info, d);
}
