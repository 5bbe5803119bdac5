/* remat.c — memory-aware schedule and rematerialization of a training step (remat.h,
 * docs/memory.md).
 *
 * Pipeline: schedule (eager side-effect chains, lazy leaves) -> cut the forward into
 * segments at articulation points -> chain model from the scheduled step's liveness and
 * per-node FLOPs -> keep-set (none / sqrt / optimal DP) -> rewrite (clones before their
 * backward readers) -> memory plan of the result, checked against the budget. The model is
 * an upper bound of the live bytes but not of the arena (best-fit can fragment), so when the
 * real plan overshoots, the DP runs again with the budget lowered by the overshoot.
 */
#include "remat.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cost.h"

#define RECOMPUTE_SUFFIX "@recompute"

const char *remat_mode_name(RematMode m) {
  return m == REMAT_SQRT ? "sqrt" : m == REMAT_OPTIMAL ? "optimal" : "none";
}

int remat_mode_parse(const char *s) {
  if (!strcmp(s, "none")) return REMAT_NONE;
  if (!strcmp(s, "sqrt")) return REMAT_SQRT;
  if (!strcmp(s, "optimal")) return REMAT_OPTIMAL;
  return -1;
}

bool remat_is_recompute(const IrNode *n) {
  if (!n->scope) return false;
  size_t a = strlen(n->scope), b = strlen(RECOMPUTE_SUFFIX);
  return a >= b && !strcmp(n->scope + a - b, RECOMPUTE_SUFFIX);
}

static bool is_leaf(const IrNode *n) { return ir_ops[n->op].flags & OPF_LEAF; }

/* ---- the chain model: evaluation, DP, sqrt ------------------------------------------- */

void remat_chain_eval(const RematChain *m, const bool *keep, double *peak, double *cost) {
  double ck = 0, pk = 0, c = 0;
  int i = 1;
  for (int j = 1; j <= m->k; j++) {
    if (j < m->k && !keep[j]) continue;
    double p = ck + REMAT_AT(m, m->P, i, j);
    if (p > pk) pk = p;
    if (j < m->k) {
      c += REMAT_AT(m, m->RC, i, j);
      ck += m->b[j];
    }
    i = j + 1;
  }
  *peak = pk;
  *cost = c;
}

/* A state of the forward DP: the groups so far end at boundary j (kept), holding ck bytes
 * of kept boundaries, having spent cost. Fronts keep only Pareto-optimal states. */
typedef struct St {
  double ck, cost;
  int prev_j, prev_s; /* back-pointer */
} St;

typedef struct Front {
  St *s;
  int n, cap;
} Front;

static void front_add(Front *f, St x) {
  for (int i = 0; i < f->n; i++)
    if (f->s[i].ck <= x.ck && f->s[i].cost <= x.cost) return; /* dominated */
  int w = 0;
  for (int i = 0; i < f->n; i++)
    if (!(x.ck <= f->s[i].ck && x.cost <= f->s[i].cost)) f->s[w++] = f->s[i];
  f->n = w;
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 8;
    f->s = xrealloc(f->s, (size_t)f->cap * sizeof(St));
  }
  f->s[f->n++] = x;
}

/* Front[j] for j = 0..k-1: j = 0 is the start (nothing kept). From a state at j, the next
 * group is [j+1..j2]; it is feasible when ck + P(j+1, j2) <= budget. j2 = k closes the plan
 * (the last group is not recomputed). */
double remat_chain_optimal(const RematChain *m, double budget, bool *keep) {
  int k = m->k;
  if (k <= 0) return 0;
  Front *F = xcalloc((size_t)k, sizeof(Front));
  front_add(&F[0], (St){0, 0, -1, -1});
  double best = -1;
  int best_j = -1, best_s = -1;
  for (int j = 0; j < k; j++)
    for (int s = 0; s < F[j].n; s++) {
      St st = F[j].s[s];
      for (int j2 = j + 1; j2 <= k; j2++) {
        if (st.ck + REMAT_AT(m, m->P, j + 1, j2) > budget) continue;
        if (j2 == k) {
          if (best < 0 || st.cost < best) best = st.cost, best_j = j, best_s = s;
        } else {
          front_add(&F[j2], (St){st.ck + m->b[j2], st.cost + REMAT_AT(m, m->RC, j + 1, j2), j, s});
        }
      }
    }
  if (best >= 0 && keep) {
    for (int t = 0; t <= k; t++) keep[t] = false;
    int j = best_j, s = best_s;
    while (j > 0) {
      keep[j] = true;
      St st = F[j].s[s];
      j = st.prev_j, s = st.prev_s;
    }
  }
  for (int j = 0; j < k; j++) free(F[j].s);
  free(F);
  return best;
}

/* every plan's peak is one of the sums ck + P(i, j); bisection on the feasibility DP finds
 * the least budget any keep-set meets */
double remat_chain_min_peak(const RematChain *m, bool *keep) {
  bool *none = xcalloc((size_t)m->k + 1, 1);
  double hi, cost;
  remat_chain_eval(m, none, &hi, &cost);
  free(none);
  double lo = 0;
  for (int it = 0; it < 200 && hi - lo > 0.5; it++) {
    double mid = (lo + hi) / 2;
    if (remat_chain_optimal(m, mid, NULL) >= 0) hi = mid;
    else lo = mid;
  }
  remat_chain_optimal(m, hi, keep);
  return hi;
}

void remat_chain_sqrt(const RematChain *m, const double *w, bool *keep) {
  int k = m->k;
  for (int t = 0; t <= k; t++) keep[t] = false;
  if (k <= 1) return;
  int ng = (int)ceil(sqrt((double)k));
  double tot = 0;
  for (int s = 1; s <= k; s++) tot += w[s] > 0 ? w[s] : 0;
  if (tot <= 0) { /* by count */
    for (int g = 1; g < ng; g++) {
      int t = (int)((double)g * k / ng);
      if (t >= 1 && t < k) keep[t] = true;
    }
    return;
  }
  double acc = 0;
  int g = 1;
  for (int t = 1; t < k && g < ng; t++) {
    acc += w[t] > 0 ? w[t] : 0;
    if (acc >= tot * g / ng) {
      keep[t] = true;
      while (g < ng && acc >= tot * g / ng) g++;
    }
  }
}

/* ---- rebuilding a graph in a new order ----------------------------------------------- */

typedef struct Item {
  int node;
  bool clone;
} Item;

