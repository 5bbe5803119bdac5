/* llvm_bf16.c — bf16 packing and the bf16 microkernel k loop of the GEMM generator (see
 * llvm_bf16.h for the numbers and the packed layout). */
#include "llvm_bf16.h"

#include <string.h>

#define BF16_MAX_ACC (32 * 8)
#define BF16_MAX_W 512
#define BF16_KUNROLL 2

int llvm_bf16_native(const LlvmTargetInfo *ti) { return ti->has_avx512bf16 && ti->vec_floats == 16; }

int llvm_bf16_amx(const LlvmTargetInfo *ti, int64_t mr, int64_t nr) {
    return ti->has_amx_bf16 && ti->vec_floats == 16 && mr == 32 && nr == 32;
}

static LLVMTypeRef bf_i32(const LlvmBf16Gen *g) { return LLVMInt32TypeInContext(g->ctx); }
static LLVMTypeRef bf_i64(const LlvmBf16Gen *g) { return LLVMInt64TypeInContext(g->ctx); }
static LLVMTypeRef bf_f32(const LlvmBf16Gen *g) { return LLVMFloatTypeInContext(g->ctx); }
static LLVMValueRef bf_c64(const LlvmBf16Gen *g, int64_t v) {
    return LLVMConstInt(bf_i64(g), (unsigned long long)v, 1);
}
static LLVMValueRef bf_c32(const LlvmBf16Gen *g, int32_t v) {
    return LLVMConstInt(bf_i32(g), (unsigned long long)(uint32_t)v, 0);
}

static LLVMBasicBlockRef bf_bb(const LlvmBf16Gen *g, const char *nm) {
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(g->b));
    return LLVMAppendBasicBlockInContext(g->ctx, fn, nm);
}

/* a vector of n copies of the i32 constant v */
static LLVMValueRef bf_splat_const(const LlvmBf16Gen *g, int32_t v, int n) {
    LLVMValueRef e[BF16_MAX_W];
    for (int i = 0; i < n; i++) e[i] = bf_c32(g, v);
    return LLVMConstVector(e, (unsigned)n);
}

static LLVMValueRef bf_splat(const LlvmBf16Gen *g, LLVMValueRef x, int n) {
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)n);
    LLVMValueRef v = LLVMBuildInsertElement(g->b, LLVMGetPoison(vt), x, bf_c32(g, 0), "");
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(bf_i32(g), (unsigned)n));
    return LLVMBuildShuffleVector(g->b, v, LLVMGetPoison(vt), mask, "");
}

static LLVMValueRef bf_load(const LlvmBf16Gen *g, LLVMTypeRef ty, LLVMValueRef p, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(g->b, ty, p, "");
    LLVMSetAlignment(v, align);
    return v;
}

static LLVMValueRef bf_gep(const LlvmBf16Gen *g, LLVMTypeRef elt, LLVMValueRef base, LLVMValueRef i) {
    return LLVMBuildGEP2(g->b, elt, base, &i, 1, "");
}

static LLVMValueRef bf_min(const LlvmBf16Gen *g, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef bf_call(const LlvmBf16Gen *g, const char *name, LLVMTypeRef *over, size_t nover,
                            LLVMValueRef *args, unsigned nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->mod, id, over, nover);
    LLVMTypeRef ty = LLVMIntrinsicGetType(g->ctx, id, over, nover);
    return LLVMBuildCall2(g->b, ty, f, args, nargs, "");
}

/* for (iv = start; iv < end; iv += step): begin makes the header with the iv phi (the caller
 * may add phis of its own there), test branches into the body, end closes the loop and
 * returns the latch block (for the caller's phis), leaving the builder at the exit */
typedef struct BfLoop {
    LLVMValueRef iv;
    LLVMBasicBlockRef pre, body, exit;
} BfLoop;

static void bf_loop_begin(const LlvmBf16Gen *g, BfLoop *l, LLVMValueRef start, const char *nm) {
    l->pre = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef head = bf_bb(g, nm);
    l->body = bf_bb(g, "body");
    l->exit = bf_bb(g, "exit");
    LLVMBuildBr(g->b, head);
    LLVMPositionBuilderAtEnd(g->b, head);
    l->iv = LLVMBuildPhi(g->b, bf_i64(g), nm);
    LLVMAddIncoming(l->iv, &start, &l->pre, 1);
}

