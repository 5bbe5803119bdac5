/* llvm_ops.c — per-op lowering of plan kernels to LLVM IR (see llvm_emit.h).
 *
 * - elementwise groups: one generated loop over the group's iteration space, rows of the
 *   innermost (collapsed) dim in host-width vectors plus a scalar tail, operands loaded with
 *   numpy broadcast strides, every intermediate in registers; split across the thread pool
 *   in fixed contiguous ranges (elementwise results do not depend on the split).
 * - MATMUL: calls of a GEMM kernel from llvm_gemm (one per distinct shape of blocking and
 *   epilogue), blocking from the tile decisions (passes/tiles.h); batched products loop over
 *   constant tables of operand offsets, and a batch that only the left operand has is folded
 *   into M.
 * - convolutions: implicit GEMM (CG_CONV_GATHER): the forward convolution and the filter
 *   gradient are GEMMs whose B panels are gathered from the image while they are packed
 *   (llvm_gemm.h, LlvmGemmConv), one per image and group, or one per group for the whole
 *   batch when an image has fewer than CG_CONV_BATCH_P output positions (its output through
 *   scratch, copied into place). The data gradient is a GEMM into an unfolded K x P scratch
 *   and col2im, spread over the threads by input channel (batched the same way); 1x1
 *   stride-1 unpadded convolutions use the activations directly. Depthwise convolutions, their
 *   filter gradients and (at strides 1 and 2) their data gradients are computed directly
 *   (vectors along the rows, rows or channels over the threads). A folded inference
 *   batchnorm becomes the GEMM's per-channel scale-and-shift epilogue, from a table of
 *   gamma/sqrt(var + eps) and beta - mean·scale computed at the start of the kernel.
 * - everything else calls a plain-C runtime kernel (runtime/rt_kernels.h) or, for copies
 *   and fills, llvm.memcpy/llvm.memset and a generated fill loop.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../passes/tiles.h"
#include "codegen.h"
#include "llvm_emit.h"
#include "../../runtime/rt_kernels.h"

/* ---- small helpers --------------------------------------------------------------------- */

LLVMValueRef cg_c64(CgEmit *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }
static LLVMValueRef c32(CgEmit *e, int32_t v) { return LLVMConstInt(e->i32, (unsigned long long)v, 1); }

static LLVMValueRef gep8(CgEmit *e, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildGEP2(e->b, e->i8, base, &off, 1, "");
}

LLVMValueRef cg_region_ptr(CgEmit *e, int region, int64_t offset) {
  LLVMValueRef base = region == RT_REGION_PARAMS ? e->params
                      : region == RT_REGION_IO   ? e->io
                      : region == CG_REGION_CONST ? e->consts
                                                  : e->arena;
  return offset ? gep8(e, base, cg_c64(e, offset)) : base;
}

LLVMValueRef cg_ptr(CgEmit *e, int node) {
  const CgVal *v = &e->p->v[node];
  return cg_region_ptr(e, v->region, v->offset);
}

static LLVMValueRef add(CgEmit *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(e->b, a, b, ""); }
static LLVMValueRef mul(CgEmit *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(e->b, a, b, ""); }

static LLVMValueRef dconst(CgEmit *e, double v) { return LLVMConstReal(e->f64, v); }

static LLVMValueRef fconst(CgEmit *e, LLVMTypeRef ty, double v) {
  if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return LLVMConstReal(ty, v);
  unsigned n = LLVMGetVectorSize(ty);
  LLVMValueRef *lanes = xmalloc((size_t)n * sizeof *lanes);
  for (unsigned i = 0; i < n; i++) lanes[i] = LLVMConstReal(e->f32, v);
  LLVMValueRef c = LLVMConstVector(lanes, n);
  free(lanes);
  return c;
}

static LLVMValueRef splat(CgEmit *e, LLVMValueRef x, int n) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)n);
  LLVMValueRef v = LLVMBuildInsertElement(e->b, LLVMGetPoison(vt), x, c32(e, 0), "");
  LLVMValueRef mask = LLVMConstNull(LLVMVectorType(e->i32, (unsigned)n));
  return LLVMBuildShuffleVector(e->b, v, LLVMGetPoison(vt), mask, "");
}

static LLVMValueRef intrinsic(CgEmit *e, const char *name, LLVMTypeRef *over, size_t nover,
                              LLVMValueRef *args, unsigned nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, over, nover);
  LLVMTypeRef ty = LLVMIntrinsicGetType(e->ctx, id, over, nover);
  return LLVMBuildCall2(e->b, ty, f, args, nargs, "");
}

static LLVMValueRef un_intr(CgEmit *e, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  return intrinsic(e, name, &t, 1, &x, 1);
}

static LLVMValueRef declare(CgEmit *e, const char *name, LLVMTypeRef ret, LLVMTypeRef *ps, unsigned n) {
  LLVMValueRef f = LLVMGetNamedFunction(e->mod, name);
  if (!f) f = LLVMAddFunction(e->mod, name, LLVMFunctionType(ret, ps, n, 0));
  return f;
}

static LLVMValueRef call(CgEmit *e, LLVMValueRef f, LLVMValueRef *args, unsigned n) {
  return LLVMBuildCall2(e->b, LLVMGlobalGetValueType(f), f, args, n, "");
}

/* a private constant i64 table */
static LLVMValueRef const_table(CgEmit *e, const int64_t *v, int n) {
  LLVMValueRef *el = xmalloc((size_t)(n ? n : 1) * sizeof *el);
  for (int i = 0; i < n; i++) el[i] = cg_c64(e, v[i]);
  LLVMTypeRef at = LLVMArrayType2(e->i64, (uint64_t)n);
  char nm[64];
  snprintf(nm, sizeof nm, "%s.tab%d", e->prefix, e->nglobals++);
  LLVMValueRef gv = LLVMAddGlobal(e->mod, at, nm);
  LLVMSetInitializer(gv, LLVMConstArray2(e->i64, el, (uint64_t)n));
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  free(el);
  return gv;
}

static LLVMValueRef load_i64_at(CgEmit *e, LLVMValueRef table, LLVMValueRef idx) {
  LLVMValueRef p = LLVMBuildGEP2(e->b, e->i64, table, &idx, 1, "");
  return LLVMBuildLoad2(e->b, e->i64, p, "");
}

typedef struct Loop {
  LLVMValueRef iv, step;
  LLVMBasicBlockRef header, exit;
} Loop;

static void loop_begin(CgEmit *e, Loop *l, LLVMValueRef start, LLVMValueRef end, int64_t step) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  l->header = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "exit");
  LLVMBuildBr(e->b, l->header);
  LLVMPositionBuilderAtEnd(e->b, l->header);
  l->iv = LLVMBuildPhi(e->b, e->i64, "i");
  LLVMAddIncoming(l->iv, &start, &pre, 1);
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, l->iv, end, ""), body, l->exit);
  LLVMPositionBuilderAtEnd(e->b, body);
  l->step = cg_c64(e, step);
}

static void loop_end(CgEmit *e, Loop *l) {
  LLVMValueRef next = add(e, l->iv, l->step);
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, l->header);
  LLVMAddIncoming(l->iv, &next, &cur, 1);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}

static LLVMValueRef smin(CgEmit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, a, b, ""), a, b, "");
}
static LLVMValueRef smax(CgEmit *e, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, a, b, ""), a, b, "");
}

static void memset0(CgEmit *e, LLVMValueRef p, int64_t bytes) {
  if (bytes > 0) LLVMBuildMemSet(e->b, p, LLVMConstInt(e->i8, 0, 0), cg_c64(e, bytes), 4);
}

static const IrNode *node(CgEmit *e, int i) { return &e->p->g->nodes[i]; }
static const CgVal *val(CgEmit *e, int i) { return &e->p->v[i]; }

/* ---- parallel tasks -------------------------------------------------------------------- */

/* A task function void(ptr ctx, i64 t) whose ctx holds the three region bases, the pool,
 * the task count and TASK_NX values of the caller (loop indices: run_tasks_x); `body` emits
 * the work of task t. */
typedef void (*TaskBody)(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt);

enum { TASK_NX = 2, TASK_NFIELDS = 5 + TASK_NX };

static LLVMTypeRef task_ctx_type(CgEmit *e) {
  LLVMTypeRef f[TASK_NFIELDS] = {e->ptr, e->ptr, e->ptr, e->ptr, e->i64};
  for (int i = 5; i < TASK_NFIELDS; i++) f[i] = e->i64;
  return LLVMStructTypeInContext(e->ctx, f, TASK_NFIELDS, 0);
}

/* an alloca in the entry block, so that a call inside a loop does not grow the stack */
static LLVMValueRef entry_alloca(CgEmit *e, LLVMTypeRef t, const char *nm) {
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(e->fn);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(b, first);
  else LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef a = LLVMBuildAlloca(b, t, nm);
  LLVMDisposeBuilder(b);
  return a;
}

/* runs body in min(pool threads, max_tasks) tasks; x[] (NULL entries: 0) are the caller's
 * values the body reads as xo[] in the task */
static void run_tasks_x(CgEmit *e, const CgKernel *k, int64_t max_tasks, TaskBody body, void *arg,
                        LLVMValueRef *x, LLVMValueRef *xo) {
  char nm[96];
  snprintf(nm, sizeof nm, "%s_k%d.task%d", e->prefix, e->kidx, e->ntasks++);
  LLVMTypeRef ps[2] = {e->ptr, e->i64};
  LLVMValueRef tf = LLVMAddFunction(e->mod, nm, LLVMFunctionType(e->vd, ps, 2, 0));
  LLVMSetLinkage(tf, LLVMInternalLinkage);
  llvm_function_set_target(tf, e->ti);
  LLVMTypeRef st = task_ctx_type(e);
  /* caller side */
  LLVMValueRef ctx = entry_alloca(e, st, "ctx");
  LLVMValueRef size_f = declare(e, "rt_pool_size", e->i32, &e->ptr, 1);
  LLVMValueRef nt = LLVMBuildSExt(e->b, call(e, size_f, &e->pool, 1), e->i64, "");
  nt = smin(e, nt, cg_c64(e, max_tasks > 0 ? max_tasks : 1));
  LLVMValueRef vals[TASK_NFIELDS] = {e->params, e->io, e->arena, e->pool, nt};
  for (int i = 0; i < TASK_NX; i++) vals[5 + i] = x && x[i] ? x[i] : cg_c64(e, 0);
  for (unsigned i = 0; i < TASK_NFIELDS; i++)
    LLVMBuildStore(e->b, vals[i], LLVMBuildStructGEP2(e->b, st, ctx, i, ""));
  LLVMTypeRef pf_t[4] = {e->ptr, e->i64, e->ptr, e->ptr};
  LLVMValueRef pfor = declare(e, "rt_parallel_for", e->vd, pf_t, 4);
  LLVMValueRef args[4] = {e->pool, nt, tf, ctx};
  call(e, pfor, args, 4);
  /* task side */
  LLVMBasicBlockRef save = LLVMGetInsertBlock(e->b);
  LLVMValueRef sfn = e->fn, sp = e->params, sio = e->io, sa = e->arena, spool = e->pool;
  e->fn = tf;
  LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, tf, "entry"));
  LLVMValueRef c = LLVMGetParam(tf, 0), t = LLVMGetParam(tf, 1);
  LLVMValueRef f[TASK_NFIELDS];
  for (unsigned i = 0; i < TASK_NFIELDS; i++)
    f[i] = LLVMBuildLoad2(e->b, LLVMStructGetTypeAtIndex(st, i), LLVMBuildStructGEP2(e->b, st, c, i, ""), "");
  e->params = f[0];
  e->io = f[1];
  e->arena = f[2];
  e->pool = f[3];
  for (int i = 0; xo && i < TASK_NX; i++) xo[i] = f[5 + i];
  body(e, k, arg, t, f[4]);
  LLVMBuildRetVoid(e->b);
  e->fn = sfn;
  e->params = sp;
  e->io = sio;
  e->arena = sa;
  e->pool = spool;
  LLVMPositionBuilderAtEnd(e->b, save);
}

static void run_tasks(CgEmit *e, const CgKernel *k, int64_t max_tasks, TaskBody body, void *arg) {
  run_tasks_x(e, k, max_tasks, body, arg, NULL, NULL);
}

/* ---- elementwise groups ---------------------------------------------------------------- */

typedef struct EwSlot {
  int node;                 /* operand read from memory */
  int64_t st[IR_MAX_RANK];  /* element strides against the iteration shape (0 = repeat) */
  bool is_i32;
} EwSlot;

typedef struct EwPlan {
  const CgKernel *k;
  int rank;                 /* collapsed */
  int64_t dims[IR_MAX_RANK];
  int64_t numel, L;         /* L = innermost collapsed dim */
  EwSlot *slots;
  int nslots;
  int64_t cst[IR_MAX_RANK]; /* collapsed strides per slot: slots[s].st reused after collapse */
  LLVMValueRef *vals;       /* [nnodes] value of each member in the current body */
  int bad;                  /* a member ew_expr cannot compute, or -1 */
} EwPlan;

/* the value of member m given its operands' values */
static LLVMValueRef ew_expr(CgEmit *e, const IrNode *n, LLVMValueRef *a) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef x = a[0], y = n->nin > 1 ? a[1] : NULL;
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef zero = fconst(e, t, 0), one = fconst(e, t, 1);
  switch (n->op) {
  case OP_NEG: return LLVMBuildFNeg(b, x, "");
  case OP_EXP: return llvm_math_exp(e, x);
  case OP_LOG: return llvm_math_log(e, x);
  case OP_SQRT: return un_intr(e, "llvm.sqrt", x);
  case OP_TANH: return llvm_math_tanh(e, x);
  case OP_SIGMOID: return llvm_math_sigmoid(e, x);
  case OP_RELU: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUGT, x, zero, ""), x, zero, "");
  case OP_GELU: return llvm_math_gelu(e, x);
  case OP_SILU: return LLVMBuildFMul(b, x, llvm_math_sigmoid(e, x), "");
  case OP_POWC: {
    double c = n->attr.value;
    if (c == 1) return x;
    if (c == 0) return one;
    if (c == 2) return LLVMBuildFMul(b, x, x, "");
    if (c == 0.5) return un_intr(e, "llvm.sqrt", x);
    if (c == -1) return LLVMBuildFDiv(b, one, x, "");
    LLVMValueRef args[2] = {x, fconst(e, t, c)};
    return intrinsic(e, "llvm.pow", &t, 1, args, 2);
  }
  case OP_CAST: return n->type.dt == DT_I32 ? un_intr(e, "llvm.trunc", x) : x;
  case OP_ADD: return LLVMBuildFAdd(b, x, y, "");
  case OP_SUB: return LLVMBuildFSub(b, x, y, "");
  case OP_MUL: return LLVMBuildFMul(b, x, y, "");
  case OP_DIV: return LLVMBuildFDiv(b, x, y, "");
  case OP_LT: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, y, ""), one, zero, "");
  case OP_LE: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLE, x, y, ""), one, zero, "");
  case OP_GT: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, y, ""), one, zero, "");
  case OP_GE: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x, y, ""), one, zero, "");
  case OP_EQ: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, x, y, ""), one, zero, "");
  case OP_NE: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNE, x, y, ""), one, zero, "");
  case OP_WHERE: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNE, x, zero, ""), y, a[2], "");
  case OP_RELU_BWD: return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, y, zero, ""), x, zero, "");
  case OP_GELU_BWD: {
    LLVMValueRef pdf = llvm_math_exp(e, LLVMBuildFMul(b, LLVMBuildFMul(b, y, y, ""), fconst(e, t, -0.5), ""));
    pdf = LLVMBuildFMul(b, pdf, fconst(e, t, 0.39894228040143268), "");
    LLVMValueRef d = LLVMBuildFAdd(b, llvm_math_phi(e, y), LLVMBuildFMul(b, y, pdf, ""), "");
    return LLVMBuildFMul(b, x, d, "");
  }
  case OP_SILU_BWD: {
    LLVMValueRef s = llvm_math_sigmoid(e, y);
    LLVMValueRef d = LLVMBuildFAdd(b, one, LLVMBuildFMul(b, y, LLVMBuildFSub(b, one, s, ""), ""), "");
    return LLVMBuildFMul(b, LLVMBuildFMul(b, x, s, ""), d, "");
  }
  case OP_SIGMOID_BWD:
    return LLVMBuildFMul(b, LLVMBuildFMul(b, x, y, ""), LLVMBuildFSub(b, one, y, ""), "");
  case OP_TANH_BWD: return LLVMBuildFMul(b, x, LLVMBuildFSub(b, one, LLVMBuildFMul(b, y, y, ""), ""), "");
  case OP_BROADCAST: return x;
  default: return NULL; /* not elementwise here: lower_ew reports it */
  }
}

/* emits loads, member values and stores for `width` elements at inner index j of a row
 * whose per-slot base offsets (elements) are in base[] and output offset is obase */
static void ew_body(CgEmit *e, EwPlan *w, LLVMValueRef *base, LLVMValueRef obase,
                    LLVMValueRef j, int width) {
  const CgKernel *k = w->k;
  LLVMTypeRef ft = width > 1 ? LLVMVectorType(e->f32, (unsigned)width) : e->f32;
  LLVMTypeRef it = width > 1 ? LLVMVectorType(e->i32, (unsigned)width) : e->i32;
  /* every load before any store: an in-place ASSIGN may overwrite an operand */
  LLVMValueRef *sv = xmalloc((size_t)(w->nslots ? w->nslots : 1) * sizeof *sv);
  for (int s = 0; s < w->nslots; s++) {
    EwSlot *sl = &w->slots[s];
    LLVMValueRef p0 = cg_ptr(e, sl->node);
    bool inner = w->slots[s].st[w->rank - 1] != 0;
    LLVMValueRef off = inner ? add(e, base[s], j) : base[s];
    LLVMTypeRef et = sl->is_i32 ? e->i32 : e->f32;
    LLVMValueRef p = LLVMBuildGEP2(e->b, et, p0, &off, 1, "");
    LLVMValueRef v;
    if (inner && width > 1) {
      v = LLVMBuildLoad2(e->b, sl->is_i32 ? it : ft, p, "");
      LLVMSetAlignment(v, 4);
      if (sl->is_i32) v = LLVMBuildSIToFP(e->b, v, ft, "");
    } else {
      v = LLVMBuildLoad2(e->b, et, p, "");
      LLVMSetAlignment(v, 4);
      if (sl->is_i32) v = LLVMBuildSIToFP(e->b, v, e->f32, "");
      if (width > 1) v = splat(e, v, width);
    }
    sv[s] = v;
  }
  for (int m = 0; m < k->nmembers; m++) {
    int id = k->members[m];
    const IrNode *n = node(e, id);
    LLVMValueRef args[IR_MAX_IN] = {0};
    int first = n->op == OP_ASSIGN ? 1 : 0;
    for (int jn = first; jn < n->nin && jn - first < IR_MAX_IN; jn++) {
      int o = n->in[jn];
      LLVMValueRef v = NULL;
      if (e->p->kof[o] == e->p->kof[id] && w->vals[o]) v = w->vals[o];
      else if (ir_is_fill(node(e, val(e, o)->root))) v = fconst(e, ft, (float)node(e, val(e, o)->root)->attr.value);
      else
        for (int s = 0; s < w->nslots; s++)
          if (w->slots[s].node == o) v = sv[s];
      args[jn - first] = v ? v : fconst(e, ft, 0);
    }
    LLVMValueRef r = n->op == OP_ASSIGN ? args[0] : ew_expr(e, n, args);
    if (!r) w->bad = id, r = args[0];
    w->vals[id] = r;
  }
  for (int m = 0; m < k->nmembers; m++) {
    int id = k->members[m];
    const CgVal *v = val(e, id);
    if (!v->stored || v->region == CG_REGION_NONE) continue;
    bool i32 = node(e, id)->type.dt == DT_I32;
    LLVMValueRef x = w->vals[id];
    if (i32) x = LLVMBuildFPToSI(e->b, x, it, "");
    LLVMValueRef off = add(e, obase, j);
    LLVMValueRef p = LLVMBuildGEP2(e->b, i32 ? e->i32 : e->f32, cg_ptr(e, id), &off, 1, "");
    LLVMSetAlignment(LLVMBuildStore(e->b, x, p), 4);
  }
  free(sv);
}

static void ew_task(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  (void)k;
  EwPlan *w = arg;
  LLVMValueRef N = cg_c64(e, w->numel), L = cg_c64(e, w->L);
  LLVMValueRef lo = LLVMBuildSDiv(e->b, mul(e, t, N), nt, "");
  LLVMValueRef hi = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), N), nt, "");
  LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "work");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "done");
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, lo, hi, ""), work, done);
  LLVMPositionBuilderAtEnd(e->b, work);
  LLVMValueRef r0 = LLVMBuildSDiv(e->b, lo, L, "");
  LLVMValueRef r1 = add(e, LLVMBuildSDiv(e->b, LLVMBuildSub(e->b, hi, cg_c64(e, 1), ""), L, ""), cg_c64(e, 1));
  Loop lr;
  loop_begin(e, &lr, r0, r1, 1);
  LLVMValueRef rowoff = mul(e, lr.iv, L);
  LLVMValueRef j0 = smax(e, LLVMBuildSub(e->b, lo, rowoff, ""), cg_c64(e, 0));
  LLVMValueRef j1 = smin(e, LLVMBuildSub(e->b, hi, rowoff, ""), L);
  /* per-slot base offsets from the row's multi-index over the outer dims */
  LLVMValueRef *base = xmalloc((size_t)(w->nslots ? w->nslots : 1) * sizeof *base);
  for (int s = 0; s < w->nslots; s++) base[s] = cg_c64(e, 0);
  LLVMValueRef rem = lr.iv;
  for (int d = w->rank - 2; d >= 0; d--) {
    LLVMValueRef D = cg_c64(e, w->dims[d]);
    LLVMValueRef idx = d > 0 ? LLVMBuildSRem(e->b, rem, D, "") : rem;
    if (d > 0) rem = LLVMBuildSDiv(e->b, rem, D, "");
    for (int s = 0; s < w->nslots; s++)
      if (w->slots[s].st[d]) base[s] = add(e, base[s], mul(e, idx, cg_c64(e, w->slots[s].st[d])));
  }
  /* vector part, then scalar tail */
  LLVMValueRef jv = add(e, j0, LLVMBuildAnd(e->b, LLVMBuildSub(e->b, j1, j0, ""), cg_c64(e, ~(int64_t)(e->vl - 1)), ""));
  Loop lv;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  (void)pre;
  loop_begin(e, &lv, j0, jv, e->vl);
  ew_body(e, w, base, rowoff, lv.iv, e->vl);
  loop_end(e, &lv);
  Loop ls;
  loop_begin(e, &ls, jv, j1, 1);
  ew_body(e, w, base, rowoff, ls.iv, 1);
  loop_end(e, &ls);
  loop_end(e, &lr);
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
  free(base);
}

/* the operands a group reads from memory, with their broadcast strides against the
 * iteration shape dims[rank]; -1 after a diagnostic when one does not broadcast */
static int ew_slots(CgEmit *e, const CgKernel *k, EwPlan *w, const int64_t *dims, int rank) {
  const CgPlan *p = e->p;
  for (int m = 0; m < k->nmembers; m++) {
    const IrNode *n = node(e, k->members[m]);
    for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
      int o = n->in[j];
      if (p->kof[o] == p->kof[k->members[m]] || ir_is_fill(node(e, p->v[o].root))) continue;
      bool dup = false;
      for (int s = 0; s < w->nslots; s++) dup |= w->slots[s].node == o;
      if (dup) continue;
      EwSlot *sl = &w->slots[w->nslots++];
      sl->node = o;
      sl->is_i32 = node(e, o)->type.dt == DT_I32;
      const CgVal *ov = &p->v[o];
      int64_t acc = 1;
      for (int d = rank - 1, od = ov->rank - 1; d >= 0; d--, od--) {
        int64_t sz = od >= 0 ? ov->shape[od] : 1;
        sl->st[d] = (od >= 0 && sz == dims[d]) ? acc : 0;
        if (od >= 0 && sz != dims[d] && sz != 1) {
          diag_error(e->d, n->loc, "code generation: %%%d: operand %%%d does not broadcast",
                     k->members[m], o);
          return -1;
        }
        acc *= sz;
      }
    }
  }
  return 0;
}

/* collapse dims that every operand walks contiguously (or all repeat) into w->dims */
static void ew_collapse(EwPlan *w, const int64_t *dims, int rank) {
  int64_t cd[IR_MAX_RANK + 1];
  int crank = 0;
  int64_t(*cst)[IR_MAX_RANK] = xcalloc((size_t)w->nslots + 1, sizeof *cst);
  for (int d = 0; d < rank; d++) {
    bool merge = crank > 0;
    for (int s = 0; merge && s < w->nslots; s++)
      merge = cst[s][crank - 1] == w->slots[s].st[d] * dims[d];
    if (merge) {
      cd[crank - 1] *= dims[d];
      for (int s = 0; s < w->nslots; s++) cst[s][crank - 1] = w->slots[s].st[d];
    } else {
      cd[crank] = dims[d];
      for (int s = 0; s < w->nslots; s++) cst[s][crank] = w->slots[s].st[d];
      crank++;
    }
  }
  if (crank == 0) {
    cd[0] = 1;
    for (int s = 0; s < w->nslots; s++) cst[s][0] = 0;
    crank = 1;
  }
  w->rank = crank;
  for (int d = 0; d < crank; d++) w->dims[d] = cd[d];
  for (int s = 0; s < w->nslots; s++)
    for (int d = 0; d < crank; d++) w->slots[s].st[d] = cst[s][d];
  w->L = cd[crank - 1];
  free(cst);
}

