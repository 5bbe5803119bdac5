/* memplan.c — liveness and the static arena plan of a graph (memplan.h, docs/memory.md).
 *
 * The schedule is the node order. A value's storage lives from the step that writes it to
 * the last step that reads it (or one of its views); outputs kept in the arena live to the
 * end. In-place chains are merged into one buffer before allocation, so the allocator only
 * sees independent intervals.
 */
#include "memplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t align_up(int64_t x) { return (x + MP_ALIGN - 1) / MP_ALIGN * MP_ALIGN; }

/* ---- the allocator ------------------------------------------------------------------- */

static int by_size_desc(const void *a, const void *b, void *ctx) {
  const MpBuf *B = ctx;
  int x = *(const int *)a, y = *(const int *)b;
  int64_t sx = align_up(B[x].size), sy = align_up(B[y].size);
  if (sx != sy) return sx > sy ? -1 : 1;
  if (B[x].def != B[y].def) return B[x].def < B[y].def ? -1 : 1;
  return x - y;
}

/* insertion sort keeps the dependency on qsort_r away (glibc-only); n is a few thousand */
static void sort_idx(int *idx, int n, const MpBuf *b) {
  for (int i = 1; i < n; i++) {
    int v = idx[i], j = i - 1;
    while (j >= 0 && by_size_desc(&idx[j], &v, (void *)b) > 0) idx[j + 1] = idx[j], j--;
    idx[j + 1] = v;
  }
}

typedef struct Span {
  int64_t off, end;
} Span;

static int span_cmp(const void *a, const void *b) {
  const Span *x = a, *y = b;
  return (x->off > y->off) - (x->off < y->off);
}

int64_t mp_assign(MpBuf *b, int n) {
  if (n <= 0) return 0;
  int *idx = xmalloc((size_t)n * sizeof(int));
  for (int i = 0; i < n; i++) idx[i] = i, b[i].offset = -1;
  sort_idx(idx, n, b);
  Span *sp = xmalloc((size_t)n * sizeof(Span));
  int64_t top = 0;
  for (int k = 0; k < n; k++) {
    MpBuf *x = &b[idx[k]];
    int64_t size = align_up(x->size > 0 ? x->size : 1);
    int ns = 0;
    for (int q = 0; q < k; q++) {
      const MpBuf *y = &b[idx[q]];
      if (y->def <= x->last && x->def <= y->last)
        sp[ns++] = (Span){y->offset, y->offset + align_up(y->size > 0 ? y->size : 1)};
    }
    qsort(sp, (size_t)ns, sizeof(Span), span_cmp);
    int64_t best = -1, best_gap = 0, cur = 0;
    for (int s = 0; s < ns; s++) {
      if (sp[s].off - cur >= size && (best < 0 || sp[s].off - cur < best_gap))
        best = cur, best_gap = sp[s].off - cur;
      if (sp[s].end > cur) cur = sp[s].end;
    }
    x->offset = best >= 0 ? best : cur; /* no gap fits: on top of the overlapping ones */
    if (x->offset + size > top) top = x->offset + size;
  }
  free(sp);
  free(idx);
  return top;
}

int mp_check_bufs(const MpBuf *b, int n, int64_t arena, char *err, size_t errn) {
  for (int i = 0; i < n; i++) {
    if (b[i].offset < 0 || b[i].offset % MP_ALIGN) {
      snprintf(err, errn, "buffer %d: offset %lld is not %d-byte aligned", i,
               (long long)b[i].offset, MP_ALIGN);
      return -1;
    }
    if (b[i].offset + b[i].size > arena) {
      snprintf(err, errn, "buffer %d: [%lld, %lld) exceeds the arena (%lld bytes)", i,
               (long long)b[i].offset, (long long)(b[i].offset + b[i].size), (long long)arena);
      return -1;
    }
    for (int j = 0; j < i; j++)
      if (b[j].def <= b[i].last && b[i].def <= b[j].last && b[j].offset < b[i].offset + b[i].size &&
          b[i].offset < b[j].offset + b[j].size) {
        snprintf(err, errn, "buffers %d and %d are alive together and overlap", j, i);
        return -1;
      }
  }
  return 0;
}

/* ---- values of a graph --------------------------------------------------------------- */

bool memplan_is_view(const IrNode *n) {
  return n->op == OP_RESHAPE ||
         ((n->op == OP_DROPOUT || n->op == OP_DROPOUT_BWD) && (!n->attr.train || n->attr.value == 0));
}

