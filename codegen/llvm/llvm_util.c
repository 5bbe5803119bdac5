/* llvm_util.c — target machines, verification, the new pass manager, object emission and
 * an ORC LLJIT wrapper, all through the LLVM 19 C API. */
#include "llvm_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

static void llvm_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Consumes an LLVMErrorRef; returns -1 if it was an error, with its message in err. */
static int llvm_take_error(LLVMErrorRef e, const char *what, char *err, size_t errlen) {
    if (!e) return 0;
    char *msg = LLVMGetErrorMessage(e);
    llvm_seterr(err, errlen, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
}

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static void llvm_init_once(void) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
}
void llvm_util_init(void) { pthread_once(&llvm_once, llvm_init_once); }

/* ---- target resolution ------------------------------------------------------------------ */

static int llvm_is_host(const LlvmTarget *t) {
    return !t || !t->cpu || !t->cpu[0] || strcmp(t->cpu, "native") == 0;
}

/* 1 if "+name" appears as a whole entry of an LLVM feature string, -1 for "-name", 0 if
 * absent. The last mention wins, as in LLVM. */
static int llvm_feature(const char *features, const char *name) {
    int state = 0;
    size_t n = strlen(name);
    for (const char *p = features; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n + 1 && (p[0] == '+' || p[0] == '-') && strncmp(p + 1, name, n) == 0)
            state = p[0] == '+' ? 1 : -1;
        p = end ? end + 1 : p + len;
    }
    return state;
}

static int llvm_name_in(const char *cpu, const char *const *list) {
    for (; *list; list++)
        if (strcmp(cpu, *list) == 0) return 1;
    return 0;
}

/* Vector width implied by a named x86 CPU when no explicit features are given. LLVM's C API
 * cannot report a named CPU's features, so the common names are listed here; an unknown
 * name falls back to 128-bit vectors, which every x86-64 and AArch64 CPU has. */
static void llvm_cpu_vector_guess(const char *cpu, int *vec, int *fma) {
    static const char *const avx512[] = {
        "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
        "icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
        "graniterapids", "graniterapids-d", "znver4", "znver5", "x86-64-v4", "knl", "knm", NULL};
    static const char *const avx2[] = {
        "haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake",
        "arrowlake", "arrowlake-s", "lunarlake", "gracemont", "sierraforest", "grandridge",
        "clearwaterforest", "pantherlake", "znver1", "znver2", "znver3", "x86-64-v3",
        "bdver2", "bdver3", "bdver4", NULL};
    static const char *const avx[] = {"sandybridge", "ivybridge", "btver2", "bdver1", NULL};
    *fma = 0;
    if (llvm_name_in(cpu, avx512)) {
        *vec = 16;
        *fma = 1;
    } else if (llvm_name_in(cpu, avx2)) {
        *vec = 8;
        *fma = 1;
    } else if (llvm_name_in(cpu, avx)) {
        *vec = 8;
    } else {
        *vec = 4;
    }
}

/* AVX512-BF16 and AMX-BF16: the host's feature string, or the named CPU's (the names LLVM
 * gives these features to), refined by explicit features */
static void llvm_bf16_features(LlvmTargetInfo *out, int host) {
    static const char *const amx[] = {"sapphirerapids", "emeraldrapids", "graniterapids",
                                      "graniterapids-d", NULL};
    static const char *const bf16[] = {"cooperlake", "sapphirerapids", "emeraldrapids",
                                       "graniterapids", "graniterapids-d", "znver4", "znver5", NULL};
    const char *f = out->features;
    if (!host) {
        out->has_amx_bf16 = llvm_name_in(out->cpu, amx);
        out->has_avx512bf16 = llvm_name_in(out->cpu, bf16);
    }
    if (llvm_feature(f, "avx512bf16")) out->has_avx512bf16 = llvm_feature(f, "avx512bf16") > 0;
    if (llvm_feature(f, "amx-bf16")) out->has_amx_bf16 = llvm_feature(f, "amx-bf16") > 0;
    if (out->vec_floats < 16) out->has_avx512bf16 = 0;
}

