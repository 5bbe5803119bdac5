/* llvm_model.c — the LLVM CPU backend's model emitter (codegen.h): descriptor layout,
 * kernel plans for the forward and training-step graphs (lower.c), kernels (llvm_ops.c),
 * entry functions, the `nnc_model_<NAME>` descriptor as a constant with the C layout of
 * RtModelDesc, verification and the new pass manager, and object/IR/assembly/JIT output.
 *
 * The tensor table is derived from the graphs alone: parameters and buffers are the forward
 * graph's PARAM nodes (trainable or not), optimizer state the PARAM nodes that only the
 * training-step graph has (it is a clone of the forward graph, so shared nodes keep their
 * indices), inputs the forward INPUT nodes, outputs the forward outputs, and the loss the
 * training graph's output "loss".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/TargetMachine.h>

#include "../passes/cost.h"
#include "../runtime/rt_kernels.h"
#include "codegen.h"
#include "llvm_emit.h"

struct CgModel {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LlvmTarget target;
  char *cpu, *features;
  char name[128];
  LlvmJit *jit;
  int64_t train_bytes; /* params + io + training arena */
};

int64_t llvm_model_train_bytes(const CgModel *m) { return m->train_bytes; }

static void seterr(char *err, size_t n, const char *fmt, ...) {
  if (!err || !n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
}

/* ---- the tensor table ----------------------------------------------------------------- */

typedef struct Tensor {
  RtTensorInfo info;
  int fwd_node, train_node; /* -1 where the graph has no such node */
} Tensor;

typedef struct Layout {
  Tensor *t;
  int n, cap;
  int64_t params_bytes, io_bytes;
} Layout;

static int64_t align64(int64_t x) { return (x + 63) / 64 * 64; }

static Tensor *layout_add(Layout *L, const IrGraph *g, int node, const char *name, int kind) {
  if (L->n == L->cap) {
    L->cap = L->cap ? 2 * L->cap : 32;
    L->t = realloc(L->t, (size_t)L->cap * sizeof *L->t);
    if (!L->t) abort();
  }
  Tensor *t = &L->t[L->n++];
  memset(t, 0, sizeof *t);
  t->fwd_node = t->train_node = -1;
  const IrNode *n = &g->nodes[node];
  t->info.name = name;
  t->info.kind = kind;
  t->info.dtype = n->type.dt;
  int64_t shape[IR_MAX_RANK];
  t->info.rank = cg_shape(g, node, shape);
  int64_t numel = 1;
  for (int k = 0; k < t->info.rank; k++) numel *= t->info.shape[k] = shape[k];
  t->info.nbytes = numel * (int64_t)dt_size(n->type.dt);
  bool state = kind <= RT_KIND_OPTSTATE;
  if (state) {
    t->info.init = n->attr.init;
    t->info.init_a = n->attr.init_a;
    t->info.init_b = n->attr.init_b;
  }
  int64_t *top = state ? &L->params_bytes : &L->io_bytes;
  t->info.offset = *top;
  *top = align64(*top + t->info.nbytes);
  return t;
}

static const char *node_name(const IrGraph *g, int i, char *buf, size_t n) {
  if (g->nodes[i].name) return g->nodes[i].name;
  snprintf(buf, n, "%%%d", i);
  return buf;
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

/* names live in the module as constants; the table only needs them while emitting */
static int build_layout(Layout *L, const IrGraph *fwd, const IrGraph *train, Diag *d,
                        char ***names_out, int *nnames) {
  memset(L, 0, sizeof *L);
  char **names = calloc((size_t)(fwd->nnodes + (train ? train->nnodes : 0) + 4), sizeof(char *));
  int nn = 0;
  char buf[32];
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < fwd->nnodes; i++) {
      const IrNode *n = &fwd->nodes[i];
      if (n->op != OP_PARAM || n->attr.trainable != (pass == 0)) continue;
      names[nn] = strdup(node_name(fwd, i, buf, sizeof buf));
      Tensor *t = layout_add(L, fwd, i, names[nn++], pass == 0 ? RT_KIND_PARAM : RT_KIND_BUFFER);
      t->fwd_node = i;
      t->train_node = train ? train_leaf(fwd, train, i) : -1;
    }
  if (train)
    for (int i = 0; i < train->nnodes; i++) {
      if (!is_opt_state(fwd, train, i)) continue;
      names[nn] = strdup(node_name(train, i, buf, sizeof buf));
      Tensor *t = layout_add(L, train, i, names[nn++], RT_KIND_OPTSTATE);
      t->train_node = i;
    }
  for (int i = 0; i < fwd->nnodes; i++) {
    if (fwd->nodes[i].op != OP_INPUT) continue;
    names[nn] = strdup(node_name(fwd, i, buf, sizeof buf));
    Tensor *t = layout_add(L, fwd, i, names[nn++], RT_KIND_INPUT);
    bool label;
    t->info.index_bound = ir_index_bound(fwd, i, &label);
    t->info.index_kind = t->info.index_bound ? label ? RT_INDEX_LABEL : RT_INDEX_EMBEDDING : 0;
    t->fwd_node = i;
    t->train_node = train ? train_leaf(fwd, train, i) : -1;
  }
  for (int j = 0; j < fwd->noutputs; j++) {
    Tensor *t = layout_add(L, fwd, fwd->outputs[j].node, fwd->outputs[j].name, RT_KIND_OUTPUT);
    t->fwd_node = fwd->outputs[j].node;
    t->train_node = train ? find_output(train, fwd->outputs[j].name) : -1;
  }
  if (train) {
    int loss = find_output(train, "loss");
    if (loss < 0) {
      diag_error(d, train->loc, "the training graph of '%s' has no output 'loss'", fwd->name);
      *names_out = names;
      *nnames = nn;
      return -1;
    }
    Tensor *t = layout_add(L, train, loss, "loss", RT_KIND_LOSS);
    t->train_node = loss;
    if (t->info.dtype != DT_F32 || t->info.nbytes != 4) {
      diag_error(d, train->nodes[loss].loc, "the loss must be an f32 scalar");
      *names_out = names;
      *nnames = nn;
      return -1;
    }
  }
  *names_out = names;
  *nnames = nn;
  return 0;
}

static void binding_for(const Layout *L, const IrGraph *g, bool train, CgBinding *b) {
  memset(b, 0, sizeof *b);
  b->region = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof(int));
  b->offset = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(int64_t));
  b->out_node = malloc((size_t)(L->n + 1) * sizeof(int));
  b->out_offset = malloc((size_t)(L->n + 1) * sizeof(int64_t));
  for (int i = 0; i < g->nnodes; i++) b->region[i] = -1;
  for (int j = 0; j < L->n; j++) {
    const Tensor *t = &L->t[j];
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

/* ---- emission ------------------------------------------------------------------------- */

static void emit_types(CgEmit *e) {
  e->i1 = LLVMInt1TypeInContext(e->ctx);
  e->i8 = LLVMInt8TypeInContext(e->ctx);
  e->i32 = LLVMInt32TypeInContext(e->ctx);
  e->i64 = LLVMInt64TypeInContext(e->ctx);
  e->f32 = LLVMFloatTypeInContext(e->ctx);
  e->f64 = LLVMDoubleTypeInContext(e->ctx);
  e->ptr = LLVMPointerTypeInContext(e->ctx, 0);
  e->vd = LLVMVoidTypeInContext(e->ctx);
  e->vf = LLVMVectorType(e->f32, (unsigned)e->vl);
  LLVMTypeRef ps[6] = {e->ptr, e->ptr, e->ptr, e->ptr, e->i64, e->i64};
  e->kfn_ty = LLVMFunctionType(e->vd, ps, 6, 0);
}

static void add_fn_attr(CgEmit *e, LLVMValueRef f, const char *attr) {
  unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->ctx, kind, 0));
}