static int lower_ew(CgEmit *e, const CgKernel *k) {
  const CgPlan *p = e->p;
  const CgVal *sv = &p->v[k->members[k->nmembers - 1]];
  EwPlan w = {.k = k, .numel = sv->numel, .bad = -1};
  if (w.numel == 0) return 0;
  w.slots = xcalloc((size_t)k->nmembers * IR_MAX_IN + 1, sizeof(EwSlot));
  w.vals = xcalloc((size_t)p->g->nnodes, sizeof(LLVMValueRef));
  int rc = ew_slots(e, k, &w, sv->shape, sv->rank);
  if (!rc) {
    ew_collapse(&w, sv->shape, sv->rank);
    int64_t maxt = w.numel / 16384 + 1;
    if (maxt > 1) {
      run_tasks(e, k, maxt, ew_task, &w);
    } else { /* one task inline */
      LLVMValueRef sfn = e->fn;
      ew_task(e, k, &w, cg_c64(e, 0), cg_c64(e, 1));
      e->fn = sfn;
    }
  }
  if (!rc && w.bad >= 0) {
    diag_error(e->d, node(e, w.bad)->loc, "code generation: no elementwise lowering for op %s",
               ir_op_name(node(e, w.bad)->op));
    rc = -1;
  }
  free(w.slots);
  free(w.vals);
  return rc;
}

/* ---- the elementwise group fused after a GEMM/CONV epilogue (CgKernel.nepi) ------------- */

/* where the value x of the group's base lies: the output address of its first element, its
 * output channel (convolutions) or column (matmuls), the lanes of an edge (NULL: all) and,
 * per cg_epi_operands entry, the byte distance of a FULL operand from the output (i64) or
 * the address of another */
typedef struct EpiAt {
  LLVMValueRef yp, ch, mask;
  LLVMValueRef opv[CG_EPI_MAX_IN];
} EpiAt;

/* x's elements (or one value, splat) of operand o */
static LLVMValueRef epi_load(CgEmit *e, const CgEpiOperand *o, LLVMValueRef opv, LLVMTypeRef t,
                             const EpiAt *at) {
  bool vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
  LLVMValueRef p = opv;
  if (o->kind == CG_EPI_FULL)
    p = LLVMBuildIntToPtr(e->b, add(e, LLVMBuildPtrToInt(e->b, at->yp, e->i64, ""), opv), e->ptr, "");
  else if (o->kind != CG_EPI_SCALAR)
    p = gep8(e, opv, mul(e, at->ch, cg_c64(e, 4)));
  bool lanes = vec && (o->kind == CG_EPI_FULL || o->kind == CG_EPI_COL);
  if (lanes && at->mask) {
    LLVMTypeRef over[2] = {t, e->ptr};
    LLVMValueRef args[4] = {p, c32(e, 4), at->mask, LLVMConstNull(t)};
    return intrinsic(e, "llvm.masked.load", over, 2, args, 4);
  }
  LLVMValueRef v = LLVMBuildLoad2(e->b, lanes ? t : e->f32, p, "");
  LLVMSetAlignment(v, 4);
  return vec && !lanes ? splat(e, v, (int)LLVMGetVectorSize(t)) : v;
}

/* the group's value at x (its base's); a member ew_expr has no lowering for goes to *bad */
static LLVMValueRef epi_eval(CgEmit *e, const CgKernel *k, LLVMValueRef x, const EpiAt *at,
                             int *bad) {
  CgEpiOperand ops[CG_EPI_MAX_IN];
  int nops = cg_epi_operands(e->p, k, ops);
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef ov[CG_EPI_MAX_IN], vals[CG_EPI_MAX + 1] = {x};
  int ids[CG_EPI_MAX + 1] = {k->epi_base}, nv = 1;
  for (int s = 0; s < nops; s++) ov[s] = epi_load(e, &ops[s], at->opv[s], t, at);
  for (int m = k->epi_first; m < k->epi_first + k->nepi && nv <= CG_EPI_MAX; m++) {
    const IrNode *n = node(e, k->members[m]);
    LLVMValueRef args[IR_MAX_IN] = {0};
    for (int j = 0; j < n->nin && j < IR_MAX_IN; j++) {
      int o = n->in[j], r = val(e, o)->root;
      for (int q = 0; q < nv; q++)
        if (ids[q] == o) args[j] = vals[q];
      for (int s = 0; !args[j] && s < nops; s++)
        if (ops[s].node == o) args[j] = ov[s];
      if (!args[j] && ir_is_fill(node(e, r))) args[j] = fconst(e, t, (float)node(e, r)->attr.value);
      if (!args[j]) args[j] = fconst(e, t, 0), *bad = k->members[m];
    }
    LLVMValueRef r = ew_expr(e, n, args);
    if (!r) *bad = k->members[m], r = args[0];
    ids[nv] = k->members[m];
    vals[nv++] = r;
  }
  return vals[nv - 1];
}

/* the operands' words of EpiAt.opv for output y, in the current function */
static void epi_opv(CgEmit *e, const CgKernel *k, LLVMValueRef *opv) {
  CgEpiOperand ops[CG_EPI_MAX_IN];
  int nops = cg_epi_operands(e->p, k, ops);
  LLVMValueRef y = LLVMBuildPtrToInt(e->b, cg_ptr(e, k->out), e->i64, "");
  for (int s = 0; s < nops; s++) {
    LLVMValueRef p = cg_ptr(e, ops[s].node);
    opv[s] = ops[s].kind == CG_EPI_FULL
                 ? LLVMBuildSub(e->b, LLVMBuildPtrToInt(e->b, p, e->i64, ""), y, "") : p;
  }
}

/* x (a value or a vector along the output's last dim) through k's group when it has one:
 * for kernels that store their output themselves (depthwise, transposed write-back) */
static LLVMValueRef epi_direct(CgEmit *e, const CgKernel *k, LLVMValueRef x, LLVMValueRef yp,
                               LLVMValueRef ch, LLVMValueRef mask) {
  if (!k->nepi) return x;
  EpiAt at = {.yp = yp, .ch = ch, .mask = mask};
  epi_opv(e, k, at.opv);
  return epi_eval(e, k, x, &at, &e->epi_bad);
}

/* one vector (the first of the lanes `ok` selects, NULL: all) at byte offset off of src
 * through k's group to yp + off; unmasked where whole (masked stores are slow on Zen 4) */
static void epi_vec(CgEmit *e, const CgKernel *k, LLVMValueRef src, LLVMValueRef yp,
                    LLVMValueRef ch, LLVMValueRef off, LLVMValueRef ok) {
  LLVMValueRef p = gep8(e, yp, off), q = gep8(e, src, off), v;
  LLVMTypeRef over[2] = {e->vf, e->ptr};
  if (ok) {
    LLVMValueRef largs[4] = {q, c32(e, 4), ok, LLVMConstNull(e->vf)};
    v = epi_direct(e, k, intrinsic(e, "llvm.masked.load", over, 2, largs, 4), p, ch, ok);
    LLVMValueRef sargs[4] = {v, p, c32(e, 4), ok};
    intrinsic(e, "llvm.masked.store", over, 2, sargs, 4);
    return;
  }
  v = LLVMBuildLoad2(e->b, e->vf, q, "");
  LLVMSetAlignment(v, 4);
  LLVMSetAlignment(LLVMBuildStore(e->b, epi_direct(e, k, v, p, ch, NULL), p), 4);
}

/* n values of channel ch from src to the output at yp through k's group (whole vectors,
 * then the rest masked) */
static void epi_row(CgEmit *e, const CgKernel *k, LLVMValueRef src, LLVMValueRef yp,
                    LLVMValueRef ch, LLVMValueRef n) {
  int vl = e->vl;
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < vl; l++) lanes_c[l] = cg_c64(e, l);
  LLVMValueRef nv = LLVMBuildAnd(e->b, n, cg_c64(e, -(int64_t)vl), "");
  Loop lw;
  loop_begin(e, &lw, cg_c64(e, 0), nv, vl);
  epi_vec(e, k, src, yp, ch, mul(e, lw.iv, cg_c64(e, 4)), NULL);
  loop_end(e, &lw);
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, nv, vl),
                                  LLVMConstVector(lanes_c, (unsigned)vl)), splat(e, n, vl), "");
  LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "epitail"),
                    done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "epirow");
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, nv, n, ""), tail, done);
  LLVMPositionBuilderAtEnd(e->b, tail);
  epi_vec(e, k, src, yp, ch, mul(e, nv, cg_c64(e, 4)), ok);
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
}

/* the GEMM generator's hook (LlvmGemmEpi): ectx holds the bias pointer, then the opv words */
typedef struct EpiHook {
  CgEmit *e;
  const CgKernel *k;
  bool conv; /* channels are C's rows; else operands per column */
} EpiHook;

static LLVMValueRef epi_hook(void *ctx, LLVMBuilderRef b, LLVMValueRef fn, LLVMValueRef x,
                             LLVMValueRef cptr, LLVMValueRef row, LLVMValueRef col,
                             LLVMValueRef mask, LLVMValueRef ectx) {
  EpiHook *h = ctx;
  CgEmit sub = *h->e;
  sub.b = b;
  sub.fn = fn;
  CgEpiOperand ops[CG_EPI_MAX_IN];
  int nops = cg_epi_operands(sub.p, h->k, ops);
  EpiAt at = {.yp = cptr, .ch = h->conv ? row : col, .mask = mask};
  for (int s = 0; s < nops; s++) {
    LLVMValueRef w = LLVMBuildLoad2(b, sub.i64, gep8(&sub, ectx, cg_c64(&sub, 8 * (s + 1))), "");
    at.opv[s] = ops[s].kind == CG_EPI_FULL ? w : LLVMBuildIntToPtr(b, w, sub.ptr, "");
  }
  return epi_eval(&sub, h->k, x, &at, &h->e->epi_bad);
}

/* the structure of k's group (ops, operand kinds, fills) as the GEMM's key */
static void epi_key(CgEmit *e, const CgKernel *k, char *buf, size_t len) {
  CgEpiOperand ops[CG_EPI_MAX_IN];
  int nops = cg_epi_operands(e->p, k, ops);
  size_t at = 0;
  buf[0] = 0;
  for (int m = k->epi_first; m < k->epi_first + k->nepi && at < len; m++) {
    const IrNode *n = node(e, k->members[m]);
    at += (size_t)snprintf(buf + at, len - at, "%d(", (int)n->op);
    for (int j = 0; j < n->nin && at < len; j++) {
      int o = n->in[j], r = val(e, o)->root, q = -1;
      for (int s = 0; s < nops; s++)
        if (ops[s].node == o) q = s;
      for (int i = k->epi_first; i < m; i++)
        if (k->members[i] == o) q = 100 + i - k->epi_first;
      if (o == k->epi_base) at += (size_t)snprintf(buf + at, len - at, "b,");
      else if (q >= 100) at += (size_t)snprintf(buf + at, len - at, "m%d,", q - 100);
      else if (q >= 0) at += (size_t)snprintf(buf + at, len - at, "s%d%d,", q, (int)ops[q].kind);
      else if (ir_is_fill(node(e, r)))
        at += (size_t)snprintf(buf + at, len - at, "f%a,", (double)(float)node(e, r)->attr.value);
    }
    if (at < len) at += (size_t)snprintf(buf + at, len - at, ")");
  }
}

/* the ectx of k's GEMM call with bias pointer bias (NULL: none) */
static LLVMValueRef epi_ctx(CgEmit *e, const CgKernel *k, LLVMValueRef bias) {
  LLVMValueRef a = entry_alloca(e, LLVMArrayType(e->i64, CG_EPI_MAX_IN + 1), "ectx");
  LLVMValueRef opv[CG_EPI_MAX_IN];
  CgEpiOperand ops[CG_EPI_MAX_IN];
  int nops = cg_epi_operands(e->p, k, ops);
  epi_opv(e, k, opv);
  LLVMValueRef b0 = bias ? LLVMBuildPtrToInt(e->b, bias, e->i64, "") : cg_c64(e, 0);
  LLVMBuildStore(e->b, b0, a);
  for (int s = 0; s < nops; s++) {
    LLVMValueRef w = ops[s].kind == CG_EPI_FULL ? opv[s] : LLVMBuildPtrToInt(e->b, opv[s], e->i64, "");
    LLVMBuildStore(e->b, w, gep8(e, a, cg_c64(e, 8 * (s + 1))));
  }
  return a;
}

/* ---- GEMM ------------------------------------------------------------------------------ */

static LLVMValueRef gemm_fn(CgEmit *e, const LlvmGemmSpec *spec) {
  LlvmGemmSpec s = *spec;
  const LlvmGemmSpec *sp = &s;
  s.prec = e->bf16 ? LLVM_GEMM_BF16 : LLVM_GEMM_F32;
  char key[sizeof e->gemms[0].key];
  int kn = snprintf(key, sizeof key, "p%d_k%d_t%d%d_a%d_b%d_r%d_n%d_%lld_%lld_%lld_%lld_%lld", (int)sp->prec,
                    (int)sp->packed, sp->trans_a, sp->trans_b, sp->accumulate, (int)sp->bias, sp->relu,
                    sp->nt_store, (long long)sp->blk.mr,
                    (long long)sp->blk.nr, (long long)sp->blk.kc, (long long)sp->blk.mc,
                    (long long)sp->blk.nc);
  const LlvmGemmConv *cv = &sp->conv;
  if (cv->on && kn > 0 && (size_t)kn < sizeof key)
    kn += snprintf(key + kn, sizeof key - (size_t)kn, "_c%lld_%lld_%lld_%lld_%lld_%lld_%lld_%lld_%lld_%lld_%lld_%lld_%lld_n%lld_%lld",
                   (long long)cv->C, (long long)cv->H, (long long)cv->W, (long long)cv->KH,
                   (long long)cv->KW, (long long)cv->OH, (long long)cv->OW, (long long)cv->sh,
                   (long long)cv->sw, (long long)cv->ph, (long long)cv->pw, (long long)cv->dh,
                   (long long)cv->dw, (long long)cv->images, (long long)cv->xs);
  if (sp->epi && kn > 0 && (size_t)kn < sizeof key)
    kn += snprintf(key + kn, sizeof key - (size_t)kn, "_e%s", sp->epi->key);
  if (kn < 0 || (size_t)kn >= sizeof key) {
    diag_error(e->d, e->p->g->loc, "code generation: GEMM key too long");
    return NULL;
  }
  for (int i = 0; i < e->ngemm; i++)
    if (!strcmp(e->gemms[i].key, key)) {
      e->gemm_blk = e->gemms[i].blk;
      return e->gemms[i].fn;
    }
  char nm[220];
  snprintf(nm, sizeof nm, "%s.gemm%d", e->prefix, e->ngemm);
  char err[256] = "";
  LLVMValueRef f = llvm_gemm_emit(e->mod, sp, e->ti, nm, &e->gemm_blk, err, sizeof err);
  if (!f) {
    diag_error(e->d, e->p->g->loc, "code generation: GEMM generator: %s", err);
    return NULL;
  }
  LLVMSetLinkage(f, LLVMInternalLinkage);
  if (e->ngemm == e->capgemm) {
    e->capgemm = e->capgemm ? 2 * e->capgemm : 16;
    e->gemms = xrealloc(e->gemms, (size_t)e->capgemm * sizeof *e->gemms);
  }
  snprintf(e->gemms[e->ngemm].key, sizeof e->gemms[e->ngemm].key, "%s", key);
  e->gemms[e->ngemm].blk = e->gemm_blk;
  e->gemms[e->ngemm++].fn = f;
  return f;
}

/* blocking from the node's tile decision: the decision vectorizes its m side and llvm_gemm
 * its N side, so the register tile is read transposed; `swap` also exchanges the M/N cache
 * blocks (convolutions, whose GEMM here is the transpose of the implicit-GEMM view). A
 * transposed convolution's decision (conv_t) and a few-row matmul's (mm_t) vectorize their
 * n side, as the GEMM here does. */
static void gemm_blocking(CgEmit *e, const TileDecision *t, bool swap, LlvmGemmBlocking *blk) {
  memset(blk, 0, sizeof *blk);
  if (!t) return;
  const TileDecision d = *t;
  if (d.mr <= 0 || d.nr <= 0) return;
  if (d.conv_t || d.mm_t) {
    *blk = (LlvmGemmBlocking){.mr = d.mr > 32 ? 32 : d.mr, .nr = d.nr > 8 * e->vl ? 8 * e->vl : d.nr,
                              .kc = d.kc, .mc = d.mc, .nc = d.nc};
    return;
  }
  blk->mr = d.nr > 32 ? 32 : d.nr;
  blk->nr = d.mr > 8 * e->vl ? 8 * e->vl : d.mr;
  blk->kc = d.kc;
  blk->mc = swap ? d.nc : d.mc;
  blk->nc = swap ? d.mc : d.nc;
}

static void rt_call(CgEmit *e, const char *name, const char *sig, LLVMValueRef *args);

/* The panels of k's constant operand (CgKernel.packed) for the GEMM function f: packed by
 * f's prepack on the first call after the runtime cleared the kernel's flag, from src (per
 * group: rows x k->packed_k, leading dimension ld, groups gstride bytes apart), then reused.
 * Each group's panels are k->packed_rpad · packed_k floats; NULL after a diagnostic. With
 * wino_w (a Winograd convolution's filter), src is first filled with its transform. */
static LLVMValueRef packed_operand(CgEmit *e, const CgKernel *k, LLVMValueRef f, LLVMValueRef src,
                                   int64_t ld, int64_t rows, int64_t gstride, int64_t w,
                                   LLVMValueRef wino_w) {
  size_t len = 0;
  LLVMValueRef pf = llvm_gemm_prepack_fn(e->mod, LLVMGetValueName2(f, &len));
  if (!pf || (rows + w - 1) / w * w > k->packed_rpad) {
    diag_error(e->d, node(e, k->node)->loc, "internal error: packed operand of %lld rows in %lld",
               (long long)rows, (long long)k->packed_rpad);
    return NULL;
  }
  LLVMValueRef dst = cg_region_ptr(e, CG_REGION_ARENA, k->packed_offset);
  LLVMValueRef flag = cg_region_ptr(e, CG_REGION_ARENA, k->packed_flag);
  LLVMBasicBlockRef pack = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "pack"),
                    done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "packed");
  LLVMValueRef stale = LLVMBuildICmp(e->b, LLVMIntEQ, LLVMBuildLoad2(e->b, e->i64, flag, ""),
                                     cg_c64(e, 0), "");
  LLVMBuildCondBr(e->b, stale, pack, done);
  LLVMPositionBuilderAtEnd(e->b, pack);
  if (wino_w) {
    LLVMValueRef a[4] = {wino_w, src, cg_c64(e, rows), cg_c64(e, k->packed_k)};
    rt_call(e, "rt_k_wino_filter", "ppll", a);
  }
  int64_t gbytes = k->packed_rpad * k->packed_k * 4;
  Loop lg;
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, k->packed_groups), 1);
  LLVMValueRef args[6] = {gep8(e, dst, mul(e, lg.iv, cg_c64(e, gbytes))),
                          gep8(e, src, mul(e, lg.iv, cg_c64(e, gstride))), cg_c64(e, ld),
                          cg_c64(e, rows), cg_c64(e, k->packed_k), cg_c64(e, k->packed_rpad)};
  call(e, pf, args, 6);
  loop_end(e, &lg);
  LLVMBuildStore(e->b, cg_c64(e, 1), flag);
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
  return dst;
}

static void gemm_call(CgEmit *e, LLVMValueRef f, int64_t M, int64_t N, int64_t K, LLVMValueRef A,
                      int64_t lda, LLVMValueRef B, int64_t ldb, LLVMValueRef C, int64_t ldc,
                      LLVMValueRef bias) {
  int64_t pack = llvm_gemm_pack_bytes(&e->gemm_blk, M, N, K);
  if (pack > e->pack_bytes) e->pack_bytes = pack;
  LLVMValueRef args[11] = {cg_c64(e, M), cg_c64(e, N), cg_c64(e, K), A, cg_c64(e, lda), B,
                           cg_c64(e, ldb), C, cg_c64(e, ldc),
                           bias ? bias : LLVMConstPointerNull(e->ptr), e->pool};
  call(e, f, args, 11);
}

/* a matmul the tiles pass marked stream_b: the runtime's unpacked small-M product */
static void gemv_call(CgEmit *e, const CgKernel *k, bool tb, LLVMValueRef M, int64_t N, int64_t K,
                      LLVMValueRef A, int64_t lda, LLVMValueRef B, int64_t ldb, LLVMValueRef C,
                      int64_t ldc, LLVMValueRef bias) {
  LLVMValueRef a[13] = {e->pool, M, cg_c64(e, N), cg_c64(e, K), A, cg_c64(e, lda), B,
                        cg_c64(e, ldb), C, cg_c64(e, ldc), bias ? bias : LLVMConstPointerNull(e->ptr),
                        c32(e, tb), c32(e, k->relu)};
  rt_call(e, "rt_k_gemv", "plllplplplpii", a);
}

/* a matmul the tiles pass marked stream_b, A not transposed: one product over the whole
 * matmul, nb batches folded into M (B without batch dims); false when B is batched and the
 * packed kernel's batch loop must run instead */
static bool lower_matmul_streamed(CgEmit *e, const CgKernel *k, bool tb, int64_t nb, int64_t M,
                                  int64_t N, int64_t K, int64_t lda, int64_t ldb) {
  const IrNode *n = node(e, k->node);
  const CgVal *va = val(e, n->in[0]), *vb = val(e, n->in[1]);
  if (nb > 1 && va->rank <= 2) return false;
  for (int d = 0; nb > 1 && d < vb->rank - 2; d++)
    if (vb->shape[d] != 1) return false;
  LLVMValueRef bias = k->bias ? cg_ptr(e, k->bias_node) : NULL;
  gemv_call(e, k, tb, cg_c64(e, nb * M), N, K, cg_ptr(e, n->in[0]), lda, cg_ptr(e, n->in[1]), ldb,
            cg_ptr(e, k->out), N, bias);
  return true;
}

static int lower_matmul(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *va = val(e, n->in[0]), *vb = val(e, n->in[1]), *vo = val(e, k->out);
  bool ta = n->attr.trans_a && va->rank >= 2, tb = n->attr.trans_b && vb->rank >= 2;
  int64_t M, N, K, lda, ldb;
  if (va->rank == 1) M = 1, K = va->shape[0], lda = K;
  else {
    int64_t r = va->shape[va->rank - 2], c = va->shape[va->rank - 1];
    M = ta ? c : r, K = ta ? r : c, lda = c;
  }
  if (vb->rank == 1) N = 1, ldb = 1;
  else {
    int64_t r = vb->shape[vb->rank - 2], c = vb->shape[vb->rank - 1];
    N = tb ? r : c, ldb = c;
  }
  int brank = vo->rank - (va->rank > 1) - (vb->rank > 1);
  int64_t nb = 1;
  for (int d = 0; d < brank; d++) nb *= vo->shape[d];
  if (nb == 0 || M == 0 || N == 0) return 0;
  if (k->tile && k->tile->stream_b && !ta && lower_matmul_streamed(e, k, tb, nb, M, N, K, lda, ldb))
    return 0;
  LlvmGemmSpec sp = {.trans_a = ta, .trans_b = tb, .bias = k->bias ? LLVM_GEMM_BIAS_COL : LLVM_GEMM_BIAS_NONE,
                     .relu = k->relu, .packed = k->packed ? LLVM_GEMM_PACKED_B : LLVM_GEMM_PACKED_NONE};
  sp.target.opt_level = 0;
  char ekey[512];
  EpiHook hook = {e, k, false};
  LlvmGemmEpi epi = {epi_hook, &hook, ekey};
  if (k->nepi) epi_key(e, k, ekey, sizeof ekey), sp.epi = &epi;
  gemm_blocking(e, k->tile, false, &sp.blk);
  LLVMValueRef f = gemm_fn(e, &sp);
  if (!f) return -1;
  LLVMValueRef A = cg_ptr(e, n->in[0]), B = cg_ptr(e, n->in[1]), C = cg_ptr(e, k->out);
  if (k->packed) { /* B is a parameter matrix (plan_pack.c): its panels, rpad rows apart */
    if (!(B = packed_operand(e, k, f, B, ldb, N, 0, e->gemm_blk.nr, NULL))) return -1;
    ldb = k->packed_rpad;
  }
  LLVMValueRef bias = k->bias ? cg_ptr(e, k->bias_node) : NULL;
  if (k->nepi) bias = epi_ctx(e, k, bias); /* LlvmGemmEpi's ectx in bias's place */
  int abr = va->rank - 2, bbr = vb->rank - 2;
  bool b_batched = false;
  for (int d = 0; d < bbr; d++) b_batched |= vb->shape[d] != 1;
  if (nb > 1 && !b_batched && !ta && va->rank > 2) { /* the batch folds into M */
    gemm_call(e, f, nb * M, N, K, A, lda, B, ldb, C, N, bias);
    return 0;
  }
  if (nb == 1) {
    gemm_call(e, f, M, N, K, A, lda, B, ldb, C, N, bias);
    return 0;
  }
  /* operand offsets (bytes) per batch index, numpy broadcasting over the batch dims */
  int64_t *ao = xmalloc((size_t)nb * sizeof(int64_t)), *bo = xmalloc((size_t)nb * sizeof(int64_t));
  int64_t idx[IR_MAX_RANK] = {0};
  for (int64_t bi = 0; bi < nb; bi++) {
    int64_t oa = 0, ob = 0, sa = 1, sb = 1;
    for (int d = brank - 1, da = abr - 1, db = bbr - 1; d >= 0; d--, da--, db--) {
      if (da >= 0) {
        if (va->shape[da] != 1) oa += idx[d] * sa;
        sa *= va->shape[da];
      }
      if (db >= 0) {
        if (vb->shape[db] != 1) ob += idx[d] * sb;
        sb *= vb->shape[db];
      }
    }
    ao[bi] = oa * M * K * 4;
    bo[bi] = ob * K * N * 4;
    for (int d = brank - 1; d >= 0; d--) {
      if (++idx[d] < vo->shape[d]) break;
      idx[d] = 0;
    }
  }
  LLVMValueRef ta_ = const_table(e, ao, (int)nb), tb_ = const_table(e, bo, (int)nb);
  free(ao);
  free(bo);
  Loop l;
  loop_begin(e, &l, cg_c64(e, 0), cg_c64(e, nb), 1);
  LLVMValueRef Ab = gep8(e, A, load_i64_at(e, ta_, l.iv));
  LLVMValueRef Bb = gep8(e, B, load_i64_at(e, tb_, l.iv));
  LLVMValueRef Cb = gep8(e, C, mul(e, l.iv, cg_c64(e, M * N * 4)));
  LLVMValueRef args[11] = {cg_c64(e, M), cg_c64(e, N), cg_c64(e, K), Ab, cg_c64(e, lda), Bb,
                           cg_c64(e, ldb), Cb, cg_c64(e, N),
                           bias ? bias : LLVMConstPointerNull(e->ptr), e->pool};
  call(e, f, args, 11);
  loop_end(e, &l);
  return 0;
}

