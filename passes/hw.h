/* hw.h — hardware descriptions for cost analysis and tile selection.
 *
 * Every figure a pass needs about a machine (peak throughput per dtype, memory bandwidth,
 * cache and shared-memory sizes, SM or core counts) comes from an HwTarget: a built-in table
 * (passes/hw.c), a user file in JSON (docs/hardware.md), or the `host` target that
 * `nnc probe` measures and stores. Passes never hard-code a machine's numbers.
 *
 * Units are SI base units throughout: FLOP/s, bytes/s, bytes, seconds.
 */
#ifndef NN_HW_H
#define NN_HW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/nn_dtype.h"

typedef enum { HW_GPU, HW_CPU } HwKind;

/* compute classes with their own peak: plain vector/SIMT units per dtype, and the matrix
 * units (tensor cores) where they exist. 0 = not supported (falls back, see hw_peak). */
typedef enum {
  HWP_F32,    /* FP32 on CUDA cores / SIMD FMA */
  HWP_F16,    /* FP16 without tensor cores */
  HWP_BF16,   /* BF16 without tensor cores */
  HWP_F64,
  HWP_TF32_TC, /* tensor cores, TF32 inputs (f32 data) */
  HWP_F16_TC,  /* tensor cores, FP16 inputs, FP32 accumulate, dense */
  HWP_BF16_TC,
  HWP_I8_TC,   /* INT8 tensor core ops/s, dense */
  HWP_COUNT
} HwPeakKind;

typedef struct HwTarget {
  char name[64];
  char desc[160];
  HwKind kind;
  double peak[HWP_COUNT]; /* FLOP/s, dense */
  double mem_bw;          /* DRAM bytes/s */
  double mem_bytes;       /* device (or system) memory capacity */
  double overhead_s;      /* fixed cost per launched kernel / parallel region */
  /* GPU */
  int cc;                 /* compute capability * 10 (70 = Volta, 80 = A100, 90 = H100) */
  int sm_count;
  int64_t smem_per_sm;    /* shared memory usable by resident CTAs of one SM */
  int64_t smem_per_block; /* largest opt-in shared memory of one CTA */
  int64_t regs_per_sm;    /* 32-bit registers */
  int64_t l2_bytes;
  /* CPU */
  int cores;
  double ghz;
  int vector_bits;        /* 128 NEON/SSE, 256 AVX2, 512 AVX-512 */
  int vector_regs;        /* architectural vector registers */
  int fma_units;          /* FMA pipes per core */
  int load_ports;         /* vector loads per cycle per core */
  int fma_latency;        /* cycles */
  int64_t l1_bytes, l2_bytes_cpu, l3_bytes; /* L1d and L2 per core, L3 shared */
  double peak_f32_1t;     /* FP32 FLOP/s of one thread (0 = unknown: peak/cores) */
  double cache_bw[3];     /* read bandwidth of L1, L2, L3 with all threads (0 = unknown) */
  double mem_bw_1t;       /* DRAM triad bandwidth of one thread (0 = unknown: mem_bw) */
  /* the generated GEMM as `nnc probe` measures it (0 = unknown: plan_cost.c's defaults) */
  double pack_bw;         /* bytes/s one thread packs into panels from adjacent rows */
  double pack_strided_bw; /* ... from strided rows (a value per row and k: gathered) */
  double pack_transposed_bw; /* ... from rows contiguous along k, transposed in registers
                                (B stored N x K: a dense layer's weight) */
  double gemm_ukr_eff;    /* fraction of one thread's FMA peak its micro-kernel reaches */
  double softmax_s;       /* the runtime's softmax per element, one thread (0 = unknown) */
  bool measured;          /* host: figures come from `nnc probe`, not a guess */
  char measured_at[32];   /* when `nnc probe` measured them (UTC, ISO 8601), "" otherwise */
} HwTarget;

/* built-in table */
int hw_builtin_count(void);
const HwTarget *hw_builtin(int i);
const HwTarget *hw_find_builtin(const char *name); /* case-insensitive; NULL if none */

/* Peak FLOP/s for an op of dtype dt; gemm says whether matrix units may be used.
 * f16/bf16 GEMMs use tensor cores when the target has them; f32 GEMMs use the FP32 units
 * (TF32 is opt-in in the frameworks this mirrors). A class the target lacks falls back to
 * the FP32 figure. Integer ops count at the FP32 rate. */
double hw_peak(const HwTarget *t, DType dt, bool gemm);
const char *hw_peak_kind_name(HwPeakKind k); /* "f16_tc" ... (the JSON keys) */

/* JSON (docs/hardware.md). Fields missing from a user file keep the value of the entry
 * named by "base" (a built-in) or zero. 0 on success, -1 with err filled. */
int hw_from_json(const char *text, HwTarget *out, char *err, size_t errn);
int hw_load_file(const char *path, HwTarget *out, char *err, size_t errn);
/* cJSON-built text (caller frees with free()) */
char *hw_to_json(const HwTarget *t);

/* `host`: the probed file if present, else an estimate from sysconf and CPU features */
void hw_host_estimate(HwTarget *out);
/* $XDG_CONFIG_HOME/nnc/host.json, else $HOME/.config/nnc/host.json; 0 ok, -1 no home */
int hw_host_path(char *buf, size_t n);
/* write atomically (temp file + rename), creating the directory; 0 ok, -1 err filled */
int hw_save_file(const HwTarget *t, const char *path, char *err, size_t errn);

/* Resolve a --target argument: a built-in name, "host", a path to a JSON file (contains '/'
 * or ends in ".json"), or NAME looked up as <config dir>/nnc/NAME.json.
 * 0 on success, -1 with err filled. */
int hw_resolve(const char *spec, HwTarget *out, char *err, size_t errn);

/* Links between ranks of data-parallel training (passes/comm.c): bandwidth per direction
 * (bytes/s, what one rank can send while it receives as much) and the latency of one
 * message (s). */
typedef struct HwLink {
  char name[32];
  char desc[96];
  double bw, latency;
} HwLink;
int hw_link_count(void);
const HwLink *hw_link(int i);
/* a built-in link name (case-insensitive), or a bandwidth: "12.5GB/s", "100Gb/s" (bits),
 * with the latency of the built-in "eth100" unless "@LAT" follows in microseconds
 * ("25GB/s@2"). 0 ok, -1 with err filled (listing the names). */
int hw_resolve_link(const char *spec, HwLink *out, char *err, size_t errn);
#endif
