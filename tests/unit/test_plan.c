/* test_plan.c — the backend-neutral kernel plan (codegen/plan/), without a code generator:
 * a target that lacks an op or a dtype is refused with a message naming it; every needed
 * node of the example models' forward and training graphs is computed by exactly one kernel
 * that runs after its operands' kernels; arena values alive together (and scratch) never
 * share a byte; the conv strategy decides the scratch; tiles come from the tiles pass for the
 * target's hardware and are absent without one; cg_model_memory equals the plan's sizes; the
 * estimate's packed-GEMM terms (cg_cpu_gemm) against hand-computed values on a fixed target. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../codegen/plan/plan.h"
#include "../../codegen/plan/plan_cost.h"
#include "../../frontend/frontend.h"
#include "../../passes/passes.h"

static void full_target(CgTarget *t, const HwTarget *hw) {
  memset(t, 0, sizeof *t);
  t->name = "test";
  for (int op = 0; op < OP_COUNT; op++) t->native[op] = true;
  t->dtypes = 1u << DT_F32 | 1u << DT_I32;
  t->conv = CG_CONV_IM2COL;
  t->vector_width = 8;
  t->hw = hw;
}

static IrModule *compile(const char *text, IrGraph **g) {
  Diag *d = diag_new(stderr);
  IrModule *m = fe_compile_string("t.nn", text, strlen(text), NULL, d);
  diag_free(d);
  ck_assert_ptr_nonnull(m);
  *g = m->graphs[0];
  return m;
}

/* plans fwd for t; returns cg_model_plan's result, the diagnostics in msg */
static int plan_msg(const IrGraph *fwd, const CgTarget *t, char *msg, size_t n) {
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  Diag *d = diag_new(f);
  CgModelPlan P;
  int rc = cg_model_plan(&P, fwd, NULL, t, NULL, NULL, d);
  cg_model_plan_free(&P);
  diag_free(d);
  rewind(f);
  size_t k = fread(msg, 1, n - 1, f);
  msg[k] = 0;
  fclose(f);
  return rc;
}

static const char *CLASSIFIER = "model m {\n  input x: f32[4, 8]\n  input label: i32[4]\n"
                                "  p = softmax(dense(x, 3))\n  loss = cross_entropy(p, label)\n"
                                "  output p\n  output loss\n}\n";

START_TEST(t_target_lacks_op) {
  IrGraph *g;
  IrModule *m = compile(CLASSIFIER, &g);
  CgTarget t;
  full_target(&t, NULL);
  char msg[1024];
  ck_assert_int_eq(plan_msg(g, &t, msg, sizeof msg), 0);
  t.native[OP_SOFTMAX] = false;
  ck_assert_int_eq(plan_msg(g, &t, msg, sizeof msg), -1);
  ck_assert_msg(strstr(msg, "the test backend has no lowering for op 'softmax'"), "%s", msg);
  ir_module_free(m);
}
END_TEST

START_TEST(t_target_lacks_dtype) {
  IrGraph *g;
  IrModule *m = compile(CLASSIFIER, &g);
  CgTarget t;
  full_target(&t, NULL);
  t.dtypes = 1u << DT_F32;
  char msg[1024];
  ck_assert_int_eq(plan_msg(g, &t, msg, sizeof msg), -1);
  ck_assert_msg(strstr(msg, "the test backend computes in f32; input of dtype i32"), "%s", msg);
  ir_module_free(m);
}
END_TEST

/* kernels cover the needed nodes once, in an order that respects every operand */
static void check_schedule(const CgPlan *p) {
  const IrGraph *g = p->g;
  int *seen = calloc((size_t)g->nnodes, sizeof(int));
  for (int ki = 0; ki < p->nk; ki++)
    for (int m = 0; m < p->k[ki].nmembers; m++) seen[p->k[ki].members[m]]++;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    bool leaf = n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_CONST;
    if (!p->v[i].needed || leaf || p->v[i].root != i) {
      ck_assert_int_le(seen[i], 1); /* a constant may be filled by a kernel of its own */
      continue;
    }
    ck_assert_msg(seen[i] == 1, "%s: %%%d is in %d kernels", g->name, i, seen[i]);
    for (int j = 0; j < n->nin; j++) {
      int r = p->v[n->in[j]].root;
      ck_assert_msg(p->kof[r] <= p->kof[i], "%s: %%%d runs before its operand %%%d", g->name, i, r);
    }
  }
  free(seen);
}

/* arena bytes: [def, last] in kernel order per stored root, [k, k] per scratch */
typedef struct Span {
  int64_t off, size;
  int def, last;
} Span;

