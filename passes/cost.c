/* cost.c — cost analysis: per-op counting rules, sums by phase and scope, memory
 * (weights, gradients, optimizer state, saved activations, the memory plan's peak) and the
 * roofline.
 *
 * Each rule returns Dim polynomials so every figure prints as a formula in the model's dims;
 * the conventions are in docs/cost-model.md and the unit tests derive each one by hand.
 */
#include "cost.h"

#include "memplan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef void (*CostFn)(IrGraph *g, const IrNode *n, CostNode *c);

/* ---- helpers ------------------------------------------------------------------------- */

static Dim *K(IrGraph *g, int64_t v) { return dim_const(g->dims, v); }
static Dim *numel(IrGraph *g, int i) { return ir_type_numel_dim(g, &g->nodes[i].type); }
static Dim *out_numel(IrGraph *g, const IrNode *n) { return ir_type_numel_dim(g, &n->type); }
static Dim *bytes_of(IrGraph *g, int i) {
  return dim_scale(g->dims, numel(g, i), (int64_t)dt_size(g->nodes[i].type.dt));
}
static Dim *add(IrGraph *g, Dim *a, Dim *b) { return dim_add(g->dims, a, b); }
static Dim *mul(IrGraph *g, Dim *a, Dim *b) { return dim_mul(g->dims, a, b); }
static Dim *scale(IrGraph *g, Dim *a, int64_t k) { return dim_scale(g->dims, a, k); }
static const IrNode *arg(IrGraph *g, const IrNode *n, int k) { return &g->nodes[n->in[k]]; }

/* default traffic: each distinct operand read once, the result written once */
static void default_bytes(IrGraph *g, const IrNode *n, CostNode *c) {
  c->rd = K(g, 0);
  for (int j = 0; j < n->nin; j++) {
    bool seen = false;
    for (int k = 0; k < j; k++) seen |= n->in[k] == n->in[j];
    if (!seen) c->rd = add(g, c->rd, bytes_of(g, n->in[j]));
  }
  c->wr = scale(g, out_numel(g, n), (int64_t)dt_size(n->type.dt));
  c->kernel = true;
}

/* per-element flop counts of elementwise ops and of the fixed-cost-per-element backward
 * helpers (docs/cost-model.md, "Elementwise" and "Backward helpers") */
static const struct {
  int flops, transc;
} per_elem[OP_COUNT] = {
    [OP_NEG] = {1, 0},     [OP_EXP] = {1, 1},      [OP_LOG] = {1, 1},
    [OP_SQRT] = {1, 1},    [OP_TANH] = {1, 1},     [OP_SIGMOID] = {4, 1},
    [OP_RELU] = {1, 0},    [OP_GELU] = {5, 1},     [OP_SILU] = {5, 1},
    [OP_POWC] = {1, 0},    [OP_CAST] = {0, 0},     [OP_ADD] = {1, 0},
    [OP_SUB] = {1, 0},     [OP_MUL] = {1, 0},      [OP_DIV] = {1, 0},
    [OP_LT] = {1, 0},      [OP_LE] = {1, 0},       [OP_GT] = {1, 0},
    [OP_GE] = {1, 0},      [OP_EQ] = {1, 0},       [OP_NE] = {1, 0},
    [OP_WHERE] = {1, 0},
    [OP_RELU_BWD] = {1, 0}, [OP_GELU_BWD] = {8, 2}, [OP_SILU_BWD] = {9, 1},
    [OP_SIGMOID_BWD] = {3, 0}, [OP_TANH_BWD] = {3, 0}, [OP_DROPOUT_BWD] = {2, 0},
    [OP_MAX_BWD] = {2, 0},
    [OP_BATCHNORM_BWD] = {13, 0}, [OP_BN_DGAMMA] = {8, 0},
    [OP_LAYERNORM_BWD] = {13, 0}, [OP_LN_DGAMMA] = {8, 0},
};

static void zero(IrGraph *g, CostNode *c) {
  c->flops = c->macs = c->transc = c->rd = c->wr = K(g, 0);
  c->kernel = false;
}

