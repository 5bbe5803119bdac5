/* rt_svg.h — roofline chart primitives shared by `nnc cost --svg` (driver/report_svg.c) and
 * a program's `bench --profile --svg` (rt_profile.c): log-log axes of arithmetic intensity
 * (FLOP/byte) against FLOP/s, the grid, one roof per peak, XML escaping and SI labels. */
#ifndef RT_SVG_H
#define RT_SVG_H
#include <stddef.h>
#include <stdio.h>

#define RT_SVG_W 900  /* chart width */
#define RT_SVG_RH 520 /* roofline panel height */
#define RT_SVG_ML 80  /* margins */
#define RT_SVG_MR 30
#define RT_SVG_MT 50
#define RT_SVG_MB 60

typedef struct RtRoofAxes {
  double x0, x1, y0, y1; /* decades of intensity (x) and FLOP/s (y) */
} RtRoofAxes;

double rt_svg_px(const RtRoofAxes *a, double intensity);
double rt_svg_py(const RtRoofAxes *a, double flops_per_s);
/* XML-escaped s, and v with an SI prefix and unit ("1.5 GFLOP/s"), into buf */
const char *rt_svg_esc(const char *s, char *buf, size_t n);
const char *rt_svg_si(double v, const char *unit, char *buf, size_t n);
/* axes whose FLOP/s decades end above top and whose intensity decades hold [lo, hi] */
void rt_svg_axes(RtRoofAxes *a, double top, double lo, double hi);
/* the svg element, a white page and the title */
void rt_svg_begin(FILE *f, int height, const char *title);
void rt_svg_grid(FILE *f, const RtRoofAxes *a);
/* min(peak, intensity x bw) with its label at the right end */
void rt_svg_roof(FILE *f, const RtRoofAxes *a, double peak, double bw, const char *label);
#endif
