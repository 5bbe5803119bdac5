/* hw.c — the built-in hardware table, hardware files (JSON) and the `host` target.
 *
 * Figures are vendor datasheet values (dense, no structured sparsity, boost clock); where a
 * datasheet gives none (Jetson non-tensor FP16) the value is derived from the SM design and
 * the derivation is noted in docs/hardware.md.
 */
#include "hw.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define T 1e12
#define G 1e9
#define KIB 1024
#define MIB (1024 * 1024)

/* peak[] order: f32, f16, bf16, f64, tf32_tc, f16_tc, bf16_tc, i8_tc */
static const HwTarget builtins[] = {
    {.name = "h100-sxm", .desc = "NVIDIA H100 SXM5 80GB (Hopper, sm_90)", .kind = HW_GPU,
     .peak = {66.9 * T, 133.8 * T, 133.8 * T, 33.5 * T, 494.7 * T, 989.4 * T, 989.4 * T, 1978.9 * T},
     .mem_bw = 3350 * G, .mem_bytes = 80 * G, .overhead_s = 3e-6, .cc = 90, .sm_count = 132,
     .smem_per_sm = 228 * KIB, .smem_per_block = 227 * KIB, .regs_per_sm = 65536,
     .l2_bytes = 50 * MIB, .ghz = 1.98},
    {.name = "a100-sxm-80gb", .desc = "NVIDIA A100 SXM4 80GB (Ampere, sm_80)", .kind = HW_GPU,
     .peak = {19.5 * T, 78 * T, 39 * T, 9.7 * T, 156 * T, 312 * T, 312 * T, 624 * T},
     .mem_bw = 2039 * G, .mem_bytes = 80 * G, .overhead_s = 3e-6, .cc = 80, .sm_count = 108,
     .smem_per_sm = 164 * KIB, .smem_per_block = 163 * KIB, .regs_per_sm = 65536,
     .l2_bytes = 40 * MIB, .ghz = 1.41},
    {.name = "v100-sxm2", .desc = "NVIDIA V100 SXM2 32GB (Volta, sm_70)", .kind = HW_GPU,
     .peak = {15.7 * T, 31.4 * T, 0, 7.8 * T, 0, 125 * T, 0, 0},
     .mem_bw = 900 * G, .mem_bytes = 32 * G, .overhead_s = 3e-6, .cc = 70, .sm_count = 80,
     .smem_per_sm = 96 * KIB, .smem_per_block = 96 * KIB, .regs_per_sm = 65536,
     .l2_bytes = 6 * MIB, .ghz = 1.53},
    {.name = "rtx-4090", .desc = "NVIDIA GeForce RTX 4090 (Ada, sm_89)", .kind = HW_GPU,
     .peak = {82.6 * T, 82.6 * T, 82.6 * T, 1.29 * T, 82.6 * T, 165.2 * T, 165.2 * T, 660.6 * T},
     .mem_bw = 1008 * G, .mem_bytes = 24 * G, .overhead_s = 3e-6, .cc = 89, .sm_count = 128,
     .smem_per_sm = 100 * KIB, .smem_per_block = 99 * KIB, .regs_per_sm = 65536,
     .l2_bytes = 72 * MIB, .ghz = 2.52},
    {.name = "jetson-agx-orin-64gb", .desc = "NVIDIA Jetson AGX Orin 64GB (Ampere, sm_87, 1.3 GHz)",
     .kind = HW_GPU,
     .peak = {5.32 * T, 10.65 * T, 10.65 * T, 0.083 * T, 21.3 * T, 42.6 * T, 42.6 * T, 85.2 * T},
     .mem_bw = 204.8 * G, .mem_bytes = 64 * G, .overhead_s = 5e-6, .cc = 87, .sm_count = 16,
     .smem_per_sm = 164 * KIB, .smem_per_block = 163 * KIB, .regs_per_sm = 65536,
     .l2_bytes = 4 * MIB, .ghz = 1.3},
    {.name = "jetson-orin-nano-8gb", .desc = "NVIDIA Jetson Orin Nano 8GB (Ampere, sm_87, 625 MHz)",
     .kind = HW_GPU,
     .peak = {1.28 * T, 2.56 * T, 2.56 * T, 0.02 * T, 5.12 * T, 10.24 * T, 10.24 * T, 20.48 * T},
     .mem_bw = 68 * G, .mem_bytes = 8 * G, .overhead_s = 5e-6, .cc = 87, .sm_count = 8,
     .smem_per_sm = 164 * KIB, .smem_per_block = 163 * KIB, .regs_per_sm = 65536,
     .l2_bytes = 2 * MIB, .ghz = 0.625},
    /* generic CPUs: peak = cores * GHz * fma_units * lanes * 2 */
    {.name = "cpu-avx2", .desc = "generic x86-64 AVX2/FMA, 8 cores at 3.0 GHz, dual-channel DDR4",
     .kind = HW_CPU, .peak = {768 * G, 0, 0, 384 * G, 0, 0, 0, 0}, .mem_bw = 51.2 * G,
     .mem_bytes = 32 * G, .overhead_s = 1e-6, .cores = 8, .ghz = 3.0, .vector_bits = 256,
     .vector_regs = 16, .fma_units = 2, .load_ports = 2, .fma_latency = 4,
     .l1_bytes = 32 * KIB, .l2_bytes_cpu = 512 * KIB, .l3_bytes = 32 * MIB},
    {.name = "cpu-avx512", .desc = "generic x86-64 AVX-512, 16 cores at 2.5 GHz, 8-channel DDR4",
     .kind = HW_CPU, .peak = {2560 * G, 0, 0, 1280 * G, 0, 0, 0, 0}, .mem_bw = 150 * G,
     .mem_bytes = 128 * G, .overhead_s = 1e-6, .cores = 16, .ghz = 2.5, .vector_bits = 512,
     .vector_regs = 32, .fma_units = 2, .load_ports = 2, .fma_latency = 4,
     .l1_bytes = 48 * KIB, .l2_bytes_cpu = 1280 * KIB, .l3_bytes = 32 * MIB},
    {.name = "cpu-neon", .desc = "generic ARMv8.2 NEON (Neoverse-N1 class), 8 cores at 3.0 GHz",
     .kind = HW_CPU, .peak = {384 * G, 768 * G, 0, 192 * G, 0, 0, 0, 0}, .mem_bw = 100 * G,
     .mem_bytes = 32 * G, .overhead_s = 1e-6, .cores = 8, .ghz = 3.0, .vector_bits = 128,
     .vector_regs = 32, .fma_units = 2, .load_ports = 2, .fma_latency = 4,
     .l1_bytes = 64 * KIB, .l2_bytes_cpu = 1024 * KIB, .l3_bytes = 32 * MIB},
};

