/* dim.c — symbolic dimension algebra: interned integer polynomials over symbols and
 * floor-division atoms.
 *
 * Representation: a Dim is a sorted list of terms (coefficient × monomial); a monomial is a
 * sorted list of (atom, exponent) factors; an atom is a symbol or floor(p/k) with p an
 * interned Dim. Atoms and Dims are both hash-consed in the ctx, so structural equality is
 * pointer equality and atoms can be compared by pointer while building.
 *
 * Order (used for canonical form and for printing): atoms sort symbols first in declaration
 * order, then floor atoms structurally; terms sort by total degree descending, then
 * lexicographically with earlier atoms / higher exponents first, so the constant term is
 * last.
 *
 * Coefficient arithmetic that overflows int64 saturates and marks the ctx (dim_ctx_overflowed):
 * shapes are bounded by ir_check_sizes before anything multiplies them, but a cost formula
 * over constant dims (FLOPs of a huge GEMM) can still exceed int64, and its caller reports
 * that as "too large" instead of the process aborting. Evaluation (dim_eval) wraps, since
 * sweeps may push a cost past int64; dim_evalf and dim_eval_checked are the tools for that.
 */
#include "dim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

typedef struct DimAtom DimAtom;

struct DimAtom {
  int sym;        /* symbol index, or -1 for a floor atom */
  const Dim *num; /* floor atom: numerator (interned, not constant) */
  int64_t den;    /* floor atom: denominator, >= 2 */
  uint64_t hash;
  DimAtom *next; /* hash chain */
};

typedef struct {
  const DimAtom *atom;
  int exp;
} Factor;

typedef struct {
  int64_t coef;
  int nf;
  const Factor *f;
} Term;

struct Dim {
  int nterms;
  const Term *t;
  uint64_t hash;
  Dim *next; /* hash chain */
};

typedef struct {
  char *name;
  int64_t value;
} Sym;

#define DIM_STR_SLOTS 16

struct DimCtx {
  Arena *arena;
  Sym syms[DIM_MAX_SYMS];
  int nsyms;
  DimAtom *sym_atoms[DIM_MAX_SYMS];
  Dim **dims; /* interning table for Dims */
  size_t dims_cap, dims_n;
  DimAtom **atoms; /* interning table for floor atoms */
  size_t atoms_cap, atoms_n;
  char *str_buf[DIM_STR_SLOTS];
  size_t str_cap[DIM_STR_SLOTS];
  int str_next;
  bool overflow; /* a coefficient saturated (dim_ctx_overflowed) */
};

/* ---- checked coefficient arithmetic ---------------------------------------------------- */

/* saturating; *ovf is set when the exact result does not fit */
static int64_t ck_add(bool *ovf, int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  *ovf = true;
  return a < 0 ? INT64_MIN : INT64_MAX;
}

static int64_t ck_mul(bool *ovf, int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_mul_overflow(a, b, &r)) return r;
  *ovf = true;
  return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
}

static int64_t floor_div64(int64_t a, int64_t k) {
  int64_t q = a / k, r = a % k;
  if (r != 0 && ((r < 0) != (k < 0))) q--;
  return q;
}

static int64_t gcd64(int64_t a, int64_t b) {
  uint64_t x = a < 0 ? -(uint64_t)a : (uint64_t)a;
  uint64_t y = b < 0 ? -(uint64_t)b : (uint64_t)b;
  while (y) {
    uint64_t t = x % y;
    x = y;
    y = t;
  }
  return (int64_t)x; /* callers always include a positive int64 denominator */
}

/* ---- ordering -------------------------------------------------------------------------- */

static int dim_cmp(const Dim *a, const Dim *b);

static int atom_cmp(const DimAtom *a, const DimAtom *b) {
  if (a == b) return 0;
  if (a->sym >= 0 || b->sym >= 0) {
    if (a->sym < 0) return 1;
    if (b->sym < 0) return -1;
    return a->sym < b->sym ? -1 : 1;
  }
  int c = dim_cmp(a->num, b->num);
  if (c) return c;
  return a->den < b->den ? -1 : a->den > b->den ? 1 : 0;
}

