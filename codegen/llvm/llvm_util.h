/* llvm_util.h — shared plumbing for the LLVM emitters, through the LLVM 19 C API only:
 * target selection (host CPU name and features by default, a --target-cpu override),
 * module verification, the new pass manager, object/assembly emission, and an ORC LLJIT
 * wrapper used by tests and by anything that runs generated kernels in-process. */
#ifndef NNC_LLVM_UTIL_H
#define NNC_LLVM_UTIL_H

#include <stddef.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

/* What code is generated for. cpu == NULL or "" or "native" means the host CPU with its
 * exact feature string; any other name means that CPU with the features LLVM implies for it
 * (plus `features`, if given, in LLVM's "+avx2,-avx512f" syntax). */
typedef struct LlvmTarget {
    const char *cpu;
    const char *features;
    int opt_level; /* 0..3; 0 in this struct means the default, 3 */
} LlvmTarget;

/* A resolved target: strings owned by the struct (free with llvm_target_info_free). */
typedef struct LlvmTargetInfo {
    char *triple;
    char *cpu;
    char *features;
    int vec_floats; /* f32 lanes of the widest vector register worth using: 16, 8 or 4 */
    int has_fma;
    int has_avx512bf16; /* vdpbf16ps (AVX512-BF16) */
    int has_amx_bf16;   /* AMX tiles with tdpbf16ps */
} LlvmTargetInfo;

/* Initializes the native target, asm printer and parser once (thread-safe). */
void llvm_util_init(void);

/* Fills `out` for `t` (NULL = host). Returns 0 or -1 with a message in err. */
int llvm_target_resolve(const LlvmTarget *t, LlvmTargetInfo *out, char *err, size_t errlen);
void llvm_target_info_free(LlvmTargetInfo *info);

/* A target machine for `t`; PIC relocations so objects link into PIE executables. */
LLVMTargetMachineRef llvm_target_machine(const LlvmTarget *t, char *err, size_t errlen);

/* Sets the module's triple and data layout from the target machine. */
void llvm_module_set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm);

/* Marks `fn` with "target-cpu"/"target-features" so it is compiled for the resolved target
 * whichever module or target machine it ends up in. */
void llvm_function_set_target(LLVMValueRef fn, const LlvmTargetInfo *info);

/* A store of v to p with `align` bytes of alignment marked !nontemporal (past the caches:
 * vmovntps on x86); the store */
LLVMValueRef llvm_store_nontemporal(LLVMBuilderRef b, LLVMValueRef v, LLVMValueRef p, unsigned align);

/* LLVMVerifyModule; 0 when valid, else -1 with the verifier's message. */
int llvm_module_verify(LLVMModuleRef mod, char *err, size_t errlen);

/* Runs "default<O{level}>" through LLVMRunPasses. 0 or -1. */
int llvm_module_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char *err,
                         size_t errlen);

/* Writes an object file (asm = 0) or assembly (asm = 1) to `path`, through a temporary file
 * in the same directory renamed into place. 0 or -1. */
int llvm_module_emit_file(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path,
                          int asm_text, char *err, size_t errlen);

/* ---- in-process JIT (ORC LLJIT) ---------------------------------------------------------- */

typedef struct LlvmJit LlvmJit;

/* A JIT for `t` (NULL = host). Symbols of the running process (libc, libm) resolve
 * automatically; symbols of statically linked code must be given with llvm_jit_define. */
LlvmJit *llvm_jit_create(const LlvmTarget *t, char *err, size_t errlen);
void llvm_jit_free(LlvmJit *jit);

/* The context modules for this JIT must be created in. */
LLVMContextRef llvm_jit_context(LlvmJit *jit);

/* The resolved target the JIT compiles for. */
const LlvmTargetInfo *llvm_jit_target(LlvmJit *jit);

/* Makes `name` resolve to `addr` in JIT'ed code. 0 or -1. */
int llvm_jit_define(LlvmJit *jit, const char *name, void *addr, char *err, size_t errlen);

/* Verifies, optimizes (level from the target, default 3) and hands the module to the JIT,
 * which takes ownership of it. 0 or -1. */
int llvm_jit_add_module(LlvmJit *jit, LLVMModuleRef mod, char *err, size_t errlen);

/* Address of a JIT'ed symbol, compiling it on first use; NULL with a message if missing. */
void *llvm_jit_lookup(LlvmJit *jit, const char *name, char *err, size_t errlen);

#endif