static const struct {
  const char *alias, *name;
} aliases[] = {{"h100", "h100-sxm"},        {"a100", "a100-sxm-80gb"},
               {"v100", "v100-sxm2"},       {"4090", "rtx-4090"},
               {"agx-orin", "jetson-agx-orin-64gb"}, {"orin-nano", "jetson-orin-nano-8gb"}};

int hw_builtin_count(void) { return (int)(sizeof builtins / sizeof *builtins); }

const HwTarget *hw_builtin(int i) {
  return i >= 0 && i < hw_builtin_count() ? &builtins[i] : NULL;
}

const HwTarget *hw_find_builtin(const char *name) {
  for (int i = 0; i < hw_builtin_count(); i++)
    if (!strcasecmp(builtins[i].name, name)) return &builtins[i];
  for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
    if (!strcasecmp(aliases[i].alias, name)) return hw_find_builtin(aliases[i].name);
  return NULL;
}

static const char *peak_keys[HWP_COUNT] = {"f32",     "f16",    "bf16",    "f64",
                                            "tf32_tc", "f16_tc", "bf16_tc", "i8_tc"};

const char *hw_peak_kind_name(HwPeakKind k) {
  return (unsigned)k < HWP_COUNT ? peak_keys[k] : "?";
}

double hw_peak(const HwTarget *t, DType dt, bool gemm) {
  HwPeakKind k = HWP_F32;
  if (dt == DT_F16) k = gemm && t->peak[HWP_F16_TC] > 0 ? HWP_F16_TC : HWP_F16;
  else if (dt == DT_BF16) k = gemm && t->peak[HWP_BF16_TC] > 0 ? HWP_BF16_TC : HWP_BF16;
  else if (dt == DT_F64) k = HWP_F64;
  return t->peak[k] > 0 ? t->peak[k] : t->peak[HWP_F32];
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void set_num(const cJSON *o, const char *key, double scale, double *dst) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (cJSON_IsNumber(v)) *dst = v->valuedouble * scale;
}