/* ---- rules --------------------------------------------------------------------------- */

static void rule_leaf(IrGraph *g, const IrNode *n, CostNode *c) {
  (void)n;
  zero(g, c);
}

/* iota: computed from the index alone, written once */
static void rule_iota(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  c->wr = scale(g, out_numel(g, n), (int64_t)dt_size(n->type.dt));
  c->kernel = true;
}

static void rule_view(IrGraph *g, const IrNode *n, CostNode *c) {
  (void)n;
  zero(g, c);
}

static void rule_move(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  default_bytes(g, n, c);
}

static void rule_slice(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  default_bytes(g, n, c);
  c->rd = c->wr; /* only the selected part is read */
}

/* elementwise over the result, also for operands that broadcast; for the backward helpers
 * of norms the count is per element of dx / of x */
static void rule_elem(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  Dim *e = out_numel(g, n);
  if (n->op == OP_BN_DGAMMA || n->op == OP_LN_DGAMMA) e = numel(g, n->in[1]);
  c->flops = scale(g, e, per_elem[n->op].flops);
  c->transc = scale(g, e, per_elem[n->op].transc);
  if (n->op == OP_POWC && n->attr.value != floor(n->attr.value)) c->transc = e;
  default_bytes(g, n, c);
}

static void rule_dropout(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  if (!n->attr.train) return; /* identity: a view */
  c->flops = scale(g, out_numel(g, n), 2);
  default_bytes(g, n, c);
}

/* contraction length of a matmul */
static Dim *matmul_k(const IrNode *a, bool trans_a) {
  if (a->type.rank == 1) return a->type.dims[0];
  return a->type.dims[a->type.rank - (trans_a ? 2 : 1)];
}

static void rule_matmul(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  c->macs = mul(g, out_numel(g, n), matmul_k(arg(g, n, 0), n->attr.trans_a));
  c->flops = scale(g, c->macs, 2);
  default_bytes(g, n, c);
}

/* C/g · KH · KW of a filter type [O, C/g, KH, KW] */
static Dim *filter_fan_in(IrGraph *g, const IrType *w) {
  return mul(g, mul(g, w->dims[1], w->dims[2]), w->dims[3]);
}

static void rule_conv(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  Dim *outs;
  const IrType *w;
  if (n->op == OP_CONV2D) outs = out_numel(g, n), w = &arg(g, n, 1)->type;
  else if (n->op == OP_CONV2D_BWD_DATA) outs = numel(g, n->in[0]), w = &arg(g, n, 1)->type;
  else outs = numel(g, n->in[1]), w = &n->type; /* bwd_filter: x, dy -> dw */
  c->macs = mul(g, outs, filter_fan_in(g, w));
  c->flops = scale(g, c->macs, 2);
  default_bytes(g, n, c);
}

static int64_t window(const IrNode *n) {
  int kh = n->attr.kernel[0] > 0 ? n->attr.kernel[0] : 1;
  int kw = n->attr.kernel[1] > 0 ? n->attr.kernel[1] : 1;
  return (int64_t)kh * kw;
}

static void rule_pool(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  int64_t w = window(n);
  switch (n->op) {
  case OP_MAXPOOL: c->flops = scale(g, out_numel(g, n), w - 1); break;
  case OP_AVGPOOL: c->flops = scale(g, out_numel(g, n), w); break;
  case OP_MAXPOOL_BWD: c->flops = scale(g, numel(g, n->in[0]), w); break;
  default: c->flops = scale(g, numel(g, n->in[0]), w + 1); break; /* AVGPOOL_BWD */
  }
  default_bytes(g, n, c);
}

static void rule_reduce(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  Dim *in = numel(g, n->in[0]), *out = out_numel(g, n);
  Dim *red = dim_sub(g->dims, in, out); /* per output */
  switch (n->op) {
  case OP_SUM:
  case OP_MAX: c->flops = red; break;
  case OP_MEAN: c->flops = in; break;
  default: c->flops = scale(g, in, 4); break; /* VAR */
  }
  default_bytes(g, n, c);
}

