/* fe_parse.h — the state shared by the scanner (lexer.l) and the parser (parser.y), and the
 * entry point that turns source text into an AST. Internal to frontend/. */
#ifndef NN_FE_PARSE_H
#define NN_FE_PARSE_H
#include <stdbool.h>
#include <stddef.h>

#include "ast.h"
#include "diag.h"

typedef struct ParseState {
  const char *file; /* name used in SrcLocs; must outlive the AST */
  Diag *diag;
  int errors;       /* syntax and lexical errors reported by this parse */
  Ast *root;        /* AST_FILE, set when parsing finishes */
  /* scanner position: next character */
  int line, col;
  int tok_line, tok_end_col; /* end of the last token that is not blank or a comment */
  int paren;        /* open ( and [: newlines inside them are not statement ends */
  char tok[64];     /* text of the last token, for "unexpected 'x'" */
  bool too_deep;    /* "nested too deeply" is reported once */
} ParseState;

/* parse text (may contain NUL bytes, need not be terminated); never NULL */
Ast *fe_parse(const char *file, const char *text, size_t len, Diag *d, int *nerrors);

/* helpers used by the generated code */
void fe_syntax_error(ParseState *ps, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
