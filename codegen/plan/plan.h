/* plan.h — the kernel plan: what every backend (codegen/llvm/, and a GPU one) lowers.
 * Depends on ir/ and passes/, never on a code generator.
 *
 * A backend describes itself with one CgTarget (capabilities as data: the ops it lowers, the
 * dtypes it computes in, how it runs convolutions, its vector or warp width, the hardware the
 * tiles pass decides for). From it and a graph, cg_plan cuts the graph into kernels (fusion
 * decisions), places every value in a region and plans the arena; cg_model_plan does that
 * for a model's forward and training-step graphs around one tensor table (the descriptor's,
 * runtime/rt_model.h). The backend then only emits what the plan says.
 *
 * Storage: every value a kernel writes or reads lives in one of three regions (rt_model.h):
 * params (PARAM nodes, in-place optimizer updates), io (inputs, forward outputs, the loss),
 * arena (everything else, planned here by liveness in kernel order with best-fit reuse).
 * Folded constants (a CONST with attr.data) are in the plan's own read-only table.
 * RESHAPE and identity dropout are aliases of their operand's storage. Values inside a fused
 * elementwise group that nobody outside the group reads are never stored.
 *
 * The optimizer step (the PH_OPT nodes of a training graph) is kept apart: no kernel mixes
 * its nodes with others and its kernels run last, from `split` on. Between the two halves
 * every gradient lies in the arena, where a runtime can average it across processes before
 * the update reads it (rt_model.h: train_backward, train_apply).
 */
#ifndef NNC_PLAN_H
#define NNC_PLAN_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../../ir/ir.h"
#include "../../passes/passes.h"
#include "../../passes/hw.h"
#include "../../passes/tiles.h"
#include "../../runtime/rt_mem.h"
#include "../../runtime/rt_model.h"

/* the most bytes one value, scratch or region may take: sums of a few stay in int64_t */
#define CG_MAX_BYTES (INT64_C(1) << 61)

/* ---- the backend description ----------------------------------------------------------- */

typedef enum {
  CG_CONV_IM2COL, /* per image and group: unfold into a K x P f32 scratch, then one GEMM */
  CG_CONV_DIRECT, /* no scratch (implicit GEMM) */
  CG_CONV_GATHER  /* the forward convolution and the filter gradient gather the unfolded image
                     while packing the GEMM's panels (no scratch); the data gradient unfolds
                     into scratch (im2col's transpose, col2im) */
} CgConvStrategy;

typedef struct CgTarget {
  const char *name;       /* "llvm-cpu": for messages and the printed plan */
  bool native[OP_COUNT];  /* ops the backend lowers; a needed node of another op is an error */
  uint32_t dtypes;        /* bit (1u << DType) per dtype values may have */
  CgConvStrategy conv;    /* 1x1 stride-1 unpadded convolutions never need scratch */
  int vector_width;       /* f32 lanes of a vector (CPU), threads of a warp (GPU) */
  bool conv_bn;           /* folds an inference batchnorm after a convolution into the
                             convolution's epilogue (scratch: a scale and a shift a channel) */
  bool depthwise_direct;  /* computes depthwise convolutions and their gradients without
                             im2col (CgConv.depthwise) */
  bool bn_fused;          /* a training batchnorm's kernel also writes the batch mean and
                             variance its running statistics read (their mean and var
                             nodes), and its backward's kernel gamma's gradient (bn_dgamma)
                             and beta's (the sum of dy over its axes): one pass of
                             statistics each */
  bool conv_few;          /* computes the forward convolutions the tiles pass chose to run
                             directly (TileDecision.conv_few: few input channels, CgConv.few) */
  bool prepack;           /* packs the constant operand (a parameter) of an inference plan's
                             f32 GEMMs and convolutions once, into the arena (cg_plan_prepack) */
  bool winograd;          /* with prepack: computes the inference plan's 3x3 stride-1
                             convolutions where the tiles pass chose Winograd F(4,3)
                             (TileDecision.wino) that way, the transformed filter packed once
                             (docs/cpu-convolutions.md); off: `nnc build --no-winograd` */
  bool epi_group;         /* inference plans: a GEMM's or convolution's kernel also computes
                             the elementwise group that follows its epilogue (CgKernel.nepi) */
  bool dw_fuse;           /* inference plans: a direct depthwise forward read only by a
                             pointwise convolution whose GEMM reads its image in place is
                             computed inside that convolution's kernel, a strip of rows at a
                             time (CgKernel.dw, TileDecision.dw_rows); off: `nnc build
                             --no-dw-fuse` */
  int dw_strip;           /* with dw_fuse, > 0: every pair it allows is fused, whatever the
                             tiles' model says, in strips of this many rows (rounded as the
                             tiles' are): tests of strip boundaries on any host; 0: the
                             tiles pass's choice */
  const HwTarget *hw;     /* what the tiles pass decides for; NULL: no tile decisions */
} CgTarget;