static const char *suffixed(Arena *a, const char *s) {
  return s ? arena_printf(a, "%s%s", s, RECOMPUTE_SUFFIX) : RECOMPUTE_SUFFIX;
}

/* map[] (old -> new original), cmap[] (old -> new clone or -1). Backward and optimizer
 * nodes read clones where they exist, forward nodes and clones read originals unless the
 * operand has a clone and the reader is itself a clone. */
static IrGraph *materialize(const IrGraph *g, const Item *it, int nit, int *map, int *cmap) {
  IrGraph *ng = ir_graph_clone(g->arena, g);
  ng->nnodes = 0;
  ng->noutputs = 0;
  for (int i = 0; i < g->nnodes; i++) map[i] = cmap[i] = -1;
  int *in = xmalloc(sizeof(int) * 64);
  int cap = 64;
  for (int q = 0; q < nit; q++) {
    const IrNode *n = &g->nodes[it[q].node];
    if (n->nin > cap) cap = n->nin, in = xrealloc(in, sizeof(int) * (size_t)cap);
    for (int j = 0; j < n->nin; j++) {
      int w = n->in[j];
      bool want_clone = it[q].clone || n->phase != PH_FWD;
      in[j] = want_clone && cmap[w] >= 0 ? cmap[w] : map[w];
    }
    int v = ir_add(ng, n->op, in, n->nin, &n->attr, n->type, n->loc);
    IrNode *d = &ng->nodes[v];
    d->name = n->name;
    d->scope = n->scope;
    d->phase = n->phase;
    if (it[q].clone) {
      d->name = n->name ? suffixed(g->arena, n->name) : NULL;
      d->scope = suffixed(g->arena, n->scope);
      d->phase = PH_BWD;
      cmap[it[q].node] = v;
    } else {
      map[it[q].node] = v;
    }
  }
  free(in);
  for (int o = 0; o < g->noutputs; o++) ir_add_output(ng, g->outputs[o].name, map[g->outputs[o].node]);
  return ng;
}

static int *remap_arr(Arena *a, const int *src, int n, const int *map) {
  int *d = arena_alloc(a, (size_t)(n ? n : 1) * sizeof(int));
  for (int i = 0; i < n; i++) d[i] = src[i] >= 0 ? map[src[i]] : -1;
  return d;
}

static void remap_info(const IrGraph *ng, const TrainInfo *src, const int *map, TrainInfo *dst) {
  Arena *a = ng->arena;
  *dst = *src;
  dst->loss = src->loss >= 0 ? map[src->loss] : -1;
  dst->params = remap_arr(a, src->params, src->nparams, map);
  dst->grads = remap_arr(a, src->grads, src->nparams, map);
  dst->state = remap_arr(a, src->state, src->nstate, map);
  dst->assigns = remap_arr(a, src->assigns, src->nassign, map);
  dst->first_bwd = ng->nnodes;
  for (int i = 0; i < ng->nnodes; i++)
    if (ng->nodes[i].phase == PH_BWD) {
      dst->first_bwd = i;
      break;
    }
}

/* ---- the schedule -------------------------------------------------------------------- */

/* CSR of consumers (one entry per operand occurrence) */
typedef struct Users {
  int *off, *idx;
} Users;

static void users_build(const IrGraph *g, Users *u) {
  int n = g->nnodes;
  u->off = xcalloc((size_t)n + 1, sizeof(int));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) u->off[g->nodes[i].in[j] + 1]++;
  for (int i = 0; i < n; i++) u->off[i + 1] += u->off[i];
  u->idx = xmalloc((size_t)(u->off[n] ? u->off[n] : 1) * sizeof(int));
  int *fill = xcalloc((size_t)n + 1, sizeof(int));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) {
      int w = g->nodes[i].in[j];
      u->idx[u->off[w] + fill[w]++] = i;
    }
  free(fill);
}

static void users_free(Users *u) {
  free(u->off);
  free(u->idx);
}

/* the PARAM a value reads through views, or -1 */
static int param_of(const IrGraph *g, int w) {
  while (memplan_is_view(&g->nodes[w])) w = g->nodes[w].in[0];
  return g->nodes[w].op == OP_PARAM ? w : -1;
}

typedef struct Sched {
  const IrGraph *g;
  Users u;
  bool *eager, *lazy, *done;
  int *deps, *queue, qh, qt;
  int *assign_of; /* PARAM -> first ASSIGN writing it (chain through next_assign) */
  int *next_assign;
  Item *out;
  int nout;
} Sched;

static void sched_emit(Sched *s, int x);

static void sched_notify(Sched *s, int x) {
  const IrGraph *g = s->g;
  for (int q = s->u.off[x]; q < s->u.off[x + 1] && !s->lazy[x]; q++) { /* lazy: not counted */
    int c = s->u.idx[q];
    if (s->eager[c] && !s->lazy[c] && !s->done[c] && --s->deps[c] == 0) s->queue[s->qt++] = c;
  }
  if (g->nodes[x].op == OP_ASSIGN) return;
  for (int j = 0; j < g->nodes[x].nin; j++) {
    int p = param_of(g, g->nodes[x].in[j]);
    if (p < 0) continue;
    for (int a = s->assign_of[p]; a >= 0; a = s->next_assign[a])
      if (!s->done[a] && --s->deps[a] == 0) s->queue[s->qt++] = a;
  }
}

static void sched_emit(Sched *s, int x) {
  const IrNode *n = &s->g->nodes[x];
  for (int j = 0; j < n->nin; j++) {
    int w = n->in[j];
    if (!s->done[w] && is_leaf(&s->g->nodes[w])) {
      s->done[w] = true;
      s->out[s->nout++] = (Item){w, false};
    } else if (!s->done[w] && s->lazy[w]) {
      sched_emit(s, w);
    }
  }
  s->done[x] = true;
  s->out[s->nout++] = (Item){x, false};
  sched_notify(s, x);
}

static void sched_drain(Sched *s) {
  while (s->qh < s->qt) {
    int e = s->queue[s->qh++];
    if (!s->done[e]) sched_emit(s, e);
  }
}

/* The order: nodes in index order, except that nodes feeding only ASSIGNs (optimizer
 * updates, running statistics) run as soon as the non-leaf values they read exist (an
 * ASSIGN also waits for every other reader of its PARAM, so it can write in place);
 * parameters and inputs come first, and the other leaves (constants), and nodes computed
 * from leaves alone (weight decay terms, decayed moments), appear just before their first
 * reader. Returns the item list (caller frees). */
