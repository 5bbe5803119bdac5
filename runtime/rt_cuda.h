/* rt_cuda.h — the CUDA driver, loaded at run time.
 *
 * Programs and tests that run generated CUDA kernels do not link libcuda: rt_cuda_open
 * dlopens libcuda.so.1, so a binary starts on a machine without a GPU and says clearly why
 * CUDA is unavailable ("no CUDA driver: ..." when the library or its entry points are
 * missing or cuInit fails, "no CUDA device" when the driver sees none). No CUDA header is
 * needed to build this. Every driver call goes through RT_CU_CHECK, which records the call,
 * the driver's error name and __FILE__:__LINE__ in the handle's error text. */
#ifndef NN_RT_CUDA_H
#define NN_RT_CUDA_H
#include <stddef.h>
#include <stdint.h>

typedef struct RtCuda RtCuda;

/* libname NULL = "libcuda.so.1". Device 0, its primary context made current.
 * NULL with err filled on failure. */
RtCuda *rt_cuda_open(const char *libname, char *err, size_t errlen);
void rt_cuda_close(RtCuda *c);
/* the last failure's text: "FILE:LINE: cuCall(...): CUDA_ERROR_NAME: description" */
const char *rt_cuda_error(const RtCuda *c);

/* device 0: name and compute capability x 10 (80, 90, ...) */
const char *rt_cuda_device_name(const RtCuda *c);
int rt_cuda_cc(const RtCuda *c);

/* every call below returns 0, or -1 with rt_cuda_error set */
int rt_cuda_alloc(RtCuda *c, size_t bytes, uint64_t *dptr);
int rt_cuda_free(RtCuda *c, uint64_t dptr);
int rt_cuda_upload(RtCuda *c, uint64_t dst, const void *src, size_t bytes);
int rt_cuda_download(RtCuda *c, void *dst, uint64_t src, size_t bytes);
/* a module from PTX text (the driver JIT-compiles it for the device); its log on failure */
int rt_cuda_load_ptx(RtCuda *c, const char *ptx, void **module);
int rt_cuda_unload(RtCuda *c, void *module);
/* kernel `name`, allowed dyn_smem bytes of dynamic shared memory (opt-in above 48 KiB) */
int rt_cuda_function(RtCuda *c, void *module, const char *name, size_t dyn_smem, void **fn);
int rt_cuda_launch(RtCuda *c, void *fn, const unsigned grid[3], const unsigned block[3],
                   size_t dyn_smem, void **args);
int rt_cuda_sync(RtCuda *c);
/* the same on a stream (a CUstream; NULL: the default stream), asynchronous */
int rt_cuda_launch_on(RtCuda *c, void *fn, const unsigned grid[3], const unsigned block[3],
                      size_t dyn_smem, void **args, void *stream);
int rt_cuda_copy_dd(RtCuda *c, uint64_t dst, uint64_t src, size_t bytes, void *stream);
int rt_cuda_stream_sync(RtCuda *c, void *stream);
/* A stream of its own (a second queue, e.g. for communication beside the kernels' queue):
 * non-blocking, so that it never waits implicitly for the legacy default stream nor that
 * for it; order between the two only through events. */
int rt_cuda_stream_create(RtCuda *c, void **stream);
int rt_cuda_stream_destroy(RtCuda *c, void *stream);
/* an event without timing (ordering only) */
int rt_cuda_event_create(RtCuda *c, void **event);
int rt_cuda_event_destroy(RtCuda *c, void *event);
/* records event at this point of stream (NULL: the default stream) */
int rt_cuda_event_record(RtCuda *c, void *event, void *stream);
/* the work queued on stream from now on waits for the event's last record (no host wait) */
int rt_cuda_stream_wait_event(RtCuda *c, void *stream, void *event);

/* one launch: function, grid, block, dynamic shared memory */
typedef struct RtCudaLaunch {
  void *fn;
  unsigned grid[3], block[3];
  size_t smem;
} RtCudaLaunch;
/* l[0..n) on the default stream with the same args, each between the records of a pair of
 * events of its own (cuEventRecord before and after the launch); then waits for them and
 * sets ns[i] to the time between launch i's pair (cuEventElapsedTime) in nanoseconds
 * (per-kernel profiling) */
int rt_cuda_run_timed(RtCuda *c, const RtCudaLaunch *l, int n, void **args, int64_t *ns);
#endif
