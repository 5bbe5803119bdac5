/* test_rt_program.c — the runtime side of `nnc build`, without the LLVM backend: a
 * hand-written RtModelDesc for a tiny model (y = x W^T + b, MSE loss against t, SGD with
 * momentum) drives the embedding API (rt_embed.c) and the program main (rt_main.c), and the
 * runtime's initializers (rt_init.c) are checked bit for bit against the reference
 * interpreter's interp_init_param. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ir/interp.h"
#include "../../ir/ir.h"
#include "header.h"
#include "rt_io.h"
#include "rt_program.h"

#include "tiny_model.h"
#define tiny nnc_model_tiny

/* the learnable target: t = x A^T + c */
static const float A_true[OUT * IN] = {1.0f, -2.0f, 0.5f, 0.25f, 0.75f, -1.0f};
static const float c_true[OUT] = {0.3f, -0.7f};

static void make_data(int n, float *x, float *t, uint64_t seed) {
  for (int i = 0; i < n * IN; i++) x[i] = (float)(2 * rt_philox_uniform(seed, 1, (uint64_t)i) - 1);
  for (int s = 0; s < n; s++)
    for (int o = 0; o < OUT; o++) {
      float v = c_true[o];
      for (int i = 0; i < IN; i++) v += x[s * IN + i] * A_true[o * IN + i];
      t[s * OUT + o] = v;
    }
}

/* ---- temp dir and helpers ---------------------------------------------------------------- */

static char g_dir[256];
static char g_paths[256][512]; /* path_in results stay valid for the whole test */
static int g_npaths;
static void setup(void) {
  g_npaths = 0;
  snprintf(g_dir, sizeof g_dir, "/tmp/nnc_rtprog_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
}
static void teardown(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}
static const char *path_in(const char *name) {
  char *b = g_paths[g_npaths++ & 255];
  snprintf(b, 512, "%s/%s", g_dir, name);
  return b;
}

static void write_npy_f32(const char *path, int rank, const int64_t *shape, const float *v) {
  RtTensor t = {0};
  char err[256];
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, rank, shape), 0);
  memcpy(t.data, v, t.nbytes);
  ck_assert_msg(rt_npy_write(path, &t, err, sizeof err) == 0, "%s", err);
  rt_tensor_free(&t);
}

/* runs rt_program_main on a NULL-terminated argument list with stdout and stderr captured */
static char g_out[16384], g_errtxt[16384];
static int run_main(const char *fwd_inputs, ...) {
  char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, fwd_inputs);
  for (const char *s; (s = va_arg(ap, const char *));) argv[argc++] = (char *)s;
  va_end(ap);
  argv[argc] = NULL;
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  char po[512], pe[512];
  snprintf(po, sizeof po, "%s/stdout.txt", g_dir);
  snprintf(pe, sizeof pe, "%s/stderr.txt", g_dir);
  int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fo, 1);
  dup2(fe, 2);
  int rc = rt_program_main(&tiny, fwd_inputs, argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  close(fo);
  close(fe);
  size_t len;
  char *s = rt_file_read_all(po, &len, NULL, 0);
  snprintf(g_out, sizeof g_out, "%s", s ? s : "");
  free(s);
  s = rt_file_read_all(pe, &len, NULL, 0);
  snprintf(g_errtxt, sizeof g_errtxt, "%s", s ? s : "");
  free(s);
  return rc;
}

/* ---- initializers against the interpreter ------------------------------------------------ */

START_TEST(test_philox_matches_interp) {
  /* one generator serves both: the interpreter's uniform is the runtime's */
  for (uint64_t k = 0; k < 100; k++)
    ck_assert(rt_philox_uniform(k * 77, k, k << 20) == interp_philox_uniform(k * 77, k, k << 20));
  /* Salmon et al.'s known answer for Philox-4x32-10, counter and key all ones */
  uint32_t ctr[4] = {~0u, ~0u, ~0u, ~0u}, key[2] = {~0u, ~0u}, out[4];
  rt_philox4x32_10(ctr, key, out);
  ck_assert_uint_eq(out[0], 0x408f276du);
  ck_assert_uint_eq(out[1], 0x41c83b0eu);
  ck_assert_uint_eq(out[2], 0xa20bc7c6u);
  ck_assert_uint_eq(out[3], 0x6d5451fdu);
}
END_TEST

