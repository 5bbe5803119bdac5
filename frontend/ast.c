/* ast.c — construction, release and the textual dump (`nnc emit --emit=ast`) of the AST. */
#include "ast.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"

Ast *ast_new(AstKind k, SrcLoc loc) {
  Ast *n = xcalloc(1, sizeof *n);
  n->kind = k;
  n->loc = loc;
  n->name_loc = loc;
  n->depth = 1;
  return n;
}

Ast *ast_leaf_name(AstKind k, SrcLoc loc, char *name) {
  Ast *n = ast_new(k, loc);
  n->name = name;
  return n;
}

void ast_append(Ast *list, Ast *kid) {
  if (!kid) return;
  if (list->nkids == list->cap) {
    list->cap = list->cap ? 2 * list->cap : 4;
    list->kids = xrealloc(list->kids, (size_t)list->cap * sizeof *list->kids);
  }
  list->kids[list->nkids++] = kid;
  if (kid->depth + 1 > list->depth) list->depth = kid->depth + 1;
}

void ast_fix_depth(Ast *n) {
  int d = 0;
  if (n->a && n->a->depth > d) d = n->a->depth;
  if (n->b && n->b->depth > d) d = n->b->depth;
  for (int i = 0; i < n->nkids; i++)
    if (n->kids[i]->depth > d) d = n->kids[i]->depth;
  n->depth = d + 1;
}

void ast_free(Ast *n) {
  if (!n) return;
  ast_free(n->a);
  ast_free(n->b);
  for (int i = 0; i < n->nkids; i++) ast_free(n->kids[i]);
  free(n->kids);
  free(n->name);
  free(n);
}

static const char *kind_names[AST_KIND_COUNT] = {
    [AST_ERROR] = "error",     [AST_INT] = "int",         [AST_FLOAT] = "float",
    [AST_STR] = "str",         [AST_NAME] = "name",       [AST_LIST] = "list",
    [AST_NEG] = "neg",         [AST_BINARY] = "binary",   [AST_CALL] = "call",
    [AST_KWARG] = "kwarg",     [AST_DIM] = "dim",         [AST_DIMDEF] = "dimdef",
    [AST_INPUT] = "input",     [AST_PARAM] = "param",     [AST_TYPE] = "type",
    [AST_OUTPUT] = "output",   [AST_ASSIGN] = "assign",   [AST_RETURN] = "return",
    [AST_FOR] = "for",         [AST_MINIMIZE] = "minimize", [AST_OPTIMIZER] = "optimizer",
    [AST_MEMORY] = "memory",   [AST_MODEL] = "model",     [AST_BLOCK] = "block",
    [AST_ARGDEF] = "argdef",   [AST_TRAIN] = "train",     [AST_FILE] = "file",
};

const char *ast_kind_name(AstKind k) {
  return (unsigned)k < AST_KIND_COUNT && kind_names[k] ? kind_names[k] : "?";
}

static void dump_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f) fprintf(out, "\\x%02x", c);
    else fputc(c, out);
  }
  fputc('"', out);
}

static void dump_slot(FILE *out, const char *label, const Ast *n, int indent);

static void dump_node(FILE *out, const Ast *n, int indent) {
  fprintf(out, "%*s%s", indent * 2, "", ast_kind_name(n->kind));
  switch (n->kind) {
  case AST_INT: fprintf(out, " %lld", (long long)n->ival); break;
  case AST_FLOAT: fprintf(out, " %.17g", n->fval); break;
  case AST_STR: fputc(' ', out); dump_str(out, n->name ? n->name : ""); break;
  case AST_BINARY: fprintf(out, " '%c'", n->op); break;
  default:
    if (n->name) fprintf(out, " %s", n->name);
  }
  fprintf(out, " @%d:%d-%d:%d\n", n->loc.line, n->loc.col, n->loc.end_line, n->loc.end_col);
  const char *la = "", *lb = "";
  switch (n->kind) {
  case AST_PARAM: la = "type"; lb = "init"; break;
  case AST_INPUT: la = "type"; break;
  case AST_FOR: la = "from"; lb = "to"; break;
  case AST_BLOCK: la = "args"; break;
  case AST_ARGDEF: la = "default"; lb = "type"; break;
  case AST_MEMORY: la = "amount"; break;
  default: break;
  }
  dump_slot(out, la, n->a, indent + 1);
  dump_slot(out, lb, n->b, indent + 1);
  for (int i = 0; i < n->nkids; i++) dump_node(out, n->kids[i], indent + 1);
}

static void dump_slot(FILE *out, const char *label, const Ast *n, int indent) {
  if (!n) return;
  if (*label) {
    fprintf(out, "%*s%s:\n", indent * 2, "", label);
    dump_node(out, n, indent + 1);
  } else {
    dump_node(out, n, indent);
  }
}

void ast_dump(FILE *out, const Ast *n) {
  if (n) dump_node(out, n, 0);
}
