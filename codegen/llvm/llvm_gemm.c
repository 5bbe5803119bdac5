/* llvm_gemm.c — emits packed, register-blocked f32 GEMM kernels as LLVM IR (see
 * llvm_gemm.h for the algorithm and the contract of the generated function). */
#include "llvm_gemm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llvm_bf16.h"
#include "rt_threads.h"

#define GEMM_MAX_MR 32
#define GEMM_MAX_NRV 8
#define GEMM_KUNROLL 4

static void gemm_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- blocking ----------------------------------------------------------------------------- */

static int64_t gemm_read_sys_cache(int level, const char *type_want) {
    for (int idx = 0; idx < 8; idx++) {
        char path[128], buf[64];
        int lv = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", idx);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fscanf(f, "%d", &lv) != 1) lv = 0;
        fclose(f);
        if (lv != level) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", idx);
        f = fopen(path, "r");
        if (!f) continue;
        int ok = fscanf(f, "%63s", buf) == 1 && (strcmp(buf, type_want) == 0 ||
                                                 strcmp(buf, "Unified") == 0);
        fclose(f);
        if (!ok) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
        f = fopen(path, "r");
        if (!f) continue;
        long v = 0;
        char unit = 0;
        int n = fscanf(f, "%ld%c", &v, &unit);
        fclose(f);
        if (n < 1 || v <= 0) continue;
        if (n == 2 && (unit == 'K' || unit == 'k')) v *= 1024;
        else if (n == 2 && (unit == 'M' || unit == 'm')) v *= 1024 * 1024;
        return v;
    }
    return 0;
}

void llvm_gemm_cache_sizes(int64_t *l1, int64_t *l2, int64_t *l3) {
    int64_t a = gemm_read_sys_cache(1, "Data"), b = gemm_read_sys_cache(2, "Data"),
            c = gemm_read_sys_cache(3, "Data");
#ifdef _SC_LEVEL1_DCACHE_SIZE
    if (a <= 0) a = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    if (b <= 0) b = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (c <= 0) c = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    *l1 = a > 0 ? a : 32 * 1024;
    *l2 = b > 0 ? b : 256 * 1024;
    *l3 = c > 0 ? c : 8 * 1024 * 1024;
}

static int64_t gemm_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static int64_t gemm_round_down_min(int64_t x, int64_t m) { return x < m ? m : x / m * m; }

void llvm_gemm_blocking(const LlvmGemmSpec *spec, int vec_floats, LlvmGemmBlocking *out) {
    const LlvmGemmBlocking *in = &spec->blk;
    int64_t vl = vec_floats > 0 ? vec_floats : 4;
    /* Register blocking: MR*NR/VL accumulators + NR/VL B vectors + 1 broadcast must fit the
     * register file (32 vector registers with AVX-512, 16 otherwise). */
    int64_t mr = 6, nr = 2 * vl;
    if (vl >= 16) mr = 12;
    out->mr = in->mr > 0 ? in->mr : mr;
    out->nr = gemm_round_up(in->nr > 0 ? in->nr : nr, vl);
    if (out->mr > GEMM_MAX_MR) out->mr = GEMM_MAX_MR;
    if (out->nr > GEMM_MAX_NRV * vl) out->nr = GEMM_MAX_NRV * vl;

    int64_t l1, l2, l3;
    llvm_gemm_cache_sizes(&l1, &l2, &l3);
    /* KC: the KC×NR micro-panel of B stays in L1 next to the streaming A micro-panel and the
     * C tile, so it gets about two thirds of L1. MC: the MC×KC block of A is re-read from L2
     * for every micro-panel of B; an eighth of L2 keeps it resident next to the B panel
     * streaming through (measured on an AVX-512 host with 48 KiB L1 / 2 MiB L2: KC=256,
     * MC=240 beat both halves-of-cache choices). NC: the KC×NC panel of B about half of L3,
     * capped so per-thread buffers stay a few MiB. */
    int64_t kc = (l1 * 2 / 3) / (out->nr * 4);
    kc = kc < 64 ? 64 : kc > 1024 ? 1024 : kc / 16 * 16;
    out->kc = in->kc > 0 ? in->kc : kc;
    int64_t mc = (l2 / 8) / (out->kc * 4);
    if (mc > 1024) mc = 1024;
    out->mc = gemm_round_down_min(in->mc > 0 ? in->mc : mc, out->mr);
    int64_t nc = (l3 / 2) / (out->kc * 4);
    if (nc > 4096) nc = 4096;
    out->nc = gemm_round_down_min(in->nc > 0 ? in->nc : nc, out->nr);
}

/* ---- IR building helpers ------------------------------------------------------------------ */

typedef struct Gen {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i1, i32, i64, f32, ptr, vd, vf, vmask, vi32;
    int vl, mr, nr, nrv;
    int64_t kc, mc, nc;
    const LlvmGemmSpec *spec;
    const LlvmTargetInfo *ti;
    LLVMValueRef fn; /* function being built */
    LLVMValueRef bld; /* the k loop's B row stride: NULL = NR (packed panels), else ldb */
    char name[200];
} Gen;

static LLVMValueRef c64(Gen *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 1); }
static LLVMValueRef c32(Gen *g, int32_t v) { return LLVMConstInt(g->i32, (unsigned long long)v, 1); }

static LLVMBasicBlockRef gen_bb(Gen *g, const char *nm) {
    return LLVMAppendBasicBlockInContext(g->ctx, g->fn, nm);
}

static LLVMValueRef gen_gep(Gen *g, LLVMValueRef base, LLVMValueRef idx) {
    return LLVMBuildGEP2(g->b, g->f32, base, &idx, 1, "");
}

static LLVMValueRef gen_min(Gen *g, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef gen_max(Gen *g, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, a, b, ""), a, b, "");
}

static LLVMValueRef gen_add(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(g->b, a, b, ""); }
static LLVMValueRef gen_sub(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSub(g->b, a, b, ""); }
static LLVMValueRef gen_mul(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(g->b, a, b, ""); }

/* ceil(a / m) for a >= 0 and constant m > 0 */
static LLVMValueRef gen_ceildiv(Gen *g, LLVMValueRef a, int64_t m) {
    return LLVMBuildSDiv(g->b, gen_add(g, a, c64(g, m - 1)), c64(g, m), "");
}

static LLVMValueRef gen_load(Gen *g, LLVMTypeRef ty, LLVMValueRef p, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(g->b, ty, p, "");
    LLVMSetAlignment(v, align);
    return v;
}

static void gen_store(Gen *g, LLVMValueRef v, LLVMValueRef p, unsigned align) {
    LLVMValueRef s = LLVMBuildStore(g->b, v, p);
    LLVMSetAlignment(s, align);
}

static LLVMValueRef gen_intrinsic(Gen *g, const char *name, LLVMTypeRef *over, size_t nover,
                                  LLVMValueRef *args, unsigned nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->mod, id, over, nover);
    LLVMTypeRef ty = LLVMIntrinsicGetType(g->ctx, id, over, nover);
    return LLVMBuildCall2(g->b, ty, f, args, nargs, "");
}

static LLVMValueRef gen_splat(Gen *g, LLVMValueRef x, int n) {
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)n);
    LLVMValueRef v = LLVMBuildInsertElement(g->b, LLVMGetPoison(vt), x, c32(g, 0), "");
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(g->i32, (unsigned)n));
    return LLVMBuildShuffleVector(g->b, v, LLVMGetPoison(vt), mask, "");
}

static LLVMValueRef gen_fma(Gen *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[3] = {a, b, c};
    return gen_intrinsic(g, g->ti->has_fma ? "llvm.fma" : "llvm.fmuladd", &t, 1, args, 3);
}

static LLVMValueRef gen_masked_load(Gen *g, LLVMValueRef p, LLVMValueRef mask) {
    LLVMTypeRef over[2] = {g->vf, g->ptr};
    LLVMValueRef args[4] = {p, c32(g, 4), mask, LLVMConstNull(g->vf)};
    return gen_intrinsic(g, "llvm.masked.load", over, 2, args, 4);
}

static void gen_masked_store(Gen *g, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
    LLVMTypeRef over[2] = {g->vf, g->ptr};
    LLVMValueRef args[4] = {v, p, c32(g, 4), mask};
    gen_intrinsic(g, "llvm.masked.store", over, 2, args, 4);
}

typedef struct {
    LLVMValueRef iv, step;
    LLVMBasicBlockRef header, exit;
} GenLoop;

/* for (iv = start; iv < end; iv += step) — `end` must dominate the loop. */
static void loop_begin(Gen *g, GenLoop *l, LLVMValueRef start, LLVMValueRef end,
                       LLVMValueRef step, const char *nm) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    l->header = gen_bb(g, nm);
    LLVMBasicBlockRef body = gen_bb(g, "body");
    l->exit = gen_bb(g, "exit");
    LLVMBuildBr(g->b, l->header);
    LLVMPositionBuilderAtEnd(g->b, l->header);
    l->iv = LLVMBuildPhi(g->b, g->i64, nm);
    LLVMAddIncoming(l->iv, &start, &pre, 1);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, l->iv, end, ""), body, l->exit);
    LLVMPositionBuilderAtEnd(g->b, body);
    l->step = step;
}

static void loop_end(Gen *g, GenLoop *l) {
    LLVMValueRef next = gen_add(g, l->iv, l->step);
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, l->header);
    LLVMAddIncoming(l->iv, &next, &cur, 1);
    LLVMPositionBuilderAtEnd(g->b, l->exit);
}

