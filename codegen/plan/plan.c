/* plan.c — graph -> kernel plan for a backend described by a CgTarget (see plan.h).
 *
 * Fusion, in one pass over the nodes in index order:
 * - elementwise ops (OPF_ELEMWISE, BROADCAST, ASSIGN) join the open elementwise group of an
 *   operand with the same shape; when operands come from several open groups of that shape
 *   the groups merge, so an optimizer update (a tree of elementwise ops ending in ASSIGNs)
 *   becomes one pass over its parameter. Scalar constants are folded into the group.
 * - MATMUL takes `+ bias[N]` and then `relu` into its GEMM epilogue, CONV2D takes
 *   `+ bias[O,1,1]` or, on a target with conv_bn, an inference batchnorm, and then `relu`,
 *   when each intermediate has no other reader.
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

int cg_shape(const IrGraph *g, int i, int64_t *shape) {
  const IrType *t = &g->nodes[i].type;
  for (int k = 0; k < t->rank; k++) shape[k] = dim_eval(g->dims, t->dims[k], NULL);
  return t->rank;
}

static bool is_ew(const IrNode *n) {
  return (ir_ops[n->op].flags & OPF_ELEMWISE) || n->op == OP_BROADCAST || n->op == OP_ASSIGN;
}

/* a node of the optimizer step, which runs after the split (plan.h) */
static bool node_opt(const CgPlan *p, int i) {
  return p->phased && p->g->nodes[i].phase == PH_OPT;
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
    p->k = xrealloc(p->k, (size_t)p->capk * sizeof *p->k);
  }
  CgKernel *k = &p->k[p->nk];
  memset(k, 0, sizeof *k);
  k->kind = kind;
  k->anchor = anchor;
  k->node = anchor;
  k->out = anchor;
  k->bias_node = -1;
  k->bn_node = -1;
  k->copy_src = -1;
  k->opt = anchor < p->g->nnodes && node_opt(p, anchor);
  return p->nk++;
}

static void add_member(CgPlan *p, int ki, int node) {
  CgKernel *k = &p->k[ki];
  if (k->nmembers == k->cap) {
    k->cap = k->cap ? 2 * k->cap : 8;
    k->members = xrealloc(k->members, (size_t)k->cap * sizeof(int));
  }
  k->members[k->nmembers++] = node;
  p->kof[node] = ki;
}

/* the operand's storage must exist before its reader runs */
static void materialize(CgPlan *p, int o) {
  int r = p->v[o].root;
  if (ir_is_fill(&p->g->nodes[r]) && p->kof[r] < 0) {
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

/* an inference batchnorm reading conv i alone, whose statistics and affine parameters exist
 * when the convolution runs: folded into its epilogue as a scale and shift a channel */
static bool take_bn(CgPlan *p, int ki, int i, int c, bool *absorbed) {
  const IrGraph *g = p->g;
  const IrNode *b = &g->nodes[c];
  if (!p->target->conv_bn || g->nodes[i].op != OP_CONV2D || p->k[ki].bias ||
      b->op != OP_BATCHNORM || b->attr.train || b->nin != 5 || b->in[0] != i ||
      b->type.dt != DT_F32)
    return false;
  for (int j = 1; j < 5; j++) {
    int s = b->in[j], op = g->nodes[s].op;
    if (!((s < i || op == OP_PARAM || op == OP_INPUT) && s != i && g->nodes[s].type.dt == DT_F32))
      return false;
  }
  for (int j = 1; j < 5; j++) materialize(p, b->in[j]);
  add_member(p, ki, c);
  absorbed[c] = true;
  p->k[ki].bn = true;
  p->k[ki].bn_node = c;
  return true;
}

/* GEMM/CONV epilogue: + bias or an inference batchnorm, then relu */
static void take_epilogue(CgPlan *p, int ki, int i, const bool *is_out, bool *absorbed) {
  const IrGraph *g = p->g;
  int cur = i;
  int c = sole_reader(p, cur, is_out);
  if (c >= 0 && node_opt(p, c) != node_opt(p, i)) c = -1;
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
      if (c >= 0 && node_opt(p, c) != node_opt(p, i)) c = -1;
    }
  }
  if (c >= 0 && take_bn(p, ki, i, c, absorbed)) {
    cur = c;
    c = sole_reader(p, cur, is_out);
  }
  if (c >= 0 && g->nodes[c].op == OP_RELU && g->nodes[c].type.dt == DT_F32) {
    add_member(p, ki, c);
    absorbed[c] = true;
    p->k[ki].relu = true;
    cur = c;
  }
  p->k[ki].out = cur;
}

static bool plan_wino(const CgPlan *p, const CgKernel *k);

/* ---- the elementwise group after a GEMM/CONV epilogue (CgKernel.nepi) ------------------ */

bool cg_epi_member(const CgKernel *k, int c) {
  for (int m = k->epi_first; m < k->epi_first + k->nepi; m++)
    if (k->members[m] == c) return true;
  return false;
}

/* how operand o broadcasts against out, the output of op node `op`; -1: not at all */
static int epi_kind(const CgPlan *p, int o, int out, int op) {
  const CgVal *ov = &p->v[o], *yv = &p->v[out];
  if (p->g->nodes[o].type.dt != DT_F32) return -1;
  if (ov->numel == 1) return CG_EPI_SCALAR;
  if (same_shape(p, o, out)) return CG_EPI_FULL;
  bool ones = true;
  if (p->g->nodes[op].op == OP_MATMUL) {
    for (int d = 0; d + 1 < ov->rank; d++) ones &= ov->shape[d] == 1;
    return ones && yv->rank >= 1 && ov->rank >= 1 && ov->rank <= yv->rank &&
                   ov->shape[ov->rank - 1] == yv->shape[yv->rank - 1]
               ? CG_EPI_COL : -1;
  }
  bool chan = yv->rank == 4 && ov->numel == yv->shape[1] &&
              ((ov->rank == 3 && ov->shape[1] == 1 && ov->shape[2] == 1) ||
               (ov->rank == 4 && ov->shape[0] == 1 && ov->shape[2] == 1 && ov->shape[3] == 1));
  return chan ? CG_EPI_CHAN : -1;
}