/* ---- convolution ----------------------------------------------------------------------- */

/* im2col (to_col) or col2im-accumulate (!to_col) between channels [c0, c1) of one
 * image-group x[Cg,H,W] and col[K,P], rows of col in (c, kh, kw) order */
static void emit_im2col(CgEmit *e, const CgConv *c, LLVMValueRef x, LLVMValueRef col, int64_t ld,
                        bool to_col, LLVMValueRef c0, LLVMValueRef c1) {
  Loop lc, lkh, lkw, loh, low;
  loop_begin(e, &lc, c0, c1, 1);
  loop_begin(e, &lkh, cg_c64(e, 0), cg_c64(e, c->KH), 1);
  loop_begin(e, &lkw, cg_c64(e, 0), cg_c64(e, c->KW), 1);
  LLVMValueRef row = add(e, mul(e, add(e, mul(e, lc.iv, cg_c64(e, c->KH)), lkh.iv), cg_c64(e, c->KW)), lkw.iv);
  LLVMValueRef colrow = mul(e, row, cg_c64(e, ld));
  loop_begin(e, &loh, cg_c64(e, 0), cg_c64(e, c->OH), 1);
  LLVMValueRef ih = add(e, LLVMBuildSub(e->b, mul(e, loh.iv, cg_c64(e, c->sh)), cg_c64(e, c->ph), ""),
                        mul(e, lkh.iv, cg_c64(e, c->dh)));
  LLVMValueRef hok = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, ih, cg_c64(e, 0), ""),
                                  LLVMBuildICmp(e->b, LLVMIntSLT, ih, cg_c64(e, c->H), ""), "");
  LLVMValueRef xrow = mul(e, add(e, mul(e, lc.iv, cg_c64(e, c->H)), ih), cg_c64(e, c->W));
  loop_begin(e, &low, cg_c64(e, 0), cg_c64(e, c->OW), 1);
  LLVMValueRef iw = add(e, LLVMBuildSub(e->b, mul(e, low.iv, cg_c64(e, c->sw)), cg_c64(e, c->pw), ""),
                        mul(e, lkw.iv, cg_c64(e, c->dw)));
  LLVMValueRef ok = LLVMBuildAnd(e->b, hok, LLVMBuildAnd(e->b,
                        LLVMBuildICmp(e->b, LLVMIntSGE, iw, cg_c64(e, 0), ""),
                        LLVMBuildICmp(e->b, LLVMIntSLT, iw, cg_c64(e, c->W), ""), ""), "");
  LLVMValueRef ci = add(e, colrow, add(e, mul(e, loh.iv, cg_c64(e, c->OW)), low.iv));
  LLVMValueRef cp = LLVMBuildGEP2(e->b, e->f32, col, &ci, 1, "");
  LLVMValueRef xi = LLVMBuildSelect(e->b, ok, add(e, xrow, iw), cg_c64(e, 0), "");
  LLVMValueRef xp = LLVMBuildGEP2(e->b, e->f32, x, &xi, 1, "");
  if (to_col) {
    LLVMValueRef v = LLVMBuildLoad2(e->b, e->f32, xp, "");
    LLVMBuildStore(e->b, LLVMBuildSelect(e->b, ok, v, LLVMConstReal(e->f32, 0), ""), cp);
  } else {
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "in");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "join");
    LLVMBuildCondBr(e->b, ok, yes, join);
    LLVMPositionBuilderAtEnd(e->b, yes);
    LLVMValueRef s = LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, e->f32, xp, ""),
                                   LLVMBuildLoad2(e->b, e->f32, cp, ""), "");
    LLVMBuildStore(e->b, s, xp);
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, join);
  }
  loop_end(e, &low);
  loop_end(e, &loh);
  loop_end(e, &lkw);
  loop_end(e, &lkh);
  loop_end(e, &lc);
}

/* one im2col/col2im of image n, group g, spread over the threads by input channel: the rows
 * of channel c are written by one task, and col2im's sums into channel c stay in one task,
 * in the serial order */
typedef struct ColTask {
  const CgConv *c;
  int xnode;         /* the image tensor: the conv's input, or the data gradient it writes */
  int64_t xs, xg;    /* image and group strides, bytes */
  bool to_col;
  bool batch;        /* col holds the P columns of every image side by side (CgConv.batch) */
  LLVMValueRef x[TASK_NX]; /* n, g in the task */
} ColTask;

static void col_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  ColTask *ct = arg;
  LLVMValueRef cg = cg_c64(e, ct->c->Cg);
  LLVMValueRef c0 = LLVMBuildSDiv(e->b, mul(e, t, cg), nt, "");
  LLVMValueRef c1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), cg), nt, "");
  LLVMValueRef off = add(e, mul(e, ct->x[0], cg_c64(e, ct->xs)), mul(e, ct->x[1], cg_c64(e, ct->xg)));
  LLVMValueRef xp = gep8(e, cg_ptr(e, ct->xnode), off);
  LLVMValueRef col = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  if (ct->batch) col = gep8(e, col, mul(e, ct->x[0], cg_c64(e, ct->c->P * 4)));
  emit_im2col(e, ct->c, xp, col, ct->batch ? ct->c->N * ct->c->P : ct->c->P, ct->to_col, c0, c1);
}

static void emit_im2col_par(CgEmit *e, const CgKernel *k, ColTask *ct, LLVMValueRef n, LLVMValueRef g) {
  const CgConv *c = ct->c;
  int64_t elems = c->K * c->P, maxt = elems / 32768 + 1;
  if (maxt > c->Cg) maxt = c->Cg;
  if (maxt <= 1) {
    ct->x[0] = n, ct->x[1] = g;
    col_body(e, k, ct, cg_c64(e, 0), cg_c64(e, 1));
    return;
  }
  LLVMValueRef x[TASK_NX] = {n, g};
  run_tasks_x(e, k, maxt, col_body, ct, x, ct->x);
}

/* ---- folded batchnorm ------------------------------------------------------------------- */

static LLVMValueRef ld_f64(CgEmit *e, LLVMValueRef p, LLVMValueRef off) {
  return LLVMBuildFPExt(e->b, LLVMBuildLoad2(e->b, e->f32, gep8(e, p, off), ""), e->f64, "");
}

/* the folded inference batchnorm of conv kernel k: per output channel, scale
 * gamma/sqrt(var + eps) and shift beta - mean·scale (in double, as rt_k_batchnorm computes),
 * stored as pairs after the im2col rows of the kernel's scratch; returns the table */
static LLVMValueRef bn_table(CgEmit *e, const CgKernel *k, const CgConv *c) {
  const IrNode *b = node(e, k->bn_node);
  int64_t colb = c->scratch;
  LLVMValueRef tab = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset + colb);
  LLVMValueRef gm = cg_ptr(e, b->in[1]), bt = cg_ptr(e, b->in[2]), mu = cg_ptr(e, b->in[3]),
               var = cg_ptr(e, b->in[4]);
  Loop l;
  loop_begin(e, &l, cg_c64(e, 0), cg_c64(e, c->O), 1);
  LLVMValueRef off = mul(e, l.iv, cg_c64(e, 4));
  LLVMValueRef sd = un_intr(e, "llvm.sqrt", LLVMBuildFAdd(e->b, ld_f64(e, var, off),
                                                          dconst(e, b->attr.value), ""));
  LLVMValueRef inv = LLVMBuildFDiv(e->b, dconst(e, 1.0), sd, "");
  LLVMValueRef s = LLVMBuildFMul(e->b, ld_f64(e, gm, off), inv, "");
  LLVMValueRef t = LLVMBuildFSub(e->b, ld_f64(e, bt, off), LLVMBuildFMul(e->b, ld_f64(e, mu, off), s, ""), "");
  LLVMValueRef pair = gep8(e, tab, mul(e, l.iv, cg_c64(e, 8)));
  LLVMBuildStore(e->b, LLVMBuildFPTrunc(e->b, s, e->f32, ""), pair);
  LLVMBuildStore(e->b, LLVMBuildFPTrunc(e->b, t, e->f32, ""), gep8(e, pair, cg_c64(e, 4)));
  loop_end(e, &l);
  return tab;
}

/* ---- depthwise convolution, direct ------------------------------------------------------ */

/* a stride-2 tap: the 2·vl input columns from the first lane's as two contiguous masked
 * loads, then their even lanes (a gather per tap ran 9x slower on Zen 4); a column outside
 * the image or past the last output's reads nothing */
static LLVMValueRef dw_tap_s2(CgEmit *e, const CgConv *c, LLVMValueRef row, LLVMValueRef ow0,
                              LLVMValueRef lanes, LLVMValueRef ih_ok, int kw) {
  int vl = e->vl;
  LLVMTypeRef vi64 = LLVMVectorType(e->i64, (unsigned)vl);
  LLVMValueRef first = add(e, mul(e, ow0, cg_c64(e, 2)), cg_c64(e, kw * c->dw - c->pw));
  LLVMValueRef half[2];
  for (int h = 0; h < 2; h++) {
    LLVMValueRef col0 = add(e, first, cg_c64(e, (int64_t)h * vl));
    LLVMValueRef col = add(e, splat(e, col0, vl), lanes);
    LLVMValueRef j = add(e, splat(e, add(e, mul(e, ow0, cg_c64(e, 2)), cg_c64(e, (int64_t)h * vl)), vl),
                         lanes); /* 2·output lane (+1): inside the row's outputs */
    LLVMValueRef m = LLVMBuildAnd(e->b, splat(e, ih_ok, vl),
                                  LLVMBuildICmp(e->b, LLVMIntSLT, j, splat(e, cg_c64(e, 2 * c->OW), vl), ""), "");
    m = LLVMBuildAnd(e->b, m, LLVMBuildICmp(e->b, LLVMIntSGE, col, LLVMConstNull(vi64), ""), "");
    m = LLVMBuildAnd(e->b, m, LLVMBuildICmp(e->b, LLVMIntSLT, col, splat(e, cg_c64(e, c->W), vl), ""), "");
    LLVMValueRef p = LLVMBuildGEP2(e->b, e->f32, row, &col0, 1, "");
    LLVMTypeRef over[2] = {e->vf, e->ptr};
    LLVMValueRef args[4] = {p, c32(e, 4), m, LLVMConstNull(e->vf)};
    half[h] = intrinsic(e, "llvm.masked.load", over, 2, args, 4);
  }
  LLVMValueRef idx[64];
  for (int l = 0; l < vl; l++) idx[l] = c32(e, 2 * l);
  return LLVMBuildShuffleVector(e->b, half[0], half[1], LLVMConstVector(idx, (unsigned)vl), "");
}

/* one tap (kh, kw) for the vector of outputs ow0 + lane of output row oh: masked loads of
 * the input row (contiguous at stride 1, a gather otherwise); lanes outside the image or
 * past the row read nothing */
static LLVMValueRef dw_tap(CgEmit *e, const CgConv *c, LLVMValueRef xc, LLVMValueRef ow0,
                           LLVMValueRef lanes, LLVMValueRef lane_ok, LLVMValueRef oh, int kh, int kw) {
  int vl = e->vl;
  LLVMTypeRef vi64 = LLVMVectorType(e->i64, (unsigned)vl), vptr = LLVMVectorType(e->ptr, (unsigned)vl);
  LLVMValueRef ih = add(e, LLVMBuildSub(e->b, mul(e, oh, cg_c64(e, c->sh)), cg_c64(e, c->ph), ""),
                        cg_c64(e, kh * c->dh));
  LLVMValueRef ih_ok = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, ih, cg_c64(e, 0), ""),
                                    LLVMBuildICmp(e->b, LLVMIntSLT, ih, cg_c64(e, c->H), ""), "");
  LLVMValueRef row = gep8(e, xc, mul(e, LLVMBuildSelect(e->b, ih_ok, ih, cg_c64(e, 0), ""),
                                     cg_c64(e, c->W * 4)));
  LLVMValueRef iw = add(e, mul(e, add(e, splat(e, ow0, vl), lanes), splat(e, cg_c64(e, c->sw), vl)),
                        splat(e, cg_c64(e, kw * c->dw - c->pw), vl));
  LLVMValueRef m = LLVMBuildAnd(e->b, lane_ok, splat(e, ih_ok, vl), "");
  m = LLVMBuildAnd(e->b, m, LLVMBuildICmp(e->b, LLVMIntSGE, iw, LLVMConstNull(vi64), ""), "");
  m = LLVMBuildAnd(e->b, m, LLVMBuildICmp(e->b, LLVMIntSLT, iw, splat(e, cg_c64(e, c->W), vl), ""), "");
  LLVMValueRef zero = LLVMConstNull(e->vf);
  if (c->sw == 1) {
    LLVMValueRef first = add(e, mul(e, ow0, cg_c64(e, c->sw)), cg_c64(e, kw * c->dw - c->pw));
    LLVMValueRef p = LLVMBuildGEP2(e->b, e->f32, row, &first, 1, "");
    LLVMTypeRef over[2] = {e->vf, e->ptr};
    LLVMValueRef args[4] = {p, c32(e, 4), m, zero};
    return intrinsic(e, "llvm.masked.load", over, 2, args, 4);
  }
  if (c->sw == 2) return dw_tap_s2(e, c, row, ow0, lanes, ih_ok, kw);
  LLVMValueRef ps = LLVMBuildGEP2(e->b, e->f32, row, &iw, 1, "");
  LLVMTypeRef over[2] = {e->vf, vptr};
  LLVMValueRef args[4] = {ps, c32(e, 4), m, zero};
  return intrinsic(e, "llvm.masked.gather", over, 2, args, 4);
}

/* a depthwise or few-channel forward's output channel ch and its epilogue constants: the
 * bias b0 (0 without one) and, with a folded batchnorm, its scale s0 and shift b0 from the
 * table at the start of the scratch (no im2col rows) */
typedef struct DwChan {
  LLVMValueRef ch, b0, s0;
  bool nt; /* whole vectors, stored non-temporally where aligned (the tiles' nt_store) */
} DwChan;

static void dw_chan(CgEmit *e, const CgKernel *k, LLVMValueRef ch, DwChan *o) {
  o->ch = ch;
  o->nt = false;
  o->b0 = k->bias ? LLVMBuildLoad2(e->b, e->f32, gep8(e, cg_ptr(e, k->bias_node), mul(e, ch, cg_c64(e, 4))), "")
                  : LLVMConstReal(e->f32, 0);
  o->s0 = NULL;
  if (k->bn) {
    LLVMValueRef pair = gep8(e, cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset),
                             mul(e, ch, cg_c64(e, 8)));
    o->s0 = LLVMBuildLoad2(e->b, e->f32, pair, "");
    o->b0 = LLVMBuildLoad2(e->b, e->f32, gep8(e, pair, cg_c64(e, 4)), "");
  }
}

/* the one place a depthwise or few-channel forward's output vector of channel cs->ch is
 * finished and stored: the bias or the folded batchnorm, relu, the kernel's group
 * (CgKernel.nepi, on the registers), then the lanes of `ok` stored at p */
static void dw_store(CgEmit *e, const CgKernel *k, LLVMValueRef acc, LLVMValueRef p, LLVMValueRef ok,
                     const DwChan *cs) {
  LLVMValueRef b0 = cs->b0, s0 = cs->s0;
  int vl = e->vl;
  LLVMTypeRef vt = e->vf;
  if (s0) {
    LLVMValueRef args[3] = {acc, splat(e, s0, vl), splat(e, b0, vl)};
    acc = intrinsic(e, "llvm.fma", &vt, 1, args, 3);
  } else {
    acc = LLVMBuildFAdd(e->b, acc, splat(e, b0, vl), "");
  }
  if (k->relu) {
    LLVMValueRef z = LLVMConstNull(e->vf);
    acc = LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealUGT, acc, z, ""), acc, z, "");
  }
  acc = epi_direct(e, k, acc, p, cs->ch, ok);
  LLVMBasicBlockRef join = NULL;
  if (cs->nt) { /* a whole vector, where aligned: past the caches */
    int a = vl * 4 > 64 ? 64 : vl * 4;
    LLVMValueRef al = LLVMBuildICmp(e->b, LLVMIntEQ,
                                    LLVMBuildAnd(e->b, LLVMBuildPtrToInt(e->b, p, e->i64, ""), cg_c64(e, a - 1), ""),
                                    cg_c64(e, 0), "");
    LLVMBasicBlockRef nt = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "ntst");
    LLVMBasicBlockRef plain = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "mst");
    join = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "stjoin");
    LLVMBuildCondBr(e->b, al, nt, plain);
    LLVMPositionBuilderAtEnd(e->b, nt);
    llvm_store_nontemporal(e->b, acc, p, (unsigned)a);
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, plain);
  }
  LLVMTypeRef over[2] = {e->vf, e->ptr};
  LLVMValueRef sargs[4] = {acc, p, c32(e, 4), ok};
  intrinsic(e, "llvm.masked.store", over, 2, sargs, 4);
  if (join) {
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, join);
  }
}

/* task t of nt: output rows [r0, r1) of the N·C·OH rows, each a loop over vectors of OW */
static void dw_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const CgConv *c = arg;
  const IrNode *n = node(e, k->node);
  int vl = e->vl;
  LLVMValueRef rows = cg_c64(e, c->N * c->C * c->OH);
  LLVMValueRef r0 = LLVMBuildSDiv(e->b, mul(e, t, rows), nt, "");
  LLVMValueRef r1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), rows), nt, "");
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < vl; l++) lanes_c[l] = cg_c64(e, l);
  LLVMValueRef lanes = LLVMConstVector(lanes_c, (unsigned)vl);
  Loop lr, lw;
  loop_begin(e, &lr, r0, r1, 1);
  LLVMValueRef oh = LLVMBuildSRem(e->b, lr.iv, cg_c64(e, c->OH), "");
  LLVMValueRef nc = LLVMBuildSDiv(e->b, lr.iv, cg_c64(e, c->OH), "");
  LLVMValueRef ch = LLVMBuildSRem(e->b, nc, cg_c64(e, c->C), "");
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, nc, cg_c64(e, c->H * c->W * 4)));
  LLVMValueRef yr = gep8(e, cg_ptr(e, k->out), mul(e, lr.iv, cg_c64(e, c->OW * 4)));
  LLVMValueRef wc = gep8(e, cg_ptr(e, n->in[1]), mul(e, ch, cg_c64(e, c->KH * c->KW * 4)));
  DwChan cs;
  dw_chan(e, k, ch, &cs);
  loop_begin(e, &lw, cg_c64(e, 0), cg_c64(e, c->OW), vl);
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, lw.iv, vl), lanes),
                                  splat(e, cg_c64(e, c->OW), vl), "");
  LLVMValueRef acc = LLVMConstNull(e->vf);
  for (int kh = 0; kh < c->KH; kh++)
    for (int kw = 0; kw < c->KW; kw++) {
      LLVMValueRef wv = LLVMBuildLoad2(e->b, e->f32, gep8(e, wc, cg_c64(e, (kh * c->KW + kw) * 4)), "");
      LLVMValueRef xv = dw_tap(e, c, xc, lw.iv, lanes, ok, oh, kh, kw);
      LLVMValueRef args[3] = {splat(e, wv, vl), xv, acc};
      LLVMTypeRef vt = e->vf;
      acc = intrinsic(e, "llvm.fma", &vt, 1, args, 3);
    }
  dw_store(e, k, acc, gep8(e, yr, mul(e, lw.iv, cg_c64(e, 4))), ok, &cs);
  loop_end(e, &lw);
  loop_end(e, &lr);
}

/* body over `items` (rows or channels) in min(items, work / 65536 + 1) tasks, or inline */
static void run_items(CgEmit *e, const CgKernel *k, int64_t items, int64_t work, TaskBody body,
                      const void *arg) {
  int64_t maxt = work / 65536 + 1;
  if (maxt > items) maxt = items;
  if (maxt > 1) {
    run_tasks(e, k, maxt, body, (void *)arg);
    return;
  }
  body(e, k, (void *)arg, cg_c64(e, 0), cg_c64(e, 1));
}

/* ---- depthwise convolution, blocked rows (strides 1 and 2) ------------------------------ */

typedef struct DwFwd {
  const CgConv *c;
  CgDwBlock b;
} DwFwd;

/* vl input columns of `row` from column x0 (a constant where xs is, else x0 is inside the
 * row): a plain load inside the row, a masked load of the constant lanes inside it at its
 * edges, zeros outside it */
static LLVMValueRef dw_src(CgEmit *e, const CgConv *c, LLVMValueRef row, LLVMValueRef x0, const int64_t *xs) {
  int vl = e->vl, in = 0;
  LLVMValueRef m[64];
  for (int l = 0; xs && l < vl; l++) {
    bool ok = xs[0] + l >= 0 && xs[0] + l < c->W;
    in += ok;
    m[l] = LLVMConstInt(e->i1, ok, 0);
  }
  if (xs && in == 0) return LLVMConstNull(e->vf);
  LLVMValueRef p = LLVMBuildGEP2(e->b, e->f32, row, &x0, 1, "");
  if (!xs || in == vl) {
    LLVMValueRef v = LLVMBuildLoad2(e->b, e->vf, p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMTypeRef over[2] = {e->vf, e->ptr};
  LLVMValueRef args[4] = {p, c32(e, 4), LLVMConstVector(m, (unsigned)vl), LLVMConstNull(e->vf)};
  return intrinsic(e, "llvm.masked.load", over, 2, args, 4);
}

/* chunk j of buffer row br (phase rows of lp floats): the sw·vl input columns from
 * sw·j·vl - pw of `row`, split into their sw phases (at stride 2 the even and odd lanes of two
 * vectors); js: j as a constant (the row's edges), else j is an inside chunk */
static void dw_fill_chunk(CgEmit *e, const DwFwd *d, LLVMValueRef row, LLVMValueRef br, LLVMValueRef j,
                          const int64_t *js) {
  const CgConv *c = d->c;
  int vl = e->vl;
  LLVMValueRef v[2], x0 = LLVMBuildSub(e->b, mul(e, j, cg_c64(e, c->sw * vl)), cg_c64(e, c->pw), "");
  for (int h = 0; h < c->sw; h++) {
    int64_t xs = js ? *js * c->sw * vl - c->pw + h * vl : 0;
    v[h] = dw_src(e, c, row, add(e, x0, cg_c64(e, (int64_t)h * vl)), js ? &xs : NULL);
  }
  if (c->sw == 2) {
    LLVMValueRef idx[2][64];
    for (int l = 0; l < vl; l++) idx[0][l] = c32(e, 2 * l), idx[1][l] = c32(e, 2 * l + 1);
    LLVMValueRef a = v[0];
    for (int p = 0; p < 2; p++) v[p] = LLVMBuildShuffleVector(e->b, a, v[1], LLVMConstVector(idx[p], (unsigned)vl), "");
  }
  for (int p = 0; p < c->sw; p++) {
    LLVMValueRef off = mul(e, add(e, mul(e, j, cg_c64(e, vl)), cg_c64(e, p * d->b.lp)), cg_c64(e, 4));
    LLVMValueRef st = LLVMBuildStore(e->b, v[p], gep8(e, br, off));
    LLVMSetAlignment(st, 4);
  }
}

/* buffer row br from input row ih of channel plane xc: its chunks inside the row in a loop,
 * the ones at its edges with constant masks; zeros for a row of the padding */
static void dw_fill_row(CgEmit *e, const DwFwd *d, LLVMValueRef xc, LLVMValueRef br, LLVMValueRef ih) {
  const CgConv *c = d->c;
  int64_t span = c->sw * e->vl, nch = d->b.lp / e->vl;
  int64_t jlo = (c->pw + span - 1) / span, jhi = c->W + c->pw >= span ? (c->W + c->pw - span) / span + 1 : 0;
  if (jhi > nch) jhi = nch;
  if (jhi < jlo) jhi = jlo;
  LLVMValueRef ok = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, ih, cg_c64(e, 0), ""),
                                 LLVMBuildICmp(e->b, LLVMIntSLT, ih, cg_c64(e, c->H), ""), "");
  LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwrow");
  LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwpad");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwjoin");
  LLVMBuildCondBr(e->b, ok, yes, no);
  LLVMPositionBuilderAtEnd(e->b, no);
  memset0(e, br, c->sw * d->b.lp * 4);
  LLVMBuildBr(e->b, join);
  LLVMPositionBuilderAtEnd(e->b, yes);
  LLVMValueRef row = gep8(e, xc, mul(e, ih, cg_c64(e, c->W * 4)));
  for (int64_t j = 0; j < nch; j++)
    if (j < jlo || j >= jhi) dw_fill_chunk(e, d, row, br, cg_c64(e, j), &j);
  if (jhi > jlo) {
    Loop l;
    loop_begin(e, &l, cg_c64(e, jlo), cg_c64(e, jhi), 1);
    dw_fill_chunk(e, d, row, br, l.iv, NULL);
    loop_end(e, &l);
  }
  LLVMBuildBr(e->b, join);
  LLVMPositionBuilderAtEnd(e->b, join);
}

/* the output vector from column ow0 (a constant where ows is, with the lane masks of its
 * constant columns, else a vector inside the rows) of the R rows of a direct block: each
 * input row i (`row[i]`, zeros where `ok[i]` is false: the padding) loaded once a tap column
 * (at stride 2 two loads and their even lanes) and used by each of the R rows that takes it */