static Item *schedule(const IrGraph *g, int *nitems) {
  int n = g->nnodes;
  Sched s = {.g = g};
  users_build(g, &s.u);
  s.eager = xcalloc((size_t)n + 1, 1);
  s.lazy = xcalloc((size_t)n + 1, 1);
  s.done = xcalloc((size_t)n + 1, 1);
  s.deps = xcalloc((size_t)n + 1, sizeof(int));
  s.queue = xmalloc(((size_t)n * 4 + 1) * sizeof(int));
  s.assign_of = xmalloc(((size_t)n + 1) * sizeof(int));
  s.next_assign = xmalloc(((size_t)n + 1) * sizeof(int));
  s.out = xmalloc(((size_t)n + 1) * sizeof(Item));
  bool *is_out = xcalloc((size_t)n + 1, 1);
  for (int o = 0; o < g->noutputs; o++) is_out[g->outputs[o].node] = true;
  for (int i = 0; i < n; i++) s.assign_of[i] = s.next_assign[i] = -1;
  for (int i = n - 1; i >= 0; i--) {
    const IrNode *nd = &g->nodes[i];
    if (is_leaf(nd)) continue;
    if (nd->op == OP_ASSIGN) {
      s.eager[i] = true;
      continue;
    }
    if (is_out[i] || s.u.off[i + 1] == s.u.off[i]) continue;
    bool all = true;
    for (int q = s.u.off[i]; q < s.u.off[i + 1]; q++) all &= s.eager[s.u.idx[q]];
    s.eager[i] = all;
  }
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &g->nodes[i];
    if (!s.eager[i] || nd->op == OP_ASSIGN) continue;
    bool all = true;
    for (int j = 0; j < nd->nin; j++) all &= is_leaf(&g->nodes[nd->in[j]]) || s.lazy[nd->in[j]];
    s.lazy[i] = all;
  }
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &g->nodes[i];
    if (!s.eager[i] || s.lazy[i]) continue;
    for (int j = 0; j < nd->nin; j++) {
      int w = nd->in[j];
      s.deps[i] += !is_leaf(&g->nodes[w]) && !s.lazy[w];
    }
    if (nd->op == OP_ASSIGN) {
      int p = nd->in[0];
      s.next_assign[i] = s.assign_of[p];
      s.assign_of[p] = i;
    }
  }
  /* an ASSIGN waits for the other readers of its PARAM */
  for (int x = 0; x < n; x++) {
    if (g->nodes[x].op == OP_ASSIGN) continue;
    for (int j = 0; j < g->nodes[x].nin; j++) {
      int p = param_of(g, g->nodes[x].in[j]);
      if (p >= 0)
        for (int a = s.assign_of[p]; a >= 0; a = s.next_assign[a]) s.deps[a]++;
    }
  }
  /* parameters and inputs first: they live outside the arena, so their place costs no
   * memory, and a reader that comes after its operands lets the backend fuse it (a bias
   * joins its matmul's epilogue only when the bias precedes the matmul) */
  for (int i = 0; i < n; i++)
    if (g->nodes[i].op == OP_PARAM || g->nodes[i].op == OP_INPUT)
      s.done[i] = true, s.out[s.nout++] = (Item){i, false};
  for (int i = 0; i < n; i++)
    if (s.eager[i] && !s.lazy[i] && s.deps[i] == 0) s.queue[s.qt++] = i;
  sched_drain(&s);
  for (int i = 0; i < n; i++) {
    if (s.done[i] || s.eager[i] || is_leaf(&g->nodes[i])) continue;
    sched_emit(&s, i);
    sched_drain(&s);
  }
  for (int i = 0; i < n; i++) /* whatever is left: unread leaves, blocked chains */
    if (!s.done[i] && !is_leaf(&g->nodes[i])) sched_emit(&s, i);
  for (int i = 0; i < n; i++)
    if (!s.done[i]) s.done[i] = true, s.out[s.nout++] = (Item){i, false};
  users_free(&s.u);
  free(s.eager);
  free(s.lazy);
  free(s.done);
  free(s.deps);
  free(s.queue);
  free(s.assign_of);
  free(s.next_assign);
  free(is_out);
  *nitems = s.nout;
  return s.out;
}

/* ---- segments and the model of a scheduled step -------------------------------------- */

typedef struct Ctx {
  IrGraph *S;
  TrainInfo info;
  int n, fend;
  MemPlan lv;      /* liveness without in-place merging */
  int k;
  int *seg_of;     /* [n] 1..k for forward nodes, 0 otherwise */
  int *seg_lo;     /* [k + 2] first node position of segment s */
  int *bnd;        /* [k + 1] boundary root of segment s, -1 */
  bool *bwd_read;  /* [n] read by a backward or optimizer node */
  double *flops;   /* [n] */
  double *resid;   /* [k + 1] bytes of segment s read by the backward (sqrt's weights) */
  RematChain m;
  int *mark, stamp, *stack;
} Ctx;

static bool fwd_value(const Ctx *c, int v) {
  const IrNode *n = &c->S->nodes[v];
  return n->phase == PH_FWD && !is_leaf(n) && n->op != OP_ASSIGN;
}

/* dropped when group [i..j] is recomputed: a forward value whose storage root is an arena
 * value of the group other than its kept boundary */
static bool dropped_in(const Ctx *c, int v, int i, int j) {
  if (!fwd_value(c, v)) return false;
  int r = c->lv.root[v];
  if (c->lv.where[r] != MP_ARENA || !fwd_value(c, r)) return false;
  int s = c->seg_of[r];
  return s >= i && s <= j && r != c->bnd[j];
}

/* clones needed for group [i..j]: the dropped values the backward reads and, recursively,
 * their dropped operands. Marks them with a new stamp; returns their FLOPs. */
static double group_clones(Ctx *c, int i, int j, int *count) {
  c->stamp++;
  int sp = 0, cnt = 0;
  double fl = 0;
  int lo = c->seg_lo[i], hi = c->seg_lo[j + 1];
  for (int v = lo; v < hi; v++)
    if (c->bwd_read[v] && dropped_in(c, v, i, j) && c->mark[v] != c->stamp) {
      c->mark[v] = c->stamp;
      c->stack[sp++] = v;
    }
  while (sp) {
    int v = c->stack[--sp];
    cnt++;
    fl += c->flops[v];
    const IrNode *n = &c->S->nodes[v];
    for (int q = 0; q < n->nin; q++) {
      int w = n->in[q];
      if (c->mark[w] != c->stamp && dropped_in(c, w, i, j)) {
        c->mark[w] = c->stamp;
        c->stack[sp++] = w;
      }
    }
  }
  if (count) *count = cnt;
  return fl;
}

