/* report_svg.h — `nnc cost --svg`: a roofline chart with the graph's kernels placed on it
 * and a memory breakdown chart, in one self-contained SVG file. */
#ifndef NN_REPORT_SVG_H
#define NN_REPORT_SVG_H
#include <stddef.h>

#include "../passes/cost.h"

/* r must have been through cost_roofline. Every kernel with FLOPs and bytes is drawn as a
 * circle carrying data-node, data-op and data-name attributes and a <title>. Written
 * atomically (temp file + rename). 0 ok, -1 with err filled. */
int report_svg(const char *path, const CostResult *r, const char *title, char *err, size_t n);
#endif