static inline bool cg_target_dtype(const CgTarget *t, DType dt) {
  return (unsigned)dt < 32 && (t->dtypes >> (unsigned)dt & 1u);
}

/* besides RT_REGION_PARAMS / RT_REGION_IO; CONST: the plan's read-only table of folded
 * constants (CgPlan.consts), which the backend places in the program */
enum { CG_REGION_NONE = -1, CG_REGION_ARENA = 2, CG_REGION_CONST = 3 };

typedef struct CgVal {
  int rank;
  int64_t shape[IR_MAX_RANK];
  int64_t numel, nbytes;
  bool needed;   /* contributes to an output, the loss or an ASSIGN */
  bool stored;   /* written to memory (else: in registers of its group, or unneeded) */
  int region;    /* CG_REGION_*, RT_REGION_* */
  int64_t offset;
  int root;      /* node whose storage this value uses (itself unless an alias) */
  int kernel;    /* producing kernel, -1 for leaves and aliases */
} CgVal;

typedef enum {
  CGK_EW,     /* fused elementwise group over one iteration shape */
  CGK_GEMM,   /* MATMUL, with bias/relu epilogue members */
  CGK_CONV,   /* CONV2D / CONV2D_BWD_DATA / CONV2D_BWD_FILTER (+ epilogue for CONV2D) */
  CGK_NODE,   /* any other single node (runtime kernels, data movement, const fills) */
  CGK_COPY    /* copy of src's storage into dst's (deferred ASSIGNs, outputs) */
} CgKernelKind;

typedef struct CgKernel {
  CgKernelKind kind;
  int anchor;   /* execution order key: kernels run in increasing anchor */
  int node;     /* GEMM/CONV/NODE: the op node; EW: the last member */
  int *members; /* EW: the member nodes in node order; GEMM/CONV: the op then epilogue */
  int nmembers, cap;
  int out;      /* the node whose value the kernel produces last (GEMM: end of the chain) */
  bool bias, relu; /* GEMM/CONV epilogue */
  int bias_node;
  bool bn;         /* CONV2D epilogue: an inference batchnorm (bn_node) folded into it */
  int bn_node;
  /* GEMM/CONV of an inference plan on a target with epi_group: the elementwise group that
   * follows the epilogue above, members[epi_first, epi_first + nepi) in node order, computed
   * on the accumulators before the store. Its values: epi_base's (the op's value after bias,
   * batchnorm and relu), the group's own, folded fills, and the tensors cg_epi_operands
   * lists; only its last member is read outside the kernel (it is `out`). */
  int epi_first, nepi, epi_base;
  bool sealed;
  bool opt;     /* runs after the split: an optimizer kernel or a final copy */
  bool sync_stats; /* a training batchnorm node (or the MEAN/VAR of its running statistics)
                      whose statistics and backward sums the backend passes through the
                      step's RtHooks.sum_f64 (sync-bn) */
  bool wino;        /* CONV2D, or the CONV2D_BWD_DATA of a 3x3 stride-1 convolution, as
                       Winograd F(4,3) (target winograd and prepack, the tiles pass's choice):
                       input transform into scratch, 36 GEMMs with the transformed filter as
                       A, output transform + epilogue; or its CONV2D_BWD_FILTER
                       (CgConv.wino_wgrad: the filter gradient's transforms and GEMMs) */
  bool wino_step;   /* wino whose filter is not packed once (cg_wino_packs_once: a training
                       step's filter changes every step; a data gradient's): each call
                       transforms it straight into packed panels in the kernel's scratch
                       (before V and M); packed_rpad, packed_k and packed_groups describe
                       those panels, packed stays false */
  bool prepacked;   /* GEMM/CONV on the CPU: the constant operand (a dense layer's weight, a
                      convolution's filter) is packed into panels once per program, not in
                      every call; the estimate then has no packing term for it (plan_cost.c) */
  int copy_src, copy_dst_region; /* CGK_COPY */
  int64_t copy_dst_offset, copy_bytes;
  int64_t scratch_offset, scratch_bytes; /* arena scratch (im2col) */
  const TileDecision *tile; /* GEMM/CONV: the tiles pass's decision for node, or NULL */
  /* the constant operand packed once (cg_plan_prepack): a matmul's B, a convolution's filter
   * (A), per group; in the arena at packed_offset, groups · packed_rpad · packed_k floats,
   * valid while the i64 at packed_flag is not 0 */
  bool packed;
  int64_t packed_offset, packed_flag, packed_rpad, packed_k, packed_groups;
  /* CONV2D of a pointwise convolution (CgTarget.dw_fuse): the depthwise convolution whose
   * output is its image, fused into it (plan_dw_fuse): that kernel as it was planned (its
   * node, epilogue, group and members; its batchnorm table at dw->scratch_offset, after this
   * kernel's own scratch), computed a strip of dw_rows output rows of one image at a time
   * into a per-thread scratch that the GEMM reads as B; never stored. Its members are also
   * this kernel's, from dw_first on. NULL: none. */
  struct CgKernel *dw;
  int dw_first, dw_rows;
} CgKernel;