static void bf_loop_test(const LlvmBf16Gen *g, const BfLoop *l, LLVMValueRef end) {
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, l->iv, end, ""), l->body, l->exit);
    LLVMPositionBuilderAtEnd(g->b, l->body);
}

static LLVMBasicBlockRef bf_loop_end(const LlvmBf16Gen *g, const BfLoop *l, int64_t step) {
    LLVMValueRef next = LLVMBuildAdd(g->b, l->iv, bf_c64(g, step), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, LLVMGetInstructionParent(l->iv));
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(g->b, l->exit);
    return latch;
}

LLVMValueRef llvm_bf16_panel_stride(const LlvmBf16Gen *g, LLVMValueRef kc) {
    LLVMValueRef q = LLVMBuildAShr(g->b, LLVMBuildAdd(g->b, kc, bf_c64(g, 1), ""), bf_c64(g, 1), "");
    if (!g->amx) return q;
    return LLVMBuildAnd(g->b, LLVMBuildAdd(g->b, q, bf_c64(g, 15), ""), bf_c64(g, ~(int64_t)15), "");
}

/* ---- rounding ------------------------------------------------------------------------------ */

/* f32 lanes -> their bf16 bits (round to nearest even) in the low half of i32 lanes; a NaN
 * keeps its sign and top payload bits and is made quiet */
static LLVMValueRef bf_round(const LlvmBf16Gen *g, LLVMValueRef x, int w) {
    LLVMTypeRef vi = LLVMVectorType(bf_i32(g), (unsigned)w);
    LLVMValueRef bits = LLVMBuildBitCast(g->b, x, vi, "");
    LLVMValueRef hi = LLVMBuildLShr(g->b, bits, bf_splat_const(g, 16, w), "");
    LLVMValueRef odd = LLVMBuildAnd(g->b, hi, bf_splat_const(g, 1, w), "");
    LLVMValueRef r = LLVMBuildAdd(g->b, LLVMBuildAdd(g->b, bits, bf_splat_const(g, 0x7fff, w), ""), odd, "");
    r = LLVMBuildLShr(g->b, r, bf_splat_const(g, 16, w), "");
    LLVMValueRef qnan = LLVMBuildOr(g->b, hi, bf_splat_const(g, 0x40, w), "");
    LLVMValueRef isnan = LLVMBuildFCmp(g->b, LLVMRealUNO, x, x, "");
    return LLVMBuildSelect(g->b, isnan, qnan, r, "");
}

/* ---- packing ----------------------------------------------------------------------------- */

typedef struct BfPanel {
    int w;
    int contiguous;              /* rows adjacent in memory: one vector load per k */
    int rowmajor;                /* word (r, q) at r*stride + q (AMX's A) */
    LLVMValueRef stride;         /* words per panel row: ceil(kc/2), padded for AMX */
    LLVMValueRef s, cs, klast, kc;
    LLVMValueRef rowp[BF16_MAX_W]; /* gather: each row's base (clamped to the last valid row) */
    LLVMValueRef valid[BF16_MAX_W];
} BfPanel;

/* the W values of column k of the panel as f32 (zeros for rows past the end) */
static LLVMValueRef bf_panel_col(const LlvmBf16Gen *g, const BfPanel *p, LLVMValueRef k) {
    LLVMTypeRef vw = LLVMVectorType(bf_f32(g), (unsigned)p->w);
    LLVMValueRef off = LLVMBuildMul(g->b, k, p->cs, "");
    if (p->contiguous) return bf_load(g, vw, bf_gep(g, bf_f32(g), p->s, off), 4);
    LLVMValueRef v = LLVMGetPoison(vw), fz = LLVMConstNull(bf_f32(g));
    for (int r = 0; r < p->w; r++) {
        LLVMValueRef e = bf_load(g, bf_f32(g), bf_gep(g, bf_f32(g), p->rowp[r], off), 4);
        if (p->valid[r]) e = LLVMBuildSelect(g->b, p->valid[r], e, fz, "");
        v = LLVMBuildInsertElement(g->b, v, e, bf_c32(g, r), "");
    }
    return v;
}

