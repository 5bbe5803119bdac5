/* onnx_import.c — `nnc import`: read an ONNX model with protobuf-c, refuse it up front when it
 * uses op kinds nnc has no mapping for (one error per kind), then walk the graph in order,
 * letting each op's handler (ox_ops.c) write .nn statements, and write the .nn file and the
 * initializers as safetensors. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/rt_io.h"
#include "onnx_import.h"
#include "ox.h"

static int default_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

/* what the handlers take for granted: names present, an output per node, sane dims */
static int check_graph(OxCtx *c) {
  Onnx__GraphProto *g = c->g;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (!n->op_type || !n->op_type[0] || !n->n_output)
      return ox_err(c, NULL, "node %zu has no operator or no output", i);
    for (size_t k = 0; k < n->n_attribute; k++)
      if (!n->attribute[k]->name) return ox_err(c, n, "an attribute has no name");
  }
  for (size_t i = 0; i < g->n_input; i++)
    if (!g->input[i]->name || !g->input[i]->name[0])
      return ox_err(c, NULL, "graph input %zu has no name", i);
  for (size_t i = 0; i < g->n_output; i++)
    if (!g->output[i]->name || !g->output[i]->name[0])
      return ox_err(c, NULL, "graph output %zu has no name", i);
  if (!g->n_output) return ox_err(c, NULL, "the graph has no outputs");
  return 0;
}

/* why nnc has no mapping for an op kind that exported networks use, when there is more to
 * say than that */
static const char *refusal_reason(const char *op) {
  static const char *const why[][2] = {
      {"ArgMax", "nnc has no argmax, an op whose result is integer indices"},
      {"ArgMin", "nnc has no argmin, an op whose result is integer indices"},
      {"TopK", "nnc has no top-k, an op whose result includes integer indices"},
      {"NonZero", "nnc's shapes are known at compile time, a NonZero's are not"},
      {"ConvTranspose", "nnc has no transposed convolution"},
      {"If", "nnc graphs have no control flow"},
      {"Loop", "nnc graphs have no control flow"},
      {"Scan", "nnc graphs have no control flow"},
  };
  for (size_t i = 0; i < sizeof why / sizeof *why; i++)
    if (!strcmp(why[i][0], op)) return why[i][1];
  return NULL;
}

/* every node's op kind must have a handler: all kinds that do not are reported at once */
static int check_op_kinds(OxCtx *c) {
  Onnx__GraphProto *g = c->g;
  int bad = 0;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (default_domain(n->domain) && ox_op_index(n->op_type) >= 0) continue;
    int seen = 0, count = 0;
    for (size_t j = 0; j < g->n_node; j++) {
      const Onnx__NodeProto *m = g->node[j];
      if (strcmp(m->op_type, n->op_type) ||
          strcmp(m->domain ? m->domain : "", n->domain ? n->domain : ""))
        continue;
      seen |= j < i;
      count++;
    }
    if (seen) continue;
    bad++;
    if (!default_domain(n->domain))
      ox_err(c, n,
             "operator '%s' of domain '%s' (%d node%s) is outside the ONNX standard "
             "operators that nnc maps",
             n->op_type, n->domain, count, count > 1 ? "s" : "");
    else
      ox_err(c, n,
             "operator '%s' (opset %lld, %d node%s) has no nnc equivalent%s%s%s; "
             "docs/import.md lists the supported operators",
             n->op_type, (long long)c->opset, count, count > 1 ? "s" : "",
             refusal_reason(n->op_type) ? " (" : "",
             refusal_reason(n->op_type) ? refusal_reason(n->op_type) : "",
             refusal_reason(n->op_type) ? ")" : "");
  }
  return bad ? -1 : 0;
}

static const char *dim_symbol(OxCtx *c, const char *param) {
  const char *id = NULL;
  for (int i = 0; i < c->nsyms; i++)
    if (!strcmp(c->syms[i], param)) return c->symid[i];
  if (c->nsyms == (int)(sizeof c->syms / sizeof *c->syms)) return NULL;
  id = ox_ident(c, param);
  c->syms[c->nsyms] = arena_strdup(c->a, param);
  c->symid[c->nsyms++] = id;
  long long v = 1;
  for (int i = 0; i < c->opt->ndims; i++)
    if (!strcmp(c->opt->dim_names[i], param) || !strcmp(c->opt->dim_names[i], id))
      v = c->opt->dim_values[i];
  int w = fprintf(c->decl, "  dim %s = %lld", id, v);
  fprintf(c->decl, "%*s# symbolic in the ONNX file ('%s'); set with -D %s=...\n",
          w < 28 ? 28 - w : 1, "", ox_text(c, param), id);
  return id;
}