typedef struct CgPlan {
  const IrGraph *g;
  const CgTarget *target;
  CgVal *v;        /* [g->nnodes] */
  int *kof;        /* [g->nnodes] kernel of each node, -1 none */
  bool *inplace;   /* [g->nnodes] ASSIGN written straight into its PARAM */
  CgKernel *k;     /* in execution order after cg_plan */
  int nk, capk;
  bool phased;     /* the optimizer's nodes (PH_OPT) depend on the rest, never the reverse */
  int split;       /* kernels [0, split) compute everything but the optimizer step (the
                      gradients then lie in the arena); [split, nk) the PH_OPT nodes and the
                      final copies. nk for a graph without optimizer nodes. */
  int64_t arena_bytes;
  unsigned char *consts; /* the folded CONSTs (passes/fold.c) it reads, 64-byte aligned */
  int64_t consts_bytes;
  /* cg_plan_prepack: the packed operands at the end of the arena, their flags first
   * ([flags_at, flags_at + flags_bytes): zero means "pack again") */
  int64_t packed_bytes, packed_flags_at, packed_flags_bytes;
} CgPlan;

/* Where leaves and outputs of one graph live: filled by the caller from the descriptor. */
typedef struct CgBinding {
  int *region;      /* [nnodes] preassigned region for PARAM/INPUT nodes, -1 otherwise */
  int64_t *offset;  /* [nnodes] */
  int nout;         /* io slots for values: node, offset (outputs and the loss) */
  int *out_node;
  int64_t *out_offset;
} CgBinding;

/* Builds the plan of g for target t; tiles: the tiles pass's decisions for g (NULL: none).
 * -1 with a diagnostic (an op or dtype the target does not have, a bad shape). */
int cg_plan(CgPlan *p, const IrGraph *g, const CgTarget *t, const TilePlan *tiles,
            const CgBinding *b, Diag *d);
void cg_plan_free(CgPlan *p);
/* shape of node i at the graph's current dims; returns the rank */
int cg_shape(const IrGraph *g, int i, int64_t *shape);
/* the kernel plan as text (nnc emit --emit=kernels): kernels in order, members, epilogues,
 * reads and writes with their region offsets, scratch, tiles */
void cg_plan_print(FILE *out, const CgPlan *p);
/* the roots kernel ki reads from memory, each once, in member and operand order: the
 * "reads" line of the printed plan; roots has room for nmembers * IR_MAX_IN; returns the
 * count */
int cg_kernel_reads(const CgPlan *p, int ki, int *roots);
const char *cg_kernel_kind_name(CgKernelKind k); /* "ew", "gemm", ... */
/* Synchronized batchnorm: marks the kernels of p before the split that compute batch
 * statistics (training BATCHNORM, BATCHNORM_BWD, BN_DGAMMA, and the MEAN and VAR that update
 * a training batchnorm's running statistics) as sync_stats; returns how many.
 * A backend that lowers such a kernel calls the step's reduction hook between its passes. */
int cg_plan_sync_stats(CgPlan *p);