static void set_int(const cJSON *o, const char *key, double scale, int64_t *dst) {
  double d = (double)*dst / scale;
  set_num(o, key, 1, &d);
  *dst = (int64_t)(d * scale + 0.5);
}

static void set_i(const cJSON *o, const char *key, int *dst) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (cJSON_IsNumber(v)) *dst = v->valueint;
}

static int fail(char *err, size_t n, const char *msg, const char *arg) {
  snprintf(err, n, "%s%s", msg, arg ? arg : "");
  return -1;
}

int hw_from_json(const char *text, HwTarget *out, char *err, size_t errn) {
  cJSON *root = cJSON_Parse(text);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return fail(err, errn, "not a JSON object", NULL);
  }
  HwTarget t = {0};
  const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "base");
  if (cJSON_IsString(base)) {
    const HwTarget *b = hw_find_builtin(base->valuestring);
    if (!b) {
      snprintf(err, errn, "unknown base target '%s'", base->valuestring);
      cJSON_Delete(root);
      return -1;
    }
    t = *b;
    t.measured = false;
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (!cJSON_IsString(name) || !name->valuestring[0]) {
    cJSON_Delete(root);
    return fail(err, errn, "missing \"name\"", NULL);
  }
  snprintf(t.name, sizeof t.name, "%s", name->valuestring);
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
  if (cJSON_IsString(desc)) snprintf(t.desc, sizeof t.desc, "%s", desc->valuestring);
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
  if (cJSON_IsString(kind)) {
    if (!strcmp(kind->valuestring, "gpu")) t.kind = HW_GPU;
    else if (!strcmp(kind->valuestring, "cpu")) t.kind = HW_CPU;
    else {
      snprintf(err, errn, "\"kind\" must be \"gpu\" or \"cpu\", not '%s'", kind->valuestring);
      cJSON_Delete(root);
      return -1;
    }
  } else if (!cJSON_IsString(base)) {
    cJSON_Delete(root);
    return fail(err, errn, "missing \"kind\" (\"gpu\" or \"cpu\")", NULL);
  }
  const cJSON *pk = cJSON_GetObjectItemCaseSensitive(root, "peak_tflops");
  if (pk)
    for (int k = 0; k < HWP_COUNT; k++) set_num(pk, peak_keys[k], T, &t.peak[k]);
  set_num(root, "mem_bw_gbs", G, &t.mem_bw);
  set_num(root, "mem_gb", G, &t.mem_bytes);
  set_num(root, "overhead_us", 1e-6, &t.overhead_s);
  set_i(root, "cc", &t.cc);
  set_i(root, "sm_count", &t.sm_count);
  set_int(root, "smem_per_sm_kib", KIB, &t.smem_per_sm);
  set_int(root, "smem_per_block_kib", KIB, &t.smem_per_block);
  set_int(root, "regs_per_sm", 1, &t.regs_per_sm);
  set_int(root, "l2_mib", MIB, &t.l2_bytes);
  set_i(root, "cores", &t.cores);
  set_num(root, "ghz", 1, &t.ghz);
  set_i(root, "vector_bits", &t.vector_bits);
  set_i(root, "vector_regs", &t.vector_regs);
  set_i(root, "fma_units", &t.fma_units);
  set_i(root, "load_ports", &t.load_ports);
  set_i(root, "fma_latency", &t.fma_latency);
  set_int(root, "l1_kib", KIB, &t.l1_bytes);
  set_int(root, "l2_kib", KIB, &t.l2_bytes_cpu);
  set_int(root, "l3_mib", MIB, &t.l3_bytes);
  set_num(root, "peak_f32_1t_tflops", T, &t.peak_f32_1t);
  set_num(root, "l1_bw_gbs", G, &t.cache_bw[0]);
  set_num(root, "l2_bw_gbs", G, &t.cache_bw[1]);
  set_num(root, "l3_bw_gbs", G, &t.cache_bw[2]);
  set_num(root, "mem_bw_1t_gbs", G, &t.mem_bw_1t);
  set_num(root, "pack_bw_gbs", G, &t.pack_bw);
  set_num(root, "pack_strided_bw_gbs", G, &t.pack_strided_bw);
  set_num(root, "pack_transposed_bw_gbs", G, &t.pack_transposed_bw);
  set_num(root, "gemm_ukr_eff", 1, &t.gemm_ukr_eff);
  set_num(root, "softmax_ns", 1e-9, &t.softmax_s);
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "measured");
  if (cJSON_IsBool(ms)) t.measured = cJSON_IsTrue(ms);
  const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "measured_at");
  if (cJSON_IsString(at)) snprintf(t.measured_at, sizeof t.measured_at, "%s", at->valuestring);
  cJSON_Delete(root);
  if (t.peak[HWP_F32] <= 0) return fail(err, errn, "peak_tflops.f32 must be > 0", NULL);
  if (t.mem_bw <= 0) return fail(err, errn, "mem_bw_gbs must be > 0", NULL);
  if (t.mem_bw_1t < 0 || t.pack_bw < 0 || t.pack_strided_bw < 0 || t.pack_transposed_bw < 0 ||
      t.softmax_s < 0)
    return fail(err, errn, "mem_bw_1t_gbs, pack_bw_gbs, pack_strided_bw_gbs, "
                "pack_transposed_bw_gbs and softmax_ns must be >= 0", NULL);
  if (t.gemm_ukr_eff < 0 || t.gemm_ukr_eff > 1)
    return fail(err, errn, "gemm_ukr_eff must be within 0..1", NULL);
  if (t.kind == HW_GPU && t.sm_count <= 0) return fail(err, errn, "sm_count must be > 0", NULL);
  if (t.kind == HW_CPU && (t.vector_bits < 64 || t.vector_regs < 4))
    return fail(err, errn, "vector_bits and vector_regs are required for a cpu", NULL);
  if (t.kind == HW_CPU) {
    if (t.fma_units <= 0) t.fma_units = 1;
    if (t.load_ports <= 0) t.load_ports = 1;
    if (t.fma_latency <= 0) t.fma_latency = 4;
    if (t.cores <= 0) t.cores = 1;
  }
  *out = t;
  return 0;
}