static int64_t a64(int64_t x) { return (x + MP_ALIGN - 1) / MP_ALIGN * MP_ALIGN; }

/* liveness without in-place merging, the end of the forward phase, FLOPs per node and what
 * the backward reads */
static int ctx_values(Ctx *c, IrGraph *S, const TrainInfo *info, char *err, size_t errn) {
  memset(c, 0, sizeof *c);
  c->S = S;
  c->info = *info;
  int n = c->n = S->nnodes;
  if (memplan_build(S, &(MpOptions){.no_inplace = true}, &c->lv, NULL, err, errn)) return -1;
  c->fend = n;
  for (int i = 0; i < n; i++)
    if (S->nodes[i].phase == PH_BWD) {
      c->fend = i;
      break;
    }
  size_t N = (size_t)n + 2;
  c->seg_of = xcalloc(N, sizeof(int));
  c->bwd_read = xcalloc(N, 1);
  c->flops = xcalloc(N, sizeof(double));
  c->mark = xcalloc(N, sizeof(int));
  c->stack = xmalloc(N * sizeof(int));
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &S->nodes[i];
    CostNode cn;
    cost_node(S, i, &cn);
    c->flops[i] = dim_evalf(S->dims, cn.flops, NULL);
    if (nd->phase != PH_FWD)
      for (int j = 0; j < nd->nin; j++) c->bwd_read[nd->in[j]] = true;
  }
  return 0;
}

/* the segments: cut at articulation points, positions p where the forward values made before
 * p and read by a forward node at or after p share one storage root */
static void ctx_segments(Ctx *c) {
  const IrGraph *S = c->S;
  int n = c->n;
  size_t N = (size_t)n + 2;
  int *lastf = xmalloc(N * sizeof(int));
  for (int i = 0; i < n; i++) lastf[i] = -1;
  for (int i = 0; i < c->fend; i++) {
    const IrNode *nd = &S->nodes[i];
    if (nd->phase != PH_FWD) continue;
    for (int j = 0; j < nd->nin; j++) {
      int r = c->lv.root[nd->in[j]];
      if (fwd_value(c, r) && lastf[r] < i) lastf[r] = i;
    }
  }
  int *cuts = xmalloc(N * sizeof(int)), *bnds = xmalloc(N * sizeof(int)), ncut = 0;
  long long cnt = 0, sum = 0;
  int *nend_list = xmalloc(N * sizeof(int));
  int *end_head = xmalloc(N * sizeof(int));
  for (int i = 0; i < n + 1; i++) end_head[i] = -1;
  for (int r = 0; r < c->fend; r++)
    if (lastf[r] >= 0 && c->lv.root[r] == r) {
      nend_list[r] = end_head[lastf[r] + 1];
      end_head[lastf[r] + 1] = r;
    }
  int seg_start = 0, nfwd_in_seg = 0;
  for (int p = 1; p <= c->fend; p++) {
    int v = p - 1;
    if (lastf[v] >= 0 && c->lv.root[v] == v) cnt++, sum += v;
    for (int r = end_head[p]; r >= 0; r = nend_list[r]) cnt--, sum -= r;
    if (fwd_value(c, v)) nfwd_in_seg++;
    if (p == c->fend) break;
    if (nfwd_in_seg > 0 && (cnt == 0 || (cnt == 1 && sum >= seg_start))) {
      cuts[ncut] = p;
      bnds[ncut++] = cnt == 1 ? (int)sum : -1;
      seg_start = p;
      nfwd_in_seg = 0;
    }
  }
  /* segments: [0, cuts[0]), [cuts[0], cuts[1]), ..., [cuts[ncut-1], fend) */
  int k = c->k = ncut + 1;
  c->seg_lo = xmalloc(((size_t)k + 2) * sizeof(int));
  c->bnd = xmalloc(((size_t)k + 2) * sizeof(int));
  c->seg_lo[1] = 0;
  for (int s = 1; s < k; s++) c->seg_lo[s + 1] = cuts[s - 1], c->bnd[s] = bnds[s - 1];
  c->seg_lo[k + 1] = c->fend;
  c->bnd[k] = -1;
  c->bnd[0] = -1;
  for (int s = 1; s <= k; s++)
    for (int v = c->seg_lo[s]; v < c->seg_lo[s + 1]; v++)
      if (S->nodes[v].phase == PH_FWD) c->seg_of[v] = s;
  free(lastf);
  free(cuts);
  free(bnds);
  free(nend_list);
  free(end_head);
}

/* the chain model's boundary sizes b[t] and the residue each segment keeps for the backward */
static void ctx_bounds(Ctx *c) {
  int k = c->k;
  RematChain *m = &c->m;
  m->k = k;
  size_t K2 = (size_t)(k + 1) * (size_t)(k + 1);
  m->b = xcalloc((size_t)k + 1, sizeof(double));
  m->P = xcalloc(K2, sizeof(double));
  m->RC = xcalloc(K2, sizeof(double));
  c->resid = xcalloc((size_t)k + 1, sizeof(double));
  for (int t = 1; t < k; t++) {
    int r = c->bnd[t];
    m->b[t] = r >= 0 && c->lv.where[r] == MP_ARENA ? (double)a64(c->lv.bytes[r]) : 0;
  }
  for (int v = 0; v < c->fend; v++)
    if (fwd_value(c, v) && c->lv.root[v] == v && c->lv.where[v] == MP_ARENA && c->bwd_read[v])
      c->resid[c->seg_of[v]] += (double)a64(c->lv.bytes[v]);
}

/* the segment whose group's backward runs at node u (sigma so far) */
static int ctx_sigma(const Ctx *c, int u, int sigma) {
  const IrNode *nd = &c->S->nodes[u];
  if (nd->phase == PH_FWD) return c->seg_of[u] > 0 ? c->seg_of[u] : sigma;
  /* a read of a boundary does not make its segment's group recompute (kept, or in one group
   * with the next segment), so it counts for the segment after */
  int best = 0;
  for (int j = 0; j < nd->nin; j++) {
    int r = c->lv.root[nd->in[j]];
    if (!fwd_value(c, r) || c->seg_of[r] == 0) continue;
    int sg = c->seg_of[r];
    if (r == c->bnd[sg] && sg < c->k) sg++;
    if (sg > best) best = sg;
  }
  return best > 0 ? best : sigma;
}