static LLVMValueRef gen_function(Gen *g, const char *suffix, LLVMTypeRef ret, LLVMTypeRef *params,
                                 unsigned n, int internal) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s%s", g->name, suffix);
    LLVMTypeRef fty = LLVMFunctionType(ret, params, n, 0);
    LLVMValueRef f = LLVMAddFunction(g->mod, nm, fty);
    if (internal) LLVMSetLinkage(f, LLVMInternalLinkage);
    unsigned kind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->ctx, kind, 0));
    llvm_function_set_target(f, g->ti);
    g->fn = f;
    LLVMPositionBuilderAtEnd(g->b, gen_bb(g, "entry"));
    return f;
}

static void gen_add_fn_attr(Gen *g, LLVMValueRef f, const char *attr) {
    unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->ctx, kind, 0));
}

static LLVMValueRef gen_call(Gen *g, LLVMValueRef f, LLVMValueRef *args, unsigned n) {
    return LLVMBuildCall2(g->b, LLVMGlobalGetValueType(f), f, args, n, "");
}

static LLVMValueRef gen_declare(Gen *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                                unsigned n) {
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
    if (!f) f = LLVMAddFunction(g->mod, name, LLVMFunctionType(ret, params, n, 0));
    return f;
}

/* the generator's state as the bf16 emitters (llvm_bf16.c) see it */
static LlvmBf16Gen gen_bf16(const Gen *g) {
    LlvmBf16Gen bg = {.ctx = g->ctx, .mod = g->mod, .b = g->b, .vl = g->vl, .mr = g->mr, .nr = g->nr,
                      .native = g->spec->prec == LLVM_GEMM_BF16 && llvm_bf16_native(g->ti),
                      .amx = g->spec->prec == LLVM_GEMM_BF16 && llvm_bf16_amx(g->ti, g->mr, g->nr)};
    return bg;
}

/* ---- microkernel -------------------------------------------------------------------------- */

/* One k loop over packed panels, unrolled by `unroll`, accumulators carried in phis.
 * Runs k from `start` while k < end; returns the final k. */
static LLVMValueRef emit_kloop(Gen *g, LLVMValueRef start, LLVMValueRef end, int unroll,
                               LLVMValueRef *acc, LLVMValueRef ap, LLVMValueRef bp) {
    int nacc = g->mr * g->nrv;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef header = gen_bb(g, "k"), body = gen_bb(g, "kbody"), exit = gen_bb(g, "kdone");
    LLVMBuildBr(g->b, header);
    LLVMPositionBuilderAtEnd(g->b, header);
    LLVMValueRef kphi = LLVMBuildPhi(g->b, g->i64, "k");
    LLVMAddIncoming(kphi, &start, &pre, 1);
    LLVMValueRef phis[GEMM_MAX_MR * GEMM_MAX_NRV];
    for (int i = 0; i < nacc; i++) {
        phis[i] = LLVMBuildPhi(g->b, g->vf, "acc");
        LLVMAddIncoming(phis[i], &acc[i], &pre, 1);
    }
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, kphi, end, ""), body, exit);
    LLVMPositionBuilderAtEnd(g->b, body);
    LLVMValueRef cur[GEMM_MAX_MR * GEMM_MAX_NRV];
    memcpy(cur, phis, sizeof(LLVMValueRef) * (size_t)nacc);
    unsigned balign = g->bld ? 4 : (unsigned)(g->vl * 4 > 64 ? 64 : g->vl * 4);
    for (int u = 0; u < unroll; u++) {
        LLVMValueRef kk = gen_add(g, kphi, c64(g, u));
        LLVMValueRef brow = gen_gep(g, bp, gen_mul(g, kk, g->bld ? g->bld : c64(g, g->nr)));
        LLVMValueRef arow = gen_gep(g, ap, gen_mul(g, kk, c64(g, g->mr)));
        LLVMValueRef bv[GEMM_MAX_NRV];
        for (int v = 0; v < g->nrv; v++)
            bv[v] = gen_load(g, g->vf, gen_gep(g, brow, c64(g, (int64_t)v * g->vl)), balign);
        for (int i = 0; i < g->mr; i++) {
            LLVMValueRef a = gen_load(g, g->f32, gen_gep(g, arow, c64(g, i)), 4);
            LLVMValueRef as = gen_splat(g, a, g->vl);
            for (int v = 0; v < g->nrv; v++)
                cur[i * g->nrv + v] = gen_fma(g, as, bv[v], cur[i * g->nrv + v]);
        }
    }
    LLVMValueRef knext = gen_add(g, kphi, c64(g, unroll));
    LLVMBasicBlockRef last = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, header);
    LLVMAddIncoming(kphi, &knext, &last, 1);
    for (int i = 0; i < nacc; i++) LLVMAddIncoming(phis[i], &cur[i], &last, 1);
    LLVMPositionBuilderAtEnd(g->b, exit);
    memcpy(acc, phis, sizeof(LLVMValueRef) * (size_t)nacc);
    return kphi;
}

/* the k loop unrolled by GEMM_KUNROLL, then its remainder */
static void emit_kloop_all(Gen *g, LLVMValueRef kc, LLVMValueRef *acc, LLVMValueRef ap,
                           LLVMValueRef bp) {
    LLVMValueRef kmain = LLVMBuildAnd(g->b, kc, c64(g, ~(int64_t)(GEMM_KUNROLL - 1)), "");
    LLVMValueRef k = emit_kloop(g, c64(g, 0), kmain, GEMM_KUNROLL, acc, ap, bp);
    emit_kloop(g, k, kc, 1, acc, ap, bp);
}

/* The f32 k loops of a tile of nr columns. An edge tile of at most one vector of columns (a
 * 14² image's 196 positions end in one of 4, a 7² batch of 8 in one of 8) runs the loop of
 * the first vector alone: the other vectors' accumulators stay zero and their lanes are
 * masked off when stored, so it costs 1/nrv of a whole tile. */
static void emit_kloops(Gen *g, LLVMValueRef kc, LLVMValueRef nr, LLVMValueRef ap,
                        LLVMValueRef bp, LLVMValueRef *acc) {
    int nrv = g->nrv, nacc = g->mr * nrv;
    if (nrv < 2) {
        emit_kloop_all(g, kc, acc, ap, bp);
        return;
    }
    LLVMBasicBlockRef nb = gen_bb(g, "knarrow"), wb = gen_bb(g, "kwide"), jb = gen_bb(g, "kjoin");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, nr, c64(g, g->vl), ""), nb, wb);
    LLVMValueRef one[GEMM_MAX_MR], accn[GEMM_MAX_MR * GEMM_MAX_NRV], accw[GEMM_MAX_MR * GEMM_MAX_NRV];
    LLVMPositionBuilderAtEnd(g->b, nb);
    for (int i = 0; i < g->mr; i++) one[i] = LLVMConstNull(g->vf);
    g->nrv = 1; /* the panel's rows stay NR apart (emit_kloop: g->nr) */
    emit_kloop_all(g, kc, one, ap, bp);
    g->nrv = nrv;
    for (int i = 0; i < nacc; i++) accn[i] = i % nrv ? LLVMConstNull(g->vf) : one[i / nrv];
    LLVMBasicBlockRef nend = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, jb);
    LLVMPositionBuilderAtEnd(g->b, wb);
    memcpy(accw, acc, sizeof(LLVMValueRef) * (size_t)nacc);
    emit_kloop_all(g, kc, accw, ap, bp);
    LLVMBasicBlockRef wend = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, jb);
    LLVMPositionBuilderAtEnd(g->b, jb);
    for (int i = 0; i < nacc; i++) {
        acc[i] = LLVMBuildPhi(g->b, g->vf, "acc");
        LLVMAddIncoming(acc[i], &accn[i], &nend, 1);
        LLVMAddIncoming(acc[i], &accw[i], &wend, 1);
    }
}

/* Stores the accumulator tile: full tiles with plain vector accesses (full == 2: non-temporal
 * stores, the tile's rows aligned to a vector, at most 64 bytes), edge tiles with a row guard and lane masks.
 * `loadc` adds the old C; `epi` applies bias and relu. */
typedef struct TileAt { /* the tile's place for a fused epilogue (LlvmGemmSpec.epi) */
    LLVMValueRef ectx, row, col;
} TileAt;

