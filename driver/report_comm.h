/* report_comm.h — the data-parallel section of `nnc cost --train --ranks P` (text and JSON). */
#ifndef NN_REPORT_COMM_H
#define NN_REPORT_COMM_H
#include <cjson/cJSON.h>

#include "../passes/comm.h"

void report_comm_text(const CommPlan *c);
void report_comm_json(cJSON *root, const CommPlan *c);
#endif
