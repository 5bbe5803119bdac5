/* run.h — what `nnc run`'s modes share (cmd_run.c: forward and --grad; run_train.c: --train):
 * the parsed options and the helpers that bind tensor files to a graph's inputs and
 * parameters. Private to driver/. */
#ifndef NN_DRIVER_RUN_H
#define NN_DRIVER_RUN_H
#include <stdint.h>

#include "../ir/interp.h"
#include "../runtime/rt_io.h"
#include "driver.h"

#define RUN_MAX_BINDINGS 64
enum { RUN_MODE_DEFAULT, RUN_MODE_TRAIN, RUN_MODE_EVAL };

typedef struct RunBinding {
  const char *name, *path;
} RunBinding;

typedef struct RunOpts {
  DrvInput in;
  const char *weights, *save_weights, *grad_out, *loss;
  uint64_t seed;
  int have_seed;
  int grad, train;
  int mode; /* --mode: RUN_MODE_DEFAULT (forward eval, --grad train), _TRAIN or _EVAL */
  RunBinding ins[RUN_MAX_BINDINGS], outs[RUN_MAX_BINDINGS], data[RUN_MAX_BINDINGS];
  int nins, nouts, ndata;
  int64_t epochs, batch;
  double lr;
  int have_lr;
} RunOpts;

/* the node of graph g with op and name, or -1 */
int run_find_node(const IrGraph *g, OpKind op, const char *name);
/* the concrete type of node at current dims, "f32[64,784]" (+ " (declared f32[N,784])") */
void run_node_type_str(const IrGraph *g, int node, char *buf, size_t n);
/* "f32[5,784]" */
void run_shape_str(const RtTensor *t, char *buf, size_t n);
/* true when -D set the dim symbol sym */
int run_was_defined(const RunOpts *o, const char *sym);
/* "note: the model's inputs are: x label" on stderr */
void run_suggest_names(const IrGraph *g, OpKind op, const char *what);

/* Binds bare dim symbols of input types (e.g. N in f32[N,784]) to the sizes in the files,
 * unless -D set them; axes below from_axis are skipped (--train binds the batch axis itself).
 * files[k] is the array for input node nodes[k], read from b[k].path. */
int run_bind_dims(const RunOpts *o, IrGraph *g, const RtTensor *files, const int *nodes,
                  const RunBinding *b, int n, int from_axis, Diag *d);
/* Checks t against input node's type on axes >= from_axis (the rank always), converts it to
 * f64, and for i32 inputs checks that every value is an integer. */
int run_check_array(const IrGraph *g, int node, RtTensor *t, const char *path, int from_axis,
                    Diag *d);

/* Every PARAM of g from o->weights; a PARAM for which optional(g, node, ctx) is true may be
 * absent from the file and is then left unset (*nloaded counts the optional ones found).
 * Tensors of the file that are no PARAM of g are warned about. */
int run_load_weights(const RunOpts *o, const IrGraph *g, Interp *ip,
                     int (*optional)(const IrGraph *g, int node, void *ctx), void *ctx,
                     int *nloaded, Diag *d);
/* every PARAM of g as f32 (i32 stays i32) into a safetensors file, atomically */
int run_save_params(const IrGraph *g, const Interp *ip, const char *path, const char *meta_json,
                    Diag *d);
/* node's value as an f32 (i32 for i32 nodes) tensor */
int run_to_tensor(const IrGraph *g, const Interp *ip, int node, RtTensor *t);

/* the value --grad/--train differentiate: --loss, else the train section's 'minimize' (*loc
 * gets its location); NULL with an error when there is neither */
const char *run_loss_name(const RunOpts *o, IrModule *m, const IrGraph *g, SrcLoc *loc,
                          Diag *d);

/* `nnc run --train` (run_train.c); options already parsed and checked. Exit status. */
int run_train(RunOpts *o);
#endif
