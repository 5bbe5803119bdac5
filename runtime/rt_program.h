/* rt_program.h — the runtime side of `nnc build`, generic over an RtModelDesc (rt_model.h):
 *
 *  - parameter initialization that reproduces the reference interpreter's
 *    interp_init_param bit for bit (rt_init.c): Philox-4x32-10 uniforms, Box-Muller normals,
 *    the stream chosen by the FNV-1a 64 hash of the tensor's name;
 *  - a model context (rt_embed.c): the three memory regions, a thread pool, load/save of
 *    safetensors checkpoints (optimizer state included), forward passes over any number of
 *    samples in chunks of the descriptor's batch, and training steps. This is the embedding
 *    API; the NAME.h that `nnc build --lib` writes wraps it in per-model functions;
 *  - the program main of every executable `nnc build` links (rt_main.c).
 *
 * Tensors are addressed by their index in desc->tensors; rt_ctx_find maps a name to it.
 * Inputs and outputs passed as arrays are in table order of the tensors of kind
 * RT_KIND_INPUT (resp. RT_KIND_OUTPUT): in[k] is the k-th input of the table.
 *
 * A tensor is "batched" when its rank is >= 1 and its leading dim is desc->batch; batched
 * inputs and outputs of the n-sample calls hold n samples, the others exactly their shape.
 *
 * Functions returning int give 0 on success and -1 on failure, with a one-line message
 * (naming the file or tensor at fault) available from rt_ctx_error.
 */
#ifndef RT_PROGRAM_H
#define RT_PROGRAM_H
#include <stddef.h>
#include <stdint.h>

#include "rt_model.h"

/* the memory plan a program was built with, shown by its `info` command (set by the main
 * that `nnc build` generates; NULL or never called: no plan) */
void rt_program_set_plan(const char *text);

/* ---- initializers (rt_init.c) ------------------------------------------------------------ */

void rt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* uniform in [0,1), element i of stream `stream`: identical to interp_philox_uniform */
double rt_philox_uniform(uint64_t seed, uint64_t stream, uint64_t i);
uint64_t rt_fnv1a64(const char *s);
/* Fisher-Yates over perm[0..n) with a splitmix64 stream whose state is *rng: the training order
 * of both `nnc run --train` and a built program's `train`, so their loss curves agree. Each
 * call continues the stream (a run shuffles the previous epoch's order once per epoch). */
void rt_shuffle(int64_t *perm, int64_t n, uint64_t *rng);
/* the initial values of tensor t in double precision, as interp_init_param computes them */
void rt_init_values(const RtTensorInfo *t, uint64_t seed, double *out);
/* the same, stored in t's dtype at dst (t->nbytes bytes) */
void rt_init_tensor(const RtTensorInfo *t, uint64_t seed, void *dst);

/* ---- descriptor helpers ------------------------------------------------------------------ */

int64_t rt_info_numel(const RtTensorInfo *t);
/* "f32[64,784]" */
void rt_info_type_str(const RtTensorInfo *t, char *buf, size_t n);
/* index of the tensor named `name`, or -1 */
int rt_desc_find(const RtModelDesc *d, const char *name);
/* how many tensors of a kind, and the index of the k-th one (-1 if none) */
int rt_desc_count(const RtModelDesc *d, int kind);
int rt_desc_nth(const RtModelDesc *d, int kind, int k);
int rt_info_batched(const RtModelDesc *d, const RtTensorInfo *t);
/* the ABI matches this runtime's and every entry lies inside its region; 0 or -1 */
int rt_desc_check(const RtModelDesc *d, char *err, size_t errlen);

/* ---- checks on data coming in (rt_check.c) ---------------------------------------------- */
/* the n elements of input t at data are labels / indices within [0, t->index_bound) (no-op
 * for other inputs); else -1 with "input 'label': label -1 at position P is outside [0, C)",
 * P counted from `first` */
int rt_check_indices(const RtTensorInfo *t, const void *data, int64_t n, int64_t first,
                     char *err, size_t errlen);
/* the n elements of an f32 tensor t at data are finite; else -1 with "WHAT 'name': element i
 * is NaN" (what: "input", "weight", ...) */
