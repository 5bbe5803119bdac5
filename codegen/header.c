/* header.c — writes NAME.h for `nnc build --lib`. The per-model functions are static inline
 * wrappers over the runtime's generic model context, so the header needs no code of its own
 * in the library and every size in it is a compile-time constant taken from the model's
 * descriptor (the same numbers the generated code was planned with). */
#include "header.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/rt_io.h"
#include "../runtime/rt_mem.h"

const char *cg_forward_inputs(const IrGraph *g) {
  bool *need = xcalloc((size_t)g->nnodes + 1, sizeof(bool));
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k].node >= 0 && g->outputs[k].node < g->nnodes) need[g->outputs[k].node] = true;
  ir_mark_live(g, need);
  size_t len = 1;
  for (int i = 0; i < g->nnodes; i++)
    if (need[i] && g->nodes[i].op == OP_INPUT && g->nodes[i].name)
      len += strlen(g->nodes[i].name) + 1;
  char *out = arena_alloc(g->arena, len);
  for (int i = 0; i < g->nnodes; i++)
    if (need[i] && g->nodes[i].op == OP_INPUT && g->nodes[i].name) {
      if (*out) strcat(out, ",");
      strcat(out, g->nodes[i].name);
    }
  free(need);
  return out;
}

/* node i seen through reshapes (the same elements in the same order) */
static int through_reshape(const IrGraph *g, int i) {
  while (i >= 0 && i < g->nnodes && g->nodes[i].op == OP_RESHAPE) i = g->nodes[i].in[0];
  return i;
}

/* the name of the f32 output node i is, or NULL */
static const char *output_named(const IrGraph *g, int i) {
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k].node == i && g->nodes[i].type.dt == DT_F32) return g->outputs[k].name;
  return NULL;
}

/* the name of input node i when its dtype is dt, or NULL */
static const char *input_named(const IrGraph *g, int i, DType dt) {
  const IrNode *n = i >= 0 && i < g->nnodes ? &g->nodes[i] : NULL;
  return n && n->op == OP_INPUT && n->type.dt == dt ? n->name : NULL;
}

void cg_val_loss(const IrGraph *fwd, const char *minimize, char *buf, size_t n) {
  buf[0] = 0;
  int l = minimize ? ir_find_value(fwd, minimize) : -1;
  if (l < 0 || (fwd->nodes[l].op != OP_CROSS_ENTROPY && fwd->nodes[l].op != OP_MSE)) return;
  const IrNode *ln = &fwd->nodes[l];
  int a = through_reshape(fwd, ln->in[0]), b = through_reshape(fwd, ln->in[1]);
  if (ln->op == OP_CROSS_ENTROPY) {
    const char *out = output_named(fwd, a), *lab = input_named(fwd, b, DT_I32);
    char ign[32] = "none";
    if (ln->attr.ignore) snprintf(ign, sizeof ign, "%d", ln->attr.ignore_index);
    if (out && lab) snprintf(buf, n, "cross_entropy %s %s %s %.17g", out, lab, ign, ln->attr.value);
    return;
  }
  if (!output_named(fwd, a)) { /* mse is symmetric: mse(y, pred) */
    int t = a;
    a = b;
    b = t;
  }
  const char *out = output_named(fwd, a), *tgt = input_named(fwd, b, DT_F32);
  if (out && tgt) snprintf(buf, n, "mse %s %s", out, tgt);
}

static int in_list(const char *list, const char *name) {
  if (!list) return 1;
  size_t len = strlen(name);
  for (const char *s = list; *s;) {
    const char *c = strchr(s, ',');
    size_t l = c ? (size_t)(c - s) : strlen(s);
    if (l == len && !strncmp(s, name, len)) return 1;
    s += l;
    if (*s) s++;
  }
  return 0;
}

/* a C identifier from any name */
static void ident(const char *s, char *out, size_t n, int upper) {
  size_t k = 0;
  if (isdigit((unsigned char)*s) && k + 1 < n) out[k++] = '_';
  for (; *s && k + 1 < n; s++) {
    unsigned char ch = (unsigned char)*s;
    char c = isalnum(ch) || ch == '_' ? (char)ch : '_';
    out[k++] = upper ? (char)toupper((unsigned char)c) : c;
  }
  out[k] = 0;
}

