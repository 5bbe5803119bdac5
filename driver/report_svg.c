/* report_svg.c — roofline and memory charts as SVG (see report_svg.h). Log-log axes:
 * arithmetic intensity (FLOP/byte) against attainable FLOP/s; each kernel sits at
 * min(peak, intensity x bandwidth) for its own peak, coloured by what bounds it. */
#include "report_svg.h"

#include "driver.h"
#include "rt_svg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define W RT_SVG_W
#define RH RT_SVG_RH
#define MH 190 /* memory panel height */
#define ML RT_SVG_ML
#define MR RT_SVG_MR
#define MT RT_SVG_MT
#define MB RT_SVG_MB
#define NLABELS 8 /* ops labelled by name: the most time-consuming */

typedef RtRoofAxes Axes;

static void axes_of(const CostResult *r, Axes *a) {
  const HwTarget *hw = r->hw;
  double top = 0, lo = 0, hi = 0;
  for (int k = 0; k < HWP_COUNT; k++) top = fmax(top, hw->peak[k]);
  for (int i = 0; i < r->g->nnodes; i++) {
    double x = r->time[i].intensity;
    if (x > 0) lo = lo > 0 ? fmin(lo, x) : x, hi = fmax(hi, x);
  }
  rt_svg_axes(a, top, lo, hi);
}

/* one roof per distinct peak the graph uses, plus the bandwidth slope */
static void roofs(FILE *f, const CostResult *r, const Axes *a) {
  const HwTarget *hw = r->hw;
  double seen[16];
  int ns = 0;
  char b[32];
  for (int i = 0; i < r->g->nnodes; i++) {
    double p = r->time[i].peak;
    if (p <= 0 || !r->node[i].kernel) continue;
    bool dup = false;
    for (int k = 0; k < ns; k++) dup |= seen[k] == p;
    if (dup || ns == 16) continue;
    seen[ns++] = p;
    rt_svg_roof(f, a, p, hw->mem_bw, NULL);
  }
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">memory %s</text>\n", ML + 6, RH - MB - 8,
          rt_svg_si(hw->mem_bw, "B/s", b, sizeof b));
}

/* the time of the NLABELS-th slowest plotted op: ops at or above it get a text label */
static double label_cut(const CostResult *r) {
  double top[NLABELS] = {0};
  for (int i = 0; i < r->g->nnodes; i++) {
    const CostTime *t = &r->time[i];
    if (!r->node[i].kernel || t->flops <= 0 || t->intensity <= 0) continue;
    double v = t->time;
    for (int k = 0; k < NLABELS; k++)
      if (v > top[k]) {
        double s = top[k];
        top[k] = v, v = s;
      }
  }
  return top[NLABELS - 1] > 0 ? top[NLABELS - 1] : 1e-300;
}

static void legend(FILE *f) {
  static const char *const what[2] = {"compute-bound (at its peak roof)",
                                      "memory-bound (on the bandwidth slope)"};
  static const char *const color[2] = {"#c0392b", "#2471a3"};
  for (int k = 0; k < 2; k++)
    fprintf(f, "<g class=\"legend\"><circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text></g>\n",
            ML + 12, MT + 14 + 16 * k, color[k], ML + 22, MT + 18 + 16 * k, what[k]);
}

