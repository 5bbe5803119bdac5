/* optimizer.c — the parameter update step as IR (sgd, adam, adamw).
 *
 * Requires: TrainInfo filled by pass_autodiff (params and their gradient nodes).
 * Guarantees: PyTorch's update formulas (torch.optim.SGD with dampening 0, Adam, AdamW)
 * expressed with elementwise nodes, scalar CONSTs and one ASSIGN per updated tensor, all in
 * phase PH_OPT with the parameter's scope. Optimizer state is ordinary non-trainable PARAM
 * nodes initialized to zeros — "<param>.momentum_buffer", "<param>.adam_m",
 * "<param>.adam_v" and the scalar "optimizer.step" — so it is saved with the weights and
 * counted by memory analysis. Every update reads the values from before the step: new
 * values are separate nodes and ASSIGNs take effect after the whole step.
 */
#include <math.h>
#include <string.h>

#include "passes.h"

typedef struct Opt {
  IrGraph *g;
  Diag *d;
  TrainInfo *info;
  const char *scope;
  SrcLoc loc;
  bool failed;
  /* adam: scalars shared by every parameter (f32) */
  int step_size; /* lr / (1 - beta1^t) */
  int sqrt_bc2;  /* sqrt(1 - beta2^t) */
} Opt;

static int node(Opt *o, OpKind op, const int *in, int nin, const IrAttr *attr,
                const IrType *hint) {
  if (o->failed) return -1;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return -1;
  ShapeErr err;
  int n = ir_build(o->g, op, in, nin, attr, hint, o->loc, &err);
  if (n < 0) {
    diag_error(o->d, o->loc, "internal error: optimizer step: building %s: %s", ir_op_name(op),
               err.msg);
    o->failed = true;
    return -1;
  }
  o->g->nodes[n].phase = PH_OPT;
  o->g->nodes[n].scope = o->scope;
  return n;
}

static int un(Opt *o, OpKind op, int x) { return node(o, op, &x, 1, NULL, NULL); }
static int bin(Opt *o, OpKind op, int x, int y) {
  int in[2] = {x, y};
  return node(o, op, in, 2, NULL, NULL);
}
static int cnst(Opt *o, double v, DType dt) {
  IrType t = {.dt = dt, .rank = 0};
  IrAttr at = {.value = v};
  return node(o, OP_CONST, NULL, 0, &at, &t);
}
/* x * k */
static int scale(Opt *o, int x, double k) {
  return x < 0 ? -1 : bin(o, OP_MUL, x, cnst(o, k, o->g->nodes[x].type.dt));
}
/* a shared f32 scalar, cast to dt where the parameter has another float type */
static int as_dt(Opt *o, int x, DType dt) {
  if (x < 0 || o->g->nodes[x].type.dt == dt) return x;
  IrType t = {.dt = dt, .rank = 0};
  return node(o, OP_CAST, &x, 1, NULL, &t);
}

static int state(Opt *o, const char *name, IrType t) {
  IrAttr at = {.init = INIT_ZEROS, .trainable = false};
  int n = node(o, OP_PARAM, NULL, 0, &at, &t);
  if (n < 0) return -1;
  o->g->nodes[n].name = arena_strdup(o->g->arena, name);
  o->info->state[o->info->nstate++] = n;
  return n;
}

static void assign(Opt *o, int target, int value) {
  int in[2] = {target, value};
  IrType t = o->g->nodes[target < 0 ? 0 : target].type;
  int n = node(o, OP_ASSIGN, in, 2, NULL, &t);
  if (n >= 0) o->info->assigns[o->info->nassign++] = n;
}

static const char *pname(Opt *o, int p, const char *suffix) {
  return arena_printf(o->g->arena, "%s.%s", o->g->nodes[p].name, suffix);
}

/* torch.optim.SGD, dampening 0:
 *   g = grad + wd*p;  buf = momentum*buf + g;  g = nesterov ? g + momentum*buf : buf;
 *   p = p - lr*g
 * (PyTorch starts buf at g on the first step, which equals momentum*0 + g.) */
