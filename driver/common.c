/* common.c — what every subcommand shares: -D/--model handling and compiling the input. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

int drv_common_opt(DrvInput *in, int opt, const char *arg) {
  switch (opt) {
  case 'D':
    if (in->ndefines == (int)(sizeof in->defines / sizeof *in->defines)) {
      fprintf(stderr, "nnc: error: too many -D options\n");
      return -1;
    }
    in->defines[in->ndefines++] = arg;
    return 1;
  case 'M':
    in->model = arg;
    return 1;
  case 'Y':
    in->symbolic = arg;
    return 1;
  default:
    return 0;
  }
}

/* every name given to --symbolic must be a dim of the model */
static int check_symbolic(const DrvInput *in, const IrGraph *g, Diag *d) {
  for (const char *p = in->symbolic; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
    if (dim_sym_find(g->dims, name) < 0) {
      diag_error_file(d, in->path, "--symbolic: model '%s' has no dim named '%s'", g->name,
                      name);
      return -1;
    }
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

IrModule *drv_compile(const DrvInput *in, Diag *d, IrGraph **g) {
  FeOptions fo = {.defines = in->defines, .ndefines = in->ndefines, .symbolic = in->symbolic};
  IrModule *m = fe_compile_file(in->path, &fo, d);
  if (!m) return NULL;
  if (in->model) {
    *g = ir_module_find(m, in->model);
    if (!*g) {
      diag_error_file(d, in->path, "no model named '%s' (the file defines %d model%s)",
                      in->model, m->ngraphs, m->ngraphs == 1 ? "" : "s");
      ir_module_free(m);
      return NULL;
    }
  } else if (m->ngraphs == 0) {
    diag_error_file(d, in->path, "the file defines no model");
    ir_module_free(m);
    return NULL;
  } else {
    *g = m->graphs[0];
  }
  if (in->symbolic && check_symbolic(in, *g, d)) {
    ir_module_free(m);
    return NULL;
  }
  return m;
}

/* a -D that is well formed and names a dim of m (any, when m is NULL) */
static int define_ok(const IrModule *m, const char *def) {
  const char *eq = strchr(def, '=');
  char *end;
  long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
  if (!eq || eq == def || !eq[1] || *end || v <= 0 || v > INT32_MAX) return 0;
  if (!m) return 1; /* the file has other errors: the name cannot be judged */
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)(eq - def < 63 ? eq - def : 63), def);
  for (int i = 0; i < m->ngraphs; i++)
    if (dim_sym_find(m->graphs[i]->dims, name) >= 0) return 1;
  return 0;
}

int drv_compile_status(const DrvInput *in) {
  FILE *null = fopen("/dev/null", "w");
  if (!null) return 1;
  Diag *quiet = diag_new(null);
  FeOptions fo = {0};
  IrModule *m = fe_compile_file(in->path, &fo, quiet);
  int usage = 0;
  for (int i = 0; i < in->ndefines && !usage; i++) usage = !define_ok(m, in->defines[i]);
  if (m) ir_module_free(m);
  diag_free(quiet);
  fclose(null);
  return usage ? 2 : 1;
}

int drv_target_status(const char *spec) { return access(spec, F_OK) == 0 ? 1 : 2; }

/* replace or append the define NAME=VALUE */
static int set_define(DrvInput *in, int slot, const char *name, int64_t value) {
  snprintf(in->bound[slot], sizeof in->bound[slot], "%s=%lld", name, (long long)value);
  size_t n = strlen(name);
  for (int i = 0; i < in->ndefines; i++)
    if (!strncmp(in->defines[i], name, n) && in->defines[i][n] == '=') {
      in->defines[i] = in->bound[slot];
      return 0;
    }
  if (in->ndefines == (int)(sizeof in->defines / sizeof *in->defines)) return -1;
  in->defines[in->ndefines++] = in->bound[slot];
  return 0;
}

IrModule *drv_recompile_dims(DrvInput *in, IrModule *m, IrGraph **g, Diag *d) {
  /* the values it was compiled with: those of a fresh compile with the same options */
  IrGraph *fresh_g = NULL;
  IrModule *fresh = drv_compile(in, d, &fresh_g);
  if (!fresh) {
    ir_module_free(m);
    return NULL;
  }
  int changed = 0;
  for (int s = 0; s < dim_sym_count((*g)->dims); s++) {
    int64_t v = dim_sym_value((*g)->dims, s);
    if (v == dim_sym_value(fresh_g->dims, s)) continue;
    if (set_define(in, s, dim_sym_name((*g)->dims, s), v)) {
      diag_error_file(d, in->path, "too many -D options");
      ir_module_free(fresh);
      ir_module_free(m);
      return NULL;
    }
    changed = 1;
  }
  ir_module_free(fresh);
  if (!changed) return m;
  ir_module_free(m);
  return drv_compile(in, d, g);
}

/* ---- number formatting shared by the reports ---------------------------------------- */

const char *drv_si(double v, char *buf, size_t n) {
  static const char *pre[] = {"", "K", "M", "G", "T", "P", "E"};
  int i = 0;
  while (fabs(v) >= 1000 && i < 6) v /= 1000, i++;
  snprintf(buf, n, i ? "%.3g%s" : "%.0f%s", v, pre[i]);
  return buf;
}

const char *drv_bytes_h(double v, char *buf, size_t n) {
  static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, i++;
  snprintf(buf, n, i ? "%.2f %s" : "%.0f %s", v, u[i]);
  return buf;
}

const char *drv_commas(double d, char *buf, size_t n) {
  char tmp[40];
  int len = snprintf(tmp, sizeof tmp, "%.0f", fabs(d));
  size_t k = 0;
  if (d < 0 && k + 1 < n) buf[k++] = '-';
  for (int i = 0; i < len && k + 2 < n; i++) {
    if (i && (len - i) % 3 == 0) buf[k++] = ',';
    buf[k++] = tmp[i];
  }
  buf[k] = 0;
  return buf;
}

int drv_make_tmpdir(char *dir, size_t n, const char *cmd, const char *stem) {
  const char *tmpenv = getenv("TMPDIR");
  int w = snprintf(dir, n, "%s/%s-XXXXXX", tmpenv && *tmpenv ? tmpenv : "/tmp", stem);
  if (w > 0 && (size_t)w < n && mkdtemp(dir)) return 0;
  fprintf(stderr, "nnc %s: error: cannot create a temporary directory %s: %s (set TMPDIR to a "
          "writable directory)\n", cmd, dir, w > 0 && (size_t)w < n ? strerror(errno) : "path too long");
  dir[0] = 0;
  return 1;
}