/* stores the W words of pair q: d[q*W + r], or d[r*stride + q] row-major */
static void bf_pack_store(const LlvmBf16Gen *g, const BfPanel *p, LLVMValueRef d, LLVMValueRef q,
                          LLVMValueRef word) {
    if (!p->rowmajor) {
        LLVMValueRef st = LLVMBuildStore(g->b, word,
                                         bf_gep(g, bf_i32(g), d, LLVMBuildMul(g->b, q, bf_c64(g, p->w), "")));
        LLVMSetAlignment(st, 4);
        return;
    }
    for (int r = 0; r < p->w; r++) {
        LLVMValueRef at = LLVMBuildAdd(g->b, LLVMBuildMul(g->b, bf_c64(g, r), p->stride, ""), q, "");
        LLVMValueRef e = LLVMBuildExtractElement(g->b, word, bf_c32(g, r), "");
        LLVMSetAlignment(LLVMBuildStore(g->b, e, bf_gep(g, bf_i32(g), d, at)), 4);
    }
}

/* for (q = 0; q < stride; q++) d[q*W + r] = bf16(x[r,2q]) | bf16(x[r,2q+1]) << 16, with +0
 * for k >= kc */
static void bf_pack_loop(const LlvmBf16Gen *g, const BfPanel *p, LLVMValueRef d, LLVMValueRef kc2) {
    BfLoop l;
    bf_loop_begin(g, &l, bf_c64(g, 0), "q");
    bf_loop_test(g, &l, kc2);
    LLVMValueRef q = l.iv;
    LLVMValueRef k0 = LLVMBuildShl(g->b, q, bf_c64(g, 1), "");
    LLVMValueRef k1 = LLVMBuildAdd(g->b, k0, bf_c64(g, 1), "");
    LLVMValueRef has0 = LLVMBuildICmp(g->b, LLVMIntSLT, k0, p->kc, "");
    LLVMValueRef has1 = LLVMBuildICmp(g->b, LLVMIntSLT, k1, p->kc, "");
    LLVMValueRef lo = bf_round(g, bf_panel_col(g, p, bf_min(g, k0, p->klast)), p->w);
    LLVMValueRef hi = bf_round(g, bf_panel_col(g, p, bf_min(g, k1, p->klast)), p->w);
    LLVMTypeRef vi = LLVMVectorType(bf_i32(g), (unsigned)p->w);
    lo = LLVMBuildSelect(g->b, has0, lo, LLVMConstNull(vi), ""); /* AMX's padding pairs */
    hi = LLVMBuildSelect(g->b, has1, hi, LLVMConstNull(vi), ""); /* odd kc: the pad is +0 */
    LLVMValueRef word = LLVMBuildOr(g->b, lo, LLVMBuildShl(g->b, hi, bf_splat_const(g, 16, p->w), ""), "");
    bf_pack_store(g, p, d, q, word);
    bf_loop_end(g, &l, 1);
}

/* one W-row panel starting at row p0: contiguous rows with vector loads, others gathered */
static void bf_pack_panel(const LlvmBf16Gen *g, LLVMValueRef fn, int w, int rowmajor, LLVMValueRef p0) {
    LLVMValueRef dst = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1), rs = LLVMGetParam(fn, 2),
                 rows = LLVMGetParam(fn, 4);
    BfPanel p = {.w = w, .rowmajor = rowmajor, .cs = LLVMGetParam(fn, 3), .kc = LLVMGetParam(fn, 5)};
    p.klast = LLVMBuildSub(g->b, p.kc, bf_c64(g, 1), "");
    LLVMValueRef kc2 = llvm_bf16_panel_stride(g, p.kc);
    p.stride = kc2;
    LLVMValueRef wv = bf_min(g, bf_c64(g, w), LLVMBuildSub(g->b, rows, p0, ""));
    LLVMValueRef d = bf_gep(g, bf_i32(g), dst, LLVMBuildMul(g->b, p0, kc2, ""));
    p.s = bf_gep(g, bf_f32(g), src, LLVMBuildMul(g->b, p0, rs, ""));
    LLVMBasicBlockRef cont = bf_bb(g, "contiguous"), gath = bf_bb(g, "gather"), join = bf_bb(g, "join");
    LLVMValueRef full = LLVMBuildICmp(g->b, LLVMIntEQ, wv, bf_c64(g, w), "");
    LLVMValueRef unit = LLVMBuildICmp(g->b, LLVMIntEQ, rs, bf_c64(g, 1), "");
    LLVMBuildCondBr(g->b, LLVMBuildAnd(g->b, full, unit, ""), cont, gath);
    LLVMPositionBuilderAtEnd(g->b, cont);
    p.contiguous = 1;
    bf_pack_loop(g, &p, d, kc2);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, gath);
    p.contiguous = 0;
    LLVMValueRef lastrow = LLVMBuildSub(g->b, wv, bf_c64(g, 1), "");
    for (int r = 0; r < w; r++) {
        LLVMValueRef rr = bf_min(g, bf_c64(g, r), lastrow);
        p.rowp[r] = bf_gep(g, bf_f32(g), p.s, LLVMBuildMul(g->b, rr, rs, ""));
        p.valid[r] = r == 0 ? NULL : LLVMBuildICmp(g->b, LLVMIntSLT, bf_c64(g, r), wv, "");
    }
    bf_pack_loop(g, &p, d, kc2);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
}