/* one entry function `<prefix>` that runs every kernel of the plan */
static LLVMValueRef emit_plan(CgEmit *e, const CgPlan *p, const char *prefix, const char *entry_name) {
  e->p = p;
  e->prefix = prefix;
  LLVMValueRef *kfns = malloc((size_t)(p->nk ? p->nk : 1) * sizeof *kfns);
  for (int ki = 0; ki < p->nk; ki++) {
    char nm[160];
    snprintf(nm, sizeof nm, "%s_k%d", prefix, ki);
    LLVMValueRef f = LLVMAddFunction(e->mod, nm, e->kfn_ty);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    llvm_function_set_target(f, e->ti);
    add_fn_attr(e, f, "nounwind");
    add_fn_attr(e, f, "noinline");
    e->fn = f;
    e->kidx = ki;
    e->params = LLVMGetParam(f, 0);
    e->io = LLVMGetParam(f, 1);
    e->arena = LLVMGetParam(f, 2);
    e->pool = LLVMGetParam(f, 3);
    e->step = LLVMGetParam(f, 4);
    e->seed = LLVMGetParam(f, 5);
    LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, f, "entry"));
    if (llvm_lower_kernel(e, &p->k[ki]) != 0) {
      free(kfns);
      return NULL;
    }
    LLVMBuildRetVoid(e->b);
    kfns[ki] = f;
  }
  LLVMTypeRef pt = e->ptr;
  LLVMValueRef f = LLVMAddFunction(e->mod, entry_name, LLVMFunctionType(e->vd, &pt, 1, 0));
  llvm_function_set_target(f, e->ti);
  add_fn_attr(e, f, "nounwind");
  LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, f, "entry"));
  LLVMTypeRef bf[6] = {e->ptr, e->ptr, e->ptr, e->ptr, e->i64, e->i64};
  LLVMTypeRef bt = LLVMStructTypeInContext(e->ctx, bf, 6, 0);
  LLVMValueRef bufs = LLVMGetParam(f, 0), args[6];
  for (unsigned i = 0; i < 6; i++)
    args[i] = LLVMBuildLoad2(e->b, bf[i], LLVMBuildStructGEP2(e->b, bt, bufs, i, ""), "");
  for (int ki = 0; ki < p->nk; ki++) LLVMBuildCall2(e->b, e->kfn_ty, kfns[ki], args, 6, "");
  LLVMBuildRetVoid(e->b);
  free(kfns);
  return f;
}

