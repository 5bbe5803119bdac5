/* simplify.c — cost-driven matmul-chain reassociation.
 *
 * Requires: a verified graph. Guarantees: the result computes the same values (matrix
 * products are associative; rounding may differ), verifies, keeps every output's name and
 * type, and needs no more MACs than the input at the current dim values. The rewrite is
 * reported with both MAC formulas so `nnc cost` can show it.
 *
 *   (op(A)·op(B))·op(C)  ->  op(A)·(op(B)·op(C))     and the reverse,
 * where op() is an optional transpose (attr.trans_a/trans_b), the inner product has no other
 * use, and every operand is a matrix (C may be a vector).
 */
#include <stdio.h>
#include <string.h>

#include "cost.h"

typedef struct Chain {
  int outer, inner;        /* node ids */
  int a, b, c;             /* operands in product order */
  bool ta, tb, tc;         /* transposes of a, b, c */
  bool left;               /* currently (A·B)·C, rewrite to A·(B·C); else the reverse */
} Chain;

static int uses(const IrGraph *g, int v) {
  int k = 0;
  for (int i = v + 1; i < g->nnodes; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) k += g->nodes[i].in[j] == v;
  for (int o = 0; o < g->noutputs; o++) k += g->outputs[o].node == v;
  return k;
}

static bool is_mat(const IrGraph *g, int v) { return g->nodes[v].type.rank == 2; }

/* rows/cols of op(X) for a matrix operand */
static Dim *rows(const IrGraph *g, int v, bool t) { return g->nodes[v].type.dims[t ? 1 : 0]; }
static Dim *cols(const IrGraph *g, int v, bool t) { return g->nodes[v].type.dims[t ? 0 : 1]; }

/* MACs of both orders for the chain: m×k · k×n · n×p (p = 1 for a vector C) */
static void chain_macs(IrGraph *g, const Chain *ch, Dim **now, Dim **alt) {
  DimCtx *c = g->dims;
  Dim *m = rows(g, ch->a, ch->ta), *k = cols(g, ch->a, ch->ta), *n = cols(g, ch->b, ch->tb);
  Dim *p = is_mat(g, ch->c) ? cols(g, ch->c, ch->tc) : dim_const(c, 1);
  Dim *lft = dim_add(c, dim_mul(c, dim_mul(c, m, k), n), dim_mul(c, dim_mul(c, m, n), p));
  Dim *rgt = dim_add(c, dim_mul(c, dim_mul(c, k, n), p), dim_mul(c, dim_mul(c, m, k), p));
  *now = ch->left ? lft : rgt;
  *alt = ch->left ? rgt : lft;
}

static bool find_chain(IrGraph *g, int i, Chain *ch) {
  const IrNode *o = &g->nodes[i];
  if (o->op != OP_MATMUL) return false;
  int l = o->in[0], r = o->in[1];
  /* (A·B)·C */
  if (g->nodes[l].op == OP_MATMUL && !o->attr.trans_a && uses(g, l) == 1) {
    const IrNode *in = &g->nodes[l];
    *ch = (Chain){i, l, in->in[0], in->in[1], r, in->attr.trans_a, in->attr.trans_b,
                  o->attr.trans_b, true};
    if (is_mat(g, ch->a) && is_mat(g, ch->b) && g->nodes[r].type.rank <= 2 &&
        g->nodes[r].type.rank >= 1)
      return true;
  }
  /* A·(B·C) */
  if (g->nodes[r].op == OP_MATMUL && !o->attr.trans_b && uses(g, r) == 1) {
    const IrNode *in = &g->nodes[r];
    *ch = (Chain){i, r, l, in->in[0], in->in[1], o->attr.trans_a, in->attr.trans_a,
                  in->attr.trans_b, false};
    if (is_mat(g, ch->a) && is_mat(g, ch->b) && g->nodes[ch->c].type.rank >= 1 &&
        g->nodes[ch->c].type.rank <= 2 && g->nodes[i].type.rank == (is_mat(g, ch->c) ? 2 : 1))
      return true;
  }
  return false;
}

static const char *operand_name(IrGraph *g, int v, bool t) {
  const IrNode *n = &g->nodes[v];
  if (!n->name && n->op == OP_TRANSPOSE && n->type.rank == 2 && g->nodes[n->in[0]].name)
    v = n->in[0], t = !t; /* show transpose(X) as X^T */
  const char *nm = g->nodes[v].name;
  return arena_printf(g->arena, "%s%s", nm ? nm : arena_printf(g->arena, "%%%d", v),
                      t ? "^T" : "");
}