static void dw_direct_vec(CgEmit *e, const CgKernel *k, const CgConv *c, int R, int nr,
                          const LLVMValueRef *row, const LLVMValueRef *ok, LLVMValueRef yr,
                          LLVMValueRef ow0, const int64_t *ows, const LLVMValueRef *wv,
                          const DwChan *cs) {
  int vl = e->vl;
  LLVMTypeRef vt = e->vf;
  LLVMValueRef acc[CG_DW_ROWS], m[64], idx[64];
  for (int l = 0; l < vl; l++)
    m[l] = LLVMConstInt(e->i1, !ows || *ows + l < c->OW, 0), idx[l] = c32(e, 2 * l);
  for (int r = 0; r < R; r++) acc[r] = LLVMConstNull(e->vf);
  LLVMValueRef xb = LLVMBuildSub(e->b, mul(e, ow0, cg_c64(e, c->sw)), cg_c64(e, c->pw), "");
  for (int i = 0; i < nr; i++)
    for (int kw = 0; kw < c->KW; kw++) {
      LLVMValueRef xv = NULL;
      for (int r = 0; r < R; r++) {
        int64_t dd = i - r * c->sh, kh = dd / c->dh;
        if (dd < 0 || dd % c->dh || kh >= c->KH) continue;
        if (!xv) {
          int64_t x0 = ows ? *ows * c->sw - c->pw + kw * c->dw : 0, x1 = x0 + vl;
          LLVMValueRef xr = add(e, xb, cg_c64(e, kw * c->dw));
          xv = dw_src(e, c, row[i], xr, ows ? &x0 : NULL);
          if (c->sw == 2)
            xv = LLVMBuildShuffleVector(e->b, xv, dw_src(e, c, row[i], add(e, xr, cg_c64(e, vl)), ows ? &x1 : NULL),
                                        LLVMConstVector(idx, (unsigned)vl), "");
          xv = LLVMBuildSelect(e->b, ok[i], xv, LLVMConstNull(e->vf), "");
        }
        LLVMValueRef args[3] = {wv[kh * c->KW + kw], xv, acc[r]};
        acc[r] = intrinsic(e, "llvm.fma", &vt, 1, args, 3);
      }
    }
  for (int r = 0; r < R; r++)
    dw_store(e, k, acc[r], gep8(e, yr, mul(e, add(e, ow0, cg_c64(e, r * c->OW)), cg_c64(e, 4))),
             LLVMConstVector(m, (unsigned)vl), cs);
}

/* a block of R output rows read straight from the plane xc, no buffer (whose stores a short
 * row would read back at once): the vectors at the rows' edges with constant lane masks, the
 * ones inside in a loop of plain loads */
static void dw_block_direct(CgEmit *e, const CgKernel *k, const DwFwd *d, int R, LLVMValueRef xc,
                            LLVMValueRef yr, LLVMValueRef ih0, const LLVMValueRef *wv,
                            const DwChan *cs) {
  const CgConv *c = d->c;
  int vl = e->vl, nr = (int)((R - 1) * c->sh + (c->KH - 1) * c->dh + 1);
  LLVMValueRef row[64], ok[64];
  for (int i = 0; i < nr; i++) {
    LLVMValueRef ih = add(e, ih0, cg_c64(e, i));
    ok[i] = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, ih, cg_c64(e, 0), ""),
                         LLVMBuildICmp(e->b, LLVMIntSLT, ih, cg_c64(e, c->H), ""), "");
    row[i] = gep8(e, xc, mul(e, LLVMBuildSelect(e->b, ok[i], ih, cg_c64(e, 0), ""), cg_c64(e, c->W * 4)));
  }
  int64_t vlo = d->b.vlo, vhi = d->b.vhi;
  for (int64_t v = 0; v < d->b.nv; v++) {
    if (v == vlo && vhi > vlo) {
      Loop l;
      loop_begin(e, &l, cg_c64(e, vlo * vl), cg_c64(e, vhi * vl), vl);
      dw_direct_vec(e, k, c, R, nr, row, ok, yr, l.iv, NULL, wv, cs);
      loop_end(e, &l);
    }
    if (v >= vlo && v < vhi) continue;
    int64_t ow0 = v * vl;
    dw_direct_vec(e, k, c, R, nr, row, ok, yr, cg_c64(e, ow0), &ow0, wv, cs);
  }
}

/* a block of R output rows from oh0 of one channel (plane xc, first output row yr, the
 * filter's splats wv): its input rows into the buffer, then for each output vector every
 * tap's input vector loaded once from the buffer and used by each of the R rows that takes
 * it, into R accumulators, in the serial (kh, kw) order of each output */
static void dw_block(CgEmit *e, const CgKernel *k, const DwFwd *d, LLVMValueRef buf, int R,
                     LLVMValueRef xc, LLVMValueRef yr, LLVMValueRef oh0, const LLVMValueRef *wv,
                     const DwChan *cs) {
  const CgConv *c = d->c;
  int vl = e->vl, nr = (int)((R - 1) * c->sh + (c->KH - 1) * c->dh + 1);
  int64_t rowb = c->sw * d->b.lp * 4;
  LLVMValueRef ih0 = LLVMBuildSub(e->b, mul(e, oh0, cg_c64(e, c->sh)), cg_c64(e, c->ph), "");
  if (d->b.direct) {
    dw_block_direct(e, k, d, R, xc, yr, ih0, wv, cs);
    return;
  }
  for (int i = 0; i < nr; i++)
    dw_fill_row(e, d, xc, gep8(e, buf, cg_c64(e, i * rowb)), add(e, ih0, cg_c64(e, i)));
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < vl; l++) lanes_c[l] = cg_c64(e, l);
  LLVMTypeRef vt = e->vf;
  Loop lv;
  loop_begin(e, &lv, cg_c64(e, 0), cg_c64(e, d->b.nv * vl), vl);
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, lv.iv, vl), LLVMConstVector(lanes_c, (unsigned)vl)),
                                  splat(e, cg_c64(e, c->OW), vl), "");
  LLVMValueRef vb = gep8(e, buf, mul(e, lv.iv, cg_c64(e, 4))), acc[CG_DW_ROWS];
  for (int r = 0; r < R; r++) acc[r] = LLVMConstNull(e->vf);
  for (int i = 0; i < nr; i++)
    for (int kw = 0; kw < c->KW; kw++) {
      int64_t q = kw * c->dw, off = i * rowb + ((q % c->sw) * d->b.lp + q / c->sw) * 4;
      LLVMValueRef xv = NULL;
      for (int r = 0; r < R; r++) {
        int64_t dd = i - r * c->sh, kh = dd / c->dh;
        if (dd < 0 || dd % c->dh || kh >= c->KH) continue;
        if (!xv) {
          xv = LLVMBuildLoad2(e->b, e->vf, gep8(e, vb, cg_c64(e, off)), "");
          LLVMSetAlignment(xv, 4);
        }
        LLVMValueRef args[3] = {wv[kh * c->KW + kw], xv, acc[r]};
        acc[r] = intrinsic(e, "llvm.fma", &vt, 1, args, 3);
      }
    }
  for (int r = 0; r < R; r++)
    dw_store(e, k, acc[r], gep8(e, yr, mul(e, add(e, lv.iv, cg_c64(e, r * c->OW)), cg_c64(e, 4))), ok, cs);
  loop_end(e, &lv);
}

/* channel ch's filter taps as splats (wv) and its epilogue constants (cs) */
static void dw_chan_taps(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef ch,
                         LLVMValueRef *wv, DwChan *cs) {
  LLVMValueRef wc = gep8(e, cg_ptr(e, node(e, k->node)->in[1]), mul(e, ch, cg_c64(e, c->KH * c->KW * 4)));
  for (int i = 0; i < c->KH * c->KW; i++)
    wv[i] = splat(e, LLVMBuildLoad2(e->b, e->f32, gep8(e, wc, cg_c64(e, i * 4)), ""), e->vl);
  dw_chan(e, k, ch, cs);
}

/* the block of output rows from oh0 of one channel: R rows, or where `last` (the channel's
 * last block) holds and R does not divide OH, the OH mod R rows left */
static void dw_block_at(CgEmit *e, const CgKernel *k, const DwFwd *d, LLVMValueRef buf, LLVMValueRef xc,
                        LLVMValueRef yr, LLVMValueRef oh0, LLVMValueRef last, const LLVMValueRef *wv,
                        const DwChan *cs) {
  int R = d->b.R, tail = (int)(d->c->OH % R);
  if (!tail) {
    dw_block(e, k, d, buf, R, xc, yr, oh0, wv, cs);
    return;
  }
  LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwfull");
  LLVMBasicBlockRef rest = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwtail");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwnext");
  LLVMBuildCondBr(e->b, last, rest, full);
  LLVMPositionBuilderAtEnd(e->b, full);
  dw_block(e, k, d, buf, R, xc, yr, oh0, wv, cs);
  LLVMBuildBr(e->b, join);
  LLVMPositionBuilderAtEnd(e->b, rest);
  dw_block(e, k, d, buf, tail, xc, yr, oh0, wv, cs);
  LLVMBuildBr(e->b, join);
  LLVMPositionBuilderAtEnd(e->b, join);
}

/* task t of nt: blocks [u0, u1) of the N·C·nb blocks of R output rows (the last block of a
 * channel has OH mod R rows when R does not divide OH) */
static void dwb_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const DwFwd *d = arg;
  const CgConv *c = d->c;
  const IrNode *n = node(e, k->node);
  int R = d->b.R;
  LLVMValueRef units = cg_c64(e, c->N * c->C * d->b.nb);
  LLVMValueRef u0 = LLVMBuildSDiv(e->b, mul(e, t, units), nt, "");
  LLVMValueRef u1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), units), nt, "");
  LLVMValueRef buf = NULL;
  if (!d->b.direct) {
    buf = entry_alloca(e, LLVMArrayType2(e->f32, (uint64_t)(d->b.bytes / 4)), "dwbuf");
    LLVMSetAlignment(buf, 64);
  }
  Loop lu;
  loop_begin(e, &lu, u0, u1, 1);
  LLVMValueRef nc = LLVMBuildSDiv(e->b, lu.iv, cg_c64(e, d->b.nb), "");
  LLVMValueRef bi = LLVMBuildSRem(e->b, lu.iv, cg_c64(e, d->b.nb), "");
  LLVMValueRef ch = LLVMBuildSRem(e->b, nc, cg_c64(e, c->C), "");
  LLVMValueRef oh0 = mul(e, bi, cg_c64(e, R));
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, nc, cg_c64(e, c->H * c->W * 4)));
  LLVMValueRef yr = gep8(e, cg_ptr(e, k->out), mul(e, add(e, mul(e, nc, cg_c64(e, c->OH)), oh0),
                                                      cg_c64(e, c->OW * 4)));
  LLVMValueRef wv[64];
  DwChan cs;
  dw_chan_taps(e, k, c, ch, wv, &cs);
  dw_block_at(e, k, d, buf, xc, yr, oh0, LLVMBuildICmp(e->b, LLVMIntEQ, bi, cg_c64(e, d->b.nb - 1), ""),
              wv, &cs);
  loop_end(e, &lu);
}

/* output vector v of a flat plane (CgDwBlock.flat): its vl positions q = v·vl + l of the
 * plane's OH·OW, each tap (kh, kw) a masked load of the input plane xc at the constant
 * offset q + (kh·dh - ph)·W + kw·dw - pw (OW = W at stride 1), its lanes those whose input
 * row and column are inside the image (a tap with none is skipped), in the serial (kh, kw)
 * order; then dw_store with the lanes inside the plane */
static void dwf_vec(CgEmit *e, const CgKernel *k, const CgConv *c, int64_t v, LLVMValueRef xc,
                    LLVMValueRef yc, const LLVMValueRef *wv, const DwChan *cs) {
  int vl = e->vl;
  LLVMTypeRef vt = e->vf, over[2] = {e->vf, e->ptr};
  LLVMValueRef acc = LLVMConstNull(e->vf), m[64];
  int64_t q0 = v * vl, np = c->OH * c->OW;
  for (int64_t kh = 0; kh < c->KH; kh++)
    for (int64_t kw = 0; kw < c->KW; kw++) {
      int64_t dy = kh * c->dh - c->ph, dx = kw * c->dw - c->pw;
      bool any = false;
      for (int l = 0; l < vl; l++) {
        int64_t q = q0 + l, ih = q / c->OW + dy, iw = q % c->OW + dx;
        bool ok = q < np && ih >= 0 && ih < c->H && iw >= 0 && iw < c->W;
        m[l] = LLVMConstInt(e->i1, ok, 0);
        any |= ok;
      }
      if (!any) continue;
      LLVMValueRef largs[4] = {gep8(e, xc, cg_c64(e, (q0 + dy * c->W + dx) * 4)), c32(e, 4),
                               LLVMConstVector(m, (unsigned)vl), LLVMConstNull(e->vf)};
      LLVMValueRef args[3] = {wv[kh * c->KW + kw], intrinsic(e, "llvm.masked.load", over, 2, largs, 4), acc};
      acc = intrinsic(e, "llvm.fma", &vt, 1, args, 3);
    }
  for (int l = 0; l < vl; l++) m[l] = LLVMConstInt(e->i1, q0 + l < np, 0);
  dw_store(e, k, acc, gep8(e, yc, cg_c64(e, q0 * 4)), LLVMConstVector(m, (unsigned)vl), cs);
}

/* task t of nt: planes [u0, u1) of the N·C, each as CgDwBlock.flat flat vectors */
static void dwf_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const DwFwd *d = arg;
  const CgConv *c = d->c;
  const IrNode *n = node(e, k->node);
  LLVMValueRef units = cg_c64(e, c->N * c->C);
  LLVMValueRef u0 = LLVMBuildSDiv(e->b, mul(e, t, units), nt, "");
  LLVMValueRef u1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), units), nt, "");
  Loop lu;
  loop_begin(e, &lu, u0, u1, 1);
  LLVMValueRef ch = LLVMBuildSRem(e->b, lu.iv, cg_c64(e, c->C), "");
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, lu.iv, cg_c64(e, c->H * c->W * 4)));
  LLVMValueRef yc = gep8(e, cg_ptr(e, k->out), mul(e, lu.iv, cg_c64(e, c->OH * c->OW * 4)));
  LLVMValueRef wc = gep8(e, cg_ptr(e, n->in[1]), mul(e, ch, cg_c64(e, c->KH * c->KW * 4)));
  LLVMValueRef wv[64];
  DwChan cs;
  for (int i = 0; i < c->KH * c->KW; i++)
    wv[i] = splat(e, LLVMBuildLoad2(e->b, e->f32, gep8(e, wc, cg_c64(e, i * 4)), ""), e->vl);
  dw_chan(e, k, ch, &cs);
  for (int64_t v = 0; v < d->b.flat; v++) dwf_vec(e, k, c, v, xc, yc, wv, &cs);
  loop_end(e, &lu);
}

/* a depthwise convolution (one input and one output channel per group) computed directly,
 * vectorized along the output row, spread over the threads: at strides 1 and 2 in blocks of
 * output rows from a buffer (dwb_body), otherwise row by row with masked loads (dw_body); no
 * im2col, no scratch */
static void lower_depthwise(CgEmit *e, const CgKernel *k, const CgConv *c) {
  int64_t rows = c->N * c->C * c->OH;
  DwFwd d = {.c = c};
  if (cg_dw_block(c, e->vl, &d.b)) {
    if (d.b.flat) run_items(e, k, c->N * c->C, rows * c->OW * c->KH * c->KW, dwf_body, &d);
    else run_items(e, k, c->N * c->C * d.b.nb, rows * c->OW * c->KH * c->KW, dwb_body, &d);
    return;
  }
  run_items(e, k, rows, rows * c->OW * c->KH * c->KW, dw_body, c);
}

/* ---- convolutions of few input channels, direct ----------------------------------------- */

enum { FEW_OB = 16 }; /* output channels a register block: FEW_OB accumulators */

typedef struct FewConv {
  DwFwd d; /* the convolution and its rows' buffer (cg_few_block: one output row) */
  int ob;  /* output channels a block */
} FewConv;

/* output channels [o0, o0 + nob) of the output vector from column ow0 of the output row at
 * yr (channel 0's): for every input channel, tap row and tap column, the input vector loaded
 * once from the buffer and multiplied by each channel's tap (a broadcast) into that channel's
 * accumulator, in the serial (c, kh, kw) order of each output */
static void few_oblock(CgEmit *e, const CgKernel *k, const FewConv *f, LLVMValueRef buf, LLVMValueRef ow0,
                       LLVMValueRef o0, int nob, LLVMValueRef wp, LLVMValueRef yr, LLVMValueRef ok) {
  const CgConv *c = f->d.c;
  int vl = e->vl;
  LLVMTypeRef vt = e->vf;
  LLVMValueRef acc[FEW_OB];
  for (int o = 0; o < nob; o++) acc[o] = LLVMConstNull(e->vf);
  LLVMValueRef vb = gep8(e, buf, mul(e, ow0, cg_c64(e, 4)));
  LLVMValueRef wb = gep8(e, wp, mul(e, o0, cg_c64(e, c->K * 4)));
  for (int64_t ch = 0; ch < c->C; ch++)
    for (int64_t kh = 0; kh < c->KH; kh++)
      for (int64_t kw = 0; kw < c->KW; kw++) {
        int64_t q = kw * c->dw, tap = (ch * c->KH + kh) * c->KW + kw;
        int64_t off = (((ch * c->KH + kh) * c->sw + q % c->sw) * f->d.b.lp + q / c->sw) * 4;
        LLVMValueRef xv = LLVMBuildLoad2(e->b, e->vf, gep8(e, vb, cg_c64(e, off)), "");
        LLVMSetAlignment(xv, 4);
        for (int o = 0; o < nob; o++) {
          LLVMValueRef w = LLVMBuildLoad2(e->b, e->f32, gep8(e, wb, cg_c64(e, (o * c->K + tap) * 4)), "");
          LLVMValueRef args[3] = {splat(e, w, vl), xv, acc[o]};
          acc[o] = intrinsic(e, "llvm.fma", &vt, 1, args, 3);
        }
      }
  for (int o = 0; o < nob; o++) {
    LLVMValueRef ch = add(e, o0, cg_c64(e, o));
    DwChan cs;
    dw_chan(e, k, ch, &cs);
    cs.nt = k->tile && k->tile->nt_store && c->OW % vl == 0; /* every vector whole */
    LLVMValueRef at = add(e, mul(e, ch, cg_c64(e, c->P)), ow0);
    dw_store(e, k, acc[o], gep8(e, yr, mul(e, at, cg_c64(e, 4))), ok, &cs);
  }
}

/* task t of nt: output rows [u0, u1) of the N·OH rows; per row its C·KH input rows into the
 * buffer (the padding's zeros in place, sw phases), then each vector of OW for every block
 * of output channels */
static void few_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const FewConv *f = arg;
  const CgConv *c = f->d.c;
  const IrNode *n = node(e, k->node);
  int vl = e->vl;
  LLVMValueRef units = cg_c64(e, c->N * c->OH);
  LLVMValueRef u0 = LLVMBuildSDiv(e->b, mul(e, t, units), nt, "");
  LLVMValueRef u1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), units), nt, "");
  LLVMValueRef buf = entry_alloca(e, LLVMArrayType2(e->f32, (uint64_t)(f->d.b.bytes / 4)), "fewbuf");
  LLVMSetAlignment(buf, 64);
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < vl; l++) lanes_c[l] = cg_c64(e, l);
  Loop lu, lv;
  loop_begin(e, &lu, u0, u1, 1);
  LLVMValueRef img = LLVMBuildSDiv(e->b, lu.iv, cg_c64(e, c->OH), "");
  LLVMValueRef oh = LLVMBuildSRem(e->b, lu.iv, cg_c64(e, c->OH), "");
  LLVMValueRef xn = gep8(e, cg_ptr(e, n->in[0]), mul(e, img, cg_c64(e, c->C * c->H * c->W * 4)));
  LLVMValueRef ih0 = LLVMBuildSub(e->b, mul(e, oh, cg_c64(e, c->sh)), cg_c64(e, c->ph), "");
  for (int64_t ch = 0; ch < c->C; ch++)
    for (int64_t kh = 0; kh < c->KH; kh++)
      dw_fill_row(e, &f->d, gep8(e, xn, cg_c64(e, ch * c->H * c->W * 4)),
                  gep8(e, buf, cg_c64(e, (ch * c->KH + kh) * c->sw * f->d.b.lp * 4)),
                  add(e, ih0, cg_c64(e, kh * c->dh)));
  LLVMValueRef yr = gep8(e, cg_ptr(e, k->out), mul(e, add(e, mul(e, img, cg_c64(e, c->O * c->P)),
                                                         mul(e, oh, cg_c64(e, c->OW))), cg_c64(e, 4)));
  LLVMValueRef wp = cg_ptr(e, n->in[1]);
  int64_t nfull = c->O / f->ob * f->ob;
  loop_begin(e, &lv, cg_c64(e, 0), cg_c64(e, f->d.b.nv * vl), vl);
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, lv.iv, vl), LLVMConstVector(lanes_c, (unsigned)vl)),
                                  splat(e, cg_c64(e, c->OW), vl), "");
  if (nfull > 0) {
    Loop lo;
    loop_begin(e, &lo, cg_c64(e, 0), cg_c64(e, nfull), f->ob);
    few_oblock(e, k, f, buf, lv.iv, lo.iv, f->ob, wp, yr, ok);
    loop_end(e, &lo);
  }
  if (c->O > nfull) few_oblock(e, k, f, buf, lv.iv, cg_c64(e, nfull), (int)(c->O - nfull), wp, yr, ok);
  loop_end(e, &lv);
  loop_end(e, &lu);
}

/* a forward convolution of few input channels (CgConv.few, the tiles' conv_few) computed
 * directly, output rows spread over the threads; no GEMM, no packing */
static int lower_conv_few(CgEmit *e, const CgKernel *k, const CgConv *c) {
  FewConv f = {.d = {.c = c}, .ob = (int)(c->O < FEW_OB ? c->O : FEW_OB)};
  if (!cg_few_block(c, e->vl, &f.d.b)) {
    diag_error(e->d, node(e, k->node)->loc, "code generation: the direct convolution of few channels does not fit its row buffer");
    return -1;
  }
  int64_t rows = c->N * c->OH; /* a task for every 8·65536 multiply-adds */
  run_items(e, k, rows, rows * c->OW * c->O * c->K / 8, few_body, &f);
  return 0;
}

/* ---- depthwise data gradient, direct ---------------------------------------------------- */

/* The data gradient of a depthwise convolution at stride 1 or 2 (a transposed depthwise
 * convolution): dx[ih][iw] = Σ w[kh][kw]·dy[oh][ow] over the taps with ih = oh·sh - ph +
 * kh·dh and iw = ow·sw - pw + kw·dw. A dx row of phase q = ih mod sh takes the kh whose
 * (q + ph - kh·dh) the stride divides; its columns are computed in sw phases p of vl
 * columns iw = sw·(j + lane) + p, each a dense vector over j whose taps kw read dy's row
 * contiguously at ow = j + lane + (p + pw - kw·dw)/sw (a masked load: lanes outside dy
 * read nothing). At stride 2 the two phases are interleaved into two vectors of dx. */
typedef struct DwDxRow {
  LLVMValueRef dyrow[8], rowok[8]; /* per kh: dy's row oh (row 0 when outside), oh valid */
  LLVMValueRef wv[8][8];           /* the filter's taps, splat; NULL: the taps are summed
                                      (col2im: every tap has its own row, below) */
  int64_t tapstride;               /* bytes from tap (kh, kw)'s row to (kh, kw + 1)'s: 0 */
  LLVMValueRef lanes, dxr;
} DwDxRow;

/* the sum of phase p's taps for the vl columns from j: lanes outside dy read nothing */
static LLVMValueRef dwdx_phase(CgEmit *e, const CgConv *c, const DwDxRow *r, int q, int p,
                               LLVMValueRef j) {
  int vl = e->vl;
  LLVMTypeRef vi64 = LLVMVectorType(e->i64, (unsigned)vl), vt = e->vf;
  LLVMValueRef acc = LLVMConstNull(e->vf);
  for (int kh = 0; kh < c->KH; kh++) {
    if ((q + c->ph - kh * c->dh) % c->sh) continue;
    for (int kw = 0; kw < c->KW; kw++) {
      int64_t t = p + c->pw - kw * c->dw;
      if (t % c->sw) continue;
      LLVMValueRef first = add(e, j, cg_c64(e, t / c->sw));
      LLVMValueRef ow = add(e, splat(e, first, vl), r->lanes);
      LLVMValueRef m = LLVMBuildAnd(e->b, splat(e, r->rowok[kh], vl),
                                    LLVMBuildICmp(e->b, LLVMIntSGE, ow, LLVMConstNull(vi64), ""), "");
      m = LLVMBuildAnd(e->b, m, LLVMBuildICmp(e->b, LLVMIntSLT, ow, splat(e, cg_c64(e, c->OW), vl), ""), "");
      LLVMValueRef row = r->tapstride ? gep8(e, r->dyrow[kh], cg_c64(e, kw * r->tapstride)) : r->dyrow[kh];
      LLVMValueRef ptr = LLVMBuildGEP2(e->b, e->f32, row, &first, 1, "");
      LLVMTypeRef over[2] = {e->vf, e->ptr};
      LLVMValueRef args[4] = {ptr, c32(e, 4), m, LLVMConstNull(e->vf)};
      LLVMValueRef v = intrinsic(e, "llvm.masked.load", over, 2, args, 4);
      LLVMValueRef fa[3] = {r->wv[kh][kw], v, acc};
      acc = r->wv[kh][kw] ? intrinsic(e, "llvm.fma", &vt, 1, fa, 3) : LLVMBuildFAdd(e->b, acc, v, "");
    }
  }
  return acc;
}

/* dx's vector of vl columns from iw0, stored where iw < W */
static void dwdx_store(CgEmit *e, const CgConv *c, const DwDxRow *r, LLVMValueRef v, LLVMValueRef iw0) {
  int vl = e->vl;
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, iw0, vl), r->lanes),
                                  splat(e, cg_c64(e, c->W), vl), "");
  LLVMTypeRef over[2] = {e->vf, e->ptr};
  LLVMValueRef sargs[4] = {v, gep8(e, r->dxr, mul(e, iw0, cg_c64(e, 4))), c32(e, 4), ok};
  intrinsic(e, "llvm.masked.store", over, 2, sargs, 4);
}