int rt_check_finite(const RtTensorInfo *t, const void *data, int64_t n, const char *what,
                    char *err, size_t errlen);
/* the same for n elements that start at element `first` of the tensor (a chunk of a file) */
int rt_check_finite_at(const RtTensorInfo *t, const void *data, int64_t n, int64_t first,
                       const char *what, char *err, size_t errlen);
struct RtTensorSet;
/* -1 with a message when the checkpoint's metadata names another model or other dims */
int rt_check_ckpt_meta(const RtModelDesc *d, const struct RtTensorSet *set, char *msg,
                       size_t n);
/* ---- the model context (rt_embed.c) ------------------------------------------------------ */

typedef struct RtCtx RtCtx;

/* What a context holds. Inference needs the weights (parameters and buffers), the io
 * region and the forward arena; training adds the optimizer state and the training step's
 * arena. Flags of rt_ctx_create_ex:
 *   RT_CTX_INFER  inference only: the optimizer state and training arena are never
 *                 allocated, a checkpoint's optimizer tensors are never read, and
 *                 rt_ctx_train_step fails;
 *   RT_CTX_TRAIN  the training memory is allocated at once (the program's `train`);
 *   neither       the training memory is added by the first rt_ctx_train_step, by
 *                 rt_ctx_prepare_training, or by loading a checkpoint that holds optimizer
 *                 state; until then the context uses only what inference needs.
 * Regions are zeroed and 64-byte aligned. */
#define RT_CTX_INFER 1u
#define RT_CTX_TRAIN 2u

/* A context with a pool of nthreads threads (<= 0: one per online CPU; 1: the calling thread
 * only). Parameters are zero until rt_ctx_init or rt_ctx_load. mem == NULL: the context
 * allocates its memory; otherwise it lives in caller memory of `size` bytes, 64-byte aligned,
 * that it does not free: rt_ctx_infer_bytes(d) with RT_CTX_INFER, rt_ctx_memory_bytes(d)
 * without (a context in caller memory cannot grow, so it is laid out for training at once).
 * NULL with a message in err when the descriptor's ABI differs from this runtime's, the
 * memory is too small or misaligned, or memory runs out. */
RtCtx *rt_ctx_create_ex(const RtModelDesc *d, int nthreads, unsigned flags, void *mem,
                        size_t size, char *err, size_t errlen);
/* rt_ctx_create_ex(d, nthreads, 0, NULL, 0, ...) */
RtCtx *rt_ctx_create(const RtModelDesc *d, int nthreads, char *err, size_t errlen);
/* rt_ctx_create_ex(d, nthreads, 0, mem, size, ...): mem of rt_ctx_memory_bytes(d) bytes
 * (NAME_MEMORY_BYTES in a generated header) */
RtCtx *rt_ctx_create_in(const RtModelDesc *d, int nthreads, void *mem, size_t size, char *err,
                        size_t errlen);
/* the memory of a training context: weights, optimizer state, io, the larger arena (each
 * rounded up to 64 bytes) */
int64_t rt_ctx_memory_bytes(const RtModelDesc *d);
/* the memory of an inference context: weights, io, the forward arena (NAME_INFER_BYTES) */
int64_t rt_ctx_infer_bytes(const RtModelDesc *d);
/* allocates the training memory now (see the flags); 0 or -1 */
int rt_ctx_prepare_training(RtCtx *c);
void rt_ctx_destroy(RtCtx *c);
const RtModelDesc *rt_ctx_desc(const RtCtx *c);
const char *rt_ctx_error(const RtCtx *c);
int rt_ctx_find(const RtCtx *c, const char *name);
/* the storage of tensor idx inside its region (params or io); NULL for a bad index, and for
 * optimizer state while the context holds no training memory */
void *rt_ctx_data(RtCtx *c, int idx);
/* the same for reading only: with a device, the device's copy stays current (no upload
 * before the next step) */
const void *rt_ctx_data_read(RtCtx *c, int idx);
int32_t rt_ctx_threads(const RtCtx *c);

