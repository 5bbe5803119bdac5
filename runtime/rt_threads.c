/* rt_threads.c — persistent pthread pool with a static task-to-thread assignment.
 *
 * Workers sleep on a condition variable between jobs but spin first, because the kernels
 * that use the pool are often short (tens of microseconds) and a futex wake-up would cost a
 * noticeable share of them. The spin is bounded by time, not iterations: a `pause` takes
 * 10 to 140 cycles depending on the core, and the gaps between parallel kernels (one-thread
 * kernels of a step: small GEMMs, losses, bias gradients) are tens to hundreds of
 * microseconds. A wake-up measured 15-20 us on a KVM guest (mlp training step, 2 threads:
 * a 32768-element relu backward took 22 us after a 70 us gap instead of 3 us). */
#include "rt_threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define RT_SPIN_ITERS 2000
/* how long an idle worker spins before it sleeps */
#define RT_SPIN_NS 500000
#define RT_SCRATCH_ALIGN 64

typedef struct {
    atomic_int taken; /* owned by a caller between rt_pool_scratch and its release */
    _Atomic(void *) buf; /* read by other threads' releases, written by the owner */
    _Atomic int64_t cap;
} RtScratch;

struct RtPool {
    int size;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_start;
    pthread_cond_t cv_done;
    atomic_uint_fast64_t generation; /* bumped once per job */
    atomic_int pending;              /* workers still busy with the current job */
    atomic_int busy;                 /* a job is in flight: nested/concurrent calls go serial */
    atomic_int stop;
    RtTaskFn fn;
    void *ctx;
    int64_t ntasks;
    RtScratch *scratch; /* `size` kept task buffers */
};

typedef struct {
    RtPool *pool;
    int tid;
} RtWorkerArg;

static inline void rt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t rt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* spin until the pool's generation moves past `seen` or it stops, for at most RT_SPIN_NS */
static void rt_spin_for_job(RtPool *p, uint_fast64_t seen) {
    int64_t start = rt_now_ns();
    for (int spins = 1;; spins++) {
        if (atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
            atomic_load(&p->stop))
            return;
        rt_cpu_relax();
        if (spins % 64 == 0 && rt_now_ns() - start > RT_SPIN_NS) return;
    }
}

static void rt_run_slice(RtPool *p, int tid) {
    for (int64_t t = tid; t < p->ntasks; t += p->size) p->fn(p->ctx, t);
}

static void *rt_worker_main(void *argp) {
    RtWorkerArg arg = *(RtWorkerArg *)argp;
    free(argp);
    RtPool *p = arg.pool;
    uint_fast64_t seen = 0;
    for (;;) {
        rt_spin_for_job(p, seen);
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
            pthread_cond_wait(&p->cv_start, &p->mu);
        pthread_mutex_unlock(&p->mu);
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->generation);
        rt_run_slice(p, arg.tid);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

RtPool *rt_pool_create(int nthreads) {
    if (nthreads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = c > 0 ? (int)c : 1;
    }
    if (nthreads > RT_MAX_THREADS) nthreads = RT_MAX_THREADS;
    RtPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->size = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->stop, 0);
    p->scratch = calloc((size_t)nthreads, sizeof *p->scratch);
    if (!p->scratch) {
        p->size = 1;
        rt_pool_destroy(p);
        return NULL;
    }
    if (nthreads > 1) {
        p->threads = calloc((size_t)nthreads - 1, sizeof *p->threads);
        if (!p->threads) {
            rt_pool_destroy(p);
            return NULL;
        }
        for (int i = 1; i < nthreads; i++) {
            RtWorkerArg *a = malloc(sizeof *a);
            if (a) {
                a->pool = p;
                a->tid = i;
            }
            if (!a || pthread_create(&p->threads[i - 1], NULL, rt_worker_main, a) != 0) {
                free(a);
                p->size = i; /* only the started workers are joined */
                rt_pool_destroy(p);
                return NULL;
            }
        }
    }
    return p;
}

void rt_pool_destroy(RtPool *p) {
    if (!p) return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, 1);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->size; i++) pthread_join(p->threads[i - 1], NULL);
        free(p->threads);
    }
    if (p->scratch)
        for (int i = 0; i < p->size; i++) free(atomic_load(&p->scratch[i].buf));
    free(p->scratch);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

int32_t rt_pool_size(const RtPool *p) { return p ? p->size : 1; }

void rt_parallel_for(RtPool *p, int64_t n, RtTaskFn fn, void *ctx) {
    int expected = 0;
    if (!p || p->size <= 1 || n <= 1 ||
        !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        for (int64_t t = 0; t < n; t++) fn(ctx, t);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = n;
    atomic_store(&p->pending, p->size - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);

    rt_run_slice(p, 0);

    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < RT_SPIN_ITERS) {
        rt_cpu_relax();
        spins++;
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    atomic_store(&p->busy, 0);
}

static void *rt_scratch_alloc(int64_t bytes) {
    void *b = NULL;
    if (posix_memalign(&b, RT_SCRATCH_ALIGN, bytes > 0 ? (size_t)bytes : 1) != 0) return NULL;
    return b;
}

void *rt_pool_scratch(RtPool *p, int64_t bytes) {
    if (bytes < 0 || (uint64_t)bytes > SIZE_MAX / 2) return NULL;
    for (int i = 0; p && p->scratch && i < p->size; i++) {
        RtScratch *s = &p->scratch[i];
        int expected = 0;
        if (!atomic_compare_exchange_strong(&s->taken, &expected, 1)) continue;
        if (s->cap < bytes) {
            free(atomic_exchange(&s->buf, NULL));
            s->cap = 0;
            void *b = rt_scratch_alloc(bytes);
            if (!b) {
                atomic_store(&s->taken, 0);
                return NULL;
            }
            atomic_store(&s->buf, b);
            s->cap = bytes;
        }
        return atomic_load(&s->buf);
    }
    return rt_scratch_alloc(bytes);
}

void rt_pool_scratch_release(RtPool *p, void *buf) {
    if (!buf) return;
    for (int i = 0; p && p->scratch && i < p->size; i++)
        if (atomic_load(&p->scratch[i].buf) == buf && atomic_load(&p->scratch[i].taken)) {
            atomic_store(&p->scratch[i].taken, 0);
            return;
        }
    free(buf);
}

int64_t rt_pool_scratch_bytes(const RtPool *p) {
    int64_t n = 0;
    for (int i = 0; p && p->scratch && i < p->size; i++) n += p->scratch[i].cap;
    return n;
}