int64_t memplan_value_bytes(const IrGraph *g, int i) {
  const IrNode *n = &g->nodes[i];
  if (n->op == OP_ASSIGN) return 0;
  return ir_type_numel(g, &n->type) * (int64_t)dt_size(n->type.dt);
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* outputs in the io region: all but parameter gradients (a training step consumes those) */
static void mark_outputs(const IrGraph *g, bool *io_out, bool *arena_out) {
  for (int o = 0; o < g->noutputs; o++) {
    int v = g->outputs[o].node;
    if (g->outputs[o].name && ends_with(g->outputs[o].name, ".grad")) arena_out[v] = true;
    else io_out[v] = true;
  }
}

static bool has_opt_assign(const IrGraph *g) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_ASSIGN && g->nodes[i].phase == PH_OPT) return true;
  return false;
}

/* what every value is, where it lives and how long its storage is needed */
typedef struct Live {
  unsigned char *where;
  int *root, *last;
  int64_t *bytes;
} Live;

static void classify(const IrGraph *g, Live *L, Arena *a) {
  int n = g->nnodes;
  size_t N = (size_t)(n ? n : 1);
  L->where = arena_alloc(a, N);
  L->root = arena_alloc(a, N * sizeof(int));
  L->last = arena_alloc(a, N * sizeof(int));
  L->bytes = arena_alloc(a, N * sizeof(int64_t));
  bool *io_out = arena_alloc(a, N), *arena_out = arena_alloc(a, N);
  mark_outputs(g, io_out, arena_out);
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &g->nodes[i];
    L->bytes[i] = memplan_value_bytes(g, i);
    L->root[i] = i;
    L->last[i] = i;
    if (nd->op == OP_ASSIGN) L->where[i] = MP_NONE;
    else if (nd->op == OP_PARAM) L->where[i] = MP_PARAMS;
    else if (nd->op == OP_INPUT) L->where[i] = MP_IO;
    else if (nd->op == OP_CONST && ir_type_numel(g, &nd->type) <= 1) L->where[i] = MP_IMM;
    else if (memplan_is_view(nd)) L->where[i] = MP_VIEW, L->root[i] = L->root[nd->in[0]];
    else if (io_out[i]) L->where[i] = MP_IO;
    else L->where[i] = MP_ARENA;
  }
  bool opt = has_opt_assign(g);
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &g->nodes[i];
    for (int j = 0; j < nd->nin; j++) {
      int r = L->root[nd->in[j]];
      if (L->last[r] < i) L->last[r] = i;
    }
  }
  for (int i = 0; i < n; i++) {
    int r = L->root[i];
    /* an output viewing arena storage, or a gradient nobody in the step consumes */
    if ((io_out[i] && r != i) || (arena_out[i] && (!opt || L->last[r] == r)))
      L->last[r] = n;
  }
}

int memplan_build(const IrGraph *g, const MpOptions *o, MemPlan *p, Arena *a, char *err,
                  size_t errn) {
  MpOptions defo = {0};
  if (!o) o = &defo;
  if (!a) a = g->arena;
  memset(p, 0, sizeof *p);
  p->g = g;
  int n = p->n = g->nnodes;
  size_t N = (size_t)(n ? n : 1);
  Live L;
  classify(g, &L, a);
  p->where = L.where;
  p->root = L.root;
  p->bytes = L.bytes;
  p->last = L.last;
  p->def = arena_alloc(a, N * sizeof(int));
  p->buf = arena_alloc(a, N * sizeof(int));
  p->offset = arena_alloc(a, N * sizeof(int64_t));
  p->inplace_src = arena_alloc(a, N * sizeof(int));
  for (int i = 0; i < n; i++) {
    p->inplace_src[i] = -1;
    p->def[i] = i;
    p->buf[i] = -1;
    p->offset[i] = -1;
    if (p->bytes[i] < 0) {
      snprintf(err, errn, "%%%d has no known size", i);
      return -1;
    }
    if (p->where[i] == MP_PARAMS) p->params_bytes += align_up(p->bytes[i]);
    if (p->where[i] == MP_IO) p->io_bytes += align_up(p->bytes[i]);
  }
  /* in-place: the chain head's buffer takes over an elementwise result whose operand of the
   * same size dies at it */
  int *head = arena_alloc(a, N * sizeof(int));
  for (int i = 0; i < n; i++) head[i] = i;
  for (int i = 0; i < n && !o->no_inplace; i++) {
    const IrNode *nd = &g->nodes[i];
    if (p->where[i] != MP_ARENA || !(ir_ops[nd->op].flags & OPF_ELEMWISE)) continue;
    for (int j = 0; j < nd->nin; j++) {
      int r = p->root[nd->in[j]];
      if (p->where[r] != MP_ARENA || p->last[r] != i || p->bytes[r] != p->bytes[i] ||
          g->nodes[r].type.dt != nd->type.dt)
        continue;
      head[i] = head[r];
      p->inplace_src[i] = r;
      p->ninplace++;
      break;
    }
  }
  /* one buffer per chain head */
  p->bufs = arena_alloc(a, N * sizeof(MpBuf));
  for (int i = 0; i < n; i++) {
    if (p->where[i] != MP_ARENA) continue;
    int h = head[i];
    if (h == i) {
      p->buf[i] = p->nbufs;
      p->bufs[p->nbufs++] = (MpBuf){p->bytes[i], i, p->last[i], -1};
    } else {
      p->buf[i] = p->buf[h];
      MpBuf *b = &p->bufs[p->buf[h]];
      if (p->last[i] > b->last) b->last = p->last[i];
    }
  }
  p->arena_bytes = mp_assign(p->bufs, p->nbufs);
  for (int i = 0; i < n; i++) {
    int r = p->root[i];
    if (p->buf[r] >= 0) p->offset[i] = p->bufs[p->buf[r]].offset;
  }
  /* the bytes alive at each step, for the lower bound and the peak's location */
  int64_t *delta = arena_alloc(a, (N + 2) * sizeof(int64_t));
  for (int k = 0; k < p->nbufs; k++) {
    delta[p->bufs[k].def] += align_up(p->bufs[k].size);
    delta[p->bufs[k].last + 1] -= align_up(p->bufs[k].size);
  }
  int64_t cur = 0;
  p->peak_step = -1;
  for (int s = 0; s <= n; s++) {
    cur += delta[s];
    if (cur > p->live_peak) p->live_peak = cur, p->peak_step = s;
  }
  return 0;
}

