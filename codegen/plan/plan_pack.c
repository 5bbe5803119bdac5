/* plan_pack.c — constant operands packed once per program (cg_plan_prepack, plan.h).
 *
 * In an inference plan a parameter does not change between calls, so the panels a GEMM packs
 * from it (a dense layer's weight, B; a convolution's filter, A) can be packed on the first
 * call and kept. The plan reserves their room at the end of the arena, where nothing else
 * is placed, with one i64 flag per kernel before them: the kernel packs when its flag is 0
 * and sets it; the runtime clears the flags whenever the parameters may have changed
 * (initialization, checkpoint loads, tensor writes, training steps: rt_embed.c). */
#include <string.h>

#include "plan.h"

static int64_t pack_round(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* the packed operand of kernel k: rows, depth and groups; false when it has none */
static bool pack_shape(const CgPlan *p, const CgKernel *k, int64_t *rows, int64_t *depth,
                       int64_t *groups) {
  if ((k->kind != CGK_GEMM && k->kind != CGK_CONV) || k->node < 0) return false;
  const IrNode *n = &p->g->nodes[k->node];
  if (n->nin < 2) return false;
  if (k->tile && (k->tile->gemm.bf16 || k->tile->gpu)) return false;
  int w = n->in[1];
  const CgVal *vw = &p->v[w];
  if (p->v[vw->root].region != RT_REGION_PARAMS || p->g->nodes[w].type.dt != DT_F32)
    return false;
  if (k->kind == CGK_GEMM && n->op == OP_MATMUL) {
    const CgVal *vo = &p->v[k->out];
    if (vw->rank != 2 || vo->numel == 0 || p->g->nodes[n->in[0]].type.dt != DT_F32)
      return false;
    bool tb = n->attr.trans_b;
    *rows = tb ? vw->shape[0] : vw->shape[1];
    *depth = tb ? vw->shape[1] : vw->shape[0];
    *groups = 1;
    /* a product of few rows streams B (tiles.c) and packs nothing */
    return *rows > 0 && vo->numel / *rows > TILES_CPU_STREAM_M;
  }
  if (k->kind == CGK_CONV && n->op == OP_CONV2D) {
    CgConv c;
    cg_conv_geom(p, k->node, &c);
    if (c.depthwise || c.few || c.N == 0 || c.P == 0 || c.Og == 0) return false;
    if (c.wino) { /* the transformed filter: 36 matrices [O][C] */
      *rows = c.O, *depth = c.C, *groups = 36;
      return true;
    }
    *rows = c.Og;
    *depth = c.K;
    *groups = c.G;
    return true;
  }
  return false;
}

bool cg_plan_inference(const CgPlan *p) {
  for (int i = 0; i < p->g->nnodes; i++)
    if (p->v[i].needed && p->g->nodes[i].op == OP_ASSIGN) return false;
  return true;
}

int cg_plan_prepack(CgPlan *p) {
  if (!p->target || !p->target->prepack || !cg_plan_inference(p)) return 0;
  int n = 0;
  for (int ki = 0; ki < p->nk; ki++) {
    CgKernel *k = &p->k[ki];
    int64_t rows, depth, groups;
    k->packed = pack_shape(p, k, &rows, &depth, &groups) && depth > 0;
    if (!k->packed) continue;
    /* room for the rows rounded up to any register tile up to CG_PACK_ROWS_*, and a
     * multiple of 16 floats so that every KC block's panels stay 64-byte aligned */
    k->prepacked = true; /* the estimate's flag (plan_cost.c) */
    k->packed_rpad = pack_round(rows + (k->kind == CGK_CONV ? CG_PACK_ROWS_A : CG_PACK_ROWS_B) - 1, 16);
    k->packed_k = depth;
    k->packed_groups = groups;
    n++;
  }
  if (!n) return 0;
  int64_t at = pack_round(p->arena_bytes, 64), end = at + pack_round(8 * (int64_t)n, 64);
  int flag = 0;
  for (int ki = 0; ki < p->nk; ki++) {
    CgKernel *k = &p->k[ki];
    if (!k->packed) continue;
    int64_t elems, bytes;
    if (__builtin_mul_overflow(k->packed_rpad, k->packed_k, &elems) ||
        __builtin_mul_overflow(elems, k->packed_groups * 4, &bytes) ||
        bytes > CG_MAX_BYTES - end)
      return -1;
    k->packed_flag = at + 8 * flag++;
    k->packed_offset = end;
    end += pack_round(bytes, 64);
  }
  p->packed_flags_at = at;
  p->packed_flags_bytes = 8 * (int64_t)n;
  p->packed_bytes = end - at;
  p->arena_bytes = end;
  return n;
}