static void emit_tile_store(Gen *g, LLVMValueRef *acc, int full, int loadc, int epi,
                            LLVMValueRef cp, LLVMValueRef ldc, LLVMValueRef mr, LLVMValueRef nr,
                            LLVMValueRef bias, const TileAt *at, LLVMBasicBlockRef done) {
    LLVMValueRef masks[GEMM_MAX_NRV] = {0};
    if (!full) {
        LLVMValueRef nrs = gen_splat(g, LLVMBuildTrunc(g->b, nr, g->i32, ""), g->vl);
        for (int v = 0; v < g->nrv; v++) {
            LLVMValueRef lanes[64];
            for (int l = 0; l < g->vl; l++) lanes[l] = c32(g, v * g->vl + l);
            masks[v] = LLVMBuildICmp(g->b, LLVMIntSLT, LLVMConstVector(lanes, (unsigned)g->vl),
                                     nrs, "mask");
        }
    }
    LLVMValueRef bcol[GEMM_MAX_NRV] = {0};
    if (epi && g->spec->bias == LLVM_GEMM_BIAS_COL) {
        for (int v = 0; v < g->nrv; v++) {
            LLVMValueRef p = gen_gep(g, bias, c64(g, (int64_t)v * g->vl));
            bcol[v] = full ? gen_load(g, g->vf, p, 4) : gen_masked_load(g, p, masks[v]);
        }
    }
    LLVMValueRef zero = LLVMConstNull(g->vf);
    for (int i = 0; i < g->mr; i++) {
        if (!full && i > 0) {
            LLVMBasicBlockRef row = gen_bb(g, "row");
            LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, c64(g, i), mr, ""), row, done);
            LLVMPositionBuilderAtEnd(g->b, row);
        }
        LLVMValueRef rowp = gen_gep(g, cp, gen_mul(g, c64(g, i), ldc));
        LLVMValueRef brow = NULL, srow = NULL;
        if (epi && g->spec->bias == LLVM_GEMM_BIAS_ROW)
            brow = gen_splat(g, gen_load(g, g->f32, gen_gep(g, bias, c64(g, i)), 4), g->vl);
        if (epi && g->spec->bias == LLVM_GEMM_AFFINE_ROW) {
            srow = gen_splat(g, gen_load(g, g->f32, gen_gep(g, bias, c64(g, 2 * i)), 4), g->vl);
            brow = gen_splat(g, gen_load(g, g->f32, gen_gep(g, bias, c64(g, 2 * i + 1)), 4), g->vl);
        }
        for (int v = 0; v < g->nrv; v++) {
            LLVMValueRef p = gen_gep(g, rowp, c64(g, (int64_t)v * g->vl));
            LLVMValueRef x = acc[i * g->nrv + v];
            if (loadc) {
                LLVMValueRef c = full ? gen_load(g, g->vf, p, 4) : gen_masked_load(g, p, masks[v]);
                x = LLVMBuildFAdd(g->b, c, x, "");
            }
            if (epi) {
                if (bcol[v]) x = LLVMBuildFAdd(g->b, x, bcol[v], "");
                if (srow) x = gen_fma(g, x, srow, brow);
                else if (brow) x = LLVMBuildFAdd(g->b, x, brow, "");
                if (g->spec->relu)
                    x = LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealUGT, x, zero, ""), x,
                                        zero, "");
                const LlvmGemmEpi *ep = g->spec->epi;
                if (ep)
                    x = ep->emit(ep->ctx, g->b, g->fn, x, p, gen_add(g, at->row, c64(g, i)),
                                 gen_add(g, at->col, c64(g, (int64_t)v * g->vl)),
                                 full ? NULL : masks[v], at->ectx);
            }
            if (full == 2) {
                llvm_store_nontemporal(g->b, x, p, (unsigned)(g->vl * 4 > 64 ? 64 : g->vl * 4));
            } else if (full) {
                gen_store(g, x, p, 4);
            } else {
                gen_masked_store(g, x, p, masks[v]);
            }
        }
    }
    LLVMBuildBr(g->b, done);
}

/* Start fetching the C tile now so that its misses overlap the k loop. Prefetches never
 * fault, so edge tiles may prefetch past the matrix. Not where the tile's only K block
 * stores it non-temporally (flags 2 with nt_store): fetching lines that the stores then
 * bypass the cache for read the output from memory for nothing (a 16 -> 96 channel 1x1
 * convolution at 112², batch 8, Zen 4: 5.8 -> 4.4 ms). */
static void emit_c_prefetch(Gen *g, LLVMValueRef cp, LLVMValueRef ldc, LLVMValueRef flags) {
    LLVMBasicBlockRef after = NULL;
    if (g->spec->nt_store) {
        LLVMBasicBlockRef pf = gen_bb(g, "prefetch");
        after = gen_bb(g, "kloop");
        LLVMValueRef only = LLVMBuildICmp(g->b, LLVMIntEQ, LLVMBuildAnd(g->b, flags, c32(g, 3), ""),
                                          c32(g, 2), "");
        LLVMBuildCondBr(g->b, only, after, pf);
        LLVMPositionBuilderAtEnd(g->b, pf);
    }
    for (int i = 0; i < g->mr; i++) {
        LLVMValueRef rowp = gen_gep(g, cp, gen_mul(g, c64(g, i), ldc));
        for (int off = 0; off < g->nr; off += 16) {
            LLVMValueRef pargs[4] = {gen_gep(g, rowp, c64(g, off)), c32(g, 1), c32(g, 3), c32(g, 1)};
            gen_intrinsic(g, "llvm.prefetch", &g->ptr, 1, pargs, 4);
        }
    }
    if (after) {
        LLVMBuildBr(g->b, after);
        LLVMPositionBuilderAtEnd(g->b, after);
    }
}

/* void ukr(i64 kc, ptr Ap, ptr Bp, ptr C, i64 ldc, i64 mr, i64 nr, i32 flags, ptr bias
 *          [, ptr ectx, i64 row, i64 col: with spec.epi])
 * flags bit 0: add to C; bit 1: apply the epilogue. With `direct` (spec.direct_b), ".ukr_d":
 * Bp is op(B) itself, its rows ldb apart, after the other arguments (ectx, row and col
 * unused without an epilogue): void ukr_d(..., ptr ectx, i64 row, i64 col, i64 ldb). */
static LLVMValueRef emit_ukr(Gen *g, int direct) {
    LLVMTypeRef ps[13] = {g->i64, g->ptr, g->ptr, g->ptr, g->i64, g->i64,
                          g->i64, g->i32, g->ptr, g->ptr, g->i64, g->i64, g->i64};
    LLVMValueRef f = gen_function(g, direct ? ".ukr_d" : ".ukr", g->vd, ps,
                                  direct ? 13 : g->spec->epi ? 12 : 9, 1);
    g->bld = direct ? LLVMGetParam(f, 12) : NULL;
    TileAt at = {0};
    if (g->spec->epi) at = (TileAt){LLVMGetParam(f, 9), LLVMGetParam(f, 10), LLVMGetParam(f, 11)};
    gen_add_fn_attr(g, f, "noinline");
    LLVMValueRef kc = LLVMGetParam(f, 0), ap = LLVMGetParam(f, 1), bp = LLVMGetParam(f, 2),
                 cp = LLVMGetParam(f, 3), ldc = LLVMGetParam(f, 4), mr = LLVMGetParam(f, 5),
                 nr = LLVMGetParam(f, 6), flags = LLVMGetParam(f, 7), bias = LLVMGetParam(f, 8);
    for (unsigned i = 1; i <= 3; i++) {
        unsigned kind = LLVMGetEnumAttributeKindForName("noalias", 7);
        LLVMAddAttributeAtIndex(f, i + 1, LLVMCreateEnumAttribute(g->ctx, kind, 0));
    }
    emit_c_prefetch(g, cp, ldc, flags);
    int nacc = g->mr * g->nrv;
    LLVMValueRef acc[GEMM_MAX_MR * GEMM_MAX_NRV];
    for (int i = 0; i < nacc; i++) acc[i] = LLVMConstNull(g->vf);
    if (g->spec->prec != LLVM_GEMM_F32) {
        LlvmBf16Gen bg = gen_bf16(g);
        llvm_bf16_kloop(&bg, kc, ap, bp, acc);
    } else {
        emit_kloops(g, kc, nr, ap, bp, acc);
    }

    /* bit 1 (the last K block) matters where there is an epilogue or the last block's stores
     * are non-temporal; epi = 1 without an epilogue adds nothing */
    int has_epi = g->spec->bias != LLVM_GEMM_BIAS_NONE || g->spec->relu || g->spec->epi;
    int nmodes = has_epi || g->spec->nt_store ? 4 : 2;
    LLVMValueRef mode = LLVMBuildAnd(g->b, flags, c32(g, nmodes - 1), "");
    LLVMValueRef full = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mr, c64(g, g->mr), ""),
                                     LLVMBuildICmp(g->b, LLVMIntEQ, nr, c64(g, g->nr), ""), "");
    LLVMBasicBlockRef done = gen_bb(g, "done");
    LLVMBasicBlockRef fullbb = gen_bb(g, "full"), partbb = gen_bb(g, "part");
    LLVMBuildCondBr(g->b, full, fullbb, partbb);
    for (int isfull = 1; isfull >= 0; isfull--) {
        LLVMPositionBuilderAtEnd(g->b, isfull ? fullbb : partbb);
        LLVMBasicBlockRef cases[4];
        for (int m = 0; m < nmodes; m++) cases[m] = gen_bb(g, "mode");
        LLVMValueRef sw = LLVMBuildSwitch(g->b, mode, cases[0], (unsigned)nmodes - 1);
        for (int m = 1; m < nmodes; m++) LLVMAddCase(sw, c32(g, m), cases[m]);
        for (int m = 0; m < nmodes; m++) {
            LLVMPositionBuilderAtEnd(g->b, cases[m]);
            if (isfull && (m >> 1) && g->spec->nt_store) { /* the last K block: C's final values */
                LLVMValueRef bits = LLVMBuildOr(g->b, LLVMBuildPtrToInt(g->b, cp, g->i64, ""),
                                                gen_mul(g, ldc, c64(g, 4)), "");
                LLVMValueRef al = LLVMBuildICmp(g->b, LLVMIntEQ,
                                                LLVMBuildAnd(g->b, bits, c64(g, (g->vl * 4 > 64 ? 64 : g->vl * 4) - 1), ""),
                                                c64(g, 0), "");
                LLVMBasicBlockRef nt = gen_bb(g, "nt"), plain = gen_bb(g, "plain");
                LLVMBuildCondBr(g->b, al, nt, plain);
                LLVMPositionBuilderAtEnd(g->b, nt);
                emit_tile_store(g, acc, 2, m & 1, 1, cp, ldc, mr, nr, bias, &at, done);
                LLVMPositionBuilderAtEnd(g->b, plain);
            }
            emit_tile_store(g, acc, isfull, m & 1, (m >> 1) & 1, cp, ldc, mr, nr, bias, &at, done);
        }
    }
    LLVMPositionBuilderAtEnd(g->b, done);
    LLVMBuildRetVoid(g->b);
    g->bld = NULL;
    return f;
}

/* ---- packing ------------------------------------------------------------------------------ */

