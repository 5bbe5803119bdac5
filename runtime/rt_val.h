/* rt_val.h — the held-out evaluation of a built program's `train --val`: the model's loss
 * and, for a classifier, its accuracy, computed from the forward pass's outputs (inference
 * mode: no dropout, batchnorm's running statistics) and the held-out targets.
 *
 * The build describes the loss in one line (codegen/header.h, cg_val_loss) when the train
 * section minimizes a loss of a model output against a model input:
 *   "cross_entropy OUTPUT LABEL IGNORE SMOOTHING"   IGNORE: an integer or "none"
 *   "mse OUTPUT TARGET"
 * An empty line: the loss is not of that form, and `--val` says so.
 */
#ifndef RT_VAL_H
#define RT_VAL_H
#include <stddef.h>
#include <stdint.h>

enum { RT_VAL_NONE = 0, RT_VAL_CE = 1, RT_VAL_MSE = 2 };

typedef struct RtValLoss {
  int kind;                /* RT_VAL_* */
  char out[128], tgt[128]; /* the output's and the target input's names */
  int has_ignore;
  int64_t ignore_index;
  double smoothing;
} RtValLoss;

/* sums over the held-out samples; the loss is sum / count as the model's mean is */
typedef struct RtValSum {
  double loss;
  int64_t count, correct; /* positions in the mean; those whose argmax is the label */
} RtValSum;

/* 0, or -1 when spec is NULL, empty or malformed (v->kind is then RT_VAL_NONE) */
int rt_val_parse(const char *spec, RtValLoss *v);
/* cross entropy of rows x C logits against rows labels, PyTorch's formula with the spec's
 * ignore_index and label smoothing, accumulated in double */
void rt_val_cross_entropy(const RtValLoss *v, const float *logits, const int32_t *labels,
                          int64_t rows, int64_t C, RtValSum *s);
/* squared error of n predictions against n targets */
void rt_val_mse(const float *pred, const float *tgt, int64_t n, RtValSum *s);
#endif
