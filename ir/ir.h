/* ir.h — the graph IR of nnc.
 *
 * A graph is an SSA list of nodes; node i produces value i. Operands are node indices and
 * always refer to earlier nodes, so index order is a valid topological order. A node holds
 * its op kind (ops.def), operands, attributes, result type (dtype + symbolic shape), the
 * source span that created it, its value name (if the user named it), the layer scope it
 * belongs to (e.g. "layer1.0.conv1", used to aggregate costs) and its phase (forward,
 * backward, optimizer). Graphs and everything they point to live in one arena.
 */
#ifndef NN_IR_H
#define NN_IR_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../runtime/nn_dtype.h"
#include "arena.h"
#include "diag.h"
#include "dim.h"

#define IR_MAX_RANK 6
#define IR_MAX_IN 8 /* CONCAT may take more: in[] is arena-allocated with nin entries */

typedef enum {
#define X(e, name, arity, flags) OP_##e,
#include "ops.def"
#undef X
  OP_COUNT
} OpKind;

enum {
  OPF_LEAF = 1 << 0,
  OPF_ELEMWISE = 1 << 1,
  OPF_TRANSC = 1 << 2, /* evaluates a transcendental function (counted separately) */
  OPF_REDUCE = 1 << 3,
  OPF_GEMM = 1 << 4, /* GEMM-like: gets tile decisions */
  OPF_LOSS = 1 << 5,
  OPF_BWD = 1 << 6,
  OPF_EFFECT = 1 << 7,
};

typedef struct OpInfo {
  const char *name;
  int arity;
  unsigned flags;
} OpInfo;
extern const OpInfo ir_ops[OP_COUNT];
const char *ir_op_name(OpKind op);
int ir_op_find(const char *name); /* -1 if none */

typedef enum { PH_FWD, PH_BWD, PH_OPT } Phase;

typedef enum { INIT_NONE, INIT_ZEROS, INIT_ONES, INIT_NORMAL, INIT_UNIFORM, INIT_XAVIER,
               INIT_HE, INIT_CONST } InitKind;

typedef struct IrType {
  DType dt;
  int rank;
  Dim *dims[IR_MAX_RANK];
} IrType;

/* Attributes: one flat struct; each op documents which fields it reads (docs/ops.md). */
typedef struct IrAttr {
  int axis;                   /* concat, slice, softmax */
  int naxes;                  /* reductions, transpose (perm), layernorm (trailing axes) */
  int axes[IR_MAX_RANK];
  bool keepdim;
  bool trans_a, trans_b;      /* matmul */
  bool train;                 /* batchnorm, dropout: training semantics */
  int kernel[2], stride[2], pad[2], dilation[2], groups; /* conv/pool, [h, w] */
  bool ceil_mode;             /* pool: output extent rounded up (PyTorch's ceil_mode) */
  bool exclude_pad;           /* avgpool: divide by the in-bounds count (count_include_pad=False) */
  Dim *start, *end;           /* slice on attr.axis: [start, end) */
  double value;               /* const fill, powc exponent, dropout p, eps of norms */
  const double *data;         /* CONST folded at build time (passes/fold.c): one value per
                                 element at the dims it was folded with; NULL: a fill */
  double momentum;            /* batchnorm running-stat momentum */
  int correction;             /* var */
  bool ignore;                /* cross_entropy: labels equal to ignore_index are skipped */
  int ignore_index;
  uint64_t seed;              /* dropout */
  /* PARAM (initializer); IOTA reads init_a, init_b as start and step */
  InitKind init;
  double init_a, init_b;      /* normal(std=a), uniform(a, b), const a */
  bool trainable;             /* false for buffers such as running statistics */
} IrAttr;

typedef struct IrNode {
  OpKind op;
  int nin;
  int *in;
  IrType type;
  IrAttr attr;
  SrcLoc loc;
  const char *name;  /* value name: "fc1", "fc1.weight", "x"; may be NULL */
  const char *scope; /* layer path: "layer1.0.conv1"; may be NULL (top level) */
  Phase phase;
} IrNode;

typedef struct IrNamed {
  const char *name;
  int node;
} IrNamed;

typedef struct IrGraph {
  Arena *arena;
  DimCtx *dims;
  const char *name;
  SrcLoc loc;
  IrNode *nodes;
  int nnodes, cap;
  IrNamed *outputs; int noutputs, cap_out;
} IrGraph;

