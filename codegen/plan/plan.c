/* lower.c — graph -> kernel plan for the CPU backend (see lower.h).
 *
 * Fusion, in one pass over the nodes in index order:
 * - elementwise ops (OPF_ELEMWISE, BROADCAST, ASSIGN) join the open elementwise group of an
 *   operand with the same shape; when operands come from several open groups of that shape
 *   the groups merge, so an optimizer update (a tree of elementwise ops ending in ASSIGNs)
 *   becomes one pass over its parameter. Scalar constants are folded into the group.
 * - MATMUL takes `+ bias[N]` and then `relu` into its GEMM epilogue, CONV2D takes
 *   `+ bias[O,1,1]` and `relu`, when each intermediate has no other reader.
 * - everything else is one kernel per node; RESHAPE (and dropout outside training) is an
 *   alias of its operand's storage.
 * A group that a later node reads from outside is sealed, so groups can only grow while
 * nobody depends on them: ordering kernels by their last member is then a valid schedule.
 *
 * ASSIGNs write straight into the parameter when no kernel after the update reads it (the
 * usual case: an optimizer update is the last reader of its weight); otherwise the new value
 * goes to the arena and is copied in at the end of the step, so every read sees the old
 * value as the IR requires.
 */
#include "plan.h"

#include "../../passes/memplan.h"

#include <stdlib.h>
#include <string.h>

static void *cg_xcalloc(size_t n, size_t s) {
  void *p = calloc(n ? n : 1, s ? s : 1);
  if (!p) abort();
  return p;
}

bool cg_dtype_ok(DType dt) { return dt == DT_F32 || dt == DT_I32; }

int cg_shape(const IrGraph *g, int i, int64_t *shape) {
  const IrType *t = &g->nodes[i].type;
  for (int k = 0; k < t->rank; k++) shape[k] = dim_eval(g->dims, t->dims[k], NULL);
  return t->rank;
}

static bool is_ew(const IrNode *n) {
  return (ir_ops[n->op].flags & OPF_ELEMWISE) || n->op == OP_BROADCAST || n->op == OP_ASSIGN;
}

static bool is_alias(const IrNode *n) {
  return n->op == OP_RESHAPE ||
         ((n->op == OP_DROPOUT || n->op == OP_DROPOUT_BWD) && (!n->attr.train || n->attr.value == 0));
}

static bool same_shape(const CgPlan *p, int a, int b) {
  const CgVal *x = &p->v[a], *y = &p->v[b];
  if (x->rank != y->rank) return false;
  for (int k = 0; k < x->rank; k++)
    if (x->shape[k] != y->shape[k]) return false;
  return true;
}

static int new_kernel(CgPlan *p, CgKernelKind kind, int anchor) {
  if (p->nk == p->capk) {
    p->capk = p->capk ? 2 * p->capk : 64;
    p->k = realloc(p->k, (size_t)p->capk * sizeof *p->k);
    if (!p->k) abort();
  }
  CgKernel *k = &p->k[p->nk];
  memset(k, 0, sizeof *k);
  k->kind = kind;
  k->anchor = anchor;
  k->node = anchor;
  k->out = anchor;
  k->bias_node = -1;
  k->copy_src = -1;
  return p->nk++;
}

static void add_member(CgPlan *p, int ki, int node) {
  CgKernel *k = &p->k[ki];
  if (k->nmembers == k->cap) {
    k->cap = k->cap ? 2 * k->cap : 8;
    k->members = realloc(k->members, (size_t)k->cap * sizeof(int));
    if (!k->members) abort();
  }
  k->members[k->nmembers++] = node;
  p->kof[node] = ki;
}

/* the operand's storage must exist before its reader runs */
static void materialize(CgPlan *p, int o) {
  int r = p->v[o].root;
  if (p->g->nodes[r].op == OP_CONST && p->kof[r] < 0) {
    int ki = new_kernel(p, CGK_NODE, r);
    add_member(p, ki, r);
    p->k[ki].sealed = true;
  }
  if (p->kof[r] >= 0) p->k[p->kof[r]].sealed = true;
}

/* the only needed reader of node i, or -1 (also -1 when i is an output) */
static int sole_reader(const CgPlan *p, int i, const bool *is_out) {
  if (is_out[i]) return -1;
  int who = -1;
  for (int c = i + 1; c < p->g->nnodes; c++) {
    const IrNode *n = &p->g->nodes[c];
    if (!p->v[c].needed) continue;
    for (int j = 0; j < n->nin; j++)
      if (n->in[j] == i) {
        if (who >= 0 && who != c) return -1;
        who = c;
      }
  }
  return who;
}