int cg_epi_operands(const CgPlan *p, const CgKernel *k, CgEpiOperand *ops) {
  int n = 0;
  for (int m = k->epi_first; m < k->epi_first + k->nepi; m++) {
    const IrNode *nd = &p->g->nodes[k->members[m]];
    for (int j = 0; j < nd->nin; j++) {
      int o = nd->in[j];
      bool dup = o == k->epi_base || cg_epi_member(k, o) || ir_is_fill(&p->g->nodes[p->v[o].root]);
      for (int s = 0; s < n; s++) dup |= ops[s].node == o;
      if (dup || n == CG_EPI_MAX_IN) continue;
      ops[n++] = (CgEpiOperand){o, (CgEpiKind)epi_kind(p, o, k->epi_base, k->node)};
    }
  }
  return n;
}

/* how many of the group members mem[0, nm) after base the Winograd output transform
 * applies (rt_k_wino_out): a residual add of a tensor of the output's shape, then relu */
static int epi_wino_len(const CgPlan *p, int base, int op, const int *mem, int nm) {
  const IrGraph *g = p->g;
  if (nm < 1 || g->nodes[mem[0]].op != OP_ADD) return 0;
  const IrNode *a = &g->nodes[mem[0]];
  int r = a->in[0] == base ? a->in[1] : a->in[1] == base ? a->in[0] : -1;
  if (r < 0 || r == base || ir_is_fill(&g->nodes[r]) || epi_kind(p, r, base, op) != CG_EPI_FULL)
    return 0;
  return nm >= 2 && g->nodes[mem[1]].op == OP_RELU && g->nodes[mem[1]].in[0] == mem[0] ? 2 : 1;
}

bool cg_epi_wino(const CgPlan *p, const CgKernel *k, int *res, bool *relu) {
  const int *mem = k->members + k->epi_first;
  if (epi_wino_len(p, k->epi_base, k->node, mem, k->nepi) != k->nepi) return false;
  const IrNode *a = &p->g->nodes[mem[0]];
  *res = a->in[0] == k->epi_base ? a->in[1] : a->in[0];
  *relu = k->nepi == 2;
  return true;
}

/* the kernel's op computes its output where the backend applies a group to it: an f32
 * inference GEMM (not streamed) or a convolution: ungrouped (channel operands by C's row; a
 * batch's GEMM: in the copy to the output), transposed (in the write-back), the direct
 * depthwise forward or the direct few-channel one (CgConv.few: both on the registers before
 * their store), or Winograd (its output transform; the group as epi_wino_len allows) */
static bool epi_path_ok(CgPlan *p, int ki, const TilePlan *tiles) {
  CgKernel *k = &p->k[ki];
  const IrNode *n = &p->g->nodes[k->node];
  if (!p->target->epi_group || n->type.dt != DT_F32 || node_opt(p, k->node) ||
      !cg_plan_inference(p))
    return false;
  if (tiles && k->node < tiles->n && tiles->tiles[k->node].valid) k->tile = &tiles->tiles[k->node];
  if (n->op == OP_MATMUL) return !(k->tile && k->tile->stream_b);
  k->wino = plan_wino(p, k);
  CgConv c;
  cg_conv_geom(p, k->node, &c);
  return c.wino || c.depthwise || c.few || c.trans || c.G == 1;
}

/* node c may join the group of in[] (kernel ki of op node i): elementwise f32 of the
 * base's shape, each operand the group's, a fill, or a tensor that exists when the kernel
 * runs (computed before i, a leaf, or the value of an earlier kernel: those are anchored
 * before i and sealed by materialize) and broadcasts (epi_kind) */
static bool epi_joins(const CgPlan *p, int ki, int i, int base, int c, const bool *in) {
  const IrGraph *g = p->g;
  const IrNode *n = &g->nodes[c];
  if (!(ir_ops[n->op].flags & OPF_ELEMWISE) || n->op == OP_ASSIGN || n->type.dt != DT_F32 ||
      !same_shape(p, c, base) || node_opt(p, c) != node_opt(p, i))
    return false;
  for (int j = 0; j < n->nin; j++) {
    int o = n->in[j], op = g->nodes[o].op;
    if (in[o] || ir_is_fill(&g->nodes[o])) continue;
    bool exists = o < i || op == OP_PARAM || op == OP_INPUT || (p->kof[o] >= 0 && p->kof[o] != ki);
    if (!exists || epi_kind(p, o, base, i) < 0) return false;
  }
  return true;
}

/* mem[0, nm) with base: only the last member is read outside, nothing is an output but it,
 * and the tensors read fit CG_EPI_MAX_IN */
static bool epi_valid(const CgPlan *p, int base, const int *mem, int nm, const bool *in,
                      const bool *is_out) {
  const IrGraph *g = p->g;
  int ext[CG_EPI_MAX * IR_MAX_IN], next = 0;
  for (int m = -1; m < nm - 1; m++) {
    int v = m < 0 ? base : mem[m];
    if (is_out[v]) return false;
    for (int c = v + 1; c < g->nnodes; c++) {
      if (!p->v[c].needed || in[c]) continue;
      for (int j = 0; j < g->nodes[c].nin; j++)
        if (g->nodes[c].in[j] == v) return false;
    }
  }
  for (int m = 0; m < nm; m++)
    for (int j = 0; j < g->nodes[mem[m]].nin; j++) {
      int o = g->nodes[mem[m]].in[j];
      bool dup = in[o] || ir_is_fill(&g->nodes[o]);
      for (int s = 0; s < next; s++) dup |= ext[s] == o;
      if (!dup) ext[next++] = o;
    }
  return next <= CG_EPI_MAX_IN;
}

/* the elementwise group after kernel ki's epilogue (op node i): the nodes that read the
 * base or the group, in node order, while they may join; then the longest prefix that
 * only its last member leaves */