/* rows and row length of a softmax-like op over `axis` of type t */
static void rows_of(IrGraph *g, const IrType *t, int axis, Dim **rows, Dim **len) {
  if (axis < 0) axis += t->rank;
  if (axis < 0 || axis >= t->rank) axis = t->rank - 1;
  *len = t->rank ? t->dims[axis] : K(g, 1);
  *rows = K(g, 1);
  for (int i = 0; i < t->rank; i++)
    if (i != axis) *rows = mul(g, *rows, t->dims[i]);
}

static void rule_softmax(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  Dim *rows, *len;
  const IrType *t = &arg(g, n, 0)->type;
  rows_of(g, t, n->attr.axis, &rows, &len);
  Dim *e = ir_type_numel_dim(g, t);
  Dim *row_red = mul(g, rows, dim_sub(g->dims, len, K(g, 1))); /* rows·(R-1) */
  switch (n->op) {
  case OP_SOFTMAX: /* max, sub, exp, sum, div */
    c->flops = add(g, scale(g, e, 3), scale(g, row_red, 2));
    c->transc = e;
    break;
  case OP_LOG_SOFTMAX: /* max, sub, exp, sum, log, sub */
    c->flops = add(g, add(g, scale(g, e, 3), scale(g, row_red, 2)), rows);
    c->transc = add(g, e, rows);
    break;
  case OP_SOFTMAX_BWD: /* y·(dy - sum(dy·y)): mul, sum, sub, mul */
    c->flops = add(g, scale(g, e, 3), row_red);
    break;
  default: /* LOG_SOFTMAX_BWD: dy - exp(y)·sum(dy): sum, exp, mul, sub */
    c->flops = add(g, scale(g, e, 3), row_red);
    c->transc = e;
    break;
  }
  default_bytes(g, n, c);
}

static void rule_ce(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  int li = n->op == OP_CROSS_ENTROPY ? 0 : 1;
  const IrType *t = &arg(g, n, li)->type;
  Dim *rows, *len;
  rows_of(g, t, t->rank - 1, &rows, &len);
  Dim *e = ir_type_numel_dim(g, t);
  Dim *row_red = mul(g, rows, dim_sub(g->dims, len, K(g, 1)));
  Dim *sm = add(g, scale(g, e, 3), scale(g, row_red, 2)); /* max, sub, exp, sum, div/log */
  if (n->op == OP_CROSS_ENTROPY) {
    c->flops = add(g, sm, scale(g, rows, 2)); /* log per row, then pick-negate and mean */
    c->transc = add(g, e, rows);
  } else {
    c->flops = add(g, add(g, sm, e), rows); /* softmax, scale by dloss/N, minus one-hot */
    c->transc = e;
  }
  default_bytes(g, n, c);
}

static void rule_mse(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  c->flops = scale(g, numel(g, n->in[0]), 3); /* sub, square, sum (+ the final divide) */
  default_bytes(g, n, c);
}

static void rule_batchnorm(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  Dim *e = out_numel(g, n), *ch = numel(g, n->in[1]);
  /* scale = gamma/sqrt(var+eps), shift = beta - mean·scale per channel, then x·scale+shift */
  c->flops = add(g, scale(g, e, 2), scale(g, ch, 5));
  c->transc = ch;
  if (n->attr.train) /* batch statistics first: mean (1/elem) and var (3/elem), /M twice */
    c->flops = add(g, c->flops, add(g, scale(g, e, 4), scale(g, ch, 2)));
  default_bytes(g, n, c);
}

static void rule_layernorm(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  Dim *e = out_numel(g, n), *d = numel(g, n->in[1]);
  Dim *rows = dim_div_exact(g->dims, e, d);
  if (!rows) rows = K(g, 0);
  /* mean, var (sub, square, sum), normalize (sub, mul), affine (mul, add): 8/elem;
   * per row: two divides, add eps, rsqrt */
  c->flops = add(g, scale(g, e, 8), scale(g, rows, 4));
  c->transc = rows;
  default_bytes(g, n, c);
}