static void sgd_one(Opt *o, const IrTrain *t, int p, int grad) {
  int g = grad;
  if (t->weight_decay != 0) g = bin(o, OP_ADD, g, scale(o, p, t->weight_decay));
  if (t->momentum != 0) {
    int buf = state(o, pname(o, p, "momentum_buffer"), o->g->nodes[p].type);
    int nb = bin(o, OP_ADD, scale(o, buf, t->momentum), g);
    assign(o, buf, nb);
    g = t->nesterov ? bin(o, OP_ADD, g, scale(o, nb, t->momentum)) : nb;
  }
  assign(o, p, bin(o, OP_SUB, p, scale(o, g, t->lr)));
}

/* bias corrections from the step counter: t = step + 1, beta^t = exp(t * ln beta) */
static void adam_scalars(Opt *o, const IrTrain *t) {
  o->scope = NULL;
  IrType st = {.dt = DT_F32, .rank = 0};
  int step = state(o, "optimizer.step", st);
  int tn = bin(o, OP_ADD, step, cnst(o, 1, DT_F32));
  assign(o, step, tn);
  int p1 = un(o, OP_EXP, scale(o, tn, log(t->beta1)));
  int p2 = un(o, OP_EXP, scale(o, tn, log(t->beta2)));
  int bc1 = bin(o, OP_SUB, cnst(o, 1, DT_F32), p1);
  int bc2 = bin(o, OP_SUB, cnst(o, 1, DT_F32), p2);
  o->step_size = bin(o, OP_DIV, cnst(o, t->lr, DT_F32), bc1);
  o->sqrt_bc2 = un(o, OP_SQRT, bc2);
}

/* torch.optim.Adam / AdamW:
 *   adam:  g = grad + wd*p            adamw: p' = p * (1 - lr*wd)   (adam: p' = p)
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
 *   p = p' - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
static void adam_one(Opt *o, const IrTrain *t, int p, int grad) {
  IrType pt = o->g->nodes[p].type;
  int g = grad, base = p;
  if (t->weight_decay != 0) {
    if (t->opt == OPT_ADAMW) base = scale(o, p, 1 - t->lr * t->weight_decay);
    else g = bin(o, OP_ADD, g, scale(o, p, t->weight_decay));
  }
  int m = state(o, pname(o, p, "adam_m"), pt);
  int v = state(o, pname(o, p, "adam_v"), pt);
  int nm = bin(o, OP_ADD, scale(o, m, t->beta1), scale(o, g, 1 - t->beta1));
  int nv = bin(o, OP_ADD, scale(o, v, t->beta2), scale(o, bin(o, OP_MUL, g, g), 1 - t->beta2));
  assign(o, m, nm);
  assign(o, v, nv);
  int denom = bin(o, OP_ADD, bin(o, OP_DIV, un(o, OP_SQRT, nv), as_dt(o, o->sqrt_bc2, pt.dt)),
                  cnst(o, t->eps, pt.dt));
  int upd = bin(o, OP_MUL, bin(o, OP_DIV, nm, denom), as_dt(o, o->step_size, pt.dt));
  assign(o, p, bin(o, OP_SUB, base, upd));
}

int pass_optimizer(IrGraph *g, const IrTrain *t, TrainInfo *info, Diag *d) {
  if (!t || t->opt == OPT_NONE) return 0;
  Opt o = {.g = g, .d = d, .info = info, .loc = t->loc};
  int np = info->nparams;
  int *as = arena_alloc(g->arena, (size_t)(info->nassign + 3 * np + 1) * sizeof(int));
  if (info->nassign) memcpy(as, info->assigns, (size_t)info->nassign * sizeof(int));
  info->assigns = as;
  info->state = arena_alloc(g->arena, (size_t)(2 * np + 1) * sizeof(int));
  info->nstate = 0;
  if (t->opt == OPT_ADAM || t->opt == OPT_ADAMW) adam_scalars(&o, t);
  for (int i = 0; i < np && !o.failed; i++) {
    int p = info->params[i];
    o.scope = g->nodes[p].scope;
    if (t->opt == OPT_SGD) sgd_one(&o, t, p, info->grads[i]);
    else adam_one(&o, t, p, info->grads[i]);
  }
  return o.failed ? -1 : 0;
}
