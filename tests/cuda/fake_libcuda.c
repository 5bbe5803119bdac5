/* fake_libcuda.c — a driver library whose driver sees no device (cuInit succeeds,
 * cuDeviceGetCount reports 0), for the loader's "no CUDA device" path. */
int cuInit(unsigned flags);
int cuDeviceGetCount(int *n);
int cuGetErrorName(int rc, const char **s);
int cuGetErrorString(int rc, const char **s);

int cuInit(unsigned flags) { return (int)flags; }
int cuDeviceGetCount(int *n) {
  *n = 0;
  return 0;
}
int cuGetErrorName(int rc, const char **s) {
  *s = rc ? "CUDA_ERROR_FAKE" : "CUDA_SUCCESS";
  return 0;
}
int cuGetErrorString(int rc, const char **s) {
  *s = rc ? "fake error" : "no error";
  return 0;
}