static int mono_degree(const Factor *f, int nf) {
  int d = 0;
  for (int i = 0; i < nf; i++) d += f[i].exp;
  return d;
}

/* graded lexicographic: higher total degree first; then the monomial with the earlier atom
 * (or the higher power of the same atom) at the first difference */
static int mono_cmp(const Factor *a, int na, const Factor *b, int nb) {
  int da = mono_degree(a, na), db = mono_degree(b, nb);
  if (da != db) return da > db ? -1 : 1;
  for (int i = 0; i < na && i < nb; i++) {
    int c = atom_cmp(a[i].atom, b[i].atom);
    if (c) return c;
    if (a[i].exp != b[i].exp) return a[i].exp > b[i].exp ? -1 : 1;
  }
  return na < nb ? 1 : na > nb ? -1 : 0;
}

static int dim_cmp(const Dim *a, const Dim *b) {
  if (a == b) return 0;
  for (int i = 0; i < a->nterms && i < b->nterms; i++) {
    int c = mono_cmp(a->t[i].f, a->t[i].nf, b->t[i].f, b->t[i].nf);
    if (c) return c;
    if (a->t[i].coef != b->t[i].coef) return a->t[i].coef < b->t[i].coef ? -1 : 1;
  }
  return a->nterms < b->nterms ? -1 : a->nterms > b->nterms ? 1 : 0;
}

/* ---- scratch polynomials --------------------------------------------------------------- */

/* A Poly is the mutable heap form used while computing; poly_intern turns it into a Dim. */
typedef struct {
  int64_t coef;
  int nf;
  Factor *f;
} PTerm;

typedef struct {
  int n, cap;
  PTerm *t;
  bool ovf; /* a coefficient saturated; passed on to the ctx when interned */
} Poly;

static void poly_push(Poly *p, int64_t coef, const Factor *f, int nf) {
  if (coef == 0) return;
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 8;
    p->t = xrealloc(p->t, (size_t)p->cap * sizeof *p->t);
  }
  PTerm *t = &p->t[p->n++];
  t->coef = coef;
  t->nf = nf;
  t->f = NULL;
  if (nf) {
    t->f = xmalloc((size_t)nf * sizeof *f);
    memcpy(t->f, f, (size_t)nf * sizeof *f);
  }
}

static void poly_free(Poly *p) {
  for (int i = 0; i < p->n; i++) free(p->t[i].f);
  free(p->t);
  p->t = NULL;
  p->n = p->cap = 0;
}

static void poly_add_dim(Poly *p, const Dim *a, int64_t k) {
  for (int i = 0; i < a->nterms; i++)
    poly_push(p, ck_mul(&p->ovf, a->t[i].coef, k), a->t[i].f, a->t[i].nf);
}

static int pterm_cmp(const void *x, const void *y) {
  const PTerm *a = x, *b = y;
  return mono_cmp(a->f, a->nf, b->f, b->nf);
}

/* sort, merge equal monomials, drop zero terms */
static void poly_normalize(Poly *p) {
  if (p->n > 1) qsort(p->t, (size_t)p->n, sizeof *p->t, pterm_cmp);
  int w = 0;
  for (int r = 0; r < p->n; r++) {
    if (w > 0 && mono_cmp(p->t[w - 1].f, p->t[w - 1].nf, p->t[r].f, p->t[r].nf) == 0) {
      p->t[w - 1].coef = ck_add(&p->ovf, p->t[w - 1].coef, p->t[r].coef);
      free(p->t[r].f);
      continue;
    }
    if (w > 0 && p->t[w - 1].coef == 0) {
      free(p->t[w - 1].f);
      w--;
    }
    p->t[w++] = p->t[r];
  }
  if (w > 0 && p->t[w - 1].coef == 0) {
    free(p->t[w - 1].f);
    w--;
  }
  p->n = w;
}