static int add_input(OxCtx *c, const Onnx__ValueInfoProto *vi) {
  const Onnx__TypeProto *t = vi->type;
  if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
    return ox_err(c, NULL, "graph input '%s' is not a tensor", vi->name);
  const Onnx__TensorShapeProto *sh = t->tensor_type->shape;
  OxVal *v = ox_new(c, vi->name, OXV_INPUT);
  v->elem = t->tensor_type->elem_type;
  if (!sh) return ox_err(c, NULL, "graph input '%s' has no shape; nnc needs its rank", vi->name);
  if (sh->n_dim > OX_MAX_RANK)
    return ox_err(c, NULL, "graph input '%s' has rank %zu, at most %d", vi->name, sh->n_dim,
                  OX_MAX_RANK);
  v->rank = (int)sh->n_dim;
  for (int i = 0; i < v->rank; i++) {
    const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
        d->dim_value > INT32_MAX)
      return ox_err(c, NULL, "graph input '%s': dim %d is %lld, more than nnc's 2^31-1", vi->name,
                    i, (long long)d->dim_value);
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value > 0) {
      v->dims[i] = (OxDim){d->dim_value, NULL};
      continue;
    }
    const char *p = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                        ? d->dim_param
                        : arena_printf(c->a, "%s_dim%d", vi->name, i);
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
      return ox_err(c, NULL, "graph input '%s' has an empty dim %d", vi->name, i);
    const char *sym = dim_symbol(c, p);
    if (!sym) return ox_err(c, NULL, "too many symbolic dims");
    v->dims[i] = (OxDim){1, sym};
  }
  int64_t cnt = 1;
  for (int i = 0; i < v->rank; i++)
    if ((cnt *= v->dims[i].v) > ((int64_t)1 << 40))
      return ox_err(c, NULL, "graph input '%s' has more than 2^40 elements", vi->name);
  if (v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
      v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 &&
      v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__INT32 &&
      v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL)
    return ox_err(c, NULL,
                  "graph input '%s' is %s; nnc imports float and bool inputs and integer "
                  "indices",
                  vi->name, ox_dt_name(v->elem));
  return 0;
}

static int load_values(OxCtx *c) {
  for (size_t i = 0; i < c->g->n_initializer; i++) {
    const Onnx__TensorProto *t = c->g->initializer[i];
    OxVal *v = ox_new(c, t->name ? t->name : "", OXV_CONST);
    if (ox_tensor_to_const(c, t, v, NULL)) return -1;
  }
  for (size_t i = 0; i < c->g->n_input; i++) {
    const Onnx__ValueInfoProto *vi = c->g->input[i];
    OxVal *v = ox_find(c, vi->name);
    if (v && v->kind == OXV_CONST) continue; /* an initializer listed as input (IR < 4) */
    if (add_input(c, vi)) return -1;
  }
  return 0;
}

static int convert_nodes(OxCtx *c) {
  c->skip = arena_alloc(c->a, c->g->n_node + 1);
  ox_find_gelu(c);
  for (size_t i = 0; i < c->g->n_node; i++) {
    const Onnx__NodeProto *n = c->g->node[i];
    if (c->skip[i]) continue;
    if (ox_op_run(c, n, ox_op_index(n->op_type))) return -1;
  }
  return 0;
}

static int write_outputs(OxCtx *c) {
  fputs("  output ", c->body);
  for (size_t i = 0; i < c->g->n_output; i++) {
    const char *name = c->g->output[i]->name;
    OxVal *v = ox_find(c, name);
    if (!v) return ox_err(c, NULL, "graph output '%s' is computed by no node", name);
    if (v->kind == OXV_CONST)
      return ox_err(c, NULL, "graph output '%s' is a constant; nnc outputs are computed tensors",
                    name);
    if (v->kind == OXV_INPUT && !v->id) {
      Onnx__NodeProto fake = ONNX__NODE_PROTO__INIT;
      char *in[1] = {(char *)name};
      fake.n_input = 1, fake.input = in, fake.op_type = "output";
      if (!ox_operand(c, &fake, 0, 0)) return -1;
    }
    fprintf(c->body, "%s%s", i ? ", " : "", v->id);
    fprintf(c->notes, "# output %s <- '%s'\n", v->id, ox_text(c, name));
  }
  fputc('\n', c->body);
  return 0;
}

static int write_text(OxCtx *c, const OnnxImportOptions *o, const Onnx__ModelProto *m,
                      const char *defs, size_t defs_len);