/* GEMM/CONV epilogue: + bias, then relu */
static void take_epilogue(CgPlan *p, int ki, int i, const bool *is_out, bool *absorbed) {
  const IrGraph *g = p->g;
  int cur = i;
  int c = sole_reader(p, cur, is_out);
  if (c >= 0 && g->nodes[c].op == OP_ADD && same_shape(p, c, cur) &&
      g->nodes[c].type.dt == DT_F32) {
    const IrNode *a = &g->nodes[c];
    int b = a->in[0] == cur ? a->in[1] : a->in[0];
    const CgVal *bv = &p->v[b], *yv = &p->v[cur];
    /* the bias must exist when the GEMM runs: computed before it, or a parameter/input,
     * which lives in its region from the start wherever the schedule puts its node */
    bool leaf = g->nodes[b].op == OP_PARAM || g->nodes[b].op == OP_INPUT;
    bool ok = (b < i || leaf) && b != cur && g->nodes[b].type.dt == DT_F32;
    if (ok && g->nodes[i].op == OP_MATMUL) {
      /* one bias per output column: [N] or [1,...,1,N] */
      ok = yv->rank >= 1 && bv->numel == yv->shape[yv->rank - 1] && bv->rank <= yv->rank;
      for (int k = 0; ok && k + 1 < bv->rank; k++) ok = bv->shape[k] == 1;
    } else if (ok) {
      /* one bias per output channel: [O,1,1] or [1,O,1,1] */
      ok = yv->rank == 4 && bv->numel == yv->shape[1] &&
           ((bv->rank == 3 && bv->shape[1] == 1 && bv->shape[2] == 1) ||
            (bv->rank == 4 && bv->shape[0] == 1 && bv->shape[2] == 1 && bv->shape[3] == 1));
    }
    if (ok) {
      materialize(p, b);
      add_member(p, ki, c);
      absorbed[c] = true;
      p->k[ki].bias = true;
      p->k[ki].bias_node = b;
      cur = c;
      c = sole_reader(p, cur, is_out);
    }
  }
  if (c >= 0 && g->nodes[c].op == OP_RELU && g->nodes[c].type.dt == DT_F32) {
    add_member(p, ki, c);
    absorbed[c] = true;
    p->k[ki].relu = true;
    cur = c;
  }
  p->k[ki].out = cur;
}

static void merge_into(CgPlan *p, int dst, int src) {
  CgKernel *s = &p->k[src];
  int *old = s->members, n = s->nmembers;
  s->members = NULL;
  s->nmembers = s->cap = 0;
  s->kind = CGK_COPY; /* dead: removed below */
  s->copy_src = -2;
  for (int j = 0; j < n; j++) add_member(p, dst, old[j]);
  free(old);
  CgKernel *d = &p->k[dst];
  for (int a = 1; a < d->nmembers; a++) /* keep node order */
    for (int b = a; b > 0 && d->members[b - 1] > d->members[b]; b--) {
      int t = d->members[b];
      d->members[b] = d->members[b - 1];
      d->members[b - 1] = t;
    }
}

static int cmp_anchor(const void *a, const void *b) {
  const CgKernel *x = a, *y = b;
  return (x->anchor > y->anchor) - (x->anchor < y->anchor);
}

/* ---- arena planning: lifetimes in kernel order, offsets from passes/memplan.c ---------- */

void cg_conv_geom(const CgPlan *p, int node, CgConv *c) {
  const IrNode *n = &p->g->nodes[node];
  const CgVal *x, *w, *y;
  if (n->op == OP_CONV2D) x = &p->v[n->in[0]], w = &p->v[n->in[1]], y = &p->v[node];
  else if (n->op == OP_CONV2D_BWD_DATA) y = &p->v[n->in[0]], w = &p->v[n->in[1]], x = &p->v[node];
  else x = &p->v[n->in[0]], y = &p->v[n->in[1]], w = &p->v[node];
  const IrAttr *a = &n->attr;
#define OR1(v) ((v) > 0 ? (int64_t)(v) : 1)
  *c = (CgConv){.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
                .O = w->shape[0], .OH = y->shape[2], .OW = y->shape[3], .KH = w->shape[2],
                .KW = w->shape[3], .G = OR1(a->groups), .sh = OR1(a->stride[0]),
                .sw = OR1(a->stride[1]), .ph = a->pad[0], .pw = a->pad[1],
                .dh = OR1(a->dilation[0]), .dw = OR1(a->dilation[1])};
#undef OR1
  c->Cg = c->C / c->G;
  c->Og = c->O / c->G;
  c->K = c->Cg * c->KH * c->KW;
  c->P = c->OH * c->OW;
  c->direct = c->KH == 1 && c->KW == 1 && c->sh == 1 && c->sw == 1 && c->ph == 0 &&
              c->pw == 0 && c->OH == c->H && c->OW == c->W;
}