/* ---- interning ------------------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t poly_hash(const Poly *p) {
  uint64_t h = 0x12345;
  for (int i = 0; i < p->n; i++) {
    h = mix(h, (uint64_t)p->t[i].coef);
    for (int j = 0; j < p->t[i].nf; j++) {
      h = mix(h, (uint64_t)(uintptr_t)p->t[i].f[j].atom);
      h = mix(h, (uint64_t)p->t[i].f[j].exp);
    }
    h = mix(h, 0xabcdu);
  }
  return h;
}

static bool poly_equals_dim(const Poly *p, const Dim *d) {
  if (p->n != d->nterms) return false;
  for (int i = 0; i < p->n; i++) {
    const PTerm *a = &p->t[i];
    const Term *b = &d->t[i];
    if (a->coef != b->coef || a->nf != b->nf) return false;
    for (int j = 0; j < a->nf; j++)
      if (a->f[j].atom != b->f[j].atom || a->f[j].exp != b->f[j].exp) return false;
  }
  return true;
}

static void dims_rehash(DimCtx *c) {
  size_t nc = c->dims_cap ? 2 * c->dims_cap : 256;
  Dim **nt = xcalloc(nc, sizeof *nt);
  for (size_t i = 0; i < c->dims_cap; i++) {
    Dim *d = c->dims[i];
    while (d) {
      Dim *next = d->next;
      size_t s = d->hash & (nc - 1);
      d->next = nt[s];
      nt[s] = d;
      d = next;
    }
  }
  free(c->dims);
  c->dims = nt;
  c->dims_cap = nc;
}

/* consumes p */
static Dim *poly_intern(DimCtx *c, Poly *p) {
  poly_normalize(p);
  c->overflow |= p->ovf;
  uint64_t h = poly_hash(p);
  if (c->dims_n + 1 > c->dims_cap) dims_rehash(c);
  size_t s = h & (c->dims_cap - 1);
  for (Dim *d = c->dims[s]; d; d = d->next) {
    if (d->hash == h && poly_equals_dim(p, d)) {
      poly_free(p);
      return d;
    }
  }
  Dim *d = arena_alloc(c->arena, sizeof *d);
  Term *t = p->n ? arena_alloc(c->arena, (size_t)p->n * sizeof *t) : NULL;
  for (int i = 0; i < p->n; i++) {
    t[i].coef = p->t[i].coef;
    t[i].nf = p->t[i].nf;
    Factor *f = NULL;
    if (p->t[i].nf) {
      f = arena_alloc(c->arena, (size_t)p->t[i].nf * sizeof *f);
      memcpy(f, p->t[i].f, (size_t)p->t[i].nf * sizeof *f);
    }
    t[i].f = f;
  }
  d->nterms = p->n;
  d->t = t;
  d->hash = h;
  d->next = c->dims[s];
  c->dims[s] = d;
  c->dims_n++;
  poly_free(p);
  return d;
}

static void atoms_rehash(DimCtx *c) {
  size_t nc = c->atoms_cap ? 2 * c->atoms_cap : 64;
  DimAtom **nt = xcalloc(nc, sizeof *nt);
  for (size_t i = 0; i < c->atoms_cap; i++) {
    DimAtom *a = c->atoms[i];
    while (a) {
      DimAtom *next = a->next;
      size_t s = a->hash & (nc - 1);
      a->next = nt[s];
      nt[s] = a;
      a = next;
    }
  }
  free(c->atoms);
  c->atoms = nt;
  c->atoms_cap = nc;
}

static const DimAtom *floor_atom(DimCtx *c, const Dim *num, int64_t den) {
  uint64_t h = mix(mix(0x7777, (uint64_t)(uintptr_t)num), (uint64_t)den);
  if (c->atoms_n + 1 > c->atoms_cap) atoms_rehash(c);
  size_t s = h & (c->atoms_cap - 1);
  for (DimAtom *a = c->atoms[s]; a; a = a->next)
    if (a->num == num && a->den == den) return a;
  DimAtom *a = arena_alloc(c->arena, sizeof *a);
  a->sym = -1;
  a->num = num;
  a->den = den;
  a->hash = h;
  a->next = c->atoms[s];
  c->atoms[s] = a;
  c->atoms_n++;
  return a;
}

static Dim *dim_from_atom(DimCtx *c, const DimAtom *a) {
  Poly p = {0};
  Factor f = {a, 1};
  poly_push(&p, 1, &f, 1);
  return poly_intern(c, &p);
}

/* ---- context and symbols --------------------------------------------------------------- */

