/* run_train.c — `nnc run --train`: trains a model in the reference interpreter on .npy data
 * sets, with the training-step graph of its train section (forward in training semantics,
 * loss, backward, optimizer update; passes/train.c).
 *
 * One interpreter runs every step: the ASSIGNs of a step commit the new parameters,
 * optimizer state and running statistics into PARAM storage, which the next step reads, so
 * nothing is copied between steps. Each epoch visits the samples in a new order (Fisher-Yates
 * with a splitmix64 stream seeded with --seed) in batches of --batch samples; the batch dim
 * of the inputs is fixed to --batch, so a last partial batch (samples % batch) is not used —
 * the interpreter sizes its values once, and a smaller batch would change the loss's mean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "../runtime/rt_program.h"
#include "run.h"


typedef struct StateSet {
  const int *state;
  int n;
} StateSet;

/* optimizer state may be absent from --weights: training then starts it at zero */
static int is_state(const IrGraph *g, int node, void *ctx) {
  (void)g;
  const StateSet *s = ctx;
  for (int i = 0; i < s->n; i++)
    if (s->state[i] == node) return 1;
  return 0;
}

/* Fixes the batch axis (axis 0) of every data input to B. */
static int set_batch_dims(const RunOpts *o, IrGraph *g, const int *nodes, Diag *d) {
  for (int k = 0; k < o->ndata; k++) {
    const IrNode *n = &g->nodes[nodes[k]];
    char ty[256];
    ir_type_str(g, &n->type, ty, sizeof ty);
    if (n->type.rank == 0) {
      diag_error_file(d, o->data[k].path,
                      "input '%s' is a scalar (%s); --train slices batches along axis 0, so "
                      "every input needs a batch axis",
                      n->name, ty);
      return -1;
    }
    int64_t c;
    const Dim *d0 = n->type.dims[0];
    if (dim_is_const(d0, &c)) {
      if (c != o->batch) {
        diag_error_file(d, o->data[k].path,
                        "input '%s' (%s) has a fixed batch size of %lld; use --batch %lld or "
                        "declare its axis 0 with a dim (dim N)",
                        n->name, ty, (long long)c, (long long)c);
        return -1;
      }
      continue;
    }
    int sym = -1;
    for (int s = 0; s < dim_sym_count(g->dims); s++)
      if (dim_eq(d0, dim_sym(g->dims, s))) sym = s;
    if (sym < 0) {
      diag_error_file(d, o->data[k].path,
                      "axis 0 of input '%s' (%s) is not a plain dim; --train sets the batch "
                      "dim to --batch and needs axis 0 declared as a dim such as N",
                      n->name, ty);
      return -1;
    }
    const char *sn = dim_sym_name(g->dims, sym);
    if (run_was_defined(o, sn) && dim_sym_value(g->dims, sym) != o->batch) {
      diag_error_file(d, NULL, "-D %s=%lld contradicts --batch %lld (%s is the batch dim of "
                      "input '%s')",
                      sn, (long long)dim_sym_value(g->dims, sym), (long long)o->batch, sn,
                      n->name);
      return -1;
    }
    dim_sym_set_value(g->dims, sym, o->batch);
  }
  return 0;
}

/* Reads the --data arrays, checks them against the inputs and binds the dims.
 * Returns the number of samples, or -1. */