int llvm_target_resolve(const LlvmTarget *t, LlvmTargetInfo *out, char *err, size_t errlen) {
    llvm_util_init();
    memset(out, 0, sizeof *out);
    char *triple = LLVMGetDefaultTargetTriple();
    out->triple = strdup(triple);
    LLVMDisposeMessage(triple);
    int host = llvm_is_host(t);
    if (host) {
        char *cpu = LLVMGetHostCPUName();
        char *feat = LLVMGetHostCPUFeatures();
        out->cpu = strdup(cpu);
        size_t extra = t && t->features ? strlen(t->features) + 1 : 0;
        out->features = malloc(strlen(feat) + extra + 1);
        if (out->features) {
            strcpy(out->features, feat);
            if (extra) {
                if (out->features[0]) strcat(out->features, ",");
                strcat(out->features, t->features);
            }
        }
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(feat);
    } else {
        out->cpu = strdup(t->cpu);
        out->features = strdup(t->features ? t->features : "");
    }
    if (!out->triple || !out->cpu || !out->features) {
        llvm_target_info_free(out);
        llvm_seterr(err, errlen, "out of memory");
        return -1;
    }
    const char *f = out->features;
    int is_x86 = strncmp(out->triple, "x86_64", 6) == 0 || strncmp(out->triple, "i686", 4) == 0;
    if (host) {
        out->vec_floats = llvm_feature(f, "avx512f") > 0 ? 16 : llvm_feature(f, "avx") > 0 ? 8 : 4;
        out->has_fma = llvm_feature(f, "fma") > 0 || llvm_feature(f, "avx512f") > 0 ||
                       llvm_feature(f, "neon") > 0 || (!is_x86 && strstr(out->triple, "aarch64"));
    } else {
        if (is_x86) {
            llvm_cpu_vector_guess(out->cpu, &out->vec_floats, &out->has_fma);
        } else {
            out->vec_floats = 4;
            out->has_fma = strstr(out->triple, "aarch64") != NULL;
        }
        /* explicit features refine the guess */
        if (llvm_feature(f, "avx512f") > 0) out->vec_floats = 16, out->has_fma = 1;
        else if (llvm_feature(f, "avx512f") < 0 && out->vec_floats > 8) out->vec_floats = 8;
        if (llvm_feature(f, "avx2") > 0 && out->vec_floats < 8) out->vec_floats = 8;
        if (llvm_feature(f, "fma") > 0) out->has_fma = 1;
        if (llvm_feature(f, "fma") < 0) out->has_fma = 0;
        if ((llvm_feature(f, "avx") < 0 || llvm_feature(f, "avx2") < 0) && out->vec_floats > 4)
            out->vec_floats = 4;
    }
    llvm_bf16_features(out, host);
    (void)err;
    return 0;
}

void llvm_target_info_free(LlvmTargetInfo *info) {
    if (!info) return;
    free(info->triple);
    free(info->cpu);
    free(info->features);
    memset(info, 0, sizeof *info);
}

static LLVMCodeGenOptLevel llvm_cg_level(int level) {
    switch (level) {
    case 0: return LLVMCodeGenLevelNone;
    case 1: return LLVMCodeGenLevelLess;
    case 2: return LLVMCodeGenLevelDefault;
    default: return LLVMCodeGenLevelAggressive;
    }
}

static int llvm_opt_level(const LlvmTarget *t) {
    return t && t->opt_level > 0 && t->opt_level <= 3 ? t->opt_level : 3;
}

static LLVMTargetMachineRef llvm_tm_from_info(const LlvmTargetInfo *info, int level, char *err,
                                              size_t errlen) {
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(info->triple, &target, &msg)) {
        llvm_seterr(err, errlen, "target %s: %s", info->triple, msg ? msg : "unknown");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(target, info->triple, info->cpu, info->features,
                                llvm_cg_level(level), LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm) llvm_seterr(err, errlen, "cannot create a target machine for cpu '%s'", info->cpu);
    return tm;
}

LLVMTargetMachineRef llvm_target_machine(const LlvmTarget *t, char *err, size_t errlen) {
    LlvmTargetInfo info;
    if (llvm_target_resolve(t, &info, err, errlen) != 0) return NULL;
    LLVMTargetMachineRef tm = llvm_tm_from_info(&info, llvm_opt_level(t), err, errlen);
    llvm_target_info_free(&info);
    return tm;
}

void llvm_module_set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, td);
    LLVMDisposeTargetData(td);
}

void llvm_function_set_target(LLVMValueRef fn, const LlvmTargetInfo *info) {
    LLVMContextRef ctx = LLVMGetTypeContext(LLVMTypeOf(fn));
    LLVMAttributeRef a = LLVMCreateStringAttribute(ctx, "target-cpu", 10, info->cpu,
                                                   (unsigned)strlen(info->cpu));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
    if (info->features[0]) {
        a = LLVMCreateStringAttribute(ctx, "target-features", 15, info->features,
                                      (unsigned)strlen(info->features));
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
    }
}

int llvm_module_verify(LLVMModuleRef mod, char *err, size_t errlen) {
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        llvm_seterr(err, errlen, "invalid LLVM module: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return -1;
    }
    LLVMDisposeMessage(msg);
    return 0;
}

int llvm_module_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char *err,
                         size_t errlen) {
    if (level < 0) level = 0;
    if (level > 3) level = 3;
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, level >= 2);
    LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    return llvm_take_error(e, "LLVMRunPasses", err, errlen);
}