static void take_group(CgPlan *p, int ki, int i, const TilePlan *tiles, const bool *is_out,
                       bool *absorbed) {
  const IrGraph *g = p->g;
  int base = p->k[ki].out, mem[CG_EPI_MAX] = {0}, nm = 0;
  if (is_out[base] || !epi_path_ok(p, ki, tiles)) return;
  bool *in = xcalloc((size_t)g->nnodes, sizeof(bool));
  in[base] = true;
  for (int c = base + 1; c < g->nnodes && nm < CG_EPI_MAX; c++) {
    if (!p->v[c].needed || absorbed[c] || p->kof[c] >= 0) continue;
    bool reads = false;
    for (int j = 0; j < g->nodes[c].nin; j++) reads |= in[g->nodes[c].in[j]];
    if (reads && epi_joins(p, ki, i, base, c, in)) in[c] = true, mem[nm++] = c;
  }
  if (p->k[ki].wino)
    for (int keep = epi_wino_len(p, base, i, mem, nm); nm > keep;) in[mem[--nm]] = false;
  while (nm > 0 && !epi_valid(p, base, mem, nm, in, is_out)) in[mem[--nm]] = false;
  CgKernel *k = &p->k[ki];
  k->epi_first = k->nmembers;
  k->epi_base = base;
  for (int m = 0; m < nm; m++) {
    const IrNode *n = &g->nodes[mem[m]];
    for (int j = 0; j < n->nin; j++)
      if (!in[n->in[j]] && !ir_is_fill(&g->nodes[n->in[j]])) materialize(p, n->in[j]);
    add_member(p, ki, mem[m]);
    absorbed[mem[m]] = true;
  }
  p->k[ki].nepi = nm;
  if (nm) p->k[ki].out = mem[nm - 1];
  free(in);
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

/* Winograd F(4,3): V[36][C][T] and M[36][O][T] per call, U[36][O][C] while the filter is
 * transformed and packed (plan_pack.c); with step (CgKernel.wino_step) U's packed panels,
 * written every call, come first. A filter gradient (wino_wgrad): V[36][C][T], dy's
 * D[36][O][T] and the sums M[36][O][C] over the rounds */
static void conv_wino_scratch(CgConv *c, int64_t nb, bool step) {
  c->TH = (c->OH + 3) / 4, c->TW = (c->OW + 3) / 4;
  c->NB = nb >= 1 && nb <= c->N && c->N % nb == 0 ? nb : c->N;
  int64_t vm, u, up = 0;
  if (__builtin_mul_overflow(c->NB, c->TH * c->TW, &c->T) ||
      __builtin_mul_overflow(c->T, 36 * 4 * (c->C + c->O), &vm) ||
      __builtin_mul_overflow(c->O, 36 * 4 * c->C, &u) ||
      (step && __builtin_mul_overflow(cg_pack_rpad_a(c->O), 36 * 4 * c->C, &up))) {
    c->scratch = -1;
    return;
  }
  c->upack = up;
  c->scratch = step ? up + vm : vm > u ? vm : u;
  if (c->wino_wgrad && __builtin_add_overflow(u, vm, &c->scratch)) c->scratch = -1;
}

/* a data gradient as the Winograd convolution it is: dy in, dx out, padding 2 - p */
static void conv_wino_bwd(CgConv *c) {
  int64_t t;
#define SWAP(a, b) (t = (a), (a) = (b), (b) = t)
  SWAP(c->C, c->O), SWAP(c->H, c->OH), SWAP(c->W, c->OW);
#undef SWAP
  c->ph = 2 - c->ph, c->pw = 2 - c->pw;
  c->Cg = c->C, c->Og = c->O, c->K = 9 * c->C, c->P = c->OH * c->OW;
  c->wino_bwd = true;
}

/* the kernel of a 3x3 stride-1 conv2d (or its data or filter gradient) runs Winograd
 * F(4,3): the target does it (with its packed weights; training plans transform the filter
 * per call), the tiles pass chose it (for a filter gradient: choose_wino_wgrad) */
static bool plan_wino(const CgPlan *p, const CgKernel *k) {
  const CgTarget *t = p->target;
  if (k->kind != CGK_CONV || !t || !t->winograd || !t->prepack || !k->tile || !k->tile->wino ||
      k->tile->gpu)
    return false;
  const IrNode *n = &p->g->nodes[k->node];
  return n->op == OP_CONV2D || n->op == OP_CONV2D_BWD_FILTER ||
         (n->op == OP_CONV2D_BWD_DATA && n->attr.pad[0] <= 2 && n->attr.pad[1] <= 2 &&
          !k->bias && !k->relu);
}

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
  c->depthwise = p->target && p->target->depthwise_direct && c->G > 1 && c->Cg == 1 &&
                 c->Og == 1 && c->KH <= 8 && c->KW <= 8 &&
                 (n->op == OP_CONV2D || n->op == OP_CONV2D_BWD_FILTER ||
                  (n->op == OP_CONV2D_BWD_DATA && c->sh <= 2 && c->sw <= 2));
  CgConvStrategy st = p->target ? p->target->conv : CG_CONV_IM2COL;
  bool small = c->Cg * c->H * c->W < INT32_MAX && c->K < INT32_MAX && c->P < INT32_MAX;
  c->col = !c->direct && !c->depthwise &&
           (st == CG_CONV_IM2COL ||
            (st == CG_CONV_GATHER && (n->op == OP_CONV2D_BWD_DATA || !small)));
  int64_t xs = c->C * c->H * c->W, ys = c->Og * c->N * c->P;
  bool few = st == CG_CONV_GATHER && c->N > 1 && c->P < CG_CONV_BATCH_P;
  bool gathers = !c->col && !c->depthwise && c->N * xs < INT32_MAX && c->N * c->P < INT32_MAX;
  int ki = p->kof && node < p->g->nnodes ? p->kof[node] : -1;
  if (ki >= p->nk) ki = -1;
  const TileDecision *td = ki >= 0 ? p->k[ki].tile : NULL;
  bool inplace = td && td->direct_b && !td->gpu && c->direct; /* a GEMM an image, B in place */
  c->batch = few && !inplace && ((n->op == OP_CONV2D && gathers) ||
                     (n->op == OP_CONV2D_BWD_FILTER && gathers && c->P < CG_CONV_BATCH_DW_P) ||
                     (n->op == OP_CONV2D_BWD_DATA && (c->col || (c->direct && c->P < CG_CONV_BATCH_DX1_P))));
  c->scratch = 0;
  c->wino = ki >= 0 && p->k[ki].wino;
  if (c->wino) {
    if (n->op == OP_CONV2D_BWD_DATA) conv_wino_bwd(c);
    c->wino_wgrad = n->op == OP_CONV2D_BWD_FILTER; /* x, dy in (the forward's fields), dW out */
    conv_wino_scratch(c, p->k[ki].tile->wino->wino_images, p->k[ki].wino_step);
    return;
  }
  CgDwBlock fb;
  c->few = n->op == OP_CONV2D && td && td->conv_few && !td->gpu && p->target && p->target->conv_few &&
           st == CG_CONV_GATHER && !c->col && !c->depthwise && cg_few_block(c, p->target->vector_width, &fb);
  if (c->few) {
    c->batch = false;
    return;
  }
  c->trans = n->op == OP_CONV2D && td && td->conv_t && !td->gpu && st == CG_CONV_GATHER &&
             !c->col && !c->depthwise;
  bool pw_ok = td && (td->wgrad_cb == 0 || (c->direct && c->Cg % td->wgrad_cb == 0));
  if (n->op == OP_CONV2D_BWD_FILTER && td && td->wgrad_ob > 0 && !td->gpu && !c->col &&
      !c->depthwise && p->target && p->target->depthwise_direct && c->Og % td->wgrad_ob == 0 &&
      c->KH <= 8 && c->KW <= 8 && c->sh <= 2 && c->sw <= 2 && pw_ok) {
    c->OB = td->wgrad_ob; /* the direct filter gradient: no batch GEMM, no scratch */
    c->CB = td->wgrad_cb; /* a pointwise one: CB input channels a pass too */
    c->batch = false;
  }
  int64_t rows = c->K + c->Og; /* the data gradient's batch: dcol, then dy's rows */
  if (c->batch && n->op == OP_CONV2D_BWD_DATA) {
    if (__builtin_mul_overflow(rows, ys / c->Og * 4, &c->scratch)) c->scratch = -1;
  } else if ((c->col && __builtin_mul_overflow(c->K, c->P * 4, &c->scratch)) ||
             ((c->batch || c->trans) &&
              __builtin_mul_overflow(c->batch ? ys : c->Og * c->P, 4, &c->scratch))) {
    c->scratch = -1;
  }
}

