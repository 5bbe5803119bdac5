/* diag.h — GCC/Clang-style diagnostics: `file:line:col: error: msg`, the source line, and
 * carets under the span. Every token, AST node and IR node carries a SrcLoc. */
#ifndef NN_DIAG_H
#define NN_DIAG_H
#include <stdio.h>

typedef struct SrcLoc {
  const char *file; /* NULL = no location (generated node) */
  int line, col;    /* 1-based, first character */
  int end_line, end_col; /* inclusive last character */
} SrcLoc;

typedef struct Diag Diag;

Diag *diag_new(FILE *out);
void diag_free(Diag *d);
/* register a file's text so carets can be drawn under its lines (both are copied) */
void diag_add_source(Diag *d, const char *file, const char *text, size_t len);
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* an error without source position, e.g. about a .npy file: `nnc: error: msg` or
 * `PATH: error: msg` when path is given */
void diag_error_file(Diag *d, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_errors(const Diag *d);
/* "N errors generated." when any; returns the count */
int diag_finish(Diag *d);
/* a location covering both a and b */
SrcLoc loc_join(SrcLoc a, SrcLoc b);
#endif
