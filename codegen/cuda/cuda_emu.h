/* cuda_emu.h — runs generated CUDA C on the host CPU, for tests (C++17).
 *
 * The generated source includes this header instead of the device wrappers when compiled
 * with -DNNC_CUDA_EMU by the host C++ compiler (see cuda_prelude.c). A grid's blocks run one
 * after another; a block's threads are cooperative fibers (ucontext) that run until they
 * reach a barrier, so nnc_syncthreads is a real barrier. Warp-level operations (shuffles,
 * ldmatrix, mma.sync) are performed per warp: every lane deposits its operands, waits until
 * all 32 lanes of its warp have arrived, then reads what the PTX ISA's fragment layout gives
 * it. cp.async copies land as late as allowed in forward order (when the issuing thread
 * waits for their group) and at once in the other orders, and
 * dynamic shared memory starts every block filled with 0xFF bytes (NaN in every float type),
 * so a missing wait or barrier shows up as a NaN or a wrong value. Threads can be scheduled
 * forward, reversed or shuffled (nnc_emu_set_order): a race outside a barrier changes the
 * result between orders.
 *
 * Links with the runtime (16-bit float conversions). The emulated "current thread" (threadIdx and friends) is per OS thread, as on a device. */
#ifndef NNC_CUDA_EMU_H
#define NNC_CUDA_EMU_H
#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define NNC_EMU_ASAN 1
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace nnc_emu {

enum State { RUNNABLE, AT_BLOCK, AT_WARP, DONE };
enum Order { FORWARD, REVERSE, SHUFFLED };

struct Copy {
  unsigned char *dst;
  unsigned char data[16];
};

/* fiber stacks, allocated once per host thread and reused by every launch (not cleared: a
 * fiber's frames are written before they are read) */
enum { STACK_BYTES = 256 * 1024 };
inline char *stack_pool(size_t i) {
  static thread_local std::vector<std::unique_ptr<char[]>> pool;
  while (pool.size() <= i) pool.emplace_back(new char[STACK_BYTES]);
  return pool[i].get();
}

struct Fiber {
  ucontext_t ctx;
  char *stack = nullptr; /* STACK_BYTES from stack_pool() */
  State st;
  dim3 tid;
  int lin;
  std::vector<Copy> open;
  std::vector<std::vector<Copy>> groups;
};

enum { XSLOT = 64 }; /* bytes of warp-exchange space per lane */

struct Emu {
  ucontext_t sched;
  const void *sched_bottom = nullptr; /* the scheduler's stack, for AddressSanitizer */
  size_t sched_size = 0;
  std::vector<Fiber> fib;
  Fiber *cur = nullptr;
  dim3 grid, block, bid;
  unsigned char *smem = nullptr;
  size_t smem_bytes = 0;
  std::vector<unsigned char> xbuf;
  std::function<void()> body;
};

inline Emu *&state() {
  static thread_local Emu *e;
  return e;
}
inline Order &order() {
  static thread_local Order o = FORWARD;
  return o;
}

[[noreturn]] inline void fail(const char *what) {
  Emu *e = state();
  if (e && e->cur)
    fprintf(stderr, "cuda-emu: %s (block %u,%u,%u thread %d)\n", what, e->bid.x, e->bid.y,
            e->bid.z, e->cur->lin);
  else
    fprintf(stderr, "cuda-emu: %s\n", what);
  abort();
}

/* AddressSanitizer must be told of every stack switch (no-ops without it). `fake` keeps
 * the leaving side's fake stack; NULL ends the leaving fiber's. */
inline void asan_leave(void **fake, const void *bottom, size_t size) {
#ifdef NNC_EMU_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
inline void asan_arrive(void *fake, const void **from_bottom, size_t *from_size) {
#ifdef NNC_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, from_bottom, from_size);
#else
  (void)fake, (void)from_bottom, (void)from_size;
#endif
}

inline void yield_(State s) {
  Emu *e = state();
  Fiber *f = e->cur;
  f->st = s;
  void *fake = nullptr;
  asan_leave(&fake, e->sched_bottom, e->sched_size);
  swapcontext(&f->ctx, &e->sched);
  asan_arrive(fake, nullptr, nullptr);
}

inline void entry() {
  Emu *e = state();
  asan_arrive(nullptr, &e->sched_bottom, &e->sched_size);
  e->body();
  e->cur->st = DONE;
  asan_leave(nullptr, e->sched_bottom, e->sched_size);
}

inline bool in_smem(const void *p, size_t n) {
  const unsigned char *c = (const unsigned char *)p;
  Emu *e = state();
  return c >= e->smem && c + n <= e->smem + e->smem_bytes;
}

/* releases warps whose 32 lanes all wait, or the block when every live thread waits */
inline bool release(Emu *e) {
  int n = (int)e->fib.size(), live = 0, at_block = 0;
  bool any = false;
  for (int w = 0; w * 32 < n; w++) {
    int at = 0;
    for (int l = w * 32; l < w * 32 + 32 && l < n; l++) at += e->fib[l].st == AT_WARP;
    if (at == 32) {
      for (int l = w * 32; l < w * 32 + 32; l++) e->fib[l].st = RUNNABLE;
      any = true;
    }
  }
  for (Fiber &f : e->fib) live += f.st != DONE, at_block += f.st == AT_BLOCK;
  if (live > 0 && at_block == live) {
    for (Fiber &f : e->fib)
      if (f.st == AT_BLOCK) f.st = RUNNABLE;
    any = true;
  }
  return any;
}

inline std::vector<int> schedule(int n, unsigned seed) {
  std::vector<int> p((size_t)n);
  for (int i = 0; i < n; i++) p[(size_t)i] = order() == REVERSE ? n - 1 - i : i;
  if (order() == SHUFFLED)
    for (int i = n - 1; i > 0; i--) {
      seed = seed * 1103515245u + 12345u;
      int j = (int)((seed >> 8) % (unsigned)(i + 1));
      int t = p[(size_t)i];
      p[(size_t)i] = p[(size_t)j], p[(size_t)j] = t;
    }
  return p;
}

/* a separate frame: getcontext returns twice, which must not touch the caller's loop state */
__attribute__((noinline)) inline void make_fiber(Fiber &f, ucontext_t *link) {
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = STACK_BYTES;
  f.ctx.uc_link = link;
  makecontext(&f.ctx, entry, 0);
}

inline void start_fibers(Emu *e) {
  int k = 0;
  for (unsigned z = 0; z < e->block.z; z++)
    for (unsigned y = 0; y < e->block.y; y++)
      for (unsigned x = 0; x < e->block.x; x++, k++) {
        Fiber &f = e->fib[(size_t)k];
        f.tid = dim3(x, y, z), f.lin = k, f.st = RUNNABLE;
        f.open.clear(), f.groups.clear();
        make_fiber(f, &e->sched);
      }
}

inline void run_block(Emu *e, unsigned seed) {
  start_fibers(e);
  memset(e->smem, 0xFF, e->smem_bytes);
  std::vector<int> ord = schedule((int)e->fib.size(), seed);
  for (;;) {
    bool ran = false, live = false;
    for (int i : ord) {
      Fiber &f = e->fib[(size_t)i];
      if (f.st != RUNNABLE) continue;
      e->cur = &f;
      void *fake = nullptr;
      asan_leave(&fake, f.stack, STACK_BYTES);
      swapcontext(&e->sched, &f.ctx);
      asan_arrive(fake, nullptr, nullptr);
      ran = true;
    }
    for (Fiber &f : e->fib) live |= f.st != DONE;
    if (!live) break;
    if (!release(e) && !ran) fail("deadlock: threads wait at different barriers");
  }
  e->cur = nullptr;
}

template <class F> inline void warp_op(const void *in, size_t n, F out) {
  Emu *e = state();
  if (e->fib.size() % 32) fail("warp operation in a block that is not whole warps");
  memcpy(&e->xbuf[(size_t)e->cur->lin * XSLOT], in, n);
  yield_(AT_WARP);
  out();
  yield_(AT_WARP);
}
/* the deposit of lane l of the current warp */
inline const unsigned char *lane_slot(int l) {
  Emu *e = state();
  return &e->xbuf[(size_t)((e->cur->lin & ~31) + l) * XSLOT];
}
inline int lane() { return state()->cur->lin & 31; }

inline float bits_f(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline unsigned f_bits(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}
inline unsigned reg(int l, int i) {
  unsigned u;
  memcpy(&u, lane_slot(l) + 4 * i, 4);
  return u;
}
inline unsigned short half_of(unsigned r, int hi) { return (unsigned short)(hi ? r >> 16 : r & 0xFFFF); }

} /* namespace nnc_emu */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
/* static __shared__ arrays: one copy, and blocks run one after another, so per block (not
 * poisoned between blocks; generated kernels use dynamic shared memory, which is) */
#define __shared__ static
#define NNC_DEV static inline
#define NNC_UNROLL
#define NNC_EXTERN_SMEM(name) unsigned char *name = nnc_emu::state()->smem
#define threadIdx (nnc_emu::state()->cur->tid)
#define blockIdx (nnc_emu::state()->bid)
#define blockDim (nnc_emu::state()->block)
#define gridDim (nnc_emu::state()->grid)

/* ---- conversions, rounded as the device rounds ------------------------------------------ */

/* the runtime's conversions (runtime/rt_tensor.c): round to nearest even, overflow to
 * infinity, subnormals kept, NaN quieted — as cvt.rn on the device */
extern "C" {
float rt_f16_to_f32(uint16_t h);
uint16_t rt_f32_to_f16(float f);
float rt_bf16_to_f32(uint16_t h);
uint16_t rt_f32_to_bf16(float f);
}
inline float nnc_bf16_to_f32(unsigned short h) { return rt_bf16_to_f32(h); }
inline float nnc_f16_to_f32(unsigned short h) { return rt_f16_to_f32(h); }
#ifndef NNC_EMU_MUTANT_RTZ
inline unsigned short nnc_f32_to_bf16(float f) { return rt_f32_to_bf16(f); }
inline unsigned short nnc_f32_to_f16(float f) { return rt_f32_to_f16(f); }
#else
/* a deliberate fault for the tests' mutation check: round toward zero instead of to nearest
 * (the magnitude of a result that rounded up is lowered by one unit in the last place) */
inline unsigned short nnc_emu_rtz(unsigned short h, float f, float (*back)(unsigned short)) {
  return f == f && fabsf(back(h)) > fabsf(f) ? (unsigned short)(h - 1) : h;
}
inline unsigned short nnc_f32_to_bf16(float f) { return nnc_emu_rtz(rt_f32_to_bf16(f), f, rt_bf16_to_f32); }
inline unsigned short nnc_f32_to_f16(float f) { return nnc_emu_rtz(rt_f32_to_f16(f), f, rt_f16_to_f32); }
#endif
/* cvt.rna.tf32.f32: nearest, ties away from zero, low 13 bits cleared */
inline unsigned nnc_f32_to_tf32(float x) {
  unsigned u = nnc_emu::f_bits(x);
  if ((u & 0x7F800000u) == 0x7F800000u) return u;
  return (u + 0x1000u) & 0xFFFFE000u;
}
inline float nnc_erff(float x) { return erff(x); }
inline float nnc_neg_inf(void) { return -INFINITY; }

/* 128-bit vector accesses must be 16-byte aligned, as on the device */
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 nnc_ld4(const float *p) {
  if ((uintptr_t)p & 15) nnc_emu::fail("float4 load from an address not 16-byte aligned");
  float4 v;
  memcpy(&v, p, sizeof v);
  return v;
}
inline void nnc_st4(float *p, float4 v) {
  if ((uintptr_t)p & 15) nnc_emu::fail("float4 store to an address not 16-byte aligned");
  memcpy(p, &v, sizeof v);
}

/* ---- barriers and warp operations --------------------------------------------------------- */

inline void nnc_syncthreads(void) { nnc_emu::yield_(nnc_emu::AT_BLOCK); }

inline float nnc_shfl_xor(float v, int m) {
  float r = 0;
  nnc_emu::warp_op(&v, sizeof v, [&] { memcpy(&r, nnc_emu::lane_slot(nnc_emu::lane() ^ (m & 31)), 4); });
  return r;
}

/* D (16x8) += A (16xK) · B (Kx8) over a warp, D in the C/D fragment layout: groupID
 * g = lane/4, t = lane%4, c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1). at(r, k) and
 * bt(k, c) read an operand from the lanes' deposited registers a0..a3 (0..3), b0, b1 (4, 5).
 * Products are exact in f32 for these input types; they are added in k order. */
template <class FA, class FB>
inline void nnc_emu_mma_m16n8(float *d, const unsigned *a, const unsigned *b, int kdim, FA at, FB bt) {
  using namespace nnc_emu;
  unsigned in[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  warp_op(in, sizeof in, [&] {
    int g = lane() >> 2, t = lane() & 3;
    float out[4];
    for (int i = 0; i < 4; i++) {
      int r = g + 8 * (i >> 1), c = 2 * t + (i & 1);
      float s = d[i];
      for (int k = 0; k < kdim; k++) s = fmaf(at(r, k), bt(k, c), s);
      out[i] = s;
    }
    memcpy(d, out, sizeof out);
  });
}

/* mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32. A (16x8): a0 (g, t), a1 (g+8, t),
 * a2 (g, t+4), a3 (g+8, t+4); B (8x8): b0 (t, g), b1 (t+4, g). The tensor cores read only
 * the 19 high bits of a tf32 operand. */
inline void nnc_mma_m16n8k8_tf32(float *d, const unsigned *a, const unsigned *b) {
  using nnc_emu::bits_f, nnc_emu::reg;
  nnc_emu_mma_m16n8(
      d, a, b, 8, [](int r, int k) { return bits_f(reg((r & 7) * 4 + (k & 3), (r >> 3) + 2 * (k >> 2)) & 0xFFFFE000u); },
      [](int k, int c) { return bits_f(reg(c * 4 + (k & 3), 4 + (k >> 2)) & 0xFFFFE000u); });
}

/* m16n8k16 with 16-bit operands, two per register (lower half = lower column/row index).
 * A (16x16): a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..);
 * B (16x8): b0 (2t..2t+1, g), b1 (2t+8..2t+9, g). */
inline void nnc_emu_mma_16816(float *d, const unsigned *a, const unsigned *b, float (*cv)(unsigned short)) {
  using nnc_emu::half_of, nnc_emu::reg;
  nnc_emu_mma_m16n8(
      d, a, b, 16,
      [cv](int r, int k) { return cv(half_of(reg((r & 7) * 4 + ((k & 7) >> 1), (r >> 3) + 2 * (k >> 3)), k & 1)); },
      [cv](int k, int c) { return cv(half_of(reg(c * 4 + ((k & 7) >> 1), 4 + (k >> 3)), k & 1)); });
}
inline void nnc_mma_m16n8k16_bf16(float *d, const unsigned *a, const unsigned *b) {
  nnc_emu_mma_16816(d, a, b, nnc_bf16_to_f32);
}
inline void nnc_mma_m16n8k16_f16(float *d, const unsigned *a, const unsigned *b) {
  nnc_emu_mma_16816(d, a, b, nnc_f16_to_f32);
}

/* ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes 8i..8i+7 give the row addresses
 * of matrix i (16 bytes each, 16-byte aligned, in shared memory). Without .trans lane l
 * receives row l/4, columns 2(l%4), 2(l%4)+1 of each matrix; with .trans the transpose. */
inline void nnc_emu_ldmatrix(unsigned *r, const void *p, bool trans) {
  using namespace nnc_emu;
  if (((uintptr_t)p & 15) || !in_smem(p, 16)) fail("ldmatrix: row address not 16-byte aligned in shared memory");
  warp_op(&p, sizeof p, [&] {
    int l = lane();
    for (int i = 0; i < 4; i++) {
      unsigned short h[2];
      for (int j = 0; j < 2; j++) {
        int row = trans ? 2 * (l & 3) + j : l >> 2, col = trans ? l >> 2 : 2 * (l & 3) + j;
        const unsigned char *rp;
        memcpy(&rp, lane_slot(8 * i + row), sizeof rp);
        memcpy(&h[j], rp + 2 * col, 2);
      }
      r[i] = (unsigned)h[0] | (unsigned)h[1] << 16;
    }
  });
}
inline void nnc_ldmatrix_x4(unsigned *r, const void *p) { nnc_emu_ldmatrix(r, p, false); }
inline void nnc_ldmatrix_x4_trans(unsigned *r, const void *p) { nnc_emu_ldmatrix(r, p, true); }

/* ---- cp.async: deferred until the issuing thread waits for the group ------------------- */

inline void nnc_cp_async16(void *dst, const void *src, int src_bytes) {
  using namespace nnc_emu;
  if (((uintptr_t)dst & 15) || !in_smem(dst, 16)) fail("cp.async: destination not 16-byte aligned in shared memory");
  if (src_bytes < 0 || src_bytes > 16) fail("cp.async: source size outside 0..16");
  if (src_bytes > 0 && ((uintptr_t)src & 15)) fail("cp.async: source not 16-byte aligned");
  Copy c;
  c.dst = (unsigned char *)dst;
  memset(c.data, 0, 16);
  if (src_bytes > 0) memcpy(c.data, src, (size_t)src_bytes);
  if (order() == FORWARD) state()->cur->open.push_back(c);
  else memcpy(c.dst, c.data, 16); /* lands at once: a refill racing with readers shows */
}
inline void nnc_cp_async_commit(void) {
  nnc_emu::Fiber *f = nnc_emu::state()->cur;
  f->groups.push_back(f->open);
  f->open.clear();
}
template <int N> inline void nnc_cp_async_wait(void) {
  nnc_emu::Fiber *f = nnc_emu::state()->cur;
  while (f->groups.size() > (size_t)N) {
    for (const nnc_emu::Copy &c : f->groups.front()) memcpy(c.dst, c.data, 16);
    f->groups.erase(f->groups.begin());
  }
}

/* ---- launching ------------------------------------------------------------------------- */

inline void nnc_emu_set_order(nnc_emu::Order o) { nnc_emu::order() = o; }

/* runs kernel k over the grid, blocks in order, each block's threads as fibers */
template <class... P, class... A>
inline void nnc_emu_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem_bytes, A... args) {
  using namespace nnc_emu;
  Emu e;
  size_t nthreads = (size_t)block.x * block.y * block.z;
  if (nthreads == 0 || nthreads > 1024) fail("launch: block of 0 or more than 1024 threads");
  e.grid = grid, e.block = block;
  e.fib.resize(nthreads);
  for (size_t i = 0; i < nthreads; i++) e.fib[i].stack = stack_pool(i);
  e.xbuf.resize(nthreads * XSLOT);
  e.smem_bytes = smem_bytes;
  e.smem = (unsigned char *)aligned_alloc(16, smem_bytes ? (smem_bytes + 15) / 16 * 16 : 16);
  if (!e.smem) fail("launch: out of memory");
  e.body = [&] { k(args...); };
  Emu *saved = state();
  state() = &e;
  unsigned seed = 1;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        e.bid = dim3(x, y, z);
        run_block(&e, seed++);
      }
  state() = saved;
  free(e.smem);
}
#endif
