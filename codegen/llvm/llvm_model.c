/* llvm_model.c — the LLVM CPU backend's model emitter (codegen.h): it asks the kernel plan
 * (codegen/plan/, for this backend's CgTarget) for the tensor table and the plans of the
 * forward and training-step graphs, emits their kernels (llvm_ops.c) and entry functions,
 * the `nnc_model_<NAME>` descriptor as a constant with the C layout of RtModelDesc, runs
 * verification and the new pass manager, and writes object/IR/assembly or JITs the module.
 * Every decision about fusion, storage and tiles is the plan's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/TargetMachine.h>

#include "../../passes/cost.h"
#include "../../runtime/rt_kernels.h"
#include "codegen.h"
#include "llvm_bf16.h"
#include "llvm_emit.h"

struct CgModel {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LlvmTarget target;
  char *cpu, *features;
  char name[128];
  LlvmJit *jit;
  int64_t train_bytes; /* params + io + training arena */
  RtMemFigures fig;    /* what a program's processes are expected to use (rt_mem.h) */
  bool split;          /* train_backward and train_apply are emitted */
};

int64_t llvm_model_train_bytes(const CgModel *m) { return m->train_bytes; }
const RtMemFigures *llvm_model_figures(const CgModel *m) { return &m->fig; }
bool llvm_model_splits_step(const CgModel *m) { return m->split; }

/* ---- emission ------------------------------------------------------------------------- */

/* the entry functions of a model (NULL: none) */
typedef struct Entries {
  LLVMValueRef fwd, train, backward, apply;
} Entries;


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
  LLVMTypeRef ps[7] = {e->ptr, e->ptr, e->ptr, e->ptr, e->i64, e->i64, e->ptr};
  e->kfn_ty = LLVMFunctionType(e->vd, ps, 7, 0); /* the 7th: RtModelBufs.hooks */
}

static void add_fn_attr(CgEmit *e, LLVMValueRef f, const char *attr) {
  unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->ctx, kind, 0));
}

/* the plan's folded constants as a private read-only global <prefix>_consts, or NULL */
static LLVMValueRef emit_consts(CgEmit *e, const CgPlan *p, const char *prefix) {
  if (!p->consts_bytes) return NULL;
  char nm[180];
  snprintf(nm, sizeof nm, "%s_consts", prefix);
  LLVMValueRef init = LLVMConstStringInContext(e->ctx, (const char *)p->consts,
                                               (unsigned)p->consts_bytes, 1);
  LLVMValueRef g = LLVMAddGlobal(e->mod, LLVMTypeOf(init), nm);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetAlignment(g, 64);
  return g;
}

/* the kernel functions `<prefix>_k<i>` of the plan, or NULL after a diagnostic */
static LLVMValueRef *emit_kernels(CgEmit *e, const CgPlan *p, const char *prefix) {
  e->p = p;
  e->prefix = prefix;
  e->consts = emit_consts(e, p, prefix);
  LLVMValueRef *kfns = xmalloc((size_t)(p->nk ? p->nk : 1) * sizeof *kfns);
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
    e->hooks = LLVMGetParam(f, 6);
    LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, f, "entry"));
    if (llvm_lower_kernel(e, &p->k[ki]) != 0) {
      free(kfns);
      return NULL;
    }
    LLVMBuildRetVoid(e->b);
    kfns[ki] = f;
  }
  return kfns;
}

/* `rt_grads_ready(hooks, ki)`: the gradients whose ready kernel is ki are final */
static void emit_ready_mark(CgEmit *e, LLVMValueRef hooks, int ki) {
  LLVMTypeRef ps[2] = {e->ptr, e->i32};
  LLVMTypeRef ty = LLVMFunctionType(e->vd, ps, 2, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->mod, "rt_grads_ready");
  if (!fn) fn = LLVMAddFunction(e->mod, "rt_grads_ready", ty);
  LLVMValueRef a[2] = {hooks, LLVMConstInt(e->i32, (unsigned)ki, 0)};
  LLVMBuildCall2(e->b, ty, fn, a, 2, "");
}