/* P(i, j): sweep the steps with the bytes alive per segment (forward values) and other.
 * Values are taken one by one from the in-place plan of the step: a value whose storage an
 * elementwise result takes over ends the step before, so each byte counts once. */
static int ctx_peaks(Ctx *c, char *err, size_t errn) {
  IrGraph *S = c->S;
  int n = c->n, k = c->k;
  size_t N = (size_t)n + 2, K2 = (size_t)(k + 1) * (size_t)(k + 1);
  RematChain *m = &c->m;
  MemPlan ip;
  if (memplan_build(S, NULL, &ip, NULL, err, errn)) return -1;
  double *live_seg = xcalloc((size_t)k + 2, sizeof(double));
  double *suffix = xcalloc((size_t)k + 2, sizeof(double));
  double *Psig = xcalloc(K2, sizeof(double)); /* [i][s] */
  double other = 0;
  int *endv = xmalloc(N * sizeof(int));
  for (int i = 0; i < n; i++) endv[i] = ip.where[i] == MP_ARENA ? (ip.last[i] < n ? ip.last[i] : n - 1) : -1;
  for (int i = 0; i < n; i++)
    if (ip.inplace_src[i] >= 0) endv[ip.inplace_src[i]] = i - 1;
  int *die_at = xmalloc(N * sizeof(int)), *nxtd = xmalloc(N * sizeof(int));
  for (int i = 0; i <= n; i++) die_at[i] = -1;
  for (int v = 0; v < n; v++)
    if (endv[v] >= v) nxtd[v] = die_at[endv[v]], die_at[endv[v]] = v;
  int sigma = 1;
  for (int u = 0; u < n; u++) {
    if (endv[u] >= u) {
      double sz = (double)a64(ip.bytes[u]);
      if (fwd_value(c, u) && c->seg_of[u] > 0) live_seg[c->seg_of[u]] += sz;
      else other += sz;
    }
    sigma = ctx_sigma(c, u, sigma);
    suffix[k + 1] = 0;
    for (int s = k; s >= 1; s--) suffix[s] = suffix[s + 1] + live_seg[s];
    for (int i = 1; i <= sigma; i++) {
      double val = other + suffix[i];
      if (val > REMAT_AT(m, Psig, i, sigma)) REMAT_AT(m, Psig, i, sigma) = val;
    }
    for (int v = die_at[u]; v >= 0; v = nxtd[v]) {
      double sz = (double)a64(ip.bytes[v]);
      if (fwd_value(c, v) && c->seg_of[v] > 0) live_seg[c->seg_of[v]] -= sz;
      else other -= sz;
    }
  }
  for (int i = 1; i <= k; i++) {
    double run = 0;
    for (int j = i; j <= k; j++) {
      if (REMAT_AT(m, Psig, i, j) > run) run = REMAT_AT(m, Psig, i, j);
      REMAT_AT(m, m->P, i, j) = run;
    }
  }
  free(live_seg);
  free(suffix);
  free(Psig);
  free(endv);
  free(die_at);
  free(nxtd);
  return 0;
}

static int ctx_build(Ctx *c, IrGraph *S, const TrainInfo *info, char *err, size_t errn) {
  if (ctx_values(c, S, info, err, errn)) return -1;
  ctx_segments(c);
  ctx_bounds(c);
  if (ctx_peaks(c, err, errn)) return -1;
  for (int i = 1; i <= c->k; i++)
    for (int j = i; j < c->k; j++) REMAT_AT(&c->m, c->m.RC, i, j) = group_clones(c, i, j, NULL);
  return 0;
}

static void ctx_free(Ctx *c) {
  free(c->seg_of);
  free(c->seg_lo);
  free(c->bnd);
  free(c->bwd_read);
  free(c->flops);
  free(c->resid);
  free(c->mark);
  free(c->stack);
  free(c->m.b);
  free(c->m.P);
  free(c->m.RC);
}

/* ---- rewriting with a keep-set ------------------------------------------------------- */

typedef struct Rewrite {
  IrGraph *g;
  TrainInfo info;
  MemPlan mp;
  int nclones;
  double flops;
  RematGroup *groups;
  int ngroups;
} Rewrite;

static int rewrite(Ctx *c, const bool *keep, Rewrite *rw, char *err, size_t errn) {
  int n = c->n, k = c->k;
  memset(rw, 0, sizeof *rw);
  /* groups */
  int *grp_of_seg = xcalloc((size_t)k + 2, sizeof(int));
  RematGroup *G = arena_alloc(c->S->arena, (size_t)(k + 1) * sizeof(RematGroup));
  int ng = 0, i = 1;
  for (int j = 1; j <= k; j++) {
    if (j < k && !keep[j]) continue;
    G[ng] = (RematGroup){.first_seg = i, .last_seg = j, .boundary = j < k ? c->bnd[j] : -1,
                         .recomputed = j < k, .first_node = c->seg_lo[i],
                         .last_node = c->seg_lo[j + 1] - 1};
    for (int s = i; s <= j; s++) grp_of_seg[s] = ng;
    ng++;
    i = j + 1;
  }
  /* clone sets: group_clones marks with a fresh stamp; copy them out per group */
  int *clone_grp = xmalloc(((size_t)n + 1) * sizeof(int));
  for (int v = 0; v < n; v++) clone_grp[v] = -1;
  for (int q = 0; q < ng; q++) {
    if (!G[q].recomputed) continue;
    G[q].flops = group_clones(c, G[q].first_seg, G[q].last_seg, &G[q].nclones);
    for (int v = 0; v < n; v++)
      if (c->mark[v] == c->stamp) clone_grp[v] = q;
  }
  /* order: the scheduled step, each group's clones just before the first non-forward node
   * that reads one of them */
  Item *it = xmalloc(((size_t)2 * n + 1) * sizeof(Item));
  bool *emitted = xcalloc((size_t)ng + 1, 1);
  int nit = 0;
  for (int u = 0; u < n; u++) {
    const IrNode *nd = &c->S->nodes[u];
    if (nd->phase != PH_FWD)
      for (int j = 0; j < nd->nin; j++) {
        int q = clone_grp[nd->in[j]];
        if (q < 0 || emitted[q]) continue;
        emitted[q] = true;
        for (int v = 0; v < n; v++)
          if (clone_grp[v] == q) it[nit++] = (Item){v, true};
        rw->nclones += G[q].nclones;
        rw->flops += G[q].flops;
      }
    it[nit++] = (Item){u, false};
  }
  int *map = xmalloc(((size_t)n + 1) * sizeof(int)), *cmap = xmalloc(((size_t)n + 1) * sizeof(int));
  rw->g = materialize(c->S, it, nit, map, cmap);
  remap_info(rw->g, &c->info, map, &rw->info);
  for (int q = 0; q < ng; q++) {
    G[q].first_node = map[G[q].first_node];
    G[q].last_node = map[G[q].last_node];
    if (G[q].boundary >= 0) G[q].boundary = map[G[q].boundary];
  }
  rw->groups = G;
  rw->ngroups = ng;
  free(grp_of_seg);
  free(clone_grp);
  free(it);
  free(emitted);
  free(map);
  free(cmap);
  return memplan_build(rw->g, NULL, &rw->mp, NULL, err, errn);
}