int llvm_module_emit_file(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path,
                          int asm_text, char *err, size_t errlen) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        llvm_seterr(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, tmp, asm_text ? LLVMAssemblyFile : LLVMObjectFile,
                                    &msg)) {
        llvm_seterr(err, errlen, "cannot write %s: %s", path, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        remove(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        llvm_seterr(err, errlen, "cannot rename %s to %s", tmp, path);
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* ---- JIT -------------------------------------------------------------------------------- */

struct LlvmJit {
    LLVMOrcLLJITRef jit;
    LLVMOrcThreadSafeContextRef tsc;
    LLVMTargetMachineRef opt_tm; /* for the pass pipeline; the JIT owns its own copy */
    LlvmTargetInfo info;
    int opt_level;
};

LlvmJit *llvm_jit_create(const LlvmTarget *t, char *err, size_t errlen) {
    llvm_util_init();
    LlvmJit *j = calloc(1, sizeof *j);
    if (!j) {
        llvm_seterr(err, errlen, "out of memory");
        return NULL;
    }
    j->opt_level = llvm_opt_level(t);
    if (llvm_target_resolve(t, &j->info, err, errlen) != 0) {
        free(j);
        return NULL;
    }
    LLVMTargetMachineRef jit_tm = llvm_tm_from_info(&j->info, j->opt_level, err, errlen);
    j->opt_tm = jit_tm ? llvm_tm_from_info(&j->info, j->opt_level, err, errlen) : NULL;
    if (!jit_tm || !j->opt_tm) {
        if (jit_tm) LLVMDisposeTargetMachine(jit_tm);
        llvm_jit_free(j);
        return NULL;
    }
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm));
    if (llvm_take_error(LLVMOrcCreateLLJIT(&j->jit, b), "cannot create the JIT", err, errlen)) {
        j->jit = NULL;
        llvm_jit_free(j);
        return NULL;
    }
    LLVMOrcDefinitionGeneratorRef gen;
    if (llvm_take_error(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                            &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL),
                        "process symbols", err, errlen)) {
        llvm_jit_free(j);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
    j->tsc = LLVMOrcCreateNewThreadSafeContext();
    return j;
}

void llvm_jit_free(LlvmJit *j) {
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    if (j->tsc) LLVMOrcDisposeThreadSafeContext(j->tsc);
    if (j->opt_tm) LLVMDisposeTargetMachine(j->opt_tm);
    llvm_target_info_free(&j->info);
    free(j);
}

LLVMContextRef llvm_jit_context(LlvmJit *j) { return LLVMOrcThreadSafeContextGetContext(j->tsc); }

const LlvmTargetInfo *llvm_jit_target(LlvmJit *j) { return &j->info; }

int llvm_jit_define(LlvmJit *j, const char *name, void *addr, char *err, size_t errlen) {
    LLVMOrcCSymbolMapPair pair;
    pair.Name = LLVMOrcLLJITMangleAndIntern(j->jit, name);
    pair.Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)addr;
    pair.Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported |
                                  LLVMJITSymbolGenericFlagsCallable;
    pair.Sym.Flags.TargetFlags = 0;
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(&pair, 1);
    return llvm_take_error(LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(j->jit), mu), name,
                           err, errlen);
}

int llvm_jit_add_module(LlvmJit *j, LLVMModuleRef mod, char *err, size_t errlen) {
    llvm_module_set_target(mod, j->opt_tm);
    if (llvm_module_verify(mod, err, errlen) != 0 ||
        llvm_module_optimize(mod, j->opt_tm, j->opt_level, err, errlen) != 0) {
        LLVMDisposeModule(mod);
        return -1;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, j->tsc);
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (e) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return llvm_take_error(e, "adding a module to the JIT", err, errlen);
    }
    return 0;
}

void *llvm_jit_lookup(LlvmJit *j, const char *name, char *err, size_t errlen) {
    LLVMOrcExecutorAddress addr = 0;
    if (llvm_take_error(LLVMOrcLLJITLookup(j->jit, &addr, name), name, err, errlen)) return NULL;
    return (void *)(uintptr_t)addr;
}

LLVMValueRef llvm_store_nontemporal(LLVMBuilderRef b, LLVMValueRef v, LLVMValueRef p, unsigned align) {
    LLVMContextRef ctx = LLVMGetTypeContext(LLVMTypeOf(v));
    LLVMValueRef st = LLVMBuildStore(b, v, p);
    LLVMSetAlignment(st, align);
    LLVMMetadataRef one = LLVMValueAsMetadata(LLVMConstInt(LLVMInt32TypeInContext(ctx), 1, 0));
    LLVMSetMetadata(st, LLVMGetMDKindIDInContext(ctx, "nontemporal", 11),
                    LLVMMetadataAsValue(ctx, LLVMMDNodeInContext2(ctx, &one, 1)));
    return st;
}
