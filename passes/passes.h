/* passes.h — entry points of the graph passes (one file per pass in passes/).
 *
 * Every pass states what it requires of its input graph and what it guarantees about its
 * output. Passes append nodes to graphs allocated in the graph's arena; none frees memory.
 */
#ifndef NN_PASSES_H
#define NN_PASSES_H
#include <stdbool.h>

#include "../ir/diag.h"
#include "../ir/ir.h"

/* ---- constant folding (fold.c) ------------------------------------------------------- */

/* Every value of g computed from constants only (fills, iota, elementwise ops and views
 * over them) that a non-constant node or an output reads becomes a CONST holding its values
 * (attr.data) at the current dims; fills and scalars stay. Node indices, names and types
 * are kept; what fed only folded nodes is left dead. Returns the number of folded nodes, or
 * -1 with a diagnostic. */
int pass_fold_constants(IrGraph *g, Diag *d);

/* ---- training step (autodiff.c, optimizer.c, train.c) -------------------------------- */

/* What the training-step graph exposes. All indices are node indices of the graph the info
 * was filled for; arrays live in that graph's arena. */
typedef struct TrainInfo {
  int loss;       /* the minimized scalar */
  int nparams;    /* trainable PARAM nodes that reach the loss */
  int *params;    /* [nparams] PARAM node */
  int *grads;     /* [nparams] its gradient (named "<param>.grad") */
  int nstate;     /* optimizer state PARAM nodes ("<param>.adam_m", "optimizer.step", ...) */
  int *state;
  int nassign;    /* ASSIGN nodes: optimizer updates and batchnorm running statistics */
  int *assigns;
  int first_bwd;  /* index of the first node appended by autodiff (forward is below it) */
} TrainInfo;

/* autodiff.c
 * Requires: g verified; loss is a scalar float value of g.
 * Appends the reverse-mode backward pass of `loss` with respect to every trainable PARAM
 * on a path to the loss (phase PH_BWD, scope of the forward node each gradient belongs to)
 * and fills info->loss/params/grads/first_bwd. Only values on a path from a trainable PARAM
 * to the loss get adjoints; inputs, labels and constants never do. The appended nodes may
 * contain dead helpers until pass_dce_tail runs. Returns 0, or -1 with a diagnostic. */
int pass_autodiff(IrGraph *g, int loss, TrainInfo *info, Diag *d);
/* true when autodiff.c's rule table covers op (differentiable, or explicitly not) */
bool pass_autodiff_op_defined(OpKind op);

/* Dead-node elimination restricted to nodes with index >= first: a node there survives when
 * it is an ASSIGN, a graph output, or an operand of a surviving node. Nodes below `first`
 * keep their indices. remap (size: g->nnodes before the call, may be NULL) receives the new
 * index of each old node, -1 for removed ones. Returns the number of removed nodes. */
int pass_dce_tail(IrGraph *g, int first, int *remap);

/* optimizer.c
 * Requires: info filled by pass_autodiff. Appends the update of every parameter in
 * info->params (phase PH_OPT) for t->opt (sgd, adam, adamw; OPT_NONE appends nothing) with
 * PyTorch's formulas, state tensors as non-trainable zero-initialized PARAMs, and one ASSIGN
 * per updated tensor; every update reads the values from before the step (ASSIGNs commit
 * after the step). Fills info->state and appends to info->assigns. */
int pass_optimizer(IrGraph *g, const IrTrain *t, TrainInfo *info, Diag *d);

/* train.c
 * The training-step graph of a forward model graph: a clone of fwd with train semantics for
 * batchnorm and dropout, running-statistic updates, the backward pass of t->minimize and
 * (pass_train_graph only) the optimizer step. Outputs: those of fwd, "loss", and
 * "<param>.grad" for each trainable parameter. fwd is not modified. NULL on error. */
IrGraph *pass_train_graph(IrGraph *fwd, const IrTrain *t, TrainInfo *info, Diag *d);
/* forward + backward only (for `nnc run --grad`); minimize names the loss value */
IrGraph *pass_grad_graph(IrGraph *fwd, const char *minimize, SrcLoc loc, TrainInfo *info,
                         Diag *d);
/* ... in training semantics (as pass_grad_graph) or, train = false, in inference semantics:
 * batchnorm normalizes with its running statistics (not updated), dropout is the identity */
IrGraph *pass_grad_graph_mode(IrGraph *fwd, const char *minimize, SrcLoc loc, bool train,
                              TrainInfo *info, Diag *d);
#endif