static char *read_text(const char *path, char *err, size_t errn) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errn, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t k;
  while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (cap - n - 1 == 0) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (buf) buf[n] = 0;
  return buf;
}

int hw_load_file(const char *path, HwTarget *out, char *err, size_t errn) {
  char *text = read_text(path, err, errn);
  if (!text) return -1;
  char e[256];
  int rc = hw_from_json(text, out, e, sizeof e);
  free(text);
  if (rc) snprintf(err, errn, "%s: %s", path, e);
  return rc;
}

char *hw_to_json(const HwTarget *t) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", t->name);
  cJSON_AddStringToObject(o, "description", t->desc);
  cJSON_AddStringToObject(o, "kind", t->kind == HW_GPU ? "gpu" : "cpu");
  cJSON *pk = cJSON_AddObjectToObject(o, "peak_tflops");
  for (int k = 0; k < HWP_COUNT; k++)
    if (t->peak[k] > 0) cJSON_AddNumberToObject(pk, peak_keys[k], t->peak[k] / T);
  cJSON_AddNumberToObject(o, "mem_bw_gbs", t->mem_bw / G);
  cJSON_AddNumberToObject(o, "mem_gb", t->mem_bytes / G);
  cJSON_AddNumberToObject(o, "overhead_us", t->overhead_s * 1e6);
  if (t->kind == HW_GPU) {
    cJSON_AddNumberToObject(o, "cc", t->cc);
    cJSON_AddNumberToObject(o, "sm_count", t->sm_count);
    cJSON_AddNumberToObject(o, "smem_per_sm_kib", (double)t->smem_per_sm / KIB);
    cJSON_AddNumberToObject(o, "smem_per_block_kib", (double)t->smem_per_block / KIB);
    cJSON_AddNumberToObject(o, "regs_per_sm", (double)t->regs_per_sm);
    cJSON_AddNumberToObject(o, "l2_mib", (double)t->l2_bytes / MIB);
    cJSON_AddNumberToObject(o, "ghz", t->ghz);
  } else {
    cJSON_AddNumberToObject(o, "cores", t->cores);
    cJSON_AddNumberToObject(o, "ghz", t->ghz);
    cJSON_AddNumberToObject(o, "vector_bits", t->vector_bits);
    cJSON_AddNumberToObject(o, "vector_regs", t->vector_regs);
    cJSON_AddNumberToObject(o, "fma_units", t->fma_units);
    cJSON_AddNumberToObject(o, "load_ports", t->load_ports);
    cJSON_AddNumberToObject(o, "fma_latency", t->fma_latency);
    cJSON_AddNumberToObject(o, "l1_kib", (double)t->l1_bytes / KIB);
    cJSON_AddNumberToObject(o, "l2_kib", (double)t->l2_bytes_cpu / KIB);
    cJSON_AddNumberToObject(o, "l3_mib", (double)t->l3_bytes / MIB);
    if (t->peak_f32_1t > 0) cJSON_AddNumberToObject(o, "peak_f32_1t_tflops", t->peak_f32_1t / T);
    static const char *bw_keys[3] = {"l1_bw_gbs", "l2_bw_gbs", "l3_bw_gbs"};
    for (int l = 0; l < 3; l++)
      if (t->cache_bw[l] > 0) cJSON_AddNumberToObject(o, bw_keys[l], t->cache_bw[l] / G);
    if (t->mem_bw_1t > 0) cJSON_AddNumberToObject(o, "mem_bw_1t_gbs", t->mem_bw_1t / G);
    if (t->pack_bw > 0) cJSON_AddNumberToObject(o, "pack_bw_gbs", t->pack_bw / G);
    if (t->pack_strided_bw > 0)
      cJSON_AddNumberToObject(o, "pack_strided_bw_gbs", t->pack_strided_bw / G);
    if (t->pack_transposed_bw > 0)
      cJSON_AddNumberToObject(o, "pack_transposed_bw_gbs", t->pack_transposed_bw / G);
    if (t->gemm_ukr_eff > 0) cJSON_AddNumberToObject(o, "gemm_ukr_eff", t->gemm_ukr_eff);
    if (t->softmax_s > 0) cJSON_AddNumberToObject(o, "softmax_ns", t->softmax_s * 1e9);
  }
  cJSON_AddBoolToObject(o, "measured", t->measured);
  if (t->measured_at[0]) cJSON_AddStringToObject(o, "measured_at", t->measured_at);
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  return s;
}