static void check_arena(const CgPlan *p) {
  const IrGraph *g = p->g;
  Span *s = calloc((size_t)g->nnodes + (size_t)p->nk + 1, sizeof *s);
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const CgVal *v = &p->v[i];
    if (v->root != i || v->region != CG_REGION_ARENA || !v->stored) continue;
    Span x = {v->offset, v->nbytes, p->kof[i], p->kof[i]};
    for (int c = 0; c < g->nnodes; c++)
      for (int j = 0; j < g->nodes[c].nin; j++)
        if (p->v[c].needed && p->v[g->nodes[c].in[j]].root == i && p->kof[c] > x.last) x.last = p->kof[c];
    for (int ki = 0; ki < p->nk; ki++)
      if (p->k[ki].kind == CGK_COPY && p->v[p->k[ki].copy_src].root == i && ki > x.last) x.last = ki;
    s[n++] = x;
  }
  for (int ki = 0; ki < p->nk; ki++)
    if (p->k[ki].scratch_bytes) s[n++] = (Span){p->k[ki].scratch_offset, p->k[ki].scratch_bytes, ki, ki};
  for (int a = 0; a < n; a++) {
    ck_assert_int_le(s[a].off + s[a].size, p->arena_bytes);
    for (int b = 0; b < a; b++) {
      bool alive = s[a].def <= s[b].last && s[b].def <= s[a].last;
      bool overlap = s[a].off < s[b].off + s[b].size && s[b].off < s[a].off + s[a].size;
      ck_assert_msg(!(alive && overlap), "%s: arena spans %d and %d overlap while alive", g->name, a, b);
    }
  }
  free(s);
}

START_TEST(t_examples) {
  const char *names[] = {"mlp", "lenet", "linreg", "inception_a"};
  CgTarget t;
  full_target(&t, NULL);
  for (size_t e = 0; e < sizeof names / sizeof *names; e++) {
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s.nn", NNC_SOURCE_DIR, names[e]);
    const char *defs[] = {"N=2"};
    FeOptions o = {.defines = defs, .ndefines = 1};
    Diag *d = diag_new(stderr);
    IrModule *m = fe_compile_file(path, &o, d);
    ck_assert_ptr_nonnull(m);
    IrGraph *fwd = m->graphs[0], *train = NULL;
    IrTrain *tr = ir_module_find_train(m, fwd->name);
    TrainInfo info;
    if (tr) ck_assert_ptr_nonnull(train = pass_train_graph(fwd, tr, &info, d));
    CgModelPlan P;
    ck_assert_int_eq(cg_model_plan(&P, fwd, train, &t, NULL, NULL, d), 0);
    check_schedule(&P.pf);
    check_arena(&P.pf);
    if (train) check_schedule(&P.pt), check_arena(&P.pt);
    CgMemory mem;
    ck_assert_int_eq(cg_model_memory(fwd, train, &t, &mem, d), 0);
    ck_assert_int_eq(mem.params_bytes, P.params_bytes);
    ck_assert_int_eq(mem.io_bytes, P.io_bytes);
    ck_assert_int_eq(mem.arena_bytes_forward, P.pf.arena_bytes);
    ck_assert_int_eq(mem.arena_bytes_train, train ? P.pt.arena_bytes : 0);
    cg_model_plan_free(&P);
    diag_free(d);
    ir_module_free(m);
  }
}
END_TEST

static const char *CONV = "model c {\n  input x: f32[2, 3, 8, 8]\n"
                          "  y = conv2d(x, 4, kernel = 3, pad = 1, bias = false)\n  output y\n}\n";

START_TEST(t_conv_strategy) {
  IrGraph *g;
  IrModule *m = compile(CONV, &g);
  CgTarget t;
  full_target(&t, NULL);
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  ck_assert_int_eq(cg_model_plan(&P, g, NULL, &t, NULL, NULL, d), 0);
  int64_t scratch = 0;
  for (int ki = 0; ki < P.pf.nk; ki++) scratch += P.pf.k[ki].scratch_bytes;
  ck_assert_int_eq(scratch, (int64_t)(3 * 3 * 3) * (8 * 8) * 4); /* K x P floats */
  int64_t arena_im2col = P.pf.arena_bytes;
  cg_model_plan_free(&P);
  t.conv = CG_CONV_DIRECT;
  ck_assert_int_eq(cg_model_plan(&P, g, NULL, &t, NULL, NULL, d), 0);
  for (int ki = 0; ki < P.pf.nk; ki++) ck_assert_int_eq(P.pf.k[ki].scratch_bytes, 0);
  ck_assert_int_lt(P.pf.arena_bytes, arena_im2col);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
}
END_TEST