/* ---- the pass ------------------------------------------------------------------------ */

static const char *mib(double b, char *buf, size_t n) {
  if (b >= 1024.0 * 1024 * 1024) snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024) snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024));
  else if (b >= 1024.0) snprintf(buf, n, "%.1f KiB", b / 1024.0);
  else snprintf(buf, n, "%.0f B", b);
  return buf;
}

/* the budget a user should ask for: the total rounded up to 2 significant digits of MiB */
static const char *suggest(double b, char *buf, size_t n) {
  double m = b / (1024.0 * 1024);
  if (m < 1) {
    snprintf(buf, n, "%.0fKiB", ceil(b / 1024.0));
    return buf;
  }
  double p = pow(10, floor(log10(m)) - 1);
  snprintf(buf, n, "%.0fMiB", ceil(m / p) * p);
  return buf;
}

static bool is_grad(const TrainInfo *info, const MemPlan *mp, int v) {
  for (int p = 0; p < info->nparams; p++)
    if (info->grads[p] >= 0 && mp->root[info->grads[p]] == v) return true;
  return false;
}

/* why no plan fits: the live set at the smallest plan's peak */
static void explain(const RematPlan *pl, const Rewrite *rw, int64_t budget, char *msg, size_t n) {
  const MemPlan *mp = &rw->mp;
  const IrGraph *g = rw->g;
  int step = mp->peak_step;
  double weights = 0, opt = 0, grads = 0, acts = 0, recomp = 0, other = 0, upd = 0, largest = 0;
  int largest_node = -1;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *nd = &g->nodes[i];
    if (mp->where[i] == MP_PARAMS) {
      bool st = false;
      for (int s = 0; s < rw->info.nstate; s++) st |= rw->info.state[s] == i;
      if (st) opt += (double)a64(mp->bytes[i]);
      else weights += (double)a64(mp->bytes[i]);
    }
    if (mp->where[i] != MP_ARENA || i > step || mp->last[i] < step) continue;
    double sz = (double)a64(mp->bytes[i]);
    if (mp->buf[i] >= 0 && mp->bufs[mp->buf[i]].def != i) continue; /* in-place: counted once */
    if (is_grad(&rw->info, mp, i)) grads += sz;
    else if (remat_is_recompute(nd)) recomp += sz;
    else if (nd->phase == PH_FWD) acts += sz;
    else if (nd->phase == PH_OPT) upd += sz;
    else other += sz;
    if (sz > largest) largest = sz, largest_node = i;
  }
  char b0[32], b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32], b9[32], b10[32],
      b11[32];
  const char *lname = "?";
  char lbuf[200];
  if (largest_node >= 0) {
    const IrNode *ln = &g->nodes[largest_node];
    if (ln->scope && ln->name && strcmp(ln->scope, ln->name))
      snprintf(lbuf, sizeof lbuf, "%s (%s)", ln->scope, ln->name);
    else if (ln->scope || ln->name) snprintf(lbuf, sizeof lbuf, "%s", ln->scope ? ln->scope : ln->name);
    else snprintf(lbuf, sizeof lbuf, "%%%d", largest_node);
    snprintf(lbuf + strlen(lbuf), sizeof lbuf - strlen(lbuf), ", %s", ir_op_name(ln->op));
    lname = lbuf;
  }
  snprintf(msg, n,
           "budget %s is below the minimum %s for this step: at the peak of the leanest plan "
           "(%d of the %d forward segment boundaries kept) the weights (%s), optimizer state "
           "(%s), inputs and outputs (%s), parameter gradients (%s), kept activations (%s), "
           "recomputed activations (%s), backward temporaries (%s) and optimizer-update "
           "temporaries (%s) are resident at once, the largest single tensor being '%s' (%s); "
           "use --memory %s or more",
           mib((double)budget, b0, sizeof b0), mib((double)pl->min_total, b1, sizeof b1),
           rw->ngroups - 1, pl->nsegs - 1, mib(weights, b2, sizeof b2), mib(opt, b3, sizeof b3),
           mib((double)mp->io_bytes, b4, sizeof b4), mib(grads, b5, sizeof b5),
           mib(acts, b6, sizeof b6), mib(recomp, b7, sizeof b7), mib(other, b8, sizeof b8),
           mib(upd, b11, sizeof b11), lname, mib(largest, b9, sizeof b9),
           suggest((double)pl->min_total, b10, sizeof b10));
}

static void fill_plan(RematPlan *pl, const Rewrite *rw) {
  pl->g = rw->g;
  pl->info = rw->info;
  pl->mp = rw->mp;
  pl->total = memplan_total(&rw->mp);
  pl->groups = rw->groups;
  pl->ngroups = rw->ngroups;
  pl->nclones = rw->nclones;
  pl->recompute_flops = rw->flops;
}

/* the cheapest keep-set whose real plan meets arena <= abudget. The model bounds the live
 * bytes but not the arena exactly, so its budget is calibrated against real plans: first
 * tightened by the overshoot until the DP's plan fits, then raised by bisection while the
 * plans still fit (a larger model budget can only lower the DP's cost); the cheapest plan
 * that really fits wins. */
