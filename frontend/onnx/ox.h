/* ox.h — internals of the ONNX importer, shared by its files:
 *   ox_model.c  values (tensors, folded constants, parameters), attributes, names, output
 *   ox_ops.c    one handler per ONNX op kind, writing .nn lines
 *   ox_fuse.c   patterns spanning several nodes (the erf form of GELU)
 *   ox_blocks.c repeated instances rewritten as blocks
 *   onnx_import.c  the driver: read the file, check every op kind, walk the graph, write
 * Every ONNX value is an OxVal: a tensor computed by the .nn program (it has an identifier),
 * or a constant known at import time (initializers, Constant, folded Shape arithmetic). A
 * constant becomes a parameter only where a tensor is needed. */
#ifndef OX_H
#define OX_H
#include <stdint.h>
#include <stdio.h>

#include "../../ir/arena.h"
#include "../../ir/diag.h"
#include "../../runtime/rt_tensor.h"
#include "onnx.pb-c.h"

#define OX_MAX_RANK 6

typedef struct OxDim {
  int64_t v;       /* the size (a symbolic dim's default value) */
  const char *sym; /* the .nn dim name, or NULL for a fixed size */
} OxDim;

typedef enum { OXV_INPUT, OXV_TENSOR, OXV_CONST } OxKind;

typedef struct OxVal {
  const char *name; /* the ONNX name */
  OxKind kind;
  int elem; /* ONNX TensorProto data type */
  int rank;
  OxDim dims[OX_MAX_RANK];
  const char *id;    /* .nn identifier (tensors; inputs and constants once declared) */
  double *cv;        /* OXV_CONST: the values, row-major */
  const char **csym; /* OXV_CONST from Shape: per element, the dim symbol it came from */
  int64_t n;         /* OXV_CONST: element count */
  const char *param; /* the parameter holding this value as it is, once one does */
  const char *tsrc;  /* a folded Transpose of a 2-D parameter source: that source's name */
  int padded;        /* the output of a zero Pad, folded into the Conv/AveragePool it feeds: */
  int64_t pad4[4];   /* the padding still to apply: top, left, bottom, right */
} OxVal;

typedef struct OxCtx {
  const char *path;
  const struct OnnxImportOptions *opt;
  Diag *d;
  Arena *a;
  Onnx__GraphProto *g;
  int64_t opset; /* of the default domain */
  OxVal *vals;
  int nvals, cap;
  FILE *body; /* the model's statements */
  char *body_buf;
  size_t body_len;
  FILE *decl; /* dims, inputs */
  char *decl_buf;
  size_t decl_len;
  FILE *notes; /* header comments: where inputs, params and outputs came from */
  char *notes_buf;
  size_t notes_len;
  RtTensorSet weights;
  const char **ids; /* identifiers and parameter names in use */
  int nids, idcap;
  int nsyms;
  const char *syms[16]; /* ONNX dim_param names, and the .nn dims declared for them */
  const char *symid[16];
  char *skip;                       /* per node: consumed by a pattern fused into an earlier node */
  const Onnx__NodeProto **gelu_out; /* per Erf node of an erf-form GELU: the node whose
                                       output is gelu(x); gelu_x[i] is x */
  const char **gelu_x;
} OxCtx;

/* --- ox_model.c --------------------------------------------------------------------------- */
OxVal *ox_find(OxCtx *c, const char *name);
OxVal *ox_new(OxCtx *c, const char *name, OxKind k);
/* how many node inputs and graph outputs read the value called name */
int ox_uses(const OxCtx *c, const char *name);
/* an error about node n (or the file when n is NULL); returns -1 */
int ox_err(OxCtx *c, const Onnx__NodeProto *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *ox_node_name(const Onnx__NodeProto *n);
/* s fit for a comment line: characters outside printable ASCII become '?' */
const char *ox_text(OxCtx *c, const char *s);
/* a TensorProto's values as doubles into v (kind OXV_CONST) */
int ox_tensor_to_const(OxCtx *c, const Onnx__TensorProto *t, OxVal *v, const Onnx__NodeProto *n);
/* attributes */
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name);
int64_t ox_attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt);
double ox_attr_f(const Onnx__NodeProto *n, const char *name, double dflt);
const char *ox_attr_s(OxCtx *c, const Onnx__NodeProto *n, const char *name, const char *dflt);
/* INTS attribute into out (at most max); returns the count, or -1 when absent */
int ox_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max);
/* a fresh .nn identifier derived from an ONNX name; and a fresh dotted parameter scope */
const char *ox_ident(OxCtx *c, const char *onnx_name);
const char *ox_scope(OxCtx *c, const char *weight_name, const char *fallback);
int ox_claim(OxCtx *c, const char *name);
/* a keyword, dtype or built-in function name, which a variable may not take */
int ox_reserved(const char *s);
/* the .nn expression of node input i: an identifier, a number or a declared parameter
 * holding a constant; NULL after reporting an error. A one-element constant of rank below
 * allow_number becomes a number (pass 1 + the other operand's rank; 0 = never) */
const char *ox_operand(OxCtx *c, const Onnx__NodeProto *n, int i, int allow_number);
/* the same for the value called name (which exists), read by node n */
const char *ox_value_expr(OxCtx *c, const Onnx__NodeProto *n, const char *name, int allow_number);
/* declare a value as produced by this node's output i, named after it */
OxVal *ox_def(OxCtx *c, const Onnx__NodeProto *n, int i, int rank, const OxDim *dims);
/* register a parameter tensor for the weights file (data may be NULL for a graph input
 * the caller feeds; transpose swaps a 2-D tensor) */
int ox_weight(OxCtx *c, const Onnx__NodeProto *n, const char *pname, OxVal *v, int transpose,
              int rank, const int64_t *shape);
/* s followed by the formatted text, in the arena (s may be NULL) */
char *ox_cat(OxCtx *c, const char *s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* `  id = EXPR  # Op 'node'` into the body */
void ox_line(OxCtx *c, const Onnx__NodeProto *n, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* a shape as `[2, N, 8]` */
void ox_print_dims(FILE *f, int rank, const OxDim *dims);
int64_t ox_numel(const OxVal *v);
int ox_axis(OxCtx *c, const Onnx__NodeProto *n, int64_t axis, int rank, int *out);
const char *ox_dt_name(int elem);

/* --- ox_fuse.c: patterns that span nodes ---------------------------------------------- */
/* finds x * 0.5 * (1 + erf(x / sqrt(2))) in its exported forms; marks the nodes (c->skip,
 * c->gelu_out, c->gelu_x) so that the Erf node writes gelu(x) */
void ox_find_gelu(OxCtx *c);

/* --- ox_blocks.c ------------------------------------------------------------------------ */
/* rewrites the body (closed) so that repeated instances call blocks; *defs (malloc'd) gets
 * the block definitions */
int ox_make_blocks(OxCtx *c, char **defs, size_t *defs_len);

/* --- ox_ops.c ------------------------------------------------------------------------------ */
typedef int (*OxOpFn)(OxCtx *c, const Onnx__NodeProto *n, int idx);
/* the handler of an op kind, -1 when nnc has none; ox_op_run runs it on node n */
int ox_op_index(const char *op_type);
int ox_op_run(OxCtx *c, const Onnx__NodeProto *n, int idx);
#endif
