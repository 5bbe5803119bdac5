/* header.h — the C header `nnc build --lib` writes next to libNAME.a: per-model functions
 * (NAME_create, NAME_load, NAME_forward, NAME_train_step, ...) as static inline wrappers of
 * the runtime's generic model context (runtime/rt_program.h), shape constants and the memory
 * macros NAME_PARAMS_BYTES / NAME_IO_BYTES / NAME_ARENA_BYTES / NAME_MEMORY_BYTES. */
#ifndef NN_CODEGEN_HEADER_H
#define NN_CODEGEN_HEADER_H
#include <stddef.h>

#include "../ir/ir.h"
#include "../runtime/rt_model.h"

/* The names of the INPUT nodes the outputs of fwd depend on, comma-separated in node order
 * (allocated in fwd's arena): what a forward pass needs, e.g. "x" for a classifier whose
 * graph also declares a label for its loss. */
const char *cg_forward_inputs(const IrGraph *fwd);

/* The loss a built program's `train --val` evaluates on held-out data (runtime/rt_val.h):
 * "cross_entropy OUTPUT LABEL IGNORE SMOOTHING" or "mse OUTPUT TARGET" when the value
 * `minimize` of fwd is that loss of a model output (or a reshape of one) against a model
 * input; "" otherwise. */
void cg_val_loss(const IrGraph *fwd, const char *minimize, char *buf, size_t n);

/* Writes the header to `path` atomically. prefix: the identifier the functions and macros
 * start with (any characters outside [A-Za-z0-9_] become '_'); d: the model's descriptor,
 * whose descriptor symbol nnc_model_<d->name> the header references; fwd_inputs as above
 * (NULL = every input); source: the .nn file, for the comment. 0, or -1 after a diagnostic
 * on dg. */
int cg_header_write(const char *path, const char *prefix, const RtModelDesc *d,
                    const char *fwd_inputs, const char *source, Diag *dg);

/* the header text itself (malloc'd), for tests */
char *cg_header_text(const char *prefix, const RtModelDesc *d, const char *fwd_inputs,
                     const char *source);
#endif