DimCtx *dim_ctx_new(void) {
  DimCtx *c = xcalloc(1, sizeof *c);
  c->arena = arena_new();
  return c;
}

void dim_ctx_free(DimCtx *c) {
  if (!c) return;
  for (int i = 0; i < c->nsyms; i++) free(c->syms[i].name);
  for (int i = 0; i < DIM_STR_SLOTS; i++) free(c->str_buf[i]);
  free(c->dims);
  free(c->atoms);
  arena_free(c->arena);
  free(c);
}

/* A second declaration of the same name is an error (-1), so the caller can report it. */
int dim_sym_declare(DimCtx *c, const char *name, int64_t value) {
  if (c->nsyms >= DIM_MAX_SYMS || dim_sym_find(c, name) >= 0) return -1;
  int i = c->nsyms++;
  c->syms[i].name = xstrdup(name);
  c->syms[i].value = value;
  DimAtom *a = arena_alloc(c->arena, sizeof *a);
  a->sym = i;
  c->sym_atoms[i] = a;
  return i;
}

int dim_sym_find(const DimCtx *c, const char *name) {
  for (int i = 0; i < c->nsyms; i++)
    if (strcmp(c->syms[i].name, name) == 0) return i;
  return -1;
}

int dim_sym_count(const DimCtx *c) { return c->nsyms; }

const char *dim_sym_name(const DimCtx *c, int i) {
  return i >= 0 && i < c->nsyms ? c->syms[i].name : NULL;
}

int64_t dim_sym_value(const DimCtx *c, int i) {
  return i >= 0 && i < c->nsyms ? c->syms[i].value : 0;
}

void dim_sym_set_value(DimCtx *c, int i, int64_t v) {
  if (i >= 0 && i < c->nsyms) c->syms[i].value = v;
}

/* ---- constructors ---------------------------------------------------------------------- */

Dim *dim_const(DimCtx *c, int64_t v) {
  Poly p = {0};
  poly_push(&p, v, NULL, 0);
  return poly_intern(c, &p);
}

Dim *dim_sym(DimCtx *c, int sym) {
  if (sym < 0 || sym >= c->nsyms) {
    fprintf(stderr, "nnc: fatal: dim_sym: no symbol %d\n", sym);
    abort();
  }
  return dim_from_atom(c, c->sym_atoms[sym]);
}

Dim *dim_add(DimCtx *c, const Dim *a, const Dim *b) {
  Poly p = {0};
  poly_add_dim(&p, a, 1);
  poly_add_dim(&p, b, 1);
  return poly_intern(c, &p);
}

Dim *dim_sub(DimCtx *c, const Dim *a, const Dim *b) {
  Poly p = {0};
  poly_add_dim(&p, a, 1);
  poly_add_dim(&p, b, -1);
  return poly_intern(c, &p);
}

Dim *dim_scale(DimCtx *c, const Dim *a, int64_t k) {
  Poly p = {0};
  poly_add_dim(&p, a, k);
  return poly_intern(c, &p);
}

/* merge two sorted factor lists into out (capacity na + nb); returns the count */
static int mono_mul(const Factor *a, int na, const Factor *b, int nb, Factor *out, bool *ovf) {
  int i = 0, j = 0, n = 0;
  while (i < na || j < nb) {
    int cmp = i == na ? 1 : j == nb ? -1 : atom_cmp(a[i].atom, b[j].atom);
    if (cmp < 0) {
      out[n++] = a[i++];
    } else if (cmp > 0) {
      out[n++] = b[j++];
    } else {
      if (__builtin_add_overflow(a[i].exp, b[j].exp, &out[n].exp)) *ovf = true;
      out[n++].atom = a[i].atom;
      i++;
      j++;
    }
  }
  return n;
}

static void poly_add_product(Poly *p, const Term *x, int64_t coef, const Factor *f, int nf) {
  Factor *buf = xmalloc((size_t)(x->nf + nf + 1) * sizeof *buf);
  int n = mono_mul(x->f, x->nf, f, nf, buf, &p->ovf);
  poly_push(p, ck_mul(&p->ovf, x->coef, coef), buf, n);
  free(buf);
}