/* the V x V transpose of rows v[0..V) (V = g->vl lanes each) in place: log2(V) stages of
 * two-input shuffles, stage d swapping the off-diagonal d x d blocks of every 2d x 2d one */
static void transpose_vl(Gen *g, LLVMValueRef *v) {
    int V = g->vl;
    LLVMValueRef lo[64], hi[64];
    for (int d = V / 2; d >= 1; d /= 2) {
        for (int j = 0; j < V; j++) {
            lo[j] = c32(g, (j & d) ? V + j - d : j);
            hi[j] = c32(g, (j & d) ? V + j : j + d);
        }
        LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)V), mhi = LLVMConstVector(hi, (unsigned)V);
        for (int i = 0; i < V; i++) {
            if (i & d) continue;
            LLVMValueRef a = v[i], b = v[i + d];
            v[i] = LLVMBuildShuffleVector(g->b, a, b, mlo, "");
            v[i + d] = LLVMBuildShuffleVector(g->b, a, b, mhi, "");
        }
    }
}

/* emit_pack's strided full panel where k is contiguous (cs == 1, a dense layer's weight
 * [N][K] read as B = Wᵀ, a filter [O][K] as A): for each V values of k, the panel's rows
 * in groups of V, each group V row loads transposed into V column stores (vs. one scalar
 * load and insert per element: the gather packed at 9.4 GB/s on Zen 4). Returns the first
 * k left to the caller's gather loop: kc rounded down to V where cs == 1, else 0. */
static LLVMValueRef pack_transposed_blocks(Gen *g, LLVMValueRef *rowp, int w, LLVMValueRef d,
                                           LLVMValueRef cs, LLVMValueRef kc) {
    int V = g->vl;
    if (V < 4 || V > 64 || w % V || g->spec->pack_gather) return c64(g, 0);
    LLVMValueRef unit = LLVMBuildICmp(g->b, LLVMIntEQ, cs, c64(g, 1), "");
    LLVMValueRef kv = LLVMBuildAnd(g->b, kc, c64(g, -(int64_t)V), "");
    LLVMValueRef kend = LLVMBuildSelect(g->b, unit, kv, c64(g, 0), "");
    LLVMTypeRef vt = LLVMVectorType(g->f32, (unsigned)V);
    GenLoop lb;
    loop_begin(g, &lb, c64(g, 0), kend, c64(g, V), "kblock");
    for (int r0 = 0; r0 < w; r0 += V) {
        LLVMValueRef v[64];
        for (int i = 0; i < V; i++) v[i] = gen_load(g, vt, gen_gep(g, rowp[r0 + i], lb.iv), 4);
        transpose_vl(g, v);
        for (int i = 0; i < V; i++) {
            LLVMValueRef at = gen_add(g, gen_mul(g, gen_add(g, lb.iv, c64(g, i)), c64(g, w)), c64(g, r0));
            gen_store(g, v[i], gen_gep(g, d, at), 4);
        }
    }
    loop_end(g, &lb);
    return kend;
}

/* void pack(ptr dst, ptr src, i64 rs, i64 cs, i64 rows, i64 kc): element (r, k) of the
 * source is src[r*rs + k*cs]; rows are grouped into W-row panels, panel p stored at
 * dst + p*W*kc as kc groups of W consecutive values, short panels padded with zeros. */
static LLVMValueRef emit_pack(Gen *g, const char *suffix, int w) {
    LLVMTypeRef ps[6] = {g->ptr, g->ptr, g->i64, g->i64, g->i64, g->i64};
    LLVMValueRef f = gen_function(g, suffix, g->vd, ps, 6, 1);
    if (g->spec->prec != LLVM_GEMM_F32) { /* rounded to bf16 pairs while packing */
        LlvmBf16Gen bg = gen_bf16(g);
        llvm_bf16_pack_body(&bg, f, w, bg.amx && !strcmp(suffix, ".pack_a"));
        return f;
    }
    LLVMValueRef dst = LLVMGetParam(f, 0), src = LLVMGetParam(f, 1), rs = LLVMGetParam(f, 2),
                 cs = LLVMGetParam(f, 3), rows = LLVMGetParam(f, 4), kc = LLVMGetParam(f, 5);
    LLVMTypeRef vw = LLVMVectorType(g->f32, (unsigned)w);
    LLVMValueRef W = c64(g, w);
    GenLoop lp;
    loop_begin(g, &lp, c64(g, 0), rows, W, "panel");
    LLVMValueRef wv = gen_min(g, W, gen_sub(g, rows, lp.iv));
    LLVMValueRef d = gen_gep(g, dst, gen_mul(g, lp.iv, kc));
    LLVMValueRef s = gen_gep(g, src, gen_mul(g, lp.iv, rs));
    LLVMBasicBlockRef fullbb = gen_bb(g, "fullpanel"), partbb = gen_bb(g, "partpanel"),
                      contbb = gen_bb(g, "contiguous"), stridebb = gen_bb(g, "strided"),
                      join = gen_bb(g, "join");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, wv, W, ""), fullbb, partbb);

    LLVMPositionBuilderAtEnd(g->b, fullbb);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, rs, c64(g, 1), ""), contbb, stridebb);

    /* rows adjacent in memory: one W-wide copy per k */
    LLVMPositionBuilderAtEnd(g->b, contbb);
    GenLoop lk;
    loop_begin(g, &lk, c64(g, 0), kc, c64(g, 1), "kc");
    LLVMValueRef x = gen_load(g, vw, gen_gep(g, s, gen_mul(g, lk.iv, cs)), 4);
    gen_store(g, x, gen_gep(g, d, gen_mul(g, lk.iv, W)), 4);
    loop_end(g, &lk);
    LLVMBuildBr(g->b, join);

    /* strided rows (typically contiguous along k): V x V blocks transposed in registers
     * where k is contiguous, then one value per row per k gathered for the rest */
    LLVMPositionBuilderAtEnd(g->b, stridebb);
    {
        LLVMValueRef rowp[GEMM_MAX_NRV * 64];
        for (int r = 0; r < w; r++) rowp[r] = gen_gep(g, s, gen_mul(g, c64(g, r), rs));
        LLVMValueRef k0 = pack_transposed_blocks(g, rowp, w, d, cs, kc);
        loop_begin(g, &lk, k0, kc, c64(g, 1), "kc");
        LLVMValueRef off = gen_mul(g, lk.iv, cs);
        LLVMValueRef v = LLVMGetPoison(vw);
        for (int r = 0; r < w; r++)
            v = LLVMBuildInsertElement(g->b, v, gen_load(g, g->f32, gen_gep(g, rowp[r], off), 4),
                                       c32(g, r), "");
        gen_store(g, v, gen_gep(g, d, gen_mul(g, lk.iv, W)), 4);
        loop_end(g, &lk);
        LLVMBuildBr(g->b, join);
    }

    /* short panel: rows past the end read the last valid row and are replaced by zero */
    LLVMPositionBuilderAtEnd(g->b, partbb);
    {
        LLVMValueRef rowp[GEMM_MAX_NRV * 64], valid[GEMM_MAX_NRV * 64];
        LLVMValueRef last = gen_sub(g, wv, c64(g, 1));
        for (int r = 0; r < w; r++) {
            LLVMValueRef rr = gen_min(g, c64(g, r), last);
            rowp[r] = gen_gep(g, s, gen_mul(g, rr, rs));
            valid[r] = LLVMBuildICmp(g->b, LLVMIntSLT, c64(g, r), wv, "");
        }
        loop_begin(g, &lk, c64(g, 0), kc, c64(g, 1), "kc");
        LLVMValueRef off = gen_mul(g, lk.iv, cs);
        LLVMValueRef v = LLVMGetPoison(vw);
        LLVMValueRef fz = LLVMConstNull(g->f32);
        for (int r = 0; r < w; r++) {
            LLVMValueRef e = gen_load(g, g->f32, gen_gep(g, rowp[r], off), 4);
            e = LLVMBuildSelect(g->b, valid[r], e, fz, "");
            v = LLVMBuildInsertElement(g->b, v, e, c32(g, r), "");
        }
        gen_store(g, v, gen_gep(g, d, gen_mul(g, lk.iv, W)), 4);
        loop_end(g, &lk);
        LLVMBuildBr(g->b, join);
    }
    LLVMPositionBuilderAtEnd(g->b, join);
    loop_end(g, &lp);
    LLVMBuildRetVoid(g->b);
    return f;
}

/* ---- implicit-GEMM convolution: B's panels gathered from the image ------------------------ */

/* v as a constant of type t (i32 or a vector of i32) */
static LLVMValueRef conv_const(Gen *g, LLVMTypeRef t, int64_t v) {
    LLVMValueRef c = LLVMConstInt(g->i32, (unsigned long long)v, 1);
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return c;
    LLVMValueRef lanes[64];
    for (int l = 0; l < g->vl; l++) lanes[l] = c;
    return LLVMConstVector(lanes, (unsigned)g->vl);
}

/* the spatial side of a column index s = (n·OH + oh)·OW + ow: oh·sh - ph, ow·sw - pw and
 * the image's offset n·xs (NULL for one image) */
