/* diag.c — GCC/Clang-style diagnostics with the source line and carets under the span. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct Source {
  char *file, *text; /* owned copies: diagnostics may outlive the compilation's arena */
  size_t len;
} Source;

struct Diag {
  FILE *out;
  Source *src;
  int nsrc, cap;
  int errors, warnings;
};

Diag *diag_new(FILE *out) {
  Diag *d = calloc(1, sizeof *d);
  if (!d) abort();
  d->out = out ? out : stderr;
  return d;
}

void diag_free(Diag *d) {
  if (!d) return;
  for (int i = 0; i < d->nsrc; i++) {
    free(d->src[i].file);
    free(d->src[i].text);
  }
  free(d->src);
  free(d);
}

void diag_add_source(Diag *d, const char *file, const char *text, size_t len) {
  if (d->nsrc == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 4;
    d->src = realloc(d->src, (size_t)d->cap * sizeof *d->src);
    if (!d->src) abort();
  }
  char *f = strdup(file ? file : ""), *t = malloc(len + 1);
  if (!f || !t) abort();
  memcpy(t, text, len);
  t[len] = 0;
  d->src[d->nsrc++] = (Source){f, t, len};
}

static const Source *find_source(const Diag *d, const char *file) {
  for (int i = d->nsrc - 1; i >= 0; i--)
    if (file && !strcmp(d->src[i].file, file))
      return &d->src[i];
  return NULL;
}

/* print line `line` of s and carets from col to end_col (same line) */
static void show_line(const Diag *d, const Source *s, SrcLoc loc) {
  const char *p = s->text, *end = s->text + s->len;
  for (int l = 1; l < loc.line && p < end; p++)
    if (*p == '\n') l++;
  if (p >= end && loc.line > 1) return;
  const char *eol = memchr(p, '\n', (size_t)(end - p));
  if (!eol) eol = end;
  int width = (int)(eol - p);
  fprintf(d->out, "%5d | %.*s\n", loc.line, width, p);
  int c0 = loc.col < 1 ? 1 : loc.col;
  int c1 = (loc.end_line == loc.line && loc.end_col >= c0) ? loc.end_col : c0;
  if (loc.end_line > loc.line) c1 = width > c0 ? width : c0;
  fprintf(d->out, "      | ");
  for (int c = 1; c < c0; c++) fputc(c - 1 < width && p[c - 1] == '\t' ? '\t' : ' ', d->out);
  fputc('^', d->out);
  for (int c = c0 + 1; c <= c1; c++) fputc('~', d->out);
  fputc('\n', d->out);
}

static void vreport(Diag *d, SrcLoc loc, const char *kind, const char *fmt, va_list ap) {
  if (loc.file && loc.line > 0)
    fprintf(d->out, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
  else if (loc.file)
    fprintf(d->out, "%s: %s: ", loc.file, kind);
  else
    fprintf(d->out, "nnc: %s: ", kind);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  const Source *s = loc.line > 0 ? find_source(d, loc.file) : NULL;
  if (s) show_line(d, s, loc);
}

#define REPORT(kind, counter)          \
  do {                                 \
    va_list ap;                        \
    va_start(ap, fmt);                 \
    vreport(d, loc, kind, fmt, ap);    \
    va_end(ap);                        \
    counter;                           \
  } while (0)

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) { REPORT("error", d->errors++); }
void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...) { REPORT("warning", d->warnings++); }
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) { REPORT("note", (void)0); }

void diag_error_file(Diag *d, const char *path, const char *fmt, ...) {
  SrcLoc loc = {.file = path};
  REPORT("error", d->errors++);
}

int diag_errors(const Diag *d) { return d->errors; }

int diag_finish(Diag *d) {
  if (d->errors) fprintf(d->out, "%d error%s generated.\n", d->errors, d->errors == 1 ? "" : "s");
  return d->errors;
}

SrcLoc loc_join(SrcLoc a, SrcLoc b) {
  if (!a.file) return b;
  if (!b.file) return a;
  SrcLoc r = a;
  if (b.end_line > a.end_line || (b.end_line == a.end_line && b.end_col > a.end_col)) {
    r.end_line = b.end_line;
    r.end_col = b.end_col;
  }
  return r;
}