static void rule_embedding(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  default_bytes(g, n, c);
  c->rd = add(g, c->wr, bytes_of(g, n->in[1])); /* gathered rows and the indices */
}

static void rule_embedding_bwd(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  c->flops = numel(g, n->in[0]); /* scatter-add of dy */
  default_bytes(g, n, c);
}

static void rule_slice_bwd(IrGraph *g, const IrNode *n, CostNode *c) {
  rule_move(g, n, c);
}

static void rule_assign(IrGraph *g, const IrNode *n, CostNode *c) {
  zero(g, c);
  c->rd = bytes_of(g, n->in[1]);
  c->wr = bytes_of(g, n->in[0]);
  c->kernel = true;
}

static const CostFn rules[OP_COUNT] = {
    [OP_INPUT] = rule_leaf,        [OP_PARAM] = rule_leaf,        [OP_CONST] = rule_leaf,
    [OP_IOTA] = rule_iota,
    [OP_LT] = rule_elem,           [OP_LE] = rule_elem,           [OP_GT] = rule_elem,
    [OP_GE] = rule_elem,           [OP_EQ] = rule_elem,           [OP_NE] = rule_elem,
    [OP_WHERE] = rule_elem,
    [OP_NEG] = rule_elem,          [OP_EXP] = rule_elem,          [OP_LOG] = rule_elem,
    [OP_SQRT] = rule_elem,         [OP_TANH] = rule_elem,         [OP_SIGMOID] = rule_elem,
    [OP_RELU] = rule_elem,         [OP_GELU] = rule_elem,         [OP_SILU] = rule_elem,
    [OP_POWC] = rule_elem,         [OP_CAST] = rule_elem,         [OP_ADD] = rule_elem,
    [OP_SUB] = rule_elem,          [OP_MUL] = rule_elem,          [OP_DIV] = rule_elem,
    [OP_MATMUL] = rule_matmul,     [OP_TRANSPOSE] = rule_move,    [OP_RESHAPE] = rule_view,
    [OP_BROADCAST] = rule_move,    [OP_CONCAT] = rule_move,       [OP_SLICE] = rule_slice,
    [OP_SLICE_BWD] = rule_slice_bwd, [OP_SUM] = rule_reduce,      [OP_MEAN] = rule_reduce,
    [OP_MAX] = rule_reduce,        [OP_VAR] = rule_reduce,        [OP_SOFTMAX] = rule_softmax,
    [OP_LOG_SOFTMAX] = rule_softmax, [OP_CONV2D] = rule_conv,     [OP_MAXPOOL] = rule_pool,
    [OP_AVGPOOL] = rule_pool,      [OP_BATCHNORM] = rule_batchnorm,
    [OP_LAYERNORM] = rule_layernorm, [OP_DROPOUT] = rule_dropout,
    [OP_EMBEDDING] = rule_embedding, [OP_CROSS_ENTROPY] = rule_ce, [OP_MSE] = rule_mse,
    [OP_RELU_BWD] = rule_elem,     [OP_GELU_BWD] = rule_elem,     [OP_SILU_BWD] = rule_elem,
    [OP_SIGMOID_BWD] = rule_elem,  [OP_TANH_BWD] = rule_elem,
    [OP_SOFTMAX_BWD] = rule_softmax, [OP_LOG_SOFTMAX_BWD] = rule_softmax,
    [OP_MAX_BWD] = rule_elem,      [OP_CONV2D_BWD_DATA] = rule_conv,
    [OP_CONV2D_BWD_FILTER] = rule_conv, [OP_MAXPOOL_BWD] = rule_pool,
    [OP_AVGPOOL_BWD] = rule_pool,  [OP_BATCHNORM_BWD] = rule_elem, [OP_BN_DGAMMA] = rule_elem,
    [OP_LAYERNORM_BWD] = rule_elem, [OP_LN_DGAMMA] = rule_elem,  [OP_DROPOUT_BWD] = rule_elem,
    [OP_EMBEDDING_BWD] = rule_embedding_bwd, [OP_CE_BWD] = rule_ce, [OP_ASSIGN] = rule_assign,
};

