/* ox_fuse.c — patterns that span several ONNX nodes and map onto one nnc op. Exporters before
 * opset 20 write GELU in erf form, x * 0.5 * (1 + erf(x / sqrt(2))): as Div (or Mul by
 * 1/sqrt(2)), Erf, Add 1, and two Muls (x * c * 0.5, or (x * 0.5) * c). nnc has gelu but no
 * erf, so the whole chain becomes gelu(x). */
#include <math.h>
#include <string.h>

#include "ox.h"

/* the node producing value name, or -1 */
static int producer(const OxCtx *c, const char *name) {
  for (size_t i = 0; i < c->g->n_node; i++)
    for (size_t k = 0; k < c->g->node[i]->n_output; k++)
      if (!strcmp(c->g->node[i]->output[k], name)) return (int)i;
  return -1;
}

/* the one node reading value name (which nothing else reads), or -1 */
static int sole_consumer(const OxCtx *c, const char *name) {
  if (ox_uses(c, name) != 1) return -1;
  for (size_t i = 0; i < c->g->n_node; i++)
    for (size_t k = 0; k < c->g->node[i]->n_input; k++)
      if (!strcmp(c->g->node[i]->input[k], name)) return (int)i;
  return -1;
}

/* whether name is a one-element constant (initializer or Constant node) equal to want */
static int is_number(OxCtx *c, const char *name, double want) {
  OxVal *v = ox_find(c, name), tmp = {.name = name};
  if (!v || v->kind != OXV_CONST) {
    int p = producer(c, name);
    const Onnx__AttributeProto *a = p >= 0 && !strcmp(c->g->node[p]->op_type, "Constant")
                                        ? ox_attr(c->g->node[p], "value")
                                        : NULL;
    if (!a || !a->t || a->t->n_dims > 1 ||
        (a->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
         a->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) ||
        ox_tensor_to_const(c, a->t, &tmp, NULL))
      return 0;
    v = &tmp;
  }
  return v->n == 1 && fabs(v->cv[0] - want) <= 1e-4 * fabs(want);
}

/* node i is op with inputs {name, a constant equal to k} in either order; returns 1 */
static int op_with(OxCtx *c, int i, const char *op, const char *name, double k, int any_order) {
  if (i < 0) return 0;
  const Onnx__NodeProto *n = c->g->node[i];
  if (strcmp(n->op_type, op) || n->n_input != 2) return 0;
  if (!strcmp(n->input[0], name) && is_number(c, n->input[1], k)) return 1;
  return any_order && !strcmp(n->input[1], name) && is_number(c, n->input[0], k);
}

static const char *other_input(const Onnx__NodeProto *n, const char *name) {
  return !strcmp(n->input[0], name) ? n->input[1] : n->input[0];
}

/* the tail after erf: Add 1, then x * c * 0.5 or (x * 0.5) * c; fills the nodes to skip */
static const Onnx__NodeProto *gelu_tail(OxCtx *c, int e, const char *x, int *skip) {
  const Onnx__NodeProto *erf = c->g->node[e];
  int add = sole_consumer(c, erf->output[0]);
  if (!op_with(c, add, "Add", erf->output[0], 1.0, 1)) return NULL;
  const char *cc = c->g->node[add]->output[0];
  int m1 = sole_consumer(c, cc);
  if (m1 < 0 || strcmp(c->g->node[m1]->op_type, "Mul") || c->g->node[m1]->n_input != 2) return NULL;
  const char *o = other_input(c->g->node[m1], cc);
  skip[0] = add, skip[1] = m1;
  if (!strcmp(o, x)) {
    int m2 = sole_consumer(c, c->g->node[m1]->output[0]);
    if (!op_with(c, m2, "Mul", c->g->node[m1]->output[0], 0.5, 1)) return NULL;
    skip[2] = m2;
    return c->g->node[m2];
  }
  int h = producer(c, o);
  if (!op_with(c, h, "Mul", x, 0.5, 1) || ox_uses(c, o) != 1) return NULL;
  skip[2] = h;
  return c->g->node[m1];
}

static void match_gelu(OxCtx *c, int e) {
  const char *a = c->g->node[e]->input[0];
  int p = producer(c, a);
  if (p < 0 || ox_uses(c, a) != 1 || c->g->node[p]->n_input != 2) return;
  const char *x = c->g->node[p]->input[0];
  if (!op_with(c, p, "Div", x, sqrt(2.0), 0) && !op_with(c, p, "Mul", x, sqrt(0.5), 0) &&
      !op_with(c, p, "Mul", x = c->g->node[p]->input[1], sqrt(0.5), 1))
    return;
  int skip[3];
  const Onnx__NodeProto *out = gelu_tail(c, e, x, skip);
  if (!out) return;
  c->skip[p] = 1;
  for (int k = 0; k < 3; k++) c->skip[skip[k]] = 1;
  c->gelu_out[e] = out;
  c->gelu_x[e] = x;
}

void ox_find_gelu(OxCtx *c) {
  size_t nn = c->g->n_node ? c->g->n_node : 1;
  c->gelu_out = arena_alloc(c->a, nn * sizeof *c->gelu_out);
  c->gelu_x = arena_alloc(c->a, nn * sizeof *c->gelu_x);
  for (size_t i = 0; i < c->g->n_node; i++)
    if (!strcmp(c->g->node[i]->op_type, "Erf") && c->g->node[i]->n_input == 1)
      match_gelu(c, (int)i);
}