START_TEST(t_tiles) {
  IrGraph *g;
  IrModule *m = compile(CLASSIFIER, &g);
  const HwTarget *hw = hw_find_builtin("cpu-avx2");
  ck_assert_ptr_nonnull(hw);
  CgTarget t;
  full_target(&t, hw);
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  ck_assert_int_eq(cg_model_plan(&P, g, NULL, &t, NULL, NULL, d), 0);
  int ngemm = 0;
  for (int ki = 0; ki < P.pf.nk; ki++) {
    const CgKernel *k = &P.pf.k[ki];
    if (k->kind != CGK_GEMM) continue;
    ngemm++;
    ck_assert_ptr_nonnull(k->tile);
    TileGemm gm;
    ck_assert(tiles_gemm_of(g, k->node, &gm));
    TileDecision want;
    tiles_choose(hw, &gm, &want);
    ck_assert_int_eq(k->tile->mr, want.mr);
    ck_assert_int_eq(k->tile->nr, want.nr);
    ck_assert_int_eq(k->tile->kc, want.kc);
  }
  ck_assert_int_eq(ngemm, 1);
  cg_model_plan_free(&P);
  full_target(&t, NULL);
  ck_assert_int_eq(cg_model_plan(&P, g, NULL, &t, NULL, NULL, d), 0);
  for (int ki = 0; ki < P.pf.nk; ki++) ck_assert_ptr_null(P.pf.k[ki].tile);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
}
END_TEST

/* a 2-core CPU with round figures: 100 GFLOP/s a thread, packing at 20 / 4 GB/s */
static void gemm_hw(HwTarget *hw) {
  memset(hw, 0, sizeof *hw);
  hw->kind = HW_CPU, hw->cores = 2, hw->ghz = 2.5, hw->vector_bits = 512;
  hw->peak[HWP_F32] = 200e9, hw->peak_f32_1t = 100e9;
  hw->pack_bw = 20e9, hw->pack_strided_bw = 4e9, hw->gemm_ukr_eff = 0.8;
}