int64_t memplan_total(const MemPlan *p) { return p->params_bytes + p->io_bytes + p->arena_bytes; }

/* ---- the independent check ----------------------------------------------------------- */

int memplan_check(const IrGraph *g, const MemPlan *p, char *err, size_t errn) {
  int n = g->nnodes;
  if (p->n != n) {
    snprintf(err, errn, "the plan is for %d nodes, the graph has %d", p->n, n);
    return -1;
  }
  Arena *a = arena_new();
  Live L;
  classify(g, &L, a);
  int rc = -1;
  for (int i = 0; i < n; i++) {
    if (L.where[i] != MP_ARENA) {
      if (L.where[i] != MP_VIEW && p->offset[i] >= 0) {
        snprintf(err, errn, "%%%d lives outside the arena but has an arena offset", i);
        goto out;
      }
      continue;
    }
    int64_t off = p->offset[i], sz = L.bytes[i];
    if (off < 0 || off % MP_ALIGN) {
      snprintf(err, errn, "%%%d (%s): arena offset %lld is missing or not %d-byte aligned", i,
               ir_op_name(g->nodes[i].op), (long long)off, MP_ALIGN);
      goto out;
    }
    if (off + sz > p->arena_bytes) {
      snprintf(err, errn, "%%%d: [%lld, %lld) exceeds the arena of %lld bytes", i, (long long)off,
               (long long)(off + sz), (long long)p->arena_bytes);
      goto out;
    }
  }
  for (int i = 0; i < n; i++) {
    if (L.where[i] != MP_VIEW) continue;
    int r = L.root[i];
    if (L.where[r] == MP_ARENA && p->offset[i] != p->offset[r]) {
      snprintf(err, errn, "view %%%d does not share its operand's storage", i);
      goto out;
    }
  }
  for (int b = 0; b < n; b++) {
    if (L.where[b] != MP_ARENA) continue;
    for (int x = 0; x < b; x++) {
      if (L.where[x] != MP_ARENA) continue;
      bool alive = x <= L.last[b] && b <= L.last[x];
      bool overlap = p->offset[x] < p->offset[b] + L.bytes[b] && p->offset[b] < p->offset[x] + L.bytes[x];
      if (!alive || !overlap) continue;
      /* the one legal case: b is elementwise, reads x, x dies at b, same size and place */
      const IrNode *nb = &g->nodes[b];
      bool reads = false;
      for (int j = 0; j < nb->nin; j++) reads |= L.root[nb->in[j]] == x;
      if ((ir_ops[nb->op].flags & OPF_ELEMWISE) && reads && L.last[x] == b &&
          L.bytes[x] == L.bytes[b] && p->offset[x] == p->offset[b])
        continue;
      snprintf(err, errn,
               "%%%d (%s, %s, steps %d..%d) and %%%d (%s, %s, steps %d..%d) are alive together "
               "and overlap at [%lld, %lld) / [%lld, %lld)",
               x, ir_op_name(g->nodes[x].op), g->nodes[x].name ? g->nodes[x].name : "-", x, L.last[x],
               b, ir_op_name(nb->op), nb->name ? nb->name : "-", b, L.last[b], (long long)p->offset[x],
               (long long)(p->offset[x] + L.bytes[x]), (long long)p->offset[b],
               (long long)(p->offset[b] + L.bytes[b]));
      goto out;
    }
  }
  rc = 0;
out:
  arena_free(a);
  return rc;
}