bool cost_rule_defined(OpKind op) { return (unsigned)op < OP_COUNT && rules[op] != NULL; }

void cost_node(IrGraph *g, int i, CostNode *out) {
  const IrNode *n = &g->nodes[i];
  if (!cost_rule_defined(n->op)) {
    zero(g, out);
    return;
  }
  rules[n->op](g, n, out);
}

/* ---- sums ---------------------------------------------------------------------------- */

static void sum_zero(IrGraph *g, CostSum *s) {
  memset(s, 0, sizeof *s);
  s->flops = s->macs = s->transc = s->rd = s->wr = K(g, 0);
}

static void sum_add(IrGraph *g, CostSum *s, const CostNode *c) {
  s->flops = add(g, s->flops, c->flops);
  s->macs = add(g, s->macs, c->macs);
  s->transc = add(g, s->transc, c->transc);
  s->rd = add(g, s->rd, c->rd);
  s->wr = add(g, s->wr, c->wr);
  s->nkernels += c->kernel;
}

/* ---- memory -------------------------------------------------------------------------- */

/* storage a value lives in: views (reshape, inference dropout) alias their operand */
static bool is_view(const IrNode *n) {
  return n->op == OP_RESHAPE || (n->op == OP_DROPOUT && !n->attr.train);
}

static int storage_root(const IrGraph *g, int i) {
  while (is_view(&g->nodes[i])) i = g->nodes[i].in[0];
  return i;
}

/* optimizer state: a non-trainable PARAM created by the optimizer, or read only by PH_OPT
 * nodes (running statistics are read by the forward batchnorm, so they stay weights) */
static bool is_opt_state(const IrGraph *g, int p, const int *nuse_fwd_bwd, const int *nuse_opt) {
  const IrNode *n = &g->nodes[p];
  if (n->op != OP_PARAM) return false;
  if (n->phase == PH_OPT) return true;
  return !n->attr.trainable && nuse_opt[p] > 0 && nuse_fwd_bwd[p] == 0;
}

/* The peak is the memory plan's (passes/memplan.h, node order): params + io + the arena the
 * planner lays out, with in-place reuse, views and alignment. Its formula is the set of
 * values alive at the plan's busiest step, each term a polynomial in the dims: a lower
 * bound of the arena that meets it unless the allocator leaves holes (and for the 64-byte
 * alignment padding). */
static void planned_peak(CostResult *r, Arena *a) {
  IrGraph *g = r->g;
  MemPlan mp;
  char err[256];
  Dim *f = K(g, 0);
  if (memplan_build(g, NULL, &mp, a, err, sizeof err)) {
    /* no plan (a value of unknown size): what persists, no step */
    for (int i = 0; i < g->nnodes; i++)
      if (ir_ops[g->nodes[i].op].flags & OPF_LEAF) f = add(g, f, bytes_of(g, i));
    r->mem.peak = dim_evalf(g->dims, f, NULL);
    r->mem.peak_node = -1;
    r->mem.peak_dim = f;
    return;
  }
  int s = mp.peak_step;
  for (int i = 0; i < g->nnodes; i++) {
    if (mp.where[i] == MP_PARAMS || mp.where[i] == MP_IO) f = add(g, f, bytes_of(g, i));
    /* one term per arena buffer alive at s: its head (in-place chains share the head's) */
    if (mp.where[i] == MP_ARENA && mp.inplace_src[i] < 0 && s >= 0) {
      const MpBuf *b = &mp.bufs[mp.buf[i]];
      if (b->def <= s && s <= b->last) f = add(g, f, bytes_of(g, i));
    }
  }
  r->mem.peak = (double)memplan_total(&mp);
  r->mem.peak_node = s < g->nnodes ? s : g->nnodes - 1;
  r->mem.peak_dim = f;
}