/* an argument name that cannot clash with the wrapper's own parameters or C keywords */
static void arg_ident(const char *s, char *out, size_t n) {
  static const char *const reserved[] = {"ctx", "nsamples", "in", "out", "loss", "auto", "break",
      "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
      "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
      "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
      "unsigned", "void", "volatile", "while", "bool", "class", "new", "delete", "this",
      "template", "private", "public", "operator", NULL};
  ident(s, out, n - 1, 0);
  for (const char *const *r = reserved; *r; r++)
    if (!strcmp(out, *r)) {
      strcat(out, "_");
      break;
    }
}

static const char *ctype(int dt) {
  switch (dt) {
  case DT_F32: return "float";
  case DT_F64: return "double";
  case DT_I32: return "int32_t";
  case DT_I64: return "int64_t";
  default: return "uint16_t"; /* f16, bf16: raw bits */
  }
}

/* "  if (!x) return (rt_ctx_null_arg(ctx, \"x\"), -1);": a NULL array is an error, not "use
 * what the context holds" (which rt_ctx_infer's NULL means) */
static size_t null_check(char *buf, size_t n, const char *arg, const char *fail) {
  int w = snprintf(buf, n, "  if (!%s) return (rt_ctx_null_arg(ctx, \"%s\"), %s);\n", arg, arg,
                   fail);
  return w < 0 ? 0 : (size_t)w < n ? (size_t)w : n;
}

static int64_t numel(const RtTensorInfo *t) {
  int64_t n = 1;
  for (int k = 0; k < t->rank; k++) n *= t->shape[k];
  return n;
}

static int64_t round64(int64_t n) { return (n + 63) / 64 * 64; }

