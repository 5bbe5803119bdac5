/* rt_mem.h — how the runtime holds memory, and what a process built by `nnc build` is
 * expected to use:
 *
 *  - regions: zeroed anonymous memory from the kernel, page aligned; a page becomes part of
 *    the process's private memory when it is first written, so room reserved for the
 *    optimizer state costs nothing until training writes it;
 *  - read-only file mappings: a mapped data set or checkpoint costs page cache, which the
 *    kernel can drop and re-read, not private memory;
 *  - the expected peak of a process: the regions of an inference or a training context, the
 *    buffers of the data loader and a fixed allowance for the runtime itself (C library,
 *    thread stacks, stdio). `info`, `nnc cost` and the memory budget of `nnc build` all use
 *    rt_mem_figures and the two peak functions below, so the figure is computed once.
 */
#ifndef RT_MEM_H
#define RT_MEM_H
#include <stddef.h>
#include <stdint.h>

#include "rt_model.h"

/* ---- regions ------------------------------------------------------------------------------ */

typedef struct RtRegion {
  char *p;     /* NULL while size is 0 */
  size_t size; /* bytes usable at p (a multiple of the page size) */
} RtRegion;

/* size bytes (rounded up to pages), zeroed; 0 or -1 (out of memory, size too large) */
int rt_region_alloc(RtRegion *r, size_t size);
void rt_region_free(RtRegion *r);

/* ---- read-only file mappings -------------------------------------------------------------- */

typedef struct RtMap {
  const unsigned char *data;
  size_t len;
  void *base;    /* what to unmap or free */
  int mapped;    /* 1: a file mapping; 0: read into memory (not a regular file, or empty) */
} RtMap;

/* Maps a whole file read-only. A regular file is mapped; anything else (a pipe, /dev/stdin)
 * is read into private memory. 0, or -1 with a message naming the file. */
int rt_map_file(const char *path, RtMap *m, char *err, size_t errlen);
/* Tells the kernel the mapping is read in no particular order (a shuffled data set), so a
 * page fault reads that page rather than a readahead window: under memory pressure, where
 * pages are dropped and read again, this is the difference between reading each sample and
 * reading the file many times over. */
void rt_map_advise_random(RtMap *m);
void rt_map_free(RtMap *m);

/* ---- expected peak of a process ----------------------------------------------------------- */

/* the allowance for the runtime itself: C library and stdio buffers, cJSON while a
 * checkpoint header is parsed; and for each thread of the pool, its stack and the C
 * library's per-thread allocator arena, which keeps freed packing buffers for reuse.
 * Measured by tests/memory (docs/memory.md). */
#define RT_MEM_RUNTIME_BYTES ((int64_t)4 << 20)
#define RT_MEM_THREAD_BYTES ((int64_t)1 << 20)

typedef struct RtMemFigures {
  int64_t weights;       /* trainable parameters and buffers: what inference needs */
  int64_t optstate;      /* optimizer state, held only by a training context */
  int64_t io;            /* inputs, outputs, loss */
  int64_t inputs;        /* one batch of the inputs (64-byte rounded): infer's staging buffer */
  int64_t out_per_sample; /* bytes of output per sample (infer keeps the outputs for the file) */
  int64_t arena_forward, arena_train;
  int64_t thread_forward, thread_train; /* GEMM packing buffers of each thread */
} RtMemFigures;

/* the figures of a compiled model, from its descriptor */
void rt_mem_figures(const RtModelDesc *d, RtMemFigures *f);
/* the regions of an inference-only context: weights + io + forward arena (64-byte rounded) */
int64_t rt_mem_infer_ctx(const RtMemFigures *f);
/* the regions of a training context: weights + optimizer state + io + the larger arena */
int64_t rt_mem_train_ctx(const RtMemFigures *f);
/* the number of threads a pool of `threads` has (<= 0: one per online CPU) */
int rt_mem_threads(int threads);
/* A program's `infer` over n samples with `threads` threads (rt_mem_threads): the inference
 * context, the loader's batch, the outputs of n samples, the packing buffers of every
 * thread and the runtime allowance. n = 0 gives the part independent of n. */
int64_t rt_mem_infer_peak(const RtMemFigures *f, int64_t n, int threads);
/* A program's `train` on n samples: the training context (batches are gathered straight
 * into its io region), the shuffled order (8 bytes a sample), the packing buffers of every
 * thread and the runtime allowance; n = 0: the part independent of n. */
int64_t rt_mem_train_peak(const RtMemFigures *f, int64_t n, int threads);

#endif