static void memory(CostResult *r, Arena *a) {
  IrGraph *g = r->g;
  int n = g->nnodes;
  size_t sz = (size_t)(n ? n : 1) * sizeof(int);
  int *use_fb = arena_alloc(a, sz), *use_opt = arena_alloc(a, sz);
  bool *saved = arena_alloc(a, (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &g->nodes[i];
    for (int j = 0; j < nd->nin; j++) {
      int s = nd->in[j], root = storage_root(g, s);
      if (nd->phase == PH_OPT) use_opt[s]++;
      else use_fb[s]++;
      if (nd->phase == PH_BWD && g->nodes[s].phase == PH_FWD) saved[root] = true;
    }
  }
  CostMem *m = &r->mem;
  m->weights = m->grads = m->optimizer = m->activations = m->inputs = K(g, 0);
  r->params = r->params_trainable = K(g, 0);
  for (int d = 0; d < DT_COUNT; d++) r->param_bytes_dt[d] = K(g, 0);
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &g->nodes[i];
    Dim *b = bytes_of(g, i);
    if (nd->op == OP_PARAM && is_opt_state(g, i, use_fb, use_opt)) {
      m->optimizer = add(g, m->optimizer, b);
    } else if (nd->op == OP_PARAM) {
      m->weights = add(g, m->weights, b);
      r->params = add(g, r->params, numel(g, i));
      r->param_bytes_dt[nd->type.dt] = add(g, r->param_bytes_dt[nd->type.dt], b);
      if (nd->attr.trainable) {
        r->params_trainable = add(g, r->params_trainable, numel(g, i));
        if (r->training) m->grads = add(g, m->grads, b);
      }
    } else if (nd->op == OP_INPUT) {
      m->inputs = add(g, m->inputs, b);
    }
    bool value = !(ir_ops[nd->op].flags & OPF_LEAF) && !is_view(nd) && nd->op != OP_ASSIGN;
    if (r->training ? (saved[i] && nd->op != OP_PARAM && nd->op != OP_CONST)
                    : (value && nd->phase == PH_FWD))
      m->activations = add(g, m->activations, b);
  }
  planned_peak(r, a);
}

CostResult *cost_analyze(IrGraph *g, Arena *a) {
  if (!a) a = g->arena;
  CostResult *r = arena_alloc(a, sizeof *r);
  r->g = g;
  int n = g->nnodes;
  r->node = arena_alloc(a, (size_t)(n ? n : 1) * sizeof(CostNode));
  sum_zero(g, &r->total);
  for (int p = 0; p < 3; p++) sum_zero(g, &r->phase[p]);
  bool ovf = dim_ctx_overflowed(g->dims);
  r->overflow_node = -1;
  for (int i = 0; i < n; i++) {
    cost_node(g, i, &r->node[i]);
    Phase ph = g->nodes[i].phase;
    if (ph == PH_BWD) r->training = true;
    sum_add(g, &r->phase[ph], &r->node[i]);
    sum_add(g, &r->total, &r->node[i]);
    if (!ovf && r->overflow_node < 0 && dim_ctx_overflowed(g->dims)) r->overflow_node = i;
  }
  memory(r, a);
  if (!ovf && r->overflow_node < 0 && dim_ctx_overflowed(g->dims)) r->overflow_node = n - 1;
  return r;
}

int cost_check(const CostResult *r, Diag *d) {
  if (r->overflow_node < 0) return 0;
  const IrNode *n = &r->g->nodes[r->overflow_node];
  diag_error(d, n->loc, "the cost of '%s' is too large: its formulas (FLOPs, bytes, memory) "
             "overflow 64-bit integers at these dims", n->name ? n->name : ir_ops[n->op].name);
  return -1;
}

/* ---- roofline ------------------------------------------------------------------------ */