static int64_t read_data(const RunOpts *o, IrGraph *g, RtTensor *files, int *nodes, Diag *d) {
  char err[512];
  for (int k = 0; k < o->ndata; k++) {
    nodes[k] = run_find_node(g, OP_INPUT, o->data[k].name);
    if (nodes[k] < 0) {
      diag_error_file(d, o->data[k].path, "--data %s: model '%s' has no input named '%s'",
                      o->data[k].name, g->name, o->data[k].name);
      run_suggest_names(g, OP_INPUT, "inputs");
      return -1;
    }
  }
  for (int i = 0; i < g->nnodes; i++) {
    int given = 0;
    for (int k = 0; k < o->ndata; k++) given |= nodes[k] == i;
    if (g->nodes[i].op == OP_INPUT && !given) {
      diag_error_file(d, o->in.path, "input '%s' has no data; pass --data %s=FILE.npy",
                      g->nodes[i].name, g->nodes[i].name);
      return -1;
    }
  }
  for (int k = 0; k < o->ndata; k++)
    if (rt_npy_read(o->data[k].path, &files[k], err, sizeof err)) {
      diag_error_file(d, NULL, "%s", err);
      return -1;
    }
  int64_t samples = -1;
  for (int k = 0; k < o->ndata; k++) {
    if (files[k].rank == 0) {
      diag_error_file(d, o->data[k].path,
                      "--data %s holds a scalar; a data set has one sample per row along axis 0",
                      o->data[k].name);
      return -1;
    }
    if (samples >= 0 && files[k].shape[0] != samples) {
      diag_error_file(d, o->data[k].path,
                      "has %lld samples (axis 0), but %s has %lld; every --data array needs one "
                      "row per sample",
                      (long long)files[k].shape[0], o->data[0].path, (long long)samples);
      return -1;
    }
    samples = files[k].shape[0];
  }
  if (set_batch_dims(o, g, nodes, d)) return -1;
  if (samples < o->batch) {
    diag_error_file(d, o->data[0].path,
                    "the data set has %lld samples, fewer than --batch %lld", (long long)samples,
                    (long long)o->batch);
    return -1;
  }
  if (run_bind_dims(o, g, files, nodes, o->data, o->ndata, 1, d)) return -1;
  for (int k = 0; k < o->ndata; k++)
    if (run_check_array(g, nodes[k], &files[k], o->data[k].path, 1, d)) return -1;
  return samples;
}

/* Accuracy is reported when the forward graph has exactly one cross_entropy whose labels
 * are an i32 model input: the fraction of samples whose logits row has its first maximum
 * at the label. *logits and *label get the two operands. */
static int find_classifier(const IrGraph *g, const TrainInfo *info, int *logits, int *label) {
  int found = 0;
  for (int i = 0; i < info->first_bwd; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_CROSS_ENTROPY) continue;
    const IrNode *l = &g->nodes[n->in[1]];
    if (l->op != OP_INPUT || l->type.dt != DT_I32 || g->nodes[n->in[0]].type.rank != 2)
      return 0;
    *logits = n->in[0];
    *label = n->in[1];
    found++;
  }
  return found == 1;
}

static int64_t count_correct(const Interp *ip, int logits, int label) {
  int64_t shape[IR_MAX_RANK], n;
  interp_shape(ip, logits, shape);
  const double *z = interp_value(ip, logits, &n), *y = interp_value(ip, label, &n);
  int64_t rows = shape[0], cols = shape[1], correct = 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t best = 0;
    for (int64_t c = 1; c < cols; c++)
      if (z[r * cols + c] > z[r * cols + best]) best = c;
    correct += best == (int64_t)y[r];
  }
  return correct;
}

static const char *opt_name(OptKind k) {
  return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : k == OPT_ADAMW ? "adamw" : "none";
}

/* the state of one `nnc run --train` */
typedef struct Trainer {
  RunOpts *o;
  Diag *d;
  IrGraph *g, *tg; /* the model and its training step */
  IrTrain t;
  TrainInfo info;
  Interp *ip;
  RtTensor files[RUN_MAX_BINDINGS];
  int nodes[RUN_MAX_BINDINGS];
  double *batch[RUN_MAX_BINDINGS];
  int64_t rowsz[RUN_MAX_BINDINGS];
  int64_t samples, steps, step;
  int64_t *perm;
  int logits, label, acc; /* classifier outputs, for the accuracy */
} Trainer;