/* an entry function `entry_name(const RtModelBufs *)` that runs kernels [from, to); after
 * each kernel ki with ready[ki] (NULL: none), a gradients-ready mark */
static LLVMValueRef emit_entry(CgEmit *e, LLVMValueRef *kfns, int from, int to,
                               const char *entry_name, const bool *ready) {
  LLVMTypeRef pt = e->ptr;
  LLVMValueRef f = LLVMAddFunction(e->mod, entry_name, LLVMFunctionType(e->vd, &pt, 1, 0));
  llvm_function_set_target(f, e->ti);
  add_fn_attr(e, f, "nounwind");
  LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, f, "entry"));
  LLVMTypeRef bf[8] = {e->ptr, e->ptr, e->ptr, e->ptr, e->i64, e->i64, e->ptr, e->ptr};
  LLVMTypeRef bt = LLVMStructTypeInContext(e->ctx, bf, 8, 0);
  LLVMValueRef bufs = LLVMGetParam(f, 0), args[8];
  for (unsigned i = 0; i < 8; i++) /* the 7th: RtModelBufs.prof, the 8th: .hooks */
    args[i] = LLVMBuildLoad2(e->b, bf[i], LLVMBuildStructGEP2(e->b, bt, bufs, i, ""), "");
  LLVMValueRef kargs[7] = {args[0], args[1], args[2], args[3], args[4], args[5], args[7]};
  /* profiling marks at absolute kernel indices: the halves of a split step fill one table */
  for (int ki = from; ki < to; ki++) {
    llvm_prof_mark(e, args[6], ki);
    LLVMBuildCall2(e->b, e->kfn_ty, kfns[ki], kargs, 7, "");
    if (ready && ready[ki]) emit_ready_mark(e, args[7], ki);
  }
  llvm_prof_mark(e, args[6], to);
  LLVMBuildRetVoid(e->b);
  return f;
}

/* ready[ki]: kernel ki is the ready kernel of some gradient (the caller frees it) */
static bool *ready_marks(const CgModelPlan *P) {
  bool *ready = xcalloc((size_t)P->pt.nk + 1, sizeof *ready);
  for (int i = 0; i < P->ngrads; i++)
    if (P->grads[i].ready >= 0 && P->grads[i].ready < P->pt.nk) ready[P->grads[i].ready] = true;
  return ready;
}