typedef enum { OPT_NONE, OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;

typedef struct IrTrain {
  const char *model;
  SrcLoc loc;
  const char *minimize; /* value name in the model */
  OptKind opt;
  double lr, momentum, weight_decay, beta1, beta2, eps;
  bool nesterov;
  int64_t memory_budget; /* bytes, 0 = none */
} IrTrain;

/* what the frontend produces for one .nn file */
typedef struct IrModule {
  Arena *arena;
  IrGraph **graphs; int ngraphs, cap_g;
  IrTrain *trains;  int ntrains, cap_t;
} IrModule;

/* construction */
IrModule *ir_module_new(void);
void ir_module_free(IrModule *m);
IrGraph *ir_module_add_graph(IrModule *m, const char *name);
IrGraph *ir_module_find(IrModule *m, const char *name);
IrTrain *ir_module_find_train(IrModule *m, const char *model);

IrGraph *ir_graph_new(Arena *a, const char *name); /* creates its own DimCtx */
IrGraph *ir_graph_clone(Arena *a, const IrGraph *g); /* shares the DimCtx */

/* append a node with the given type, no checking; returns its index */
int ir_add(IrGraph *g, OpKind op, const int *in, int nin, const IrAttr *attr, IrType type,
           SrcLoc loc);

/* Shape inference failure: msg says what is wrong ("expected f32[N,784], got f32[N,748]");
 * arg_a/arg_b name the operand(s) at fault (-1 = the node itself), so the frontend can put
 * carets under the right source spans. */
typedef struct ShapeErr {
  char msg[384];
  int arg_a, arg_b;
} ShapeErr;
/* infer the result type of a node from op, operand types and attr (ir/shape.c). For ops whose
 * result type cannot be inferred (INPUT, PARAM, CONST, RESHAPE, BROADCAST, SLICE_BWD,
 * AVGPOOL_BWD, CAST) the caller fills *out first and the rule only validates it. */
int ir_infer(const IrGraph *g, OpKind op, const int *in, int nin, const IrAttr *attr,
             IrType *out, ShapeErr *err);
/* ir_infer + ir_add; -1 on error (err filled, nothing appended) */
int ir_build(IrGraph *g, OpKind op, const int *in, int nin, const IrAttr *attr,
             const IrType *hint, SrcLoc loc, ShapeErr *err);

void ir_add_output(IrGraph *g, const char *name, int node);
/* a CONST that is one value repeated (attr.value), not a folded tensor (attr.data) */
bool ir_is_fill(const IrNode *n);
int ir_find_value(const IrGraph *g, const char *name); /* by node name, last wins; -1 */
/* live[] holds the roots (outputs, side effects) on entry; marks every node they read,
 * transitively (operands precede their readers) */
void ir_mark_live(const IrGraph *g, bool *live);

/* types */
IrType ir_type(DType dt, int rank, Dim *const *dims);
bool ir_type_eq(const IrType *a, const IrType *b);
int64_t ir_type_numel(const IrGraph *g, const IrType *t); /* at current dim values */
Dim *ir_type_numel_dim(IrGraph *g, const IrType *t);
/* byte size at current dim values; false when it overflows int64 or a dim is negative */
bool ir_type_bytes_checked(const IrGraph *g, const IrType *t, int64_t *bytes);
/* Every tensor, and all tensors of the graph together, must stay within 2^IR_MAX_BYTES_LOG2
 * bytes at the current dim values, so that element counts, byte sizes, arena offsets and
 * their sums computed in int64 anywhere downstream cannot overflow. Reports "too large" at
 * the node that crosses the limit; returns -1 then, else 0. */
#define IR_MAX_BYTES_LOG2 56
int ir_check_sizes(const IrGraph *g, Diag *d);
/* "f32[N,784]" into buf */
int ir_type_str(const IrGraph *g, const IrType *t, char *buf, size_t n);

/* printing and checking */
void ir_print(FILE *out, const IrGraph *g);
void ir_module_print(FILE *out, const IrModule *m);
/* structural checks: operand order, arity, types agree with ir_infer; 0 ok, else prints to
 * err and returns the number of problems */
int ir_verify(const IrGraph *g, FILE *err);

/* memory sizes, one table for a train section's `memory` line and the --memory options:
 * B, KB, KiB, MB, MiB, GB, GiB, TB, TiB (KB = 1000 bytes, KiB = 1024) */
enum { IR_NSIZE_UNITS = 9 };
extern const char *const ir_size_units[IR_NSIZE_UNITS];
/* bytes per unit; fold: match ignoring case. 0 if unknown */
double ir_size_unit(const char *unit, bool fold);
/* x units of scale bytes, rounded up to a whole byte; -1 above 9e18 */
int64_t ir_size_bytes(double x, double scale);

/* parameters in node order (PARAM nodes) */
int ir_params(const IrGraph *g, int *out, int max);
/* when the value of node `input` is read as class labels (cross_entropy) or embedding row
 * indices, directly or through reshapes: the exclusive upper bound of its values at the
 * current dims (the smallest, if several ops read it), with *is_label telling which; else 0 */
int64_t ir_index_bound(const IrGraph *g, int input, bool *is_label);
int64_t ir_param_count(const IrGraph *g, bool trainable_only);
#endif