/* one dx row of phase q: its columns in vectors (two phases interleaved at stride 2) */
static void dwdx_row(CgEmit *e, const CgConv *c, const DwDxRow *r, int q) {
  int vl = e->vl;
  Loop lj;
  loop_begin(e, &lj, cg_c64(e, 0), cg_c64(e, (c->W + c->sw - 1) / c->sw), vl);
  if (c->sw == 1) {
    dwdx_store(e, c, r, dwdx_phase(e, c, r, q, 0, lj.iv), lj.iv);
  } else {
    LLVMValueRef a = dwdx_phase(e, c, r, q, 0, lj.iv), b = dwdx_phase(e, c, r, q, 1, lj.iv);
    LLVMValueRef lo[64], hi[64];
    for (int l = 0; l < vl; l++) {
      lo[l] = c32(e, (l & 1) * vl + l / 2);
      hi[l] = c32(e, (l & 1) * vl + vl / 2 + l / 2);
    }
    LLVMValueRef iw0 = mul(e, lj.iv, cg_c64(e, 2));
    dwdx_store(e, c, r, LLVMBuildShuffleVector(e->b, a, b, LLVMConstVector(lo, (unsigned)vl), ""), iw0);
    dwdx_store(e, c, r, LLVMBuildShuffleVector(e->b, a, b, LLVMConstVector(hi, (unsigned)vl), ""),
               add(e, iw0, cg_c64(e, vl)));
  }
  loop_end(e, &lj);
}

/* the row of dy that tap kh reads for dx row ih (oh = (ih + ph - kh·dh) / sh), and whether
 * it is inside dy; only the kh whose numerator the stride divides are asked for */
static void dwdx_dyrow(CgEmit *e, const CgConv *c, LLVMValueRef dyc, LLVMValueRef ih, int kh,
                       DwDxRow *r) {
  LLVMValueRef num = add(e, ih, cg_c64(e, c->ph - kh * c->dh));
  LLVMValueRef oh = c->sh == 1 ? num : LLVMBuildAShr(e->b, num, cg_c64(e, 1), "");
  r->rowok[kh] = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, num, cg_c64(e, 0), ""),
                              LLVMBuildICmp(e->b, LLVMIntSLT, oh, cg_c64(e, c->OH), ""), "");
  r->dyrow[kh] = gep8(e, dyc, mul(e, LLVMBuildSelect(e->b, r->rowok[kh], oh, cg_c64(e, 0), ""),
                                  cg_c64(e, c->OW * 4)));
}

/* dx row ih: at stride 2 its phase picks its taps kh */
static void dwdx_row_at(CgEmit *e, const CgConv *c, const DwDxRow *r, LLVMValueRef ih) {
  if (c->sh == 1) {
    dwdx_row(e, c, r, 0);
    return;
  }
  LLVMBasicBlockRef b0 = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "even");
  LLVMBasicBlockRef b1 = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "odd");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "join");
  LLVMValueRef odd = LLVMBuildTrunc(e->b, ih, e->i1, "");
  LLVMBuildCondBr(e->b, odd, b1, b0);
  for (int q = 0; q < 2; q++) {
    LLVMPositionBuilderAtEnd(e->b, q ? b1 : b0);
    dwdx_row(e, c, r, q);
    LLVMBuildBr(e->b, join);
  }
  LLVMPositionBuilderAtEnd(e->b, join);
}

/* the vector of lane indices 0 .. vl - 1 (i64) */
static LLVMValueRef lane_index(CgEmit *e) {
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < e->vl; l++) lanes_c[l] = cg_c64(e, l);
  return LLVMConstVector(lanes_c, (unsigned)e->vl);
}

/* task t of nt: dx rows [r0, r1) of the N·C·H rows */
static void dwdx_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const CgConv *c = arg;
  const IrNode *n = node(e, k->node);
  LLVMValueRef rows = cg_c64(e, c->N * c->C * c->H);
  LLVMValueRef r0 = LLVMBuildSDiv(e->b, mul(e, t, rows), nt, "");
  LLVMValueRef r1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), rows), nt, "");
  DwDxRow r = {.lanes = lane_index(e)};
  Loop lr;
  loop_begin(e, &lr, r0, r1, 1);
  LLVMValueRef ih = LLVMBuildSRem(e->b, lr.iv, cg_c64(e, c->H), "");
  LLVMValueRef nc = LLVMBuildSDiv(e->b, lr.iv, cg_c64(e, c->H), "");
  LLVMValueRef ch = LLVMBuildSRem(e->b, nc, cg_c64(e, c->C), "");
  LLVMValueRef dyc = gep8(e, cg_ptr(e, n->in[0]), mul(e, nc, cg_c64(e, c->OH * c->OW * 4)));
  LLVMValueRef wc = gep8(e, cg_ptr(e, n->in[1]), mul(e, ch, cg_c64(e, c->KH * c->KW * 4)));
  r.dxr = gep8(e, cg_ptr(e, k->out), mul(e, lr.iv, cg_c64(e, c->W * 4)));
  for (int kh = 0; kh < c->KH; kh++) {
    dwdx_dyrow(e, c, dyc, ih, kh, &r);
    for (int kw = 0; kw < c->KW; kw++)
      r.wv[kh][kw] = splat(e, LLVMBuildLoad2(e->b, e->f32, gep8(e, wc, cg_c64(e, (kh * c->KW + kw) * 4)), ""),
                           e->vl);
  }
  dwdx_row_at(e, c, &r, ih);
  loop_end(e, &lr);
}

/* the data gradient of a depthwise convolution (CgConv.depthwise, stride 1 or 2) computed
 * directly, dx rows spread over the threads; no unfold, no scratch */
static void lower_depthwise_dx(CgEmit *e, const CgKernel *k, const CgConv *c) {
  int64_t rows = c->N * c->C * c->H;
  run_items(e, k, rows, rows * c->W * c->KH * c->KW, dwdx_body, c);
}

/* ---- col2im in dx rows ------------------------------------------------------------------ */

/* A data gradient's col2im at strides 1 and 2 with at most 8x8 taps is the transposed
 * depthwise convolution's rows above with a row of the unfold per tap instead of a filter
 * value: dx's row ih of channel c sums, in vectors along the row, the unfold's rows (c, kh,
 * kw) at oh = (ih + ph - kh·dh) / sh, in the taps' serial order (the scalar col2im's sums bit
 * for bit), and is stored whole, so dx needs no zeroing. The rows of every image of the call
 * (all of them with CgConv.batch) over the threads. */
static bool col2im_rows(const CgEmit *e, const CgConv *c) {
  return c->KH <= 8 && c->KW <= 8 && c->sh <= 2 && c->sw <= 2 && e->vl <= 64;
}

/* task t of nt: dx rows [r0, r1) of the call's images x Cg x H */
static void col2im_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const ColTask *ct = arg;
  const CgConv *c = ct->c;
  int64_t ld = ct->batch ? c->N * c->P : c->P;
  LLVMValueRef rows = cg_c64(e, (ct->batch ? c->N : 1) * c->Cg * c->H);
  LLVMValueRef r0 = LLVMBuildSDiv(e->b, mul(e, t, rows), nt, "");
  LLVMValueRef r1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), rows), nt, "");
  DwDxRow r = {.lanes = lane_index(e), .tapstride = ld * 4};
  LLVMValueRef col = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  Loop lr;
  loop_begin(e, &lr, r0, r1, 1);
  LLVMValueRef ih = LLVMBuildSRem(e->b, lr.iv, cg_c64(e, c->H), "");
  LLVMValueRef q = LLVMBuildSDiv(e->b, lr.iv, cg_c64(e, c->H), "");
  LLVMValueRef ch = LLVMBuildSRem(e->b, q, cg_c64(e, c->Cg), "");
  LLVMValueRef img = ct->batch ? LLVMBuildSDiv(e->b, q, cg_c64(e, c->Cg), "") : ct->x[0];
  LLVMValueRef xoff = add(e, add(e, mul(e, img, cg_c64(e, ct->xs)), mul(e, ct->x[1], cg_c64(e, ct->xg))),
                          mul(e, add(e, mul(e, ch, cg_c64(e, c->H)), ih), cg_c64(e, c->W * 4)));
  r.dxr = gep8(e, cg_ptr(e, ct->xnode), xoff);
  LLVMValueRef coff = mul(e, ch, cg_c64(e, c->KH * c->KW * ld * 4));
  if (ct->batch) coff = add(e, coff, mul(e, img, cg_c64(e, c->P * 4)));
  LLVMValueRef colc = gep8(e, col, coff);
  for (int kh = 0; kh < c->KH; kh++)
    dwdx_dyrow(e, c, gep8(e, colc, cg_c64(e, kh * c->KW * ld * 4)), ih, kh, &r);
  dwdx_row_at(e, c, &r, ih);
  loop_end(e, &lr);
}

/* col2im of image n (every image with ct->batch), group g: dx rows over the threads (the
 * scalar accumulating col2im by channel where the rows do not apply; dx zeroed before) */
static void emit_col2im(CgEmit *e, const CgKernel *k, ColTask *ct, LLVMValueRef n, LLVMValueRef g) {
  const CgConv *c = ct->c;
  if (!col2im_rows(e, c) && !ct->batch) {
    emit_im2col_par(e, k, ct, n, g);
    return;
  }
  if (!col2im_rows(e, c)) {
    Loop ln;
    loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
    emit_im2col_par(e, k, ct, ln.iv, g);
    loop_end(e, &ln);
    return;
  }
  int64_t nimg = ct->batch ? c->N : 1, rows = nimg * c->Cg * c->H;
  int64_t maxt = nimg * c->K * c->P / 32768 + 1;
  if (maxt > rows) maxt = rows;
  LLVMValueRef x[TASK_NX] = {n, g};
  if (maxt <= 1) {
    ct->x[0] = n, ct->x[1] = g;
    col2im_body(e, k, ct, cg_c64(e, 0), cg_c64(e, 1));
    return;
  }
  run_tasks_x(e, k, maxt, col2im_body, ct, x, ct->x);
}

/* ---- depthwise filter gradient, direct -------------------------------------------------- */

/* n vector accumulators in one entry alloca, zeroed here; their addresses in slot */
static void acc_slots(CgEmit *e, int n, const char *name, LLVMValueRef *slot) {
  LLVMTypeRef at = LLVMArrayType2(e->vf, (uint64_t)n);
  LLVMValueRef acc = entry_alloca(e, at, name);
  for (int i = 0; i < n; i++) {
    LLVMValueRef idx[2] = {c32(e, 0), c32(e, i)};
    slot[i] = LLVMBuildGEP2(e->b, at, acc, idx, 2, "");
    LLVMBuildStore(e->b, LLVMConstNull(e->vf), slot[i]);
  }
}

/* an accumulator's lanes summed in order in double, stored as f32 at dst */
static void acc_sum_store(CgEmit *e, LLVMValueRef slot, LLVMValueRef dst) {
  LLVMTypeRef vd = LLVMVectorType(e->f64, (unsigned)e->vl);
  LLVMValueRef v = LLVMBuildFPExt(e->b, LLVMBuildLoad2(e->b, e->vf, slot, ""), vd, "");
  LLVMValueRef ra[2] = {dconst(e, 0), v};
  LLVMValueRef sum = intrinsic(e, "llvm.vector.reduce.fadd", &vd, 1, ra, 2);
  LLVMBuildStore(e->b, LLVMBuildFPTrunc(e->b, sum, e->f32, ""), dst);
}

/* task t of nt: channels [c0, c1) of the filter gradient dw[c][kh][kw] = Σ dy[n][c][oh][ow]·
 * x[n][c][ih][iw]. For one channel, every image's output rows in vectors of OW: dy's
 * vector times each tap's input vector (dw_tap, the forward's loads) into that tap's vector
 * accumulator; at the end the lanes are summed in order in double. Channels are whole
 * tasks, so the bits do not depend on the thread count. */
static void dwdf_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const CgConv *c = arg;
  const IrNode *n = node(e, k->node);
  int vl = e->vl, taps = (int)(c->KH * c->KW);
  LLVMValueRef C = cg_c64(e, c->C);
  LLVMValueRef c0 = LLVMBuildSDiv(e->b, mul(e, t, C), nt, "");
  LLVMValueRef c1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), C), nt, "");
  LLVMTypeRef vt = e->vf;
  LLVMValueRef slot[64];
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < vl; l++) lanes_c[l] = cg_c64(e, l);
  LLVMValueRef lanes = LLVMConstVector(lanes_c, (unsigned)vl);
  Loop lc, ln, lh, lw;
  loop_begin(e, &lc, c0, c1, 1);
  acc_slots(e, taps, "dwacc", slot);
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  LLVMValueRef nc = add(e, mul(e, ln.iv, C), lc.iv);
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, nc, cg_c64(e, c->H * c->W * 4)));
  LLVMValueRef dyc = gep8(e, cg_ptr(e, n->in[1]), mul(e, nc, cg_c64(e, c->OH * c->OW * 4)));
  loop_begin(e, &lh, cg_c64(e, 0), cg_c64(e, c->OH), 1);
  LLVMValueRef dyr = gep8(e, dyc, mul(e, lh.iv, cg_c64(e, c->OW * 4)));
  loop_begin(e, &lw, cg_c64(e, 0), cg_c64(e, c->OW), vl);
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, lw.iv, vl), lanes),
                                  splat(e, cg_c64(e, c->OW), vl), "");
  LLVMTypeRef over[2] = {e->vf, e->ptr};
  LLVMValueRef largs[4] = {LLVMBuildGEP2(e->b, e->f32, dyr, &lw.iv, 1, ""), c32(e, 4), ok,
                           LLVMConstNull(e->vf)};
  LLVMValueRef dyv = intrinsic(e, "llvm.masked.load", over, 2, largs, 4);
  for (int kh = 0; kh < c->KH; kh++)
    for (int kw = 0; kw < c->KW; kw++) {
      LLVMValueRef xv = dw_tap(e, c, xc, lw.iv, lanes, ok, lh.iv, kh, kw);
      LLVMValueRef *s = &slot[kh * c->KW + kw];
      LLVMValueRef fa[3] = {dyv, xv, LLVMBuildLoad2(e->b, e->vf, *s, "")};
      LLVMBuildStore(e->b, intrinsic(e, "llvm.fma", &vt, 1, fa, 3), *s);
    }
  loop_end(e, &lw);
  loop_end(e, &lh);
  loop_end(e, &ln);
  LLVMValueRef dwc = gep8(e, cg_ptr(e, k->out), mul(e, lc.iv, cg_c64(e, taps * 4)));
  for (int i = 0; i < taps; i++) acc_sum_store(e, slot[i], gep8(e, dwc, cg_c64(e, i * 4)));
  loop_end(e, &lc);
}

/* the filter gradient of a depthwise convolution (CgConv.depthwise) computed directly,
 * channels spread over the threads; no unfold, no packing */
static void lower_depthwise_dw(CgEmit *e, const CgKernel *k, const CgConv *c) {
  run_items(e, k, c->C, c->N * c->C * c->OH * c->OW * c->KH * c->KW, dwdf_body, c);
}

/* ---- filter gradient of few output channels, direct ----------------------------------- */

/* filter row kh of one item (output channels o0 .. o0 + OB - 1, input channel xch of the
 * image, ci within the group): for every image and output row, dy's OB vectors along the
 * row and each tap's input vector (dw_tap) into OB x KW vector accumulators, then each
 * accumulator's lanes summed in order in double into dw[o][ci][kh][kw] */
typedef struct WgradItem {
  LLVMValueRef o0, xch, ci, lanes;
} WgradItem;

static void wgrad_row(CgEmit *e, const CgKernel *k, const CgConv *c, const WgradItem *it, int kh) {
  const IrNode *n = node(e, k->node);
  int vl = e->vl, ob = (int)c->OB, kwn = (int)c->KW;
  LLVMTypeRef vt = e->vf, over[2] = {e->vf, e->ptr};
  LLVMValueRef slot[64];
  acc_slots(e, ob * kwn, "wgacc", slot);
  Loop ln, lh, lw;
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, add(e, mul(e, ln.iv, cg_c64(e, c->C)), it->xch),
                                                    cg_c64(e, c->H * c->W * 4)));
  LLVMValueRef dyc = gep8(e, cg_ptr(e, n->in[1]), mul(e, add(e, mul(e, ln.iv, cg_c64(e, c->O)), it->o0),
                                                     cg_c64(e, c->OH * c->OW * 4)));
  loop_begin(e, &lh, cg_c64(e, 0), cg_c64(e, c->OH), 1);
  LLVMValueRef dyr = gep8(e, dyc, mul(e, lh.iv, cg_c64(e, c->OW * 4)));
  loop_begin(e, &lw, cg_c64(e, 0), cg_c64(e, c->OW), vl);
  LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, lw.iv, vl), it->lanes),
                                  splat(e, cg_c64(e, c->OW), vl), "");
  LLVMValueRef dyv[32]; /* OB <= 16 (passes/tiles.c choose_wgrad) */
  for (int j = 0; j < ob; j++) {
    LLVMValueRef off = add(e, lw.iv, cg_c64(e, (int64_t)j * c->OH * c->OW));
    LLVMValueRef la[4] = {LLVMBuildGEP2(e->b, e->f32, dyr, &off, 1, ""), c32(e, 4), ok,
                          LLVMConstNull(e->vf)};
    dyv[j] = intrinsic(e, "llvm.masked.load", over, 2, la, 4);
  }
  for (int kw = 0; kw < kwn; kw++) {
    LLVMValueRef xv = dw_tap(e, c, xc, lw.iv, it->lanes, ok, lh.iv, kh, kw);
    for (int j = 0; j < ob; j++) {
      LLVMValueRef s = slot[j * kwn + kw];
      LLVMValueRef fa[3] = {dyv[j], xv, LLVMBuildLoad2(e->b, e->vf, s, "")};
      LLVMBuildStore(e->b, intrinsic(e, "llvm.fma", &vt, 1, fa, 3), s);
    }
  }
  loop_end(e, &lw);
  loop_end(e, &lh);
  loop_end(e, &ln);
  LLVMValueRef dw = cg_ptr(e, k->out);
  for (int j = 0; j < ob; j++) {
    LLVMValueRef row = add(e, mul(e, add(e, it->o0, cg_c64(e, j)), cg_c64(e, c->Cg)), it->ci);
    LLVMValueRef base = gep8(e, dw, mul(e, row, cg_c64(e, c->KH * c->KW * 4)));
    for (int kw = 0; kw < kwn; kw++)
      acc_sum_store(e, slot[j * kwn + kw], gep8(e, base, cg_c64(e, (kh * c->KW + kw) * 4)));
  }
}

/* vl positions from p (its images' rows at xc, dy's at dyc: OB rows of dy, CB of x, P
 * apart) into the OB x CB accumulators; ok: the lanes' mask, NULL for a whole vector */
static void pw_wgrad_step(CgEmit *e, const CgConv *c, LLVMValueRef xc, LLVMValueRef dyc,
                          LLVMValueRef p, LLVMValueRef ok, LLVMValueRef *slot) {
  int ob = (int)c->OB, cb = (int)c->CB;
  LLVMTypeRef vt = e->vf, over[2] = {e->vf, e->ptr};
  LLVMValueRef dyv[8], xv[8]; /* OB, CB <= 8 (passes/tiles.c choose_wgrad_pw) */
  for (int j = 0; j < ob + cb; j++) {
    LLVMValueRef base = j < ob ? dyc : xc;
    LLVMValueRef off = add(e, p, cg_c64(e, (int64_t)(j < ob ? j : j - ob) * c->P));
    LLVMValueRef ptr = LLVMBuildGEP2(e->b, e->f32, base, &off, 1, "");
    LLVMValueRef v;
    if (ok) {
      LLVMValueRef la[4] = {ptr, c32(e, 4), ok, LLVMConstNull(e->vf)};
      v = intrinsic(e, "llvm.masked.load", over, 2, la, 4);
    } else {
      v = LLVMBuildLoad2(e->b, e->vf, ptr, "");
      LLVMSetAlignment(v, 4);
    }
    if (j < ob) dyv[j] = v;
    else xv[j - ob] = v;
  }
  for (int j = 0; j < ob; j++)
    for (int q = 0; q < cb; q++) {
      LLVMValueRef sl = slot[j * cb + q];
      LLVMValueRef fa[3] = {dyv[j], xv[q], LLVMBuildLoad2(e->b, e->vf, sl, "")};
      LLVMBuildStore(e->b, intrinsic(e, "llvm.fma", &vt, 1, fa, 3), sl);
    }
}

/* one pass of the pointwise direct filter gradient (CgConv.CB: 1x1, stride 1, unpadded):
 * output channels o0 .. o0 + OB - 1 by input channels ci .. ci + CB - 1 (x's channel xch
 * on), every image's P positions in whole vectors then a masked one, each accumulator's
 * lanes summed in order in double into dw[o][ci + q] */
static void pw_wgrad_item(CgEmit *e, const CgKernel *k, const CgConv *c, const WgradItem *it) {
  const IrNode *n = node(e, k->node);
  int vl = e->vl;
  LLVMValueRef slot[64];
  acc_slots(e, (int)(c->OB * c->CB), "pwacc", slot);
  int64_t whole = c->P / vl * vl;
  Loop ln, lp;
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, add(e, mul(e, ln.iv, cg_c64(e, c->C)), it->xch),
                                                    cg_c64(e, c->P * 4)));
  LLVMValueRef dyc = gep8(e, cg_ptr(e, n->in[1]), mul(e, add(e, mul(e, ln.iv, cg_c64(e, c->O)), it->o0),
                                                     cg_c64(e, c->P * 4)));
  if (whole > 0) {
    loop_begin(e, &lp, cg_c64(e, 0), cg_c64(e, whole), vl);
    pw_wgrad_step(e, c, xc, dyc, lp.iv, NULL, slot);
    loop_end(e, &lp);
  }
  if (whole < c->P) {
    LLVMValueRef ok = LLVMBuildICmp(e->b, LLVMIntSLT, add(e, splat(e, cg_c64(e, whole), vl), it->lanes),
                                    splat(e, cg_c64(e, c->P), vl), "");
    pw_wgrad_step(e, c, xc, dyc, cg_c64(e, whole), ok, slot);
  }
  loop_end(e, &ln);
  LLVMValueRef dw = cg_ptr(e, k->out);
  for (int j = 0; j < (int)c->OB; j++)
    for (int q = 0; q < (int)c->CB; q++) {
      LLVMValueRef row = add(e, mul(e, add(e, it->o0, cg_c64(e, j)), cg_c64(e, c->Cg)),
                             add(e, it->ci, cg_c64(e, q)));
      acc_sum_store(e, slot[j * c->CB + q], gep8(e, dw, mul(e, row, cg_c64(e, 4))));
    }
}

/* pass i of the pointwise direct filter gradient: its group's output and input blocks, the
 * larger operand's block outer (consecutive passes share its rows while they are in cache;
 * the smaller operand's rows are read again by every pass) */
static void pw_wgrad_pass(CgEmit *e, const CgConv *c, LLVMValueRef i, WgradItem *it) {
  int64_t nob = c->Og / c->OB, ncb = c->Cg / c->CB;
  bool cfirst = c->Cg > c->Og;
  LLVMValueRef per = cg_c64(e, nob * ncb), g = LLVMBuildSDiv(e->b, i, per, "");
  LLVMValueRef r = LLVMBuildSRem(e->b, i, per, ""), in = cg_c64(e, cfirst ? nob : ncb);
  LLVMValueRef outer = LLVMBuildSDiv(e->b, r, in, ""), inner = LLVMBuildSRem(e->b, r, in, "");
  LLVMValueRef ob = cfirst ? inner : outer, cbk = cfirst ? outer : inner;
  it->o0 = add(e, mul(e, g, cg_c64(e, c->Og)), mul(e, ob, cg_c64(e, c->OB)));
  it->ci = mul(e, cbk, cg_c64(e, c->CB));
  it->xch = add(e, mul(e, g, cg_c64(e, c->Cg)), it->ci);
}

/* task t of nt: items [i0, i1) of the G·(Og/OB)·Cg passes of the direct filter gradient
 * (CgConv.OB, docs/cpu-convolutions.md), each its filter rows one after the other. Every
 * filter element is one item's, summed in a fixed order: the bits do not depend on the
 * thread count. */
static void wgrad_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const CgConv *c = arg;
  int64_t cbs = c->CB > 0 ? c->Cg / c->CB : c->Cg; /* passes per output block */
  LLVMValueRef items = cg_c64(e, c->G * (c->Og / c->OB) * cbs);
  LLVMValueRef i0 = LLVMBuildSDiv(e->b, mul(e, t, items), nt, "");
  LLVMValueRef i1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), items), nt, "");
  LLVMValueRef lanes_c[64];
  for (int l = 0; l < e->vl; l++) lanes_c[l] = cg_c64(e, l);
  Loop li;
  loop_begin(e, &li, i0, i1, 1);
  WgradItem it = {.lanes = LLVMConstVector(lanes_c, (unsigned)e->vl)};
  if (c->CB > 0) {
    pw_wgrad_pass(e, c, li.iv, &it);
  } else {
    LLVMValueRef gb = LLVMBuildSDiv(e->b, li.iv, cg_c64(e, c->Cg), ""); /* g·(Og/OB) + block */
    it.ci = LLVMBuildSRem(e->b, li.iv, cg_c64(e, c->Cg), "");
    it.o0 = mul(e, gb, cg_c64(e, c->OB));
    it.xch = add(e, mul(e, LLVMBuildSDiv(e->b, it.o0, cg_c64(e, c->Og), ""), cg_c64(e, c->Cg)), it.ci);
  }
  if (c->CB > 0) pw_wgrad_item(e, k, c, &it);
  else
    for (int kh = 0; kh < c->KH; kh++) wgrad_row(e, k, c, &it, kh);
  loop_end(e, &li);
}