static void conv_spatial(Gen *g, LLVMValueRef s, LLVMValueRef *hb, LLVMValueRef *wb,
                         LLVMValueRef *nb) {
    const LlvmGemmConv *cv = &g->spec->conv;
    LLVMTypeRef t = LLVMTypeOf(s);
    *nb = NULL;
    if (cv->images > 1) {
        LLVMValueRef n = LLVMBuildUDiv(g->b, s, conv_const(g, t, cv->OH * cv->OW), "");
        s = LLVMBuildURem(g->b, s, conv_const(g, t, cv->OH * cv->OW), "");
        *nb = gen_mul(g, n, conv_const(g, t, cv->xs));
    }
    LLVMValueRef oh = LLVMBuildUDiv(g->b, s, conv_const(g, t, cv->OW), "");
    LLVMValueRef ow = LLVMBuildURem(g->b, s, conv_const(g, t, cv->OW), "");
    *hb = gen_sub(g, gen_mul(g, oh, conv_const(g, t, cv->sh)), conv_const(g, t, cv->ph));
    *wb = gen_sub(g, gen_mul(g, ow, conv_const(g, t, cv->sw)), conv_const(g, t, cv->pw));
}

/* the filter side of a row index q = (c·KH + kh)·KW + kw: c·H·W, kh·dh and kw·dw */
static void conv_tap(Gen *g, LLVMValueRef q, LLVMValueRef *cb, LLVMValueRef *khd, LLVMValueRef *kwd) {
    const LlvmGemmConv *cv = &g->spec->conv;
    LLVMTypeRef t = LLVMTypeOf(q);
    LLVMValueRef c = LLVMBuildUDiv(g->b, q, conv_const(g, t, cv->KH * cv->KW), "");
    LLVMValueRef r = LLVMBuildURem(g->b, q, conv_const(g, t, cv->KH * cv->KW), "");
    LLVMValueRef kh = LLVMBuildUDiv(g->b, r, conv_const(g, t, cv->KW), "");
    LLVMValueRef kw = LLVMBuildURem(g->b, r, conv_const(g, t, cv->KW), "");
    *cb = gen_mul(g, c, conv_const(g, t, cv->H * cv->W));
    *khd = gen_mul(g, kh, conv_const(g, t, cv->dh));
    *kwd = gen_mul(g, kw, conv_const(g, t, cv->dw));
}

/* one vector of a panel row: the lanes' values of op(B), zero outside the image and past
 * the panel; ih, iw, cb vectors. With `first` (the first lane's offset in the image) the
 * lanes are at consecutive addresses: one masked load; otherwise a masked gather. */
static LLVMValueRef conv_vector(Gen *g, LLVMValueRef x, LLVMValueRef ok, LLVMValueRef ih,
                                LLVMValueRef iw, LLVMValueRef cb, LLVMValueRef first) {
    const LlvmGemmConv *cv = &g->spec->conv;
    LLVMValueRef m = LLVMBuildAnd(g->b, ok, LLVMBuildICmp(g->b, LLVMIntULT, ih,
                                                          conv_const(g, g->vi32, cv->H), ""), "");
    m = LLVMBuildAnd(g->b, m, LLVMBuildICmp(g->b, LLVMIntULT, iw, conv_const(g, g->vi32, cv->W), ""), "");
    if (first) return gen_masked_load(g, gen_gep(g, x, LLVMBuildSExt(g->b, first, g->i64, "")), m);
    LLVMValueRef off = gen_add(g, cb, gen_add(g, gen_mul(g, ih, conv_const(g, g->vi32, cv->W)), iw));
    LLVMTypeRef vptr = LLVMVectorType(g->ptr, (unsigned)g->vl);
    LLVMValueRef ps = LLVMBuildGEP2(g->b, g->f32, x, &off, 1, "");
    LLVMTypeRef over[2] = {g->vf, vptr};
    LLVMValueRef args[4] = {ps, c32(g, 4), m, LLVMConstNull(g->vf)};
    return gen_intrinsic(g, "llvm.masked.gather", over, 2, args, 4);
}

/* void pack_conv(ptr dst, ptr x, i64 j0, i64 k0, i64 cols, i64 kc): columns [j0, j0 + cols)
 * and rows [k0, k0 + kc) of op(B) gathered from the image x into w-column panels, laid out
 * as emit_pack's (w = NR; for LlvmGemmConv.rows, `.pack_conv_a` gathers rows of op(A) = colᵀ
 * into MR-row panels the same way, w = MR). `taps` puts the filter taps in the lanes (the
 * filter gradient's colᵀ), else the output positions. The lanes' side of the index is
 * computed once a panel, the other side once a row. Stride 1 with OW == W puts a forward
 * vector's lanes at consecutive addresses whatever output rows they span
 * (ow - pw + kw·dw + (oh - ph + kh·dh)·W = s + (kh·dh - ph)·W + kw·dw - pw). A panel width
 * that is not a multiple of the vector stores its last vector masked. */
static LLVMValueRef emit_pack_conv(Gen *g, const char *suffix, int w, int taps) {
    LLVMTypeRef ps[6] = {g->ptr, g->ptr, g->i64, g->i64, g->i64, g->i64};
    LLVMValueRef f = gen_function(g, suffix, g->vd, ps, 6, 1);
    LLVMValueRef dst = LLVMGetParam(f, 0), x = LLVMGetParam(f, 1), j0 = LLVMGetParam(f, 2),
                 k0 = LLVMGetParam(f, 3), cols = LLVMGetParam(f, 4), kc = LLVMGetParam(f, 5);
    const LlvmGemmConv *cv = &g->spec->conv;
    int nv = (w + g->vl - 1) / g->vl, tail = w - (nv - 1) * g->vl;
    int contig = !taps && cv->sh == 1 && cv->sw == 1 && cv->OW == cv->W && cv->images <= 1;
    GenLoop lp, lk;
    loop_begin(g, &lp, c64(g, 0), cols, c64(g, w), "panel");
    LLVMValueRef d = gen_gep(g, dst, gen_mul(g, lp.iv, kc));
    LLVMValueRef left = gen_splat(g, LLVMBuildTrunc(g->b, gen_sub(g, cols, lp.iv), g->i32, ""), g->vl);
    LLVMValueRef jp = LLVMBuildTrunc(g->b, gen_add(g, j0, lp.iv), g->i32, "");
    LLVMValueRef ok[GEMM_MAX_NRV], la[GEMM_MAX_NRV], lb[GEMM_MAX_NRV], lc[GEMM_MAX_NRV],
        ln[GEMM_MAX_NRV], smask = NULL;
    for (int v = 0; v < nv; v++) {
        LLVMValueRef lanes[64], in[64];
        for (int l = 0; l < g->vl; l++) lanes[l] = c32(g, v * g->vl + l);
        for (int l = 0; l < g->vl; l++) in[l] = LLVMConstInt(g->i1, l < tail, 0);
        LLVMValueRef off = LLVMConstVector(lanes, (unsigned)g->vl);
        ok[v] = LLVMBuildICmp(g->b, LLVMIntSLT, off, left, "");
        if (v == nv - 1 && tail < g->vl) smask = LLVMConstVector(in, (unsigned)g->vl);
        LLVMValueRef j = gen_add(g, gen_splat(g, jp, g->vl), off);
        if (taps) conv_tap(g, j, &la[v], &lb[v], &lc[v]);
        else conv_spatial(g, j, &la[v], &lb[v], &ln[v]);
    }
    loop_begin(g, &lk, c64(g, 0), kc, c64(g, 1), "kc");
    LLVMValueRef k = LLVMBuildTrunc(g->b, gen_add(g, k0, lk.iv), g->i32, "");
    LLVMValueRef dk = gen_gep(g, d, gen_mul(g, lk.iv, c64(g, w)));
    LLVMValueRef a, b, c = NULL, first = NULL, nk = NULL;
    if (taps) conv_spatial(g, k, &a, &b, &nk);
    else conv_tap(g, k, &a, &b, &c);
    if (contig) /* c·H·W + (kh·dh - ph)·W + kw·dw - pw, plus the lane's s */
        first = gen_add(g, a, gen_add(g, gen_mul(g, gen_sub(g, b, c32(g, (int32_t)cv->ph)),
                                                 c32(g, (int32_t)cv->W)),
                                      gen_sub(g, c, c32(g, (int32_t)cv->pw))));
    for (int v = 0; v < nv; v++) {
        LLVMValueRef val;
        if (taps)
            val = conv_vector(g, x, ok[v], gen_add(g, gen_splat(g, a, g->vl), lb[v]),
                              gen_add(g, gen_splat(g, b, g->vl), lc[v]),
                              nk ? gen_add(g, la[v], gen_splat(g, nk, g->vl)) : la[v], NULL);
        else
            val = conv_vector(g, x, ok[v], gen_add(g, la[v], gen_splat(g, b, g->vl)),
                              gen_add(g, lb[v], gen_splat(g, c, g->vl)),
                              ln[v] ? gen_add(g, ln[v], gen_splat(g, a, g->vl)) : gen_splat(g, a, g->vl),
                              first ? gen_add(g, first, gen_add(g, jp, c32(g, v * g->vl))) : NULL);
        LLVMValueRef p = gen_gep(g, dk, c64(g, (int64_t)v * g->vl));
        if (v == nv - 1 && smask) gen_masked_store(g, val, p, smask);
        else gen_store(g, val, p, 4);
    }
    loop_end(g, &lk);
    loop_end(g, &lp);
    LLVMBuildRetVoid(g->b);
    return f;
}

/* ---- blocked loops -------------------------------------------------------------------------- */

/* emit_region's values for the microkernel calls down one column of NR */
typedef struct RegionCol {
    LLVMValueRef kc, flags, C, ldc, bias, apan, kcp, ic, mc, nr, col;
} RegionCol;

/* the calls of ukr down the MC block at column rc->col, B at bp (with ldb: ukr_d's op(B)
 * in place, rows ldb apart) */
