/* model_plan.c — a model's tensor table (the descriptor's rows and their region offsets),
 * the bindings of its forward and training-step graphs to that table, and the kernel plans of
 * both (plan.h). Backend-neutral: a backend lowers the plans and writes the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

/* ---- the tensor table ----------------------------------------------------------------- */

static int64_t align64(int64_t x) { return (x + 63) / 64 * 64; }

/* a row for node of g, placed at the top of its region (params for state, else io) */
static CgTensor *table_add(CgModelPlan *P, const IrGraph *g, int node, const char *name, int kind) {
  if (P->nt == P->capt) {
    P->capt = P->capt ? 2 * P->capt : 32;
    P->t = xrealloc(P->t, (size_t)P->capt * sizeof *P->t);
  }
  CgTensor *t = &P->t[P->nt++];
  memset(t, 0, sizeof *t);
  t->fwd_node = t->train_node = -1;
  const IrNode *n = &g->nodes[node];
  t->info.name = name;
  t->info.kind = kind;
  t->info.dtype = n->type.dt;
  int64_t shape[IR_MAX_RANK];
  t->info.rank = cg_shape(g, node, shape);
  int64_t numel = 1;
  bool big = false;
  for (int k = 0; k < t->info.rank; k++) {
    t->info.shape[k] = shape[k];
    big |= shape[k] < 0 || __builtin_mul_overflow(numel, shape[k], &numel);
  }
  big |= __builtin_mul_overflow(numel, (int64_t)dt_size(n->type.dt), &t->info.nbytes);
  bool state = kind <= RT_KIND_OPTSTATE;
  if (state) {
    t->info.init = n->attr.init;
    t->info.init_a = n->attr.init_a;
    t->info.init_b = n->attr.init_b;
  }
  int64_t *top = state ? &P->params_bytes : &P->io_bytes;
  t->info.offset = *top;
  if (big || t->info.nbytes > CG_MAX_BYTES || *top > CG_MAX_BYTES) {
    if (!P->too_large) P->too_large_at = n->loc;
    P->too_large = true;
    t->info.nbytes = 0;
  }
  *top = align64(*top + t->info.nbytes);
  return t;
}

/* a row named after node i of g (its name, or %i) */
static CgTensor *table_add_node(CgModelPlan *P, const IrGraph *g, int i, int kind) {
  char buf[32];
  const char *name = g->nodes[i].name;
  if (!name) snprintf(buf, sizeof buf, "%%%d", i), name = buf;
  P->names[P->nnames] = xstrdup(name);
  return table_add(P, g, i, P->names[P->nnames++], kind);
}

static int find_output(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].node;
  return -1;
}

/* The training graph's node for forward leaf i: the same index unless a pass (remat's
 * schedule) reordered the step; then found by op and name (leaf names are unique). */
static int train_leaf(const IrGraph *fwd, const IrGraph *train, int i) {
  const IrNode *f = &fwd->nodes[i];
  if (i < train->nnodes && train->nodes[i].op == f->op && train->nodes[i].name && f->name &&
      !strcmp(train->nodes[i].name, f->name))
    return i;
  for (int j = 0; j < train->nnodes; j++)
    if (train->nodes[j].op == f->op && train->nodes[j].name && f->name &&
        !strcmp(train->nodes[j].name, f->name))
      return j;
  return -1;
}

/* a PARAM of the training graph that the forward graph does not have: optimizer state */
static bool is_opt_state(const IrGraph *fwd, const IrGraph *train, int j) {
  const IrNode *t = &train->nodes[j];
  if (t->op != OP_PARAM) return false;
  for (int i = 0; i < fwd->nnodes; i++)
    if (fwd->nodes[i].op == OP_PARAM && fwd->nodes[i].name && t->name && !strcmp(fwd->nodes[i].name, t->name))
      return false;
  return true;
}

/* weights, then buffers, optimizer state, inputs */
static void table_leaves(CgModelPlan *P, const IrGraph *fwd, const IrGraph *train) {
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < fwd->nnodes; i++) {
      const IrNode *n = &fwd->nodes[i];
      if (n->op != OP_PARAM || n->attr.trainable != (pass == 0)) continue;
      CgTensor *t = table_add_node(P, fwd, i, pass == 0 ? RT_KIND_PARAM : RT_KIND_BUFFER);
      t->fwd_node = i;
      t->train_node = train ? train_leaf(fwd, train, i) : -1;
    }
  if (train)
    for (int i = 0; i < train->nnodes; i++) {
      if (!is_opt_state(fwd, train, i)) continue;
      table_add_node(P, train, i, RT_KIND_OPTSTATE)->train_node = i;
    }
  for (int i = 0; i < fwd->nnodes; i++) {
    if (fwd->nodes[i].op != OP_INPUT) continue;
    CgTensor *t = table_add_node(P, fwd, i, RT_KIND_INPUT);
    bool label; /* the range the runtime checks indices against */
    t->info.index_bound = ir_index_bound(fwd, i, &label);
    t->info.index_kind = t->info.index_bound ? label ? RT_INDEX_LABEL : RT_INDEX_EMBEDDING : 0;
    t->fwd_node = i;
    t->train_node = train ? train_leaf(fwd, train, i) : -1;
  }
}