static int optimal_fit(Ctx *c, double abudget, Rewrite *rw, int *rounds, char *err, size_t errn) {
  bool *keep = xcalloc((size_t)c->k + 1, 1);
  double b = abudget, fit_b = -1, best_cost = -1;
  int rc = -1, r;
  Rewrite cand;
  for (r = 0; r < 12; r++) {
    if (remat_chain_optimal(&c->m, b, keep) < 0) break;
    if (rewrite(c, keep, &cand, err, errn)) {
      free(keep);
      return -2;
    }
    double over = (double)cand.mp.arena_bytes - abudget;
    if (over <= 0) {
      *rw = cand, rc = 0, fit_b = b, best_cost = cand.flops;
      break;
    }
    b -= over > MP_ALIGN ? over : MP_ALIGN;
  }
  if (rc == 0 && best_cost > 0) {
    double lo = fit_b, hi = REMAT_AT(&c->m, c->m.P, 1, c->k) + 1;
    for (int it = 0; it < 10 && hi - lo > MP_ALIGN; it++) {
      double mid = (lo + hi) / 2;
      if (remat_chain_optimal(&c->m, mid, keep) < 0) {
        lo = mid;
        continue;
      }
      if (rewrite(c, keep, &cand, err, errn)) {
        free(keep);
        return -2;
      }
      if ((double)cand.mp.arena_bytes <= abudget) {
        lo = mid;
        if (cand.flops < best_cost) *rw = cand, best_cost = cand.flops;
      } else {
        hi = mid;
      }
    }
  }
  if (rounds) *rounds = r;
  if (rc == -1) { /* the leanest keep-set, when the tightened model rules it out */
    remat_chain_min_peak(&c->m, keep);
    if (rewrite(c, keep, rw, err, errn)) rc = -2;
    else if ((double)rw->mp.arena_bytes <= abudget) rc = 0;
    if (rounds) *rounds = -1;
  }
  free(keep);
  return rc;
}

static IrGraph *scheduled(IrGraph *g, const TrainInfo *info, TrainInfo *sinfo) {
  int nit;
  Item *it = schedule(g, &nit);
  int *map = xmalloc(((size_t)g->nnodes + 1) * sizeof(int)), *cmap = xmalloc(((size_t)g->nnodes + 1) * sizeof(int));
  IrGraph *S = materialize(g, it, nit, map, cmap);
  remap_info(S, info, map, sinfo);
  free(it);
  free(map);
  free(cmap);
  return S;
}

static double min_total_of(Ctx *c, int64_t persist, int64_t total_sched, Rewrite *rw_min, char *err,
                           size_t errn) {
  bool *keep = xcalloc((size_t)c->k + 1, 1);
  remat_chain_min_peak(&c->m, keep);
  double best = (double)total_sched;
  if (rewrite(c, keep, rw_min, err, errn) == 0) {
    double t = (double)(persist + rw_min->mp.arena_bytes);
    if (t < best) best = t;
  }
  free(keep);
  return best;
}

int pass_remat(IrGraph *g, const TrainInfo *info, const RematOptions *o, RematPlan *pl) {
  memset(pl, 0, sizeof *pl);
  pl->budget = o->budget;
  char err[256] = "";
  MemPlan orig;
  if (memplan_build(g, NULL, &orig, NULL, err, sizeof err)) {
    snprintf(pl->msg, sizeof pl->msg, "memory plan: %s", err);
    return -2;
  }
  pl->total_orig = memplan_total(&orig);
  TrainInfo sinfo;
  IrGraph *S = scheduled(g, info, &sinfo);
  pl->sched = S;
  Ctx c;
  if (ctx_build(&c, S, &sinfo, err, sizeof err)) {
    snprintf(pl->msg, sizeof pl->msg, "memory plan: %s", err);
    return -2;
  }
  pl->nsegs = c.k;
  for (int i = 0; i < c.n; i++) pl->step_flops += c.flops[i];
  bool *none = xcalloc((size_t)c.k + 1, 1);
  Rewrite base;
  int rc = 0;
  if (rewrite(&c, none, &base, err, sizeof err)) {
    snprintf(pl->msg, sizeof pl->msg, "memory plan: %s", err);
    rc = -2;
    goto out;
  }
  int64_t persist = base.mp.params_bytes + base.mp.io_bytes;
  pl->total_sched = memplan_total(&base.mp);
  fill_plan(pl, &base); /* nothing recomputed: the scheduled step */
  if (o->budget <= 0 || pl->total_sched <= o->budget) goto out;
  double abudget = (double)(o->budget - persist);
  Rewrite rw;
  if (o->mode == REMAT_SQRT) {
    bool *keep = xcalloc((size_t)c.k + 1, 1);
    remat_chain_sqrt(&c.m, c.resid, keep);
    int r = rewrite(&c, keep, &rw, err, sizeof err);
    free(keep);
    if (r) {
      snprintf(pl->msg, sizeof pl->msg, "memory plan: %s", err);
      rc = -2;
      goto out;
    }
    fill_plan(pl, &rw);
    if ((double)rw.mp.arena_bytes <= abudget) goto out;
  } else if (o->mode == REMAT_OPTIMAL) {
    int r = optimal_fit(&c, abudget, &rw, &pl->dp_rounds, err, sizeof err);
    if (r == -2) {
      snprintf(pl->msg, sizeof pl->msg, "memory plan: %s", err);
      rc = -2;
      goto out;
    }
    if (r == 0) {
      fill_plan(pl, &rw);
      goto out;
    }
  }
  /* the budget is not met */
  Rewrite rmin;
  pl->min_total = (int64_t)min_total_of(&c, persist, pl->total_sched, &rmin, err, sizeof err);
  if (o->mode == REMAT_NONE) {
    char b0[32], b1[32], b2[32];
    snprintf(pl->msg, sizeof pl->msg,
             "budget %s is below the %s this step needs without rematerialization; "
             "--remat optimal fits it in %s",
             mib((double)o->budget, b0, sizeof b0), mib((double)pl->total_sched, b1, sizeof b1),
             mib((double)pl->min_total, b2, sizeof b2));
  } else if (o->mode == REMAT_SQRT && (double)pl->min_total <= (double)o->budget) {
    char b0[32], b1[32];
    snprintf(pl->msg, sizeof pl->msg,
             "budget %s is below the %s of the sqrt plan; --remat optimal meets it",
             mib((double)o->budget, b0, sizeof b0), mib((double)pl->total, b1, sizeof b1));
  } else {
    explain(pl, (double)pl->min_total < (double)pl->total_sched ? &rmin : &base, o->budget, pl->msg,
            sizeof pl->msg);
  }
  rc = -1;
out:
  free(none);
  ctx_free(&c);
  return rc;
}

