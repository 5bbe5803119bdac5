/* rt_nccl.h — NCCL, loaded at run time (docs/distributed.md).
 *
 * A program built with `--mpi --target cuda` all-reduces its gradients on the GPU with NCCL.
 * It does not link NCCL: rt_nccl_open dlopens libnccl.so.2 (the CUDA toolkit's, or Debian's
 * libnccl2), so the program starts on a machine without it and says why NCCL is unavailable.
 * No NCCL header is needed to build this: the few types and enum values used are NCCL 2's
 * stable ABI. The ranks exchange the unique id out of band (over MPI, rt_mpi.c). */
#ifndef NN_RT_NCCL_H
#define NN_RT_NCCL_H
#include <stddef.h>
#include <stdint.h>

#define RT_NCCL_ID_BYTES 128 /* NCCL_UNIQUE_ID_BYTES */

typedef struct RtNccl RtNccl;

/* libname NULL = "libnccl.so.2"; NULL with err filled ("NCCL: cannot load ...") */
RtNccl *rt_nccl_open(const char *libname, char *err, size_t errlen);
void rt_nccl_close(RtNccl *n);
const char *rt_nccl_error(const RtNccl *n);
/* rank 0's id for the communicator (ncclGetUniqueId) */
int rt_nccl_unique_id(RtNccl *n, unsigned char id[RT_NCCL_ID_BYTES]);
/* joins the communicator of size ranks with id, on the current CUDA device (the first
 * call); every later call does nothing. 0, or -1 with rt_nccl_error set */
int rt_nccl_init(RtNccl *n, const unsigned char id[RT_NCCL_ID_BYTES], int rank, int size);
/* in place: the mean over the ranks of the f32 device buffers (dptr[i], count[i]), i < k,
 * as one NCCL group on the legacy default stream; 0, or -1 with rt_nccl_error set */
int rt_nccl_mean(RtNccl *n, const uint64_t *dptr, const int64_t *count, int64_t k);
/* the same on stream (a CUstream, NULL: the legacy default stream): queued there, so it runs
 * after what the stream waits for (an event of the kernels' stream) and returns at once */
int rt_nccl_mean_on(RtNccl *n, const uint64_t *dptr, const int64_t *count, int64_t k, void *stream);
/* in place: the sum over the ranks of the count doubles at device address dptr (sync-bn
 * statistics), on the legacy default stream; 0, or -1 with rt_nccl_error set */
int rt_nccl_sum_f64(RtNccl *n, uint64_t dptr, int64_t count);
#endif