/* the model's train section with the command line's --loss and --lr; -1 after a message */
static int train_section(Trainer *T, IrModule *m) {
  RunOpts *o = T->o;
  const IrTrain *ts = ir_module_find_train(m, T->g->name);
  if (!ts) {
    diag_error_file(T->d, o->in.path,
                    "model '%s' has no train section; --train needs one, e.g. "
                    "'train %s { minimize LOSS  optimizer adam(lr = 1e-3) }'",
                    T->g->name, T->g->name);
    return -1;
  }
  T->t = *ts;
  SrcLoc loss_loc;
  if (o->loss && !run_loss_name(o, m, T->g, &loss_loc, T->d)) return -1;
  if (o->loss) {
    T->t.minimize = o->loss;
    T->t.loc = loss_loc;
  }
  if (o->have_lr) T->t.lr = o->lr;
  if (T->t.opt == OPT_NONE) {
    diag_error(T->d, T->t.loc, "the train section of '%s' has no optimizer", T->g->name);
    return -1;
  }
  return 0;
}

/* every PARAM from its initializer (optimizer state: zeros), then the file's values; a file
 * with the optimizer state resumes its step counter */
static int train_state(Trainer *T) {
  IrGraph *tg = T->tg;
  RunOpts *o = T->o;
  for (int i = 0; i < tg->nnodes; i++) {
    if (tg->nodes[i].op != OP_PARAM) continue;
    int64_t n = ir_type_numel(tg, &tg->nodes[i].type);
    double *buf = xmalloc((size_t)(n ? n : 1) * sizeof(double));
    interp_init_param(tg, i, o->seed, buf);
    interp_set(T->ip, i, buf, n);
    free(buf);
  }
  if (!o->weights) return 0;
  StateSet ss = {T->info.state, T->info.nstate};
  int nstate = 0;
  if (run_load_weights(o, tg, T->ip, is_state, &ss, &nstate, T->d)) return -1;
  if (nstate && nstate < T->info.nstate) {
    diag_error_file(T->d, o->weights,
                    "holds %d of the %d optimizer state tensors of %s; give all of them to "
                    "resume training, or none to start the state at zero",
                    nstate, T->info.nstate, opt_name(T->t.opt));
    return -1;
  }
  if (nstate) { /* resuming: dropout continues its step counter */
    int sn = run_find_node(tg, OP_PARAM, "optimizer.step");
    if (sn >= 0) T->step = (int64_t)interp_value(T->ip, sn, NULL)[0];
    fprintf(stderr, "note: resuming the %s state from %s\n", opt_name(T->t.opt), o->weights);
  }
  return 0;
}

/* batch buffers and the sample order */
static void train_batches(Trainer *T) {
  int64_t B = T->o->batch;
  T->steps = T->samples / B;
  if (T->samples % B)
    fprintf(stderr,
            "note: %lld samples in batches of %lld: %lld steps per epoch; the last %lld "
            "samples of each shuffled epoch are not used\n",
            (long long)T->samples, (long long)B, (long long)T->steps,
            (long long)(T->samples % B));
  for (int k = 0; k < T->o->ndata; k++) {
    T->rowsz[k] = rt_tensor_numel(&T->files[k]) / T->samples;
    T->batch[k] = xmalloc((size_t)(B * T->rowsz[k] > 0 ? B * T->rowsz[k] : 1) * sizeof(double));
  }
  T->perm = xmalloc((size_t)T->samples * sizeof(int64_t));
  for (int64_t i = 0; i < T->samples; i++) T->perm[i] = i;
}