/* ---- the plan ------------------------------------------------------------------------- */

int cg_plan(CgPlan *p, const IrGraph *g, const CgBinding *bind, Diag *d) {
  memset(p, 0, sizeof *p);
  p->g = g;
  int nn = g->nnodes;
  p->v = cg_xcalloc((size_t)nn, sizeof(CgVal));
  p->kof = cg_xcalloc((size_t)nn, sizeof(int));
  p->inplace = cg_xcalloc((size_t)nn, sizeof(bool));
  bool *is_out = cg_xcalloc((size_t)nn, sizeof(bool));
  bool *absorbed = cg_xcalloc((size_t)nn, sizeof(bool));
  int rc = -1;

  for (int i = 0; i < nn; i++) {
    CgVal *v = &p->v[i];
    const IrNode *n = &g->nodes[i];
    v->rank = cg_shape(g, i, v->shape);
    v->numel = 1;
    for (int k = 0; k < v->rank; k++) {
      if (v->shape[k] < 0) {
        diag_error(d, n->loc, "%s has a negative dim at the current dim values", ir_op_name(n->op));
        goto out;
      }
      v->numel *= v->shape[k];
    }
    v->nbytes = v->numel * (int64_t)dt_size(n->type.dt);
    v->region = CG_REGION_NONE;
    v->root = i;
    v->kernel = -1;
    p->kof[i] = -1;
  }
  /* what is needed: outputs, the bound io values, ASSIGNs, and everything they read */
  for (int j = 0; j < bind->nout; j++) is_out[bind->out_node[j]] = true;
  for (int i = nn - 1; i >= 0; i--) {
    const IrNode *n = &g->nodes[i];
    if (is_out[i] || n->op == OP_ASSIGN) p->v[i].needed = true;
    if (!p->v[i].needed) continue;
    for (int j = 0; j < n->nin; j++) p->v[n->in[j]].needed = true;
  }
  for (int i = 0; i < nn; i++) {
    const IrNode *n = &g->nodes[i];
    if (p->v[i].needed && !cg_dtype_ok(n->type.dt)) {
      diag_error(d, n->loc,
                 "the CPU backend computes in f32 (with i32 labels and indices); %s of dtype "
                 "%s is not supported yet",
                 ir_op_name(n->op), dt_name(n->type.dt));
      goto out;
    }
  }

  /* fusion */
  for (int i = 0; i < nn; i++) {
    const IrNode *n = &g->nodes[i];
    if (!p->v[i].needed || absorbed[i]) continue;
    switch (n->op) {
    case OP_INPUT:
    case OP_PARAM:
    case OP_CONST:
      continue;
    default:
      break;
    }
    if (is_alias(n)) {
      materialize(p, n->in[0]);
      p->v[i].root = p->v[n->in[0]].root;
      continue;
    }
    if (is_ew(n)) {
      int target = -1;
      for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
        int o = n->in[j];
        if (g->nodes[o].op == OP_CONST) continue; /* folded into the group */
        int ko = p->kof[o];
        bool cand = ko >= 0 && p->k[ko].kind == CGK_EW && !p->k[ko].sealed && same_shape(p, o, i);
        if (!cand) {
          materialize(p, o);
        } else if (target < 0) {
          target = ko;
        } else if (ko != target) {
          merge_into(p, target, ko);
        }
      }
      if (target < 0) target = new_kernel(p, CGK_EW, i);
      add_member(p, target, i);
      p->k[target].anchor = p->k[target].node = p->k[target].out = i;
      continue;
    }
    for (int j = 0; j < n->nin; j++) materialize(p, n->in[j]);
    if (n->op == OP_MATMUL || n->op == OP_CONV2D) {
      int ki = new_kernel(p, n->op == OP_MATMUL ? CGK_GEMM : CGK_CONV, i);
      add_member(p, ki, i);
      p->k[ki].sealed = true;
      take_epilogue(p, ki, i, is_out, absorbed);
      continue;
    }
    int ki = new_kernel(p, (n->op == OP_CONV2D_BWD_DATA || n->op == OP_CONV2D_BWD_FILTER)
                               ? CGK_CONV : CGK_NODE, i);
    add_member(p, ki, i);
    p->k[ki].sealed = true;
  }

  /* ASSIGN placement: in place unless a later kernel reads the parameter */
  for (int a = 0; a < nn; a++) {
    const IrNode *n = &g->nodes[a];
    if (n->op != OP_ASSIGN) continue;
    int P = n->in[0], ka = p->kof[a];
    if (g->nodes[P].op != OP_PARAM || !bind->region || bind->region[P] != RT_REGION_PARAMS) {
      diag_error(d, n->loc, "assign target %%%d is not a parameter", P);
      goto out;
    }
    bool ok = true;
    for (int c = 0; c < nn && ok; c++) {
      const IrNode *cn = &g->nodes[c];
      if (!p->v[c].needed || c == a || p->kof[c] < 0) continue;
      for (int j = cn->op == OP_ASSIGN ? 1 : 0; j < cn->nin; j++)
        if (p->v[cn->in[j]].root == P && p->kof[c] != ka &&
            p->k[p->kof[c]].anchor > p->k[ka].anchor)
          ok = false;
    }
    p->inplace[a] = ok;
  }
  for (int a = 0; a < nn; a++) /* one deferred update of a parameter defers all of them */
    if (g->nodes[a].op == OP_ASSIGN && !p->inplace[a])
      for (int b = 0; b < nn; b++)
        if (g->nodes[b].op == OP_ASSIGN && g->nodes[b].in[0] == g->nodes[a].in[0])
          p->inplace[b] = false;

  /* leaves */
  for (int i = 0; i < nn; i++) {
    OpKind op = g->nodes[i].op;
    if ((op == OP_PARAM || op == OP_INPUT) && bind->region[i] >= 0) {
      p->v[i].region = bind->region[i];
      p->v[i].offset = bind->offset[i];
      p->v[i].stored = true;
    } else if ((op == OP_PARAM || op == OP_INPUT) && p->v[i].needed) {
      diag_error(d, g->nodes[i].loc, "internal error: %s %%%d has no storage", ir_op_name(op), i);
      goto out;
    }
  }
  /* ASSIGN storage: the parameter itself, or an arena copy committed at the end */
  int ncopy = 0;
  for (int a = 0; a < nn; a++) {
    if (g->nodes[a].op != OP_ASSIGN) continue;
    int P = g->nodes[a].in[0];
    p->v[a].stored = true;
    if (p->inplace[a]) {
      p->v[a].region = RT_REGION_PARAMS;
      p->v[a].offset = p->v[P].offset;
    }
  }
  /* outputs: written straight into io when their producer can, else copied at the end */
  for (int j = 0; j < bind->nout; j++) {
    int o = bind->out_node[j];
    const IrNode *on = &g->nodes[o];
    bool direct = p->v[o].root == o && p->kof[o] >= 0 && p->v[o].region == CG_REGION_NONE &&
                  on->op != OP_ASSIGN && on->op != OP_CONST;
    if (direct) {
      p->v[o].region = RT_REGION_IO;
      p->v[o].offset = bind->out_offset[j];
      p->v[o].stored = true;
      continue;
    }
    materialize(p, o);
    p->v[p->v[o].root].stored = true;
    int ki = new_kernel(p, CGK_COPY, nn + ncopy++);
    p->k[ki].copy_src = o;
    p->k[ki].copy_dst_region = RT_REGION_IO;
    p->k[ki].copy_dst_offset = bind->out_offset[j];
    p->k[ki].copy_bytes = p->v[o].nbytes;
  }
  for (int a = 0; a < nn; a++) {
    if (g->nodes[a].op != OP_ASSIGN || p->inplace[a]) continue;
    int P = g->nodes[a].in[0];
    int ki = new_kernel(p, CGK_COPY, nn + ncopy++);
    p->k[ki].copy_src = a;
    p->k[ki].copy_dst_region = RT_REGION_PARAMS;
    p->k[ki].copy_dst_offset = p->v[P].offset;
    p->k[ki].copy_bytes = p->v[P].nbytes;
  }

  /* drop merged-away kernels, order by anchor, renumber */
  {
    int w = 0;
    for (int r = 0; r < p->nk; r++)
      if (!(p->k[r].kind == CGK_COPY && p->k[r].copy_src == -2)) p->k[w++] = p->k[r];
    p->nk = w;
    qsort(p->k, (size_t)p->nk, sizeof *p->k, cmp_anchor);
    for (int i = 0; i < nn; i++) p->kof[i] = -1;
    for (int ki = 0; ki < p->nk; ki++)
      for (int m = 0; m < p->k[ki].nmembers; m++) p->kof[p->k[ki].members[m]] = ki;
  }

  /* what is stored: values read outside their kernel (constants fold into elementwise
   * groups), kernel results of non-elementwise kernels */
  for (int c = 0; c < nn; c++) {
    const IrNode *n = &g->nodes[c];
    if (!p->v[c].needed) continue;
    int kc = p->kof[c];
    bool ew = kc >= 0 && p->k[kc].kind == CGK_EW;
    for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
      int r = p->v[n->in[j]].root;
      if (ew && g->nodes[r].op == OP_CONST) continue;
      if (kc < 0 || p->kof[r] != kc) p->v[r].stored = true;
    }
  }
  for (int ki = 0; ki < p->nk; ki++) {
    CgKernel *k = &p->k[ki];
    if (k->kind == CGK_GEMM || k->kind == CGK_CONV || k->kind == CGK_NODE) p->v[k->out].stored = true;
    if (k->kind == CGK_CONV) {
      CgConv cv;
      cg_conv_geom(p, k->node, &cv);
      if (!cv.direct) k->scratch_bytes = cv.K * cv.P * 4;
    }
  }
  for (int i = 0; i < nn; i++) p->v[i].kernel = p->kof[i];

  /* arena: liveness in kernel order, best-fit reuse */
  {
    int *def = cg_xcalloc((size_t)nn, sizeof(int)), *last = cg_xcalloc((size_t)nn, sizeof(int));
    for (int i = 0; i < nn; i++) def[i] = last[i] = -1;
    for (int i = 0; i < nn; i++)
      if (p->v[i].stored && p->v[i].region == CG_REGION_NONE && p->v[i].root == i) {
        if (p->kof[i] < 0) {
          diag_error(d, g->nodes[i].loc, "internal error: %%%d is stored but has no kernel", i);
          free(def);
          free(last);
          goto out;
        }
        def[i] = last[i] = p->kof[i];
      }
    for (int c = 0; c < nn; c++) {
      const IrNode *n = &g->nodes[c];
      if (!p->v[c].needed || p->kof[c] < 0) continue;
      for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
        int r = p->v[n->in[j]].root;
        if (def[r] >= 0 && p->kof[c] > last[r]) last[r] = p->kof[c];
      }
    }
    for (int ki = 0; ki < p->nk; ki++)
      if (p->k[ki].kind == CGK_COPY) {
        int r = p->v[p->k[ki].copy_src].root;
        if (def[r] >= 0 && ki > last[r]) last[r] = ki;
      }
    /* one buffer per stored root and one per im2col scratch, alive over [def, last] in
     * kernel order; memplan's best-fit places them (docs/memory.md) */
    MpBuf *bufs = cg_xcalloc((size_t)nn + (size_t)p->nk, sizeof(MpBuf));
    int *who = cg_xcalloc((size_t)nn + (size_t)p->nk, sizeof(int)); /* node, or -1 - kernel */
    int nb = 0;
    for (int i = 0; i < nn; i++)
      if (def[i] >= 0) who[nb] = i, bufs[nb++] = (MpBuf){p->v[i].nbytes, def[i], last[i], -1};
    for (int ki = 0; ki < p->nk; ki++)
      if (p->k[ki].scratch_bytes) who[nb] = -1 - ki, bufs[nb++] = (MpBuf){p->k[ki].scratch_bytes, ki, ki, -1};
    p->arena_bytes = mp_assign(bufs, nb);
    for (int q = 0; q < nb; q++) {
      if (who[q] >= 0) {
        p->v[who[q]].region = CG_REGION_ARENA;
        p->v[who[q]].offset = bufs[q].offset;
      } else {
        p->k[-1 - who[q]].scratch_offset = bufs[q].offset;
      }
    }
    free(bufs);
    free(who);
    free(def);
    free(last);
  }
  for (int i = 0; i < nn; i++) /* aliases share their root's storage */
    if (p->v[i].root != i) {
      p->v[i].region = p->v[p->v[i].root].region;
      p->v[i].offset = p->v[p->v[i].root].offset;
      p->v[i].stored = p->v[p->v[i].root].stored;
    }
  rc = 0;
out:
  free(is_out);
  free(absorbed);
  if (rc) cg_plan_free(p);
  return rc;
}

void cg_plan_free(CgPlan *p) {
  for (int i = 0; i < p->nk; i++) free(p->k[i].members);
  free(p->k);
  free(p->v);
  free(p->kof);
  free(p->inplace);
  memset(p, 0, sizeof *p);
}