LLVMValueRef llvm_cstr(CgEmit *e, const char *s) {
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

/* a private constant array of n rows of type t, named name; frees rows */
static LLVMValueRef const_table(CgEmit *e, LLVMTypeRef t, LLVMValueRef *rows, int n,
                                const char *name) {
  LLVMValueRef tab = LLVMAddGlobal(e->mod, LLVMArrayType2(t, (uint64_t)n), name);
  LLVMSetInitializer(tab, LLVMConstArray2(t, rows, (uint64_t)n));
  LLVMSetGlobalConstant(tab, 1);
  LLVMSetLinkage(tab, LLVMPrivateLinkage);
  free(rows);
  return tab;
}

/* the RtGradInfo rows of the plan's gradients (a null pointer without any) */
static LLVMValueRef emit_grads(CgEmit *e, const CgModelPlan *L) {
  if (!L->ngrads) return LLVMConstPointerNull(e->ptr);
  LLVMTypeRef gf[4] = {e->i64, e->i64, e->i64, e->i64};
  LLVMTypeRef gt = LLVMStructTypeInContext(e->ctx, gf, 4, 0);
  LLVMValueRef *rows = xmalloc((size_t)L->ngrads * sizeof *rows);
  for (int i = 0; i < L->ngrads; i++) {
    LLVMValueRef v[4] = {cg_c64(e, L->grads[i].offset), cg_c64(e, L->grads[i].numel),
                         cg_c64(e, L->grads[i].tensor), cg_c64(e, L->grads[i].ready)};
    rows[i] = LLVMConstNamedStruct(gt, v, 4);
  }
  return const_table(e, gt, rows, L->ngrads, "nnc.grads");
}

static void emit_descriptor(CgEmit *e, const char *name, const CgModelPlan *L, const Entries *en,
                            const RtModelDesc *meta, const LLVMValueRef ktab[2]) {
  LLVMTypeRef tf[12] = {e->ptr, e->i32, e->i32, e->i32, e->i32, LLVMArrayType2(e->i64, 8),
                        e->i64, e->i64, e->f64, e->f64, e->i64, e->i32};
  LLVMTypeRef tt = LLVMStructTypeInContext(e->ctx, tf, 12, 0);
  LLVMValueRef *rows = xmalloc((size_t)(L->nt ? L->nt : 1) * sizeof *rows);
  for (int i = 0; i < L->nt; i++) {
    const RtTensorInfo *t = &L->t[i].info;
    LLVMValueRef sh[8];
    for (int k = 0; k < 8; k++) sh[k] = cg_c64(e, k < t->rank ? t->shape[k] : 0);
    LLVMValueRef v[12] = {llvm_cstr(e, t->name), LLVMConstInt(e->i32, (unsigned)t->kind, 0),
                          LLVMConstInt(e->i32, (unsigned)t->dtype, 0), LLVMConstInt(e->i32, (unsigned)t->rank, 0),
                          LLVMConstInt(e->i32, (unsigned)t->init, 0), LLVMConstArray2(e->i64, sh, 8),
                          cg_c64(e, t->offset), cg_c64(e, t->nbytes), LLVMConstReal(e->f64, t->init_a),
                          LLVMConstReal(e->f64, t->init_b), cg_c64(e, t->index_bound),
                          LLVMConstInt(e->i32, (unsigned)t->index_kind, 0)};
    rows[i] = LLVMConstNamedStruct(tt, v, 12);
  }
  LLVMValueRef tab = const_table(e, tt, rows, L->nt, "nnc.tensors");
  LLVMTypeRef df[36] = {e->i32, e->i32, e->ptr, e->ptr, e->i64, e->i64, e->i64, e->i64, e->i64,
                        e->ptr, e->ptr, e->ptr, e->ptr, e->f64, e->f64, e->f64, e->f64,
                        e->i64, e->i64, e->i32, e->i32, e->ptr, e->ptr, e->i32,
                        e->f64, e->f64, e->f64, e->ptr, e->ptr, e->ptr, e->i64, e->i32, e->ptr,
                        e->i64, e->i64, e->i64};
  LLVMTypeRef dt = LLVMStructTypeInContext(e->ctx, df, 36, 0);
  LLVMValueRef null = LLVMConstPointerNull(e->ptr);
  LLVMValueRef v[36] = {LLVMConstInt(e->i32, RT_MODEL_ABI, 0), LLVMConstInt(e->i32, (unsigned)L->nt, 0),
                        llvm_cstr(e, meta->name), tab, cg_c64(e, meta->params_bytes), cg_c64(e, meta->io_bytes),
                        cg_c64(e, meta->arena_bytes_forward), cg_c64(e, meta->arena_bytes_train),
                        cg_c64(e, meta->batch), en->fwd, en->train ? en->train : null,
                        llvm_cstr(e, meta->optimizer), llvm_cstr(e, meta->dims),
                        LLVMConstReal(e->f64, meta->forward_flops), LLVMConstReal(e->f64, meta->train_flops),
                        LLVMConstReal(e->f64, meta->est_forward_s), LLVMConstReal(e->f64, meta->est_train_s),
                        cg_c64(e, meta->thread_bytes_forward), cg_c64(e, meta->thread_bytes_train),
                        LLVMConstInt(e->i32, (unsigned)meta->nkernels_forward, 0),
                        LLVMConstInt(e->i32, (unsigned)meta->nkernels_train, 0), ktab[0], ktab[1],
                        LLVMConstInt(e->i32, (unsigned)meta->est_cores, 0),
                        LLVMConstReal(e->f64, meta->roof_peak_1t),
                        LLVMConstReal(e->f64, meta->roof_peak), LLVMConstReal(e->f64, meta->roof_bw),
                        en->backward ? en->backward : null, en->apply ? en->apply : null,
                        emit_grads(e, L), cg_c64(e, en->backward ? L->ngrads : 0),
                        LLVMConstInt(e->i32, (unsigned)meta->sync_bn, 0), null,
                        cg_c64(e, meta->packed_bytes), cg_c64(e, meta->packed_flags_at),
                        cg_c64(e, meta->packed_flags_bytes)};
  char gname[160];
  snprintf(gname, sizeof gname, "nnc_model_%s", name);
  LLVMValueRef g = LLVMAddGlobal(e->mod, dt, gname);
  LLVMSetInitializer(g, LLVMConstNamedStruct(dt, v, 36));
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

/* the algorithmic FLOPs of g (the cost rules of docs/cost-model.md) */
static double flops_of(const IrGraph *g) {
  Arena *a = arena_new();
  CostResult *r = cost_analyze((IrGraph *)g, a);
  double flops = r ? dim_evalf(g->dims, r->total.flops, NULL) : 0;
  arena_free(a);
  return flops;
}

/* the descriptor's fields besides the tensor table and the entry points */
typedef struct DescMeta {
  RtModelDesc meta;
  char opt[256], dims[512];
} DescMeta;

static void desc_meta(DescMeta *dm, const char *name, const CgModelPlan *P, const IrGraph *fwd,
                      const IrGraph *train, const IrTrain *t, const HwTarget *hw) {
  RtModelDesc *meta = &dm->meta;
  memset(dm, 0, sizeof *dm);
  optimizer_str(train ? t : NULL, dm->opt, sizeof dm->opt);
  for (int i = 0, k = 0; i < dim_sym_count(fwd->dims) && k < (int)sizeof dm->dims - 1; i++) {
    int w = snprintf(dm->dims + k, sizeof dm->dims - (size_t)k, "%s%s=%lld", i ? "," : "",
                     dim_sym_name(fwd->dims, i), (long long)dim_sym_value(fwd->dims, i));
    if (w < 0) break;
    k += w;
  }
  meta->name = name;
  meta->optimizer = dm->opt;
  meta->dims = dm->dims;
  meta->params_bytes = P->params_bytes;
  meta->io_bytes = P->io_bytes;
  meta->arena_bytes_forward = P->pf.arena_bytes;
  meta->arena_bytes_train = train ? P->pt.arena_bytes : 0;
  meta->packed_bytes = P->pf.packed_bytes;
  meta->packed_flags_at = P->pf.packed_flags_at;
  meta->packed_flags_bytes = P->pf.packed_flags_bytes;
  meta->batch = 1;
  for (int i = 0; i < P->nt; i++)
    if (P->t[i].info.kind == RT_KIND_INPUT && P->t[i].info.rank > 0) {
      meta->batch = P->t[i].info.shape[0];
      break;
    }
  meta->forward_flops = flops_of(fwd);
  if (train) meta->train_flops = flops_of(train);
  meta->nkernels_forward = P->pf.nk;
  meta->nkernels_train = train ? P->pt.nk : 0;
  meta->est_cores = hw ? hw->cores : 0;
  if (hw) {
    meta->roof_peak = hw->peak[HWP_F32];
    meta->roof_peak_1t = hw->peak_f32_1t > 0 ? hw->peak_f32_1t
                                             : hw->peak[HWP_F32] / (hw->cores > 0 ? hw->cores : 1);
    meta->roof_bw = hw->mem_bw;
  }
}

static CgModel *model_new(const IrGraph *fwd, const CgOptions *o) {
  CgModel *m = xcalloc(1, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", fwd->name ? fwd->name : "model");
  m->cpu = o->target_cpu ? xstrdup(o->target_cpu) : NULL;
  m->features = o->target_features ? xstrdup(o->target_features) : NULL;
  m->target.cpu = m->cpu;
  m->target.features = m->features;
  m->target.opt_level = o->opt_level > 0 ? o->opt_level : 2;
  return m;
}

/* the module of m, a builder and the types the emitter uses */
static void emit_begin(CgEmit *e, CgModel *m, LLVMTargetMachineRef tm, const LlvmTargetInfo *ti,
                       const CgTarget *target) {
  m->ctx = LLVMContextCreate();
  char modname[160];
  snprintf(modname, sizeof modname, "nnc_%s", m->name);
  m->mod = LLVMModuleCreateWithNameInContext(modname, m->ctx);
  llvm_module_set_target(m->mod, tm);
  e->ctx = m->ctx;
  e->mod = m->mod;
  e->b = LLVMCreateBuilderInContext(m->ctx);
  e->ti = ti;
  e->vl = target->vector_width;
  e->hw = target->hw;
  emit_types(e);
}

/* the kernels and entry functions of both plans, and the GEMM packing bytes a thread
 * allocates in each (pack[0] forward, pack[1] training step); false after a diagnostic */
static bool emit_entries(CgEmit *e, const CgModelPlan *P, const char *name, Entries *en,
                         int64_t pack[2]) {
  char pre[160], entry[160];
  memset(en, 0, sizeof *en);
  snprintf(pre, sizeof pre, "nnc_%s_fw", name);
  snprintf(entry, sizeof entry, "nnc_%s_forward", name);
  LLVMValueRef *kfns = emit_kernels(e, &P->pf, pre);
  if (!kfns) return false;
  en->fwd = emit_entry(e, kfns, 0, P->pf.nk, entry, NULL);
  free(kfns);
  pack[0] = e->pack_bytes;
  pack[1] = e->pack_bytes = 0;
  if (!P->have_pt) return true;
  snprintf(pre, sizeof pre, "nnc_%s_tr", name);
  if (!(kfns = emit_kernels(e, &P->pt, pre))) return false;
  snprintf(entry, sizeof entry, "nnc_%s_train_step", name);
  en->train = emit_entry(e, kfns, 0, P->pt.nk, entry, NULL);
  if (P->split_ok) { /* the same kernels in two halves, for an all-reduce between them */
    bool *ready = ready_marks(P);
    snprintf(entry, sizeof entry, "nnc_%s_train_backward", name);
    en->backward = emit_entry(e, kfns, 0, P->pt.split, entry, ready);
    snprintf(entry, sizeof entry, "nnc_%s_train_apply", name);
    en->apply = emit_entry(e, kfns, P->pt.split, P->pt.nk, entry, NULL);
    free(ready);
  }
  free(kfns);
  pack[1] = e->pack_bytes;
  return true;
}

/* --precision bf16: the tiles pass's decisions for bf16 inputs, unless the caller gave tiles */
static void bf16_tiles(const CgOptions *o, const IrGraph *fwd, const IrGraph *train,
                       const HwTarget *hw, bool amx, Arena **a, const TilePlan **tf,
                       const TilePlan **tt) {
  *tf = o->tiles_fwd, *tt = o->tiles_train;
  if (!o->bf16 || !hw || *tf) return;
  *a = arena_new();
  *tf = pass_tiles_bf16((IrGraph *)fwd, hw, *a, amx);
  if (train) *tt = pass_tiles_bf16((IrGraph *)train, hw, *a, amx);
}

CgModel *llvm_model_emit(const IrGraph *fwd, const IrGraph *train, const IrTrain *t,
                         const CgOptions *o, Diag *d) {
  CgOptions defo = {0};
  if (!o) o = &defo;
  CgModel *m = model_new(fwd, o);
  CgModelPlan P = {0};
  LlvmTargetInfo ti = {0};
  LLVMTargetMachineRef tm = NULL;
  CgEmit e = {0};
  Arena *tiles_arena = NULL;
  const TilePlan *tiles_fwd, *tiles_train;
  char err[512] = "";
  e.d = d;
  bool ok = false;
  int nsync = 0;
  HwTarget hw;
  bool have_hw = hw_resolve("host", &hw, err, sizeof err) == 0;
  err[0] = 0;
  if (llvm_target_resolve(&m->target, &ti, err, sizeof err) ||
      !(tm = llvm_target_machine(&m->target, err, sizeof err))) {
    diag_error(d, fwd->loc, "LLVM target: %s", err);
    goto out;
  }
  CgTarget target;
  llvm_backend_target(&target, ti.vec_floats, have_hw ? &hw : NULL);
  if (o->memory_budget > 0) target.prepack = false; /* the budget has no room for packed copies */
  if (o->sync_bn) target.bn_fused = false; /* each statistic's kernel sums over processes */
  if (o->no_winograd) target.winograd = false;
  if (o->no_dw_fuse) target.dw_fuse = false;
  target.dw_strip = o->dw_strip;
  if (o->bf16) { /* bf16 panels come from the unfolded matrix and are rounded per call */
    target.conv = CG_CONV_IM2COL;
    target.prepack = false;
    target.conv_few = false;
  }
  /* the tiles pass decides the blocking of every GEMM-like node; the emitter only reads it */
  bf16_tiles(o, fwd, train, target.hw, llvm_bf16_amx(&ti, 32, 32), &tiles_arena, &tiles_fwd,
             &tiles_train);
  if (cg_model_plan(&P, fwd, train, &target, tiles_fwd, tiles_train, d)) goto out;
  nsync = o->sync_bn && P.have_pt ? cg_plan_sync_stats(&P.pt) : 0;
  emit_begin(&e, m, tm, &ti, &target);
  e.bf16 = o->bf16;
  Entries en;
  int64_t pack[2];
  if (!emit_entries(&e, &P, m->name, &en, pack)) goto out;
  DescMeta dm;
  desc_meta(&dm, m->name, &P, fwd, train, t, e.hw);
  dm.meta.sync_bn = nsync > 0;
  LLVMValueRef ktab[2] = {llvm_kernel_table(&e, &P, false, e.hw, &dm.meta.est_forward_s),
                          train ? llvm_kernel_table(&e, &P, true, e.hw, &dm.meta.est_train_s)
                                : LLVMConstPointerNull(e.ptr)};
  dm.meta.thread_bytes_forward = pack[0];
  dm.meta.thread_bytes_train = pack[1];
  m->split = en.backward != NULL;
  m->train_bytes = train ? dm.meta.params_bytes + dm.meta.io_bytes + dm.meta.arena_bytes_train : 0;
  cg_model_figures(&P, pack[0], pack[1], &m->fig);
  emit_descriptor(&e, m->name, &P, &en, &dm.meta, ktab);
  if (llvm_module_verify(m->mod, err, sizeof err) ||
      llvm_module_optimize(m->mod, tm, m->target.opt_level, err, sizeof err)) {
    diag_error(d, fwd->loc, "internal error: %s", err);
    goto out;
  }
  ok = true;
out:
  if (e.b) LLVMDisposeBuilder(e.b);
  free(e.gemms);
  if (tm) LLVMDisposeTargetMachine(tm);
  llvm_target_info_free(&ti);
  cg_model_plan_free(&P);
  if (tiles_arena) arena_free(tiles_arena);
  if (!ok) {
    llvm_model_free(m);
    return NULL;
  }
  return m;
}

int llvm_model_memory(const IrGraph *fwd, const IrGraph *train, bool winograd, CgMemory *out,
                      Diag *d) {
  CgTarget target;
  HwTarget hw; /* the host's tiles, as llvm_model_emit decides them (Winograd's scratch) */
  char err[256];
  bool have_hw = hw_resolve("host", &hw, err, sizeof err) == 0;
  llvm_backend_target(&target, 0, have_hw ? &hw : NULL);
  target.winograd = winograd;
  return cg_model_memory(fwd, train, &target, out, d);
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

/* the LLVM helpers below report into a buffer; at this boundary it becomes a diagnostic */
#define MODEL_ERRLEN 1024

int llvm_model_write_object(CgModel *m, const char *path, Diag *d) {
  char err[MODEL_ERRLEN] = "";
  LLVMTargetMachineRef tm = llvm_target_machine(&m->target, err, sizeof err);
  int rc = tm ? llvm_module_emit_file(m->mod, tm, path, 0, err, sizeof err) : -1;
  if (tm) LLVMDisposeTargetMachine(tm);
  if (rc) diag_error_file(d, path, "cannot write the object file: %s", err);
  return rc;
}

int llvm_model_write_ir(CgModel *m, FILE *out, Diag *d) {
  char *s = LLVMPrintModuleToString(m->mod);
  int rc = fputs(s, out) < 0 ? -1 : 0;
  LLVMDisposeMessage(s);
  if (rc) diag_error_file(d, NULL, "writing the LLVM IR failed");
  return rc;
}

static int emit_asm(LLVMTargetMachineRef tm, LLVMModuleRef mod, FILE *out, Diag *d) {
  char *msg = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &buf)) {
    diag_error_file(d, NULL, "cannot emit assembly: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return -1;
  }
  size_t n = LLVMGetBufferSize(buf);
  int rc = fwrite(LLVMGetBufferStart(buf), 1, n, out) != n ? -1 : 0;
  LLVMDisposeMemoryBuffer(buf);
  if (rc) diag_error_file(d, NULL, "writing the assembly failed");
  return rc;
}

int llvm_model_write_asm(CgModel *m, FILE *out, Diag *d) {
  char err[MODEL_ERRLEN] = "";
  LLVMTargetMachineRef tm = llvm_target_machine(&m->target, err, sizeof err);
  if (!tm) {
    diag_error_file(d, NULL, "LLVM target: %s", err);
    return -1;
  }
  int rc = emit_asm(tm, m->mod, out, d);
  LLVMDisposeTargetMachine(tm);
  return rc;
}

/* a JIT holding the runtime's kernel symbols and a copy of the module (moved to the JIT's
 * context through bitcode); NULL with err filled */
static LlvmJit *jit_load(CgModel *m, char *err, size_t errlen) {
  LlvmJit *jit = llvm_jit_create(&m->target, err, errlen);
  if (!jit) return NULL;
  for (const RtKernelSym *s = rt_kernel_syms; s->name; s++)
    if (llvm_jit_define(jit, s->name, s->addr, err, errlen)) {
      llvm_jit_free(jit);
      return NULL;
    }
  LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(m->mod);
  LLVMModuleRef copy = NULL;
  bool bad = LLVMParseBitcodeInContext2(llvm_jit_context(jit), bc, &copy);
  LLVMDisposeMemoryBuffer(bc);
  if (bad) snprintf(err, errlen, "cannot reload the module for the JIT");
  if (bad || llvm_jit_add_module(jit, copy, err, errlen)) {
    llvm_jit_free(jit);
    return NULL;
  }
  return jit;
}

const RtModelDesc *llvm_model_jit(CgModel *m, Diag *d) {
  char err[MODEL_ERRLEN] = "";
  if (!m->jit) m->jit = jit_load(m, err, sizeof err);
  const RtModelDesc *desc = NULL;
  if (m->jit) {
    char nm[160];
    snprintf(nm, sizeof nm, "nnc_model_%s", m->name);
    desc = llvm_jit_lookup(m->jit, nm, err, sizeof err);
  }
  if (!desc) diag_error_file(d, NULL, "JIT of the model '%s': %s", m->name, err);
  return desc;
}