static int build(IrGraph *ng, OpKind op, int a, int b, bool ta, bool tb, const IrNode *like) {
  IrAttr at = {.trans_a = ta, .trans_b = tb};
  int in[2] = {a, b};
  ShapeErr e;
  int r = ir_build(ng, op, in, 2, &at, NULL, like->loc, &e);
  if (r >= 0) {
    ng->nodes[r].scope = like->scope;
    ng->nodes[r].phase = like->phase;
  }
  return r;
}

/* copy g with the chain rewritten; NULL when a rebuilt node does not type-check */
static IrGraph *rewrite(IrGraph *g, const Chain *ch) {
  IrGraph *ng = arena_alloc(g->arena, sizeof *ng);
  *ng = *g;
  ng->nodes = NULL, ng->nnodes = ng->cap = 0;
  ng->outputs = NULL, ng->noutputs = ng->cap_out = 0;
  int *map = arena_alloc(g->arena, (size_t)g->nnodes * sizeof(int));
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (i == ch->inner) {
      map[i] = -1;
      continue;
    }
    if (i == ch->outer) {
      int a = map[ch->a], b = map[ch->b], c = map[ch->c], in, out;
      if (ch->left) { /* A·(B·C) */
        in = build(ng, OP_MATMUL, b, c, ch->tb, ch->tc, n);
        out = in < 0 ? -1 : build(ng, OP_MATMUL, a, in, ch->ta, false, n);
      } else { /* (A·B)·C */
        in = build(ng, OP_MATMUL, a, b, ch->ta, ch->tb, n);
        out = in < 0 ? -1 : build(ng, OP_MATMUL, in, c, false, ch->tc, n);
      }
      if (out < 0 || !ir_type_eq(&ng->nodes[out].type, &n->type)) return NULL;
      ng->nodes[out].name = n->name;
      map[i] = out;
      continue;
    }
    int *in = arena_alloc(g->arena, (size_t)(n->nin ? n->nin : 1) * sizeof(int));
    for (int j = 0; j < n->nin; j++) in[j] = map[n->in[j]];
    int k = ir_add(ng, n->op, in, n->nin, &n->attr, n->type, n->loc);
    ng->nodes[k].name = n->name;
    ng->nodes[k].scope = n->scope;
    ng->nodes[k].phase = n->phase;
    map[i] = k;
  }
  for (int o = 0; o < g->noutputs; o++) ir_add_output(ng, g->outputs[o].name, map[g->outputs[o].node]);
  return ng;
}

static void note(IrGraph *g, const Chain *ch, Dim *now, Dim *alt, SimplifyLog *log) {
  if (!log || log->n >= (int)(sizeof log->msg / sizeof *log->msg)) return;
  const char *a = operand_name(g, ch->a, ch->ta), *b = operand_name(g, ch->b, ch->tb),
             *c = operand_name(g, ch->c, ch->tc);
  char f1[96], f2[96];
  dim_print(g->dims, now, f1, sizeof f1, DIM_PLAIN);
  dim_print(g->dims, alt, f2, sizeof f2, DIM_PLAIN);
  const char *lhs = ch->left ? "(%s·%s)·%s" : "%s·(%s·%s)";
  const char *rhs = ch->left ? "%s·(%s·%s)" : "(%s·%s)·%s";
  char l[96], r[96];
  snprintf(l, sizeof l, lhs, a, b, c);
  snprintf(r, sizeof r, rhs, a, b, c);
  const char *m = arena_printf(g->arena, "reassociated %s -> %s: MACs %s -> %s (%.4g -> %.4g at these dims)",
                               l, r, f1, f2, dim_evalf(g->dims, now, NULL),
                               dim_evalf(g->dims, alt, NULL));
  snprintf(log->msg[log->n++], sizeof log->msg[0], "%s", m);
}

IrGraph *pass_reassoc_matmul(IrGraph *g, SimplifyLog *log) {
  for (int round = 0; round < 64; round++) {
    bool changed = false;
    for (int i = 0; i < g->nnodes && !changed; i++) {
      Chain ch;
      if (!find_chain(g, i, &ch)) continue;
      Dim *now, *alt;
      chain_macs(g, &ch, &now, &alt);
      if (!(dim_evalf(g->dims, alt, NULL) < dim_evalf(g->dims, now, NULL))) continue;
      IrGraph *ng = rewrite(g, &ch);
      if (!ng) continue;
      note(g, &ch, now, alt, log);
      g = ng;
      changed = true;
    }
    if (!changed) break;
  }
  return g;
}