bool cg_dw_block(const CgConv *c, int vl, CgDwBlock *b) {
  int64_t lim = INT64_C(1) << 20;
  if ((c->sw != 1 && c->sw != 2) || vl <= 0 || vl > 64 || c->OH <= 0 || c->OW <= 0 ||
      c->OW > lim || c->sh > 64 || c->dh > 64 || c->dw > 64 || c->KH > 8 || c->KW > 8)
    return false;
  b->R = (int)(c->OH < CG_DW_ROWS ? c->OH : CG_DW_ROWS);
  b->rows = (int)((b->R - 1) * c->sh + (c->KH - 1) * c->dh + 1);
  b->nv = (c->OW + vl - 1) / vl;
  int64_t need = b->nv * vl + (c->KW - 1) * c->dw / c->sw + 1;
  b->lp = (need + vl - 1) / vl * vl;
  b->nb = (c->OH + b->R - 1) / b->R;
  b->direct = b->nv == 1 || c->sw == 1;
  /* vector v reads the columns from v·vl·sw - pw (tap 0) to (v + 1)·vl·sw - 1 - pw + (KW-1)·dw
   * (stride 2: two loads of vl) and stores vl outputs */
  b->vlo = b->nv, b->vhi = 0;
  for (int64_t v = 0; v < b->nv; v++)
    if (v * vl * c->sw - c->pw >= 0 && (v + 1) * vl * c->sw - 1 - c->pw + (c->KW - 1) * c->dw < c->W &&
        (v + 1) * vl <= c->OW) {
      if (b->vlo > v) b->vlo = v;
      b->vhi = v + 1;
    }
  if (b->vhi < b->vlo) b->vhi = b->vlo;
  b->bytes = b->direct ? 0 : (int64_t)b->rows * c->sw * b->lp * 4;
  int64_t pv = (c->OH * c->OW + vl - 1) / vl; /* OW <= lim, and OH bounded by the graph's sizes */
  b->flat = c->sh == 1 && c->sw == 1 && c->OW == c->W && 2 * c->OW <= vl && c->OH <= lim &&
                    pv <= CG_DW_FLAT_MAX_V ? pv : 0;
  return b->bytes <= CG_DW_BUF_MAX;
}

bool cg_few_block(const CgConv *c, int vl, CgDwBlock *b) {
  CgConv one = *c;
  one.OH = 1;
  if (!cg_dw_block(&one, vl, b) || c->C > 160 || c->G != 1) return false;
  b->R = 1, b->direct = false, b->nb = c->OH, b->flat = 0;
  b->bytes = c->C * c->KH * c->sw * b->lp * 4;
  return b->bytes <= CG_DW_BUF_MAX;
}

/* ---- the plan, step by step ------------------------------------------------------------ */

/* shapes and sizes at the current dims */
static int plan_values(CgPlan *p, Diag *d) {
  const IrGraph *g = p->g;
  for (int i = 0; i < g->nnodes; i++) {
    CgVal *v = &p->v[i];
    const IrNode *n = &g->nodes[i];
    v->rank = cg_shape(g, i, v->shape);
    v->numel = 1;
    bool big = false;
    for (int k = 0; k < v->rank; k++) {
      if (v->shape[k] < 0) {
        diag_error(d, n->loc, "%s has a negative dim at the current dim values", ir_op_name(n->op));
        return -1;
      }
      big |= __builtin_mul_overflow(v->numel, v->shape[k], &v->numel);
    }
    big |= __builtin_mul_overflow(v->numel, (int64_t)dt_size(n->type.dt), &v->nbytes);
    if (big || v->nbytes > CG_MAX_BYTES) {
      diag_error(d, n->loc, "%s is too large to plan: its size in bytes exceeds 2^61",
                 ir_op_name(n->op));
      return -1;
    }
    v->region = CG_REGION_NONE;
    v->root = i;
    v->kernel = -1;
    p->kof[i] = -1;
  }
  return 0;
}