/* The largest register tiles of any CPU backend (32 rows of A, 8 vectors of 16 lanes of B):
 * a packed operand has room for its rows rounded up to any tile up to these, so that its
 * bytes do not depend on the tile decision or the vector width. */
#define CG_PACK_ROWS_A 32
#define CG_PACK_ROWS_B 128
/* Inference plans (no ASSIGN) on a target with `prepack`: marks each f32 GEMM whose B is a
 * parameter matrix (and that has more than TILES_CPU_STREAM_M rows) and each convolution
 * with a parameter filter (not depthwise) `packed`, and places their panels and flags at the
 * end of the arena. Returns the number of kernels marked; -1 when the bytes overflow. */
int cg_plan_prepack(CgPlan *p);
/* an inference plan: no needed ASSIGN (nothing is updated in place) */
bool cg_plan_inference(const CgPlan *p);

/* the fused elementwise group of a GEMM/CONV kernel (CgKernel.nepi): at most CG_EPI_MAX
 * members reading at most CG_EPI_MAX_IN tensors besides its own values and fills */
#define CG_EPI_MAX 12
#define CG_EPI_MAX_IN 4
typedef enum {
  CG_EPI_FULL,   /* the output's shape, read at the output's index (a residual) */
  CG_EPI_CHAN,   /* one value per output channel: [O,1,1] or [1,O,1,1] (convolutions) */
  CG_EPI_COL,    /* one value per output column: [N] or [1,..,1,N] (matmuls) */
  CG_EPI_SCALAR  /* one value */
} CgEpiKind;
typedef struct CgEpiOperand {
  int node;
  CgEpiKind kind;
} CgEpiOperand;
/* the tensors k's fused group reads from memory, in member and operand order; the count */
int cg_epi_operands(const CgPlan *p, const CgKernel *k, CgEpiOperand *ops);
/* node c is a member of k's fused group */
bool cg_epi_member(const CgKernel *k, int c);
/* k's group as a Winograd output transform applies it (rt_k_wino_out): y + *res (a tensor
 * of the output's shape), then relu where *relu; false for any other group */
bool cg_epi_wino(const CgPlan *p, const CgKernel *k, int *res, bool *relu);

/* ---- a model: tensor table, bindings, the plans of both graphs ------------------------- */

/* one row of the descriptor's tensor table and the node it is in each graph (-1: none) */
typedef struct CgTensor {
  RtTensorInfo info;
  int fwd_node, train_node;
} CgTensor;

/* the gradient of a trainable parameter where the training plan leaves it at the split */
typedef struct CgGrad {
  int tensor;     /* the parameter's row in the table */
  int64_t offset; /* in the arena */
  int64_t numel;  /* f32 elements */
  int ready;      /* the last kernel before the split that writes or reads its storage */
} CgGrad;

typedef struct CgModelPlan {
  CgTensor *t;
  int nt, capt;
  int64_t params_bytes, io_bytes;
  bool too_large;         /* a region would exceed CG_MAX_BYTES (at too_large_at) */
  SrcLoc too_large_at;
  char **names; /* owned tensor names */
  int nnames;
  CgBinding bf, bt;
  CgPlan pf, pt;          /* pt only with a training graph */
  bool have_pf, have_pt;
  CgGrad *grads;          /* one per distinct gradient buffer, in table order */
  int ngrads;
  bool split_ok;          /* the step can run as train_backward + train_apply: it is phased,
                             has optimizer kernels, and every gradient is an f32 arena value
                             (or a constant, the same in every process, left out of grads) */
  Arena *tiles_arena;     /* tile decisions run by cg_model_plan */
} CgModelPlan;

/* The tensor table derives from the graphs alone: parameters and buffers are the forward
 * graph's PARAM nodes (trainable or not), optimizer state the PARAM nodes only the training
 * graph has, inputs the forward INPUT nodes, outputs the forward outputs, and the loss the
 * training graph's output "loss". Tiles: given ones (NULL = the tiles pass run for t->hw,
 * when t->hw is set). -1 after a diagnostic; free P with cg_model_plan_free either way. */
int cg_model_plan(CgModelPlan *P, const IrGraph *fwd, const IrGraph *train, const CgTarget *t,
                  const TilePlan *tiles_fwd, const TilePlan *tiles_train, Diag *d);
void cg_model_plan_free(CgModelPlan *P);