Dim *dim_mul(DimCtx *c, const Dim *a, const Dim *b) {
  Poly p = {0};
  for (int i = 0; i < a->nterms; i++)
    for (int j = 0; j < b->nterms; j++) poly_add_product(&p, &a->t[i], b->t[j].coef, b->t[j].f, b->t[j].nf);
  return poly_intern(c, &p);
}

/* a = 1*floor(q/k0) + rest, with rest free of that atom: the atom, else NULL */
static const DimAtom *lone_floor_term(const Dim *a, int *idx) {
  const DimAtom *found = NULL;
  for (int i = 0; i < a->nterms; i++) {
    const Term *t = &a->t[i];
    if (t->nf == 1 && t->f[0].exp == 1 && t->f[0].atom->sym < 0 && t->coef == 1 && !found) {
      found = t->f[0].atom;
      *idx = i;
    }
  }
  if (!found) return NULL;
  for (int i = 0; i < a->nterms; i++) {
    if (i == *idx) continue;
    for (int j = 0; j < a->t[i].nf; j++)
      if (a->t[i].f[j].atom == found) return NULL;
  }
  return found;
}

/* floor(p/k) with k > 0. Folds, in order:
 *   - p constant: the constant;
 *   - terms of p whose coefficient k divides leave the floor as exact quotients
 *     (floor((k*A + B)/k) = A + floor(B/k)); the constant term stays inside so that
 *     conv-style sizes print as written, e.g. floor((H - 3)/2) + 1;
 *   - a common factor g of k and the remaining non-constant coefficients cancels, the
 *     constant becoming floor(cst/g) (nested floor division, below);
 *   - floor((floor(q/j) + r)/k) = floor((q + j*r)/(j*k)) for integer polynomial r. */
Dim *dim_floordiv(DimCtx *c, const Dim *a, int64_t k) {
  if (k <= 0) {
    fprintf(stderr, "nnc: fatal: dim_floordiv by %lld\n", (long long)k);
    abort();
  }
  int64_t v;
  if (dim_is_const(a, &v)) return dim_const(c, floor_div64(v, k));
  if (k == 1) return (Dim *)a;

  Poly quot = {0}, rest = {0};
  int64_t cst = 0, g = k;
  for (int i = 0; i < a->nterms; i++) {
    const Term *t = &a->t[i];
    if (t->nf == 0) {
      cst = t->coef;
    } else if (t->coef % k == 0) {
      poly_push(&quot, t->coef / k, t->f, t->nf);
    } else {
      poly_push(&rest, t->coef, t->f, t->nf);
      g = gcd64(g, t->coef);
    }
  }
  if (rest.n == 0) { /* everything but the constant divides: exact up to floor(cst/k) */
    poly_free(&rest);
    poly_push(&quot, floor_div64(cst, k), NULL, 0);
    return poly_intern(c, &quot);
  }
  Dim *q = poly_intern(c, &quot);
  if (g > 1) { /* floor((g*x + cst)/(g*k')) = floor((x + floor(cst/g))/k') */
    Dim *x = dim_div_exact(c, poly_intern(c, &rest), dim_const(c, g));
    Dim *r = dim_add(c, x, dim_const(c, floor_div64(cst, g)));
    return dim_add(c, q, dim_floordiv(c, r, k / g));
  }
  poly_push(&rest, cst, NULL, 0);
  Dim *r = poly_intern(c, &rest);
  int idx;
  const DimAtom *inner = lone_floor_term(r, &idx);
  if (inner) {
    int64_t j = inner->den;
    Dim *others = dim_sub(c, r, dim_from_atom(c, inner));
    Dim *num = dim_add(c, inner->num, dim_scale(c, others, j));
    return dim_add(c, q, dim_floordiv(c, num, ck_mul(&c->overflow, j, k)));
  }
  return dim_add(c, q, dim_from_atom(c, floor_atom(c, r, k)));
}

/* ---- exact division -------------------------------------------------------------------- */