START_TEST(t_cpu_gemm_terms) {
  HwTarget hw;
  gemm_hw(&hw);
  /* mlp's fc1 at N=64: 5 x 16 micro-tiles of 14 x 32, split along N */
  CgGemmShape s = {.m = 64, .n = 512, .k = 784, .mr = 14, .nr = 32, .kc = 512, .nc = 4096,
                   .a_strided = true, .b_strided = true};
  CgGemmRun r;
  cg_cpu_gemm(&hw, &s, 1, &r);
  ck_assert(r.split_n && r.threads == 1);
  ck_assert_double_eq(r.tiles, 80);
  ck_assert_double_eq(r.pack_b, 16 * 32 * 784);
  ck_assert_double_eq(r.pack_a, 5 * 14 * 784);
  double fma1 = 2.0 * 14 * 32 * 784 * 80 / (0.8 * 100e9) * (784 + 4) / 784.0;
  ck_assert_double_eq_tol(r.t_fma, fma1, 1e-12);
  ck_assert_double_eq_tol(r.t_pack, 4.0 * (5 * 14 * 784 + 16 * 32 * 784) / 4e9, 1e-12);
  /* two threads: half of B's panels and of the tiles each, all of A each */
  cg_cpu_gemm(&hw, &s, 2, &r);
  ck_assert(r.threads == 2 && r.tiles == 40 && r.pack_b == 8 * 32 * 784 && r.pack_a == 5 * 14 * 784);
  ck_assert_double_eq_tol(r.t_fma, fma1 / 2, 1e-12);
  /* B's panels packed once per program; B stored K x N (adjacent rows): 20 GB/s */
  s.packed_b = true;
  cg_cpu_gemm(&hw, &s, 1, &r);
  ck_assert_double_eq(r.pack_b, 0);
  ck_assert_double_eq_tol(r.t_pack, 4.0 * 5 * 14 * 784 / 4e9, 1e-12);
  s.packed_b = false, s.b_strided = false;
  cg_cpu_gemm(&hw, &s, 1, &r);
  ck_assert_double_eq_tol(r.t_pack, 4.0 * 5 * 14 * 784 / 4e9 + 4.0 * 16 * 32 * 784 / 20e9, 1e-12);
  /* B stored N x K (the weight itself), its panels transposed in registers: 16 GB/s */
  hw.pack_transposed_bw = 16e9, s.b_transposed = true;
  cg_cpu_gemm(&hw, &s, 1, &r);
  ck_assert_double_eq_tol(r.t_pack, 4.0 * 5 * 14 * 784 / 4e9 + 4.0 * 16 * 32 * 784 / 16e9, 1e-12);
  hw.pack_transposed_bw = 0, s.b_transposed = false;
  /* the logits: below 2^21 multiply-adds one thread; one column tile, so the split is M's;
   * its 10 columns fit one vector of the two, so each tile runs half of the k loop's FMAs
   * (llvm_gemm.c emit_kloops): 5 row tiles of half a tile */
  CgGemmShape l = {.m = 64, .n = 10, .k = 512, .mr = 14, .nr = 32, .kc = 512, .nc = 4096,
                   .a_strided = true, .b_strided = true};
  cg_cpu_gemm(&hw, &l, 2, &r);
  ck_assert(!r.split_n && r.threads == 1 && r.tiles == 2.5 && r.pack_b == 32 * 512);
  /* 17 columns: over one vector, a whole tile; 48: one whole tile and half of one */
  l.n = 17;
  cg_cpu_gemm(&hw, &l, 1, &r);
  ck_assert_double_eq(r.tiles, 5);
  l.n = 48;
  cg_cpu_gemm(&hw, &l, 1, &r);
  ck_assert_double_eq(r.tiles, 7.5);
  l.n = 10;
  /* without a measured micro-kernel the tiles pass's latency factor; default packing rates:
   * L2 of one core for adjacent rows (unknown here: DRAM's), CG_PACK_STRIDED_CYCLES per
   * element at the clock for strided ones */
  hw.gemm_ukr_eff = 0, hw.pack_bw = 0, hw.pack_strided_bw = 0, hw.mem_bw = 10e9;
  l.lat_eff = 0.5;
  cg_cpu_gemm(&hw, &l, 1, &r);
  ck_assert_double_eq_tol(r.t_fma, 2.0 * 14 * 32 * 512 * 2.5 / (0.5 * 100e9) * (512 + 2) / 512.0, 1e-12);
  ck_assert_double_eq_tol(cg_pack_rate(&hw, CG_PACK_GATHER), 2.5e9, 1);
  ck_assert_double_eq_tol(cg_pack_rate(&hw, CG_PACK_ADJACENT), 10e9, 1);
  ck_assert_double_eq_tol(cg_pack_rate(&hw, CG_PACK_TRANSPOSED), 10e9, 1);
  hw.pack_transposed_bw = 15e9; /* measured: its own figure */
  ck_assert_double_eq_tol(cg_pack_rate(&hw, CG_PACK_TRANSPOSED), 15e9, 1);
  hw.pack_transposed_bw = 0;
  /* DRAM: one thread its own triad, two up to the all-core figure; L3 by the cores used */
  ck_assert_double_eq_tol(cg_level_bw(&hw, CG_LEVEL_DRAM, 1), 10e9, 1);
  hw.mem_bw_1t = 6e9, hw.cache_bw[CG_LEVEL_L3] = 100e9;
  ck_assert_double_eq_tol(cg_level_bw(&hw, CG_LEVEL_DRAM, 1), 6e9, 1);
  ck_assert_double_eq_tol(cg_level_bw(&hw, CG_LEVEL_DRAM, 2), 10e9, 1);
  ck_assert_double_eq_tol(cg_level_bw(&hw, CG_LEVEL_L3, 1), 50e9, 1);
}
END_TEST

static const char DEPTHWISE[] = "model dw {\n  input x: f32[2, 16, 12, 12]\n"
                                "  y = conv2d(x, 16, kernel = 3, pad = 1, groups = 16, bias = false)\n"
                                "  z = conv2d(y, 16, kernel = 3, stride = 2, pad = 1, groups = 16, bias = false)\n"
                                "  u = conv2d(z, 16, kernel = 3, stride = 3, pad = 1, groups = 16, bias = false)\n"
                                "  output u\n}\n";

/* *P, the plan of fwd (and train) on *t, the CPU-like target of hw (gathering
 * convolutions, direct depthwise ones), which the plan keeps pointing to; *c, the
 * one-thread estimate of its last graph's plan */
static void plan_gather_cost(const IrGraph *fwd, const IrGraph *train, const HwTarget *hw,
                             CgTarget *t, CgModelPlan *P, CgPlanCost *c, Diag *d) {
  full_target(t, hw);
  t->conv = CG_CONV_GATHER, t->depthwise_direct = true;
  ck_assert_int_eq(cg_model_plan(P, fwd, train, t, NULL, NULL, d), 0);
  cg_plan_cost(train ? &P->pt : &P->pf, hw, 1, 0, c);
}