static int table_size_ok(const CgModelPlan *P, Diag *d) {
  if (!P->too_large) return 0;
  diag_error(d, P->too_large_at, "the model's tensors are too large to plan: the weights or "
             "the inputs and outputs exceed 2^61 bytes");
  return -1;
}

/* the whole table: leaves, the forward outputs, the loss */
static int build_table(CgModelPlan *P, const IrGraph *fwd, const IrGraph *train, Diag *d) {
  P->names = xcalloc((size_t)fwd->nnodes + (size_t)(train ? train->nnodes : 0) + 4, sizeof(char *));
  table_leaves(P, fwd, train);
  for (int j = 0; j < fwd->noutputs; j++) {
    CgTensor *t = table_add(P, fwd, fwd->outputs[j].node, fwd->outputs[j].name, RT_KIND_OUTPUT);
    t->fwd_node = fwd->outputs[j].node;
    t->train_node = train ? find_output(train, fwd->outputs[j].name) : -1;
  }
  if (!train) return table_size_ok(P, d);
  int loss = find_output(train, "loss");
  if (loss < 0) {
    diag_error(d, train->loc, "the training graph of '%s' has no output 'loss'", fwd->name);
    return -1;
  }
  CgTensor *t = table_add(P, train, loss, "loss", RT_KIND_LOSS);
  t->train_node = loss;
  if (t->info.dtype != DT_F32 || t->info.nbytes != 4) {
    diag_error(d, train->nodes[loss].loc, "the loss must be an f32 scalar");
    return -1;
  }
  return table_size_ok(P, d);
}

/* where the table puts g's leaves and outputs */
static void binding_for(const CgModelPlan *P, const IrGraph *g, bool train, CgBinding *b) {
  memset(b, 0, sizeof *b);
  b->region = xmalloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof(int));
  b->offset = xcalloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(int64_t));
  b->out_node = xmalloc((size_t)(P->nt + 1) * sizeof(int));
  b->out_offset = xmalloc((size_t)(P->nt + 1) * sizeof(int64_t));
  for (int i = 0; i < g->nnodes; i++) b->region[i] = -1;
  for (int j = 0; j < P->nt; j++) {
    const CgTensor *t = &P->t[j];
    int node = train ? t->train_node : t->fwd_node;
    if (node < 0) continue;
    int kind = t->info.kind;
    if (kind <= RT_KIND_OPTSTATE) {
      b->region[node] = RT_REGION_PARAMS;
      b->offset[node] = t->info.offset;
    } else if (kind == RT_KIND_INPUT) {
      b->region[node] = RT_REGION_IO;
      b->offset[node] = t->info.offset;
    } else {
      b->out_node[b->nout] = node;
      b->out_offset[b->nout++] = t->info.offset;
    }
  }
}

static void binding_free(CgBinding *b) {
  free(b->region);
  free(b->offset);
  free(b->out_node);
  free(b->out_offset);
}

/* ---- the gradients at the split ---------------------------------------------------------- */

/* the gradient of table row ti: its arena storage, or a constant (*cnst); false otherwise */
static bool grad_of(const CgModelPlan *P, const IrGraph *train, int ti, CgGrad *out, bool *cnst) {
  char name[512];
  snprintf(name, sizeof name, "%s.grad", P->t[ti].info.name);
  int node = find_output(train, name);
  *cnst = false;
  if (node < 0) return false;
  const CgVal *v = &P->pt.v[node];
  *cnst = train->nodes[v->root].op == OP_CONST && v->region != CG_REGION_ARENA;
  if (*cnst) return true;
  *out = (CgGrad){ti, v->offset, v->numel, -1};
  return v->stored && v->region == CG_REGION_ARENA && train->nodes[node].type.dt == DT_F32;
}

/* arena bytes [off, off + n) and value i's storage overlap */
static bool arena_overlaps(const CgPlan *p, int i, int64_t off, int64_t n) {
  const CgVal *v = &p->v[i];
  return v->region == CG_REGION_ARENA && v->offset < off + n && off < v->offset + v->nbytes;
}

/* the last kernel before the split that writes or reads the arena bytes of gradient gr:
 * after it, the gradient is final and nothing before the optimizer touches it */
static int grad_ready(const CgPlan *p, const CgGrad *gr) {
  int64_t n = gr->numel * (int64_t)sizeof(float);
  int last = 0;
  int *roots = NULL;
  for (int ki = 0; ki < p->split; ki++) {
    const CgKernel *k = &p->k[ki];
    bool hit = false;
    for (int m = 0; m < k->nmembers && !hit; m++)
      hit = p->v[k->members[m]].stored && arena_overlaps(p, k->members[m], gr->offset, n);
    roots = xrealloc(roots, ((size_t)k->nmembers * IR_MAX_IN + 1) * sizeof *roots);
    int nr = hit ? 0 : cg_kernel_reads(p, ki, roots);
    for (int r = 0; r < nr && !hit; r++) hit = arena_overlaps(p, roots[r], gr->offset, n);
    if (hit) last = ki;
  }
  free(roots);
  return last;
}

