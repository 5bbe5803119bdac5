/* rt_nccl.c — NCCL through dlopen (rt_nccl.h). */
#include "rt_nccl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct RtNcclId {
  unsigned char b[RT_NCCL_ID_BYTES];
} RtNcclId; /* ncclUniqueId, passed by value */
typedef int (*NcclGetUniqueId)(void *id);
typedef int (*NcclCommInitRank)(void **comm, int nranks, RtNcclId id, int rank);
typedef int (*NcclAllReduce)(const void *send, void *recv, size_t count, int dtype, int op,
                             void *comm, void *stream);
typedef int (*NcclVoid)(void);
typedef int (*NcclCommDestroy)(void *comm);
typedef const char *(*NcclGetErrorString)(int result);

/* ncclFloat32, ncclFloat64, ncclSum, ncclAvg (NCCL >= 2.10) */
enum { NCCL_FLOAT32 = 7, NCCL_FLOAT64 = 8, NCCL_SUM = 0, NCCL_AVG = 4 };

struct RtNccl {
  void *lib, *comm;
  NcclGetUniqueId get_id;
  NcclCommInitRank init_rank;
  NcclAllReduce all_reduce;
  NcclVoid group_start, group_end;
  NcclCommDestroy destroy;
  NcclGetErrorString error_string;
  char err[512];
};

/* each entry point by name; 0, or -1 naming the missing one */
static int nccl_syms(RtNccl *n) {
  struct { void **p; const char *name; } s[] = {
      {(void **)&n->get_id, "ncclGetUniqueId"},   {(void **)&n->init_rank, "ncclCommInitRank"},
      {(void **)&n->all_reduce, "ncclAllReduce"}, {(void **)&n->group_start, "ncclGroupStart"},
      {(void **)&n->group_end, "ncclGroupEnd"},   {(void **)&n->destroy, "ncclCommDestroy"},
      {(void **)&n->error_string, "ncclGetErrorString"}};
  for (size_t i = 0; i < sizeof s / sizeof *s; i++)
    if (!(*s[i].p = dlsym(n->lib, s[i].name))) {
      snprintf(n->err, sizeof n->err, "NCCL: the library has no %s", s[i].name);
      return -1;
    }
  return 0;
}

RtNccl *rt_nccl_open(const char *libname, char *err, size_t errlen) {
  RtNccl *n = calloc(1, sizeof *n);
  if (!n) {
    snprintf(err, errlen, "NCCL: out of memory");
    return NULL;
  }
  const char *name = libname ? libname : "libnccl.so.2";
  if (!(n->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) {
    const char *why = dlerror();
    snprintf(err, errlen, "NCCL: cannot load %s: %s (install the CUDA toolkit's NCCL or "
             "Debian's libnccl2)", name, why ? why : "not found");
    free(n);
    return NULL;
  }
  if (nccl_syms(n)) {
    snprintf(err, errlen, "%s", n->err);
    rt_nccl_close(n);
    return NULL;
  }
  return n;
}

void rt_nccl_close(RtNccl *n) {
  if (!n) return;
  if (n->comm && n->destroy) n->destroy(n->comm);
  if (n->lib) dlclose(n->lib);
  free(n);
}

const char *rt_nccl_error(const RtNccl *n) { return n ? n->err : "NCCL: not loaded"; }

static int nccl_check(RtNccl *n, int rc, const char *what) {
  if (!rc) return 0;
  snprintf(n->err, sizeof n->err, "NCCL: %s failed: %s", what, n->error_string(rc));
  return -1;
}

int rt_nccl_unique_id(RtNccl *n, unsigned char id[RT_NCCL_ID_BYTES]) {
  return nccl_check(n, n->get_id(id), "ncclGetUniqueId");
}

int rt_nccl_init(RtNccl *n, const unsigned char id[RT_NCCL_ID_BYTES], int rank, int size) {
  if (n->comm) return 0;
  RtNcclId v;
  memcpy(v.b, id, RT_NCCL_ID_BYTES);
  return nccl_check(n, n->init_rank(&n->comm, size, v, rank), "ncclCommInitRank");
}

int rt_nccl_mean(RtNccl *n, const uint64_t *dptr, const int64_t *count, int64_t k) {
  return rt_nccl_mean_on(n, dptr, count, k, NULL);
}

int rt_nccl_mean_on(RtNccl *n, const uint64_t *dptr, const int64_t *count, int64_t k, void *stream) {
  if (!n->comm) {
    snprintf(n->err, sizeof n->err, "NCCL: no communicator");
    return -1;
  }
  if (nccl_check(n, n->group_start(), "ncclGroupStart")) return -1;
  int rc = 0;
  for (int64_t i = 0; i < k && !rc; i++) {
    void *p = (void *)(uintptr_t)dptr[i];
    rc = n->all_reduce(p, p, (size_t)count[i], NCCL_FLOAT32, NCCL_AVG, n->comm, stream);
  }
  int rc2 = n->group_end();
  return nccl_check(n, rc ? rc : rc2, rc ? "ncclAllReduce" : "ncclGroupEnd");
}

int rt_nccl_sum_f64(RtNccl *n, uint64_t dptr, int64_t count) {
  if (!n->comm) {
    snprintf(n->err, sizeof n->err, "NCCL: no communicator");
    return -1;
  }
  void *p = (void *)(uintptr_t)dptr;
  return nccl_check(n, n->all_reduce(p, p, (size_t)count, NCCL_FLOAT64, NCCL_SUM, n->comm, NULL),
                    "ncclAllReduce");
}