START_TEST(test_init_matches_interp) {
  Arena *a = arena_new();
  IrGraph *g = ir_graph_new(a, "inits");
  struct {
    const char *name;
    InitKind init;
    double ia, ib;
    int rank;
    int64_t shape[4];
  } cases[] = {
      {"conv.weight", INIT_HE, 0, 0, 4, {8, 3, 3, 3}},
      {"fc.weight", INIT_XAVIER, 0, 0, 2, {17, 9}},
      {"fc.bias", INIT_UNIFORM, -0.1, 0.3, 1, {17}},
      {"emb.weight", INIT_NORMAL, 0.02, 0, 2, {11, 5}},
      {"odd", INIT_NORMAL, 1.5, 0, 1, {7}},
      {"bn.weight", INIT_ONES, 0, 0, 1, {6}},
      {"bn.running_mean", INIT_ZEROS, 0, 0, 1, {6}},
      {"scale", INIT_CONST, 0.125, 0, 0, {0}},
      {"v.xavier1", INIT_XAVIER, 0, 0, 1, {10}},
      {"he3", INIT_HE, 0, 0, 3, {4, 6, 5}},
  };
  int nc = (int)(sizeof cases / sizeof *cases);
  for (int k = 0; k < nc; k++) {
    IrAttr at = {0};
    at.init = cases[k].init;
    at.init_a = cases[k].ia;
    at.init_b = cases[k].ib;
    at.trainable = true;
    Dim *dims[4];
    for (int j = 0; j < cases[k].rank; j++) dims[j] = dim_const(g->dims, cases[k].shape[j]);
    int id = ir_add(g, OP_PARAM, NULL, 0, &at, ir_type(DT_F32, cases[k].rank, dims), (SrcLoc){0});
    g->nodes[id].name = cases[k].name;
  }
  uint64_t seeds[] = {0, 7, (1ull << 40) + 3, ~0ull};
  for (size_t si = 0; si < sizeof seeds / sizeof *seeds; si++)
    for (int k = 0; k < nc; k++) {
      RtTensorInfo t = {.name = cases[k].name, .kind = RT_KIND_PARAM, .dtype = DT_F32,
                        .rank = cases[k].rank, .init = (int32_t)cases[k].init,
                        .init_a = cases[k].ia, .init_b = cases[k].ib};
      for (int j = 0; j < t.rank; j++) t.shape[j] = cases[k].shape[j];
      int64_t n = rt_info_numel(&t);
      t.nbytes = n * 4;
      double *ref = calloc((size_t)n, sizeof *ref), *got = calloc((size_t)n, sizeof *got);
      float *f = calloc((size_t)n, sizeof *f);
      interp_init_param(g, k, seeds[si], ref);
      rt_init_values(&t, seeds[si], got);
      rt_init_tensor(&t, seeds[si], f);
      for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(memcmp(&ref[i], &got[i], sizeof(double)) == 0,
                      "%s[%lld] seed %llu: interp %.17g, runtime %.17g", cases[k].name,
                      (long long)i, (unsigned long long)seeds[si], ref[i], got[i]);
        ck_assert(f[i] == (float)ref[i]);
      }
      free(ref);
      free(got);
      free(f);
    }
  /* the values are not trivially equal: distinct seeds and names differ */
  RtTensorInfo t = tiny_tensors[0];
  double v0[6], v1[6];
  rt_init_values(&t, 0, v0);
  rt_init_values(&t, 1, v1);
  ck_assert(memcmp(v0, v1, sizeof v0) != 0);
  double bound = sqrt(6.0 / (3 + 2));
  for (int i = 0; i < 6; i++) ck_assert(fabs(v0[i]) <= bound);
  dim_ctx_free(g->dims);
  arena_free(a);
}
END_TEST

/* ---- the embedding API ------------------------------------------------------------------- */

static void ref_forward(const float *W, const float *b, const float *x, int n, float *y) {
  for (int s = 0; s < n; s++)
    for (int o = 0; o < OUT; o++) {
      float v = b[o];
      for (int i = 0; i < IN; i++) v += x[s * IN + i] * W[o * IN + i];
      y[s * OUT + o] = v;
    }
}