void llvm_bf16_pack_body(const LlvmBf16Gen *g, LLVMValueRef fn, int w, int rowmajor) {
    BfLoop l;
    bf_loop_begin(g, &l, bf_c64(g, 0), "panel");
    bf_loop_test(g, &l, LLVMGetParam(fn, 4));
    bf_pack_panel(g, fn, w, rowmajor, l.iv);
    bf_loop_end(g, &l, w);
    LLVMBuildRetVoid(g->b);
}

/* ---- microkernel ------------------------------------------------------------------------- */

/* acc += a·b over one k pair: a and b are <vl x i32> words of two bf16 each */
static LLVMValueRef bf_dot(const LlvmBf16Gen *g, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b,
                           LLVMValueRef blo, LLVMValueRef bhi) {
    if (g->native) {
        LLVMTypeRef vb = LLVMVectorType(LLVMBFloatTypeInContext(g->ctx), 32);
        LLVMValueRef args[3] = {acc, LLVMBuildBitCast(g->b, a, vb, ""), LLVMBuildBitCast(g->b, b, vb, "")};
        return bf_call(g, "llvm.x86.avx512bf16.dpbf16ps.512", NULL, 0, args, 3);
    }
    LLVMTypeRef vf = LLVMVectorType(bf_f32(g), (unsigned)g->vl);
    LLVMValueRef alo = LLVMBuildBitCast(g->b, LLVMBuildShl(g->b, a, bf_splat_const(g, 16, g->vl), ""), vf, "");
    LLVMValueRef ahi = LLVMBuildBitCast(g->b, LLVMBuildAnd(g->b, a, bf_splat_const(g, (int32_t)0xffff0000u, g->vl), ""), vf, "");
    LLVMValueRef args[3] = {ahi, bhi, acc};
    acc = bf_call(g, "llvm.fmuladd", &vf, 1, args, 3); /* exact products: fused or not alike */
    LLVMValueRef args2[3] = {alo, blo, acc};
    return bf_call(g, "llvm.fmuladd", &vf, 1, args2, 3);
}

/* one k-pair step of the register tile at pair index q */
static void bf_step(const LlvmBf16Gen *g, LLVMValueRef q, LLVMValueRef ap, LLVMValueRef bp, LLVMValueRef *cur) {
    int nrv = g->nr / g->vl;
    LLVMTypeRef vi = LLVMVectorType(bf_i32(g), (unsigned)g->vl);
    LLVMTypeRef vf = LLVMVectorType(bf_f32(g), (unsigned)g->vl);
    unsigned balign = (unsigned)(g->vl * 4 > 64 ? 64 : g->vl * 4);
    LLVMValueRef brow = bf_gep(g, bf_i32(g), bp, LLVMBuildMul(g->b, q, bf_c64(g, g->nr), ""));
    LLVMValueRef arow = bf_gep(g, bf_i32(g), ap, LLVMBuildMul(g->b, q, bf_c64(g, g->mr), ""));
    LLVMValueRef bv[8], blo[8] = {0}, bhi[8] = {0};
    for (int v = 0; v < nrv; v++) {
        bv[v] = bf_load(g, vi, bf_gep(g, bf_i32(g), brow, bf_c64(g, (int64_t)v * g->vl)), balign);
        if (g->native) continue;
        blo[v] = LLVMBuildBitCast(g->b, LLVMBuildShl(g->b, bv[v], bf_splat_const(g, 16, g->vl), ""), vf, "");
        bhi[v] = LLVMBuildBitCast(g->b, LLVMBuildAnd(g->b, bv[v], bf_splat_const(g, (int32_t)0xffff0000u, g->vl), ""), vf, "");
    }
    for (int i = 0; i < g->mr; i++) {
        LLVMValueRef a = bf_load(g, bf_i32(g), bf_gep(g, bf_i32(g), arow, bf_c64(g, i)), 4);
        LLVMValueRef as = bf_splat(g, a, g->vl);
        for (int v = 0; v < nrv; v++)
            cur[i * nrv + v] = bf_dot(g, cur[i * nrv + v], as, bv[v], blo[v], bhi[v]);
    }
}

