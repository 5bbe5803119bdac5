/* memplan.h — static memory plan of a graph: where every value lives and when.
 *
 * Requires: a verified graph whose node order is the execution order (the schedule; the
 * remat pass produces a memory-aware order, see docs/memory.md). Works at the graph's
 * current dim values.
 * Guarantees: every value that needs scratch storage gets a 64-byte aligned offset in one
 * arena; two values whose lifetimes overlap never overlap in the arena, except that an
 * elementwise op may write its result over an operand of the same size that dies at it (the
 * op reads each element before writing it). memplan_check verifies this independently of
 * the allocator. The arena size is the planned peak of the scratch memory.
 *
 * Regions (runtime/rt_model.h): PARAM nodes (weights, buffers, optimizer state) live in the
 * params region, INPUT nodes and the outputs other than parameter gradients in the io region;
 * scalar constants are immediates; RESHAPE and identity dropout are views of their operand;
 * ASSIGN produces no value. Everything else is in the arena.
 */
#ifndef NN_MEMPLAN_H
#define NN_MEMPLAN_H
#include <stdbool.h>
#include <stdint.h>

#include "../ir/ir.h"

#define MP_ALIGN 64

/* ---- the allocator: intervals in, offsets out ---------------------------------------- */

/* A buffer alive over the steps [def, last] (inclusive) of some schedule. */
typedef struct MpBuf {
  int64_t size;   /* bytes; rounded up to MP_ALIGN by the allocator */
  int def, last;
  int64_t offset; /* out */
} MpBuf;

/* Offline best-fit: buffers in decreasing size (ties: earlier def first); each goes into the
 * smallest gap between the already placed buffers whose lifetimes overlap its own, or on
 * top of them. Returns the arena size (a multiple of MP_ALIGN). */
int64_t mp_assign(MpBuf *b, int n);
/* no two buffers with overlapping lifetimes overlap in memory, offsets aligned, all within
 * arena; 0 ok, else -1 with a message */
int mp_check_bufs(const MpBuf *b, int n, int64_t arena, char *err, size_t errn);

/* ---- the plan of a graph ------------------------------------------------------------- */

typedef enum { MP_NONE, MP_ARENA, MP_PARAMS, MP_IO, MP_IMM, MP_VIEW } MpWhere;

typedef struct MpOptions {
  bool no_inplace; /* plan without in-place reuse (liveness studies, tests) */
} MpOptions;

typedef struct MemPlan {
  const IrGraph *g;
  int n;
  unsigned char *where; /* [n] MpWhere */
  int *root;            /* [n] the node whose storage a value uses (itself unless a view) */
  int64_t *bytes;       /* [n] bytes of the value (0 for ASSIGN) */
  int *def, *last;      /* [n] lifetime of a root's storage in steps (node indices) */
  int *buf;             /* [n] arena buffer of an arena root, -1 otherwise */
  int *inplace_src;     /* [n] the dying operand root whose storage the value took, -1 */
  int64_t *offset;      /* [n] arena offset of every arena value (views: their root's), -1 */
  MpBuf *bufs;          /* [nbufs]: one per arena root, in-place chains merged */
  int nbufs;
  int64_t arena_bytes;  /* the planned scratch peak */
  int64_t live_peak;    /* max over steps of the bytes alive: a lower bound of any arena */
  int peak_step;        /* where live_peak occurs */
  int64_t params_bytes, io_bytes; /* outside the arena */
  int ninplace;         /* values written over a dying operand */
} MemPlan;

/* 0 ok; -1 with err filled (a value of unknown size). Allocations in a (NULL: g->arena). */
int memplan_build(const IrGraph *g, const MpOptions *o, MemPlan *p, Arena *a, char *err,
                  size_t errn);
/* Independent check of a plan against its graph: recomputes lifetimes from the graph and
 * verifies alignment, bounds and that no two simultaneously live values overlap (the legal
 * in-place hand-off excepted). 0 ok, else -1 with the first problem in err. */
int memplan_check(const IrGraph *g, const MemPlan *p, char *err, size_t errn);
/* params + io + arena */
int64_t memplan_total(const MemPlan *p);
/* RESHAPE, and dropout that is the identity (inference, or p = 0): no storage of their own */
bool memplan_is_view(const IrNode *n);
/* bytes of node i's value at the current dims (0 for ASSIGN) */
int64_t memplan_value_bytes(const IrGraph *g, int i);
#endif
