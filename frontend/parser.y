/* parser.y — the grammar of .nn files (docs/language.md is its prose form).
 *
 * Pure parser with locations; all state lives in ParseState (%parse-param) and the scanner
 * (%param). Semantic values are heap AST nodes; %destructor frees what error recovery
 * discards. Error productions resynchronise at the end of a line or at a closing brace, so
 * one run reports every broken statement, not just the first.
 */
%define api.pure full
%locations
%expect 0
%define parse.error custom
%define parse.lac full
%param {yyscan_t scanner}
%parse-param {ParseState *ps}

%code requires {
#include <stdint.h>
#include "fe_parse.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
}

%code {
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseState *ps, const char *msg);

#define L(l) pa_loc(ps, &(l))
static SrcLoc pa_loc(ParseState *ps, const YYLTYPE *l) {
  return (SrcLoc){ps->file, l->first_line, l->first_column, l->last_line, l->last_column};
}

/* an expression node, or AST_ERROR once the tree gets deeper than sema may recurse */
static Ast *pa_expr(ParseState *ps, Ast *n) {
  ast_fix_depth(n);
  if (n->depth <= AST_MAX_DEPTH) return n;
  if (!ps->too_deep)
    fe_syntax_error(ps, n->loc, "expression is nested too deeply (more than %d levels)",
                    AST_MAX_DEPTH);
  ps->too_deep = true;
  SrcLoc loc = n->loc;
  ast_free(n);
  return ast_new(AST_ERROR, loc);
}

static Ast *pa_binary(ParseState *ps, int op, Ast *a, Ast *b, SrcLoc loc) {
  Ast *n = ast_new(AST_BINARY, loc);
  n->op = op;
  n->a = a;
  n->b = b;
  return pa_expr(ps, n);
}

static Ast *pa_named(AstKind k, SrcLoc loc, char *name, SrcLoc name_loc) {
  Ast *n = ast_leaf_name(k, loc, name);
  n->name_loc = name_loc;
  return n;
}
}

%union {
  Ast *node;
  char *str;
  int64_t ival;
  double fval;
}

%token MODEL "'model'" BLOCK "'block'" TRAIN "'train'" DIM "'dim'" INPUT "'input'"
%token PARAM "'param'" OUTPUT "'output'" RETURN "'return'" FOR "'for'" IN "'in'"
%token MINIMIZE "'minimize'" OPTIMIZER "'optimizer'" MEMORY "'memory'"
%token NL "end of line" DOTDOT "'..'"
%token <str> IDENT "identifier" STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"

%nterm <node> items item body stmts stmt dimdefs dimdef type dimlist_opt dimlist names
%nterm <node> argdefs_opt argdefs argdef expr primary args_opt args arg list_opt list

%destructor { free($$); } <str>
%destructor { ast_free($$); } <node>

%left '+' '-'
%left '*' '/' '@'
%precedence UMINUS
%right '^'

%%

file: items { ps->root = $1; (void)yynerrs; /* counted in ps->errors instead */ }
  ;

items
  : %empty          { $$ = ast_new(AST_FILE, L(@$)); }
  | items item      { $$ = $1; ast_append($$, $2); }
  | items NL        { $$ = $1; }
  | items error NL  { $$ = $1; yyerrok; }
  | items error '}' { $$ = $1; yyerrok; }
  ;

item
  : MODEL IDENT nls body {
      $$ = $4; $$->kind = AST_MODEL; $$->name = $2; $$->name_loc = L(@2);
      $$->loc = loc_join(L(@1), L(@2)); }
  | BLOCK IDENT '(' argdefs_opt ')' nls body {
      $$ = $7; $$->kind = AST_BLOCK; $$->name = $2; $$->name_loc = L(@2);
      $$->loc = loc_join(L(@1), L(@5)); $$->a = $4; ast_fix_depth($$); }
  | BLOCK IDENT '(' error ')' nls body {
      $$ = $7; $$->kind = AST_BLOCK; $$->name = $2; $$->name_loc = L(@2);
      $$->loc = loc_join(L(@1), L(@5)); $$->a = ast_new(AST_LIST, L(@4)); ast_fix_depth($$); }
  | TRAIN IDENT nls body {
      $$ = $4; $$->kind = AST_TRAIN; $$->name = $2; $$->name_loc = L(@2);
      $$->loc = loc_join(L(@1), L(@2)); }
  ;

nls: %empty | nls NL ;

body
  : '{' stmts '}'       { $$ = $2; }
  | '{' stmts error '}' { $$ = $2; yyerrok; }
  ;

stmts
  : %empty          { $$ = ast_new(AST_LIST, L(@$)); }
  | stmts stmt      { $$ = $1; ast_append($$, $2); }
  | stmts NL        { $$ = $1; }
  | stmts error NL  { $$ = $1; yyerrok; }
  ;

