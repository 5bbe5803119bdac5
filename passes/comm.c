/* comm.c — data-parallel communication cost: bucketed ring all-reduce of the gradients,
 * overlapped with the backward pass (comm.h says what it requires and guarantees).
 *
 * The backward pass is replayed on the roofline clock in node order: a gradient joins the
 * open bucket when its node finishes; a full bucket is ready then, the last one when the
 * backward pass ends. Buckets go over the link one after another (one communicator), each
 * starting when it is ready and the previous one is done. What runs past the end of the
 * backward pass is exposed: the optimizer waits for it. */
#include "comm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double comm_ring_time(double bytes, int ranks, const HwLink *l) {
  if (ranks <= 1 || bytes <= 0) return 0;
  double p = ranks;
  return 2 * (p - 1) / p * bytes / l->bw + 2 * (p - 1) * l->latency;
}

typedef struct Channel {
  double free_at, busy; /* when the link is next free; its busy time so far */
  int n;                /* buckets sent */
} Channel;

static void send_bucket(Channel *ch, double bytes, double ready, int ranks, const HwLink *l) {
  if (bytes <= 0) return;
  double t = comm_ring_time(bytes, ranks, l);
  ch->free_at = fmax(ch->free_at, ready) + t;
  ch->busy += t;
  ch->n++;
}

/* the bytes of each node's gradient output, 0 for nodes that produce none; NULL on OOM */
static double *grad_bytes_by_node(const CostResult *r, const TrainInfo *info) {
  double *gb = calloc((size_t)(r->g->nnodes ? r->g->nnodes : 1), sizeof *gb);
  if (!gb) return NULL;
  for (int k = 0; k < info->nparams; k++) {
    const IrType *t = &r->g->nodes[info->grads[k]].type;
    gb[info->grads[k]] += (double)ir_type_numel(r->g, t) * (double)dt_size(t->dt);
  }
  return gb;
}

int comm_plan(const CostResult *r, const TrainInfo *info, int ranks, const HwLink *l,
              double bucket_bytes, CommPlan *out) {
  if (ranks < 1 || ranks > COMM_MAX_RANKS || !(bucket_bytes > 0)) return -1;
  double *grad = grad_bytes_by_node(r, info);
  if (!grad) return -1;
  memset(out, 0, sizeof *out);
  out->ranks = ranks, out->link = *l, out->bucket_bytes = bucket_bytes;
  Channel ch = {0};
  double t = 0, open = 0, bwd_end = 0;
  for (int i = 0; i < r->g->nnodes; i++) {
    Phase ph = r->g->nodes[i].phase;
    if (ph == PH_OPT) continue;
    t += r->time[i].time;
    if (ph != PH_BWD) continue;
    bwd_end = t;
    double gb = grad[i];
    out->grad_bytes += gb, open += gb;
    if (open >= bucket_bytes) send_bucket(&ch, open, t, ranks, l), open = 0;
  }
  free(grad);
  send_bucket(&ch, open, bwd_end, ranks, l);
  out->nbuckets = ch.n;
  out->t_allreduce = ch.busy;
  out->t_exposed = fmax(0, ch.free_at - bwd_end);
  out->t_overlap = out->t_allreduce - out->t_exposed;
  out->t_step1 = r->total.time;
  out->t_step = out->t_step1 + out->t_exposed;
  out->efficiency = out->t_step > 0 ? out->t_step1 / out->t_step : 1;
  return 0;
}
