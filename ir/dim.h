/* dim.h — symbolic dimension expressions.
 *
 * A Dim is an immutable, interned polynomial with integer coefficients over atoms, where an
 * atom is either a named symbolic dim (`N`, `D`) or a floor division `floor(p / k)` of a
 * polynomial p by a positive integer k (conv/pool output sizes). Interning makes equal
 * expressions pointer-equal: canonical form = sorted terms, sorted monomials, no zero terms;
 * floor(p/k) folds to an exact quotient when every coefficient of p is divisible by k, and to
 * a constant when p is constant. Shapes, costs and memory sizes are Dims, so every figure can
 * be printed as a formula (`1622016*N`) and evaluated at the chosen values.
 */
#ifndef NN_DIM_H
#define NN_DIM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIM_MAX_SYMS 32

typedef struct Dim Dim;
typedef struct DimCtx DimCtx;

DimCtx *dim_ctx_new(void);
void dim_ctx_free(DimCtx *c);

/* symbols: declared once per model, with a default value (may be overridden) */
int dim_sym_declare(DimCtx *c, const char *name, int64_t value); /* -> index, -1 if full */
int dim_sym_find(const DimCtx *c, const char *name);              /* -1 if absent */
int dim_sym_count(const DimCtx *c);
const char *dim_sym_name(const DimCtx *c, int i);
int64_t dim_sym_value(const DimCtx *c, int i);
void dim_sym_set_value(DimCtx *c, int i, int64_t v);

/* constructors (all results interned in c) */
Dim *dim_const(DimCtx *c, int64_t v);
Dim *dim_sym(DimCtx *c, int sym);
Dim *dim_add(DimCtx *c, const Dim *a, const Dim *b);
Dim *dim_sub(DimCtx *c, const Dim *a, const Dim *b);
Dim *dim_mul(DimCtx *c, const Dim *a, const Dim *b);
Dim *dim_scale(DimCtx *c, const Dim *a, int64_t k);
Dim *dim_floordiv(DimCtx *c, const Dim *a, int64_t k); /* k > 0 */
/* exact division a / b when b divides a as polynomials (e.g. (N*784)/N = 784, 12*N/4 = 3*N);
 * NULL when not exact */
Dim *dim_div_exact(DimCtx *c, const Dim *a, const Dim *b);

/* true once any coefficient computed in c overflowed int64 (and saturated): the formulas
 * built since are not exact, and whoever built them reports the model as too large */
bool dim_ctx_overflowed(const DimCtx *c);
/* queries */
bool dim_is_const(const Dim *a, int64_t *value); /* true if a has no symbols */
bool dim_eq(const Dim *a, const Dim *b);         /* interned: a == b */
/* value at the ctx's current symbol values (or vals[] if non-NULL, indexed by symbol) */
int64_t dim_eval(const DimCtx *c, const Dim *a, const int64_t *vals);
/* like dim_eval, but false instead of a wrapped result when a step overflows int64 */
bool dim_eval_checked(const DimCtx *c, const Dim *a, const int64_t *vals, int64_t *out);
/* like dim_eval, but in double (for costs that may exceed int64 in sweeps) */
double dim_evalf(const DimCtx *c, const Dim *a, const int64_t *vals);

/* printing: "N", "784", "2*N*H + 3", "floor((H - 3)/2) + 1". style DIM_PRETTY uses '·'.
 * Returns the number of chars that would have been written (snprintf semantics). */
enum { DIM_PLAIN = 0, DIM_PRETTY = 1 };
int dim_print(const DimCtx *c, const Dim *a, char *buf, size_t n, int style);
/* convenience: printed into a ctx-owned rotating buffer, valid until 16 more calls */
const char *dim_str(const DimCtx *c, const Dim *a);
#endif