/* ---- host ---------------------------------------------------------------------------- */

static int64_t sysfs_cache(int level, const char *type) {
  char path[128], buf[64];
  for (int i = 0; i < 8; i++) {
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE *f = fopen(path, "r");
    if (!f) break;
    int lv = 0;
    if (fscanf(f, "%d", &lv) != 1) lv = 0;
    fclose(f);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    f = fopen(path, "r");
    if (!f) continue;
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    if (lv != level || strncmp(buf, type, strlen(type)) != 0) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    f = fopen(path, "r");
    if (!f) continue;
    long v = 0;
    char unit = 0;
    int got = fscanf(f, "%ld%c", &v, &unit);
    fclose(f);
    if (got >= 1) return unit == 'M' ? v * MIB : unit == 'K' ? v * KIB : v;
  }
  return 0;
}

static double cpuinfo_ghz(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return 0;
  char line[256];
  double mhz = 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "cpu MHz", 7)) {
      char *c = strchr(line, ':');
      if (c) mhz = atof(c + 1);
      break;
    }
  fclose(f);
  return mhz / 1000;
}

void hw_host_estimate(HwTarget *out) {
  HwTarget t = {0};
  snprintf(t.name, sizeof t.name, "host");
  t.kind = HW_CPU;
  long nc = sysconf(_SC_NPROCESSORS_ONLN);
  t.cores = nc > 0 ? (int)nc : 1;
  t.ghz = cpuinfo_ghz();
  if (t.ghz <= 0) t.ghz = 2.5;
  t.vector_bits = 128;
  t.vector_regs = 16;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) t.vector_bits = 512, t.vector_regs = 32;
  else if (__builtin_cpu_supports("avx2")) t.vector_bits = 256;