/* what is needed: outputs, the bound io values, ASSIGNs, and everything they read */
static void plan_needed(CgPlan *p, const CgBinding *bind, bool *is_out) {
  const IrGraph *g = p->g;
  for (int j = 0; j < bind->nout; j++) is_out[bind->out_node[j]] = true;
  bool *needed = xcalloc((size_t)g->nnodes, sizeof(bool));
  for (int i = 0; i < g->nnodes; i++) needed[i] = is_out[i] || g->nodes[i].op == OP_ASSIGN;
  ir_mark_live(g, needed);
  for (int i = 0; i < g->nnodes; i++) p->v[i].needed = needed[i];
  free(needed);
}

/* phased: the optimizer's nodes come after all others (plan.h); a schedule that interleaves
 * updates with the backward pass (remat's, to free each gradient early) is kept as it is */
static void plan_phases(CgPlan *p) {
  const IrGraph *g = p->g;
  int last_other = -1, first_opt = g->nnodes;
  for (int i = 0; i < g->nnodes; i++) {
    if (!p->v[i].needed) continue;
    if (g->nodes[i].phase == PH_OPT) first_opt = first_opt < i ? first_opt : i;
    else last_other = i;
  }
  p->phased = first_opt < g->nnodes && last_other < first_opt;
}

static void dtype_list(const CgTarget *t, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int dt = 0; dt < 32 && k < n; dt++)
    if (t->dtypes >> dt & 1u)
      k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", dt_name((DType)dt));
}

/* every needed node is an op of a dtype the backend has */
static int plan_check_target(const CgPlan *p, Diag *d) {
  const IrGraph *g = p->g;
  const CgTarget *t = p->target;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (!p->v[i].needed) continue;
    if ((unsigned)n->op >= OP_COUNT || !t->native[n->op]) {
      diag_error(d, n->loc, "the %s backend has no lowering for op '%s'", t->name,
                 ir_op_name(n->op));
      return -1;
    }
    if (!cg_target_dtype(t, n->type.dt)) {
      char dts[128];
      dtype_list(t, dts, sizeof dts);
      diag_error(d, n->loc, "the %s backend computes in %s; %s of dtype %s is not supported yet",
                 t->name, dts, ir_op_name(n->op), dt_name(n->type.dt));
      return -1;
    }
  }
  return 0;
}

/* an elementwise node joins the open group of an operand of its shape (merging groups) */
static void fuse_ew(CgPlan *p, int i) {
  const IrGraph *g = p->g;
  const IrNode *n = &g->nodes[i];
  int target = -1;
  for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
    int o = n->in[j];
    if (ir_is_fill(&g->nodes[o])) continue; /* folded into the group */
    int ko = p->kof[o];
    bool cand = ko >= 0 && p->k[ko].kind == CGK_EW && !p->k[ko].sealed && same_shape(p, o, i) &&
                p->k[ko].opt == node_opt(p, i);
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
}

/* a reduction `op` of v over a batchnorm's axes (all but 1), not kept: beta's gradient
 * (a sum of dy), or the batch mean or unbiased variance of x its running statistics read */
static bool is_bn_reduce(const IrGraph *g, const IrNode *s, OpKind op, int v) {
  int rank = g->nodes[v].type.rank;
  if (s->op != op || s->in[0] != v || s->attr.keepdim || s->attr.naxes != rank - 1 ||
      s->type.dt != DT_F32 || rank < 2 || (op == OP_VAR && s->attr.correction != 1))
    return false;
  for (int a = 0, want = 0; a < s->attr.naxes; a++, want += want == 0 ? 2 : 1)
    if (s->attr.axes[a] != want) return false;
  return true;
}

/* a training batchnorm at i (CgTarget.bn_fused): the forward's kernel takes the mean and
 * variance of x for its running statistics, the backward's its bn_dgamma and beta's sum
 * over dy, when they are needed and in the same phase; the runtime computes them from the
 * statistics and sums the kernel forms anyway */
static void take_bn_siblings(CgPlan *p, int ki, int i, bool *absorbed) {
  const IrGraph *g = p->g;
  const IrNode *b = &g->nodes[i];
  bool fwd = b->op == OP_BATCHNORM;
  int v = b->in[0], x = fwd ? b->in[0] : b->in[1]; /* v: x, or dy */
  int got = 0; /* bit 0: the mean or bn_dgamma, bit 1: the variance or the sum */
  for (int j = i + 1; j < g->nnodes && got != 3; j++) {
    const IrNode *n = &g->nodes[j];
    if (!p->v[j].needed || absorbed[j] || p->kof[j] >= 0 || node_opt(p, j) != node_opt(p, i))
      continue;
    int bit = 0;
    if (fwd)
      bit = is_bn_reduce(g, n, OP_MEAN, v) ? 1 : is_bn_reduce(g, n, OP_VAR, v) ? 2 : 0;
    else if (n->op == OP_BN_DGAMMA && n->in[0] == v && n->in[1] == x &&
             n->attr.value == b->attr.value && n->type.dt == DT_F32)
      bit = 1;
    else if (is_bn_reduce(g, n, OP_SUM, v))
      bit = 2;
    if (!bit || (got & bit)) continue;
    got |= bit;
    add_member(p, ki, j);
    absorbed[j] = true;
  }
}

/* fusion, in node order (see the file comment) */
static void plan_fuse(CgPlan *p, const TilePlan *tiles, const bool *is_out, bool *absorbed) {
  const IrGraph *g = p->g;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (!p->v[i].needed || absorbed[i]) continue;
    if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_CONST) continue;
    if (memplan_is_view(n)) {
      materialize(p, n->in[0]);
      p->v[i].root = p->v[n->in[0]].root;
      continue;
    }
    if (is_ew(n)) {
      fuse_ew(p, i);
      continue;
    }
    for (int j = 0; j < n->nin; j++) materialize(p, n->in[j]);
    bool gemm = n->op == OP_MATMUL, conv = n->op == OP_CONV2D || n->op == OP_CONV2D_BWD_DATA ||
                                           n->op == OP_CONV2D_BWD_FILTER;
    int ki = new_kernel(p, gemm ? CGK_GEMM : conv ? CGK_CONV : CGK_NODE, i);
    add_member(p, ki, i);
    p->k[ki].sealed = true;
    if (gemm || n->op == OP_CONV2D) {
      take_epilogue(p, ki, i, is_out, absorbed);
      take_group(p, ki, i, tiles, is_out, absorbed);
    }
    if (p->target->bn_fused && n->type.dt == DT_F32 &&
        ((n->op == OP_BATCHNORM && n->attr.train) || n->op == OP_BATCHNORM_BWD))
      take_bn_siblings(p, ki, i, absorbed);
  }
}

