/* ast.h — the syntax tree of a .nn file, as the parser builds it and sema walks it.
 *
 * One node type for everything: a kind tag, the source span, a few scalar fields and
 * children (fixed slots a/b for operands, kids for lists). Nodes are heap-allocated one by
 * one so the parser's %destructor can free values it discards during error recovery; the
 * whole tree is released with ast_free. Only frontend/ includes this header.
 */
#ifndef NN_AST_H
#define NN_AST_H
#include <stdint.h>
#include <stdio.h>

#include "diag.h"

/* deeper expressions are rejected by the parser, so every walk may recurse safely */
#define AST_MAX_DEPTH 512

typedef enum {
  AST_ERROR,    /* placeholder for a syntax error; sema stays silent about it */
  /* expressions */
  AST_INT,      /* ival */
  AST_FLOAT,    /* fval */
  AST_STR,      /* name = text without quotes */
  AST_NAME,     /* name */
  AST_LIST,     /* kids = elements: [a, b, c] */
  AST_NEG,      /* -a */
  AST_BINARY,   /* a op b; op is one of + - * / ^ @ */
  AST_CALL,     /* name(kids...); name_loc = callee span */
  AST_KWARG,    /* name = a, inside a call */
  /* statements */
  AST_DIM,      /* dim kids (AST_DIMDEF...) */
  AST_DIMDEF,   /* name = a */
  AST_INPUT,    /* input name: a (AST_TYPE) */
  AST_PARAM,    /* param name: a (AST_TYPE) [= b] */
  AST_TYPE,     /* name (dtype) [kids = dim expressions] */
  AST_OUTPUT,   /* output kids (AST_NAME...) */
  AST_ASSIGN,   /* name = a */
  AST_RETURN,   /* return a */
  AST_FOR,      /* for name in a .. b { kids } */
  AST_MINIMIZE, /* minimize name */
  AST_OPTIMIZER,/* optimizer a (AST_CALL) */
  AST_MEMORY,   /* memory a unit(name) */
  /* items */
  AST_MODEL,    /* model name { kids } */
  AST_BLOCK,    /* block name(a: AST_LIST of AST_ARGDEF) { kids } */
  AST_ARGDEF,   /* name [: b (AST_NAME type)] [= a] */
  AST_TRAIN,    /* train name { kids } */
  AST_FILE,     /* kids = items */
  AST_KIND_COUNT
} AstKind;

typedef struct Ast {
  AstKind kind;
  SrcLoc loc;      /* the whole construct */
  SrcLoc name_loc; /* the identifier in `name` where there is one */
  int op;          /* AST_BINARY operator character */
  int depth;       /* height of the subtree (1 for leaves) */
  char *name;
  int64_t ival;
  double fval;
  struct Ast *a, *b;
  struct Ast **kids;
  int nkids, cap;
} Ast;

Ast *ast_new(AstKind k, SrcLoc loc);
Ast *ast_leaf_name(AstKind k, SrcLoc loc, char *name); /* takes ownership of name */
void ast_append(Ast *list, Ast *kid);                   /* kid may be NULL (ignored) */
void ast_fix_depth(Ast *n);                              /* from a, b and kids */
void ast_free(Ast *n);
const char *ast_kind_name(AstKind k);
/* indented tree with line:col spans, one node per line */
void ast_dump(FILE *out, const Ast *n);
#endif