/* every parameter, buffer and optimizer state tensor the context holds from its initializer
 * (optimizer state added later is initialized with the same seed); step := 0 */
int rt_ctx_init(RtCtx *c, uint64_t seed);
/* Loads a checkpoint from a read-only mapping of the file, copying each tensor into place
 * (no buffer of the file is kept). Every trainable parameter must be present with the
 * descriptor's shape (dtypes are converted); a missing buffer or optimizer state tensor
 * keeps its initializer (a fresh optimizer), so weights saved by other tools load as well.
 * Tensors the model does not have are ignored and counted in *nunknown (may be NULL). The
 * step counter comes from the file's metadata ("nnc.step"), else from an "optimizer.step"
 * tensor, else 0.
 * Optimizer state is read only by a context that may train (see RT_CTX_INFER). */
int rt_ctx_load(RtCtx *c, const char *path, int *nunknown);
/* after a successful rt_ctx_load: "" or why the file may not belong to this model (its
 * metadata names another model or other dims; the shapes matched, so it was loaded) */
const char *rt_ctx_warning(const RtCtx *c);
/* sets "argument 'ARG' is NULL" as the context's error (the generated NAME.h's checks);
 * returns -1 */
int rt_ctx_null_arg(RtCtx *c, const char *arg);
/* Writes parameters, buffers and the optimizer state it holds atomically, from the
 * context's memory (no copy), with metadata naming the model,
 * its dims and the step counter; extra_meta_json (a JSON object of strings, or NULL) is
 * merged in. */
int rt_ctx_save(RtCtx *c, const char *path, const char *extra_meta_json);
int64_t rt_ctx_step(const RtCtx *c);
void rt_ctx_set_step(RtCtx *c, int64_t step);
void rt_ctx_set_seed(RtCtx *c, uint64_t seed); /* dropout seed (default 0) */

/* one batch: forward on what the io region holds */
int rt_ctx_forward(RtCtx *c);
/* forward over n samples: in[k] (NULL = leave the k-th input as it is, zero-filled at
 * create) and out[k] (NULL = not wanted); n must be >= 1. The last partial chunk is
 * padded with zeros and its padding dropped from the outputs. */
int rt_ctx_infer(RtCtx *c, int64_t n, const void *const *in, void *const *out);
/* one training step on one batch (in[k] as above, NULL = as the io region holds it);
 * *loss gets the loss (may be NULL). Fails when the model has no train section or the
 * context is for inference only; the first step adds the training memory. */
int rt_ctx_train_step(RtCtx *c, const void *const *in, float *loss);
/* The all-reduce of data-parallel training: fn must replace buf[0..count) with the mean of
 * the same buffer across every process (sum, then divide by their number), and return 0 or
 * non-zero on failure. Every process makes the same calls in the same order. */
typedef int (*RtAllreduceFn)(float *buf, size_t count, void *user);
/* rt_ctx_train_step with fn called on the gradients between the backward pass and the
 * optimizer step, bucket by bucket (RT_BUCKET_BYTES: small gradients are gathered into one
 * buffer, a larger one is passed in place in bucket-sized pieces); *loss is this process's
 * loss. fn NULL: exactly rt_ctx_train_step. Fails (before the update, the step counter
 * unchanged) when fn fails or when the model's step cannot be split (rt_model.h). */
int rt_ctx_train_step_allreduce(RtCtx *c, const void *const *in, RtAllreduceFn fn, void *user,
                                float *loss);
/* The all-reduce overlapping the backward pass: start(buf, count, user) begins replacing
 * buf[0..count) with its mean over the processes and returns at once (0, or non-zero on
 * failure); the step neither reads nor writes buf until wait(user) has completed every
 * started one (0, or non-zero on failure). Every process starts the same buckets in the same
 * order. */
typedef int (*RtAllreduceStartFn)(float *buf, size_t count, void *user);
typedef int (*RtAllreduceWaitFn)(void *user);
typedef struct RtAllreduceAsync {
  RtAllreduceStartFn start;
  RtAllreduceWaitFn wait;
  void *user;
} RtAllreduceAsync;
/* rt_ctx_train_step_allreduce with each bucket started as soon as the backward pass has
 * finished its gradients (the descriptor's grads[].ready marks), while the rest of the
 * backward pass runs; the same buckets and buffers as rt_ctx_train_step_allreduce, so with a
 * communicator that computes the same sums the two give the same bits. */