#elif defined(__aarch64__)
  t.vector_regs = 32;
#endif
  t.fma_units = 2;
  t.load_ports = 2;
  t.fma_latency = 4;
  double lanes = t.vector_bits / 32.0;
  t.peak[HWP_F32] = t.cores * t.ghz * 1e9 * t.fma_units * lanes * 2;
  t.peak[HWP_F64] = t.peak[HWP_F32] / 2;
  t.mem_bw = 20 * G;
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  t.mem_bytes = pages > 0 && psz > 0 ? (double)pages * (double)psz : 8 * G;
  t.overhead_s = 1e-6;
  t.l1_bytes = sysfs_cache(1, "Data");
  t.l2_bytes_cpu = sysfs_cache(2, "Unified");
  t.l3_bytes = sysfs_cache(3, "Unified");
  if (t.l1_bytes <= 0) t.l1_bytes = 32 * KIB;
  if (t.l2_bytes_cpu <= 0) t.l2_bytes_cpu = 256 * KIB;
  if (t.l3_bytes <= 0) t.l3_bytes = 8 * MIB;
  snprintf(t.desc, sizeof t.desc, "this machine (estimated, %d cores, %d-bit vectors; run 'nnc probe' to measure)",
           t.cores, t.vector_bits);
  *out = t;
}

int hw_host_path(char *buf, size_t n) {
  const char *xdg = getenv("XDG_CONFIG_HOME");
  if (xdg && xdg[0] == '/') {
    snprintf(buf, n, "%s/nnc/host.json", xdg);
    return 0;
  }
  const char *home = getenv("HOME");
  if (!home || !home[0]) return -1;
  snprintf(buf, n, "%s/.config/nnc/host.json", home);
  return 0;
}

static int mkdirs(char *path) {
  for (char *p = path + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      int rc = mkdir(path, 0755);
      *p = '/';
      if (rc && errno != EEXIST) return -1;
    }
  return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

int hw_save_file(const HwTarget *t, const char *path, char *err, size_t errn) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    if (mkdirs(dir)) {
      snprintf(err, errn, "%s: %s", dir, strerror(errno));
      return -1;
    }
  }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  char *s = hw_to_json(t);
  FILE *f = fopen(tmp, "w");
  int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
  if (f && fclose(f)) ok = 0;
  free(s);
  if (!ok || rename(tmp, path)) {
    snprintf(err, errn, "%s: %s", path, strerror(errno));
    remove(tmp);
    return -1;
  }
  return 0;
}