/* the direct depthwise convolution: taps x vectors of output rows at 2.25 cycles (stride 1),
 * 4.0 at stride 2 (two loads, even lanes kept), 0.9 cycles a lane where a stride gathers
 * them (3); no packing */
START_TEST(t_depthwise_terms) {
  IrGraph *g;
  IrModule *m = compile(DEPTHWISE, &g);
  HwTarget hw;
  gemm_hw(&hw); /* 512-bit vectors: 16 lanes; 2.5 GHz */
  Diag *d = diag_new(stderr);
  CgTarget t;
  CgModelPlan P;
  CgPlanCost c;
  plan_gather_cost(g, NULL, &hw, &t, &P, &c, d);
  int nconv = 0;
  for (int ki = 0; ki < P.pf.nk; ki++) {
    if (P.pf.k[ki].kind != CGK_CONV) continue;
    /* rows N x C x OH, one 16-lane vector per row (OW = 12, 6 or 2), 9 taps: blocked at
     * strides 1 and 2 (CG_DWB_TAP_CYCLES, CG_DWB_S2_TAP_CYCLES), a gather at stride 3 */
    double want = nconv == 0   ? 2.0 * 16 * 12 * 9 * 0.95 / 2.5e9
                  : nconv == 1 ? 2.0 * 16 * 6 * 9 * 2.2 / 2.5e9
                               : 2.0 * 16 * 2 * 9 * 16 * 0.9 / 2.5e9;
    ck_assert_double_eq_tol(c.k[ki].t_compute, want, want * 1e-9);
    ck_assert_double_eq(c.k[ki].t_scratch, 0);
    ck_assert_int_eq(c.k[ki].threads, 1);
    nconv++;
  }
  ck_assert_int_eq(nconv, 3);
  cg_plan_cost_free(&c);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
}
END_TEST

/* a dense layer with GELU fused into its GEMM's epilogue is priced the GEMM's time plus
 * GELU's Phi (CG_PHI_EXTRA, 110 FLOPs an element) at the elementwise rate, half the peak
 * of the GEMM's thread: its estimate exceeds the same layer with relu by exactly that */
static double dense_epi_compute(const char *act) {
  char text[256];
  snprintf(text, sizeof text,
           "model m {\n  input x: f32[64, 96]\n  y = %s(dense(x, 80))\n  output y\n}\n", act);
  IrGraph *g;
  IrModule *m = compile(text, &g);
  HwTarget hw;
  gemm_hw(&hw);
  Diag *d = diag_new(stderr);
  CgTarget t;
  CgModelPlan P;
  CgPlanCost c;
  full_target(&t, &hw);
  t.conv = CG_CONV_GATHER, t.epi_group = true; /* the group in the GEMM's epilogue */
  ck_assert_int_eq(cg_model_plan(&P, g, NULL, &t, NULL, NULL, d), 0);
  cg_plan_cost(&P.pf, &hw, 1, 0, &c);
  ck_assert_int_eq(P.pf.nk, 1);
  double tc = -1;
  for (int ki = 0; ki < P.pf.nk; ki++)
    if (P.pf.k[ki].kind == CGK_GEMM) tc = c.k[ki].t_compute;
  cg_plan_cost_free(&c);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
  return tc;
}

START_TEST(t_gemm_epilogue_transcendental) {
  double gelu = dense_epi_compute("gelu"), relu = dense_epi_compute("relu");
  ck_assert(gelu > 0 && relu > 0);
  double want = 64.0 * 80 * 110 / (0.5 * 100e9); /* one thread of gemm_hw: 100 GFLOP/s */
  ck_assert_double_eq_tol(gelu - relu, want, want * 1e-6);
}
END_TEST

/* a dense layer of 16 rows whose 8 MB weight is packed once and streams from DRAM (2 GB/s):
 * the first micro-tile down M pulls each panel in, the others' FMAs run while the memory
 * idles, so the kernel takes max(t_fma / share, t_mem) + t_fma (share - 1) / share, the
 * excess over max(t_fma, t_mem) in t_scratch beside the (absent) packing */