int remat_sweep(IrGraph *g, const TrainInfo *info, int npts, RematPoint *out, RematPlan *pl) {
  memset(pl, 0, sizeof *pl);
  char err[256];
  TrainInfo sinfo;
  IrGraph *S = scheduled(g, info, &sinfo);
  pl->sched = S;
  Ctx c;
  if (ctx_build(&c, S, &sinfo, err, sizeof err)) return -1;
  pl->nsegs = c.k;
  for (int i = 0; i < c.n; i++) pl->step_flops += c.flops[i];
  bool *keep = xcalloc((size_t)c.k + 1, 1);
  Rewrite base, rw, sq;
  int rc = -1;
  if (rewrite(&c, keep, &base, err, sizeof err)) goto out;
  int64_t persist = base.mp.params_bytes + base.mp.io_bytes;
  pl->total_sched = memplan_total(&base.mp);
  Rewrite rmin;
  pl->min_total = (int64_t)min_total_of(&c, persist, pl->total_sched, &rmin, err, sizeof err);
  remat_chain_sqrt(&c.m, c.resid, keep);
  if (rewrite(&c, keep, &sq, err, sizeof err)) goto out;
  int64_t sq_total = memplan_total(&sq.mp);
  /* budgets from the least either scheme meets to the unmodified step; the point nearest
   * sqrt's own plan is moved onto it, so the comparison includes sqrt's best case */
  int64_t lo = pl->min_total < sq_total ? pl->min_total : sq_total;
  int near = -1;
  for (int p = 0; p < npts; p++) {
    double f = npts > 1 ? (double)p / (npts - 1) : 1;
    out[p].budget = lo + (int64_t)(f * (double)(pl->total_sched - lo));
    if (p == npts - 1) out[p].budget = pl->total_sched;
    if (sq_total < pl->total_sched &&
        (near < 0 || llabs(out[p].budget - sq_total) < llabs(out[near].budget - sq_total)))
      near = p;
  }
  if (near > 0 && near < npts - 1) out[near].budget = sq_total;
  for (int p = 0; p < npts; p++) {
    RematPoint *pt = &out[p];
    int64_t bud = pt->budget;
    memset(pt, 0, sizeof *pt);
    pt->budget = bud;
    /* none */
    pt->ok[REMAT_NONE] = pl->total_sched <= pt->budget;
    pt->total[REMAT_NONE] = pl->total_sched;
    /* sqrt: the unmodified step when it fits, else Chen's plan */
    if (pl->total_sched <= pt->budget) {
      pt->ok[REMAT_SQRT] = true, pt->total[REMAT_SQRT] = pl->total_sched;
    } else {
      pt->ok[REMAT_SQRT] = sq_total <= pt->budget;
      pt->flops[REMAT_SQRT] = sq.flops;
      pt->total[REMAT_SQRT] = sq_total;
    }
    if (pl->total_sched <= pt->budget) {
      pt->ok[REMAT_OPTIMAL] = true, pt->total[REMAT_OPTIMAL] = pl->total_sched;
    } else {
      int r = optimal_fit(&c, (double)(pt->budget - persist), &rw, NULL, err, sizeof err);
      if (r == -2) goto out;
      if (r == 0) {
        pt->ok[REMAT_OPTIMAL] = true;
        pt->flops[REMAT_OPTIMAL] = rw.flops;
        pt->total[REMAT_OPTIMAL] = memplan_total(&rw.mp);
      }
    }
  }
  rc = 0;
out:
  free(keep);
  ctx_free(&c);
  return rc;
}

void remat_chain_free(RematChain *m) {
  free(m->b);
  free(m->P);
  free(m->RC);
  memset(m, 0, sizeof *m);
}

int remat_model(IrGraph *g, const TrainInfo *info, RematChain *m) {
  char err[256];
  TrainInfo sinfo;
  IrGraph *S = scheduled(g, info, &sinfo);
  Ctx c;
  if (ctx_build(&c, S, &sinfo, err, sizeof err)) return -1;
  *m = c.m;
  c.m.b = c.m.P = c.m.RC = NULL;
  ctx_free(&c);
  return 0;
}

int remat_apply(IrGraph *g, const TrainInfo *info, const bool *keep, RematPlan *pl) {
  memset(pl, 0, sizeof *pl);
  char err[256];
  TrainInfo sinfo;
  IrGraph *S = scheduled(g, info, &sinfo);
  pl->sched = S;
  Ctx c;
  if (ctx_build(&c, S, &sinfo, err, sizeof err)) return -1;
  pl->nsegs = c.k;
  for (int i = 0; i < c.n; i++) pl->step_flops += c.flops[i];
  Rewrite rw;
  int rc = rewrite(&c, keep, &rw, err, sizeof err);
  if (rc == 0) fill_plan(pl, &rw);
  else snprintf(pl->msg, sizeof pl->msg, "%s", err);
  ctx_free(&c);
  return rc;
}

/* "256MiB", "1.5GB", "300M", "4096": bytes, or -1 with err filled */
int64_t remat_parse_size(const char *s, char *err, size_t n) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !(v >= 0) || isinf(v)) {
    snprintf(err, n, "invalid size '%s': expected a number and a unit, e.g. 256MiB or 1.5GB", s);
    return -1;
  }
  while (*end == ' ') end++;
  /* the shared units, and for the command line: none = bytes, K M G T = binary */
  static const char *const bare[] = {"", "k", "m", "g", "t"};
  double scale = ir_size_unit(end, true);
  for (int i = 0; !scale && i < 5; i++)
    if (!strcasecmp(end, bare[i])) scale = i ? ldexp(1, 10 * i) : 1;
  if (scale) {
    int64_t bytes = ir_size_bytes(v, scale);
    if (bytes < 0) snprintf(err, n, "size '%s' is too large", s);
    else if (bytes == 0) snprintf(err, n, "size '%s' is zero", s);
    return bytes > 0 ? bytes : -1;
  }
  snprintf(err, n, "invalid size '%s': unknown unit '%s' (use B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)",
           s, end);
  return -1;
}