CostTime cost_time_of(double flops, double bytes, double peak, double bw, double overhead) {
  CostTime t = {.flops = flops, .bytes = bytes, .peak = peak};
  t.intensity = bytes > 0 ? flops / bytes : 0;
  t.t_compute = peak > 0 ? flops / peak : 0;
  t.t_memory = bw > 0 ? bytes / bw : 0;
  t.compute_bound = t.t_compute >= t.t_memory && flops > 0;
  t.time = fmax(t.t_compute, t.t_memory) + overhead;
  return t;
}

void cost_roofline(CostResult *r, const HwTarget *hw) {
  IrGraph *g = r->g;
  r->hw = hw;
  if (!r->time) r->time = arena_alloc(g->arena, (size_t)(g->nnodes ? g->nnodes : 1) * sizeof(CostTime));
  r->total.time = 0;
  for (int p = 0; p < 3; p++) r->phase[p].time = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *nd = &g->nodes[i];
    const CostNode *c = &r->node[i];
    bool gemm = ir_ops[nd->op].flags & OPF_GEMM;
    DType dt = nd->nin ? g->nodes[nd->in[0]].type.dt : nd->type.dt;
    if (gemm && nd->op == OP_CONV2D_BWD_FILTER) dt = nd->type.dt;
    double fl = dim_evalf(g->dims, c->flops, NULL);
    double by = dim_evalf(g->dims, c->rd, NULL) + dim_evalf(g->dims, c->wr, NULL);
    double peak = hw_peak(hw, dt, gemm);
    bool reduced = dt == DT_F32 && (nd->op == OP_MATMUL || (nd->op == OP_CONV2D && nd->attr.groups <= 1));
    if (reduced && r->gemm_tf32 && hw->peak[HWP_TF32_TC] > 0) peak = hw->peak[HWP_TF32_TC];
    else if (reduced && (r->gemm_dt == DT_BF16 || r->gemm_dt == DT_F16)) peak = hw_peak(hw, r->gemm_dt, true);
    r->time[i] = cost_time_of(fl, by, peak, hw->mem_bw, c->kernel ? hw->overhead_s : 0);
    if (!c->kernel) r->time[i].time = 0;
    r->phase[nd->phase].time += r->time[i].time;
    r->total.time += r->time[i].time;
  }
}

/* ---- grouping ------------------------------------------------------------------------ */

const char *cost_layer_key(const IrNode *n) { return n->scope ? n->scope : "(top)"; }

const char *cost_block_key(Arena *a, const IrNode *n) {
  if (!n->scope) return "(top)";
  const char *dot = strrchr(n->scope, '.');
  if (!dot) return n->scope;
  char *s = arena_strdup(a, n->scope);
  s[dot - n->scope] = 0;
  return s;
}

int cost_group(const CostResult *r, CostGroupBy by, CostGroup **out, Arena *a) {
  IrGraph *g = r->g;
  CostGroup *gs = arena_alloc(a, (size_t)(g->nnodes ? g->nnodes : 1) * sizeof *gs);
  int ng = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *nd = &g->nodes[i];
    if (ir_ops[nd->op].flags & OPF_LEAF) continue;
    const char *key;
    if (by == COST_BY_OP) key = nd->name ? nd->name : arena_printf(a, "%%%d", i);
    else if (by == COST_BY_LAYER) key = cost_layer_key(nd);
    else key = cost_block_key(a, nd);
    int k = -1;
    if (by != COST_BY_OP)
      for (int j = ng - 1; j >= 0; j--)
        if (!strcmp(gs[j].key, key)) {
          k = j;
          break;
        }
    if (k < 0) {
      k = ng++;
      gs[k].key = key;
      gs[k].first_node = i;
      sum_zero(g, &gs[k].sum);
      for (int p = 0; p < 3; p++) sum_zero(g, &gs[k].phase[p]);
    }
    gs[k].nnodes++;
    sum_add(g, &gs[k].sum, &r->node[i]);
    sum_add(g, &gs[k].phase[nd->phase], &r->node[i]);
    if (r->time) {
      gs[k].sum.time += r->time[i].time;
      gs[k].phase[nd->phase].time += r->time[i].time;
    }
  }
  *out = gs;
  return ng;
}