stmt
  : DIM dimdefs     { $$ = $2; $$->kind = AST_DIM; $$->loc = L(@$); }
  | INPUT IDENT ':' type {
      $$ = pa_named(AST_INPUT, L(@$), $2, L(@2)); $$->a = $4; }
  | PARAM IDENT ':' type {
      $$ = pa_named(AST_PARAM, L(@$), $2, L(@2)); $$->a = $4; }
  | PARAM IDENT ':' type '=' expr {
      $$ = pa_named(AST_PARAM, L(@$), $2, L(@2)); $$->a = $4; $$->b = $6; ast_fix_depth($$); }
  | OUTPUT names    { $$ = $2; $$->kind = AST_OUTPUT; $$->loc = L(@$); }
  | IDENT '=' expr  { $$ = pa_named(AST_ASSIGN, L(@$), $1, L(@1)); $$->a = $3; ast_fix_depth($$); }
  | RETURN expr     { $$ = ast_new(AST_RETURN, L(@$)); $$->a = $2; ast_fix_depth($$); }
  | FOR IDENT IN expr DOTDOT expr nls body {
      $$ = $8; $$->kind = AST_FOR; $$->name = $2; $$->name_loc = L(@2);
      $$->loc = loc_join(L(@1), L(@6)); $$->a = $4; $$->b = $6; ast_fix_depth($$); }
  | MINIMIZE IDENT  { $$ = pa_named(AST_MINIMIZE, L(@$), $2, L(@2)); }
  | OPTIMIZER IDENT '(' args_opt ')' {
      $$ = ast_new(AST_OPTIMIZER, L(@$));
      $4->kind = AST_CALL; $4->name = $2; $4->name_loc = L(@2);
      $4->loc = loc_join(L(@2), L(@5)); $$->a = $4; ast_fix_depth($$); }
  | MEMORY expr IDENT {
      $$ = pa_named(AST_MEMORY, L(@$), $3, L(@3)); $$->a = $2; ast_fix_depth($$); }
  ;

dimdefs
  : dimdef                 { $$ = ast_new(AST_DIM, L(@$)); ast_append($$, $1); }
  | dimdefs ',' nls dimdef { $$ = $1; ast_append($$, $4); }
  ;

dimdef: IDENT '=' expr { $$ = pa_named(AST_DIMDEF, L(@$), $1, L(@1)); $$->a = $3; ast_fix_depth($$); } ;

type
  : IDENT                     { $$ = pa_named(AST_TYPE, L(@$), $1, L(@1)); }
  | IDENT '[' dimlist_opt ']' { $$ = $3; $$->kind = AST_TYPE; $$->name = $1;
                                $$->name_loc = L(@1); $$->loc = L(@$); }
  ;

dimlist_opt
  : %empty      { $$ = ast_new(AST_LIST, L(@$)); }
  | dimlist
  | dimlist ',' { $$ = $1; }
  ;

dimlist
  : expr             { $$ = ast_new(AST_LIST, L(@$)); ast_append($$, $1); }
  | dimlist ',' expr { $$ = $1; ast_append($$, $3); }
  ;

names
  : IDENT           { $$ = ast_new(AST_OUTPUT, L(@$));
                      ast_append($$, pa_named(AST_NAME, L(@1), $1, L(@1))); }
  | names ',' IDENT { $$ = $1; ast_append($$, pa_named(AST_NAME, L(@3), $3, L(@3))); }
  ;

argdefs_opt
  : %empty      { $$ = ast_new(AST_LIST, L(@$)); }
  | argdefs
  | argdefs ',' { $$ = $1; }
  ;

argdefs
  : argdef             { $$ = ast_new(AST_LIST, L(@$)); ast_append($$, $1); }
  | argdefs ',' argdef { $$ = $1; ast_append($$, $3); }
  ;

argdef
  : IDENT { $$ = pa_named(AST_ARGDEF, L(@$), $1, L(@1)); }
  | IDENT ':' IDENT {
      $$ = pa_named(AST_ARGDEF, L(@$), $1, L(@1));
      $$->b = pa_named(AST_NAME, L(@3), $3, L(@3)); ast_fix_depth($$); }
  | IDENT '=' expr {
      $$ = pa_named(AST_ARGDEF, L(@$), $1, L(@1)); $$->a = $3; ast_fix_depth($$); }
  | IDENT ':' IDENT '=' expr {
      $$ = pa_named(AST_ARGDEF, L(@$), $1, L(@1));
      $$->b = pa_named(AST_NAME, L(@3), $3, L(@3)); $$->a = $5; ast_fix_depth($$); }
  ;

expr
  : expr '+' expr { $$ = pa_binary(ps, '+', $1, $3, L(@$)); }
  | expr '-' expr { $$ = pa_binary(ps, '-', $1, $3, L(@$)); }
  | expr '*' expr { $$ = pa_binary(ps, '*', $1, $3, L(@$)); }
  | expr '/' expr { $$ = pa_binary(ps, '/', $1, $3, L(@$)); }
  | expr '@' expr { $$ = pa_binary(ps, '@', $1, $3, L(@$)); }
  | expr '^' expr { $$ = pa_binary(ps, '^', $1, $3, L(@$)); }
  | '-' expr %prec UMINUS { $$ = ast_new(AST_NEG, L(@$)); $$->a = $2; $$ = pa_expr(ps, $$); }
  | primary
  ;