static void type_str(const RtTensorInfo *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", dt_name((DType)t->dtype));
  for (int i = 0; i < t->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

static void tensor_macros(FILE *f, const char *PU, const RtModelDesc *d, const RtTensorInfo *t,
                          const char *what) {
  char N[256], ty[160];
  ident(t->name, N, sizeof N, 1);
  type_str(t, ty, sizeof ty);
  int batched = d->batch > 0 && t->rank >= 1 && t->shape[0] == d->batch;
  fprintf(f, "/* %s '%s': %s%s */\n", what, t->name, ty, batched ? ", batched" : "");
  fprintf(f, "#define %s_%s_RANK %d\n", PU, N, t->rank);
  for (int k = 0; k < t->rank; k++)
    fprintf(f, "#define %s_%s_DIM%d %lld\n", PU, N, k, (long long)t->shape[k]);
  fprintf(f, "#define %s_%s_NUMEL %lld\n", PU, N, (long long)numel(t));
  if (batched)
    fprintf(f, "#define %s_%s_PER_SAMPLE %lld\n", PU, N, (long long)(numel(t) / t->shape[0]));
  fprintf(f, "#define %s_%s_INDEX %d\n\n", PU, N, (int)(t - d->tensors));
}

/* what every part of the header needs: the names and the counts */
typedef struct Hdr {
  FILE *f;
  const RtModelDesc *d;
  char P[128], PU[128], M[128]; /* prefix, PREFIX, model name as identifiers */
  int nin, nout, has_loss;
  int64_t ntrain, arena;
} Hdr;

static void hdr_init(Hdr *h, FILE *f, const char *prefix, const RtModelDesc *d) {
  memset(h, 0, sizeof *h);
  h->f = f;
  h->d = d;
  ident(prefix, h->P, sizeof h->P, 0);
  ident(prefix, h->PU, sizeof h->PU, 1);
  ident(d->name, h->M, sizeof h->M, 0);
  for (int i = 0; i < d->ntensors; i++) {
    h->nin += d->tensors[i].kind == RT_KIND_INPUT;
    h->nout += d->tensors[i].kind == RT_KIND_OUTPUT;
    h->has_loss |= d->tensors[i].kind == RT_KIND_LOSS;
    if (d->tensors[i].kind == RT_KIND_PARAM) h->ntrain += numel(&d->tensors[i]);
  }
  h->arena = d->arena_bytes_forward > d->arena_bytes_train ? d->arena_bytes_forward
                                                           : d->arena_bytes_train;
}

/* the usage comment, the include guard and the includes */
static void hdr_intro(const Hdr *h, const char *source) {
  FILE *f = h->f;
  const RtModelDesc *d = h->d;
  const char *P = h->P, *PU = h->PU;
  fprintf(f,
          "/* %s.h — generated by `nnc build --lib` from %s (model '%s'%s%s). Do not edit.\n"
          " *\n"
          " * The plain C API of the model. Link lib%s.a and -lcjson -lm -lpthread.\n"
          " *   %s_ctx *ctx = %s_create();             (or %s_create_threads / %s_create_in)\n"
          " *   %s_init(ctx, seed) or %s_load(ctx, \"weights.safetensors\");\n"
          " *   %s_forward(ctx, inputs..., outputs...);   one batch of %s_BATCH samples\n"
          " *   %s_infer(ctx, n, inputs..., outputs...);  any number of samples\n",
          P, source ? source : "a .nn file", d->name, d->dims && *d->dims ? ", " : "",
          d->dims ? d->dims : "", P, P, P, P, P, P, P, P, PU, P);
  if (d->train_step)
    fprintf(f, " *   float loss = %s_train_step(ctx, inputs...);  one optimizer step\n", P);
  fprintf(f,
          " *   %s_save(ctx, \"checkpoint.safetensors\");  (optimizer state included)\n"
          " *   %s_destroy(ctx);\n"
          " * Functions returning int give 0 on success and -1 on failure, with the reason in\n"
          " * %s_error(ctx); train_step gives NAN then. Nothing aborts: a NULL ctx, path or array\n"
          " * is a failure (the create functions give NULL, %s_error(NULL) is \"no context\"), labels\n"
          " * and embedding indices outside their range are refused with the position at fault,\n"
          " * weights loaded must be finite, thread counts above 256 are capped at 256.\n"
          " * Arrays are dense, row-major, in the dtypes listed below. A context\n"
          " * is used by one thread at a time; it runs its kernels on its own thread pool.\n"
          " */\n"
          "#ifndef NNC_MODEL_%s_H\n#define NNC_MODEL_%s_H\n"
          "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n\n"
          "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
          P, P, P, P, PU, PU);
}

/* batch, sizes and the shape macros of every input and output */
static void hdr_macros(const Hdr *h) {
  FILE *f = h->f;
  const RtModelDesc *d = h->d;
  const char *PU = h->PU;
  fprintf(f, "#define %s_BATCH %lld\n", PU, (long long)d->batch);
  fprintf(f, "#define %s_HAS_TRAIN %d\n", PU, d->train_step ? 1 : 0);
  fprintf(f, "/* %s_train_step_allreduce exists (data-parallel training) */\n"
             "#define %s_HAS_ALLREDUCE %d\n", h->P, PU, d->train_backward ? 1 : 0);
  fprintf(f, "#define %s_NUM_PARAMS %lld /* trainable elements */\n", PU, (long long)h->ntrain);
  fprintf(f, "/* memory: weights, buffers and optimizer state; inputs and outputs; scratch */\n");
  fprintf(f, "#define %s_PARAMS_BYTES %lld\n", PU, (long long)d->params_bytes);
  fprintf(f, "#define %s_IO_BYTES %lld\n", PU, (long long)d->io_bytes);
  fprintf(f, "/* scratch planned by the compiler for each entry (the training step's includes any\n"
             " * rematerialization nnc build --memory chose); a training context allocates the\n"
             " * larger */\n");
  fprintf(f, "#define %s_ARENA_BYTES_FORWARD %lld\n", PU, (long long)d->arena_bytes_forward);
  fprintf(f, "#define %s_ARENA_BYTES_TRAIN %lld\n", PU, (long long)d->arena_bytes_train);
  fprintf(f, "#define %s_ARENA_BYTES %lld\n", PU, (long long)h->arena);
  if (d->train_step)
    fprintf(f, "/* what a training step holds (a budget bounds it with the runtime: info) */\n"
               "#define %s_TRAIN_STEP_BYTES %lld\n", PU,
            (long long)(d->params_bytes + d->io_bytes + d->arena_bytes_train));
  fprintf(f, "/* all three, each rounded up to 64 bytes: the size %s_create_in takes */\n", h->P);
  fprintf(f, "#define %s_MEMORY_BYTES %lld\n", PU,
          (long long)(round64(d->params_bytes) + round64(d->io_bytes) + round64(h->arena)));
  RtMemFigures fig;
  rt_mem_figures(d, &fig);
  fprintf(f, "/* what inference needs: weights and buffers (no optimizer state), io, the forward\n"
             " * arena; what %s_create_infer allocates and %s_create_in_infer takes */\n"
             "#define %s_INFER_BYTES %lld\n",
          h->P, h->P, PU, (long long)rt_mem_infer_ctx(&fig));
  fprintf(f, "/* scratch each thread allocates for the largest matrix product of an entry */\n"
             "#define %s_THREAD_BYTES_FORWARD %lld\n#define %s_THREAD_BYTES_TRAIN %lld\n\n",
          PU, (long long)d->thread_bytes_forward, PU, (long long)d->thread_bytes_train);
  for (int i = 0; i < d->ntensors; i++)
    if (d->tensors[i].kind == RT_KIND_INPUT) tensor_macros(f, PU, d, &d->tensors[i], "input");
  for (int i = 0; i < d->ntensors; i++)
    if (d->tensors[i].kind == RT_KIND_OUTPUT) tensor_macros(f, PU, d, &d->tensors[i], "output");
}

/* the runtime's generic API (runtime/rt_program.h), declared here so that the header is
 * self-contained; identical redeclarations when several model headers are included */
static void hdr_runtime_api(const Hdr *h) {
  fprintf(h->f,
          "struct RtModelDesc;\nstruct RtCtx;\n"
          "struct RtCtx *rt_ctx_create(const struct RtModelDesc *d, int nthreads, char *err, "
          "size_t errlen);\n"
          "struct RtCtx *rt_ctx_create_in(const struct RtModelDesc *d, int nthreads, void *mem, "
          "size_t size, char *err, size_t errlen);\n"
          "struct RtCtx *rt_ctx_create_ex(const struct RtModelDesc *d, int nthreads, unsigned "
          "flags, void *mem, size_t size, char *err, size_t errlen);\n"
          "void rt_ctx_destroy(struct RtCtx *c);\n"
          "const char *rt_ctx_error(const struct RtCtx *c);\n"
          "int rt_ctx_find(const struct RtCtx *c, const char *name);\n"
          "void *rt_ctx_data(struct RtCtx *c, int idx);\n"
          "int rt_ctx_init(struct RtCtx *c, uint64_t seed);\n"
          "int rt_ctx_load(struct RtCtx *c, const char *path, int *nunknown);\n"
          "int rt_ctx_save(struct RtCtx *c, const char *path, const char *extra_meta_json);\n"
          "int64_t rt_ctx_step(const struct RtCtx *c);\n"
          "int rt_ctx_infer(struct RtCtx *c, int64_t n, const void *const *in, void *const "
          "*out);\n"
          "int rt_ctx_train_step(struct RtCtx *c, const void *const *in, float *loss);\n"
          "int rt_ctx_train_step_allreduce(struct RtCtx *c, const void *const *in, int (*fn)(float "
          "*buf, size_t count, void *user), void *user, float *loss);\n"
          "int rt_ctx_train_step_overlap(struct RtCtx *c, const void *const *in, int (*start)("
          "float *buf, size_t count, void *user), int (*wait)(void *user), void *user, float "
          "*loss);\n"
          "void rt_ctx_set_bucket_bytes(struct RtCtx *c, int64_t bytes);\n"
          "void rt_ctx_set_stats_sum(struct RtCtx *c, int (*sum)(double *buf, int64_t n, void "
          "*user), void *user);\n"
          "int rt_ctx_null_arg(struct RtCtx *c, const char *arg);\n\n"
          "extern const struct RtModelDesc nnc_model_%s;\n"
          "typedef struct RtCtx %s_ctx;\n\n",
          h->M, h->P);
}

/* create, destroy, init, load, save, tensor access */
static void hdr_ctx_wrappers(const Hdr *h) {
  const char *P = h->P, *PU = h->PU, *M = h->M;
  fprintf(h->f,
          "/* nthreads: threads for the kernels, the caller included; 0 = one per CPU */\n"
          "static inline %s_ctx *%s_create_threads(int nthreads) {\n"
          "  return rt_ctx_create(&nnc_model_%s, nthreads, NULL, 0);\n}\n"
          "static inline %s_ctx *%s_create(void) { return %s_create_threads(0); }\n"
          "/* in caller memory: %s_MEMORY_BYTES bytes, 64-byte aligned, kept until destroy */\n"
          "static inline %s_ctx *%s_create_in(void *mem, size_t size, int nthreads) {\n"
          "  return rt_ctx_create_in(&nnc_model_%s, nthreads, mem, size, NULL, 0);\n}\n"
          "/* inference only: no optimizer state, no training arena (%s_INFER_BYTES); a\n"
          " * checkpoint's optimizer tensors are not read, and %s_train_step fails */\n"
          "static inline %s_ctx *%s_create_infer(int nthreads) {\n"
          "  return rt_ctx_create_ex(&nnc_model_%s, nthreads, 1u, NULL, 0, NULL, 0);\n}\n"
          "static inline %s_ctx *%s_create_in_infer(void *mem, size_t size, int nthreads) {\n"
          "  return rt_ctx_create_ex(&nnc_model_%s, nthreads, 1u, mem, size, NULL, 0);\n}\n"
          "static inline void %s_destroy(%s_ctx *ctx) { rt_ctx_destroy(ctx); }\n"
          "static inline const char *%s_error(const %s_ctx *ctx) { return rt_ctx_error(ctx); }\n"
          "/* parameters from their initializers, as `nnc run --seed` and `NAME init` do */\n"
          "static inline int %s_init(%s_ctx *ctx, uint64_t seed) { return rt_ctx_init(ctx, seed); }\n"
          "/* safetensors with PyTorch-style names; optimizer state optional */\n"
          "static inline int %s_load(%s_ctx *ctx, const char *path) {\n"
          "  return rt_ctx_load(ctx, path, NULL);\n}\n"
          "static inline int %s_save(%s_ctx *ctx, const char *path) {\n"
          "  return rt_ctx_save(ctx, path, NULL);\n}\n"
          "/* any tensor by name (\"fc1.weight\", \"x\", ...) inside the context, or NULL */\n"
          "static inline void *%s_tensor(%s_ctx *ctx, const char *name) {\n"
          "  return rt_ctx_data(ctx, rt_ctx_find(ctx, name));\n}\n"
          "static inline int64_t %s_step(const %s_ctx *ctx) { return rt_ctx_step(ctx); }\n\n",
          P, P, M, P, P, P, PU, P, P, M, PU, P, P, P, M, P, P, M, P, P, P, P, P, P, P, P, P, P, P,
          P, P, P);
}

/* per-kernel profiling (runtime/rt_profile.h), declared with the wrappers so that the
 * runtime API block above stays the list every header repeats */
static void hdr_profile(const Hdr *h) {
  const char *P = h->P;
  fprintf(h->f,
          "int rt_ctx_profile(struct RtCtx *c, int on);\n"
          "int rt_ctx_profile_last(const struct RtCtx *c, int train, double *secs, int n);\n"
          "const char *rt_ctx_kernel_name(const struct RtCtx *c, int train, int i, double "
          "*est_s);\n"
          "/* per-kernel profiling: on (1), each step stores a timestamp before each kernel\n"
          " * (a clock read per kernel); off (0, the default) costs nothing measurable */\n"
          "static inline int %s_profile(%s_ctx *ctx, int on) { return rt_ctx_profile(ctx, on); }\n"
          "/* the seconds each kernel of the last forward (train 0) or training step (1) took,\n"
          " * at most n; returns the count of kernels */\n"
          "static inline int %s_profile_last(const %s_ctx *ctx, int train, double *secs, int n) {\n"
          "  return rt_ctx_profile_last(ctx, train, secs, n);\n}\n"
          "/* kernel i's name (\"k3 gemm fc1\") and the cost model's estimate for it on the\n"
          " * context's threads (est_s may be NULL); NULL past the last kernel */\n"
          "static inline const char *%s_kernel_name(const %s_ctx *ctx, int train, int i, "
          "double *est_s) {\n  return rt_ctx_kernel_name(ctx, train, i, est_s);\n}\n\n",
          P, P, P, P, P, P);
}

/* an entry's arguments: its parameter list, the in[] initializer and the NULL checks */
typedef struct EntryArgs {
  char params[4096], inarr[2048], nulls[4096];
  size_t pk, nk;
} EntryArgs;

/* the inputs: all of them, or only those the forward pass reads (fwd_inputs), the others
 * passed as 0; fail: what a NULL array returns */
static void input_args(const RtModelDesc *d, const char *fwd_inputs, bool all, const char *fail,
                       EntryArgs *ea) {
  char a[160];
  size_t ik = 0;
  memset(ea, 0, sizeof *ea);
  for (int i = 0, k = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (t->kind != RT_KIND_INPUT) continue;
    arg_ident(t->name, a, sizeof a);
    int used = all || in_list(fwd_inputs, t->name);
    if (used) {
      ea->pk += (size_t)snprintf(ea->params + ea->pk, sizeof ea->params - ea->pk,
                                 ", const %s *%s", ctype(t->dtype), a);
      ea->nk += null_check(ea->nulls + ea->nk, sizeof ea->nulls - ea->nk, a, fail);
    }
    ik += (size_t)snprintf(ea->inarr + ik, sizeof ea->inarr - ik, "%s%s", k++ ? ", " : "",
                           used ? a : "0");
  }
}

/* forward and infer: the inputs the forward pass reads, then every output */
static void hdr_forward(const Hdr *h, const char *fwd_inputs) {
  const RtModelDesc *d = h->d;
  const char *P = h->P, *PU = h->PU;
  EntryArgs ea;
  char outarr[2048] = "", a[160];
  size_t ok = 0;
  input_args(d, fwd_inputs, false, "-1", &ea);
  for (int i = 0, k = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (t->kind != RT_KIND_OUTPUT) continue;
    arg_ident(t->name, a, sizeof a);
    ea.pk += (size_t)snprintf(ea.params + ea.pk, sizeof ea.params - ea.pk, ", %s *%s",
                              ctype(t->dtype), a);
    ea.nk += null_check(ea.nulls + ea.nk, sizeof ea.nulls - ea.nk, a, "-1");
    ok += (size_t)snprintf(outarr + ok, sizeof outarr - ok, "%s%s", k++ ? ", " : "", a);
  }
  int nin = h->nin, nout = h->nout;
  fprintf(h->f,
          "/* forward pass over nsamples samples (batched arrays hold nsamples rows; the work is\n"
          " * done in chunks of %s_BATCH, the last one padded) */\n"
          "static inline int %s_infer(%s_ctx *ctx, int64_t nsamples%s) {\n%s"
          "  const void *in[%d] = {%s};\n  void *out[%d] = {%s};\n"
          "  return rt_ctx_infer(ctx, nsamples, in, out);\n}\n"
          "/* forward pass over one batch of %s_BATCH samples */\n"
          "static inline int %s_forward(%s_ctx *ctx%s) {\n%s"
          "  const void *in[%d] = {%s};\n  void *out[%d] = {%s};\n"
          "  return rt_ctx_infer(ctx, %s_BATCH > 0 ? %s_BATCH : 1, in, out);\n}\n\n",
          PU, P, P, ea.params, ea.nulls, nin ? nin : 1, nin ? ea.inarr : "0", nout ? nout : 1,
          nout ? outarr : "0", PU, P, P, ea.params, ea.nulls, nin ? nin : 1,
          nin ? ea.inarr : "0", nout ? nout : 1, nout ? outarr : "0", PU, PU);
}

/* the training step over every input */
static void hdr_train_step(const Hdr *h) {
  const RtModelDesc *d = h->d;
  EntryArgs ea;
  input_args(d, NULL, true, "(float)NAN", &ea);
  fprintf(h->f,
          "/* one training step (forward, backward, %s) on one batch of %s_BATCH\n"
          " * samples; returns the %s, or NAN on failure (see %s_error) */\n"
          "static inline float %s_train_step(%s_ctx *ctx%s) {\n%s"
          "  const void *in[%d] = {%s};\n  float loss = 0;\n"
          "  return rt_ctx_train_step(ctx, in, &loss) ? (float)NAN : loss;\n}\n\n",
          d->optimizer && *d->optimizer ? d->optimizer : "optimizer update", h->PU,
          h->has_loss ? "loss" : "value 0 (the model has no loss tensor)", h->P, h->P, h->P,
          ea.params, ea.nulls, h->nin ? h->nin : 1, h->nin ? ea.inarr : "0");
  if (!d->train_backward) return;
  fprintf(h->f,
          "/* the training step of one of P processes training data-parallel, each on its own\n"
          " * batch: between the backward pass and the optimizer step, allreduce(buf, count,\n"
          " * user) is called on the gradients, in buckets of up to 25 MiB, and must replace\n"
          " * buf[0..count) by its mean over the processes (e.g. MPI_Allreduce with MPI_SUM,\n"
          " * then a division by P; NCCL, Gloo alike) and return 0, or non-zero on failure.\n"
          " * Every process makes the same calls in the same order. Returns this process's\n"
          " * loss, or NAN on failure (the weights then are not updated). allreduce NULL: the\n"
          " * same as %s_train_step. */\n"
          "static inline float %s_train_step_allreduce(%s_ctx *ctx%s, int (*allreduce)(float "
          "*buf, size_t count, void *user), void *user) {\n%s"
          "  const void *in[%d] = {%s};\n  float loss = 0;\n"
          "  return rt_ctx_train_step_allreduce(ctx, in, allreduce, user, &loss) ? (float)NAN "
          ": loss;\n}\n\n",
          h->P, h->P, h->P, ea.params, ea.nulls, h->nin ? h->nin : 1, h->nin ? ea.inarr : "0");
  fprintf(h->f,
          "/* the same with the all-reduce overlapping the backward pass: start(buf, count,\n"
          " * user) is called for each bucket as soon as the backward pass has finished its\n"
          " * gradients and must begin replacing buf[0..count) by its mean and return at once\n"
          " * (0, or non-zero on failure); the step does not touch buf until wait(user) has\n"
          " * completed every started bucket. The same buckets and buffers as\n"
          " * %s_train_step_allreduce, in the same order in every process. */\n"
          "static inline float %s_train_step_overlap(%s_ctx *ctx%s, int (*start)(float *buf, "
          "size_t count, void *user), int (*wait)(void *user), void *user) {\n%s"
          "  const void *in[%d] = {%s};\n  float loss = 0;\n"
          "  return rt_ctx_train_step_overlap(ctx, in, start, wait, user, &loss) ? (float)NAN "
          ": loss;\n}\n\n",
          h->P, h->P, h->P, ea.params, ea.nulls, h->nin ? h->nin : 1, h->nin ? ea.inarr : "0");
  if (!d->sync_bn) return;
  fprintf(h->f,
          "/* synchronized batchnorm (built with --sync-bn): sum(buf, n, user) must replace\n"
          " * buf[0..n) by its sum over the processes (MPI_Allreduce of MPI_DOUBLE with\n"
          " * MPI_SUM) and return 0, or non-zero to fail the step; the training steps then use\n"
          " * the statistics of the global batch. Not set: each process's own. */\n"
          "static inline void %s_set_sync_bn(%s_ctx *ctx, int (*sum)(double *buf, int64_t n, "
          "void *user), void *user) {\n  rt_ctx_set_stats_sum(ctx, sum, user);\n}\n\n",
          h->P, h->P);
}

char *cg_header_text(const char *prefix, const RtModelDesc *d, const char *fwd_inputs,
                     const char *source) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  Hdr h;
  hdr_init(&h, f, prefix, d);
  hdr_intro(&h, source);
  hdr_macros(&h);
  hdr_runtime_api(&h);
  hdr_ctx_wrappers(&h);
  hdr_profile(&h);
  hdr_forward(&h, fwd_inputs);
  if (d->train_step) hdr_train_step(&h);
  fprintf(f, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
  if (fclose(f)) {
    free(buf);
    return NULL;
  }
  return buf;
}

int cg_header_write(const char *path, const char *prefix, const RtModelDesc *d,
                    const char *fwd_inputs, const char *source, Diag *dg) {
  char *text = cg_header_text(prefix, d, fwd_inputs, source);
  if (!text) {
    diag_error_file(dg, path, "out of memory");
    return -1;
  }
  const void *parts[1] = {text};
  size_t sizes[1] = {strlen(text)};
  char err[1024] = "";
  int rc = rt_file_write_atomic(path, parts, sizes, 1, err, sizeof err);
  free(text);
  if (rc) diag_error_file(dg, NULL, "%s", err); /* err names the path already */
  return rc;
}