static LLVMValueRef cstr(CgEmit *e, const char *s) {
  size_t n = strlen(s);
  LLVMValueRef init = LLVMConstStringInContext(e->ctx, s, (unsigned)n, 0);
  char nm[64];
  snprintf(nm, sizeof nm, ".str%d", e->nglobals++);
  LLVMValueRef g = LLVMAddGlobal(e->mod, LLVMTypeOf(init), nm);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

static void emit_descriptor(CgEmit *e, const char *name, const Layout *L, LLVMValueRef fwd_fn,
                            LLVMValueRef train_fn, const RtModelDesc *meta) {
  LLVMTypeRef tf[12] = {e->ptr, e->i32, e->i32, e->i32, e->i32, LLVMArrayType2(e->i64, 8),
                        e->i64, e->i64, e->f64, e->f64, e->i64, e->i32};
  LLVMTypeRef tt = LLVMStructTypeInContext(e->ctx, tf, 12, 0);
  LLVMValueRef *rows = malloc((size_t)(L->n ? L->n : 1) * sizeof *rows);
  for (int i = 0; i < L->n; i++) {
    const RtTensorInfo *t = &L->t[i].info;
    LLVMValueRef sh[8];
    for (int k = 0; k < 8; k++) sh[k] = cg_c64(e, k < t->rank ? t->shape[k] : 0);
    LLVMValueRef v[12] = {cstr(e, t->name), LLVMConstInt(e->i32, (unsigned)t->kind, 0),
                          LLVMConstInt(e->i32, (unsigned)t->dtype, 0), LLVMConstInt(e->i32, (unsigned)t->rank, 0),
                          LLVMConstInt(e->i32, (unsigned)t->init, 0), LLVMConstArray2(e->i64, sh, 8),
                          cg_c64(e, t->offset), cg_c64(e, t->nbytes), LLVMConstReal(e->f64, t->init_a),
                          LLVMConstReal(e->f64, t->init_b), cg_c64(e, t->index_bound),
                          LLVMConstInt(e->i32, (unsigned)t->index_kind, 0)};
    rows[i] = LLVMConstNamedStruct(tt, v, 12);
  }
  LLVMValueRef tab = LLVMAddGlobal(e->mod, LLVMArrayType2(tt, (uint64_t)L->n), "nnc.tensors");
  LLVMSetInitializer(tab, LLVMConstArray2(tt, rows, (uint64_t)L->n));
  LLVMSetGlobalConstant(tab, 1);
  LLVMSetLinkage(tab, LLVMPrivateLinkage);
  free(rows);
  LLVMTypeRef df[17] = {e->i32, e->i32, e->ptr, e->ptr, e->i64, e->i64, e->i64, e->i64, e->i64,
                        e->ptr, e->ptr, e->ptr, e->ptr, e->f64, e->f64, e->f64, e->f64};
  LLVMTypeRef dt = LLVMStructTypeInContext(e->ctx, df, 17, 0);
  LLVMValueRef null = LLVMConstPointerNull(e->ptr);
  LLVMValueRef v[17] = {LLVMConstInt(e->i32, RT_MODEL_ABI, 0), LLVMConstInt(e->i32, (unsigned)L->n, 0),
                        cstr(e, meta->name), tab, cg_c64(e, meta->params_bytes), cg_c64(e, meta->io_bytes),
                        cg_c64(e, meta->arena_bytes_forward), cg_c64(e, meta->arena_bytes_train),
                        cg_c64(e, meta->batch), fwd_fn, train_fn ? train_fn : null,
                        cstr(e, meta->optimizer), cstr(e, meta->dims),
                        LLVMConstReal(e->f64, meta->forward_flops), LLVMConstReal(e->f64, meta->train_flops),
                        LLVMConstReal(e->f64, meta->est_forward_s), LLVMConstReal(e->f64, meta->est_train_s)};
  char gname[160];
  snprintf(gname, sizeof gname, "nnc_model_%s", name);
  LLVMValueRef g = LLVMAddGlobal(e->mod, dt, gname);
  LLVMSetInitializer(g, LLVMConstNamedStruct(dt, v, 17));
  LLVMSetGlobalConstant(g, 1);
}

static void optimizer_str(const IrTrain *t, char *buf, size_t n) {
  buf[0] = 0;
  if (!t) return;
  switch (t->opt) {
  case OPT_SGD:
    snprintf(buf, n, "sgd(lr=%g, momentum=%g, weight_decay=%g%s)", t->lr, t->momentum,
             t->weight_decay, t->nesterov ? ", nesterov" : "");
    break;
  case OPT_ADAM:
  case OPT_ADAMW:
    snprintf(buf, n, "%s(lr=%g, beta1=%g, beta2=%g, eps=%g, weight_decay=%g)",
             t->opt == OPT_ADAM ? "adam" : "adamw", t->lr, t->beta1, t->beta2, t->eps, t->weight_decay);
    break;
  default: break;
  }
}

static void cost_of(const IrGraph *g, const HwTarget *hw, double *flops, double *secs) {
  *flops = *secs = 0;
  Arena *a = arena_new();
  CostResult *r = cost_analyze((IrGraph *)g, a);
  if (r) {
    *flops = dim_evalf(g->dims, r->total.flops, NULL);
    if (hw) {
      cost_roofline(r, hw);
      *secs = r->total.time;
    }
  }
  arena_free(a);
}

/* the tensor table, the bindings and the kernel plans of both graphs: what the emitter
 * lowers, and what llvm_model_memory measures without LLVM */
typedef struct ModelPlan {
  Layout L;
  char **names;
  int nnames;
  CgBinding bf, bt;
  CgPlan pf, pt;
  bool have_pf, have_pt;
} ModelPlan;

static void model_plan_free(ModelPlan *P) {
  if (P->have_pf) cg_plan_free(&P->pf);
  if (P->have_pt) cg_plan_free(&P->pt);
  binding_free(&P->bf);
  binding_free(&P->bt);
  for (int i = 0; i < P->nnames; i++) free(P->names[i]);
  free(P->names);
  free(P->L.t);
}

/* -1 after a diagnostic; P is to be freed with model_plan_free either way */
static int model_plan(ModelPlan *P, const IrGraph *fwd, const IrGraph *train, Diag *d) {
  if (build_layout(&P->L, fwd, train, d, &P->names, &P->nnames)) return -1;
  binding_for(&P->L, fwd, false, &P->bf);
  if (cg_plan(&P->pf, fwd, &P->bf, d)) return -1;
  P->have_pf = true;
  if (train) {
    binding_for(&P->L, train, true, &P->bt);
    if (cg_plan(&P->pt, train, &P->bt, d)) return -1;
    P->have_pt = true;
  }
  return 0;
}

int llvm_model_memory(const IrGraph *fwd, const IrGraph *train, CgMemory *out, Diag *d) {
  ModelPlan P = {0};
  memset(out, 0, sizeof *out);
  int rc = model_plan(&P, fwd, train, d);
  if (!rc) {
    out->params_bytes = P.L.params_bytes;
    out->io_bytes = P.L.io_bytes;
    out->arena_bytes_forward = P.pf.arena_bytes;
    out->arena_bytes_train = P.have_pt ? P.pt.arena_bytes : 0;
  }
  model_plan_free(&P);
  return rc;
}

CgModel *llvm_model_emit(const IrGraph *fwd, const IrGraph *train, const IrTrain *t,
                         const CgOptions *o, Diag *d) {
  CgOptions defo = {0};
  if (!o) o = &defo;
  CgModel *m = calloc(1, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", fwd->name ? fwd->name : "model");
  m->cpu = o->target_cpu ? strdup(o->target_cpu) : NULL;
  m->features = o->target_features ? strdup(o->target_features) : NULL;
  m->target.cpu = m->cpu;
  m->target.features = m->features;
  m->target.opt_level = o->opt_level > 0 ? o->opt_level : 2;

  ModelPlan P = {0};
  LlvmTargetInfo ti = {0};
  LLVMTargetMachineRef tm = NULL;
  CgEmit e = {0};
  Arena *tiles_arena = NULL;
  char err[512] = "";
  bool ok = false;
  HwTarget hw;
  bool have_hw = hw_resolve("host", &hw, err, sizeof err) == 0;
  err[0] = 0;

  if (model_plan(&P, fwd, train, d)) goto out;
  if (llvm_target_resolve(&m->target, &ti, err, sizeof err) ||
      !(tm = llvm_target_machine(&m->target, err, sizeof err))) {
    diag_error(d, fwd->loc, "LLVM target: %s", err);
    goto out;
  }
  m->ctx = LLVMContextCreate();
  char modname[160];
  snprintf(modname, sizeof modname, "nnc_%s", m->name);
  m->mod = LLVMModuleCreateWithNameInContext(modname, m->ctx);
  llvm_module_set_target(m->mod, tm);
  e.ctx = m->ctx;
  e.mod = m->mod;
  e.b = LLVMCreateBuilderInContext(m->ctx);
  e.ti = &ti;
  e.vl = ti.vec_floats > 0 ? ti.vec_floats : 4;
  e.hw = have_hw ? &hw : NULL;
  e.err = err;
  e.errlen = sizeof err;
  emit_types(&e);
  char pre[160], entry[160];
  snprintf(pre, sizeof pre, "nnc_%s_fw", m->name);
  snprintf(entry, sizeof entry, "nnc_%s_forward", m->name);
  /* the tiles pass decides the blocking of every GEMM-like node; the emitter only reads it */
  tiles_arena = arena_new();
  e.tiles = o->tiles_fwd ? o->tiles_fwd
                         : e.hw ? pass_tiles((IrGraph *)fwd, e.hw, tiles_arena) : NULL;
  LLVMValueRef ffn = emit_plan(&e, &P.pf, pre, entry), tfn = NULL;
  if (ffn && train) {
    snprintf(pre, sizeof pre, "nnc_%s_tr", m->name);
    snprintf(entry, sizeof entry, "nnc_%s_train_step", m->name);
    e.tiles = o->tiles_train ? o->tiles_train
                             : e.hw ? pass_tiles((IrGraph *)train, e.hw, tiles_arena) : NULL;
    tfn = emit_plan(&e, &P.pt, pre, entry);
  }
  if (!ffn || (train && !tfn)) {
    diag_error(d, fwd->loc, "code generation failed: %s", err);
    goto out;
  }
  RtModelDesc meta = {0};
  char optbuf[256], dimbuf[512] = "";
  optimizer_str(train ? t : NULL, optbuf, sizeof optbuf);
  for (int i = 0, k = 0; i < dim_sym_count(fwd->dims) && k < (int)sizeof dimbuf - 1; i++) {
    int w = snprintf(dimbuf + k, sizeof dimbuf - (size_t)k, "%s%s=%lld", i ? "," : "",
                     dim_sym_name(fwd->dims, i), (long long)dim_sym_value(fwd->dims, i));
    if (w < 0) break;
    k += w;
  }
  meta.name = m->name;
  meta.optimizer = optbuf;
  meta.dims = dimbuf;
  meta.params_bytes = P.L.params_bytes;
  meta.io_bytes = P.L.io_bytes;
  meta.arena_bytes_forward = P.pf.arena_bytes;
  meta.arena_bytes_train = train ? P.pt.arena_bytes : 0;
  m->train_bytes = train ? meta.params_bytes + meta.io_bytes + meta.arena_bytes_train : 0;
  meta.batch = 1;
  for (int i = 0; i < P.L.n; i++)
    if (P.L.t[i].info.kind == RT_KIND_INPUT && P.L.t[i].info.rank > 0) {
      meta.batch = P.L.t[i].info.shape[0];
      break;
    }
  cost_of(fwd, e.hw, &meta.forward_flops, &meta.est_forward_s);
  if (train) cost_of(train, e.hw, &meta.train_flops, &meta.est_train_s);
  emit_descriptor(&e, m->name, &P.L, ffn, tfn, &meta);
  if (llvm_module_verify(m->mod, err, sizeof err) ||
      llvm_module_optimize(m->mod, tm, m->target.opt_level, err, sizeof err)) {
    diag_error(d, fwd->loc, "internal error: %s", err);
    goto out;
  }
  ok = true;
out:
  arena_free(tiles_arena);
  if (e.b) LLVMDisposeBuilder(e.b);
  free(e.gemms);
  if (tm) LLVMDisposeTargetMachine(tm);
  llvm_target_info_free(&ti);
  model_plan_free(&P);
  if (!ok) {
    llvm_model_free(m);
    return NULL;
  }
  return m;
}

void llvm_model_free(CgModel *m) {
  if (!m) return;
  llvm_jit_free(m->jit);
  if (m->mod) LLVMDisposeModule(m->mod);
  if (m->ctx) LLVMContextDispose(m->ctx);
  free(m->cpu);
  free(m->features);
  free(m);
}

int llvm_model_write_object(CgModel *m, const char *path, char *err, size_t errlen) {
  LLVMTargetMachineRef tm = llvm_target_machine(&m->target, err, errlen);
  if (!tm) return -1;
  int rc = llvm_module_emit_file(m->mod, tm, path, 0, err, errlen);
  LLVMDisposeTargetMachine(tm);
  return rc;
}

int llvm_model_write_ir(CgModel *m, FILE *out) {
  char *s = LLVMPrintModuleToString(m->mod);
  int rc = fputs(s, out) < 0 ? -1 : 0;
  LLVMDisposeMessage(s);
  return rc;
}

int llvm_model_write_asm(CgModel *m, FILE *out, char *err, size_t errlen) {
  LLVMTargetMachineRef tm = llvm_target_machine(&m->target, err, errlen);
  if (!tm) return -1;
  char *msg = NULL;
  LLVMMemoryBufferRef buf = NULL;
  int rc = 0;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m->mod, LLVMAssemblyFile, &msg, &buf)) {
    seterr(err, errlen, "cannot emit assembly: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    rc = -1;
  } else {
    size_t n = LLVMGetBufferSize(buf);
    if (fwrite(LLVMGetBufferStart(buf), 1, n, out) != n) rc = -1;
    LLVMDisposeMemoryBuffer(buf);
  }
  LLVMDisposeTargetMachine(tm);
  return rc;
}

const RtModelDesc *llvm_model_jit(CgModel *m, char *err, size_t errlen) {
  if (m->jit) {
    char nm[160];
    snprintf(nm, sizeof nm, "nnc_model_%s", m->name);
    return llvm_jit_lookup(m->jit, nm, err, errlen);
  }
  /* the JIT compiles modules of its own context: move the module there through bitcode */
  LlvmJit *jit = llvm_jit_create(&m->target, err, errlen);
  if (!jit) return NULL;
  for (const RtKernelSym *s = rt_kernel_syms; s->name; s++)
    if (llvm_jit_define(jit, s->name, s->addr, err, errlen)) {
      llvm_jit_free(jit);
      return NULL;
    }
  LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(m->mod);
  LLVMModuleRef copy = NULL;
  if (LLVMParseBitcodeInContext2(llvm_jit_context(jit), bc, &copy)) {
    LLVMDisposeMemoryBuffer(bc);
    llvm_jit_free(jit);
    seterr(err, errlen, "cannot reload the module for the JIT");
    return NULL;
  }
  LLVMDisposeMemoryBuffer(bc);
  if (llvm_jit_add_module(jit, copy, err, errlen)) {
    llvm_jit_free(jit);
    return NULL;
  }
  m->jit = jit;
  char nm[160];
  snprintf(nm, sizeof nm, "nnc_model_%s", m->name);
  return llvm_jit_lookup(jit, nm, err, errlen);
}