START_TEST(test_ctx_infer_chunks) {
  char err[256];
  RtCtx *c = rt_ctx_create(&tiny, 1, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  rt_ctx_init(c, 3);
  const float *W = rt_ctx_data(c, rt_ctx_find(c, "fc.weight"));
  const float *bias = rt_ctx_data(c, rt_ctx_find(c, "fc.bias"));
  ck_assert(bias[0] != 0 && bias[0] >= -0.5 && bias[0] < 0.5);
  enum { N = 10 };
  float x[N * IN], t[N * OUT], y[N * OUT], ref[N * OUT];
  make_data(N, x, t, 9);
  for (int i = 0; i < N * OUT; i++) y[i] = NAN;
  const void *in[2] = {x, NULL};
  void *out[1] = {y};
  g_forward_calls = 0;
  ck_assert_int_eq(rt_ctx_infer(c, N, in, out), 0);
  ck_assert_int_eq(g_forward_calls, 3); /* 4 + 4 + 2 (padded) */
  ref_forward(W, bias, x, N, ref);
  for (int i = 0; i < N * OUT; i++) ck_assert_msg(fabsf(y[i] - ref[i]) <= 1e-6f, "y[%d]", i);
  /* padding: the last chunk's x rows 2,3 are zero, so y there is the bias */
  const float *yio = rt_ctx_data(c, rt_ctx_find(c, "y"));
  ck_assert(yio[2 * OUT] == bias[0] && yio[3 * OUT + 1] == bias[1]);
  ck_assert_int_eq(rt_ctx_infer(c, 0, in, out), -1);
  ck_assert_ptr_nonnull(strstr(rt_ctx_error(c), "0 samples"));
  rt_ctx_destroy(c);
}
END_TEST

START_TEST(test_ctx_train_and_resume) {
  char err[256];
  RtCtx *a = rt_ctx_create(&tiny, 2, err, sizeof err), *b = rt_ctx_create(&tiny, 1, err, sizeof err);
  ck_assert(a && b);
  ck_assert_int_eq(rt_ctx_threads(a), 2);
  rt_ctx_init(a, 1);
  float x[B * IN], t[B * OUT], first = 0, loss = 0;
  const void *in[2] = {x, t};
  const char *ck = path_in("ck.safetensors");
  for (int s = 0; s < 60; s++) {
    make_data(B, x, t, 100 + (uint64_t)s);
    ck_assert_int_eq(rt_ctx_train_step(a, in, &loss), 0);
    if (s == 0) first = loss;
    if (s == 29) {
      ck_assert_msg(rt_ctx_save(a, ck, NULL) == 0, "%s", rt_ctx_error(a));
      int unk = -1;
      ck_assert_msg(rt_ctx_load(b, ck, &unk) == 0, "%s", rt_ctx_error(b));
      ck_assert_int_eq(unk, 0);
      ck_assert_int_eq(rt_ctx_step(b), 30);
    }
    if (s >= 30) {
      float lb;
      ck_assert_int_eq(rt_ctx_train_step(b, in, &lb), 0);
      ck_assert(lb == loss);
    }
  }
  ck_assert_msg(loss < 0.05f * first, "loss %g -> %g", first, loss);
  /* resumed training (momentum restored) gives the same bits as training straight through */
  ck_assert_mem_eq(rt_ctx_data(a, 0), rt_ctx_data(b, 0), 256);
  ck_assert_int_eq(rt_ctx_step(b), 60);
  /* without the momentum the trajectory differs: the state really is in the checkpoint */
  RtTensorSet s = {0};
  ck_assert_int_eq(rt_st_read(ck, &s, err, sizeof err), 0);
  ck_assert_ptr_nonnull(rt_set_find(&s, "fc.weight.momentum"));
  ck_assert_str_eq(rt_set_meta(&s, "nnc.model"), "tiny");
  ck_assert_str_eq(rt_set_meta(&s, "nnc.step"), "30");
  const float *vm = rt_set_find(&s, "fc.weight.momentum")->data;
  ck_assert(vm[0] != 0);
  rt_set_free(&s);
  rt_ctx_destroy(a);
  rt_ctx_destroy(b);
}
END_TEST

START_TEST(test_ctx_load_errors) {
  char err[256];
  RtCtx *c = rt_ctx_create_ex(&tiny, 1, RT_CTX_TRAIN, NULL, 0, err, sizeof err);
  rt_ctx_init(c, 5);
  unsigned char before[256];
  memcpy(before, rt_ctx_data(c, 0), 256);
  /* a file with fc.weight of the wrong shape, and one without fc.bias */
  RtTensorSet s = {0};
  RtTensor w = {0}, extra = {0};
  int64_t bad[2] = {3, 2}, one[1] = {1};
  rt_tensor_alloc(&w, DT_F32, 2, bad);
  rt_set_add(&s, "fc.weight", &w, NULL, 0);
  const char *p1 = path_in("bad_shape.safetensors");
  ck_assert_int_eq(rt_st_write(p1, &s, NULL, err, sizeof err), 0);
  ck_assert_int_eq(rt_ctx_load(c, p1, NULL), -1);
  ck_assert_ptr_nonnull(strstr(rt_ctx_error(c), p1));
  ck_assert_ptr_nonnull(strstr(rt_ctx_error(c), "f32[2,3]"));
  rt_set_free(&s);
  int64_t good[2] = {2, 3};
  RtTensor w2 = {0};
  rt_tensor_alloc(&w2, DT_F64, 2, good); /* f64 is converted */
  for (int i = 0; i < 6; i++) ((double *)w2.data)[i] = i + 0.5;
  rt_set_add(&s, "fc.weight", &w2, NULL, 0);
  const char *p2 = path_in("no_bias.safetensors");
  ck_assert_int_eq(rt_st_write(p2, &s, NULL, err, sizeof err), 0);
  ck_assert_int_eq(rt_ctx_load(c, p2, NULL), -1);
  ck_assert_ptr_nonnull(strstr(rt_ctx_error(c), "missing tensor 'fc.bias'"));
  ck_assert_mem_eq(before, rt_ctx_data(c, 0), 256); /* untouched by failed loads */
  /* with the bias and an unknown tensor: loads, momentum keeps its (zero) initializer */
  RtTensor bb = {0};
  int64_t two[1] = {2};
  rt_tensor_alloc(&bb, DT_F32, 1, two);
  rt_set_add(&s, "fc.bias", &bb, NULL, 0);
  rt_tensor_alloc(&extra, DT_F32, 1, one);
  rt_set_add(&s, "num_batches_tracked", &extra, NULL, 0);
  const char *p3 = path_in("ok.safetensors");
  ck_assert_int_eq(rt_st_write(p3, &s, NULL, err, sizeof err), 0);
  int unk = 0;
  ((float *)rt_ctx_data(c, 2))[0] = 9; /* stale momentum must be reset */
  ck_assert_msg(rt_ctx_load(c, p3, &unk) == 0, "%s", rt_ctx_error(c));
  ck_assert_int_eq(unk, 1);
  ck_assert(((float *)rt_ctx_data(c, 0))[5] == 5.5f);
  ck_assert(((float *)rt_ctx_data(c, 2))[0] == 0);
  rt_set_free(&s);
  ck_assert_int_eq(rt_ctx_load(c, path_in("absent.safetensors"), NULL), -1);
  ck_assert_ptr_nonnull(strstr(rt_ctx_error(c), "absent.safetensors"));
  rt_ctx_destroy(c);
}
END_TEST

/* An inference context holds weights, io and the forward arena only: the optimizer state is
 * absent (and not read from a checkpoint that has it), a train step is refused; a default
 * context adds the training memory at its first step and then trains bit for bit like one
 * created for training. */
START_TEST(test_ctx_inference_only) {
  char err[256];
  ck_assert_int_eq(rt_ctx_infer_bytes(&tiny), 128 + 256 + 0);
  ck_assert_int_lt(rt_ctx_infer_bytes(&tiny), rt_ctx_memory_bytes(&tiny));
  RtCtx *t = rt_ctx_create_ex(&tiny, 1, RT_CTX_TRAIN, NULL, 0, err, sizeof err);
  RtCtx *i = rt_ctx_create_ex(&tiny, 1, RT_CTX_INFER, NULL, 0, err, sizeof err);
  RtCtx *l = rt_ctx_create(&tiny, 1, err, sizeof err);
  ck_assert(t && i && l);
  int mom = rt_ctx_find(i, "fc.weight.momentum");
  ck_assert_ptr_null(rt_ctx_data(i, mom));
  ck_assert_ptr_null(rt_ctx_data(l, mom));
  ck_assert_ptr_nonnull(rt_ctx_data(t, mom));
  rt_ctx_init(t, 4);
  rt_ctx_init(l, 4);
  float x[B * IN], y[B * OUT], lt = 0, ll = 0;
  const void *in[2] = {x, y};
  for (int s = 0; s < 5; s++) {
    make_data(B, x, y, 50 + (uint64_t)s);
    ck_assert_int_eq(rt_ctx_train_step(t, in, &lt), 0);
    ck_assert_msg(rt_ctx_train_step(l, in, &ll) == 0, "%s", rt_ctx_error(l));
    ck_assert(lt == ll);
  }
  ck_assert_ptr_nonnull(rt_ctx_data(l, mom));
  ck_assert_mem_eq(rt_ctx_data(t, mom), rt_ctx_data(l, mom), 24);
  ck_assert_int_eq(rt_ctx_train_step(i, in, &lt), -1);
  ck_assert_ptr_nonnull(strstr(rt_ctx_error(i), "inference only"));
  /* a checkpoint with momentum: the inference context reads the weights only */
  const char *ck = path_in("inf.safetensors");
  ck_assert_int_eq(rt_ctx_save(t, ck, NULL), 0);
  int unk = -1;
  ck_assert_msg(rt_ctx_load(i, ck, &unk) == 0, "%s", rt_ctx_error(i));
  ck_assert_int_eq(unk, 0);
  ck_assert_ptr_null(rt_ctx_data(i, mom));
  ck_assert_mem_eq(rt_ctx_data(i, 0), rt_ctx_data(t, 0), 24);
  ck_assert_int_eq(rt_ctx_step(i), 5);
  /* what it saves has no optimizer state */
  const char *ck2 = path_in("inf2.safetensors");
  ck_assert_int_eq(rt_ctx_save(i, ck2, NULL), 0);
  RtTensorSet s = {0};
  ck_assert_int_eq(rt_st_read(ck2, &s, err, sizeof err), 0);
  ck_assert_int_eq(s.n, 2);
  rt_set_free(&s);
  rt_ctx_destroy(t);
  rt_ctx_destroy(i);
  rt_ctx_destroy(l);
  /* in caller memory of NAME_INFER_BYTES */
  int64_t need = rt_ctx_infer_bytes(&tiny);
  void *mem = aligned_alloc(64, (size_t)need);
  ck_assert_ptr_null(rt_ctx_create_ex(&tiny, 1, RT_CTX_INFER, mem, (size_t)need - 64, err,
                                      sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "for inference"));
  RtCtx *c = rt_ctx_create_ex(&tiny, 1, RT_CTX_INFER, mem, (size_t)need, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  ck_assert_int_eq(rt_ctx_load(c, ck, NULL), 0);
  float yo[B * OUT];
  void *out[1] = {yo};
  ck_assert_int_eq(rt_ctx_infer(c, B, in, out), 0);
  rt_ctx_destroy(c);
  free(mem);
}
END_TEST

START_TEST(test_ctx_caller_memory_and_abi) {
  char err[256];
  int64_t need = rt_ctx_memory_bytes(&tiny);
  ck_assert_int_eq(need, 256 + 256 + 64);
  void *mem = aligned_alloc(64, (size_t)need);
  ck_assert_ptr_null(rt_ctx_create_in(&tiny, 1, (char *)mem + 8, (size_t)need - 8, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "64-byte aligned"));
  ck_assert_ptr_null(rt_ctx_create_in(&tiny, 1, mem, (size_t)need - 64, err, sizeof err));
  RtCtx *c = rt_ctx_create_in(&tiny, 1, mem, (size_t)need, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  ck_assert_ptr_eq(rt_ctx_data(c, 0), mem);
  rt_ctx_init(c, 0);
  rt_ctx_destroy(c);
  free(mem);
  RtModelDesc old = tiny;
  old.abi = RT_MODEL_ABI + 1;
  ck_assert_ptr_null(rt_ctx_create(&old, 1, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "ABI"));
  RtTensorInfo broken[8];
  memcpy(broken, tiny_tensors, sizeof broken);
  broken[6].offset = 250; /* y past the io region */
  RtModelDesc bd = tiny;
  bd.tensors = broken;
  ck_assert_ptr_null(rt_ctx_create(&bd, 1, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "'y'"));
}
END_TEST

/* ---- the program main -------------------------------------------------------------------- */

START_TEST(test_main_info_init_infer) {
  ck_assert_int_eq(run_main("x", "tiny", "info", NULL), 0);
  ck_assert_ptr_nonnull(strstr(g_out, "fc.weight"));
  ck_assert_ptr_nonnull(strstr(g_out, "f32[2,3]"));
  ck_assert_ptr_nonnull(strstr(g_out, "sgd(lr=0.05, momentum=0.9)"));
  ck_assert_ptr_nonnull(strstr(g_out, "fc.weight.momentum"));
  const char *w = path_in("w.safetensors");
  ck_assert_int_eq(run_main("x", "tiny", "init", "--seed", "42", "-o", w, NULL), 0);
  RtTensorSet s = {0};
  char err[256];
  ck_assert_int_eq(rt_st_read(w, &s, err, sizeof err), 0);
  ck_assert_int_eq(s.n, 4);
  float ref[6];
  rt_init_tensor(&tiny_tensors[0], 42, ref);
  ck_assert_mem_eq(rt_set_find(&s, "fc.weight")->data, ref, sizeof ref);
  const float *W = rt_set_find(&s, "fc.weight")->data, *bias = rt_set_find(&s, "fc.bias")->data;
  enum { N = 7 };
  float x[N * IN], t[N * OUT], yref[N * OUT];
  make_data(N, x, t, 11);
  ref_forward(W, bias, x, N, yref);
  const char *px = path_in("x.npy"), *py = path_in("y.npy");
  write_npy_f32(px, 2, (int64_t[]){N, IN}, x);
  char inarg[600], outarg[600];
  snprintf(inarg, sizeof inarg, "x=%s", px);
  snprintf(outarg, sizeof outarg, "y=%s", py);
  ck_assert_msg(run_main("x", "tiny", "infer", "--weights", w, "--in", inarg, "--out", outarg,
                         "--threads", "2", NULL) == 0, "%s", g_errtxt);
  RtTensor y = {0};
  ck_assert_int_eq(rt_npy_read(py, &y, err, sizeof err), 0);
  ck_assert_int_eq(y.rank, 2);
  ck_assert_int_eq(y.shape[0], N);
  ck_assert_int_eq(y.shape[1], OUT);
  for (int i = 0; i < N * OUT; i++) ck_assert(fabsf(((float *)y.data)[i] - yref[i]) <= 1e-6f);
  rt_tensor_free(&y);
  rt_set_free(&s);
  /* --seed instead of weights; no --out prints a summary */
  ck_assert_int_eq(run_main("x", "tiny", "infer", "--seed", "42", "--in", inarg, NULL), 0);
  ck_assert_ptr_nonnull(strstr(g_out, "y: f32[7,2]"));
  /* errors: they name the file or the option, exit non-zero */
  float bad[5 * 4] = {0};
  const char *pb = path_in("bad.npy");
  write_npy_f32(pb, 2, (int64_t[]){5, 4}, bad);
  snprintf(inarg, sizeof inarg, "x=%s", pb);
  ck_assert_int_eq(run_main("x", "tiny", "infer", "--weights", w, "--in", inarg, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, pb));
  ck_assert_ptr_nonnull(strstr(g_errtxt, "f32[5,4]"));
  snprintf(inarg, sizeof inarg, "x=%s", px);
  ck_assert_int_eq(run_main("x", "tiny", "infer", "--weights", path_in("nope.safetensors"),
                            "--in", inarg, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "nope.safetensors"));
  ck_assert_int_eq(run_main("x", "tiny", "infer", "--weights", w, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "missing --in x="));
  snprintf(inarg, sizeof inarg, "z=%s", px);
  ck_assert_int_eq(run_main("x", "tiny", "infer", "--weights", w, "--in", inarg, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "no input named 'z'"));
  ck_assert_int_eq(run_main("x", "tiny", "infer", "--bogus", NULL), 2);
  ck_assert_int_eq(run_main("x", "tiny", "frobnicate", NULL), 2);
  ck_assert_int_eq(run_main("x", "tiny", "init", NULL), 2);
  ck_assert_int_eq(run_main("x", "tiny", "info", "--threads", "many", NULL), 2);
}
END_TEST

static double csv_epoch_mean(const char *path, int epoch) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char line[256];
  double sum = 0;
  int n = 0;
  ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* header */
  while (fgets(line, sizeof line, f)) {
    long step, ep;
    double l;
    if (sscanf(line, "%ld,%ld,%lf", &step, &ep, &l) == 3 && ep == epoch) {
      sum += l;
      n++;
    }
  }
  fclose(f);
  ck_assert_int_gt(n, 0);
  return sum / n;
}

START_TEST(test_main_train_and_bench) {
  enum { N = 66 }; /* 16 batches of 4, two samples left out per epoch */
  float x[N * IN], t[N * OUT];
  make_data(N, x, t, 21);
  const char *px = path_in("x.npy"), *pt = path_in("t.npy"), *w1 = path_in("w1.safetensors");
  const char *w2 = path_in("w2.safetensors"), *log = path_in("loss.csv");
  write_npy_f32(px, 2, (int64_t[]){N, IN}, x);
  write_npy_f32(pt, 2, (int64_t[]){N, OUT}, t);
  char data[1200];
  snprintf(data, sizeof data, "x=%s,t=%s", px, pt);
  ck_assert_msg(run_main("x", "tiny", "train", "--data", data, "--epochs", "4", "--save", w1,
                         "--log", log, "--seed", "3", NULL) == 0, "%s", g_errtxt);
  ck_assert_ptr_nonnull(strstr(g_out, "epoch 4/4"));
  ck_assert_ptr_nonnull(strstr(g_out, "samples/s"));
  ck_assert_ptr_nonnull(strstr(g_errtxt, "note: 2 of the 66 samples do not fill a batch of 4"));
  /* a main without the build's description of the loss refuses --val with the reason */
  ck_assert_int_ne(run_main("x", "tiny", "train", "--data", data, "--val", data, NULL), 0);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "--val: the loss of model"));
  double e1 = csv_epoch_mean(log, 1), e4 = csv_epoch_mean(log, 4);
  ck_assert_msg(e4 < 0.2 * e1, "epoch means %g -> %g", e1, e4);
  /* resume for 2 more epochs == 6 epochs straight */
  const char *log2 = path_in("loss2.csv");
  ck_assert_msg(run_main("x", "tiny", "train", "--weights", w1, "--data", data, "--epochs", "2",
                         "--save", w1, "--log", log2, "--seed", "3", "--quiet", NULL) == 0,
                "%s", g_errtxt);
  ck_assert_str_eq(g_errtxt, "");
  ck_assert_int_eq(run_main("x", "tiny", "train", "--data", data, "--epochs", "6", "--save", w2,
                            "--seed", "3", "--quiet", NULL), 0);
  RtTensorSet a = {0}, b = {0};
  char err[256];
  ck_assert_msg(rt_st_read(w1, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(rt_st_read(w2, &b, err, sizeof err) == 0, "%s", err);
  ck_assert_str_eq(rt_set_meta(&a, "nnc.step"), "96");
  for (int k = 0; k < 4; k++) {
    const char *nm = tiny_tensors[k].name;
    ck_assert_mem_eq(rt_set_find(&a, nm)->data, rt_set_find(&b, nm)->data,
                     (size_t)tiny_tensors[k].nbytes);
  }
  /* and it learned the target */
  const float *W = rt_set_find(&b, "fc.weight")->data;
  for (int i = 0; i < OUT * IN; i++) ck_assert_msg(fabsf(W[i] - A_true[i]) < 0.05f, "W[%d]=%g", i, W[i]);
  rt_set_free(&a);
  rt_set_free(&b);
  /* errors */
  ck_assert_int_eq(run_main("x", "tiny", "train", "--data", data, "--lr", "0.1", NULL), 2);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "sgd(lr=0.05"));
  snprintf(data, sizeof data, "x=%s", px);
  ck_assert_int_eq(run_main("x", "tiny", "train", "--data", data, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "missing --data t="));
  snprintf(data, sizeof data, "x=%s,t=%s", px, px);
  ck_assert_int_eq(run_main("x", "tiny", "train", "--data", data, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, px));
  float few[2 * IN] = {0};
  const char *pf = path_in("few.npy");
  write_npy_f32(pf, 2, (int64_t[]){2, IN}, few);
  snprintf(data, sizeof data, "x=%s,t=%s", pf, pt);
  ck_assert_int_eq(run_main("x", "tiny", "train", "--data", data, NULL), 1);
  ck_assert_ptr_nonnull(strstr(g_errtxt, "has 66 samples"));
  /* bench */
  ck_assert_int_eq(run_main("x", "tiny", "bench", "--iters", "5", NULL), 0);
  ck_assert_ptr_nonnull(strstr(g_out, "forward"));
  ck_assert_ptr_nonnull(strstr(g_out, "cost model"));
  ck_assert_int_eq(run_main("x", "tiny", "bench", "--train", "--iters", "5", "--threads", "2", NULL), 0);
  ck_assert_ptr_nonnull(strstr(g_out, "training step"));
  ck_assert_ptr_nonnull(strstr(g_out, "2 threads"));
}
END_TEST