START_TEST(t_stream_shared_panels) {
  IrGraph *g;
  IrModule *m =
      compile("model m {\n  input x: f32[16, 1024]\n  y = dense(x, 2048)\n  output y\n}\n", &g);
  HwTarget hw;
  gemm_hw(&hw);
  hw.mem_bw = 4e9, hw.mem_bw_1t = 2e9, hw.l3_bytes = 1 << 20, hw.l2_bytes_cpu = 1 << 18;
  hw.cache_bw[0] = hw.cache_bw[1] = hw.cache_bw[2] = 1e12;
  Diag *d = diag_new(stderr);
  CgTarget t;
  CgModelPlan P;
  CgPlanCost c;
  full_target(&t, &hw);
  t.conv = CG_CONV_GATHER, t.prepack = true;
  ck_assert_int_eq(cg_model_plan(&P, g, NULL, &t, NULL, NULL, d), 0);
  cg_plan_cost(&P.pf, &hw, 1, 0, &c);
  int seen = 0;
  for (int ki = 0; ki < P.pf.nk; ki++) {
    const CgKernel *k = &P.pf.k[ki];
    if (k->kind != CGK_GEMM) continue;
    ck_assert(k->prepacked && k->tile);
    const TileDecision *td = k->tile; /* as plan_cost.c matmul_run hands it over */
    double wave = td->wave_eff > 0 ? td->wave_eff : 1, tile = td->tile_eff > 0 ? td->tile_eff : 1;
    CgGemmShape s = {.m = 16, .n = 2048, .k = 1024, .mr = td->nr > 32 ? 32 : td->nr, .nr = td->mr,
                     .kc = td->kc, .nc = td->nc, .a_strided = true, .b_transposed = true,
                     .packed_b = true, .lat_eff = td->eff / wave / tile};
    CgGemmRun r;
    cg_cpu_gemm(&hw, &s, 1, &r);
    ck_assert_double_eq(r.share, ceil(16.0 / s.mr));
    ck_assert(r.share > 1 && c.k[ki].t_memory > r.t_fma / r.share);
    double extra = fmin(c.k[ki].t_memory, r.t_fma) - r.t_fma / r.share;
    ck_assert_double_eq_tol(c.k[ki].t_scratch, r.t_pack + extra, 1e-12);
    seen++;
  }
  ck_assert_int_eq(seen, 1);
  cg_plan_cost_free(&c);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
}
END_TEST

/* a pointwise convolution whose 3.1 MB output is past a quarter of an 8 MB L3 stores it
 * non-temporally (the tiles' nt_store), so the depthwise convolution that reads it waits on
 * memory for those bytes (2 GB/s here, the caches free), though its 6.3 MB of traffic is
 * within the L3: its t_memory is their DRAM time. With a 1 GB L3 the same read comes from
 * the cache */
static double nt_reader_memory(int64_t l3, bool *nt) {
  IrGraph *g;
  IrModule *m = compile("model m {\n  input x: f32[2, 16, 64, 64]\n"
                        "  y = conv2d(x, 96, kernel = 1, bias = false)\n"
                        "  z = conv2d(y, 96, kernel = 3, pad = 1, groups = 96, bias = false)\n"
                        "  output z\n}\n", &g);
  HwTarget hw;
  gemm_hw(&hw);
  hw.mem_bw = 4e9, hw.mem_bw_1t = 2e9, hw.l3_bytes = l3, hw.l2_bytes_cpu = 1 << 18, hw.l1_bytes = 1 << 15;
  hw.cache_bw[0] = hw.cache_bw[1] = hw.cache_bw[2] = 1e15;
  Diag *d = diag_new(stderr);
  CgTarget t;
  CgModelPlan P;
  CgPlanCost c;
  plan_gather_cost(g, NULL, &hw, &t, &P, &c, d);
  double tm = -1;
  *nt = false;
  for (int ki = 0; ki < P.pf.nk; ki++) {
    const CgKernel *k = &P.pf.k[ki];
    if (k->kind != CGK_CONV) continue;
    if (g->nodes[k->node].attr.groups > 1) tm = c.k[ki].t_memory;
    else *nt = k->tile && k->tile->nt_store;
  }
  cg_plan_cost_free(&c);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
  return tm;
}

START_TEST(t_nt_read_from_memory) {
  bool nt = false;
  double y = 2.0 * 96 * 64 * 64 * 4; /* the pointwise convolution's output */
  double past = nt_reader_memory(8 << 20, &nt);
  ck_assert_msg(nt, "the 3.1 MB output was not stored non-temporally");
  ck_assert_double_eq_tol(past, y / 2e9, 1e-4 * y / 2e9); /* the rest at 1e15 B/s: ~1e-8 s */
  double kept = nt_reader_memory(1LL << 30, &nt);
  ck_assert(!nt);
  ck_assert(kept < 1e-6);
}
END_TEST

/* the Winograd kernels' per-pair transforms: the filter transform a training step runs
 * every call writes U (36 floats a pair) at L2's bandwidth while U fits L2, beyond it at one
 * thread's memory bandwidth (256 x 256: 9.4 MB, measured 21 to 26 ns a pair against 11 in
 * L2); the filter gradient's output transform takes TILES_WINO_GOUT_S a pair at every size
 * where the 36 sums' stride is a multiple of 4 KiB (their loads share an L1 set: 19 to 22
 * ns from 64 x 64 to 512 x 512, not its FLOPs' 5 ns), TILES_WINO_GOUT_SPREAD_S otherwise */