/* does monomial d divide monomial m? if so write m/d into out and return its length */
static int mono_div(const Factor *m, int nm, const Factor *d, int nd, Factor *out) {
  int i = 0, n = 0;
  for (int j = 0; j < nd; j++) {
    while (i < nm && atom_cmp(m[i].atom, d[j].atom) < 0) out[n++] = m[i++];
    if (i == nm || m[i].atom != d[j].atom || m[i].exp < d[j].exp) return -1;
    if (m[i].exp > d[j].exp) {
      out[n].atom = m[i].atom;
      out[n++].exp = m[i].exp - d[j].exp;
    }
    i++;
  }
  while (i < nm) out[n++] = m[i++];
  return n;
}

/* Multivariate division by b: repeatedly cancel the leading term of the remainder with the
 * leading term of b. For a single divisor and a monomial order this reaches remainder zero
 * exactly when b divides a, and integrality shows up as the leading coefficients dividing. */
Dim *dim_div_exact(DimCtx *c, const Dim *a, const Dim *b) {
  if (b->nterms == 0) return NULL;
  if (a->nterms == 0) return (Dim *)a;
  if (a == b) return dim_const(c, 1);
  const Term *lb = &b->t[0];
  Dim *rem = (Dim *)a;
  Poly q = {0};
  /* each step strictly lowers the leading monomial of the remainder; the cap only guards
   * against pathological inputs */
  for (int steps = 0; rem->nterms > 0; steps++) {
    const Term *lr = &rem->t[0];
    Factor *buf = xmalloc((size_t)(lr->nf + 1) * sizeof *buf);
    bool ok = steps < 100000 && !(lr->coef == INT64_MIN && lb->coef == -1) && lr->coef % lb->coef == 0;
    int n = ok ? mono_div(lr->f, lr->nf, lb->f, lb->nf, buf) : -1;
    if (n < 0) {
      free(buf);
      poly_free(&q);
      return NULL;
    }
    int64_t qc = lr->coef / lb->coef;
    Poly step = {0};
    poly_push(&step, qc, buf, n);
    poly_push(&q, qc, buf, n);
    free(buf);
    rem = dim_sub(c, rem, dim_mul(c, poly_intern(c, &step), b));
  }
  return poly_intern(c, &q);
}

/* ---- queries --------------------------------------------------------------------------- */

bool dim_is_const(const Dim *a, int64_t *value) {
  if (a->nterms == 0) {
    if (value) *value = 0;
    return true;
  }
  if (a->nterms == 1 && a->t[0].nf == 0) {
    if (value) *value = a->t[0].coef;
    return true;
  }
  return false;
}

bool dim_eq(const Dim *a, const Dim *b) { return a == b; }

bool dim_ctx_overflowed(const DimCtx *c) { return c->overflow; }

static int64_t sym_val(const DimCtx *c, int s, const int64_t *vals) {
  return vals ? vals[s] : c->syms[s].value;
}

/* wrapping arithmetic: int64 overflow during evaluation must not be undefined behaviour */
static int64_t wmul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

static int64_t atom_eval(const DimCtx *c, const DimAtom *at, const int64_t *vals) {
  if (at->sym >= 0) return sym_val(c, at->sym, vals);
  return floor_div64(dim_eval(c, at->num, vals), at->den);
}

int64_t dim_eval(const DimCtx *c, const Dim *a, const int64_t *vals) {
  int64_t sum = 0;
  for (int i = 0; i < a->nterms; i++) {
    int64_t t = a->t[i].coef;
    for (int j = 0; j < a->t[i].nf; j++) {
      int64_t x = atom_eval(c, a->t[i].f[j].atom, vals);
      for (int e = 0; e < a->t[i].f[j].exp; e++) t = wmul(t, x);
    }
    sum = wadd(sum, t);
  }
  return sum;
}

static bool atom_eval_checked(const DimCtx *c, const DimAtom *at, const int64_t *vals,
                              int64_t *out) {
  if (at->sym >= 0) {
    *out = sym_val(c, at->sym, vals);
    return true;
  }
  int64_t num;
  if (!dim_eval_checked(c, at->num, vals, &num)) return false;
  *out = floor_div64(num, at->den);
  return true;
}