primary
  : INT       { $$ = ast_new(AST_INT, L(@$)); $$->ival = $1; }
  | FLOAT     { $$ = ast_new(AST_FLOAT, L(@$)); $$->fval = $1; }
  | STRING    { $$ = ast_leaf_name(AST_STR, L(@$), $1); }
  | IDENT     { $$ = ast_leaf_name(AST_NAME, L(@$), $1); }
  | IDENT '(' args_opt ')' {
      $$ = $3; $$->kind = AST_CALL; $$->name = $1; $$->name_loc = L(@1); $$->loc = L(@$);
      $$ = pa_expr(ps, $$); }
  | IDENT '(' error ')' { $$ = ast_new(AST_ERROR, L(@$)); free($1); }
  | '(' expr ')'  { $$ = $2; $$->loc = L(@$); }
  | '(' error ')' { $$ = ast_new(AST_ERROR, L(@$)); }
  | '[' list_opt ']' { $$ = $2; $$->loc = L(@$); $$ = pa_expr(ps, $$); }
  | '[' error ']' { $$ = ast_new(AST_ERROR, L(@$)); }
  ;

args_opt
  : %empty   { $$ = ast_new(AST_CALL, L(@$)); }
  | args
  | args ',' { $$ = $1; }
  ;

args
  : arg          { $$ = ast_new(AST_CALL, L(@$)); ast_append($$, $1); }
  | args ',' arg { $$ = $1; ast_append($$, $3); }
  ;

arg
  : expr
  | IDENT '=' expr { $$ = pa_named(AST_KWARG, L(@$), $1, L(@1)); $$->a = $3; ast_fix_depth($$); }
  ;

list_opt
  : %empty   { $$ = ast_new(AST_LIST, L(@$)); }
  | list
  | list ',' { $$ = $1; }
  ;

list
  : expr          { $$ = ast_new(AST_LIST, L(@$)); ast_append($$, $1); }
  | list ',' expr { $$ = $1; ast_append($$, $3); }
  ;

%%

void fe_syntax_error(ParseState *ps, SrcLoc loc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(ps->diag, loc, "%s", msg);
  ps->errors++;
}

/* bison calls this only for "memory exhausted" (syntax errors go to yyreport_syntax_error):
 * its stack of YYMAXDEPTH states overflows only when the input nests that deep, before any
 * of the nesting is reduced and checked by pa_expr */
static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseState *ps, const char *msg) {
  (void)scanner;
  if (strcmp(msg, "memory exhausted") != 0)
    fe_syntax_error(ps, pa_loc(ps, loc), "%s", msg);
  else if (!ps->too_deep)
    fe_syntax_error(ps, pa_loc(ps, loc), "expression is nested too deeply (more than %d levels)",
                    AST_MAX_DEPTH);
  ps->too_deep = true;
}

/* token names without the quotes bison keeps around aliases */
static const char *pa_tok_name(yysymbol_kind_t k, char *buf, size_t n) {
  const char *s = yysymbol_name(k);
  size_t len = strlen(s);
  if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
    snprintf(buf, n, "%.*s", (int)(len - 2), s + 1);
    return buf;
  }
  return s;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, ParseState *ps) {
  (void)scanner;
  enum { MAXEXP = 5 };
  yysymbol_kind_t exp[MAXEXP];
  int n = yypcontext_expected_tokens(ctx, exp, MAXEXP);
  yysymbol_kind_t tok = yypcontext_token(ctx);
  char msg[400], nb[64];
  size_t k = 0;
  if (tok == YYSYMBOL_IDENT || tok == YYSYMBOL_INT || tok == YYSYMBOL_FLOAT)
    k += (size_t)snprintf(msg, sizeof msg, "unexpected %s '%s'", pa_tok_name(tok, nb, sizeof nb),
                          ps->tok);
  else
    k += (size_t)snprintf(msg, sizeof msg, "unexpected %s", pa_tok_name(tok, nb, sizeof nb));
  if (n > 0 && n < MAXEXP) /* a long list of alternatives helps nobody */
    for (int i = 0; i < n && k < sizeof msg; i++)
      k += (size_t)snprintf(msg + k, sizeof msg - k, "%s%s", i == 0 ? "; expected " :
                            i == n - 1 ? " or " : ", ", pa_tok_name(exp[i], nb, sizeof nb));
  fe_syntax_error(ps, pa_loc(ps, yypcontext_location(ctx)), "%s", msg);
  ps->paren = 0; /* an unclosed '(' must not hide the newline that recovery waits for */
  return 0;
}