static void emit_region_col(Gen *g, LLVMValueRef ukr, LLVMValueRef bp, LLVMValueRef ldb,
                            const RegionCol *rc) {
    const LlvmGemmSpec *sp = g->spec;
    GenLoop lir;
    loop_begin(g, &lir, c64(g, 0), rc->mc, c64(g, g->mr), "ir");
    LLVMValueRef mr = gen_min(g, c64(g, g->mr), gen_sub(g, rc->mc, lir.iv));
    LLVMValueRef row = gen_add(g, rc->ic, lir.iv), col = rc->col;
    LLVMValueRef ap = gen_gep(g, rc->apan, gen_mul(g, lir.iv, rc->kcp));
    LLVMValueRef cp = gen_gep(g, rc->C, gen_add(g, gen_mul(g, row, rc->ldc), col));
    LLVMValueRef ectx = rc->bias, bias = rc->bias;
    if (sp->epi) bias = gen_load(g, g->ptr, ectx, 8); /* its first word (LlvmGemmEpi) */
    LLVMValueRef bptr = sp->bias == LLVM_GEMM_BIAS_COL      ? gen_gep(g, bias, col)
                        : sp->bias == LLVM_GEMM_BIAS_ROW    ? gen_gep(g, bias, row)
                        : sp->bias == LLVM_GEMM_AFFINE_ROW ? gen_gep(g, bias, gen_mul(g, row, c64(g, 2)))
                                                            : bias;
    LLVMValueRef args[13] = {rc->kc, ap, bp, cp, rc->ldc, mr, rc->nr, rc->flags, bptr, ectx, row, col, ldb};
    gen_call(g, ukr, args, ldb ? 13 : sp->epi ? 12 : 9);
    loop_end(g, &lir);
}

/* a column of NR with B read in place (spec.direct_b) at src, rows ldb apart: a full one by
 * ukrs[1] (ukr_d), the partial one packed into bbuf by pack_b for ukrs[0] */
static void emit_region_direct(Gen *g, LLVMValueRef *ukrs, LLVMValueRef pack_b, LLVMValueRef src,
                               LLVMValueRef ldb, LLVMValueRef bbuf, const RegionCol *rc) {
    LLVMBasicBlockRef dbb = gen_bb(g, "direct"), pbb = gen_bb(g, "packpart"), jn = gen_bb(g, "jrnext");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, rc->nr, c64(g, g->nr), ""), dbb, pbb);
    LLVMPositionBuilderAtEnd(g->b, dbb);
    emit_region_col(g, ukrs[1], src, ldb, rc);
    LLVMBuildBr(g->b, jn);
    LLVMPositionBuilderAtEnd(g->b, pbb);
    LLVMValueRef args[6] = {bbuf, src, c64(g, 1), ldb, rc->nr, rc->kc};
    gen_call(g, pack_b, args, 6);
    emit_region_col(g, ukrs[0], bbuf, NULL, rc);
    LLVMBuildBr(g->b, jn);
    LLVMPositionBuilderAtEnd(g->b, jn);
}

/* void region(i64 K, ptr A, i64 lda, ptr B, i64 ldb, ptr C, i64 ldc, ptr bias,
 *             i64 m0, i64 m1, i64 n0, i64 n1, ptr Abuf, ptr Bbuf)
 * computes C[m0:m1, n0:n1] completely. */
static LLVMValueRef emit_region(Gen *g, LLVMValueRef ukr, LLVMValueRef ukr_d, LLVMValueRef pack_a,
                                LLVMValueRef pack_b) {
    LLVMTypeRef ps[14] = {g->i64, g->ptr, g->i64, g->ptr, g->i64, g->ptr, g->i64,
                          g->ptr, g->i64, g->i64, g->i64, g->i64, g->ptr, g->ptr};
    LLVMValueRef f = gen_function(g, ".region", g->vd, ps, 14, 1);
    LLVMValueRef K = LLVMGetParam(f, 0), A = LLVMGetParam(f, 1), lda = LLVMGetParam(f, 2),
                 B = LLVMGetParam(f, 3), ldb = LLVMGetParam(f, 4), C = LLVMGetParam(f, 5),
                 ldc = LLVMGetParam(f, 6), bias = LLVMGetParam(f, 7), m0 = LLVMGetParam(f, 8),
                 m1 = LLVMGetParam(f, 9), n0 = LLVMGetParam(f, 10), n1 = LLVMGetParam(f, 11),
                 abuf = LLVMGetParam(f, 12), bbuf = LLVMGetParam(f, 13);
    const LlvmGemmSpec *sp = g->spec;
    LLVMValueRef one = c64(g, 1);
    LLVMValueRef rs_a = sp->trans_a ? one : lda, cs_a = sp->trans_a ? lda : one;
    LLVMValueRef rs_b = sp->trans_b ? ldb : one, cs_b = sp->trans_b ? one : ldb;
    LLVMValueRef KC = c64(g, g->kc), MC = c64(g, g->mc), NC = c64(g, g->nc);
    LLVMValueRef NR = c64(g, g->nr);
    LLVMValueRef nkb = gen_max(g, gen_ceildiv(g, K, g->kc), one);

    GenLoop ljc, lkb, lic, ljr;
    loop_begin(g, &ljc, n0, n1, NC, "jc");
    LLVMValueRef nc = gen_min(g, NC, gen_sub(g, n1, ljc.iv));
    loop_begin(g, &lkb, c64(g, 0), nkb, one, "kb");
    LLVMValueRef pc = gen_mul(g, lkb.iv, KC);
    LLVMValueRef kc = gen_min(g, KC, gen_sub(g, K, pc));
    LlvmBf16Gen bg = gen_bf16(g); /* bf16 panels: a row of kc values takes ceil(kc/2) words */
    LLVMValueRef kcp = g->spec->prec != LLVM_GEMM_F32 ? llvm_bf16_panel_stride(&bg, kc) : kc;
    LLVMValueRef bpan = bbuf; /* this block's B panels */
    if (sp->direct_b) { /* read in place by ukr_d (emit_region_col) */
    } else if (sp->packed == LLVM_GEMM_PACKED_B) { /* packed once: ldb is the padded row count */
        bpan = gen_gep(g, B, gen_add(g, gen_mul(g, pc, ldb), gen_mul(g, ljc.iv, kc)));
    } else if (sp->conv.on && !sp->conv.rows) { /* f32 only: llvm_gemm_emit refuses bf16 */
        LLVMValueRef args[6] = {bbuf, B, ljc.iv, pc, nc, kc};
        gen_call(g, pack_b, args, 6);
    } else {
        LLVMValueRef src = gen_gep(g, B, gen_add(g, gen_mul(g, ljc.iv, rs_b), gen_mul(g, pc, cs_b)));
        LLVMValueRef args[6] = {bbuf, src, rs_b, cs_b, nc, kc};
        gen_call(g, pack_b, args, 6);
    }
    LLVMValueRef first = LLVMBuildICmp(g->b, LLVMIntEQ, lkb.iv, c64(g, 0), "");
    LLVMValueRef lastkb = LLVMBuildICmp(g->b, LLVMIntEQ, lkb.iv, gen_sub(g, nkb, one), "");
    LLVMValueRef flag_acc = sp->accumulate ? c32(g, 1)
                                           : LLVMBuildSelect(g->b, first, c32(g, 0), c32(g, 1), "");
    LLVMValueRef flags =
        LLVMBuildOr(g->b, flag_acc, LLVMBuildSelect(g->b, lastkb, c32(g, 2), c32(g, 0), ""), "");
    loop_begin(g, &lic, m0, m1, MC, "ic");
    LLVMValueRef mc = gen_min(g, MC, gen_sub(g, m1, lic.iv));
    LLVMValueRef apan = abuf; /* this block's A panels */
    if (sp->packed == LLVM_GEMM_PACKED_A) {
        apan = gen_gep(g, A, gen_add(g, gen_mul(g, pc, lda), gen_mul(g, lic.iv, kc)));
    } else if (sp->conv.on && sp->conv.rows) { /* op(A) = colᵀ gathered from the image A */
        LLVMValueRef args[6] = {abuf, A, lic.iv, pc, mc, kc};
        gen_call(g, pack_a, args, 6);
    } else {
        LLVMValueRef src = gen_gep(g, A, gen_add(g, gen_mul(g, lic.iv, rs_a), gen_mul(g, pc, cs_a)));
        LLVMValueRef args[6] = {abuf, src, rs_a, cs_a, mc, kc};
        gen_call(g, pack_a, args, 6);
    }
    loop_begin(g, &ljr, c64(g, 0), nc, NR, "jr");
    RegionCol rc = {.kc = kc, .flags = flags, .C = C, .ldc = ldc, .bias = bias, .apan = apan,
                    .kcp = kcp, .ic = lic.iv, .mc = mc, .nr = gen_min(g, NR, gen_sub(g, nc, ljr.iv)),
                    .col = gen_add(g, ljc.iv, ljr.iv)};
    if (sp->direct_b) {
        LLVMValueRef src = gen_gep(g, B, gen_add(g, rc.col, gen_mul(g, pc, ldb)));
        LLVMValueRef ukrs[2] = {ukr, ukr_d};
        emit_region_direct(g, ukrs, pack_b, src, ldb, bbuf, &rc);
    } else {
        emit_region_col(g, ukr, gen_gep(g, bpan, gen_mul(g, ljr.iv, kcp)), NULL, &rc);
    }
    loop_end(g, &ljr);
    loop_end(g, &lic);
    loop_end(g, &lkb);
    loop_end(g, &ljc);
    LLVMBuildRetVoid(g->b);
    return f;
}

/* void prepack(ptr dst, ptr src, i64 ld, i64 rows, i64 K, i64 rpad): the packed operand's
 * KC blocks one after the other, rpad·kc floats each (llvm_gemm.h) */
