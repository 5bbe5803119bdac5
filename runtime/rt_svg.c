/* rt_svg.c — roofline chart primitives (rt_svg.h). */
#include "rt_svg.h"

#include <math.h>

#define W RT_SVG_W
#define RH RT_SVG_RH
#define ML RT_SVG_ML
#define MR RT_SVG_MR
#define MT RT_SVG_MT
#define MB RT_SVG_MB

double rt_svg_px(const RtRoofAxes *a, double v) {
  return ML + (log10(v) - a->x0) / (a->x1 - a->x0) * (W - ML - MR);
}

double rt_svg_py(const RtRoofAxes *a, double v) {
  return MT + (a->y1 - log10(v)) / (a->y1 - a->y0) * (RH - MT - MB);
}

const char *rt_svg_esc(const char *s, char *buf, size_t n) {
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

const char *rt_svg_si(double v, const char *unit, char *buf, size_t n) {
  static const char *pre[] = {"", "K", "M", "G", "T", "P", "E"};
  int i = 0;
  while (fabs(v) >= 1000 && i < 6) v /= 1000, i++;
  snprintf(buf, n, "%.3g %s%s", v, pre[i], unit);
  return buf;
}

void rt_svg_axes(RtRoofAxes *a, double top, double lo, double hi) {
  a->y1 = ceil(log10(top * 1.5));
  a->y0 = a->y1 - 6;
  a->x0 = -2, a->x1 = 4;
  if (lo > 0) a->x0 = fmin(a->x0, floor(log10(lo)));
  if (hi > 0) a->x1 = fmax(a->x1, ceil(log10(hi)));
}

void rt_svg_begin(FILE *f, int height, const char *title) {
  char e[512];
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
             "<text x=\"%d\" y=\"28\" font-size=\"16\">roofline: %s</text>\n",
          W, height, W, height, ML, rt_svg_esc(title, e, sizeof e));
}

void rt_svg_grid(FILE *f, const RtRoofAxes *a) {
  for (int d = (int)a->x0; d <= (int)a->x1; d++) {
    double x = rt_svg_px(a, pow(10, d));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, MT, x,
            RH - MB);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">1e%d</text>\n",
            x, RH - MB + 16, d);
  }
  for (int d = (int)a->y0; d <= (int)a->y1; d++) {
    double y = rt_svg_py(a, pow(10, d));
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

void rt_svg_roof(FILE *f, const RtRoofAxes *a, double peak, double bw, const char *label) {
  char b[32];
  double ridge = peak / bw, xe = pow(10, a->x1);
  fprintf(f, "<polyline class=\"roof\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\" "
             "points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
          rt_svg_px(a, pow(10, a->x0)), rt_svg_py(a, fmax(bw * pow(10, a->x0), pow(10, a->y0))),
          rt_svg_px(a, ridge), rt_svg_py(a, peak), rt_svg_px(a, xe), rt_svg_py(a, peak));
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%speak %s, "
             "ridge %.3g FLOP/B</text>\n", (double)W - MR - 4, rt_svg_py(a, peak) - 5,
          label ? label : "", rt_svg_si(peak, "FLOP/s", b, sizeof b), ridge);
}