/* ASSIGN placement: in place unless a later kernel reads the parameter */
static int plan_assign_placement(CgPlan *p, const CgBinding *bind, Diag *d) {
  const IrGraph *g = p->g;
  int nn = g->nnodes;
  for (int a = 0; a < nn; a++) {
    const IrNode *n = &g->nodes[a];
    if (n->op != OP_ASSIGN) continue;
    int P = n->in[0], ka = p->kof[a];
    if (g->nodes[P].op != OP_PARAM || !bind->region || bind->region[P] != RT_REGION_PARAMS) {
      diag_error(d, n->loc, "assign target %%%d is not a parameter", P);
      return -1;
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
  return 0;
}

/* a folded CONST's values in its dtype (f32 or i32, passes/fold.c) at the end of the table */
static void plan_const(CgPlan *p, int i) {
  const IrNode *n = &p->g->nodes[i];
  int64_t at = (p->consts_bytes + 63) / 64 * 64, numel = p->v[i].numel;
  p->consts = xrealloc(p->consts, (size_t)(at + p->v[i].nbytes + 64));
  memset(p->consts + p->consts_bytes, 0, (size_t)(at - p->consts_bytes));
  for (int64_t k = 0; k < numel; k++) {
    float f = (float)n->attr.data[k];
    int32_t q = (int32_t)n->attr.data[k];
    memcpy(p->consts + at + k * 4, n->type.dt == DT_I32 ? (void *)&q : (void *)&f, 4);
  }
  p->consts_bytes = at + p->v[i].nbytes;
  p->v[i].region = CG_REGION_CONST;
  p->v[i].offset = at;
  p->v[i].stored = true;
}

/* leaves where the binding puts them, folded constants in the plan's table; ASSIGNs in their
 * parameter, or in the arena */
static int plan_leaves(CgPlan *p, const CgBinding *bind, Diag *d) {
  const IrGraph *g = p->g;
  for (int i = 0; i < g->nnodes; i++) {
    OpKind op = g->nodes[i].op;
    if (op == OP_CONST && g->nodes[i].attr.data && p->v[i].needed) plan_const(p, i);
    if ((op == OP_PARAM || op == OP_INPUT) && bind->region[i] >= 0) {
      p->v[i].region = bind->region[i];
      p->v[i].offset = bind->offset[i];
      p->v[i].stored = true;
    } else if ((op == OP_PARAM || op == OP_INPUT) && p->v[i].needed) {
      diag_error(d, g->nodes[i].loc, "internal error: %s %%%d has no storage", ir_op_name(op), i);
      return -1;
    }
  }
  for (int a = 0; a < g->nnodes; a++) {
    if (g->nodes[a].op != OP_ASSIGN) continue;
    int P = g->nodes[a].in[0];
    p->v[a].stored = true;
    if (p->inplace[a]) {
      p->v[a].region = RT_REGION_PARAMS;
      p->v[a].offset = p->v[P].offset;
    }
  }
  return 0;
}

static void add_copy(CgPlan *p, int anchor, int src, int region, int64_t offset, int64_t bytes) {
  int ki = new_kernel(p, CGK_COPY, anchor);
  p->k[ki].opt = p->phased;
  p->k[ki].copy_src = src;
  p->k[ki].copy_dst_region = region;
  p->k[ki].copy_dst_offset = offset;
  p->k[ki].copy_bytes = bytes;
}

/* outputs: written straight into io when their producer can, else copied at the end; then
 * the deferred ASSIGNs' copies into their parameters */
static void plan_outputs(CgPlan *p, const CgBinding *bind) {
  const IrGraph *g = p->g;
  int nn = g->nnodes, ncopy = 0;
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
    add_copy(p, nn + ncopy++, o, RT_REGION_IO, bind->out_offset[j], p->v[o].nbytes);
  }
  for (int a = 0; a < nn; a++) {
    if (g->nodes[a].op != OP_ASSIGN || p->inplace[a]) continue;
    int P = g->nodes[a].in[0];
    add_copy(p, nn + ncopy++, a, RT_REGION_PARAMS, p->v[P].offset, p->v[P].nbytes);
  }
}

/* drop merged-away kernels, order by anchor, renumber */
static void plan_order(CgPlan *p) {
  int w = 0;
  for (int r = 0; r < p->nk; r++)
    if (!(p->k[r].kind == CGK_COPY && p->k[r].copy_src == -2)) p->k[w++] = p->k[r];
  p->nk = w;
  qsort(p->k, (size_t)p->nk, sizeof *p->k, cmp_anchor);
  for (int i = 0; i < p->g->nnodes; i++) p->kof[i] = -1;
  for (int ki = 0; ki < p->nk; ki++)
    for (int m = 0; m < p->k[ki].nmembers; m++) p->kof[p->k[ki].members[m]] = ki;
  for (p->split = 0; p->split < p->nk && !p->k[p->split].opt;) p->split++;
}

/* ---- a depthwise convolution fused into the pointwise one that reads it ----------------- */

/* the kernel of the depthwise convolution whose output is the image of pointwise kernel ki,
 * where the two can run as one (CgTarget.dw_fuse, CgKernel.dw): an f32 inference plan, the
 * pointwise convolution ungrouped and a GEMM an image with its image read in place and a strip
 * height from the tiles pass (TileDecision.dw_rows) or the target (dw_strip), the depthwise one computed directly in
 * blocks of rows (cg_dw_block) with a group that reads no tensor of its output's shape, and
 * its output read by nothing else (not an output); -1 otherwise. *rows: the strip, the tiles'
 * rounded down to whole blocks of the depthwise's rows (at least one), or the whole image */
static int dw_producer(CgPlan *p, int ki, const TilePlan *tiles, const bool *is_out, int *rows) {
  const IrGraph *g = p->g;
  CgKernel *k = &p->k[ki];
  if (!p->target->dw_fuse || !tiles || k->kind != CGK_CONV || k->node >= tiles->n ||
      !tiles->tiles[k->node].valid || !cg_plan_inference(p))
    return -1;
  const IrNode *n = &g->nodes[k->node];
  const TileDecision *t = &tiles->tiles[k->node];
  if (n->op != OP_CONV2D || n->type.dt != DT_F32 || t->gpu || !t->direct_b || t->conv_t ||
      t->conv_few)
    return -1;
  int want = p->target->dw_strip > 0 ? p->target->dw_strip : t->dw_rows;
  if (want <= 0) return -1;
  int x = n->in[0], di = p->kof[x];
  if (p->v[x].root != x || is_out[x] || di < 0 || di == ki || sole_reader(p, x, is_out) != k->node)
    return -1;
  CgKernel *d = &p->k[di];
  if (d->kind != CGK_CONV || d->out != x || d->dw || g->nodes[d->node].op != OP_CONV2D ||
      g->nodes[d->node].type.dt != DT_F32)
    return -1;
  k->tile = t; /* the geometry below reads it (a GEMM an image) */
  CgConv cw, cp;
  CgDwBlock b;
  cg_conv_geom(p, d->node, &cw);
  cg_conv_geom(p, k->node, &cp);
  if (!cw.depthwise || cw.wino || !cg_dw_block(&cw, p->target->vector_width, &b) || !cp.direct ||
      cp.batch || cp.trans || cp.few || cp.wino || cp.G != 1 || cp.N != cw.N)
    return -1;
  CgEpiOperand ops[CG_EPI_MAX_IN];
  int nops = cg_epi_operands(p, d, ops);
  for (int s = 0; s < nops; s++)
    if (ops[s].kind == CG_EPI_FULL) return -1;
  *rows = want >= cw.OH ? (int)cw.OH : want / b.R * b.R; /* whole blocks */
  if (*rows < b.R) *rows = b.R;
  return di;
}

/* every depthwise kernel dw_producer allows moves into its pointwise reader (CgKernel.dw);
 * then the kernels are ordered again */
static void plan_dw_fuse(CgPlan *p, const TilePlan *tiles, const bool *is_out) {
  int fused = 0;
  for (int ki = 0; ki < p->nk; ki++) {
    int rows = 0, di = dw_producer(p, ki, tiles, is_out, &rows);
    if (di < 0) continue;
    CgKernel *dw = xmalloc(sizeof *dw), *k = &p->k[ki];
    *dw = p->k[di];
    k->dw = dw;
    k->dw_first = k->nmembers;
    k->dw_rows = rows;
    for (int m = 0; m < dw->nmembers; m++) add_member(p, ki, dw->members[m]);
    CgKernel *s = &p->k[di]; /* dead: its members are dw's now */
    s->members = NULL;
    s->nmembers = s->cap = 0;
    s->kind = CGK_COPY;
    s->copy_src = -2;
    fused++;
  }
  if (fused) plan_order(p);
}

/* what is stored: values read outside their kernel (constants fold into elementwise
 * groups), kernel results of non-elementwise kernels; scratch and tiles per kernel */
static int plan_stored(CgPlan *p, const TilePlan *tiles, Diag *d) {
  const IrGraph *g = p->g;
  for (int c = 0; c < g->nnodes; c++) {
    const IrNode *n = &g->nodes[c];
    if (!p->v[c].needed) continue;
    int kc = p->kof[c];
    bool ew = kc >= 0 && (p->k[kc].kind == CGK_EW || cg_epi_member(&p->k[kc], c) ||
                          (p->k[kc].dw && cg_epi_member(p->k[kc].dw, c)));
    for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
      int r = p->v[n->in[j]].root;
      if (ew && ir_is_fill(&g->nodes[r])) continue;
      if (kc < 0 || p->kof[r] != kc) p->v[r].stored = true;
    }
  }
  bool inference = cg_plan_inference(p);
  for (int ki = 0; ki < p->nk; ki++) {
    CgKernel *k = &p->k[ki];
    if (k->kind == CGK_GEMM || k->kind == CGK_CONV || k->kind == CGK_NODE) p->v[k->out].stored = true;
    if ((k->kind == CGK_GEMM || k->kind == CGK_CONV) && tiles && k->node < tiles->n &&
        tiles->tiles[k->node].valid)
      k->tile = &tiles->tiles[k->node]; /* before the geometry: a transposed conv's scratch */
    k->wino = plan_wino(p, k);
    if (k->wino && g->nodes[k->node].op != OP_CONV2D_BWD_FILTER &&
        !cg_wino_packs_once(p, k, inference)) { /* the filter's panels every call */
      CgConv cv;
      cg_conv_geom(p, k->node, &cv);
      k->wino_step = true;
      k->packed_rpad = cg_pack_rpad_a(cv.O);
      k->packed_k = cv.C;
      k->packed_groups = 36;
    }
    if (k->kind == CGK_CONV && p->target->conv != CG_CONV_DIRECT) {
      CgConv cv;
      cg_conv_geom(p, k->node, &cv);
      k->scratch_bytes = cv.scratch;
      if (cv.scratch < 0 || cv.scratch > CG_MAX_BYTES) {
        diag_error(d, g->nodes[k->node].loc, "the im2col scratch of this convolution is too "
                   "large to plan");
        return -1;
      }
      if (k->bn) k->scratch_bytes += cv.O * 8; /* after the unfold or output: scale, shift */
      if (k->dw && k->dw->bn) { /* the fused depthwise's table last (plan_arena) */
        cg_conv_geom(p, k->dw->node, &cv);
        k->dw->scratch_bytes = cv.O * 8;
        k->scratch_bytes += k->dw->scratch_bytes;
      }
    }
  }
  for (int i = 0; i < g->nnodes; i++) p->v[i].kernel = p->kof[i];
  return 0;
}