static void points(FILE *f, const CostResult *r, const Axes *a) {
  IrGraph *g = r->g;
  char nm[160], e1[200], e2[64], tb[160], b1[32], b2[32];
  double cut = label_cut(r);
  for (int i = 0; i < g->nnodes; i++) {
    const CostTime *t = &r->time[i];
    if (!r->node[i].kernel || t->flops <= 0 || t->intensity <= 0) continue;
    const IrNode *n = &g->nodes[i];
    double perf = fmin(t->peak, t->intensity * r->hw->mem_bw);
    if (n->name) snprintf(nm, sizeof nm, "%s", n->name);
    else if (n->scope) snprintf(nm, sizeof nm, "%s/%s", n->scope, ir_op_name(n->op));
    else snprintf(nm, sizeof nm, "%%%d %s", i, ir_op_name(n->op));
    ir_type_str(g, &n->type, tb, sizeof tb);
    rt_svg_esc(nm, e1, sizeof e1);
    fprintf(f, "<circle class=\"op\" data-node=\"%d\" data-op=\"%s\" data-name=\"%s\" cx=\"%.1f\" "
               "cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.6\"><title>%%%d %s %s %s: %s, "
               "%.3g FLOP/B, %s-bound</title></circle>\n",
            i, ir_op_name(n->op), e1, rt_svg_px(a, t->intensity), rt_svg_py(a, perf),
            t->compute_bound ? "#c0392b" : "#2471a3", i, ir_op_name(n->op), e1,
            rt_svg_esc(tb, e2, sizeof e2), rt_svg_si(t->flops, "FLOP", b1, sizeof b1), t->intensity,
            t->compute_bound ? "compute" : "memory");
    if (t->time >= cut)
      fprintf(f, "<text class=\"label\" data-node=\"%d\" x=\"%.1f\" y=\"%.1f\" font-size=\"10\">"
                 "%s (%s)</text>\n", i, rt_svg_px(a, t->intensity) + 6, rt_svg_py(a, perf) - 6, e1,
              rt_svg_si(t->time, "s", b2, sizeof b2));
  }
}

static void memory_panel(FILE *f, const CostResult *r) {
  IrGraph *g = r->g;
  const CostMem *m = &r->mem;
  struct {
    const char *name, *color;
    double v;
  } parts[] = {{"weights", "#1f77b4", dim_evalf(g->dims, m->weights, NULL)},
               {"gradients", "#ff7f0e", dim_evalf(g->dims, m->grads, NULL)},
               {"optimizer", "#2ca02c", dim_evalf(g->dims, m->optimizer, NULL)},
               {"activations", "#d62728", dim_evalf(g->dims, m->activations, NULL)},
               {"inputs", "#9467bd", dim_evalf(g->dims, m->inputs, NULL)},
               {"other at the peak", "#bbbbbb", 0}};
  double total = 0;
  for (size_t i = 0; i < 5; i++) total += parts[i].v;
  /* what the planned peak holds beyond these (temporaries of the step) gets its own part */
  parts[5].v = m->peak > total ? m->peak - total : 0;
  total += parts[5].v;
  double scale_to = fmax(total, m->peak);
  if (scale_to <= 0) scale_to = 1;
  int y0 = RH + 30, bw = W - ML - MR;
  char b[32];
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\">memory (planned peak %s, dashed line)</text>\n",
          ML, y0, drv_bytes_h(m->peak, b, sizeof b));
  double x = ML;
  for (size_t i = 0; i < 6; i++) {
    double w = parts[i].v / scale_to * bw;
    fprintf(f, "<rect class=\"mem\" data-part=\"%s\" data-bytes=\"%.0f\" x=\"%.1f\" y=\"%d\" "
               "width=\"%.1f\" height=\"28\" fill=\"%s\"><title>%s: %s</title></rect>\n",
            parts[i].name, parts[i].v, x, y0 + 12, w, parts[i].color, parts[i].name,
            drv_bytes_h(parts[i].v, b, sizeof b));
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s %s</text>\n",
            ML + (int)(i % 3) * 260, y0 + 56 + 18 * (int)(i / 3), parts[i].color,
            ML + (int)(i % 3) * 260 + 16, y0 + 66 + 18 * (int)(i / 3), parts[i].name,
            drv_bytes_h(parts[i].v, b, sizeof b));
    x += w;
  }
  double xp = ML + m->peak / scale_to * bw;
  fprintf(f, "<line class=\"peak\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\" "
             "stroke-width=\"2\" stroke-dasharray=\"4 2\"/>\n", xp, y0 + 6, xp, y0 + 46);
}

int report_svg(const char *path, const CostResult *r, const char *title, char *err, size_t n) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(err, n, "%s: %s", path, strerror(errno));
    return -1;
  }
  Axes a;
  axes_of(r, &a);
  char t[256];
  snprintf(t, sizeof t, "%s on %s", title, r->hw->name);
  rt_svg_begin(f, RH + MH, t);
  rt_svg_grid(f, &a);
  roofs(f, r, &a);
  points(f, r, &a);
  legend(f);
  memory_panel(f, r);
  fputs("</svg>\n", f);
  if (fclose(f) || rename(tmp, path)) {
    snprintf(err, n, "%s: %s", path, strerror(errno));
    remove(tmp);
    return -1;
  }
  return 0;
}