/* The memory a compiled model allocates: its regions and the arenas of its fused kernels. */
typedef struct CgMemory {
  int64_t params_bytes, io_bytes, arena_bytes_forward, arena_bytes_train;
  int64_t packed_bytes; /* of the forward arena: weights packed once (cg_plan_prepack) */
  RtMemFigures fig; /* for the expected process peak (rt_mem.h); GEMM packing unknown: 0 */
} CgMemory;
int cg_model_memory(const IrGraph *fwd, const IrGraph *train, const CgTarget *t, CgMemory *out,
                    Diag *d);
/* The figures of the expected process peak (rt_mem.h) of a plan, with the GEMM packing
 * bytes a thread allocates in the forward and training entries: the runtime's own
 * rt_mem_figures over a descriptor of the table, so the compiler and a program agree. */
void cg_model_figures(const CgModelPlan *P, int64_t pack_forward, int64_t pack_train,
                      RtMemFigures *f);
/* the tensor table, then the kernels of the forward (or training-step) plan */
void cg_model_plan_print(FILE *out, const CgModelPlan *P, bool train);

/* ---- conv geometry shared by the plan (scratch size) and the emitter ------------------- */
typedef struct CgConv {
  int64_t N, C, H, W, O, OH, OW, KH, KW, G;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t Cg, Og, K, P; /* per group: channels in/out, K = Cg*KH*KW, P = OH*OW */
  bool direct;          /* 1x1, stride 1, no pad: no im2col */
  bool depthwise;       /* one channel in and out per group, at most 8x8, on a target
                           with depthwise_direct: the forward, the filter gradient and (at
                           strides 1 and 2) the data gradient computed directly, no im2col
                           scratch */
  bool col;             /* unfolded into a K x P scratch (CG_CONV_IM2COL, and the data
                           gradient of CG_CONV_GATHER or an image too large for its 32-bit
                           offsets) */
  bool batch;           /* CG_CONV_GATHER, fewer than CG_CONV_BATCH_P output positions an
                           image: one GEMM for all images of the batch. Forward: its output
                           [Og][N·P] in scratch, then copied into place; data gradient: the
                           unfold [K][N·P] and dy's rows [Og][N·P] in scratch; filter
                           gradient: dy's rows [Og][N·P] in scratch */
  bool trans;           /* CPU forward with the output channels in the vector lanes (the
                           tile's conv_t): the GEMM writes yᵀ[P][Og] (all images' positions
                           with batch) to scratch, then y is written from it in NCHW with
                           the epilogue */
  bool wino;            /* the kernel runs Winograd F(4,3) (CgKernel.wino): scratch holds
                           V[36][C][T] then M[36][O][T] of a round of images, or the
                           transformed filter U[36][O][C] while it is packed. For a data
                           gradient the fields describe the Winograd convolution it is: dy
                           [N, C, H, W] in (C, H, W its channels and image: the forward's
                           O, OH, OW), dx [N, O, OH, OW] out, padding 2 - the forward's, the
                           filter rotated with its channels swapped (wino_bwd) */
  bool wino_bwd;        /* wino of a CONV2D_BWD_DATA */
  bool wino_wgrad;      /* wino of a CONV2D_BWD_FILTER (the fields the forward's: x [N, C, H,
                           W] and dy [N, O, OH, OW] in, dW [O, C, 3, 3] out): per round the
                           input transform V[36][C][T], dy's D[36][O][T] = A·dy·Aᵀ, 36 GEMMs
                           M[xi][O][C] += D[xi]·V[xi]ᵀ (K: the round's tiles) into the sums
                           after them in scratch, then dW = Gᵀ·M·G */
  int64_t upack;        /* wino_step: bytes of the transformed filter's panels at the start
                           of scratch (V and M after them); else 0 */
  int64_t OB;           /* a filter gradient computed directly (the tile's wgrad_ob, on a
                           target with depthwise_direct): output channels a pass, Og / OB
                           passes per group and input channel; 0: not direct */
  int64_t CB;           /* with OB, a pointwise one (1x1, stride 1, unpadded; the tile's
                           wgrad_cb): input channels a pass, Cg / CB passes per output block */
  bool few;             /* CPU forward of few input channels computed directly (the tiles'
                           conv_few, CgTarget.conv_few): no GEMM, no packing, no scratch */
  int64_t TH, TW, T;    /* wino: 4x4 output tiles down, across, and of a round of images */
  int64_t NB;           /* wino: images a round (TileDecision.wino_images), N / NB rounds */
  int64_t scratch;      /* bytes of scratch before a folded batchnorm's table: the unfold
                           (col), the batch's matrices (batch), yᵀ (trans), Winograd's
                           (wino), or 0; -1: too large */
} CgConv;
/* a GEMM per image packs the whole filter for its P columns; below this (a block of B's
 * columns, the NC of passes/tiles.c on the CPUs measured) the images share one GEMM */
