/* rt_threads.h — a small persistent thread pool for generated kernels and the runtime.
 *
 * Work is split into `n` tasks numbered 0..n-1; task t always runs on pool thread t % size
 * (thread 0 is the caller). Kernels give each task a fixed slice of the output, so the bits
 * of a result depend only on how the caller partitions the work, never on scheduling:
 * repeated runs with the same thread count are bit-identical.
 *
 * The generated code calls these functions through a plain C ABI (the pool is passed as
 * an opaque pointer), so their signatures are part of the object-file contract:
 *   int32_t rt_pool_size(void *pool);
 *   void    rt_parallel_for(void *pool, int64_t n, void (*fn)(void *, int64_t), void *ctx);
 *   void   *rt_pool_scratch(void *pool, int64_t bytes);
 *   void    rt_pool_scratch_release(void *pool, void *buf);
 */
#ifndef NNC_RT_THREADS_H
#define NNC_RT_THREADS_H

#include <stdint.h>

typedef struct RtPool RtPool;
typedef void (*RtTaskFn)(void *ctx, int64_t task);

/* Creates a pool of `nthreads` threads in total, counting the caller (nthreads-1 workers
 * are started). nthreads <= 0 means one per online CPU. Returns NULL on failure. */
/* more threads than this are never started: a pool asked for more gets RT_MAX_THREADS
 * (compute kernels gain nothing past the cores, and each thread costs a stack) */
#define RT_MAX_THREADS 256
RtPool *rt_pool_create(int nthreads);
void rt_pool_destroy(RtPool *pool);

/* Threads in the pool, the caller included; 1 for a NULL pool. */
int32_t rt_pool_size(const RtPool *pool);

/* Runs fn(ctx, t) for t in [0, n) and returns when all have finished. With a NULL pool,
 * n <= 1, or when called from inside a running task (or while another thread is using the
 * pool) the tasks run serially on the caller, in order. */
void rt_parallel_for(RtPool *pool, int64_t n, RtTaskFn fn, void *ctx);

/* Scratch memory for a running task (a GEMM's packed panels): the pool keeps one buffer per
 * thread between calls and grows it as needed, so a kernel does not map and fault in fresh
 * pages on every call. rt_pool_scratch returns a 64-byte aligned buffer of at least `bytes`
 * bytes that the caller owns until rt_pool_scratch_release; a buffer is never handed to two
 * callers at once. With a NULL pool, or when every kept buffer is in use (nested or
 * concurrent calls), it allocates a fresh one, which release frees. NULL when out of memory
 * or bytes < 0. The kept buffers are freed with the pool; rt_pool_scratch_bytes is their
 * total (for memory reports, while no kernel runs). */
void *rt_pool_scratch(RtPool *pool, int64_t bytes);
void rt_pool_scratch_release(RtPool *pool, void *buf);
int64_t rt_pool_scratch_bytes(const RtPool *pool);

#endif