int rt_ctx_train_step_overlap(RtCtx *c, const void *const *in, RtAllreduceStartFn start,
                              RtAllreduceWaitFn wait, void *user, float *loss);
/* the bucket size of the all-reduce (default RT_BUCKET_BYTES; at least 4) */
void rt_ctx_set_bucket_bytes(RtCtx *c, int64_t bytes);
/* Synchronized batchnorm (a --sync-bn build, RtModelDesc.sync_bn): sum(buf, n, user) must
 * replace buf[0..n) with its sum over the processes (0, or non-zero to fail the step). The
 * training steps then normalize with the statistics of the global batch. NULL: local. A
 * step whose sum fails returns -1 and updates nothing (rt_ctx_train_step then runs the
 * split step where the build has one). */
typedef int (*RtStatsSumFn)(double *buf, int64_t n, void *user);
void rt_ctx_set_stats_sum(RtCtx *c, RtStatsSumFn sum, void *user);
/* A CUDA build whose step all-reduces on the device (RtHooks.grads_device): fn(arena, grads,
 * ngrads, user) gets the device address of the step's arena and the descriptor's gradients
 * there. rt_ctx_train_step then averages the gradients through it. NULL: none. */
typedef int (*RtDeviceAllreduceFn)(uint64_t arena, const RtGradInfo *grads, int64_t ngrads,
                                   void *user);
void rt_ctx_set_device_allreduce(RtCtx *c, RtDeviceAllreduceFn fn, void *user);
/* A CUDA build's all-reduce overlapping its backward launches (RtHooks.grads_ready_device):
 * start(dptr, count, k, stream, user) begins the mean over the processes of one bucket, the k
 * f32 device buffers (dptr[i], count[i]), on stream (a CUstream that waits for the launches
 * that finished them) and returns at once; wait(stream, user) completes every bucket started
 * in the step, on a GPU by queueing that on stream; 0, or non-zero on failure. */
typedef struct RtDeviceAllreduceAsync {
  int (*start)(const uint64_t *dptr, const int64_t *count, int64_t k, void *stream, void *user);
  int (*wait)(void *stream, void *user);
  void *user;
} RtDeviceAllreduceAsync;
/* A device build's step with the all-reduce overlapping its backward launches, in the
 * buckets of rt_ctx_train_step_overlap (same order, same rt_ctx_set_bucket_bytes): dev gets
 * each bucket's device buffers (a GPU); host is for a device whose memory is the host's
 * (cuda-emu): each bucket is gathered as by rt_ctx_train_step_overlap and passed to its
 * start and wait. rt_ctx_train_step then starts each bucket after the launch that finishes
 * its last gradient and waits before the first optimizer launch. Both NULL: off (the step
 * averages through rt_ctx_set_device_allreduce's function, if any). Copied. */
void rt_ctx_set_device_overlap(RtCtx *c, const RtAllreduceAsync *host,
                               const RtDeviceAllreduceAsync *dev);
/* A --sync-bn CUDA build's data-parallel step (RtHooks.sum_f64_device): fn(buf, n, user)
 * replaces the n doubles at device address buf by their sum over the processes. NULL: none
 * (the statistics are the process's own). */
typedef int (*RtStatsSumDeviceFn)(uint64_t buf, int64_t n, void *user);
void rt_ctx_set_stats_sum_device(RtCtx *c, RtStatsSumDeviceFn fn, void *user);
/* every f32 output, the loss, parameter, buffer and optimizer state tensor the context holds
 * is finite; else -1 with "weight 'fc1.weight': element 5 is NaN" for the first one found
 * (rt_check.c; `train --check-finite` runs it after every step) */
int rt_ctx_check_finite(RtCtx *c, char *err, size_t errlen);
/* With a device (RtModelDesc.device): the host<->device copies the context made so far:
 * counts[0] uploads, [1] bytes uploaded, [2] downloads, [3] bytes downloaded (all 0 without) */
