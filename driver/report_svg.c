/* report_svg.c — roofline and memory charts as SVG (see report_svg.h). Log-log axes:
 * arithmetic intensity (FLOP/byte) against attainable FLOP/s; each kernel sits at
 * min(peak, intensity x bandwidth) for its own peak, coloured by what bounds it. */
#include "report_svg.h"

#include "driver.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define W 900
#define RH 520 /* roofline panel height */
#define MH 190 /* memory panel height */
#define ML 80  /* margins */
#define MR 30
#define MT 50
#define MB 60
#define NLABELS 8 /* ops labelled by name: the most time-consuming */

typedef struct Axes {
  double x0, x1, y0, y1; /* decades */
} Axes;

static double px(const Axes *a, double v) {
  return ML + (log10(v) - a->x0) / (a->x1 - a->x0) * (W - ML - MR);
}
static double py(const Axes *a, double v) {
  return MT + (a->y1 - log10(v)) / (a->y1 - a->y0) * (RH - MT - MB);
}

/* XML-escape into buf */
static const char *esc(const char *s, char *buf, size_t n) {
  size_t k = 0;
  for (; *s && k + 7 < n; s++) {
    const char *r = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;"
                  : *s == '"' ? "&quot;" : NULL;
    if (r) k += (size_t)snprintf(buf + k, n - k, "%s", r);
    else buf[k++] = *s;
  }
  buf[k] = 0;
  return buf;
}

static const char *si(double v, const char *unit, char *buf, size_t n) {
  static const char *pre[] = {"", "K", "M", "G", "T", "P", "E"};
  int i = 0;
  while (fabs(v) >= 1000 && i < 6) v /= 1000, i++;
  snprintf(buf, n, "%.3g %s%s", v, pre[i], unit);
  return buf;
}

static void axes_of(const CostResult *r, Axes *a) {
  const HwTarget *hw = r->hw;
  double top = 0;
  for (int k = 0; k < HWP_COUNT; k++) top = fmax(top, hw->peak[k]);
  a->y1 = ceil(log10(top * 1.5));
  a->y0 = a->y1 - 6;
  a->x0 = -2, a->x1 = 4;
  for (int i = 0; i < r->g->nnodes; i++) {
    const CostTime *t = &r->time[i];
    if (t->intensity > 0) {
      a->x0 = fmin(a->x0, floor(log10(t->intensity)));
      a->x1 = fmax(a->x1, ceil(log10(t->intensity)));
    }
  }
}

static void grid(FILE *f, const Axes *a) {
  for (int d = (int)a->x0; d <= (int)a->x1; d++) {
    double x = px(a, pow(10, d));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, MT, x,
            RH - MB);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">1e%d</text>\n",
            x, RH - MB + 16, d);
  }
  for (int d = (int)a->y0; d <= (int)a->y1; d++) {
    double y = py(a, pow(10, d));
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, y,
            W - MR, y);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">1e%d</text>\n",
            ML - 6, y + 4, d);
  }
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">arithmetic intensity "
             "(FLOP/byte)</text>\n", (W + ML - MR) / 2, RH - MB + 38);
  fprintf(f, "<text x=\"18\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\" "
             "transform=\"rotate(-90 18 %d)\">attainable FLOP/s</text>\n", (RH + MT - MB) / 2,
          (RH + MT - MB) / 2);
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
    double ridge = p / hw->mem_bw, xe = pow(10, a->x1);
    fprintf(f, "<polyline class=\"roof\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\" "
               "points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
            px(a, pow(10, a->x0)), py(a, fmax(hw->mem_bw * pow(10, a->x0), pow(10, a->y0))),
            px(a, ridge), py(a, p), px(a, xe), py(a, p));
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">peak %s, "
               "ridge %.3g FLOP/B</text>\n", (double)W - MR - 4, py(a, p) - 5,
            si(p, "FLOP/s", b, sizeof b), ridge);
  }
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">memory %s</text>\n", ML + 6, RH - MB - 8,
          si(hw->mem_bw, "B/s", b, sizeof b));
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
    esc(nm, e1, sizeof e1);
    fprintf(f, "<circle class=\"op\" data-node=\"%d\" data-op=\"%s\" data-name=\"%s\" cx=\"%.1f\" "
               "cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.6\"><title>%%%d %s %s %s: %s, "
               "%.3g FLOP/B, %s-bound</title></circle>\n",
            i, ir_op_name(n->op), e1, px(a, t->intensity), py(a, perf),
            t->compute_bound ? "#c0392b" : "#2471a3", i, ir_op_name(n->op), e1,
            esc(tb, e2, sizeof e2), si(t->flops, "FLOP", b1, sizeof b1), t->intensity,
            t->compute_bound ? "compute" : "memory");
    if (t->time >= cut)
      fprintf(f, "<text class=\"label\" data-node=\"%d\" x=\"%.1f\" y=\"%.1f\" font-size=\"10\">"
                 "%s (%s)</text>\n", i, px(a, t->intensity) + 6, py(a, perf) - 6, e1,
              si(t->time, "s", b2, sizeof b2));
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
  char t[256], e[512];
  snprintf(t, sizeof t, "%s on %s", title, r->hw->name);
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
             "<text x=\"%d\" y=\"28\" font-size=\"16\">roofline: %s</text>\n",
          W, RH + MH, W, RH + MH, ML, esc(t, e, sizeof e));
  grid(f, &a);
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