static void emit_prepack(Gen *g, LLVMValueRef pack, int a_side) {
    LLVMTypeRef ps[6] = {g->ptr, g->ptr, g->i64, g->i64, g->i64, g->i64};
    LLVMValueRef f = gen_function(g, ".prepack", g->vd, ps, 6, 1);
    LLVMValueRef dst = LLVMGetParam(f, 0), src = LLVMGetParam(f, 1), ld = LLVMGetParam(f, 2),
                 rows = LLVMGetParam(f, 3), K = LLVMGetParam(f, 4), rpad = LLVMGetParam(f, 5);
    int trans = a_side ? g->spec->trans_a : !g->spec->trans_b; /* rows along memory */
    LLVMValueRef one = c64(g, 1), rs = trans ? one : ld, cs = trans ? ld : one;
    GenLoop lk;
    loop_begin(g, &lk, c64(g, 0), K, c64(g, g->kc), "pc");
    LLVMValueRef kc = gen_min(g, c64(g, g->kc), gen_sub(g, K, lk.iv));
    LLVMValueRef args[6] = {gen_gep(g, dst, gen_mul(g, lk.iv, rpad)),
                            gen_gep(g, src, gen_mul(g, lk.iv, cs)), rs, cs, rows, kc};
    gen_call(g, pack, args, 6);
    loop_end(g, &lk);
    LLVMBuildRetVoid(g->b);
}

LLVMValueRef llvm_gemm_prepack_fn(LLVMModuleRef mod, const char *name) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.prepack", name);
    return LLVMGetNamedFunction(mod, nm);
}

LLVMValueRef llvm_gemm_region_fn(LLVMModuleRef mod, const char *name) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.region", name);
    return LLVMGetNamedFunction(mod, nm);
}

/* Task context shared by the parallel tasks, built on the caller's stack. */
enum { CTX_K, CTX_A, CTX_LDA, CTX_B, CTX_LDB, CTX_C, CTX_LDC, CTX_BIAS, CTX_M, CTX_N,
       CTX_NTASKS, CTX_SPLITN, CTX_POOL, CTX_NFIELDS };

static LLVMTypeRef ctx_type(Gen *g) {
    LLVMTypeRef f[CTX_NFIELDS];
    for (int i = 0; i < CTX_NFIELDS; i++) f[i] = g->i64;
    f[CTX_A] = f[CTX_B] = f[CTX_C] = f[CTX_BIAS] = f[CTX_POOL] = g->ptr;
    return LLVMStructTypeInContext(g->ctx, f, CTX_NFIELDS, 0);
}

static LLVMValueRef ctx_get(Gen *g, LLVMTypeRef st, LLVMValueRef ctx, int field) {
    LLVMValueRef p = LLVMBuildStructGEP2(g->b, st, ctx, (unsigned)field, "");
    return LLVMBuildLoad2(g->b, LLVMStructGetTypeAtIndex(st, (unsigned)field), p, "");
}

int64_t llvm_gemm_pack_bytes(const LlvmGemmBlocking *b, int64_t M, int64_t N, int64_t K) {
    /* the bound of emit_task's sizes: a task's rows and columns are at most M and N */
    int64_t kcap = K < b->kc ? K : b->kc, mrows = M < b->mc ? M : b->mc;
    int64_t ncols = N < b->nc ? N : b->nc;
    if (kcap < 1) kcap = 1;
    int64_t asz = gemm_round_up(gemm_round_up(mrows, b->mr) * kcap, 16);
    return (asz + gemm_round_up(ncols, b->nr) * kcap) * 4;
}

/* void task(ptr ctx, i64 t): computes slice t of ctx->ntasks, with its own pack buffers. */
static LLVMValueRef emit_task(Gen *g, LLVMValueRef region) {
    LLVMTypeRef ps[2] = {g->ptr, g->i64};
    LLVMValueRef f = gen_function(g, ".task", g->vd, ps, 2, 1);
    LLVMValueRef ctx = LLVMGetParam(f, 0), t = LLVMGetParam(f, 1);
    LLVMTypeRef st = ctx_type(g);
    LLVMValueRef M = ctx_get(g, st, ctx, CTX_M), N = ctx_get(g, st, ctx, CTX_N),
                 K = ctx_get(g, st, ctx, CTX_K), nt = ctx_get(g, st, ctx, CTX_NTASKS),
                 splitn = LLVMBuildICmp(g->b, LLVMIntNE, ctx_get(g, st, ctx, CTX_SPLITN), c64(g, 0), "");
    LLVMValueRef unit = LLVMBuildSelect(g->b, splitn, c64(g, g->nr), c64(g, g->mr), "");
    LLVMValueRef ext = LLVMBuildSelect(g->b, splitn, N, M, "");
    LLVMValueRef units = LLVMBuildSDiv(g->b, gen_sub(g, gen_add(g, ext, unit), c64(g, 1)), unit, "");
    LLVMValueRef u0 = LLVMBuildSDiv(g->b, gen_mul(g, t, units), nt, "");
    LLVMValueRef u1 = LLVMBuildSDiv(g->b, gen_mul(g, gen_add(g, t, c64(g, 1)), units), nt, "");
    LLVMValueRef lo = gen_mul(g, u0, unit), hi = gen_min(g, gen_mul(g, u1, unit), ext);
    LLVMValueRef m0 = LLVMBuildSelect(g->b, splitn, c64(g, 0), lo, "");
    LLVMValueRef m1 = LLVMBuildSelect(g->b, splitn, M, hi, "");
    LLVMValueRef n0 = LLVMBuildSelect(g->b, splitn, lo, c64(g, 0), "");
    LLVMValueRef n1 = LLVMBuildSelect(g->b, splitn, hi, N, "");
    LLVMBasicBlockRef work = gen_bb(g, "work"), ret = gen_bb(g, "ret"), oom = gen_bb(g, "oom");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, lo, hi, ""), work, ret);
    LLVMPositionBuilderAtEnd(g->b, work);
    /* (AMX pads a bf16 panel row to 16 pairs: 32 values at least) */
    LLVMValueRef kcap = gen_max(g, gen_min(g, K, c64(g, g->kc)), c64(g, gen_bf16(g).amx ? 32 : 1));
    LLVMValueRef mrows = gen_min(g, gen_sub(g, m1, m0), c64(g, g->mc));
    LLVMValueRef ncols = gen_min(g, gen_sub(g, n1, n0), c64(g, g->nc));
    LLVMValueRef asz = gen_mul(g, gen_mul(g, gen_ceildiv(g, mrows, g->mr), c64(g, g->mr)), kcap);
    asz = gen_mul(g, gen_ceildiv(g, asz, 16), c64(g, 16)); /* keep Bbuf 64-byte aligned */
    LLVMValueRef bsz = gen_mul(g, gen_mul(g, gen_ceildiv(g, ncols, g->nr), c64(g, g->nr)), kcap);
    LLVMValueRef bytes = gen_mul(g, gen_add(g, asz, bsz), c64(g, 4));
    /* the pool's kept per-thread buffer: no fresh pages to fault in on every call */
    LLVMTypeRef sc_ps[2] = {g->ptr, g->i64};
    LLVMValueRef scf = gen_declare(g, "rt_pool_scratch", g->ptr, sc_ps, 2);
    LLVMTypeRef rel_ps[2] = {g->ptr, g->ptr};
    LLVMValueRef relf = gen_declare(g, "rt_pool_scratch_release", g->vd, rel_ps, 2);
    LLVMValueRef pool = ctx_get(g, st, ctx, CTX_POOL);
    LLVMValueRef scargs[2] = {pool, bytes};
    LLVMValueRef buf = gen_call(g, scf, scargs, 2);
    LLVMBasicBlockRef go = gen_bb(g, "go");
    LLVMBuildCondBr(g->b, LLVMBuildIsNull(g->b, buf, ""), oom, go);
    LLVMPositionBuilderAtEnd(g->b, go);
    LLVMValueRef args[14] = {K, ctx_get(g, st, ctx, CTX_A), ctx_get(g, st, ctx, CTX_LDA),
                             ctx_get(g, st, ctx, CTX_B), ctx_get(g, st, ctx, CTX_LDB),
                             ctx_get(g, st, ctx, CTX_C), ctx_get(g, st, ctx, CTX_LDC),
                             ctx_get(g, st, ctx, CTX_BIAS), m0, m1, n0, n1, buf,
                             gen_gep(g, buf, asz)};
    gen_call(g, region, args, 14);
    LLVMValueRef relargs[2] = {pool, buf};
    gen_call(g, relf, relargs, 2);
    LLVMBuildBr(g->b, ret);
    /* Out of memory for a few MiB of packing buffers: there is no error channel in the
     * kernel ABI, so stop rather than return a wrong result. */
    LLVMPositionBuilderAtEnd(g->b, oom);
    gen_intrinsic(g, "llvm.trap", NULL, 0, NULL, 0);
    LLVMBuildUnreachable(g->b);
    LLVMPositionBuilderAtEnd(g->b, ret);
    LLVMBuildRetVoid(g->b);
    return f;
}