bool dim_eval_checked(const DimCtx *c, const Dim *a, const int64_t *vals, int64_t *out) {
  int64_t sum = 0;
  for (int i = 0; i < a->nterms; i++) {
    int64_t t = a->t[i].coef, x;
    for (int j = 0; j < a->t[i].nf; j++) {
      if (!atom_eval_checked(c, a->t[i].f[j].atom, vals, &x)) return false;
      for (int e = 0; e < a->t[i].f[j].exp; e++)
        if (__builtin_mul_overflow(t, x, &t)) return false;
    }
    if (__builtin_add_overflow(sum, t, &sum)) return false;
  }
  *out = sum;
  return true;
}

static double atom_evalf(const DimCtx *c, const DimAtom *at, const int64_t *vals) {
  if (at->sym >= 0) return (double)sym_val(c, at->sym, vals);
  return floor(dim_evalf(c, at->num, vals) / (double)at->den);
}

double dim_evalf(const DimCtx *c, const Dim *a, const int64_t *vals) {
  double sum = 0;
  for (int i = 0; i < a->nterms; i++) {
    double t = (double)a->t[i].coef;
    for (int j = 0; j < a->t[i].nf; j++)
      t *= pow(atom_evalf(c, a->t[i].f[j].atom, vals), a->t[i].f[j].exp);
    sum += t;
  }
  return sum;
}

/* ---- printing -------------------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t n;
  size_t len; /* chars that would have been written */
} Out;

static void out_str(Out *o, const char *s) {
  for (; *s; s++, o->len++)
    if (o->len + 1 < o->n) o->buf[o->len] = *s;
}

static void out_u64(Out *o, uint64_t v) {
  char tmp[24];
  snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  out_str(o, tmp);
}

static void print_dim(const DimCtx *c, const Dim *a, Out *o, int style);

static void print_atom(const DimCtx *c, const DimAtom *at, Out *o, int style) {
  if (at->sym >= 0) {
    out_str(o, c->syms[at->sym].name);
    return;
  }
  bool paren = at->num->nterms > 1;
  out_str(o, paren ? "floor((" : "floor(");
  print_dim(c, at->num, o, style);
  out_str(o, paren ? ")/" : "/");
  out_u64(o, (uint64_t)at->den);
  out_str(o, ")");
}

static void print_term(const DimCtx *c, const Term *t, bool first, Out *o, int style) {
  const char *times = style == DIM_PRETTY ? "\xC2\xB7" : "*";
  bool neg = t->coef < 0;
  uint64_t mag = neg ? -(uint64_t)t->coef : (uint64_t)t->coef;
  if (!first) out_str(o, neg ? " - " : " + ");
  else if (neg) out_str(o, "-");
  if (t->nf == 0 || mag != 1) {
    out_u64(o, mag);
    if (t->nf) out_str(o, times);
  }
  for (int j = 0; j < t->nf; j++) {
    if (j) out_str(o, times);
    print_atom(c, t->f[j].atom, o, style);
    if (t->f[j].exp > 1) {
      char tmp[16];
      snprintf(tmp, sizeof tmp, "^%d", t->f[j].exp);
      out_str(o, tmp);
    }
  }
}

static void print_dim(const DimCtx *c, const Dim *a, Out *o, int style) {
  if (a->nterms == 0) {
    out_str(o, "0");
    return;
  }
  for (int i = 0; i < a->nterms; i++) print_term(c, &a->t[i], i == 0, o, style);
}

int dim_print(const DimCtx *c, const Dim *a, char *buf, size_t n, int style) {
  Out o = {buf, n, 0};
  print_dim(c, a, &o, style);
  if (n) buf[o.len < n ? o.len : n - 1] = '\0';
  return (int)o.len;
}

const char *dim_str(const DimCtx *cc, const Dim *a) {
  DimCtx *c = (DimCtx *)cc; /* the ring of buffers is scratch, not observable state */
  int s = c->str_next;
  c->str_next = (s + 1) % DIM_STR_SLOTS;
  size_t need = (size_t)dim_print(c, a, NULL, 0, DIM_PLAIN) + 1;
  if (c->str_cap[s] < need) {
    c->str_buf[s] = xrealloc(c->str_buf[s], need);
    c->str_cap[s] = need;
  }
  dim_print(c, a, c->str_buf[s], need, DIM_PLAIN);
  return c->str_buf[s];
}
