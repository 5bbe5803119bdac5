/* cuda_nvrtc.h — generated CUDA C to PTX through NVRTC (built only where the CUDA toolkit
 * is found; see cmake/cuda.cmake). */
#ifndef NN_CUDA_NVRTC_H
#define NN_CUDA_NVRTC_H
#include <stddef.h>

/* PTX for compute capability sm (80, 86, 89, 90, ...), malloc'd; NULL with err filled:
 * the failing NVRTC call with its file:line, and NVRTC's log when compilation fails. */
char *cuda_nvrtc_ptx(const char *src, const char *name, int sm, char *err, size_t errlen);
#endif