/* first and last kernel of every stored arena value (-1: not in the arena) */
static int arena_lifetimes(const CgPlan *p, int *def, int *last, Diag *d) {
  const IrGraph *g = p->g;
  int nn = g->nnodes;
  for (int i = 0; i < nn; i++) def[i] = last[i] = -1;
  for (int i = 0; i < nn; i++)
    if (p->v[i].stored && p->v[i].region == CG_REGION_NONE && p->v[i].root == i) {
      if (p->kof[i] < 0) {
        diag_error(d, g->nodes[i].loc, "internal error: %%%d is stored but has no kernel", i);
        return -1;
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
  return 0;
}

/* one buffer per stored root and one per scratch, alive over [def, last] in kernel order;
 * memplan's best-fit places them (docs/memory.md) */
static int plan_arena(CgPlan *p, Diag *d) {
  int nn = p->g->nnodes;
  int *def = xcalloc((size_t)nn, sizeof(int)), *last = xcalloc((size_t)nn, sizeof(int));
  if (arena_lifetimes(p, def, last, d)) {
    free(def);
    free(last);
    return -1;
  }
  MpBuf *bufs = xcalloc((size_t)nn + (size_t)p->nk, sizeof(MpBuf));
  int *who = xcalloc((size_t)nn + (size_t)p->nk, sizeof(int)); /* node, or -1 - kernel */
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
      CgKernel *k = &p->k[-1 - who[q]];
      k->scratch_offset = bufs[q].offset;
      if (k->dw) k->dw->scratch_offset = k->scratch_offset + k->scratch_bytes - k->dw->scratch_bytes;
    }
  }
  free(bufs);
  free(who);
  free(def);
  free(last);
  return 0;
}