/* for (q = start; q < end; q += unroll) with the accumulators in phis; returns the final q */
static LLVMValueRef bf_kloop_part(const LlvmBf16Gen *g, LLVMValueRef start, LLVMValueRef end, int unroll,
                                  LLVMValueRef ap, LLVMValueRef bp, LLVMValueRef *acc) {
    int nacc = g->mr * (g->nr / g->vl);
    LLVMTypeRef vf = LLVMVectorType(bf_f32(g), (unsigned)g->vl);
    BfLoop l;
    bf_loop_begin(g, &l, start, "kq");
    LLVMValueRef phis[BF16_MAX_ACC], cur[BF16_MAX_ACC];
    for (int i = 0; i < nacc; i++) {
        phis[i] = LLVMBuildPhi(g->b, vf, "acc");
        LLVMAddIncoming(phis[i], &acc[i], &l.pre, 1);
    }
    bf_loop_test(g, &l, end);
    memcpy(cur, phis, sizeof(LLVMValueRef) * (size_t)nacc);
    for (int u = 0; u < unroll; u++) bf_step(g, LLVMBuildAdd(g->b, l.iv, bf_c64(g, u), ""), ap, bp, cur);
    LLVMBasicBlockRef latch = bf_loop_end(g, &l, unroll);
    for (int i = 0; i < nacc; i++) LLVMAddIncoming(phis[i], &cur[i], &latch, 1);
    memcpy(acc, phis, sizeof(LLVMValueRef) * (size_t)nacc);
    return l.iv;
}

/* ---- AMX ---------------------------------------------------------------------------------- */

static void bf_amx(const LlvmBf16Gen *g, const char *name, LLVMValueRef *args, unsigned n) {
    bf_call(g, name, NULL, 0, args, n);
}

static LLVMValueRef bf_c8(const LlvmBf16Gen *g, int v) {
    return LLVMConstInt(LLVMInt8TypeInContext(g->ctx), (unsigned long long)v, 0);
}

/* palette 1, tiles 0..7 all 16 rows of 64 bytes: C 0..3 (f32 16x16), A 4..5, B 6..7 (16x32 bf16) */
static void bf_amx_config(const LlvmBf16Gen *g) {
    LLVMTypeRef cfgt = LLVMArrayType(LLVMInt8TypeInContext(g->ctx), 64);
    LLVMValueRef cfg = LLVMBuildAlloca(g->b, cfgt, "tilecfg");
    LLVMSetAlignment(cfg, 64);
    LLVMValueRef bytes[64];
    for (int i = 0; i < 64; i++) bytes[i] = bf_c8(g, 0);
    bytes[0] = bf_c8(g, 1);
    for (int t = 0; t < 8; t++) bytes[16 + 2 * t] = bf_c8(g, 64), bytes[48 + t] = bf_c8(g, 16);
    LLVMSetAlignment(LLVMBuildStore(g->b, LLVMConstArray(LLVMInt8TypeInContext(g->ctx), bytes, 64), cfg), 64);
    bf_amx(g, "llvm.x86.ldtilecfg", &cfg, 1);
}

static void bf_amx_load(const LlvmBf16Gen *g, int tile, LLVMValueRef base, LLVMValueRef off_words,
                        LLVMValueRef stride_bytes) {
    LLVMValueRef args[3] = {bf_c8(g, tile), bf_gep(g, bf_i32(g), base, off_words), stride_bytes};
    bf_amx(g, "llvm.x86.tileloadd64", args, 3);
}

