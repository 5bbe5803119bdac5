/* plan_print.c — the kernel plan as text (`nnc emit --emit=kernels`, plan.h). One block per
 * kernel in execution order:
 *
 *   k3 gemm %4 matmul f32[64,512], epilogue: + bias %3, relu
 *      members  %4 matmul, %5 add (fc1), %6 relu (h)
 *      reads    %0 io+0, %2 params+0, %3 params+1605632
 *      writes   %6 arena+0 (131072 bytes)
 *      tile     mr=16 nr=6 kc=256 mc=144 nc=4080
 *
 * Offsets are bytes from the region's base (rt_model.h); the arena's are this plan's.
 */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

static const char *region_name(int r) {
  switch (r) {
  case RT_REGION_PARAMS: return "params";
  case RT_REGION_IO: return "io";
  case CG_REGION_ARENA: return "arena";
  case CG_REGION_CONST: return "const";
  default: return "none";
  }
}

const char *cg_kernel_kind_name(CgKernelKind k) {
  switch (k) {
  case CGK_EW: return "ew";
  case CGK_GEMM: return "gemm";
  case CGK_CONV: return "conv";
  case CGK_NODE: return "node";
  case CGK_COPY: return "copy";
  }
  return "?";
}

static void print_shape(FILE *out, const CgPlan *p, int i) {
  const CgVal *v = &p->v[i];
  fprintf(out, "%s[", dt_name(p->g->nodes[i].type.dt));
  for (int k = 0; k < v->rank; k++) fprintf(out, "%s%lld", k ? "," : "", (long long)v->shape[k]);
  fputc(']', out);
}

static void print_where(FILE *out, const CgPlan *p, int i) {
  fprintf(out, "%%%d %s+%lld", i, region_name(p->v[i].region), (long long)p->v[i].offset);
}

static void print_members(FILE *out, const CgPlan *p, const CgKernel *k) {
  fputs("     members ", out);
  for (int m = 0; m < k->nmembers; m++) {
    const IrNode *n = &p->g->nodes[k->members[m]];
    fprintf(out, "%s%%%d %s", m ? ", " : "", k->members[m], ir_op_name(n->op));
    if (n->name && n->op != OP_PARAM && n->op != OP_INPUT) fprintf(out, " (%s)", n->name);
  }
  fputc('\n', out);
}

/* whether operand root r of member c is read from memory by kernel ki */
static bool reads_from_memory(const CgPlan *p, int ki, int r) {
  if (p->kof[r] == ki) return false;
  const CgKernel *k = &p->k[ki];
  bool fold = k->kind == CGK_EW || k->nepi || (k->dw && k->dw->nepi);
  return !(fold && ir_is_fill(&p->g->nodes[r])); /* folded */
}

int cg_kernel_reads(const CgPlan *p, int ki, int *roots) {
  const CgKernel *k = &p->k[ki];
  int nseen = 0;
  for (int m = 0; m < k->nmembers; m++) {
    const IrNode *n = &p->g->nodes[k->members[m]];
    for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
      int r = p->v[n->in[j]].root;
      bool dup = false;
      for (int s = 0; s < nseen; s++) dup |= roots[s] == r;
      if (!dup && reads_from_memory(p, ki, r)) roots[nseen++] = r;
    }
  }
  return nseen;
}

static void print_reads(FILE *out, const CgPlan *p, int ki) {
  const CgKernel *k = &p->k[ki];
  int *seen = xcalloc((size_t)k->nmembers * IR_MAX_IN + 1, sizeof(int));
  int nseen = cg_kernel_reads(p, ki, seen);
  for (int s = 0; s < nseen; s++) {
    fputs(s ? ", " : "     reads   ", out);
    print_where(out, p, seen[s]);
  }
  if (nseen) fputc('\n', out);
  free(seen);
}

static void print_writes(FILE *out, const CgPlan *p, const CgKernel *k) {
  int nw = 0;
  for (int m = 0; m < k->nmembers; m++) {
    int i = k->members[m];
    const CgVal *v = &p->v[i];
    if (!v->stored || v->root != i || v->region == CG_REGION_NONE) continue;
    fputs(nw++ ? ", " : "     writes  ", out);
    print_where(out, p, i);
    fprintf(out, " (%lld bytes)", (long long)v->nbytes);
  }
  if (nw) fputc('\n', out);
}

static void print_tile(FILE *out, const TileDecision *t) {
  if (t->gpu)
    fprintf(out, "     tile    %s block %dx%dx%d, %d stages, %d warps\n", t->mma, t->bm, t->bn,
            t->bk, t->stages, t->warps);
  else
    fprintf(out, "     tile    mr=%d nr=%d kc=%d mc=%d nc=%d%s%s\n", t->mr, t->nr, t->kc, t->mc, t->nc,
            t->direct_b && !t->conv_few && !t->conv_t ? ", B read in place"
            : t->mm_t                                 ? ", transposed: the outputs in the lanes"
                                                      : "",
            t->nt_store ? ", non-temporal stores" : "");
}