void rt_ctx_transfers(const RtCtx *c, int64_t counts[4]);
/* With a device: entry train 0 (forward) or 1 (training step) on device memory, queued on
 * stream (a CUstream; NULL: the default stream) without waiting for it. d_in[k] is the k-th
 * input's device address (NULL: the value the device's io region holds), d_out[k] the k-th
 * output's (forward) or the loss's (training step), NULL to skip. A context of a CPU build
 * fails with the reason. */
int rt_ctx_run_device(RtCtx *c, int train, const void *const *d_in, void *const *d_out,
                      void *stream);
/* With a device: tensor idx's device address (NULL without a device). For weights, buffers
 * and optimizer state the device copy is made current first and is from then on the one
 * the context uses (the host copy is refreshed when next read). */
void *rt_ctx_device_data(RtCtx *c, int idx);
/* per-kernel profiling: on (1) every step the context runs stores a timestamp before each
 * kernel and after the last (a clock read per kernel); off (0, the default) costs one
 * untaken branch per kernel. -1 on failure (out of memory). */
int rt_ctx_profile(RtCtx *c, int on);
/* the time of each kernel of the last forward (train 0) or training step (train 1) run with
 * profiling on, in the descriptor's kernel order (kernels_forward / kernels_train): secs[i]
 * in seconds, at most n; returns the count (0 when profiling is off) */
int rt_ctx_profile_last(const RtCtx *c, int train, double *secs, int n);
/* kernel i of the forward (train 0) or training step (1): its name ("k3 gemm fc1") and the
 * cost model's estimate on the context's threads (est_s may be NULL); NULL out of range */
const char *rt_ctx_kernel_name(const RtCtx *c, int train, int i, double *est_s);

/* ---- the program main (rt_main.c) -------------------------------------------------------- */

/* `NAME info|init|infer|train|bench ...` for model d. fwd_inputs: the comma-separated names
 * of the inputs the forward pass reads (infer requires exactly these), or NULL for all.
 * Returns the exit status. */
int rt_program_main(const RtModelDesc *d, const char *fwd_inputs, int argc, char **argv);
/* the same with the loss `train --val` evaluates from the outputs (rt_val.h's one-line form,
 * written by the build; NULL or "": --val is refused with the reason) */
int rt_program_main_val(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss,
                        int argc, char **argv);

/* One of `size` processes training data-parallel (rt_mpi.c; docs/distributed.md): `train`
 * reads the rank-th shard of every global batch of size x batch samples, averages the
 * gradients and the loss through allreduce, and leaves the output (progress, the log, the
 * checkpoints) to rank 0. fatal is set when the program fails after training began, when
 * the other processes may be waiting in an all-reduce and must be stopped. */
typedef struct RtDist {
  int rank, size;
  RtAllreduceFn allreduce;
  /* 1 when every process passed the same hash, 0 when not, -1 on failure */
  int (*same)(uint64_t hash, void *user);
  /* what the communication cost so far, one line of text (NULL: nothing to say) */
  void (*summary)(void *user, char *buf, size_t n);
  void *user;
  int fatal;
  /* the overlapped all-reduce (start NULL: none; its user is the RtAllreduceAsync's), used
   * unless `train --no-overlap`; the sum of sync-bn statistics (NULL: none), with user */
  RtAllreduceAsync overlap;
  RtStatsSumFn stats_sum;
  /* the gradients' mean on the device, for a CUDA build's step (NULL: none; user) */
  RtDeviceAllreduceFn grads_device;
  /* the sum of sync-bn statistics on the device, for a CUDA build's step (NULL: none; user) */
  RtStatsSumDeviceFn stats_sum_device;
  /* a GPU build's all-reduce overlapping the backward launches (start NULL: none; a cuda-emu
   * build's uses overlap on its host memory), unless `train --no-overlap` */
  RtDeviceAllreduceAsync overlap_device;
} RtDist;
/* rt_program_main_val as one process of dist (NULL: rt_program_main_val) */
int rt_program_main_dist(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss,
                         int argc, char **argv, RtDist *dist);

#endif