/* the k loop on AMX tiles; the C tiles go through a stack buffer into acc (2 vectors a row) */
static void bf_amx_kloop(const LlvmBf16Gen *g, LLVMValueRef kc, LLVMValueRef ap, LLVMValueRef bp,
                         LLVMValueRef *acc) {
    LLVMValueRef kq = llvm_bf16_panel_stride(g, kc);
    LLVMValueRef cbuf = LLVMBuildArrayAlloca(g->b, bf_f32(g), bf_c64(g, 32 * 32), "ctile");
    LLVMSetAlignment(cbuf, 64);
    bf_amx_config(g);
    for (int t = 0; t < 4; t++) {
        LLVMValueRef z = bf_c8(g, t);
        bf_amx(g, "llvm.x86.tilezero", &z, 1);
    }
    LLVMValueRef astride = LLVMBuildMul(g->b, kq, bf_c64(g, 4), ""), bstride = bf_c64(g, 4 * g->nr);
    BfLoop l;
    bf_loop_begin(g, &l, bf_c64(g, 0), "kt");
    bf_loop_test(g, &l, kq);
    LLVMValueRef q = l.iv;
    LLVMValueRef bq = LLVMBuildMul(g->b, q, bf_c64(g, g->nr), "");
    bf_amx_load(g, 4, ap, q, astride);
    bf_amx_load(g, 5, ap, LLVMBuildAdd(g->b, LLVMBuildMul(g->b, kq, bf_c64(g, 16), ""), q, ""), astride);
    bf_amx_load(g, 6, bp, bq, bstride);
    bf_amx_load(g, 7, bp, LLVMBuildAdd(g->b, bq, bf_c64(g, 16), ""), bstride);
    for (int t = 0; t < 4; t++) {
        LLVMValueRef args[3] = {bf_c8(g, t), bf_c8(g, 4 + t / 2), bf_c8(g, 6 + t % 2)};
        bf_amx(g, "llvm.x86.tdpbf16ps", args, 3);
    }
    bf_loop_end(g, &l, 16);
    for (int t = 0; t < 4; t++) {
        LLVMValueRef off = bf_c64(g, (t / 2) * 16 * 32 + (t % 2) * 16);
        LLVMValueRef args[3] = {bf_c8(g, t), bf_gep(g, bf_f32(g), cbuf, off), bf_c64(g, 32 * 4)};
        bf_amx(g, "llvm.x86.tilestored64", args, 3);
    }
    bf_amx(g, "llvm.x86.tilerelease", NULL, 0);
    LLVMTypeRef vf = LLVMVectorType(bf_f32(g), 16);
    for (int i = 0; i < 32; i++)
        for (int v = 0; v < 2; v++)
            acc[i * 2 + v] = bf_load(g, vf, bf_gep(g, bf_f32(g), cbuf, bf_c64(g, i * 32 + v * 16)), 64);
}

void llvm_bf16_amx_permit(const LlvmBf16Gen *g) {
    /* syscall(SYS_arch_prctl = 158, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18) */
    LLVMTypeRef i64 = bf_i64(g);
    LLVMTypeRef fty = LLVMFunctionType(i64, &i64, 1, 1);
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, "syscall");
    if (!f) f = LLVMAddFunction(g->mod, "syscall", fty);
    LLVMValueRef args[3] = {bf_c64(g, 158), bf_c64(g, 0x1023), bf_c64(g, 18)};
    LLVMBuildCall2(g->b, fty, f, args, 3, "");
}

void llvm_bf16_kloop(const LlvmBf16Gen *g, LLVMValueRef kc, LLVMValueRef ap, LLVMValueRef bp,
                     LLVMValueRef *acc) {
    if (g->amx) {
        bf_amx_kloop(g, kc, ap, bp, acc);
        return;
    }
    LLVMValueRef kc2 = llvm_bf16_panel_stride(g, kc);
    LLVMValueRef qmain = LLVMBuildAnd(g->b, kc2, bf_c64(g, ~(int64_t)(BF16_KUNROLL - 1)), "");
    LLVMValueRef q = bf_kloop_part(g, bf_c64(g, 0), qmain, BF16_KUNROLL, ap, bp, acc);
    bf_kloop_part(g, q, kc2, 1, ap, bp, acc);
}