START_TEST(t_wino_transform_terms) {
  HwTarget hw;
  gemm_hw(&hw);
  hw.l2_bytes_cpu = 1 << 20, hw.l3_bytes = 32 << 20;
  hw.cache_bw[1] = 200e9, hw.cache_bw[2] = 100e9, hw.mem_bw = 20e9, hw.mem_bw_1t = 10e9;
  double p = 64.0 * 64; /* U: 590 KB, in L2 at 100 GB/s a core */
  ck_assert_double_eq_tol(tiles_wino_filter_time(&hw, 64, 64), p * 11e-9 + 144 * p / 100e9, 1e-15);
  p = 256.0 * 256; /* 9.4 MB: beyond L2 though within L3, at 10 GB/s */
  ck_assert_double_eq_tol(tiles_wino_filter_time(&hw, 256, 256), p * 11e-9 + 144 * p / 10e9, 1e-12);
  static const int64_t oc[][2] = {{64, 64}, {96, 40}, {256, 256}, {512, 512}, {256, 128}, {28, 20}};
  for (int i = 0; i < 6; i++) { /* 96 x 40 and 28 x 20: the sums' stride not 4 KiB-aligned */
    double want = (double)(oc[i][0] * oc[i][1]) * (oc[i][0] * oc[i][1] % 1024 ? 11e-9 : 20e-9);
    ck_assert_double_eq_tol(tiles_wino_wgrad_out_time(&hw, oc[i][0], oc[i][1]), want, want * 1e-12);
  }
}
END_TEST

static const char DW_TRAIN[] =
    "model dwt {\n  input x: f32[2, 16, 12, 12]\n  input label: i32[2]\n"
    "  a = conv2d(x, 16, kernel = 1, bias = false)\n"
    "  y = conv2d(a, 16, kernel = 3, pad = 1, groups = 16, bias = false)\n"
    "  z = conv2d(y, 16, kernel = 3, stride = 2, pad = 1, groups = 16, bias = false)\n"
    "  u = conv2d(z, 16, kernel = 3, stride = 3, pad = 1, groups = 16, bias = false)\n"
    "  logits = dense(flatten(u), 10)\n  loss = cross_entropy(logits, label)\n  output logits\n}\n"
    "train dwt {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

/* the depthwise data gradient: direct at strides 1 and 2 (no scratch; per 12-wide dx row
 * of a plane its taps' vectors at 1.4 cycles, its stored vectors at 0.55 and 4.4 a row),
 * the unfold and col2im at stride 3; the filter gradient direct at every stride */
/* the module of text, its forward graph *g and its training step */
static IrGraph *compile_train(const char *text, IrModule **m, IrGraph **g, Diag *d) {
  *m = compile(text, g);
  TrainInfo info;
  IrGraph *train = pass_train_graph(*g, ir_module_find_train(*m, (*g)->name), &info, d);
  ck_assert_ptr_nonnull(train);
  return train;
}

