/* bf16_accuracy.c — what `--precision bf16` costs in accuracy, per example model: each
 * model is compiled twice for the host (f32 and bf16 GEMM inputs), both run the forward pass
 * on the same initial weights (the models' initializers, seed 1) and the same random inputs,
 * and each f32 output is compared: the largest difference relative to the largest f32
 * value, the norm-wise relative difference, and for outputs of rank >= 2 (logits) how often
 * the argmax over the last axis agrees.
 *
 * usage: bf16_accuracy [EXAMPLES_DIR]   (default: the source tree's examples/)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "frontend.h"
#include "rt_program.h"
#include "rt_threads.h"

typedef struct {
    const char *file;
    const char *defs[4];
} Example;

static const Example examples[] = {
    {"linreg.nn", {"N=256"}},
    {"mlp.nn", {"N=256"}},
    {"lenet.nn", {"N=256"}},
    {"gpt2_block.nn", {"N=4"}},
    {"char_lm.nn", {"N=16"}},
    {"inception_a.nn", {"N=8"}},
    {"resnet18.nn", {"N=8", "S=112"}},
    {"mobilenet_v2.nn", {"N=8", "S=112"}},
    {"resnet50.nn", {"N=4", "S=112"}},
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void *alloc64(int64_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (size_t)(n > 0 ? (n + 63) / 64 * 64 : 64))) return NULL;
    memset(p, 0, (size_t)(n > 0 ? n : 1));
    return p;
}

/* runs the forward pass of g built with bf16 or not; returns the io region (caller frees) */
static char *forward(IrGraph *g, bool bf16, RtPool *pool, const RtModelDesc **desc_out, CgModel **m_out) {
    Diag *d = diag_new(stderr);
    CgOptions co = {.opt_level = 2, .bf16 = bf16};
    CgModel *m = llvm_model_emit(g, NULL, NULL, &co, d);
    const RtModelDesc *desc = m ? llvm_model_jit(m, d) : NULL;
    diag_free(d);
    if (!desc) return NULL;
    char *params = alloc64(desc->params_bytes), *io = alloc64(desc->io_bytes);
    char *arena = alloc64(desc->arena_bytes_forward);
    rng = 0x9E3779B97F4A7C15ull; /* the same inputs for both builds */
    for (int j = 0; j < desc->ntensors; j++) {
        const RtTensorInfo *t = &desc->tensors[j];
        if (t->kind == RT_KIND_PARAM || t->kind == RT_KIND_BUFFER) rt_init_tensor(t, 1, params + t->offset);
        if (t->kind != RT_KIND_INPUT) continue;
        int64_t n = rt_info_numel(t);
        for (int64_t i = 0; i < n; i++) {
            if (t->dtype == DT_I32) {
                int64_t b = t->index_bound > 0 ? t->index_bound : 10;
                ((int32_t *)(io + t->offset))[i] = (int32_t)(urand() * (double)b);
            } else {
                ((float *)(io + t->offset))[i] = (float)(2 * urand() - 1);
            }
        }
    }
    RtModelBufs b = {params, io, arena, pool, 0, 1, NULL};
    desc->forward(&b);
    free(params), free(arena);
    *desc_out = desc, *m_out = m;
    return io;
}

static void compare(const char *file, const RtTensorInfo *t, const float *f, const float *b) {
    int64_t n = rt_info_numel(t), last = t->rank > 0 ? t->shape[t->rank - 1] : 1;
    double maxf = 0, maxd = 0, dd = 0, ff = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)b[i] - f[i]);
        maxf = fmax(maxf, fabs(f[i])), maxd = fmax(maxd, d);
        dd += d * d, ff += (double)f[i] * f[i];
    }
    int64_t rows = 0, agree = 0;
    for (int64_t r = 0; t->rank >= 2 && last > 1 && r < n / last; r++, rows++) {
        int64_t af = 0, ab = 0;
        for (int64_t j = 1; j < last; j++) {
            if (f[r * last + j] > f[r * last + af]) af = j;
            if (b[r * last + j] > b[r * last + ab]) ab = j;
        }
        agree += af == ab;
    }
    char argmax[64] = "-";
    if (rows) snprintf(argmax, sizeof argmax, "%.4f (%lld/%lld)", (double)agree / rows, (long long)agree, (long long)rows);
    printf("| %s | %s | %.3g | %.3g | %.3g | %s |\n", file, t->name, maxf, maxd / (maxf > 0 ? maxf : 1),
           sqrt(dd / (ff > 0 ? ff : 1)), argmax);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : NNC_SOURCE_DIR "/examples";
    RtPool *pool = rt_pool_create(1);
    printf("| model | output | max abs f32 | max abs diff / max abs f32 | norm-wise rel diff | argmax agreement |\n");
    printf("|---|---|---|---|---|---|\n");
    int rc = 0;
    for (size_t e = 0; e < sizeof examples / sizeof *examples; e++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, examples[e].file);
        int nd = 0;
        while (nd < 4 && examples[e].defs[nd]) nd++;
        FeOptions fo = {.defines = examples[e].defs, .ndefines = nd};
        Diag *d = diag_new(stderr);
        IrModule *mod = fe_compile_file(path, &fo, d);
        diag_free(d);
        const RtModelDesc *df, *db;
        CgModel *mf = NULL, *mb = NULL;
        char *iof = mod ? forward(mod->graphs[0], false, pool, &df, &mf) : NULL;
        char *iob = iof ? forward(mod->graphs[0], true, pool, &db, &mb) : NULL;
        if (!iob) {
            fprintf(stderr, "bf16_accuracy: %s failed\n", path);
            rc = 1;
        }
        for (int j = 0; iob && j < df->ntensors; j++) {
            const RtTensorInfo *t = &df->tensors[j];
            if (t->kind == RT_KIND_OUTPUT && t->dtype == DT_F32)
                compare(examples[e].file, t, (const float *)(iof + t->offset), (const float *)(iob + t->offset));
        }
        free(iof), free(iob);
        llvm_model_free(mf), llvm_model_free(mb);
        if (mod) ir_module_free(mod);
    }
    rt_pool_destroy(pool);
    return rc;
}