static const char *model_name(OxCtx *c, const OnnxImportOptions *o) {
  if (o->model_name) return ox_ident(c, o->model_name);
  const char *b = strrchr(o->model_path, '/');
  char *s = arena_strdup(c->a, b ? b + 1 : o->model_path);
  char *dot = strrchr(s, '.');
  if (dot && dot != s) *dot = 0;
  return ox_ident(c, s);
}

static int write_files(OxCtx *c, const OnnxImportOptions *o, const Onnx__ModelProto *m) {
  fflush(c->decl), fflush(c->notes);
  fclose(c->body); /* settles body_buf, which ox_make_blocks replaces */
  c->body = NULL;
  char *defs = NULL;
  size_t defs_len = 0;
  if (!o->no_blocks && ox_make_blocks(c, &defs, &defs_len)) return ox_err(c, NULL, "out of memory");
  int rc = write_text(c, o, m, defs ? defs : "", defs_len);
  free(defs);
  if (rc) return rc;
  char err[512];
  if (o->out_weights && rt_st_write(o->out_weights, &c->weights, "{}", err, sizeof err))
    return ox_err(c, NULL, "%s", err);
  return 0;
}

static int write_text(OxCtx *c, const OnnxImportOptions *o, const Onnx__ModelProto *m,
                      const char *defs, size_t defs_len) {
  const char *ver = m->producer_version && m->producer_version[0] ? m->producer_version : NULL;
  char *head = arena_printf(
      c->a,
      "# %s: imported by nnc import from %s (producer %s%s%s, opset %lld)\n"
      "# where the names come from (the ONNX names are quoted):\n",
      ox_text(c, o->out_nn), ox_text(c, o->model_path),
      m->producer_name && m->producer_name[0] ? ox_text(c, m->producer_name) : "unknown",
      ver ? " " : "", ver ? ox_text(c, ver) : "", (long long)c->opset);
  char *open = arena_printf(c->a, "model %s {\n", model_name(c, o));
  const void *parts[8] = {head, c->notes_buf, "\n", defs, open, c->decl_buf, c->body_buf, "}\n"};
  size_t sizes[8] = {strlen(head), c->notes_len, 1,           defs_len,
                     strlen(open), c->decl_len,  c->body_len, 2};
  char err[512];
  if (rt_file_write_atomic(o->out_nn, parts, sizes, 8, err, sizeof err))
    return ox_err(c, NULL, "%s", err);
  return 0;
}

static int64_t opset_of(const Onnx__ModelProto *m) {
  for (size_t i = 0; i < m->n_opset_import; i++)
    if (default_domain(m->opset_import[i]->domain)) return m->opset_import[i]->version;
  return 1;
}

static int import_model(OxCtx *c, const OnnxImportOptions *o, Onnx__ModelProto *m) {
  if (!m->graph) return ox_err(c, NULL, "the model has no graph");
  c->g = m->graph;
  c->opset = opset_of(m);
  if (check_graph(c) || check_op_kinds(c) || load_values(c) || convert_nodes(c) || write_outputs(c))
    return -1;
  if (!c->weights.n && o->out_weights)
    fprintf(c->notes, "# (no parameters: %s holds no tensors)\n", ox_text(c, o->out_weights));
  return write_files(c, o, m);
}

int onnx_import(const OnnxImportOptions *o, Diag *d) {
  char err[512];
  size_t len;
  void *buf = rt_file_read_all(o->model_path, &len, err, sizeof err);
  if (!buf) {
    diag_error_file(d, NULL, "%s", err);
    return -1;
  }
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  if (!m) {
    diag_error_file(d, o->model_path, "not an ONNX model (the protobuf does not parse)");
    return -1;
  }
  OxCtx c = {.path = o->model_path, .opt = o, .d = d, .a = arena_new()};
  c.body = open_memstream(&c.body_buf, &c.body_len);
  c.decl = open_memstream(&c.decl_buf, &c.decl_len);
  c.notes = open_memstream(&c.notes_buf, &c.notes_len);
  int rc = -1;
  if (c.body && c.decl && c.notes)
    rc = import_model(&c, o, m);
  else
    diag_error_file(d, NULL, "out of memory");
  if (c.body) fclose(c.body);
  if (c.decl) fclose(c.decl);
  if (c.notes) fclose(c.notes);
  free(c.body_buf), free(c.decl_buf), free(c.notes_buf);
  rt_set_free(&c.weights);
  arena_free(c.a);
  onnx__model_proto__free_unpacked(m, NULL);
  return rc;
}
