/* report_comm.c — prints a CommPlan (passes/comm.h) for `nnc cost --ranks`. */
#include "report_comm.h"

#include <stdio.h>

#include "driver.h"

void report_comm_text(const CommPlan *c) {
  char b0[32], b1[32];
  printf("\ndata-parallel on %d ranks over %s (%s):\n", c->ranks, c->link.name, c->link.desc);
  printf("  gradients per rank     %s in %d bucket%s of up to %s\n",
         drv_bytes_h(c->grad_bytes, b0, sizeof b0), c->nbuckets, c->nbuckets == 1 ? "" : "s",
         drv_bytes_h(c->bucket_bytes, b1, sizeof b1));
  printf("  ring all-reduce        %.3f ms  (2(P-1)/P x bytes / bandwidth + 2(P-1) x latency, "
         "per bucket)\n", c->t_allreduce * 1e3);
  printf("  overlapped / exposed   %.3f / %.3f ms  (buckets start while backward runs)\n",
         c->t_overlap * 1e3, c->t_exposed * 1e3);
  printf("  step per rank          %.3f ms  (one rank alone: %.3f ms)\n", c->t_step * 1e3,
         c->t_step1 * 1e3);
  printf("  scaling efficiency     %.1f%%  (%d ranks do %.2fx the work of one per unit time)\n",
         100 * c->efficiency, c->ranks, c->ranks * c->efficiency);
}

void report_comm_json(cJSON *root, const CommPlan *c) {
  cJSON *o = cJSON_AddObjectToObject(root, "data_parallel");
  cJSON_AddNumberToObject(o, "ranks", c->ranks);
  cJSON_AddStringToObject(o, "link", c->link.name);
  cJSON_AddNumberToObject(o, "link_bw", c->link.bw);
  cJSON_AddNumberToObject(o, "link_latency", c->link.latency);
  cJSON_AddNumberToObject(o, "grad_bytes", c->grad_bytes);
  cJSON_AddNumberToObject(o, "bucket_bytes", c->bucket_bytes);
  cJSON_AddNumberToObject(o, "buckets", c->nbuckets);
  cJSON_AddNumberToObject(o, "allreduce_time", c->t_allreduce);
  cJSON_AddNumberToObject(o, "overlap_time", c->t_overlap);
  cJSON_AddNumberToObject(o, "exposed_time", c->t_exposed);
  cJSON_AddNumberToObject(o, "step_time_1", c->t_step1);
  cJSON_AddNumberToObject(o, "step_time", c->t_step);
  cJSON_AddNumberToObject(o, "efficiency", c->efficiency);
}
