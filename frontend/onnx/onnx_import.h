/* onnx_import.h — `nnc import`: an ONNX model (protobuf, read with protobuf-c) to a readable
 * .nn file plus a safetensors file holding its initializers under the .nn parameter names.
 * docs/import.md lists the mapping of ONNX ops onto nnc's, what is folded and what is
 * refused. Errors go to the Diag as `MODEL.onnx: error: ...`, one per unsupported op kind. */
#ifndef ONNX_IMPORT_H
#define ONNX_IMPORT_H
#include "../../ir/diag.h"

typedef struct OnnxImportOptions {
  const char *model_path;    /* the .onnx file */
  const char *out_nn;        /* the .nn file to write */
  const char *out_weights;   /* the safetensors file to write; NULL = no weights file */
  const char *model_name;    /* name of the `model`; NULL = from the file name */
  int no_blocks;             /* write repeated structures out instead of as blocks */
  const char *dim_names[16]; /* defaults for symbolic dims (ONNX dim_param names) */
  long long dim_values[16];
  int ndims;
} OnnxImportOptions;

/* Returns 0 on success; on failure the errors are in d and no file is written. */
int onnx_import(const OnnxImportOptions *o, Diag *d);
#endif