static LLVMValueRef emit_entry(Gen *g, LLVMValueRef task) {
    LLVMTypeRef ps[11] = {g->i64, g->i64, g->i64, g->ptr, g->i64, g->ptr,
                          g->i64, g->ptr, g->i64, g->ptr, g->ptr};
    LLVMValueRef f = gen_function(g, "", g->vd, ps, 11, 0);
    LLVMValueRef M = LLVMGetParam(f, 0), N = LLVMGetParam(f, 1), K = LLVMGetParam(f, 2),
                 pool = LLVMGetParam(f, 10);
    LLVMTypeRef st = ctx_type(g);
    LLVMValueRef ctx = LLVMBuildAlloca(g->b, st, "ctx");
    LLVMBasicBlockRef body = gen_bb(g, "body"), ret = gen_bb(g, "ret");
    LLVMValueRef empty = LLVMBuildOr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, M, c64(g, 0), ""),
                                     LLVMBuildICmp(g->b, LLVMIntSLE, N, c64(g, 0), ""), "");
    LLVMBuildCondBr(g->b, empty, ret, body);
    LLVMPositionBuilderAtEnd(g->b, body);

    LLVMTypeRef ps_size[1] = {g->ptr};
    LLVMValueRef sizef = gen_declare(g, "rt_pool_size", g->i32, ps_size, 1);
    LLVMTypeRef ps_pf[4] = {g->ptr, g->i64, g->ptr, g->ptr};
    LLVMValueRef pforf = gen_declare(g, "rt_parallel_for", g->vd, ps_pf, 4);
    LlvmBf16Gen bg = gen_bf16(g);
    if (bg.amx) llvm_bf16_amx_permit(&bg);
    LLVMValueRef nthreads = LLVMBuildSExt(g->b, gen_call(g, sizef, &pool, 1), g->i64, "");
    LLVMValueRef um = gen_ceildiv(g, M, g->mr), un = gen_ceildiv(g, N, g->nr);
    LLVMValueRef splitn = LLVMBuildICmp(g->b, LLVMIntSGE, un, um, "");
    LLVMValueRef units = LLVMBuildSelect(g->b, splitn, un, um, "");
    LLVMValueRef work = gen_mul(g, gen_mul(g, M, N), gen_max(g, K, c64(g, 1)));
    int64_t minflops = g->spec->parallel_min_flops > 0 ? g->spec->parallel_min_flops : (1 << 21);
    LLVMValueRef nt = gen_min(g, nthreads, units);
    nt = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, work, c64(g, minflops), ""),
                         c64(g, 1), nt, "");
    LLVMValueRef vals[CTX_NFIELDS];
    vals[CTX_K] = K;
    vals[CTX_A] = LLVMGetParam(f, 3);
    vals[CTX_LDA] = LLVMGetParam(f, 4);
    vals[CTX_B] = LLVMGetParam(f, 5);
    vals[CTX_LDB] = LLVMGetParam(f, 6);
    vals[CTX_C] = LLVMGetParam(f, 7);
    vals[CTX_LDC] = LLVMGetParam(f, 8);
    vals[CTX_BIAS] = LLVMGetParam(f, 9);
    vals[CTX_M] = M;
    vals[CTX_N] = N;
    vals[CTX_NTASKS] = nt;
    vals[CTX_SPLITN] = LLVMBuildZExt(g->b, splitn, g->i64, "");
    vals[CTX_POOL] = pool;
    for (int i = 0; i < CTX_NFIELDS; i++)
        LLVMBuildStore(g->b, vals[i], LLVMBuildStructGEP2(g->b, st, ctx, (unsigned)i, ""));
    LLVMBasicBlockRef serial = gen_bb(g, "serial"), par = gen_bb(g, "parallel");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, nt, c64(g, 1), ""), serial, par);
    LLVMPositionBuilderAtEnd(g->b, serial);
    LLVMValueRef targs[2] = {ctx, c64(g, 0)};
    gen_call(g, task, targs, 2);
    LLVMBuildBr(g->b, ret);
    LLVMPositionBuilderAtEnd(g->b, par);
    LLVMValueRef pargs[4] = {pool, nt, task, ctx};
    gen_call(g, pforf, pargs, 4);
    LLVMBuildBr(g->b, ret);
    LLVMPositionBuilderAtEnd(g->b, ret);
    LLVMBuildRetVoid(g->b);
    return f;
}

LLVMValueRef llvm_gemm_emit(LLVMModuleRef mod, const LlvmGemmSpec *spec,
                            const LlvmTargetInfo *target, const char *name,
                            LlvmGemmBlocking *blk_out, char *err, size_t errlen) {
    if (!name || !*name) name = "nnc_gemm";
    if (LLVMGetNamedFunction(mod, name)) {
        gemm_seterr(err, errlen, "function %s already exists in the module", name);
        return NULL;
    }
    LlvmGemmPacked gathered = !spec->conv.on ? LLVM_GEMM_PACKED_NONE
                              : spec->conv.rows ? LLVM_GEMM_PACKED_A : LLVM_GEMM_PACKED_B;
    if (spec->packed && (spec->prec != LLVM_GEMM_F32 || spec->packed == gathered)) {
        gemm_seterr(err, errlen, "an operand packed once is f32 and a matrix");
        return NULL;
    }
    if (spec->conv.on && spec->prec != LLVM_GEMM_F32) { /* the gathering pack writes f32 panels */
        gemm_seterr(err, errlen, "an implicit-GEMM convolution takes f32 inputs (bf16 builds unfold)");
        return NULL;
    }
    if (spec->direct_b && (spec->prec != LLVM_GEMM_F32 || spec->trans_b || spec->conv.on ||
                           spec->packed == LLVM_GEMM_PACKED_B)) {
        gemm_seterr(err, errlen, "a B read in place is an f32 matrix, not transposed, not packed");
        return NULL;
    }
    if (spec->conv.on && spec->conv.rows && spec->trans_a) {
        gemm_seterr(err, errlen, "a convolution gathered into A is a forward one (trans_a = 0)");
        return NULL;
    }
    Gen g;
    memset(&g, 0, sizeof g);
    LlvmGemmBlocking blk;
    llvm_gemm_blocking(spec, target->vec_floats, &blk);
    if (blk_out) *blk_out = blk;
    g.ctx = LLVMGetModuleContext(mod);
    g.mod = mod;
    g.spec = spec;
    g.ti = target;
    snprintf(g.name, sizeof g.name, "%s", name);
    g.vl = target->vec_floats > 0 ? target->vec_floats : 4;
    g.mr = (int)blk.mr;
    g.nr = (int)blk.nr;
    g.nrv = g.nr / g.vl;
    g.kc = blk.kc;
    g.mc = blk.mc;
    g.nc = blk.nc;
    g.i1 = LLVMInt1TypeInContext(g.ctx);
    g.i32 = LLVMInt32TypeInContext(g.ctx);
    g.i64 = LLVMInt64TypeInContext(g.ctx);
    g.f32 = LLVMFloatTypeInContext(g.ctx);
    g.ptr = LLVMPointerTypeInContext(g.ctx, 0);
    g.vd = LLVMVoidTypeInContext(g.ctx);
    g.vf = LLVMVectorType(g.f32, (unsigned)g.vl);
    g.vmask = LLVMVectorType(g.i1, (unsigned)g.vl);
    g.vi32 = LLVMVectorType(g.i32, (unsigned)g.vl);
    g.b = LLVMCreateBuilderInContext(g.ctx);
    LLVMValueRef ukr = emit_ukr(&g, 0), ukr_d = spec->direct_b ? emit_ukr(&g, 1) : NULL;
    int rows = spec->conv.on && spec->conv.rows, cols = spec->conv.on && !rows;
    LLVMValueRef pa = rows ? emit_pack_conv(&g, ".pack_conv_a", g.mr, 0) : emit_pack(&g, ".pack_a", g.mr);
    LLVMValueRef pb = cols ? emit_pack_conv(&g, ".pack_conv", g.nr, spec->trans_b)
                           : emit_pack(&g, ".pack_b", g.nr);
    LLVMValueRef region = emit_region(&g, ukr, ukr_d, pa, pb);
    if (spec->packed) emit_prepack(&g, spec->packed == LLVM_GEMM_PACKED_A ? pa : pb,
                                   spec->packed == LLVM_GEMM_PACKED_A);
    LLVMValueRef task = emit_task(&g, region);
    LLVMValueRef entry = emit_entry(&g, task);
    LLVMDisposeBuilder(g.b);
    return entry;
}

/* ---- JIT ---------------------------------------------------------------------------------- */

LlvmGemmKernel *llvm_gemm_compile(const LlvmGemmSpec *spec, char *err, size_t errlen) {
    LlvmGemmKernel *k = calloc(1, sizeof *k);
    if (!k) {
        gemm_seterr(err, errlen, "out of memory");
        return NULL;
    }
    k->jit = llvm_jit_create(&spec->target, err, errlen);
    if (!k->jit) {
        free(k);
        return NULL;
    }
    if (llvm_jit_define(k->jit, "rt_pool_size", (void *)rt_pool_size, err, errlen) != 0 ||
        llvm_jit_define(k->jit, "rt_parallel_for", (void *)rt_parallel_for, err, errlen) != 0 ||
        llvm_jit_define(k->jit, "rt_pool_scratch", (void *)rt_pool_scratch, err, errlen) != 0 ||
        llvm_jit_define(k->jit, "rt_pool_scratch_release", (void *)rt_pool_scratch_release, err,
                        errlen) != 0) {
        llvm_gemm_free(k);
        return NULL;
    }
    const LlvmTargetInfo *ti = llvm_jit_target(k->jit);
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("nnc_gemm", llvm_jit_context(k->jit));
    if (!llvm_gemm_emit(mod, spec, ti, "nnc_gemm", &k->blk, err, errlen)) {
        LLVMDisposeModule(mod);
        llvm_gemm_free(k);
        return NULL;
    }
    k->vec_floats = ti->vec_floats;
    if (llvm_jit_add_module(k->jit, mod, err, errlen) != 0) {
        llvm_gemm_free(k);
        return NULL;
    }
    k->fn = (LlvmGemmFn)(uintptr_t)llvm_jit_lookup(k->jit, "nnc_gemm", err, errlen);
    if (!k->fn) {
        llvm_gemm_free(k);
        return NULL;
    }
    return k;
}

void llvm_gemm_free(LlvmGemmKernel *k) {
    if (!k) return;
    llvm_jit_free(k->jit);
    free(k);
}