#define CG_CONV_BATCH_P TILES_CONV_BATCH_P
/* ... and below this the filter gradient's (one call of K = N·P instead of N of K = P):
 * measured on ResNet-18's and MobileNetV2's training steps at batch 8 (Zen 4, 1 thread), 16
 * positions an image gained (ResNet-18's layer4: 8.0 to 6.05 ms a layer), 49 and 196 were
 * level or up to 16% slower (the copy of dy's rows, other blockings) */
#define CG_CONV_BATCH_DW_P 32
/* ... and below this a pointwise convolution's data gradient (otherwise one GEMM an image,
 * no col2im): its filter Wᵀ is packed once instead of once an image, against the copies of
 * dy's rows and of the result. Measured in MobileNetV2's training step at 112², batch 8
 * (Zen 4, 1 thread): 320 -> 1280 at 4x4 2.51 -> 1.09 ms; 96 -> 576 at 7x7 0.60 -> 0.75 ms */
#define CG_CONV_BATCH_DX1_P 32
void cg_conv_geom(const CgPlan *p, int node, CgConv *c);
/* rows of a packed A operand's group: rows and room for any register tile up to
 * CG_PACK_ROWS_A, a multiple of 16 floats (plan_pack.c, a training Winograd's panels) */
int64_t cg_pack_rpad_a(int64_t rows);
/* whether Winograd kernel k keeps its transformed filter packed once (plan_pack.c): a
 * forward convolution of a parameter filter in an inference plan; else (training steps, a
 * data gradient, a computed filter) it transforms and packs it every call (wino_step) */
bool cg_wino_packs_once(const CgPlan *p, const CgKernel *k, bool inference);
/* the direct depthwise forward's blocking at strides 1 and 2 for a target of vl f32 lanes
 * (llvm_ops.c dwb_body): blocks of up to CG_DW_ROWS output rows of one channel; the `rows`
 * input rows a block reads are copied once into a per-thread buffer of rows x sw phases x lp
 * floats, the padding's zeros in place and the columns of phase p = column mod sw apart
 * (rows of one vector read the image directly: `direct`). False where the forward runs row
 * by row with masked loads (other strides, rows too long for the buffer). */
typedef struct CgDwBlock {
  int R;         /* output rows a block */
  int rows;      /* input rows a block of R rows reads */
  int64_t nv;    /* output vectors a row */
  int64_t lp;    /* floats a phase row of the buffer, a multiple of vl */
  int64_t nb;    /* blocks a channel, ceil(OH / R) */
  int64_t bytes; /* the buffer; 0 when direct */
  bool direct;   /* the input rows loaded straight from the image (stride 1, or one vector a
                    row): constant lane masks at the rows' edges, no buffer */
  int64_t vlo, vhi; /* direct: the output vectors [vlo, vhi) read no column outside the row */
  int64_t flat;  /* a forward at stride 1 whose rows take at most half a vector, as wide as
                    the input's: each plane computed as flat vectors of OH·OW (this many),
                    every tap a load at a constant offset with constant lane masks; 0: by
                    blocks of rows */
} CgDwBlock;
#define CG_DW_FLAT_MAX_V 16 /* the most vectors a flat plane (each tap's load unrolled) */
#define CG_DW_ROWS 6
#define CG_DW_BUF_MAX (64 * 1024)
bool cg_dw_block(const CgConv *c, int vl, CgDwBlock *b);
/* the rows' buffer of a convolution of few input channels (CgConv.few, llvm_ops.c
 * lower_conv_few): per output row its C·KH input rows in sw phases of lp floats, as the
 * depthwise blocking lays out one row (b->nv, b->lp; b->bytes = C·KH·sw·lp·4); false where
 * it does not fit CG_DW_BUF_MAX */
bool cg_few_block(const CgConv *c, int vl, CgDwBlock *b);
#endif