START_TEST(t_depthwise_dx) {
  IrGraph *g;
  IrModule *m;
  Diag *d = diag_new(stderr);
  IrGraph *train = compile_train(DW_TRAIN, &m, &g, d);
  HwTarget hw;
  gemm_hw(&hw);
  hw.mem_bw = 2e9, hw.mem_bw_1t = 1e9, hw.l3_bytes = 1 << 24; /* caches at 1 TB/s */
  hw.cache_bw[0] = hw.cache_bw[1] = hw.cache_bw[2] = 1e12;
  CgTarget t;
  CgModelPlan P;
  CgPlanCost c;
  plan_gather_cost(g, train, &hw, &t, &P, &c, d);
  int seen = 0;
  for (int ki = 0; ki < P.pt.nk; ki++) {
    const CgKernel *k = &P.pt.k[ki];
    if (k->kind != CGK_CONV || train->nodes[k->node].op == OP_CONV2D) continue;
    CgConv cv;
    cg_conv_geom(&P.pt, k->node, &cv);
    if (cv.G == 1) continue; /* the 1x1 convolution's */
    if (train->nodes[k->node].op == OP_CONV2D_BWD_FILTER) {
      /* 2 x 16 x OH rows of one vector, 9 taps: 1.7 cycles (stride 1), 3.9 (stride 2), 16
       * lanes gathered at 0.9 (stride 3); x and dy from DRAM at 1 GB/s */
      double tap = cv.sh == 1 ? 1.7 : cv.sh == 2 ? 3.9 : 16 * 0.9;
      double want = 2.0 * 16 * (double)cv.OH * 9 * tap / 2.5e9;
      ck_assert_int_eq(cv.depthwise, 1);
      ck_assert_double_eq_tol(c.k[ki].t_compute, want, want * 1e-9);
      double bytes = 4.0 * 2 * 16 * (double)(cv.H * cv.W + cv.OH * cv.OW);
      ck_assert_double_eq_tol(c.k[ki].t_memory, bytes / 1e9, bytes * 1e-18);
      seen |= 8 << (cv.sh - 1);
      continue;
    }
    ck_assert_int_eq(cv.depthwise, cv.sh <= 2);
    ck_assert_int_eq(cv.scratch == 0, cv.sh <= 2);
    /* stride 1: 12 rows x 9 taps; stride 2: 6 rows of 1 tap row, 6 of 2, 3 column taps */
    double cyc = cv.sh == 1 ? 108 * 1.4 + 12 * 0.55 + 12 * 4.4 : 54 * 1.4 + 24 * 0.55 + 12 * 4.4;
    if (cv.sh <= 2) ck_assert_double_eq_tol(c.k[ki].t_compute, 32 * cyc / 2.5e9, 32 * cyc * 1e-18);
    seen |= 1 << (cv.sh - 1);
  }
  ck_assert_int_eq(seen, 63);
  cg_plan_cost_free(&c);
  cg_model_plan_free(&P);
  diag_free(d);
  ir_module_free(m);
}
END_TEST

static const char BN_TRAIN[] =
    "model bnt {\n  input x: f32[4, 3, 6, 6]\n  input label: i32[4]\n"
    "  h = relu(batchnorm(conv2d(x, 8, kernel = 3, pad = 1, bias = false), name = \"bn\"))\n"
    "  logits = dense(flatten(h), 10)\n  loss = cross_entropy(logits, label)\n  output logits\n}\n"
    "train bnt {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

/* a training batchnorm on a target with bn_fused: the forward's kernel also computes the
 * mean and var nodes of its running statistics, the backward's the bn_dgamma and the sum of
 * dy (beta's gradient); without it, each is its own kernel */
START_TEST(t_bn_fused) {
  IrGraph *g;
  IrModule *m;
  Diag *d = diag_new(stderr);
  IrGraph *train = compile_train(BN_TRAIN, &m, &g, d);
  for (int fused = 0; fused < 2; fused++) {
    CgTarget t;
    full_target(&t, NULL);
    t.bn_fused = fused;
    CgModelPlan P;
    ck_assert_int_eq(cg_model_plan(&P, g, train, &t, NULL, NULL, d), 0);
    int seen = 0;
    for (int ki = 0; ki < P.pt.nk; ki++) {
      const CgKernel *k = &P.pt.k[ki];
      OpKind op = train->nodes[k->node].op;
      if (k->kind != CGK_NODE || (op != OP_BATCHNORM && op != OP_BATCHNORM_BWD)) continue;
      ck_assert_int_eq(k->nmembers, fused ? 3 : 1);
      for (int j = 1; j < k->nmembers; j++) {
        OpKind mo = train->nodes[k->members[j]].op;
        ck_assert(op == OP_BATCHNORM ? mo == OP_MEAN || mo == OP_VAR : mo == OP_BN_DGAMMA || mo == OP_SUM);
        ck_assert(P.pt.v[k->members[j]].stored);
      }
      seen |= op == OP_BATCHNORM ? 1 : 2;
    }
    ck_assert_int_eq(seen, 3);
    check_schedule(&P.pt);
    check_arena(&P.pt);
    cg_model_plan_free(&P);
  }
  diag_free(d);
  ir_module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("plan");
  TCase *tc = tcase_create("plan");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, t_target_lacks_op);
  tcase_add_test(tc, t_target_lacks_dtype);
  tcase_add_test(tc, t_examples);
  tcase_add_test(tc, t_conv_strategy);
  tcase_add_test(tc, t_tiles);
  tcase_add_test(tc, t_cpu_gemm_terms);
  tcase_add_test(tc, t_depthwise_terms);
  tcase_add_test(tc, t_depthwise_dx);
  tcase_add_test(tc, t_bn_fused);
  tcase_add_test(tc, t_gemm_epilogue_transcendental);
  tcase_add_test(tc, t_wino_transform_terms);
  tcase_add_test(tc, t_stream_shared_panels);
  tcase_add_test(tc, t_nt_read_from_memory);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int nf = srunner_ntests_failed(r);
  srunner_free(r);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