/* the filter gradient of a convolution with few output channels computed directly (the
 * tile's wgrad_ob): passes spread over the threads; no GEMM, no packing, no scratch */
static void lower_conv_wgrad(CgEmit *e, const CgKernel *k, const CgConv *c) {
  int64_t items = c->G * (c->Og / c->OB) * (c->CB > 0 ? c->Cg / c->CB : c->Cg);
  run_items(e, k, items, c->N * c->O * c->Cg * c->OH * c->OW * c->KH * c->KW, wgrad_body, c);
}

/* a forward convolution's filter as its GEMM f reads it: the parameter (lda K, groups
 * Og·K floats apart) or, when k->packed, its panels packed once (lda the padded rows) */
static LLVMValueRef conv_filter(CgEmit *e, const CgKernel *k, LLVMValueRef f, const CgConv *c,
                                int64_t *lda, int64_t *wg) {
  LLVMValueRef Wt = cg_ptr(e, node(e, k->node)->in[1]);
  *lda = c->K;
  *wg = c->Og * c->K * 4;
  if (!k->packed) return Wt;
  *lda = k->packed_rpad;
  *wg = k->packed_rpad * k->packed_k * 4;
  return packed_operand(e, k, f, Wt, c->K, c->Og, c->Og * c->K * 4, e->gemm_blk.mr, NULL);
}

/* a forward convolution whose images share one GEMM per group (CgConv.batch): the output
 * [Og][N·P] in scratch, its epilogue applied there, then each image's P-long rows copied to
 * y[n][g·Og + o] */
static int lower_conv_batch(CgEmit *e, const CgKernel *k, const CgConv *c, LlvmGemmSpec *sp,
                            LLVMValueRef bnt) {
  const IrNode *n = node(e, k->node);
  sp->bias = k->bias ? LLVM_GEMM_BIAS_ROW : bnt ? LLVM_GEMM_AFFINE_ROW : LLVM_GEMM_BIAS_NONE;
  sp->relu = k->relu;
  LLVMValueRef f = gemm_fn(e, sp);
  if (!f) return -1;
  LLVMValueRef X = cg_ptr(e, n->in[0]), Y = cg_ptr(e, k->out);
  int64_t lda, wg;
  LLVMValueRef Wt = conv_filter(e, k, f, c, &lda, &wg);
  if (!Wt) return -1;
  LLVMValueRef T = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  LLVMValueRef bias = k->bias ? cg_ptr(e, k->bias_node) : NULL;
  int64_t np = c->N * c->P;
  Loop lg, lo, ln;
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  LLVMValueRef xp = gep8(e, X, mul(e, lg.iv, cg_c64(e, c->Cg * c->H * c->W * 4)));
  LLVMValueRef wp = gep8(e, Wt, mul(e, lg.iv, cg_c64(e, wg)));
  LLVMValueRef bp = bias ? gep8(e, bias, mul(e, lg.iv, cg_c64(e, c->Og * 4)))
                    : bnt ? gep8(e, bnt, mul(e, lg.iv, cg_c64(e, c->Og * 8)))
                          : NULL;
  gemm_call(e, f, c->Og, np, c->K, wp, lda, xp, np, T, np, bp);
  loop_begin(e, &lo, cg_c64(e, 0), cg_c64(e, c->Og), 1);
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  LLVMValueRef src = gep8(e, T, mul(e, add(e, mul(e, lo.iv, cg_c64(e, np)), mul(e, ln.iv, cg_c64(e, c->P))),
                                    cg_c64(e, 4)));
  LLVMValueRef ch = add(e, mul(e, lg.iv, cg_c64(e, c->Og)), lo.iv);
  LLVMValueRef dst = gep8(e, Y, mul(e, add(e, mul(e, ln.iv, cg_c64(e, c->O)), ch), cg_c64(e, c->P * 4)));
  if (k->nepi) epi_row(e, k, src, dst, ch, cg_c64(e, c->P));
  else LLVMBuildMemCpy(e->b, dst, 4, src, 4, cg_c64(e, c->P * 4));
  loop_end(e, &ln);
  loop_end(e, &lo);
  loop_end(e, &lg);
  return 0;
}

/* group g's rows of dy [N][O][P] copied side by side to T[Og][N·P] */
static void copy_dy_rows(CgEmit *e, const CgConv *c, LLVMValueRef DY, LLVMValueRef T, LLVMValueRef g) {
  int64_t np = c->N * c->P;
  Loop lo, ln;
  loop_begin(e, &lo, cg_c64(e, 0), cg_c64(e, c->Og), 1);
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  LLVMValueRef dst = gep8(e, T, mul(e, add(e, mul(e, lo.iv, cg_c64(e, np)), mul(e, ln.iv, cg_c64(e, c->P))),
                                    cg_c64(e, 4)));
  LLVMValueRef row = add(e, add(e, mul(e, ln.iv, cg_c64(e, c->O)), mul(e, g, cg_c64(e, c->Og))), lo.iv);
  LLVMBuildMemCpy(e->b, dst, 4, gep8(e, DY, mul(e, row, cg_c64(e, c->P * 4))), 4, cg_c64(e, c->P * 4));
  loop_end(e, &ln);
  loop_end(e, &lo);
}

/* the filter gradient of a convolution whose images share one GEMM per group (CgConv.batch):
 * dy's rows copied to T[Og][N·P], then dW[Og][K] = T·colᵀ over the batch's positions (the
 * unfold gathered from every image while packing): one call a group, not one a group and
 * image whose K is an image's few positions */
static int lower_bwd_filter_batch(CgEmit *e, const CgKernel *k, const CgConv *c, LlvmGemmSpec *sp) {
  const IrNode *n = node(e, k->node);
  LLVMValueRef f = gemm_fn(e, sp);
  if (!f) return -1;
  LLVMValueRef X = cg_ptr(e, n->in[0]), DY = cg_ptr(e, n->in[1]), DW = cg_ptr(e, k->out);
  LLVMValueRef T = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  int64_t np = c->N * c->P;
  Loop lg;
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  copy_dy_rows(e, c, DY, T, lg.iv);
  LLVMValueRef xp = gep8(e, X, mul(e, lg.iv, cg_c64(e, c->Cg * c->H * c->W * 4)));
  LLVMValueRef wp = gep8(e, DW, mul(e, lg.iv, cg_c64(e, c->Og * c->K * 4)));
  gemm_call(e, f, c->Og, c->K, np, T, np, xp, np, wp, c->K, NULL);
  loop_end(e, &lg);
  return 0;
}

/* the 36 GEMMs of a Winograd round: M[xi] = U[xi]·V[xi] for xi in [x0, x1), each over the
 * pool (inside a task, or below its threshold for threads, a GEMM runs on its thread alone,
 * packing into that thread's kept buffer); a filter gradient's (CgConv.wino_wgrad) add
 * D[xi]·V[xi]ᵀ to the sums, each xi's in the same order whatever the threads */
typedef struct WinoGemms {
  const CgConv *c;
  LLVMValueRef f;
  int64_t u_off, s_off; /* arena offsets (tasks are functions of their own): the filter's
                           panels; V then M */
} WinoGemms;

static void wino_gemms(CgEmit *e, const CgKernel *k, const WinoGemms *w, LLVMValueRef x0,
                       LLVMValueRef x1) {
  const CgConv *c = w->c;
  LLVMValueRef S = cg_region_ptr(e, CG_REGION_ARENA, w->s_off);
  LLVMValueRef R = gep8(e, S, cg_c64(e, 36 * c->C * c->T * 4)); /* after V: M, or dy's D */
  Loop l;
  loop_begin(e, &l, x0, x1, 1);
  LLVMValueRef B = gep8(e, S, mul(e, l.iv, cg_c64(e, c->C * c->T * 4))); /* V[xi] */
  if (c->wino_wgrad) { /* sums[xi] += D[xi]·V[xi]ᵀ ([O x T]·[T x C], V stored C x T) */
    LLVMValueRef A = gep8(e, R, mul(e, l.iv, cg_c64(e, c->O * c->T * 4)));
    LLVMValueRef sums = gep8(e, S, cg_c64(e, 36 * (c->C + c->O) * c->T * 4));
    LLVMValueRef C = gep8(e, sums, mul(e, l.iv, cg_c64(e, c->O * c->C * 4)));
    gemm_call(e, w->f, c->O, c->C, c->T, A, c->T, B, c->T, C, c->C, NULL);
  } else {
    LLVMValueRef U = cg_region_ptr(e, CG_REGION_ARENA, w->u_off);
    LLVMValueRef A = gep8(e, U, mul(e, l.iv, cg_c64(e, k->packed_rpad * k->packed_k * 4)));
    LLVMValueRef C = gep8(e, R, mul(e, l.iv, cg_c64(e, c->O * c->T * 4)));
    gemm_call(e, w->f, c->O, c->T, c->C, A, k->packed_rpad, B, c->T, C, c->T, NULL);
  }
  loop_end(e, &l);
}

/* task t of nt: GEMMs [36t/nt, 36(t+1)/nt) */
static void wino_gemm_task(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  LLVMValueRef x0 = LLVMBuildSDiv(e->b, mul(e, t, cg_c64(e, 36)), nt, "");
  LLVMValueRef x1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), cg_c64(e, 36)), nt, "");
  wino_gemms(e, k, arg, x0, x1);
}

/* the transformed filter's panels of a Winograd kernel that does not pack it once
 * (CgKernel.wino_step: a training step's, a data gradient's): every call, U (a data
 * gradient's: the filter rotated, channels swapped) computed straight into the GEMM's A
 * panels at the start of scratch (rt_k_wino_filter_pack); NULL after a diagnostic */
static LLVMValueRef wino_step_filter(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef f) {
  size_t len = 0;
  int64_t W = e->gemm_blk.mr;
  if (!llvm_gemm_prepack_fn(e->mod, LLVMGetValueName2(f, &len)) ||
      (c->O + W - 1) / W * W > k->packed_rpad) {
    diag_error(e->d, node(e, k->node)->loc, "internal error: Winograd filter of %lld rows in %lld",
               (long long)c->O, (long long)k->packed_rpad);
    return NULL;
  }
  LLVMValueRef dst = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  /* the filter's own dims: [O, C] of the fields, or a data gradient's [C, O] */
  int64_t g[7] = {c->wino_bwd ? c->C : c->O, c->wino_bwd ? c->O : c->C, c->wino_bwd, W,
                  e->gemm_blk.kc, k->packed_rpad, k->packed_rpad * k->packed_k};
  LLVMValueRef a[4] = {e->pool, cg_ptr(e, node(e, k->node)->in[1]), dst, const_table(e, g, 7)};
  rt_call(e, "rt_k_wino_filter_pack", "pppp", a);
  return dst;
}

/* Winograd F(4,3) (CgConv.wino, docs/cpu-convolutions.md), in rounds of NB images: the
 * input transform V[36][C][T] into scratch, 36 GEMMs M[xi] = U[xi]·V[xi] ([O x C]·[C x T],
 * U the filter's transform packed once into the kernel's panels, or every call in a
 * training step), then the output transform with the epilogue and the group (cg_epi_wino: a
 * residual, relu) into y (runtime/rt_winograd.c).
 * A data gradient is the Winograd convolution of dy into dx (CgConv.wino_bwd). */
static int lower_conv_wino(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef bnt) {
  const IrNode *n = node(e, k->node);
  int res = -1;
  bool res_relu = false;
  if (k->nepi && !cg_epi_wino(e->p, k, &res, &res_relu)) {
    diag_error(e->d, n->loc, "code generation: the Winograd output transform cannot apply this elementwise group");
    return -1;
  }
  LlvmGemmSpec sp = {.packed = LLVM_GEMM_PACKED_A};
  gemm_blocking(e, k->tile->wino, true, &sp.blk);
  LLVMValueRef f = gemm_fn(e, &sp);
  if (!f) return -1;
  LLVMValueRef S = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset + c->upack);
  LLVMValueRef U = k->wino_step ? wino_step_filter(e, k, c, f)
                                : packed_operand(e, k, f, S, c->C, c->O, c->O * c->C * 4,
                                                 e->gemm_blk.mr, cg_ptr(e, n->in[1]));
  if (!U) return -1;
  int64_t g[11] = {c->NB, c->C, c->H, c->W, c->O, c->OH, c->OW, c->ph, c->pw, c->TH, c->TW};
  LLVMValueRef geom = const_table(e, g, 11);
  LLVMValueRef M = gep8(e, S, cg_c64(e, 36 * c->C * c->T * 4));
  WinoGemms wg = {c, f, k->wino_step ? k->scratch_offset : k->packed_offset,
                  k->scratch_offset + c->upack};
  Loop lr; /* rounds of NB images */
  loop_begin(e, &lr, cg_c64(e, 0), cg_c64(e, c->N / c->NB), 1);
  LLVMValueRef X = gep8(e, cg_ptr(e, n->in[0]), mul(e, lr.iv, cg_c64(e, c->NB * c->C * c->H * c->W * 4)));
  LLVMValueRef Y = gep8(e, cg_ptr(e, k->out), mul(e, lr.iv, cg_c64(e, c->NB * c->O * c->OH * c->OW * 4)));
  LLVMValueRef ain[4] = {e->pool, X, S, geom};
  rt_call(e, "rt_k_wino_in", "pppp", ain);
  /* GEMMs below the GEMM's own threshold for threads (llvm_gemm.h parallel_min_flops) run
   * one per task instead, so that every thread has work */
  if (c->O * c->T * c->C < (INT64_C(1) << 21)) run_tasks(e, k, 36, wino_gemm_task, &wg);
  else wino_gemms(e, k, &wg, cg_c64(e, 0), cg_c64(e, 36));
  LLVMValueRef null = LLVMConstPointerNull(e->ptr), R = null;
  if (res >= 0)
    R = gep8(e, cg_ptr(e, res), mul(e, lr.iv, cg_c64(e, c->NB * c->O * c->OH * c->OW * 4)));
  LLVMValueRef aout[9] = {e->pool, M, Y, k->bias ? cg_ptr(e, k->bias_node) : null,
                          bnt ? bnt : null, c32(e, k->relu), R, c32(e, res_relu), geom};
  rt_call(e, "rt_k_wino_out", "pppppipip", aout);
  loop_end(e, &lr);
  return 0;
}

/* the filter gradient of a 3x3 stride-1 convolution as Winograd (CgConv.wino_wgrad,
 * docs/cpu-convolutions.md): the sums M[36][O][C] zeroed, then per round of NB images x's
 * input transform V (the forward's), dy's D = A·dy·Aᵀ and the 36 GEMMs M[xi] += D[xi]·V[xi]ᵀ
 * (one a task), then dW = Gᵀ·M·G (runtime/rt_winograd.c); dW is overwritten */
static int lower_wgrad_wino(CgEmit *e, const CgKernel *k, const CgConv *c) {
  const IrNode *n = node(e, k->node);
  LlvmGemmSpec sp = {.trans_b = 1, .accumulate = 1};
  gemm_blocking(e, k->tile->wino, true, &sp.blk);
  LLVMValueRef f = gemm_fn(e, &sp);
  if (!f) return -1;
  LLVMValueRef S = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  LLVMValueRef D = gep8(e, S, cg_c64(e, 36 * c->C * c->T * 4));
  LLVMValueRef M = gep8(e, S, cg_c64(e, 36 * (c->C + c->O) * c->T * 4));
  int64_t g[11] = {c->NB, c->C, c->H, c->W, c->O, c->OH, c->OW, c->ph, c->pw, c->TH, c->TW};
  LLVMValueRef geom = const_table(e, g, 11);
  WinoGemms wg = {c, f, 0, k->scratch_offset};
  memset0(e, M, 36 * c->O * c->C * 4);
  Loop lr; /* rounds of NB images */
  loop_begin(e, &lr, cg_c64(e, 0), cg_c64(e, c->N / c->NB), 1);
  LLVMValueRef X = gep8(e, cg_ptr(e, n->in[0]), mul(e, lr.iv, cg_c64(e, c->NB * c->C * c->H * c->W * 4)));
  LLVMValueRef DY = gep8(e, cg_ptr(e, n->in[1]), mul(e, lr.iv, cg_c64(e, c->NB * c->O * c->OH * c->OW * 4)));
  LLVMValueRef ain[4] = {e->pool, X, S, geom}, ady[4] = {e->pool, DY, D, geom};
  rt_call(e, "rt_k_wino_in", "pppp", ain);
  rt_call(e, "rt_k_wino_dy", "pppp", ady);
  run_tasks(e, k, 36, wino_gemm_task, &wg);
  loop_end(e, &lr);
  LLVMValueRef aout[5] = {e->pool, M, cg_ptr(e, k->out), cg_c64(e, c->O), cg_c64(e, c->C)};
  rt_call(e, "rt_k_wino_wgrad_out", "pppll", aout);
  return 0;
}

/* the data gradient of a convolution whose images share one GEMM per group (CgConv.batch):
 * dy's rows copied to T[Og][N·P] after the unfold, dcol[K][N·P] = Wᵀ·T, and each image's
 * columns summed into dx (col2im) */
static int lower_bwd_data_batch(CgEmit *e, const CgKernel *k, const CgConv *c, LlvmGemmSpec *sp) {
  const IrNode *n = node(e, k->node);
  LLVMValueRef f = gemm_fn(e, sp);
  if (!f) return -1;
  LLVMValueRef DY = cg_ptr(e, n->in[0]), Wt = cg_ptr(e, n->in[1]), DX = cg_ptr(e, k->out);
  int64_t np = c->N * c->P, xs = c->C * c->H * c->W * 4, xg = c->Cg * c->H * c->W * 4;
  LLVMValueRef col = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  LLVMValueRef T = gep8(e, col, cg_c64(e, c->K * np * 4));
  if (!col2im_rows(e, c)) memset0(e, DX, c->N * xs);
  Loop lg;
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  copy_dy_rows(e, c, DY, T, lg.iv);
  LLVMValueRef wp = gep8(e, Wt, mul(e, lg.iv, cg_c64(e, c->Og * c->K * 4)));
  gemm_call(e, f, c->K, np, c->Og, wp, c->K, T, np, col, np, NULL);
  ColTask ct = {.c = c, .xnode = k->out, .xs = xs, .xg = xg, .to_col = false, .batch = true};
  emit_col2im(e, k, &ct, cg_c64(e, 0), lg.iv);
  loop_end(e, &lg);
  return 0;
}

/* the write-back of a transposed convolution (CgConv.trans): y[n][g·Og + o][p] =
 * epilogue(yᵀ[i·P + p][o]) for every image i of the GEMM's call (all of them with batch, else
 * image n), the epilogue as the GEMM's (llvm_gemm.c emit_tile_store): a bias added, or the
 * folded batchnorm's fma, then relu. Tasks take blocks of vl output channels. */
typedef struct ConvTTask {
  const CgConv *c;
  LLVMValueRef x[TASK_NX]; /* n, g in the task */
} ConvTTask;

/* the scale and shift of output channel ch (shift alone: a bias; NULLs: no epilogue) */
static void conv_t_affine(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef ch,
                          LLVMValueRef *sc, LLVMValueRef *sh) {
  *sc = *sh = NULL;
  if (k->bn) {
    LLVMValueRef tab = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset + c->scratch);
    *sc = LLVMBuildLoad2(e->b, e->f32, gep8(e, tab, mul(e, ch, cg_c64(e, 8))), "");
    *sh = LLVMBuildLoad2(e->b, e->f32, gep8(e, tab, add(e, mul(e, ch, cg_c64(e, 8)), cg_c64(e, 4))), "");
  } else if (k->bias) {
    *sh = LLVMBuildLoad2(e->b, e->f32, gep8(e, cg_ptr(e, k->bias_node), mul(e, ch, cg_c64(e, 4))), "");
  }
}

/* v (a value or a vector of one channel's positions, the first at yp in channel ch) through
 * the epilogue */
static LLVMValueRef conv_t_epi(CgEmit *e, const CgKernel *k, LLVMValueRef v, LLVMValueRef sc,
                               LLVMValueRef sh, LLVMValueRef yp, LLVMValueRef ch) {
  LLVMTypeRef t = LLVMTypeOf(v);
  int n = LLVMGetTypeKind(t) == LLVMVectorTypeKind ? (int)LLVMGetVectorSize(t) : 0;
  if (sc) {
    LLVMValueRef a[3] = {v, n ? splat(e, sc, n) : sc, n ? splat(e, sh, n) : sh};
    v = intrinsic(e, "llvm.fma", &t, 1, a, 3);
  } else if (sh) {
    v = LLVMBuildFAdd(e->b, v, n ? splat(e, sh, n) : sh, "");
  }
  if (k->relu) {
    LLVMValueRef z = LLVMConstNull(t);
    v = LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealUGT, v, z, ""), v, z, "");
  }
  return epi_direct(e, k, v, yp, ch, NULL);
}

/* element by element: channels [o0, o1) (of group base ch0), positions [p0, P) */
static void conv_t_scalar(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef T,
                          LLVMValueRef Y, LLVMValueRef ch0, LLVMValueRef o0, LLVMValueRef o1, int64_t p0) {
  Loop lo, lp;
  loop_begin(e, &lo, o0, o1, 1);
  LLVMValueRef ch = add(e, ch0, lo.iv), sc, sh;
  conv_t_affine(e, k, c, ch, &sc, &sh);
  LLVMValueRef yrow = gep8(e, Y, mul(e, ch, cg_c64(e, c->P * 4)));
  loop_begin(e, &lp, cg_c64(e, p0), cg_c64(e, c->P), 1);
  LLVMValueRef at = mul(e, add(e, mul(e, lp.iv, cg_c64(e, c->Og)), lo.iv), cg_c64(e, 4));
  LLVMValueRef yp = gep8(e, yrow, mul(e, lp.iv, cg_c64(e, 4)));
  LLVMValueRef v = conv_t_epi(e, k, LLVMBuildLoad2(e->b, e->f32, gep8(e, T, at), ""), sc, sh, yp, ch);
  LLVMBuildStore(e->b, v, yp);
  loop_end(e, &lp);
  loop_end(e, &lo);
}

/* channels [o, o + vl), positions [0, P - P % vl): vl x vl blocks of yᵀ loaded as rows,
 * transposed in registers (log2 vl steps, each swapping the off-diagonal d x d blocks of
 * every 2d x 2d block), one vector store per channel */
static void conv_t_vector(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef T,
                          LLVMValueRef Y, LLVMValueRef ch0, LLVMValueRef o) {
  int vl = e->vl;
  LLVMTypeRef vt = LLVMVectorType(e->f32, (unsigned)vl);
  LLVMValueRef sc[64], sh[64], r[64];
  for (int j = 0; j < vl; j++) conv_t_affine(e, k, c, add(e, add(e, ch0, o), cg_c64(e, j)), &sc[j], &sh[j]);
  Loop lp;
  loop_begin(e, &lp, cg_c64(e, 0), cg_c64(e, c->P / vl * vl), vl);
  for (int j = 0; j < vl; j++) {
    LLVMValueRef at = add(e, mul(e, add(e, lp.iv, cg_c64(e, j)), cg_c64(e, c->Og)), o);
    LLVMValueRef ld = LLVMBuildLoad2(e->b, vt, gep8(e, T, mul(e, at, cg_c64(e, 4))), "");
    LLVMSetAlignment(ld, 4);
    r[j] = ld;
  }
  for (int d = vl / 2; d >= 1; d /= 2)
    for (int i = 0; i < vl; i++) {
      if (i & d) continue;
      LLVMValueRef ma[64], mb[64];
      for (int j = 0; j < vl; j++) {
        ma[j] = c32(e, (j & d) ? vl + j - d : j);
        mb[j] = c32(e, (j & d) ? vl + j : j + d);
      }
      LLVMValueRef a = LLVMBuildShuffleVector(e->b, r[i], r[i + d], LLVMConstVector(ma, (unsigned)vl), "");
      r[i + d] = LLVMBuildShuffleVector(e->b, r[i], r[i + d], LLVMConstVector(mb, (unsigned)vl), "");
      r[i] = a;
    }
  for (int j = 0; j < vl; j++) {
    LLVMValueRef ch = add(e, add(e, ch0, o), cg_c64(e, j));
    LLVMValueRef at = add(e, mul(e, ch, cg_c64(e, c->P)), lp.iv);
    LLVMValueRef yp = gep8(e, Y, mul(e, at, cg_c64(e, 4)));
    LLVMValueRef st = LLVMBuildStore(e->b, conv_t_epi(e, k, r[j], sc[j], sh[j], yp, ch), yp);
    LLVMSetAlignment(st, 4);
  }
  loop_end(e, &lp);
}

static void conv_t_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const ConvTTask *ct = arg;
  const CgConv *c = ct->c;
  int64_t vl = e->vl, nb = (c->Og + vl - 1) / vl, nfull = c->Og / vl;
  LLVMValueRef b0 = LLVMBuildSDiv(e->b, mul(e, t, cg_c64(e, nb)), nt, "");
  LLVMValueRef b1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), cg_c64(e, nb)), nt, "");
  LLVMValueRef ch0 = mul(e, ct->x[1], cg_c64(e, c->Og));
  Loop li, lb;
  loop_begin(e, &li, cg_c64(e, 0), cg_c64(e, c->batch ? c->N : 1), 1);
  LLVMValueRef img = c->batch ? li.iv : ct->x[0];
  LLVMValueRef T = gep8(e, cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset),
                        mul(e, li.iv, cg_c64(e, c->P * c->Og * 4)));
  LLVMValueRef Y = gep8(e, cg_ptr(e, k->out), mul(e, img, cg_c64(e, c->O * c->P * 4)));
  loop_begin(e, &lb, b0, smin(e, b1, cg_c64(e, nfull)), 1); /* whole blocks of vl channels */
  LLVMValueRef o = mul(e, lb.iv, cg_c64(e, vl));
  if (c->P >= vl) conv_t_vector(e, k, c, T, Y, ch0, o);
  if (c->P % vl) conv_t_scalar(e, k, c, T, Y, ch0, o, add(e, o, cg_c64(e, vl)), c->P / vl * vl);
  loop_end(e, &lb);
  if (nfull < nb) { /* the last, partial block: in the last task */
    LLVMBasicBlockRef last = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "ctail"),
                      done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "cdone");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntEQ, b1, cg_c64(e, nb), ""), last, done);
    LLVMPositionBuilderAtEnd(e->b, last);
    conv_t_scalar(e, k, c, T, Y, ch0, cg_c64(e, nfull * vl), cg_c64(e, c->Og), 0);
    LLVMBuildBr(e->b, done);
    LLVMPositionBuilderAtEnd(e->b, done);
  }
  loop_end(e, &li);
}

