/* cuda_prelude.c — the device prelude every generated CUDA source starts with.
 *
 * Generated kernels never contain inline PTX: they call the small nnc_* wrappers below
 * (tensor-core MMA, ldmatrix, cp.async, shuffles, barriers, 16-bit float conversions). On the
 * device (NVRTC) the wrappers are inline PTX; when NNC_CUDA_EMU is defined the source is
 * compiled by the host C++ compiler and codegen/cuda/cuda_emu.h supplies the same wrappers
 * as C++ with the PTX ISA's fragment layouts, so one text runs in both places. */
#include <stdarg.h>

#include "cuda_gen.h"

int cuda_errf(char *err, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
  return -1;
}

const char *cuda_prelude_text(void) {
  return "/* nnc device prelude */\n"
         "#ifdef NNC_CUDA_EMU\n"
         "#include \"cuda_emu.h\"\n"
         "#else\n"
         "#define NNC_DEV static __device__ __forceinline__\n"
         "#define NNC_EXTERN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]\n"
         "#define NNC_UNROLL _Pragma(\"unroll\")\n"
         "NNC_DEV unsigned nnc_smem_u32(const void *p) {\n"
         "  return (unsigned)__cvta_generic_to_shared(p);\n"
         "}\n"
         "NNC_DEV void nnc_syncthreads(void) { __syncthreads(); }\n"
         "NNC_DEV float nnc_shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }\n"
         "NNC_DEV void nnc_mma_m16n8k8_tf32(float *d, const unsigned *a, const unsigned *b) {\n"
         "  asm volatile(\"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 \"\n"
         "               \"{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n\"\n"
         "               : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
         "               : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
         "}\n"
         "#define NNC_MMA_16816(fn, ty)                                                     \\\n"
         "  NNC_DEV void fn(float *d, const unsigned *a, const unsigned *b) {              \\\n"
         "    asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.\" ty \".\" ty \".f32 \"      \\\n"
         "                 \"{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n\"      \\\n"
         "                 : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])               \\\n"
         "                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1])); \\\n"
         "  }\n"
         "NNC_MMA_16816(nnc_mma_m16n8k16_bf16, \"bf16\")\n"
         "NNC_MMA_16816(nnc_mma_m16n8k16_f16, \"f16\")\n"
         "NNC_DEV void nnc_ldmatrix_x4(unsigned *r, const void *p) {\n"
         "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\\n\"\n"
         "               : \"=r\"(r[0]), \"=r\"(r[1]), \"=r\"(r[2]), \"=r\"(r[3]) : \"r\"(nnc_smem_u32(p)));\n"
         "}\n"
         "NNC_DEV void nnc_ldmatrix_x4_trans(unsigned *r, const void *p) {\n"
         "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\\n\"\n"
         "               : \"=r\"(r[0]), \"=r\"(r[1]), \"=r\"(r[2]), \"=r\"(r[3]) : \"r\"(nnc_smem_u32(p)));\n"
         "}\n"
         "NNC_DEV void nnc_cp_async16(void *dst, const void *src, int src_bytes) {\n"
         "  asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\"\n"
         "               :: \"r\"(nnc_smem_u32(dst)), \"l\"(src), \"r\"(src_bytes));\n"
         "}\n"
         "NNC_DEV void nnc_cp_async_commit(void) { asm volatile(\"cp.async.commit_group;\\n\"); }\n"
         "template <int N> NNC_DEV void nnc_cp_async_wait(void) {\n"
         "  asm volatile(\"cp.async.wait_group %0;\\n\" :: \"n\"(N));\n"
         "}\n"
         "NNC_DEV unsigned nnc_f32_to_tf32(float x) {\n"
         "  unsigned r;\n"
         "  asm(\"cvt.rna.tf32.f32 %0, %1;\\n\" : \"=r\"(r) : \"f\"(x));\n"
         "  return r;\n"
         "}\n"
         "NNC_DEV float nnc_bf16_to_f32(unsigned short h) { return __uint_as_float((unsigned)h << 16); }\n"
         "NNC_DEV float nnc_f16_to_f32(unsigned short h) {\n"
         "  float f;\n"
         "  asm(\"cvt.f32.f16 %0, %1;\\n\" : \"=f\"(f) : \"h\"(h));\n"
         "  return f;\n"
         "}\n"
         "NNC_DEV unsigned short nnc_f32_to_bf16(float f) {\n"
         "  unsigned short h;\n"
         "  asm(\"cvt.rn.bf16.f32 %0, %1;\\n\" : \"=h\"(h) : \"f\"(f));\n"
         "  return h;\n"
         "}\n"
         "NNC_DEV unsigned short nnc_f32_to_f16(float f) {\n"
         "  unsigned short h;\n"
         "  asm(\"cvt.rn.f16.f32 %0, %1;\\n\" : \"=h\"(h) : \"f\"(f));\n"
         "  return h;\n"
         "}\n"
         "NNC_DEV float nnc_erff(float x) { return erff(x); }\n"
         "NNC_DEV float4 nnc_ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }\n"
         "NNC_DEV void nnc_st4(float *p, float4 v) { *reinterpret_cast<float4 *>(p) = v; }\n"
         "NNC_DEV float nnc_neg_inf(void) { return __int_as_float(0xff800000); }\n"
         "#endif\n"
         "/* the arguments of every GEMM kernel, passed by value; batch strides in elements\n"
         "   (0 broadcasts an operand over the batch) */\n"
         "struct NncGemmArgs {\n"
         "  const void *A, *B; float *C; const float *bias, *R; float *work;\n"
         "  long long bsa, bsb, bsc, bsr;\n"
         "  int M, N, K, lda, ldb, ldc, ldr, k_split, batch;\n"
         "};\n"
         "NNC_DEV float nnc_sigmoid(float x) {\n"
         "  return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));\n"
         "}\n"
         "NNC_DEV float nnc_phi(float x) { return 0.5f * (1.0f + nnc_erff(x * 0.70710678118654752f)); }\n"
         "NNC_DEV float nnc_phi_pdf(float x) { return 0.39894228040143268f * expf(-0.5f * x * x); }\n"
         "struct NncEwArgs {\n"
         "  const float *in[8]; float *out; long long n;\n"
         "};\n"
         "struct NncReduceArgs {\n"
         "  const float *x; float *out; long long rows, cols;\n"
         "};\n";
}