/* ---- the generated header ---------------------------------------------------------------- */

static const char *embed_src =
    "#include <stdio.h>\n#include <string.h>\n#include \"tiny.h\"\n#include \"tiny_model.h\"\n"
    "_Alignas(64) static unsigned char mem[TINY_MEMORY_BYTES];\n"
    "int main(int argc, char **argv) {\n"
    "  (void)argc;\n"
    "  if (TINY_BATCH != 4 || TINY_X_DIM1 != 3 || TINY_Y_NUMEL != 8 || TINY_NUM_PARAMS != 8 ||\n"
    "      TINY_PARAMS_BYTES != 256 || TINY_MEMORY_BYTES != 576 || !TINY_HAS_TRAIN) return 10;\n"
    "  tiny_ctx *c = tiny_create_threads(2), *d = tiny_create_in(mem, sizeof mem, 1);\n"
    "  if (!c || !d || tiny_init(c, 42)) return 11;\n"
    "  float x[TINY_X_NUMEL * 3], t[TINY_T_NUMEL], y[TINY_Y_NUMEL * 3], first = 0, loss = 0;\n"
    "  for (int s = 0; s < 300; s++) {\n"
    "    for (int i = 0; i < TINY_X_NUMEL; i++) x[i] = (float)(((s * 7 + i * 13) % 17) - 8) / 8;\n"
    "    for (int n = 0; n < TINY_BATCH; n++) {\n"
    "      t[2 * n] = 0.3f + x[3 * n] - 2 * x[3 * n + 1] + 0.5f * x[3 * n + 2];\n"
    "      t[2 * n + 1] = -0.7f + 0.25f * x[3 * n] + 0.75f * x[3 * n + 1] - x[3 * n + 2];\n"
    "    }\n"
    "    loss = tiny_train_step(c, x, t);\n"
    "    if (s == 0) first = loss;\n"
    "  }\n"
    "  printf(\"loss %g -> %g, step %lld\\n\", first, loss, (long long)tiny_step(c));\n"
    "  if (!(loss < 1e-3f * first)) return 12;\n"
    "  if (tiny_save(c, argv[1]) || tiny_load(d, argv[1])) return 13;\n"
    "  for (int i = 0; i < 9; i++) x[i] = (float)i;\n"
    "  if (tiny_infer(d, 3, x, y)) return 14;\n"
    "  const float *W = tiny_tensor(d, \"fc.weight\");\n"
    "  printf(\"y[2] = %.4f %.4f, W[0] = %.4f\\n\", y[4], y[5], W[0]);\n"
    "  if (tiny_forward(d, x, y) || memcmp(tiny_tensor(d, \"y\"), y, sizeof(float) * 8)) return 15;\n"
    "  if (tiny_load(d, \"/nonexistent/w.safetensors\") == 0) return 16;\n"
    "  printf(\"error: %s\\n\", tiny_error(d));\n"
    "  tiny_destroy(c);\n  tiny_destroy(d);\n  return 0;\n}\n";