/* a forward convolution computed transposed (CgConv.trans, the tiles' conv_t): per group,
 * and per image unless the images share one GEMM, yᵀ[rows][Og] = colᵀ·wᵀ into scratch, col
 * gathered into A's panels (a 1x1 convolution of one image reads the image as Aᵀ) and the
 * filter as B (N x K, or its panels packed once), then the write-back (conv_t_body) */
static int lower_conv_t(CgEmit *e, const CgKernel *k, const CgConv *c) {
  const IrNode *n = node(e, k->node);
  LlvmGemmSpec sp = {.trans_b = 1, .packed = k->packed ? LLVM_GEMM_PACKED_B : LLVM_GEMM_PACKED_NONE};
  gemm_blocking(e, k->tile, false, &sp.blk);
  if (!c->direct || c->batch)
    sp.conv = (LlvmGemmConv){.on = 1, .rows = 1, .C = c->Cg, .H = c->H, .W = c->W, .KH = c->KH,
                             .KW = c->KW, .OH = c->OH, .OW = c->OW, .sh = c->sh, .sw = c->sw,
                             .ph = c->ph, .pw = c->pw, .dh = c->dh, .dw = c->dw,
                             .images = c->batch ? c->N : 1, .xs = c->C * c->H * c->W};
  else
    sp.trans_a = 1;
  LLVMValueRef f = gemm_fn(e, &sp);
  if (!f) return -1;
  LLVMValueRef X = cg_ptr(e, n->in[0]), Wt = cg_ptr(e, n->in[1]);
  int64_t ldb = c->K, wg = c->Og * c->K * 4, rows = c->batch ? c->N * c->P : c->P;
  if (k->packed) { /* the filter's panels, rpad rows apart (plan_pack.c) */
    if (!(Wt = packed_operand(e, k, f, Wt, c->K, c->Og, wg, e->gemm_blk.nr, NULL))) return -1;
    ldb = k->packed_rpad, wg = k->packed_rpad * k->packed_k * 4;
  }
  LLVMValueRef T = cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset);
  int64_t xs = c->C * c->H * c->W * 4, xg = c->Cg * c->H * c->W * 4;
  int64_t maxt = rows * c->Og / 32768 + 1, nblocks = (c->Og + e->vl - 1) / e->vl;
  Loop ln, lg;
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->batch ? 1 : c->N), 1);
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  LLVMValueRef xp = gep8(e, X, add(e, mul(e, ln.iv, cg_c64(e, xs)), mul(e, lg.iv, cg_c64(e, xg))));
  gemm_call(e, f, rows, c->Og, c->K, xp, c->P, gep8(e, Wt, mul(e, lg.iv, cg_c64(e, wg))), ldb, T,
            c->Og, NULL);
  ConvTTask ct = {.c = c};
  LLVMValueRef x[TASK_NX] = {ln.iv, lg.iv};
  if (maxt > nblocks) maxt = nblocks;
  if (maxt <= 1) {
    ct.x[0] = ln.iv, ct.x[1] = lg.iv;
    conv_t_body(e, k, &ct, cg_c64(e, 0), cg_c64(e, 1));
  } else {
    run_tasks_x(e, k, maxt, conv_t_body, &ct, x, ct.x);
  }
  loop_end(e, &lg);
  loop_end(e, &ln);
  return 0;
}

/* a convolution's GEMM calls, one per image and group: its image, group and filter
 * strides (bytes) and the unfold's scratch (CgConv.col) */
typedef struct ConvGemm {
  const CgConv *c;
  LLVMValueRef col, bnt;
  int64_t xs, xg, ys, yg, wg;
} ConvGemm;

/* image n's and group g's operands of a convolution's GEMM call: x at n·xs + g·xg bytes,
 * y at n·ys + g·yg */
static void conv_gemm_at(CgEmit *e, const ConvGemm *g, LLVMValueRef x, LLVMValueRef y, LLVMValueRef n,
                         LLVMValueRef gi, LLVMValueRef *xp, LLVMValueRef *yp) {
  *xp = gep8(e, x, add(e, mul(e, n, cg_c64(e, g->xs)), mul(e, gi, cg_c64(e, g->xg))));
  *yp = gep8(e, y, add(e, mul(e, n, cg_c64(e, g->ys)), mul(e, gi, cg_c64(e, g->yg))));
}

/* the forward: y[Og, P] = w · col (col gathered while packing, unfolded, or the image) with
 * the epilogue */
static int conv_gemm_fwd(CgEmit *e, const CgKernel *k, const ConvGemm *g, LlvmGemmSpec *sp) {
  const IrNode *n = node(e, k->node);
  const CgConv *c = g->c;
  sp->bias = k->bias ? LLVM_GEMM_BIAS_ROW : g->bnt ? LLVM_GEMM_AFFINE_ROW : LLVM_GEMM_BIAS_NONE;
  sp->relu = k->relu;
  char ekey[512];
  EpiHook hook = {e, k, true};
  LlvmGemmEpi epi = {epi_hook, &hook, ekey};
  if (k->nepi) epi_key(e, k, ekey, sizeof ekey), sp->epi = &epi;
  LLVMValueRef f = gemm_fn(e, sp);
  if (!f) return -1;
  LLVMValueRef X = cg_ptr(e, n->in[0]), Y = cg_ptr(e, k->out);
  int64_t lda, wg = g->wg;
  LLVMValueRef Wt = conv_filter(e, k, f, c, &lda, &wg);
  if (!Wt) return -1;
  LLVMValueRef bias = k->bias ? cg_ptr(e, k->bias_node) : NULL;
  Loop ln, lg;
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  LLVMValueRef xp, yp;
  conv_gemm_at(e, g, X, Y, ln.iv, lg.iv, &xp, &yp);
  LLVMValueRef wp = gep8(e, Wt, mul(e, lg.iv, cg_c64(e, wg)));
  LLVMValueRef bp = bias ? gep8(e, bias, mul(e, lg.iv, cg_c64(e, c->Og * 4)))
                    : g->bnt ? gep8(e, g->bnt, mul(e, lg.iv, cg_c64(e, c->Og * 8)))
                             : NULL;
  ColTask ct = {.c = c, .xnode = n->in[0], .xs = g->xs, .xg = g->xg, .to_col = true};
  if (c->col) emit_im2col_par(e, k, &ct, ln.iv, lg.iv);
  if (k->nepi) bp = epi_ctx(e, k, bp); /* ungrouped (plan.c): the channel is C's row */
  gemm_call(e, f, c->Og, c->P, c->K, wp, lda, c->col ? g->col : xp, c->P, yp, c->P, bp);
  loop_end(e, &lg);
  loop_end(e, &ln);
  return 0;
}

/* the data gradient: dcol[K, P] = wᵀ · dy, then col2im into dx (a pointwise one: straight
 * into dx) */
static int conv_gemm_dx(CgEmit *e, const CgKernel *k, const ConvGemm *g, LlvmGemmSpec *sp) {
  const IrNode *n = node(e, k->node);
  const CgConv *c = g->c;
  sp->trans_a = 1;
  if (c->batch) return lower_bwd_data_batch(e, k, c, sp);
  LLVMValueRef f = gemm_fn(e, sp);
  if (!f) return -1;
  LLVMValueRef DY = cg_ptr(e, n->in[0]), Wt = cg_ptr(e, n->in[1]), DX = cg_ptr(e, k->out);
  if (!c->direct && !col2im_rows(e, c)) memset0(e, DX, c->N * g->xs);
  Loop ln, lg;
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  LLVMValueRef xp, yp;
  conv_gemm_at(e, g, DX, DY, ln.iv, lg.iv, &xp, &yp);
  LLVMValueRef wp = gep8(e, Wt, mul(e, lg.iv, cg_c64(e, g->wg)));
  gemm_call(e, f, c->K, c->P, c->Og, wp, c->K, yp, c->P, c->direct ? xp : g->col, c->P, NULL);
  ColTask ct = {.c = c, .xnode = k->out, .xs = g->xs, .xg = g->xg, .to_col = false};
  if (!c->direct) emit_col2im(e, k, &ct, ln.iv, lg.iv);
  loop_end(e, &lg);
  loop_end(e, &ln);
  return 0;
}

/* the filter gradient: dw[Og, K] += dy · colᵀ over the images */
static int conv_gemm_dw(CgEmit *e, const CgKernel *k, const ConvGemm *g, LlvmGemmSpec *sp) {
  const IrNode *n = node(e, k->node);
  const CgConv *c = g->c;
  sp->trans_b = 1;
  if (c->batch) return lower_bwd_filter_batch(e, k, c, sp);
  sp->accumulate = 1;
  LLVMValueRef f = gemm_fn(e, sp);
  if (!f) return -1;
  LLVMValueRef X = cg_ptr(e, n->in[0]), DY = cg_ptr(e, n->in[1]), DW = cg_ptr(e, k->out);
  memset0(e, DW, c->G * g->wg);
  Loop ln, lg;
  loop_begin(e, &ln, cg_c64(e, 0), cg_c64(e, c->N), 1);
  loop_begin(e, &lg, cg_c64(e, 0), cg_c64(e, c->G), 1);
  LLVMValueRef xp, yp;
  conv_gemm_at(e, g, X, DY, ln.iv, lg.iv, &xp, &yp);
  LLVMValueRef wp = gep8(e, DW, mul(e, lg.iv, cg_c64(e, g->wg)));
  ColTask ct = {.c = c, .xnode = n->in[0], .xs = g->xs, .xg = g->xg, .to_col = true};
  if (c->col) emit_im2col_par(e, k, &ct, ln.iv, lg.iv);
  gemm_call(e, f, c->Og, c->K, c->P, yp, c->P, c->col ? g->col : xp, c->P, wp, c->K, NULL);
  loop_end(e, &lg);
  loop_end(e, &ln);
  return 0;
}

/* ---- a depthwise convolution fused into the pointwise one that reads it (CgKernel.dw) ---- */

typedef struct DwPw {
  DwFwd d;         /* the depthwise convolution (k->dw) and its blocks of rows */
  const CgConv *c; /* the pointwise one */
  LLVMValueRef region;
  int64_t lda, ldb, strip, abuf, bytes; /* strip, Abuf: bytes of the scratch's first parts */
} DwPw;

/* the depthwise's output rows [oh0, oh0 + h) of image img, every channel, into the strip at B
 * (channel ch at ch·ldb floats, its rows OW apart): dwb_body's blocks of R rows with its
 * epilogue and group, the image's last block OH mod R rows (a strip is whole blocks or the
 * rest of the image) */
static void dwpw_strip(CgEmit *e, const CgKernel *dk, const DwFwd *d, LLVMValueRef dwbuf,
                       LLVMValueRef img, LLVMValueRef oh0, LLVMValueRef h, LLVMValueRef B, int64_t ldb) {
  const CgConv *c = d->c;
  const IrNode *n = node(e, dk->node);
  int R = d->b.R;
  Loop lc, lb;
  loop_begin(e, &lc, cg_c64(e, 0), cg_c64(e, c->C), 1);
  LLVMValueRef ch = lc.iv;
  LLVMValueRef xc = gep8(e, cg_ptr(e, n->in[0]), mul(e, add(e, mul(e, img, cg_c64(e, c->C)), ch),
                                                     cg_c64(e, c->H * c->W * 4)));
  LLVMValueRef wv[64];
  DwChan cs;
  dw_chan_taps(e, dk, c, ch, wv, &cs);
  loop_begin(e, &lb, cg_c64(e, 0), h, R);
  LLVMValueRef r0 = add(e, oh0, lb.iv);
  LLVMValueRef yr = gep8(e, B, mul(e, add(e, mul(e, ch, cg_c64(e, ldb)), mul(e, lb.iv, cg_c64(e, c->OW))),
                                   cg_c64(e, 4)));
  dw_block_at(e, dk, d, dwbuf, xc, yr, r0,
              LLVMBuildICmp(e->b, LLVMIntSGT, add(e, r0, cg_c64(e, R)), cg_c64(e, c->OH), ""), wv, &cs);
  loop_end(e, &lb);
  loop_end(e, &lc);
}

/* the GEMM's A (the filter, or its panels packed once) and its bias or epilogue context, in
 * the task: as conv_gemm_fwd passes them */
static void dwpw_gemm_args(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef *A,
                           LLVMValueRef *bias) {
  *A = k->packed ? cg_region_ptr(e, CG_REGION_ARENA, k->packed_offset) : cg_ptr(e, node(e, k->node)->in[1]);
  LLVMValueRef bp = k->bias ? cg_ptr(e, k->bias_node)
                    : k->bn ? cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset + c->scratch)
                            : NULL;
  if (k->nepi) bp = epi_ctx(e, k, bp);
  *bias = bp ? bp : LLVMConstPointerNull(e->ptr);
}

/* task t of nt: units [u0, u1) of the N·strips (image, strip of dw_rows rows); each computes
 * the depthwise's strip into the thread's scratch, then the pointwise GEMM's columns of the
 * strip from it, B read in place */
static void dwpw_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const DwPw *f = arg;
  const CgConv *c = f->c;
  int64_t S = k->dw_rows, ns = (c->OH + S - 1) / S;
  LLVMValueRef units = cg_c64(e, c->N * ns);
  LLVMValueRef u0 = LLVMBuildSDiv(e->b, mul(e, t, units), nt, "");
  LLVMValueRef u1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), units), nt, "");
  LLVMTypeRef sps[2] = {e->ptr, e->i64}, rps[2] = {e->ptr, e->ptr};
  LLVMValueRef sargs[2] = {e->pool, cg_c64(e, f->bytes)};
  LLVMValueRef buf = call(e, declare(e, "rt_pool_scratch", e->ptr, sps, 2), sargs, 2);
  LLVMBasicBlockRef oom = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwpwoom");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "dwpwgo");
  LLVMBuildCondBr(e->b, LLVMBuildIsNull(e->b, buf, ""), oom, go);
  /* out of memory for a few hundred KiB: no error channel in a kernel, so stop (as the GEMM) */
  LLVMPositionBuilderAtEnd(e->b, oom);
  intrinsic(e, "llvm.trap", NULL, 0, NULL, 0);
  LLVMBuildUnreachable(e->b);
  LLVMPositionBuilderAtEnd(e->b, go);
  LLVMValueRef dwbuf = NULL, A, bias;
  if (!f->d.b.direct) {
    dwbuf = entry_alloca(e, LLVMArrayType2(e->f32, (uint64_t)(f->d.b.bytes / 4)), "dwbuf");
    LLVMSetAlignment(dwbuf, 64);
  }
  dwpw_gemm_args(e, k, c, &A, &bias);
  LLVMValueRef abuf = gep8(e, buf, cg_c64(e, f->strip)), bbuf = gep8(e, abuf, cg_c64(e, f->abuf));
  Loop lu;
  loop_begin(e, &lu, u0, u1, 1);
  LLVMValueRef img = LLVMBuildSDiv(e->b, lu.iv, cg_c64(e, ns), "");
  LLVMValueRef oh0 = mul(e, LLVMBuildSRem(e->b, lu.iv, cg_c64(e, ns), ""), cg_c64(e, S));
  LLVMValueRef h = smin(e, cg_c64(e, S), LLVMBuildSub(e->b, cg_c64(e, c->OH), oh0, ""));
  dwpw_strip(e, k->dw, &f->d, dwbuf, img, oh0, h, buf, f->ldb);
  LLVMValueRef y = gep8(e, cg_ptr(e, k->out), mul(e, add(e, mul(e, img, cg_c64(e, c->O * c->P)),
                                                         mul(e, oh0, cg_c64(e, c->OW))), cg_c64(e, 4)));
  LLVMValueRef args[14] = {cg_c64(e, c->K), A, cg_c64(e, f->lda), buf, cg_c64(e, f->ldb), y,
                           cg_c64(e, c->P), bias, cg_c64(e, 0), cg_c64(e, c->Og), cg_c64(e, 0),
                           mul(e, h, cg_c64(e, c->OW)), abuf, bbuf};
  call(e, f->region, args, 14);
  loop_end(e, &lu);
  LLVMValueRef rargs[2] = {e->pool, buf};
  call(e, declare(e, "rt_pool_scratch_release", e->vd, rps, 2), rargs, 2);
}

/* a pointwise convolution with the depthwise convolution that computes its image (k->dw):
 * their epilogues' tables, the filter's panels once, then (image, strip) tasks over the
 * threads, each with its thread's scratch for the strip and the GEMM's packing (dwpw_body) */
static int lower_dw_fused(CgEmit *e, const CgKernel *k, const CgConv *c, LLVMValueRef bnt) {
  const IrNode *n = node(e, k->node);
  CgConv cw;
  cg_conv_geom(e->p, k->dw->node, &cw);
  DwPw f = {.d = {.c = &cw}, .c = c, .ldb = k->dw_rows * c->OW};
  if (!cg_dw_block(&cw, e->vl, &f.d.b) || k->dw_rows <= 0 ||
      (k->dw_rows % f.d.b.R && k->dw_rows != cw.OH) || c->G != 1 ||
      !c->direct || c->batch || cw.N != c->N) {
    diag_error(e->d, n->loc, "internal error: a depthwise convolution fused into this one does not fit its form");
    return -1;
  }
  if (k->dw->bn) bn_table(e, k->dw, &cw);
  LlvmGemmSpec sp = {.direct_b = 1, .packed = k->packed ? LLVM_GEMM_PACKED_A : LLVM_GEMM_PACKED_NONE,
                     .bias = k->bias ? LLVM_GEMM_BIAS_ROW : bnt ? LLVM_GEMM_AFFINE_ROW : LLVM_GEMM_BIAS_NONE,
                     .relu = k->relu};
  gemm_blocking(e, k->tile, true, &sp.blk);
  char ekey[512];
  EpiHook hook = {e, k, true};
  LlvmGemmEpi epi = {epi_hook, &hook, ekey};
  if (k->nepi) epi_key(e, k, ekey, sizeof ekey), sp.epi = &epi;
  LLVMValueRef g = gemm_fn(e, &sp);
  if (!g) return -1;
  size_t len = 0;
  f.region = llvm_gemm_region_fn(e->mod, LLVMGetValueName2(g, &len));
  int64_t wg;
  if (!f.region || !conv_filter(e, k, g, c, &f.lda, &wg)) return -1;
  const LlvmGemmBlocking *b = &e->gemm_blk; /* Abuf as llvm_gemm_pack_bytes counts it */
  int64_t kc = c->K < b->kc ? c->K : b->kc, mc = c->Og < b->mc ? c->Og : b->mc;
  f.abuf = ((mc + b->mr - 1) / b->mr * b->mr * (kc > 1 ? kc : 1) + 15) / 16 * 16 * 4;
  f.strip = (c->K * f.ldb * 4 + 63) / 64 * 64;
  f.bytes = f.strip + llvm_gemm_pack_bytes(b, c->Og, f.ldb, c->K);
  if (f.bytes > e->pack_bytes) e->pack_bytes = f.bytes;
  int64_t ns = (c->OH + k->dw_rows - 1) / k->dw_rows;
  run_tasks(e, k, c->N * ns, dwpw_body, &f);
  return 0;
}

/* a convolution on the packed GEMM: the spec's gathering, its B read in place (tiles.c
 * direct_b), then the batch's GEMM or the forward, data or filter gradient per image */
static int lower_conv_gemm(CgEmit *e, const CgKernel *k, const CgConv *cp, LLVMValueRef bnt) {
  const IrNode *n = node(e, k->node);
  const CgConv c = *cp;
  LlvmGemmSpec sp = {0};
  gemm_blocking(e, k->tile, true, &sp.blk);
  bool gather = (!c.direct || c.batch) && !c.col; /* implicit GEMM: B's packing gathers */
  if (n->op == OP_CONV2D && k->packed) sp.packed = LLVM_GEMM_PACKED_A; /* the filter, once */
  if (gather && n->op != OP_CONV2D_BWD_DATA)
    sp.conv = (LlvmGemmConv){.on = 1, .C = c.Cg, .H = c.H, .W = c.W, .KH = c.KH, .KW = c.KW,
                             .OH = c.OH, .OW = c.OW, .sh = c.sh, .sw = c.sw, .ph = c.ph,
                             .pw = c.pw, .dh = c.dh, .dw = c.dw,
                             .images = c.batch ? c.N : 1, .xs = c.C * c.H * c.W};
  if (c.batch && n->op == OP_CONV2D) return lower_conv_batch(e, k, cp, &sp, bnt);
  if (k->tile && k->tile->direct_b) { /* the image (dy) read in place (tiles.c direct_b) */
    if (n->op == OP_CONV2D_BWD_FILTER || !c.direct || c.col) {
      diag_error(e->d, n->loc, "internal error: a convolution's image read in place is not its GEMM's B");
      return -1;
    }
    sp.direct_b = 1;
  }
  sp.nt_store = n->op == OP_CONV2D && k->tile && k->tile->nt_store; /* tiles.c choose_nt_store */
  ConvGemm g = {.c = cp, .bnt = bnt,
                .col = c.col ? cg_region_ptr(e, CG_REGION_ARENA, k->scratch_offset) : NULL,
                .xs = c.C * c.H * c.W * 4, .xg = c.Cg * c.H * c.W * 4, .ys = c.O * c.P * 4,
                .yg = c.Og * c.P * 4, .wg = c.Og * c.K * 4};
  if (n->op == OP_CONV2D) return conv_gemm_fwd(e, k, &g, &sp);
  if (n->op == OP_CONV2D_BWD_DATA) return conv_gemm_dx(e, k, &g, &sp);
  return conv_gemm_dw(e, k, &g, &sp);
}

static int lower_conv(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  CgConv c;
  cg_conv_geom(e->p, k->node, &c);
  if (c.N == 0 || c.Og == 0 || c.P == 0) return 0;
  LLVMValueRef bnt = k->bn ? bn_table(e, k, &c) : NULL;
  if (c.depthwise && n->op == OP_CONV2D) {
    lower_depthwise(e, k, &c);
    return 0;
  }
  if (k->dw) return lower_dw_fused(e, k, &c, bnt);
  if (c.wino && c.wino_wgrad) return lower_wgrad_wino(e, k, &c);
  if (c.wino) return lower_conv_wino(e, k, &c, bnt);
  if (c.few) return lower_conv_few(e, k, &c);
  if (c.depthwise && n->op == OP_CONV2D_BWD_DATA) {
    lower_depthwise_dx(e, k, &c);
    return 0;
  }
  if (c.depthwise && n->op == OP_CONV2D_BWD_FILTER) {
    lower_depthwise_dw(e, k, &c);
    return 0;
  }
  if (c.trans) return lower_conv_t(e, k, &c);
  if (c.OB > 0 && n->op == OP_CONV2D_BWD_FILTER) {
    lower_conv_wgrad(e, k, &c);
    return 0;
  }
  return lower_conv_gemm(e, k, &c, bnt);
}

/* ---- runtime-kernel calls -------------------------------------------------------------- */

typedef enum { A_P, A_I64, A_I32, A_F64 } ArgT;

/* call `name` with args described by a type string: p = ptr, l = i64, i = i32, d = double */
static void rt_call(CgEmit *e, const char *name, const char *sig, LLVMValueRef *args) {
  LLVMTypeRef ps[16];
  unsigned n = 0;
  for (const char *s = sig; *s; s++)
    ps[n++] = *s == 'p' ? e->ptr : *s == 'l' ? e->i64 : *s == 'i' ? e->i32 : e->f64;
  LLVMValueRef f = declare(e, name, e->vd, ps, n);
  call(e, f, args, n);
}

static LLVMValueRef in_ptr(CgEmit *e, const CgKernel *k, int j) { return cg_ptr(e, node(e, k->node)->in[j]); }

static int norm_axis(int a, int rank) { return a < 0 ? a + rank : a; }

static int32_t reduce_mask(const IrAttr *a, int rank) {
  int32_t m = 0;
  if (a->naxes == 0) return rank ? (int32_t)((1u << rank) - 1) : 0;
  for (int j = 0; j < a->naxes; j++) m |= 1 << norm_axis(a->axes[j], rank);
  return m;
}

static void bn_dims(const CgVal *x, int64_t *N, int64_t *C, int64_t *S);

/* a sync_stats MEAN or VAR: a batchnorm's running statistic over every process's batch
 * (cg_plan_sync_stats), through the step's hooks (runtime/rt_syncbn.c) */
static int lower_bn_stat_sync(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  int64_t N, C, S;
  bn_dims(val(e, n->in[0]), &N, &C, &S);
  LLVMValueRef a[9] = {e->pool, e->hooks, in_ptr(e, k, 0), cg_ptr(e, k->node), cg_c64(e, N),
                       cg_c64(e, C), cg_c64(e, S), c32(e, n->op == OP_VAR),
                       c32(e, n->attr.correction)};
  rt_call(e, "rt_k_bn_stat_sync", "pppplllii", a);
  return 0;
}

/* the sums (or means) of rows [t·R/nt, (t+1)·R/nt) of len <= RT_SUM_BLOCK contiguous values,
 * in rt_kernels.c's order (the same bits as rt_k_reduce): RT_SUM_LANES lanes each add every
 * RT_SUM_LANES-th value, the tail into the first lanes, the lanes pairwise, then in double */
typedef struct RowSum {
  int64_t R, len;
  bool mean;
} RowSum;

