/* sema.h — semantic analysis state shared by sema.c (names, statements, blocks, models,
 * train sections) and builtins.c (the built-in functions and their lowering to IR).
 * Internal to frontend/. */
#ifndef NN_SEMA_H
#define NN_SEMA_H
#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "frontend.h"
#include "ir.h"

/* compile-time values: what an expression evaluates to */
typedef enum { V_ERR, V_TENSOR, V_INT, V_FLOAT, V_STR, V_BOOL, V_DTYPE, V_LIST } VKind;

typedef struct Value {
  VKind k;
  int node;     /* V_TENSOR */
  int64_t i;    /* V_INT when dim == NULL */
  Dim *dim;     /* V_INT with symbols */
  double mag;   /* V_INT: bound on the sum of |coefficients|, to refuse overflowing dims */
  double f;     /* V_FLOAT */
  const char *s;
  bool b;
  DType dt;
  struct Value *items;
  int nitems;
  SrcLoc loc;
} Value;

typedef enum { B_VAR, B_DIM, B_INPUT, B_PARAM, B_ARG, B_LOOP } BindKind;

typedef struct Binding {
  const char *name;
  Value v;
  SrcLoc loc;
  BindKind kind;
} Binding;

typedef struct Counter {
  const char *key;
  int n;
} Counter;

/* one model body or one block instance */
typedef struct Frame {
  Binding *b;
  int n, cap;
  const char *scope;   /* instance path; NULL at model level */
  const Ast *block;    /* the block being instantiated; NULL for a model */
  int loops[16], nloops; /* indices of the enclosing for-loops, for implicit names */
  Counter *counters;   /* automatic layer names: conv2d_0, conv2d_1, ... */
  int ncounters, capcounters;
  bool returned;
  Value ret;
} Frame;

typedef struct StrMap StrMap;

typedef struct Sema {
  Diag *d;
  Arena *a;
  IrModule *m;
  IrGraph *g;       /* the model being built */
  const FeOptions *opt;
  bool *define_used;
  const Ast *file;
  const Ast **blocks;
  int nblocks;
  const Ast *active[64]; /* blocks being instantiated, innermost last */
  int nactive;
  Frame *fr;
  Frame *model_fr;  /* the model's own frame: its dims, fixed ones included, are seen in blocks */
  StrMap *params;   /* parameter name -> node, per model */
  StrMap *seen;     /* reported diagnostics, so a block used N times reports once */
  bool last_skipped;
  long work;
  bool gave_up;     /* the work limit was hit: stop evaluating */
  const Ast *pending_call; /* `v = layer(...)`: the call that is named after v */
  const char *pending_name;
  int *wide_dense;  /* MATMULs of dense layers on inputs of rank > 2, per model */
  int nwide_dense, cap_wide_dense;
} Sema;

/* sema.c */
void sema_error(Sema *s, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sema_note(Sema *s, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
Value sema_eval(Sema *s, const Ast *e);
/* dense layer `mm` (its MATMUL) acts on an input of rank > 2 (as PyTorch: on the last axis) */
void sema_wide_dense(Sema *s, int mm);
/* after a shape error on operands in[0..nin): when one of rank > 2 comes from such a dense
 * layer through ops that keep its rank, a note at that layer suggesting flatten */
void sema_note_wide_dense(Sema *s, const int *in, int nin);
Value v_err(void);
Value v_int(int64_t i, SrcLoc loc);
Value v_tensor(int node, SrcLoc loc);
const char *v_kind_name(const Value *v);
Dim *sema_dim(Sema *s, const Value *v); /* V_INT as a Dim */
const char *sema_suggest(const char *name, const char *const *cands, int n);
const char *sema_type_str(Sema *s, int node);
/* the full layer path for a layer call: explicit name, the assigned variable or an
 * automatic one */
const char *sema_layer_scope(Sema *s, const Ast *call, const char *kind, const Value *name);
/* ir_build with diagnostics; -1 on error (reported) */
int sema_build(Sema *s, OpKind op, const int *in, int nin, const IrAttr *attr,
               const IrType *hint, SrcLoc loc, const SrcLoc *inlocs, const char *scope);
Value sema_call_block(Sema *s, const Ast *blk, const Ast *call);
const Ast *sema_find_block(Sema *s, const char *name);
bool sema_tick(Sema *s);
int sema_param_lookup(Sema *s, const char *name); /* node of a parameter, -1 if none */
void sema_param_record(Sema *s, const char *name, int node);

/* builtins.c */
typedef struct Builtin Builtin;
const Builtin *builtin_find(const char *name);
Value builtin_call(Sema *s, const Builtin *b, const Ast *call);
int builtin_count(void);
const char *builtin_name(int i);
bool builtin_is_initializer(const char *name);
#endif
