/* graph_names.h — tests: a graph's leaves and outputs by name (the descriptor's tensor names). */
#ifndef NN_TESTS_GRAPH_NAMES_H
#define NN_TESTS_GRAPH_NAMES_H
#include <string.h>

#include "../../ir/ir.h"

/* the PARAM or INPUT node named name (the last one), -1 if none */
static inline int tg_find_leaf(const IrGraph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i].name && !strcmp(g->nodes[i].name, name) &&
        (g->nodes[i].op == OP_PARAM || g->nodes[i].op == OP_INPUT))
      return i;
  return -1;
}
/* the node of output name, -1 if none */
static inline int tg_find_out(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].node;
  return -1;
}
#endif