int hw_resolve(const char *spec, HwTarget *out, char *err, size_t errn) {
  size_t len = strlen(spec);
  if (strchr(spec, '/') || (len > 5 && !strcmp(spec + len - 5, ".json")))
    return hw_load_file(spec, out, err, errn);
  if (!strcasecmp(spec, "host")) {
    char path[4096];
    if (!hw_host_path(path, sizeof path) && access(path, R_OK) == 0)
      return hw_load_file(path, out, err, errn);
    hw_host_estimate(out);
    return 0;
  }
  const HwTarget *b = hw_find_builtin(spec);
  if (b) {
    *out = *b;
    return 0;
  }
  char path[4096];
  if (!hw_host_path(path, sizeof path)) {
    char *slash = strrchr(path, '/');
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s.json", spec);
    if (access(path, R_OK) == 0) return hw_load_file(path, out, err, errn);
  }
  size_t k = (size_t)snprintf(err, errn, "unknown target '%s'; known:", spec);
  for (int i = 0; i < hw_builtin_count() && k < errn; i++)
    k += (size_t)snprintf(err + k, errn - k, " %s", builtins[i].name);
  if (k < errn) snprintf(err + k, errn - k, " host, or a JSON file");
  return -1;
}

/* ---- links ------------------------------------------------------------------------- */

/* Nominal per-direction bandwidths of the standards; latencies are typical of one message
 * through the collective library on that link (docs/hardware.md). */
static const HwLink links[] = {
    {"shm", "same machine, shared memory (MPI/NCCL intra-node copies)", 10 * G, 1e-6},
    {"pcie4", "PCIe 4.0 x16 (31.5 GB/s per direction)", 31.5 * G, 5e-6},
    {"pcie5", "PCIe 5.0 x16 (63 GB/s per direction)", 63 * G, 5e-6},
    {"eth100", "100 Gb/s Ethernet (TCP)", 12.5 * G, 15e-6},
    {"eth200", "200 Gb/s Ethernet (RoCE)", 25 * G, 5e-6},
    {"eth400", "400 Gb/s Ethernet (RoCE)", 50 * G, 5e-6},
    {"ib-hdr", "InfiniBand HDR, 200 Gb/s", 25 * G, 2e-6},
    {"ib-ndr", "InfiniBand NDR, 400 Gb/s", 50 * G, 2e-6},
    {"nvlink3", "NVLink 3 (A100, 12 links: 300 GB/s per direction)", 300 * G, 3e-6},
    {"nvlink4", "NVLink 4 (H100, 18 links: 450 GB/s per direction)", 450 * G, 3e-6},
};

int hw_link_count(void) { return (int)(sizeof links / sizeof links[0]); }
const HwLink *hw_link(int i) { return i >= 0 && i < hw_link_count() ? &links[i] : NULL; }

/* "12.5GB/s" or "100Gb/s" (an optional "@LAT" in microseconds follows); -1 if not one */
static int parse_link_bw(const char *spec, HwLink *out) {
  char *end;
  double v = strtod(spec, &end);
  if (end == spec || !(v > 0) || v > 1e6) return -1;
  double scale;
  if (!strncmp(end, "GB/s", 4)) scale = G;
  else if (!strncmp(end, "Gb/s", 4)) scale = G / 8;
  else return -1;
  end += 4;
  double lat = links[3].latency;
  if (*end == '@') {
    char *e2;
    lat = strtod(end + 1, &e2) * 1e-6;
    if (e2 == end + 1 || *e2 || !(lat >= 0) || lat > 1) return -1;
  } else if (*end) {
    return -1;
  }
  *out = (HwLink){.bw = v * scale, .latency = lat};
  snprintf(out->name, sizeof out->name, "%.31s", spec);
  snprintf(out->desc, sizeof out->desc, "%.6g GB/s per direction, %.3g us latency", v * scale / G,
           lat * 1e6);
  return 0;
}

int hw_resolve_link(const char *spec, HwLink *out, char *err, size_t errn) {
  for (int i = 0; i < hw_link_count(); i++)
    if (!strcasecmp(spec, links[i].name)) return *out = links[i], 0;
  if (!parse_link_bw(spec, out)) return 0;
  size_t k = (size_t)snprintf(err, errn, "unknown link '%s'; known:", spec);
  for (int i = 0; i < hw_link_count() && k < errn; i++)
    k += (size_t)snprintf(err + k, errn - k, " %s", links[i].name);
  if (k < errn) snprintf(err + k, errn - k, ", or a bandwidth such as 25GB/s or 100Gb/s[@LAT_US]");
  return -1;
}
