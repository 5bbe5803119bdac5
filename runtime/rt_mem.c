/* rt_mem.c — regions of anonymous memory, read-only file mappings and the expected memory
 * of a process (rt_mem.h). Regions come straight from mmap rather than malloc so that the
 * zeroing is the kernel's: a page is private memory only once it is written. */
#include "rt_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_io.h"
#include "rt_program.h"

static size_t page_round(size_t n, int *overflow) {
  long ps = sysconf(_SC_PAGESIZE);
  size_t p = ps > 0 ? (size_t)ps : 4096;
  *overflow = n > SIZE_MAX - p;
  return *overflow ? 0 : (n + p - 1) / p * p;
}

int rt_region_alloc(RtRegion *r, size_t size) {
  int ovf;
  size_t n = page_round(size, &ovf);
  r->p = NULL;
  r->size = 0;
  if (ovf || (int64_t)n < 0) return -1;
  if (!n) return 0;
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  r->p = p;
  r->size = n;
  return 0;
}

void rt_region_free(RtRegion *r) {
  if (r->p) munmap(r->p, r->size);
  r->p = NULL;
  r->size = 0;
}

/* ---- file mappings ------------------------------------------------------------------------ */

int rt_map_file(const char *path, RtMap *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    rt_errf(err, errlen, "%s: is a directory, not a file", path);
    close(fd);
    return -1;
  }
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (uint64_t)st.st_size <= SIZE_MAX) {
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      rt_errf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
      return -1;
    }
    m->data = p;
    m->base = p;
    m->len = (size_t)st.st_size;
    m->mapped = 1;
    return 0;
  }
  close(fd);
  size_t len;
  void *buf = rt_file_read_all(path, &len, err, errlen);
  if (!buf) return -1;
  m->data = buf;
  m->base = buf;
  m->len = len;
  return 0;
}

void rt_map_advise_random(RtMap *m) {
  if (m->mapped) posix_madvise(m->base, m->len, POSIX_MADV_RANDOM);
}

void rt_map_free(RtMap *m) {
  if (m->mapped)
    munmap(m->base, m->len);
  else
    free(m->base);
  memset(m, 0, sizeof *m);
}

/* ---- expected peak ------------------------------------------------------------------------ */

static int64_t round64(int64_t n) { return (n + 63) / 64 * 64; }

void rt_mem_figures(const RtModelDesc *d, RtMemFigures *f) {
  memset(f, 0, sizeof *f);
  for (int i = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (t->kind == RT_KIND_PARAM || t->kind == RT_KIND_BUFFER) {
      if (t->offset + t->nbytes > f->weights) f->weights = t->offset + t->nbytes;
    } else if (t->kind == RT_KIND_INPUT) {
      f->inputs += round64(t->nbytes);
    } else if (t->kind == RT_KIND_OUTPUT) {
      f->out_per_sample += rt_info_batched(d, t) ? t->nbytes / t->shape[0] : t->nbytes;
    }
  }
  f->weights = round64(f->weights);
  f->optstate = d->params_bytes > f->weights ? d->params_bytes - f->weights : 0;
  f->io = d->io_bytes;
  f->arena_forward = d->arena_bytes_forward;
  f->arena_train = d->train_step ? d->arena_bytes_train : 0;
  f->thread_forward = d->thread_bytes_forward;
  f->thread_train = d->train_step ? d->thread_bytes_train : 0;
}

int rt_mem_threads(int threads) {
  if (threads > 0) return threads;
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c > 0 ? (int)c : 1;
}

int64_t rt_mem_infer_ctx(const RtMemFigures *f) {
  return f->weights + round64(f->io) + round64(f->arena_forward);
}

int64_t rt_mem_train_ctx(const RtMemFigures *f) {
  int64_t arena = f->arena_train > f->arena_forward ? f->arena_train : f->arena_forward;
  return round64(f->weights + f->optstate) + round64(f->io) + round64(arena);
}

int64_t rt_mem_infer_peak(const RtMemFigures *f, int64_t n, int threads) {
  return rt_mem_infer_ctx(f) + f->inputs + n * f->out_per_sample +
         rt_mem_threads(threads) * (f->thread_forward + RT_MEM_THREAD_BYTES) +
         RT_MEM_RUNTIME_BYTES;
}

int64_t rt_mem_train_peak(const RtMemFigures *f, int64_t n, int threads) {
  int64_t per = f->thread_train > f->thread_forward ? f->thread_train : f->thread_forward;
  return rt_mem_train_ctx(f) + 8 * n + rt_mem_threads(threads) * (per + RT_MEM_THREAD_BYTES) +
         RT_MEM_RUNTIME_BYTES;
}