/* aliases share their root's storage */
static void plan_aliases(CgPlan *p) {
  for (int i = 0; i < p->g->nnodes; i++)
    if (p->v[i].root != i) {
      p->v[i].region = p->v[p->v[i].root].region;
      p->v[i].offset = p->v[p->v[i].root].offset;
      p->v[i].stored = p->v[p->v[i].root].stored;
    }
}

int cg_plan(CgPlan *p, const IrGraph *g, const CgTarget *t, const TilePlan *tiles,
            const CgBinding *bind, Diag *d) {
  memset(p, 0, sizeof *p);
  p->g = g;
  p->target = t;
  size_t nn = (size_t)g->nnodes;
  p->v = xcalloc(nn, sizeof(CgVal));
  p->kof = xcalloc(nn, sizeof(int));
  p->inplace = xcalloc(nn, sizeof(bool));
  bool *is_out = xcalloc(nn, sizeof(bool)), *absorbed = xcalloc(nn, sizeof(bool));
  int rc = -1;
  if (plan_values(p, d)) goto out;
  plan_needed(p, bind, is_out);
  plan_phases(p);
  if (plan_check_target(p, d)) goto out;
  plan_fuse(p, tiles, is_out, absorbed);
  if (plan_assign_placement(p, bind, d) || plan_leaves(p, bind, d)) goto out;
  plan_outputs(p, bind);
  plan_order(p);
  plan_dw_fuse(p, tiles, is_out);
  if (plan_stored(p, tiles, d) || plan_arena(p, d)) goto out;
  plan_aliases(p);
  rc = 0;
out:
  free(is_out);
  free(absorbed);
  if (rc) cg_plan_free(p);
  return rc;
}

void cg_plan_free(CgPlan *p) {
  for (int i = 0; i < p->nk; i++) {
    free(p->k[i].members);
    if (p->k[i].dw) free(p->k[i].dw->members);
    free(p->k[i].dw);
  }
  free(p->k);
  free(p->v);
  free(p->kof);
  free(p->inplace);
  free(p->consts);
  memset(p, 0, sizeof *p);
}

/* the training batchnorm whose running statistic (its in[3] or in[4]) ASSIGN a updates, or -1 */
static int sync_running_bn(const IrGraph *g, const IrNode *a) {
  for (int b = 0; b < g->nnodes; b++) {
    const IrNode *n = &g->nodes[b];
    if (n->op == OP_BATCHNORM && n->attr.train && (n->in[3] == a->in[0] || n->in[4] == a->in[0]))
      return b;
  }
  return -1;
}

/* the MEAN (running mean) or VAR (running var) over the batch of bn that the update of ASSIGN
 * a reads (passes/train.c: r = r * (1 - m) + stat * m), reducing every axis but 1, or -1 */
static int sync_running_stat(const IrGraph *g, const IrNode *a, const IrNode *bn) {
  OpKind want = a->in[0] == bn->in[3] ? OP_MEAN : OP_VAR;
  const IrNode *add = &g->nodes[a->in[1]];
  if (add->op != OP_ADD) return -1;
  for (int j = 0; j < 2; j++) {
    const IrNode *mul = &g->nodes[add->in[j]];
    for (int i = 0; mul->op == OP_MUL && i < 2; i++) {
      const IrNode *s = &g->nodes[mul->in[i]];
      int rank = g->nodes[bn->in[0]].type.rank;
      bool ok = rank >= 2 && s->op == want && s->in[0] == bn->in[0] && !s->attr.keepdim &&
                s->attr.naxes == rank - 1;
      for (int x = 0; ok && x < s->attr.naxes; x++)
        ok = (s->attr.axes[x] < 0 ? s->attr.axes[x] + rank : s->attr.axes[x]) != 1;
      if (ok) return mul->in[i];
    }
  }
  return -1;
}

/* marks the kernel of the running statistic that ASSIGN a updates, if a training batchnorm's */
static int sync_running(CgPlan *p, const IrNode *a) {
  int bn = sync_running_bn(p->g, a);
  int s = bn < 0 ? -1 : sync_running_stat(p->g, a, &p->g->nodes[bn]);
  int ki = s < 0 ? -1 : p->kof[s];
  if (ki < 0 || ki >= p->split || p->k[ki].kind != CGK_NODE || p->k[ki].node != s) return 0;
  p->k[ki].sync_stats = true;
  return 1;
}

int cg_plan_sync_stats(CgPlan *p) {
  int n = 0;
  for (int ki = 0; ki < p->split; ki++) {
    CgKernel *k = &p->k[ki];
    if (k->kind != CGK_NODE) continue;
    const IrNode *nd = &p->g->nodes[k->node];
    k->sync_stats = (nd->op == OP_BATCHNORM && nd->attr.train) || nd->op == OP_BATCHNORM_BWD ||
                    nd->op == OP_BN_DGAMMA;
    n += k->sync_stats;
  }
  for (int i = 0; n > 0 && i < p->g->nnodes; i++)
    if (p->g->nodes[i].op == OP_ASSIGN) n += sync_running(p, &p->g->nodes[i]);
  return n;
}