/* every trainable parameter's gradient, each buffer once (an alias shares its root's) */
static void plan_grads(CgModelPlan *P, const IrGraph *train) {
  P->split_ok = P->pt.phased && P->pt.split < P->pt.nk;
  P->grads = xmalloc((size_t)(P->nt + 1) * sizeof *P->grads);
  for (int ti = 0; ti < P->nt && P->split_ok; ti++) {
    if (P->t[ti].info.kind != RT_KIND_PARAM || P->t[ti].train_node < 0) continue;
    CgGrad gr;
    bool cnst, seen = false;
    if (!grad_of(P, train, ti, &gr, &cnst)) {
      P->split_ok = false;
      break;
    }
    for (int k = 0; k < P->ngrads && !cnst; k++) seen |= P->grads[k].offset == gr.offset;
    if (!cnst && !seen) P->grads[P->ngrads++] = gr;
  }
  if (!P->split_ok) P->ngrads = 0;
  for (int k = 0; k < P->ngrads; k++) P->grads[k].ready = grad_ready(&P->pt, &P->grads[k]);
}

/* ---- the model plan -------------------------------------------------------------------- */

void cg_model_plan_free(CgModelPlan *P) {
  free(P->grads);
  if (P->have_pf) cg_plan_free(&P->pf);
  if (P->have_pt) cg_plan_free(&P->pt);
  binding_free(&P->bf);
  binding_free(&P->bt);
  for (int i = 0; i < P->nnames; i++) free(P->names[i]);
  free(P->names);
  free(P->t);
  arena_free(P->tiles_arena);
  memset(P, 0, sizeof *P);
}

/* the given decisions, or the tiles pass's for the target's hardware, or none */
static const TilePlan *tiles_for(CgModelPlan *P, const IrGraph *g, const CgTarget *t,
                                 const TilePlan *given) {
  if (given || !t->hw) return given;
  if (!P->tiles_arena) P->tiles_arena = arena_new();
  return pass_tiles((IrGraph *)g, t->hw, P->tiles_arena);
}

int cg_model_plan(CgModelPlan *P, const IrGraph *fwd, const IrGraph *train, const CgTarget *t,
                  const TilePlan *tiles_fwd, const TilePlan *tiles_train, Diag *d) {
  memset(P, 0, sizeof *P);
  if (build_table(P, fwd, train, d)) return -1;
  binding_for(P, fwd, false, &P->bf);
  if (cg_plan(&P->pf, fwd, t, tiles_for(P, fwd, t, tiles_fwd), &P->bf, d)) return -1;
  P->have_pf = true;
  if (cg_plan_prepack(&P->pf) < 0) {
    diag_error(d, fwd->loc, "the packed weights of '%s' exceed 2^61 bytes", fwd->name);
    return -1;
  }
  if (!train) return 0;
  binding_for(P, train, true, &P->bt);
  if (cg_plan(&P->pt, train, t, tiles_for(P, train, t, tiles_train), &P->bt, d)) return -1;
  P->have_pt = true;
  plan_grads(P, train);
  return 0;
}

void cg_model_figures(const CgModelPlan *P, int64_t pack_forward, int64_t pack_train,
                      RtMemFigures *f) {
  RtTensorInfo *t = malloc((size_t)(P->nt + 1) * sizeof *t);
  if (!t) abort();
  RtModelDesc d = {.ntensors = P->nt, .tensors = t, .params_bytes = P->params_bytes,
                   .io_bytes = P->io_bytes, .arena_bytes_forward = P->pf.arena_bytes,
                   .batch = 1, .thread_bytes_forward = pack_forward};
  for (int i = 0; i < P->nt; i++) t[i] = P->t[i].info;
  for (int i = 0; i < P->nt; i++)
    if (t[i].kind == RT_KIND_INPUT && t[i].rank > 0) {
      d.batch = t[i].shape[0];
      break;
    }
  rt_mem_figures(&d, f);
  if (P->have_pt) { /* rt_mem_figures reads the training figures of a trainable model only */
    f->arena_train = P->pt.arena_bytes;
    f->thread_train = pack_train;
  }
  free(t);
}

int cg_model_memory(const IrGraph *fwd, const IrGraph *train, const CgTarget *t, CgMemory *out,
                    Diag *d) {
  CgTarget nohw = *t; /* sizes do not depend on tiles */
  nohw.hw = NULL;
  CgModelPlan P;
  memset(out, 0, sizeof *out);
  int rc = cg_model_plan(&P, fwd, train, &nohw, NULL, NULL, d);
  if (!rc) {
    out->params_bytes = P.params_bytes;
    out->io_bytes = P.io_bytes;
    out->arena_bytes_forward = P.pf.arena_bytes;
    out->packed_bytes = P.pf.packed_bytes;
    out->arena_bytes_train = P.have_pt ? P.pt.arena_bytes : 0;
    cg_model_figures(&P, 0, 0, &out->fig);
  }
  cg_model_plan_free(&P);
  return rc;
}