START_TEST(test_header_compiles_and_runs) {
  char *text = cg_header_text("tiny", &tiny, "x", "tiny.nn");
  ck_assert_ptr_nonnull(text);
  ck_assert_ptr_nonnull(strstr(text, "#define TINY_PARAMS_BYTES 256"));
  ck_assert_ptr_nonnull(strstr(text, "#define TINY_MEMORY_BYTES 576"));
  ck_assert_ptr_nonnull(strstr(text, "static inline int tiny_forward(tiny_ctx *ctx, const float *x, float *y)"));
  ck_assert_ptr_nonnull(strstr(text, "static inline float tiny_train_step(tiny_ctx *ctx, const float *x, const float *t)"));
  ck_assert_ptr_nonnull(strstr(text, "extern const struct RtModelDesc nnc_model_tiny;"));
  free(text);
  Diag *dg = diag_new(stderr);
  ck_assert_msg(cg_header_write(path_in("tiny.h"), "tiny", &tiny, "x", "tiny.nn", dg) == 0,
                "cg_header_write failed (diagnostic above)");
  diag_free(dg);
  FILE *f = fopen(path_in("embed.c"), "w");
  fputs(embed_src, f);
  fclose(f);
  /* the build directory holds this test and libnnc_runtime.a */
  char exe[512] = "", cmd[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ck_assert(n > 0);
  exe[n] = 0;
  *strrchr(exe, '/') = 0;
  const char *san = "";
#ifdef __SANITIZE_ADDRESS__
  san = "-fsanitize=address,undefined";
#endif
  snprintf(cmd, sizeof cmd,
           "cc -std=c11 -Wall -Wextra -Werror %s -I'%s' -I'%s/runtime' -I'%s/tests/unit' '%s' "
           "'%s/libnnc_runtime.a' -lcjson -lm -lpthread -o '%s' 2>'%s'",
           san, g_dir, NNC_SOURCE_DIR, NNC_SOURCE_DIR, path_in("embed.c"), exe, path_in("embed"),
           path_in("cc.txt"));
  int rc = system(cmd);
  if (rc) {
    char *log = rt_file_read_all(path_in("cc.txt"), &(size_t){0}, NULL, 0);
    ck_abort_msg("compiling against the header failed:\n%s", log ? log : "");
  }
  snprintf(cmd, sizeof cmd, "'%s' '%s' > '%s'", path_in("embed"), path_in("ck.safetensors"),
           path_in("out.txt"));
  rc = system(cmd);
  char *out = rt_file_read_all(path_in("out.txt"), &(size_t){0}, NULL, 0);
  ck_assert_msg(rc == 0, "embed program failed (%d): %s", rc, out ? out : "");
  /* y for x = (6,7,8) with the learned W = A, b = c */
  float yr0 = 0.3f + 6 - 2 * 7 + 0.5f * 8, yr1 = -0.7f + 0.25f * 6 + 0.75f * 7 - 8;
  float y0, y1, w0;
  const char *p = strstr(out, "y[2] = ");
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(sscanf(p, "y[2] = %f %f, W[0] = %f", &y0, &y1, &w0), 3);
  ck_assert_msg(fabsf(y0 - yr0) < 0.02f && fabsf(y1 - yr1) < 0.02f && fabsf(w0 - 1) < 0.01f,
                "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "error: /nonexistent/w.safetensors"));
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rt_program");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_philox_matches_interp);
  tcase_add_test(tc, test_init_matches_interp);
  tcase_add_test(tc, test_ctx_infer_chunks);
  tcase_add_test(tc, test_ctx_train_and_resume);
  tcase_add_test(tc, test_ctx_load_errors);
  tcase_add_test(tc, test_ctx_inference_only);
  tcase_add_test(tc, test_ctx_caller_memory_and_abi);
  tcase_add_test(tc, test_main_info_init_infer);
  tcase_add_test(tc, test_main_train_and_bench);
  tcase_add_test(tc, test_header_compiles_and_runs);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