static void rowsum_body(CgEmit *e, const CgKernel *k, void *arg, LLVMValueRef t, LLVMValueRef nt) {
  const RowSum *rs = arg;
  enum { V = RT_SUM_LANES };
  LLVMTypeRef vt = LLVMVectorType(e->f32, V);
  LLVMValueRef R = cg_c64(e, rs->R), x = in_ptr(e, k, 0), y = cg_ptr(e, k->node);
  LLVMValueRef r0 = LLVMBuildSDiv(e->b, mul(e, t, R), nt, "");
  LLVMValueRef r1 = LLVMBuildSDiv(e->b, mul(e, add(e, t, cg_c64(e, 1)), R), nt, "");
  Loop lr;
  loop_begin(e, &lr, r0, r1, 1);
  LLVMValueRef row = gep8(e, x, mul(e, lr.iv, cg_c64(e, rs->len * 4))), acc = LLVMConstNull(vt);
  for (int64_t i = 0; i < rs->len; i += V) {
    int64_t w = rs->len - i < V ? rs->len - i : V;
    LLVMValueRef m[V];
    for (int l = 0; l < V; l++) m[l] = LLVMConstInt(e->i1, l < w, 0);
    LLVMValueRef mask = LLVMConstVector(m, V);
    LLVMTypeRef over[2] = {vt, e->ptr};
    LLVMValueRef a[4] = {gep8(e, row, cg_c64(e, i * 4)), c32(e, 4), mask, LLVMConstNull(vt)};
    LLVMValueRef v = w == V ? LLVMBuildLoad2(e->b, vt, a[0], "") : intrinsic(e, "llvm.masked.load", over, 2, a, 4);
    if (w == V) LLVMSetAlignment(v, 4);
    LLVMValueRef s = LLVMBuildFAdd(e->b, acc, v, "");
    acc = w == V ? s : LLVMBuildSelect(e->b, mask, s, acc, ""); /* lanes past the row: as they were */
  }
  for (int w = V / 2; w >= 1; w /= 2) {
    LLVMValueRef lo[V], hi[V];
    for (int l = 0; l < w; l++) lo[l] = c32(e, l), hi[l] = c32(e, l + w);
    acc = LLVMBuildFAdd(e->b, LLVMBuildShuffleVector(e->b, acc, acc, LLVMConstVector(lo, (unsigned)w), ""),
                        LLVMBuildShuffleVector(e->b, acc, acc, LLVMConstVector(hi, (unsigned)w), ""), "");
  }
  LLVMValueRef tot = LLVMBuildFAdd(e->b, dconst(e, 0), LLVMBuildFPExt(e->b,
                                   LLVMBuildExtractElement(e->b, acc, c32(e, 0), ""), e->f64, ""), "");
  if (rs->mean) tot = LLVMBuildFDiv(e->b, tot, dconst(e, (double)rs->len), "");
  LLVMBuildStore(e->b, LLVMBuildFPTrunc(e->b, tot, e->f32, ""), gep8(e, y, mul(e, lr.iv, cg_c64(e, 4))));
  loop_end(e, &lr);
}

/* a sum or mean over trailing axes of at most RT_SUM_BLOCK values a row (global average
 * pooling: [N, C, H, W] to [N, C]) as generated vector code; false: rt_k_reduce */
static bool lower_rowsum(CgEmit *e, const CgKernel *k, const CgVal *x, int32_t mask, int op) {
  int first = x->rank;
  while (first > 0 && (mask >> (first - 1) & 1)) first--;
  RowSum rs = {1, 1, op == RT_RED_MEAN};
  for (int d = 0; d < first; d++) rs.R *= x->shape[d];
  for (int d = first; d < x->rank; d++) rs.len *= x->shape[d];
  if ((op != RT_RED_SUM && op != RT_RED_MEAN) || first == 0 || first == x->rank ||
      (mask & ((1 << first) - 1)) || rs.R < 1 || rs.len < 1 || rs.len > RT_SUM_BLOCK)
    return false;
  int64_t maxt = rs.R * rs.len / 16384 + 1; /* rt_kernels.c's par_range grain */
  if (maxt > 1) {
    run_tasks(e, k, maxt < rs.R ? maxt : rs.R, rowsum_body, &rs);
  } else {
    LLVMValueRef sfn = e->fn;
    rowsum_body(e, k, &rs, cg_c64(e, 0), cg_c64(e, 1));
    e->fn = sfn;
  }
  return true;
}

static int lower_reduce(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *x = val(e, n->in[0]);
  if (k->sync_stats) return lower_bn_stat_sync(e, k);
  int op = n->op == OP_SUM ? 0 : n->op == OP_MEAN ? 1 : n->op == OP_MAX ? 2 : 3;
  if (x->rank >= 2 && lower_rowsum(e, k, x, reduce_mask(&n->attr, x->rank), op)) return 0;
  LLVMValueRef dims = const_table(e, x->shape, x->rank ? x->rank : 1);
  LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), cg_ptr(e, k->node), c32(e, x->rank), dims,
                       c32(e, reduce_mask(&n->attr, x->rank)), c32(e, op), c32(e, n->attr.correction)};
  rt_call(e, "rt_k_reduce", "pppipiii", a);
  return 0;
}

static int lower_max_bwd(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *x = val(e, n->in[1]);
  LLVMValueRef dims = const_table(e, x->shape, x->rank ? x->rank : 1);
  LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), in_ptr(e, k, 2), cg_ptr(e, k->node),
                       c32(e, x->rank), dims, c32(e, reduce_mask(&n->attr, x->rank))};
  rt_call(e, "rt_k_max_bwd", "pppppipi", a);
  return 0;
}

static void axis_view(const CgVal *v, int axis, int64_t *o, int64_t *l, int64_t *in) {
  *o = *in = 1;
  for (int d = 0; d < axis; d++) *o *= v->shape[d];
  for (int d = axis + 1; d < v->rank; d++) *in *= v->shape[d];
  *l = v->shape[axis];
}

static int lower_softmax(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *y = val(e, k->node);
  int64_t o, l, in;
  axis_view(y, norm_axis(n->attr.axis, y->rank), &o, &l, &in);
  bool bwd = n->op == OP_SOFTMAX_BWD || n->op == OP_LOG_SOFTMAX_BWD;
  int lg = n->op == OP_LOG_SOFTMAX || n->op == OP_LOG_SOFTMAX_BWD;
  if (!bwd) {
    LLVMValueRef a[7] = {e->pool, in_ptr(e, k, 0), cg_ptr(e, k->node), cg_c64(e, o), cg_c64(e, l), cg_c64(e, in), c32(e, lg)};
    rt_call(e, "rt_k_softmax", "pppllli", a);
  } else {
    LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node), cg_c64(e, o),
                         cg_c64(e, l), cg_c64(e, in), c32(e, lg)};
    rt_call(e, "rt_k_softmax_bwd", "ppppllli", a);
  }
  return 0;
}

static int lower_transpose(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *x = val(e, n->in[0]);
  int64_t perm[IR_MAX_RANK];
  for (int d = 0; d < x->rank; d++) perm[d] = norm_axis(n->attr.axes[d], x->rank);
  LLVMValueRef a[6] = {in_ptr(e, k, 0), cg_ptr(e, k->node), c32(e, x->rank),
                       const_table(e, x->shape, x->rank ? x->rank : 1),
                       const_table(e, perm, x->rank ? x->rank : 1),
                       cg_c64(e, (int64_t)dt_size(n->type.dt))};
  rt_call(e, "rt_k_transpose", "ppippl", a);
  return 0;
}

static void axis_copy(CgEmit *e, LLVMValueRef src, LLVMValueRef dst, int64_t outer, int64_t len,
                      int64_t inner, int64_t slen, int64_t sstart, int64_t dlen, int64_t dstart,
                      int64_t es) {
  LLVMValueRef a[10] = {src, dst, cg_c64(e, outer), cg_c64(e, len), cg_c64(e, inner), cg_c64(e, slen),
                        cg_c64(e, sstart), cg_c64(e, dlen), cg_c64(e, dstart), cg_c64(e, es)};
  rt_call(e, "rt_k_axis_copy", "ppllllllll", a);
}

static int lower_concat(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *y = val(e, k->node);
  int axis = norm_axis(n->attr.axis, y->rank);
  int64_t o, l, in, pos = 0, es = (int64_t)dt_size(n->type.dt);
  axis_view(y, axis, &o, &l, &in);
  for (int j = 0; j < n->nin; j++) {
    int64_t lj = val(e, n->in[j])->shape[axis];
    if (lj * in * o > 0) axis_copy(e, in_ptr(e, k, j), cg_ptr(e, k->node), o, lj, in, lj, 0, l, pos, es);
    pos += lj;
  }
  return 0;
}

static int lower_slice(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  bool bwd = n->op == OP_SLICE_BWD;
  const CgVal *big = bwd ? val(e, k->node) : val(e, n->in[0]);
  const CgVal *small = bwd ? val(e, n->in[0]) : val(e, k->node);
  int axis = norm_axis(n->attr.axis, big->rank);
  int64_t start = n->attr.start ? dim_eval(e->p->g->dims, n->attr.start, NULL) : 0;
  int64_t o, bl, in, o2, sl, in2, es = (int64_t)dt_size(n->type.dt);
  axis_view(big, axis, &o, &bl, &in);
  axis_view(small, axis, &o2, &sl, &in2);
  if (bwd) memset0(e, cg_ptr(e, k->node), big->nbytes);
  if (o * sl * in == 0) return 0;
  if (bwd) axis_copy(e, in_ptr(e, k, 0), cg_ptr(e, k->node), o, sl, in, sl, 0, bl, start, es);
  else axis_copy(e, in_ptr(e, k, 0), cg_ptr(e, k->node), o, sl, in, bl, start, sl, 0, es);
  return 0;
}

static LLVMValueRef pool_geom(CgEmit *e, const IrNode *n, const CgVal *x, const CgVal *y) {
  const IrAttr *a = &n->attr;
  int64_t g[15] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[2], y->shape[3],
                   a->kernel[0], a->kernel[1],
                   a->stride[0] > 0 ? a->stride[0] : a->kernel[0],
                   a->stride[1] > 0 ? a->stride[1] : a->kernel[1], a->pad[0], a->pad[1],
                   a->dilation[0] > 0 ? a->dilation[0] : 1, a->dilation[1] > 0 ? a->dilation[1] : 1,
                   a->exclude_pad};
  return const_table(e, g, 15);
}

static int lower_pool(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  LLVMValueRef geom = pool_geom(e, n, val(e, n->in[0]), val(e, k->node));
  LLVMValueRef a[5] = {e->pool, in_ptr(e, k, 0), cg_ptr(e, k->node), geom, c32(e, n->op == OP_MAXPOOL)};
  rt_call(e, "rt_k_pool", "ppppi", a);
  return 0;
}

static int lower_maxpool_bwd(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  LLVMValueRef geom = pool_geom(e, n, val(e, n->in[1]), val(e, n->in[0]));
  LLVMValueRef a[5] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node), geom};
  rt_call(e, "rt_k_maxpool_bwd", "ppppp", a);
  return 0;
}

static int lower_avgpool_bwd(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  LLVMValueRef geom = pool_geom(e, n, val(e, k->node), val(e, n->in[0]));
  LLVMValueRef a[4] = {e->pool, in_ptr(e, k, 0), cg_ptr(e, k->node), geom};
  rt_call(e, "rt_k_avgpool_bwd", "pppp", a);
  return 0;
}

static void bn_dims(const CgVal *x, int64_t *N, int64_t *C, int64_t *S) {
  *N = x->rank > 0 ? x->shape[0] : 1;
  *C = x->rank > 1 ? x->shape[1] : 1;
  *S = (*N) * (*C) != 0 ? x->numel / ((*N) * (*C)) : 0;
}

/* a sync_stats batchnorm kernel: the rt_k_*_sync variant, which sums its statistics over
 * the processes through the step's hooks (runtime/rt_syncbn.c) */
static int lower_bn_sync(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  int64_t N, C, S;
  bn_dims(val(e, n->in[n->op == OP_BATCHNORM ? 0 : 1]), &N, &C, &S);
  bool fwd = n->op == OP_BATCHNORM, dx = n->op == OP_BATCHNORM_BWD;
  LLVMValueRef a[11] = {e->pool, e->hooks, in_ptr(e, k, 0), in_ptr(e, k, 1),
                        fwd || dx ? in_ptr(e, k, 2) : LLVMConstPointerNull(e->ptr),
                        cg_ptr(e, k->node), cg_c64(e, N), cg_c64(e, C), cg_c64(e, S),
                        dconst(e, n->attr.value), c32(e, fwd ? 0 : dx ? 1 : 2)};
  rt_call(e, "rt_k_batchnorm_sync", "ppppppllldi", a);
  return 0;
}

static int lower_bn(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  int64_t N, C, S;
  if (k->sync_stats) return lower_bn_sync(e, k);
  /* the members CgTarget.bn_fused adds: the forward's mean and variance, the backward's
   * gamma and beta gradients */
  LLVMValueRef m1 = LLVMConstPointerNull(e->ptr), m2 = m1;
  for (int m = 1; m < k->nmembers; m++) {
    OpKind op = node(e, k->members[m])->op;
    if (op == OP_MEAN || op == OP_BN_DGAMMA) m1 = cg_ptr(e, k->members[m]);
    if (op == OP_VAR || op == OP_SUM) m2 = cg_ptr(e, k->members[m]);
  }
  if (n->op == OP_BATCHNORM) {
    bn_dims(val(e, n->in[0]), &N, &C, &S);
    LLVMValueRef a[14] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), in_ptr(e, k, 2), in_ptr(e, k, 3),
                          in_ptr(e, k, 4), cg_ptr(e, k->node), m1, m2, cg_c64(e, N), cg_c64(e, C),
                          cg_c64(e, S), dconst(e, n->attr.value), c32(e, n->attr.train)};
    rt_call(e, "rt_k_batchnorm", "pppppppppllldi", a);
  } else if (n->op == OP_BATCHNORM_BWD) {
    bn_dims(val(e, n->in[1]), &N, &C, &S);
    LLVMValueRef a[11] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), in_ptr(e, k, 2), cg_ptr(e, k->node),
                          m1, m2, cg_c64(e, N), cg_c64(e, C), cg_c64(e, S), dconst(e, n->attr.value)};
    rt_call(e, "rt_k_batchnorm_bwd", "pppppppllld", a);
  } else {
    bn_dims(val(e, n->in[1]), &N, &C, &S);
    LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node),
                         cg_c64(e, N), cg_c64(e, C), cg_c64(e, S), dconst(e, n->attr.value)};
    rt_call(e, "rt_k_bn_dgamma", "ppppllld", a);
  }
  return 0;
}

static void ln_dims(const IrNode *n, const CgVal *x, int64_t *R, int64_t *D) {
  int na = n->attr.naxes > 0 ? n->attr.naxes : 1;
  *D = 1;
  for (int d = x->rank - na; d < x->rank; d++) *D *= d >= 0 ? x->shape[d] : 1;
  *R = *D ? x->numel / *D : 0;
}

static int lower_ln(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  int64_t R, D;
  if (n->op == OP_LAYERNORM) {
    ln_dims(n, val(e, n->in[0]), &R, &D);
    LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), in_ptr(e, k, 2), cg_ptr(e, k->node),
                         cg_c64(e, R), cg_c64(e, D), dconst(e, n->attr.value)};
    rt_call(e, "rt_k_layernorm", "ppppplld", a);
  } else if (n->op == OP_LAYERNORM_BWD) {
    ln_dims(n, val(e, n->in[1]), &R, &D);
    LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), in_ptr(e, k, 2), cg_ptr(e, k->node),
                         cg_c64(e, R), cg_c64(e, D), dconst(e, n->attr.value)};
    rt_call(e, "rt_k_layernorm_bwd", "ppppplld", a);
  } else {
    ln_dims(n, val(e, n->in[1]), &R, &D);
    LLVMValueRef a[7] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node),
                         cg_c64(e, R), cg_c64(e, D), dconst(e, n->attr.value)};
    rt_call(e, "rt_k_ln_dgamma", "ppppll" "d", a);
  }
  return 0;
}

static int lower_dropout(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  /* stream = attr.seed + (step << 32), as the interpreter */
  LLVMValueRef stream = add(e, cg_c64(e, (int64_t)n->attr.seed), LLVMBuildShl(e->b, e->step, cg_c64(e, 32), ""));
  LLVMValueRef a[7] = {e->pool, in_ptr(e, k, 0), cg_ptr(e, k->node), cg_c64(e, val(e, k->node)->numel),
                       dconst(e, n->attr.value), e->seed, stream};
  rt_call(e, "rt_k_dropout", "pppldll", a);
  return 0;
}

static int lower_embedding(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  if (n->op == OP_EMBEDDING) {
    const CgVal *t = val(e, n->in[0]);
    LLVMValueRef a[7] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node), cg_c64(e, t->shape[0]),
                         cg_c64(e, t->shape[1]), cg_c64(e, val(e, n->in[1])->numel)};
    rt_call(e, "rt_k_embedding", "pppplll", a);
  } else {
    const CgVal *t = val(e, k->node);
    LLVMValueRef a[6] = {in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node), cg_c64(e, t->shape[0]),
                         cg_c64(e, t->shape[1]), cg_c64(e, val(e, n->in[1])->numel)};
    rt_call(e, "rt_k_embedding_bwd", "ppplll", a);
  }
  return 0;
}

static int lower_loss(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  if (n->op == OP_CROSS_ENTROPY) {
    const CgVal *l = val(e, n->in[0]);
    LLVMValueRef a[8] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node),
                         cg_c64(e, l->shape[0]), cg_c64(e, l->shape[1]), dconst(e, n->attr.value),
                         cg_c64(e, n->attr.ignore ? n->attr.ignore_index : INT64_MIN)};
    rt_call(e, "rt_k_cross_entropy", "ppppllDl", a);
  } else if (n->op == OP_CE_BWD) {
    const CgVal *l = val(e, n->in[1]);
    LLVMValueRef a[9] = {e->pool, in_ptr(e, k, 0), in_ptr(e, k, 1), in_ptr(e, k, 2), cg_ptr(e, k->node),
                         cg_c64(e, l->shape[0]), cg_c64(e, l->shape[1]), dconst(e, n->attr.value),
                         cg_c64(e, n->attr.ignore ? n->attr.ignore_index : INT64_MIN)};
    rt_call(e, "rt_k_ce_bwd", "pppppllDl", a);
  } else {
    LLVMValueRef a[4] = {in_ptr(e, k, 0), in_ptr(e, k, 1), cg_ptr(e, k->node), cg_c64(e, val(e, n->in[0])->numel)};
    rt_call(e, "rt_k_mse", "pppl", a);
  }
  return 0;
}

static int lower_const(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *v = val(e, k->node);
  LLVMValueRef p = cg_ptr(e, k->node);
  if (n->attr.value == 0 && !signbit(n->attr.value)) {
    memset0(e, p, v->nbytes);
    return 0;
  }
  bool i32 = n->type.dt == DT_I32;
  LLVMValueRef c = i32 ? c32(e, (int32_t)n->attr.value) : LLVMConstReal(e->f32, (float)n->attr.value);
  Loop l;
  loop_begin(e, &l, cg_c64(e, 0), cg_c64(e, v->numel), 1);
  LLVMBuildStore(e->b, c, LLVMBuildGEP2(e->b, i32 ? e->i32 : e->f32, p, &l.iv, 1, ""));
  loop_end(e, &l);
  return 0;
}

/* iota: start + step * (index along the axis), from the flat index i */
static int lower_iota(CgEmit *e, const CgKernel *k) {
  const IrNode *n = node(e, k->node);
  const CgVal *v = val(e, k->node);
  int64_t inner = 1;
  for (int d = n->attr.axis + 1; d < v->rank; d++) inner *= v->shape[d];
  bool i32 = n->type.dt == DT_I32;
  Loop l;
  loop_begin(e, &l, cg_c64(e, 0), cg_c64(e, v->numel), 1);
  LLVMValueRef idx = LLVMBuildSRem(e->b, LLVMBuildSDiv(e->b, l.iv, cg_c64(e, inner), ""),
                                   cg_c64(e, v->shape[n->attr.axis]), "");
  LLVMValueRef x = LLVMBuildSIToFP(e->b, idx, e->f64, "");
  x = LLVMBuildFAdd(e->b, LLVMConstReal(e->f64, n->attr.init_a),
                    LLVMBuildFMul(e->b, x, LLVMConstReal(e->f64, n->attr.init_b), ""), "");
  x = i32 ? LLVMBuildFPToSI(e->b, x, e->i32, "") : LLVMBuildFPTrunc(e->b, x, e->f32, "");
  LLVMBuildStore(e->b, x, LLVMBuildGEP2(e->b, i32 ? e->i32 : e->f32, cg_ptr(e, k->node), &l.iv, 1, ""));
  loop_end(e, &l);
  return 0;
}

static int lower_none(CgEmit *e, const CgKernel *k) {
  (void)e;
  (void)k;
  return 0;
}

/* ---- the table ------------------------------------------------------------------------- */

static const LowerFn lower_ops[OP_COUNT] = {
    [OP_INPUT] = lower_none,          /* storage bound by the descriptor */
    [OP_PARAM] = lower_none,
    [OP_CONST] = lower_const,         /* folded into elementwise groups, else a fill */
    [OP_IOTA] = lower_iota,
    [OP_NEG] = lower_ew,
    [OP_EXP] = lower_ew,
    [OP_LOG] = lower_ew,
    [OP_SQRT] = lower_ew,
    [OP_TANH] = lower_ew,
    [OP_SIGMOID] = lower_ew,
    [OP_RELU] = lower_ew,
    [OP_GELU] = lower_ew,
    [OP_SILU] = lower_ew,
    [OP_POWC] = lower_ew,
    [OP_CAST] = lower_ew,
    [OP_ADD] = lower_ew,
    [OP_SUB] = lower_ew,
    [OP_MUL] = lower_ew,
    [OP_DIV] = lower_ew,
    [OP_LT] = lower_ew,
    [OP_LE] = lower_ew,
    [OP_GT] = lower_ew,
    [OP_GE] = lower_ew,
    [OP_EQ] = lower_ew,
    [OP_NE] = lower_ew,
    [OP_WHERE] = lower_ew,
    [OP_MATMUL] = lower_matmul,
    [OP_TRANSPOSE] = lower_transpose,
    [OP_RESHAPE] = lower_none,        /* an alias of its operand */
    [OP_BROADCAST] = lower_ew,
    [OP_CONCAT] = lower_concat,
    [OP_SLICE] = lower_slice,
    [OP_SLICE_BWD] = lower_slice,
    [OP_SUM] = lower_reduce,
    [OP_MEAN] = lower_reduce,
    [OP_MAX] = lower_reduce,
    [OP_VAR] = lower_reduce,
    [OP_SOFTMAX] = lower_softmax,
    [OP_LOG_SOFTMAX] = lower_softmax,
    [OP_CONV2D] = lower_conv,
    [OP_MAXPOOL] = lower_pool,
    [OP_AVGPOOL] = lower_pool,
    [OP_BATCHNORM] = lower_bn,
    [OP_LAYERNORM] = lower_ln,
    [OP_DROPOUT] = lower_dropout,
    [OP_EMBEDDING] = lower_embedding,
    [OP_CROSS_ENTROPY] = lower_loss,
    [OP_MSE] = lower_loss,
    [OP_RELU_BWD] = lower_ew,
    [OP_GELU_BWD] = lower_ew,
    [OP_SILU_BWD] = lower_ew,
    [OP_SIGMOID_BWD] = lower_ew,
    [OP_TANH_BWD] = lower_ew,
    [OP_SOFTMAX_BWD] = lower_softmax,
    [OP_LOG_SOFTMAX_BWD] = lower_softmax,
    [OP_MAX_BWD] = lower_max_bwd,
    [OP_CONV2D_BWD_DATA] = lower_conv,
    [OP_CONV2D_BWD_FILTER] = lower_conv,
    [OP_MAXPOOL_BWD] = lower_maxpool_bwd,
    [OP_AVGPOOL_BWD] = lower_avgpool_bwd,
    [OP_BATCHNORM_BWD] = lower_bn,
    [OP_BN_DGAMMA] = lower_bn,
    [OP_LAYERNORM_BWD] = lower_ln,
    [OP_LN_DGAMMA] = lower_ln,
    [OP_DROPOUT_BWD] = lower_dropout,
    [OP_EMBEDDING_BWD] = lower_embedding,
    [OP_CE_BWD] = lower_loss,
    [OP_ASSIGN] = lower_ew,           /* a store of the group's value into the parameter */
};

bool llvm_op_defined(OpKind op) { return (unsigned)op < OP_COUNT && lower_ops[op] != NULL; }

void llvm_backend_target(CgTarget *t, int vec_floats, const HwTarget *hw) {
  memset(t, 0, sizeof *t);
  t->name = "CPU";
  for (int op = 0; op < OP_COUNT; op++) t->native[op] = lower_ops[op] != NULL;
  t->dtypes = 1u << DT_F32 | 1u << DT_I32;
  t->conv = CG_CONV_GATHER;
  t->conv_bn = true;
  t->depthwise_direct = true;
  t->conv_few = true;
  t->bn_fused = true;
  t->prepack = true;
  t->winograd = true;
  t->epi_group = true;
  t->dw_fuse = true;
  t->vector_width = vec_floats > 0 ? vec_floats : 4;
  t->hw = hw;
}

int llvm_lower_kernel(CgEmit *e, const CgKernel *k) {
  if (k->kind == CGK_COPY) {
    if (k->copy_bytes > 0)
      LLVMBuildMemCpy(e->b, cg_region_ptr(e, k->copy_dst_region, k->copy_dst_offset), 4,
                      cg_ptr(e, k->copy_src), 4, cg_c64(e, k->copy_bytes));
    return 0;
  }
  if (k->kind == CGK_EW) return lower_ew(e, k);
  OpKind op = node(e, k->node)->op;
  if (!lower_ops[op]) {
    diag_error(e->d, node(e, k->node)->loc, "code generation: no lowering for op %s",
               ir_op_name(op));
    return -1;
  }
  e->epi_bad = -1;
  int rc = lower_ops[op](e, k);
  if (!rc && e->epi_bad >= 0) {
    diag_error(e->d, node(e, e->epi_bad)->loc, "code generation: no elementwise lowering for op "
               "%s in an epilogue", ir_op_name(node(e, e->epi_bad)->op));
    rc = -1;
  }
  return rc;
}