/* step s of epoch e: the batch in, one interpreted step; its loss, or NAN after a message */
static double train_step(Trainer *T, int64_t e, int64_t s) {
  int64_t B = T->o->batch;
  char err[512];
  for (int k = 0; k < T->o->ndata; k++) {
    const double *src = T->files[k].data;
    for (int64_t j = 0; j < B; j++)
      memcpy(T->batch[k] + j * T->rowsz[k], src + T->perm[s * B + j] * T->rowsz[k],
             (size_t)T->rowsz[k] * sizeof(double));
    interp_set(T->ip, T->nodes[k], T->batch[k], B * T->rowsz[k]);
  }
  interp_set_step(T->ip, T->step++);
  if (interp_run(T->ip, err, sizeof err)) {
    diag_error_file(T->d, T->o->in.path, "epoch %lld, step %lld: %s", (long long)e + 1,
                    (long long)s + 1, err);
    return NAN;
  }
  double loss = interp_value(T->ip, T->info.loss, NULL)[0];
  if (!isfinite(loss)) {
    diag_error_file(T->d, T->o->in.path,
                    "the loss became %g at epoch %lld, step %lld; try a smaller --lr", loss,
                    (long long)e + 1, (long long)s + 1);
    return NAN;
  }
  return loss;
}

static int train_epochs(Trainer *T) {
  RunOpts *o = T->o;
  uint64_t rng = o->seed;
  printf("training %s: %lld samples, batch %lld, %lld steps per epoch, %s lr %g\n", T->g->name,
         (long long)T->samples, (long long)o->batch, (long long)T->steps, opt_name(T->t.opt),
         T->t.lr);
  for (int64_t e = 0; e < o->epochs; e++) {
    rt_shuffle(T->perm, T->samples, &rng);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t s = 0; s < T->steps; s++) {
      double loss = train_step(T, e, s);
      if (isnan(loss)) return -1;
      loss_sum += loss;
      if (T->acc) correct += count_correct(T->ip, T->logits, T->label);
    }
    printf("epoch %lld/%lld: loss %.6f", (long long)e + 1, (long long)o->epochs,
           loss_sum / (double)T->steps);
    if (T->acc) printf("  accuracy %.4f", (double)correct / (double)(T->steps * o->batch));
    printf("\n");
    fflush(stdout);
  }
  return 0;
}

static int train_save(Trainer *T) {
  if (!T->o->save_weights) return 0;
  char meta[256];
  snprintf(meta, sizeof meta,
           "{\"nnc.model\":\"%s\",\"nnc.optimizer\":\"%s\",\"nnc.epochs\":\"%lld\"}",
           T->g->name, opt_name(T->t.opt), (long long)T->o->epochs);
  return run_save_params(T->tg, T->ip, T->o->save_weights, meta, T->d);
}

/* the model with its data bound, the training step, its state: -1 after a message */
static int train_setup(Trainer *T, IrModule **m) {
  RunOpts *o = T->o;
  if ((T->samples = read_data(o, T->g, T->files, T->nodes, T->d)) < 0) return -1;
  if (!(*m = drv_recompile_dims(&o->in, *m, &T->g, T->d))) return -1;
  for (int k = 0; k < o->ndata; k++) T->nodes[k] = run_find_node(T->g, OP_INPUT, o->data[k].name);
  if (train_section(T, *m)) return -1;
  if (!(T->tg = pass_train_graph(T->g, &T->t, &T->info, T->d))) return -1;
  InterpOptions io = {.seed = o->seed};
  T->ip = interp_new(T->tg, &io);
  if (train_state(T)) return -1;
  T->logits = T->label = -1;
  T->acc = find_classifier(T->tg, &T->info, &T->logits, &T->label);
  train_batches(T);
  return 0;
}

int run_train(RunOpts *o) {
  Trainer T;
  memset(&T, 0, sizeof T);
  T.o = o;
  T.d = diag_new(stderr);
  IrModule *m = drv_compile(&o->in, T.d, &T.g);
  int rc = m ? 1 : drv_compile_status(&o->in);
  if (m && !train_setup(&T, &m) && !train_epochs(&T) && !train_save(&T)) rc = 0;
  interp_free(T.ip);
  ir_module_free(m);
  diag_finish(T.d);
  diag_free(T.d);
  free(T.perm);
  for (int k = 0; k < o->ndata; k++) {
    rt_tensor_free(&T.files[k]);
    free(T.batch[k]);
  }
  return rc;
}
