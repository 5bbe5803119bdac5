/* rt_io.h — tensor file I/O for generated binaries and the compiler: NumPy .npy files,
 * safetensors files, and the atomic-write / whole-file-read helpers beneath them.
 *
 * Every function returns 0 on success or -1 on failure, and on failure writes into
 * err[0..errlen) a one-line message that starts with the file name, says what is wrong and,
 * where there is one, how to fix it. err may be NULL. Files are written through a temporary
 * file in the same directory that is renamed into place, so a reader never sees half a file
 * and a failed write leaves any previous file untouched. */
#ifndef RT_IO_H
#define RT_IO_H
#include <stddef.h>

#include "rt_mem.h"
#include "rt_tensor.h"

/* printf-style message into err (truncated to errlen; no-op when err is NULL or errlen 0) */
void rt_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* --- files ------------------------------------------------------------------------------ */

/* Writes the concatenation of parts[0..nparts) to path atomically: a temporary
 * `path.tmp.XXXXXX` in the same directory, fsync, rename over path, fsync of the directory.
 * The temporary is removed on any failure. The writer holds an flock on its temporary, so
 * temporaries of the same target that nobody holds (their writer was killed) are removed
 * before writing. */
int rt_file_write_atomic(const char *path, const void *const parts[], const size_t sizes[],
                         int nparts, char *err, size_t errlen);

/* Reads a whole file into a malloc'd buffer (with one extra NUL byte past *len, so text can
 * be used as a string). Returns NULL on failure. */
void *rt_file_read_all(const char *path, size_t *len, char *err, size_t errlen);

/* --- .npy ------------------------------------------------------------------------------- */

/* Reads a .npy file (format 1.0, 2.0 or 3.0, C order; fortran_order True is refused for
 * rank >= 2, where it changes the layout). File dtypes map to:
 *   f4 -> DT_F32, f2 -> DT_F16, f8 -> DT_F64, i4 -> DT_I32, i8 -> DT_I64,
 *   u1 and b1 -> DT_I32 (no narrower integer dtype exists in the runtime).
 * Little- and big-endian files are accepted; data is native (little-endian) in memory. */
int rt_npy_read(const char *path, RtTensor *out, char *err, size_t errlen);
/* rt_npy_read followed by rt_tensor_convert to `want` (e.g. f8 labels -> DT_F32). */
int rt_npy_read_as(const char *path, DType want, RtTensor *out, char *err, size_t errlen);
/* The parser itself, on bytes already in memory; `name` is used in messages. */
int rt_npy_parse(const void *buf, size_t len, const char *name, RtTensor *out, char *err,
                 size_t errlen);
/* A .npy file mapped read-only, for data sets: the array is not copied; rows (the samples
 * along the leading dim; a rank-0 array is one row) are gathered from the mapping into the
 * caller's buffer. Files whose bytes are already the wanted dtype (little-endian f4, f8, f2,
 * i4, i8) are copied row by row; others (big-endian, u1, b1, or another dtype than wanted)
 * are decoded and converted row by row, so no converted copy of the array is ever made. */
typedef struct RtNpyView {
  const char *path;      /* for messages; the caller's string */
  DType dt;              /* the dtype the file decodes to (as rt_npy_read gives) */
  int rank;
  int64_t shape[RT_MAX_RANK];
  int64_t rows, row_elems;
  const unsigned char *data; /* inside map */
  int file_kind, file_bigendian;
  size_t file_itemsize;
  RtMap map;
} RtNpyView;
int rt_npy_open(const char *path, RtNpyView *v, char *err, size_t errlen);
void rt_npy_close(RtNpyView *v);
/* 1 when rows of the file are the bytes of dtype `want` (a plain copy) */
int rt_npy_direct(const RtNpyView *v, DType want);
/* rows rows[0..n) (or first..first+n when rows is NULL) as dtype `want`, packed into dst;
 * the row indices must be < v->rows. An element that does not convert is an error naming
 * the file and the sample. */
int rt_npy_gather(const RtNpyView *v, const int64_t *rows, int64_t first, int64_t n, DType want,
                  void *dst, char *err, size_t errlen);
/* Writes format 1.0 with the header numpy itself writes, padded so the data starts at a
 * multiple of 64 bytes. DT_BF16 has no NumPy dtype and is refused. */
int rt_npy_write(const char *path, const RtTensor *t, char *err, size_t errlen);

/* --- safetensors ------------------------------------------------------------------------ */

/* Reads every tensor of a safetensors file into *out (which must be zeroed or freed), plus
 * its "__metadata__". Dtypes F32 F16 BF16 I32 I64 F64. Header and offsets are validated:
 * header size sane, valid JSON object, unique names, ranges inside the data section,
 * non-overlapping, sizes matching shape x dtype. */
int rt_st_read(const char *path, RtTensorSet *out, char *err, size_t errlen);
int rt_st_parse(const void *buf, size_t len, const char *name, RtTensorSet *out, char *err,
                size_t errlen);
/* A safetensors file mapped read-only, with its header validated as rt_st_read does: the
 * tensors stay in the file's pages until the caller copies what it wants (a checkpoint
 * loader reads only the tensors it needs, and keeps no buffer of the file). */
typedef struct RtStItem {
  const char *name;
  DType dt;
  int rank;
  int64_t shape[RT_MAX_RANK];
  const void *data; /* inside the mapping; not aligned beyond what the file gives */
  size_t nbytes;
} RtStItem;
typedef struct RtStView {
  int n;
  RtStItem *items;
  RtTensorSet meta; /* the "__metadata__" only (no tensors) */
  void *root;       /* the parsed header, owning the names */
  RtMap map;
} RtStView;
int rt_st_open(const char *path, RtStView *v, char *err, size_t errlen);
const RtStItem *rt_st_find(const RtStView *v, const char *name);
void rt_st_close(RtStView *v);
/* Writes set s. metadata_json is a JSON object of strings written as "__metadata__"; when
 * NULL, s->metadata_json is used (if any); "{}" writes none. Header keys are in name order,
 * the header is space-padded to a multiple of 8 bytes, and tensor data is packed by
 * decreasing element size, then name, so every tensor is aligned to its element size. */
int rt_st_write(const char *path, const RtTensorSet *s, const char *metadata_json, char *err,
                size_t errlen);

#endif