static void print_head(FILE *out, const CgPlan *p, int ki) {
  const CgKernel *k = &p->k[ki];
  fprintf(out, "  k%d %s ", ki, cg_kernel_kind_name(k->kind));
  if (k->kind == CGK_COPY) {
    print_where(out, p, p->v[k->copy_src].root);
    fprintf(out, " -> %s+%lld (%lld bytes)\n", region_name(k->copy_dst_region),
            (long long)k->copy_dst_offset, (long long)k->copy_bytes);
    return;
  }
  if (k->kind == CGK_EW) {
    fprintf(out, "over ");
    print_shape(out, p, k->members[k->nmembers - 1]);
  } else {
    fprintf(out, "%%%d %s ", k->node, ir_op_name(p->g->nodes[k->node].op));
    print_shape(out, p, k->node);
  }
  if (k->bias || k->bn || k->relu || k->nepi) {
    fputs(", epilogue:", out);
    if (k->bias) fprintf(out, " + bias %%%d%s", k->bias_node, k->relu ? "," : "");
    if (k->bn) fprintf(out, " batchnorm %%%d%s", k->bn_node, k->relu ? "," : "");
    if (k->relu) fputs(" relu", out);
    if (k->nepi) fprintf(out, "%s elementwise of %%%d:", k->bias || k->bn || k->relu ? ", then" : "",
                         k->epi_base);
    for (int m = k->epi_first; m < k->epi_first + k->nepi; m++)
      fprintf(out, "%s %%%d %s", m > k->epi_first ? "," : "", k->members[m],
              ir_op_name(p->g->nodes[k->members[m]].op));
  }
  fputc('\n', out);
}

void cg_plan_print(FILE *out, const CgPlan *p) {
  fprintf(out, "kernels of '%s' for the %s backend: %d kernels, arena %lld bytes",
          p->g->name ? p->g->name : "?", p->target->name, p->nk, (long long)p->arena_bytes);
  if (p->consts_bytes) fprintf(out, ", constants %lld bytes", (long long)p->consts_bytes);
  if (p->packed_bytes)
    fprintf(out, ", packed weights arena+%lld (%lld bytes)", (long long)p->packed_flags_at,
            (long long)p->packed_bytes);
  fputc('\n', out);
  for (int ki = 0; ki < p->nk; ki++) {
    const CgKernel *k = &p->k[ki];
    print_head(out, p, ki);
    if (k->kind == CGK_COPY) continue;
    print_members(out, p, k);
    print_reads(out, p, ki);
    print_writes(out, p, k);
    if (k->scratch_bytes)
      fprintf(out, "     scratch arena+%lld (%lld bytes)\n", (long long)k->scratch_offset,
              (long long)k->scratch_bytes);
    if (k->packed)
      fprintf(out, "     packed  %%%d once: arena+%lld (%lld x %lld x %lld floats), flag arena+%lld\n",
              p->g->nodes[k->node].in[1], (long long)k->packed_offset, (long long)k->packed_groups,
              (long long)k->packed_rpad, (long long)k->packed_k, (long long)k->packed_flag);
    if (k->wino) {
      CgConv c;
      cg_conv_geom(p, k->node, &c);
      fprintf(out, "     winograd F(4,3)%s: %lld rounds of %lld images, %lld tiles of 4x4 a round "
              "(%lld x %lld an image), 36 GEMMs [%lld x %lld]·[%lld x %lld]\n",
              c.wino_wgrad ? " filter gradient" : "", (long long)(c.N / c.NB), (long long)c.NB,
              (long long)c.T, (long long)c.TH, (long long)c.TW, (long long)c.O,
              (long long)(c.wino_wgrad ? c.T : c.C), (long long)(c.wino_wgrad ? c.T : c.C),
              (long long)(c.wino_wgrad ? c.C : c.T));
    }
    if (k->tile) print_tile(out, k->wino ? k->tile->wino : k->tile);
    if (k->dw) {
      CgConv c;
      cg_conv_geom(p, k->node, &c);
      fprintf(out, "     depthwise %%%d fused into B: strips of %d rows an image, a thread's "
              "scratch [%lld x %lld] floats\n", k->dw->node, k->dw_rows, (long long)c.C,
              (long long)(k->dw_rows * c.OW));
    }
  }
}

static const char *tensor_kind(int kind) {
  static const char *names[] = {"param", "buffer", "optstate", "input", "output", "loss"};
  return kind >= 0 && kind < (int)(sizeof names / sizeof *names) ? names[kind] : "?";
}

void cg_model_plan_print(FILE *out, const CgModelPlan *P, bool train) {
  fprintf(out, "tensors: params %lld bytes, io %lld bytes\n", (long long)P->params_bytes,
          (long long)P->io_bytes);
  for (int i = 0; i < P->nt; i++) {
    const RtTensorInfo *t = &P->t[i].info;
    fprintf(out, "  %-9s %s+%lld %s[", tensor_kind(t->kind),
            t->kind <= RT_KIND_OPTSTATE ? "params" : "io", (long long)t->offset, dt_name(t->dtype));
    for (int k = 0; k < t->rank; k++) fprintf(out, "%s%lld", k ? "," : "", (long long)t->shape[k]);
    fprintf(out, "] %s\n", t->name);
  }
  cg_plan_print(out, train ? &P->pt : &P->pf);
}
