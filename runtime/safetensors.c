/* safetensors.c — reader and writer for the safetensors format: an 8-byte little-endian
 * header length, a JSON header mapping tensor names to dtype, shape and byte range, then the
 * raw little-endian data. The header is parsed with cJSON and every range is validated before
 * any tensor is allocated, so a corrupt or hostile file gives a message, not a crash. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_io.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the runtime's file I/O assumes a little-endian host"
#endif

/* defined in rt_tensor.c */
int rt_set_meta_from_cjson(RtTensorSet *s, const void *cjson_obj, char *err, size_t errlen);

#define ST_MAX_HEADER (100u * 1000u * 1000u)
/* JSON numbers go through doubles; integers above 2^53 would be silently rounded */
#define ST_MAX_INT 9007199254740992.0

static const struct {
  const char *name;
  DType dt;
} st_dtypes[] = {{"F32", DT_F32}, {"F16", DT_F16}, {"BF16", DT_BF16},
                 {"I32", DT_I32}, {"I64", DT_I64}, {"F64", DT_F64}};

static const char *st_dtype_name(DType dt) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (st_dtypes[i].dt == dt) return st_dtypes[i].name;
  return NULL;
}

typedef struct {
  const char *name;
  DType dt;
  int rank;
  int64_t shape[RT_MAX_RANK];
  uint64_t begin, end;
} StEntry;

/* --- header validation ------------------------------------------------------------------ */

static int get_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= ST_MAX_INT) || d != floor(d)) return -1;
  *out = (uint64_t)d;
  return 0;
}

static int parse_entry(const cJSON *item, const char *file, StEntry *e, char *err,
                       size_t errlen) {
  e->name = item->string;
  if (!cJSON_IsObject(item)) {
    rt_errf(err, errlen, "%s: header entry '%s' is not an object with dtype, shape and "
            "data_offsets", file, e->name);
    return -1;
  }
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
  if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs)) {
    rt_errf(err, errlen, "%s: tensor '%s' needs \"dtype\" (a string), \"shape\" and "
            "\"data_offsets\" (arrays)", file, e->name);
    return -1;
  }
  size_t k = 0, nd = sizeof st_dtypes / sizeof st_dtypes[0];
  while (k < nd && strcmp(dt->valuestring, st_dtypes[k].name) != 0) k++;
  if (k == nd) {
    rt_errf(err, errlen, "%s: tensor '%s' has dtype '%s', which is not supported (supported: "
            "F32 F16 BF16 I32 I64 F64); convert it to float32 before saving", file, e->name,
            dt->valuestring);
    return -1;
  }
  e->dt = st_dtypes[k].dt;
  int rank = cJSON_GetArraySize(shape);
  if (rank > RT_MAX_RANK) {
    rt_errf(err, errlen, "%s: tensor '%s' has rank %d; at most %d is supported", file, e->name,
            rank, RT_MAX_RANK);
    return -1;
  }
  e->rank = 0;
  for (const cJSON *d = shape->child; d; d = d->next) {
    uint64_t v;
    if (get_uint(d, &v) != 0) {
      rt_errf(err, errlen, "%s: tensor '%s' has a shape entry that is not a non-negative "
              "integer", file, e->name);
      return -1;
    }
    e->shape[e->rank++] = (int64_t)v;
  }
  if (cJSON_GetArraySize(offs) != 2 || get_uint(offs->child, &e->begin) != 0 ||
      get_uint(offs->child->next, &e->end) != 0 || e->begin > e->end) {
    rt_errf(err, errlen, "%s: tensor '%s' has invalid data_offsets; expected [begin, end] with "
            "0 <= begin <= end", file, e->name);
    return -1;
  }
  return 0;
}

/* Range inside the data section and size equal to shape x dtype. */
static int check_extent(const StEntry *e, const char *file, uint64_t dlen, char *err,
                        size_t errlen) {
  if (e->end > dlen) {
    rt_errf(err, errlen, "%s: tensor '%s' data range [%llu, %llu) exceeds the data section "
            "(%llu bytes); the file is truncated or its header is wrong", file, e->name,
            (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)dlen);
    return -1;
  }
  uint64_t bytes = dt_size(e->dt);
  int overflow = 0;
  for (int i = 0; i < e->rank; i++) {
    uint64_t d = (uint64_t)e->shape[i];
    if (d && bytes > UINT64_MAX / d) overflow = 1;
    else bytes *= d;
  }
  if (overflow || bytes != e->end - e->begin) {
    char dims[256];
    size_t o = 0;
    dims[0] = '\0';
    for (int i = 0; i < e->rank && o < sizeof dims; i++)
      o += (size_t)snprintf(dims + o, sizeof dims - o, "%s%lld", i ? ", " : "",
                            (long long)e->shape[i]);
    rt_errf(err, errlen, "%s: tensor '%s' has shape [%s] of %s (%s%llu bytes) but its data "
            "range [%llu, %llu) holds %llu bytes", file, e->name, dims, st_dtype_name(e->dt),
            overflow ? "overflowing " : "", overflow ? 0ull : (unsigned long long)bytes,
            (unsigned long long)e->begin, (unsigned long long)e->end,
            (unsigned long long)(e->end - e->begin));
    return -1;
  }
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const StEntry *)a)->name, ((const StEntry *)b)->name);
}
static int cmp_begin(const void *a, const void *b) {
  const StEntry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Names unique and non-empty ranges disjoint; sorts a scratch copy of the entries. */
static int check_disjoint(const StEntry *ents, int n, const char *file, char *err,
                          size_t errlen) {
  if (n < 2) return 0;
  StEntry *tmp = malloc((size_t)n * sizeof *tmp);
  if (!tmp) {
    rt_errf(err, errlen, "%s: out of memory", file);
    return -1;
  }
  memcpy(tmp, ents, (size_t)n * sizeof *tmp);
  qsort(tmp, (size_t)n, sizeof *tmp, cmp_name);
  for (int i = 1; i < n; i++)
    if (strcmp(tmp[i - 1].name, tmp[i].name) == 0) {
      rt_errf(err, errlen, "%s: tensor name '%s' appears twice in the header", file,
              tmp[i].name);
      free(tmp);
      return -1;
    }
  qsort(tmp, (size_t)n, sizeof *tmp, cmp_begin);
  const StEntry *prev = NULL;
  for (int i = 0; i < n; i++) {
    if (tmp[i].begin == tmp[i].end) continue;
    if (prev && tmp[i].begin < prev->end) {
      rt_errf(err, errlen, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap in "
              "the data section", file, prev->name, (unsigned long long)prev->begin,
              (unsigned long long)prev->end, tmp[i].name, (unsigned long long)tmp[i].begin,
              (unsigned long long)tmp[i].end);
      free(tmp);
      return -1;
    }
    if (!prev || tmp[i].end > prev->end) prev = &tmp[i];
  }
  free(tmp);
  return 0;
}

/* --- reading ---------------------------------------------------------------------------- */

static cJSON *parse_header(const unsigned char *b, size_t len, const char *file,
                           uint64_t *hlen, char *err, size_t errlen) {
  if (len < 8) {
    rt_errf(err, errlen, "%s: truncated: a safetensors file starts with an 8-byte header "
            "length, but the file has only %zu bytes", file, len);
    return NULL;
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
  if (n > ST_MAX_HEADER) {
    rt_errf(err, errlen, "%s: header length %llu is implausible (over 100 MB); the file is "
            "corrupt or not a safetensors file", file, (unsigned long long)n);
    return NULL;
  }
  if (n > len - 8) {
    rt_errf(err, errlen, "%s: truncated: header length is %llu bytes but only %zu bytes "
            "follow", file, (unsigned long long)n, len - 8);
    return NULL;
  }
  if (memchr(b + 8, '\0', (size_t)n)) {
    rt_errf(err, errlen, "%s: the JSON header contains a NUL byte; the file is corrupt", file);
    return NULL;
  }
  char *text = malloc((size_t)n + 1);
  if (!text) {
    rt_errf(err, errlen, "%s: out of memory for a %llu-byte header", file, (unsigned long long)n);
    return NULL;
  }
  memcpy(text, b + 8, (size_t)n);
  text[n] = '\0';
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
  if (!root || !cJSON_IsObject(root)) {
    size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
    if (root)
      rt_errf(err, errlen, "%s: the header is JSON but not an object", file);
    else
      rt_errf(err, errlen, "%s: the header is not valid JSON (error near byte %zu of %llu); "
              "the file is corrupt or not a safetensors file", file, at, (unsigned long long)n);
    cJSON_Delete(root);
    free(text);
    return NULL;
  }
  free(text);
  *hlen = n;
  return root;
}

/* Fills ents from the header (metadata goes to out); returns the number of tensors or -1. */
static int collect_entries(const cJSON *root, const char *file, StEntry *ents, RtTensorSet *out,
                           char *err, size_t errlen) {
  int n = 0, have_meta = 0;
  char why[256];
  for (const cJSON *it = root->child; it; it = it->next) {
    if (strcmp(it->string, "__metadata__") == 0) {
      if (have_meta++) {
        rt_errf(err, errlen, "%s: \"__metadata__\" appears twice in the header", file);
        return -1;
      }
      if (rt_set_meta_from_cjson(out, it, why, sizeof why) != 0) {
        rt_errf(err, errlen, "%s: %s", file, why);
        return -1;
      }
      continue;
    }
    if (parse_entry(it, file, &ents[n], err, errlen) != 0) return -1;
    n++;
  }
  return n;
}

/* Parses and validates the header of a whole file image: *root owns the names, *ents
 * (malloc'd) the entries, metadata goes to meta. Returns the number of tensors or -1. */
static int st_index(const unsigned char *b, size_t len, const char *name, cJSON **root,
                    StEntry **ents, RtTensorSet *meta, char *err, size_t errlen) {
  uint64_t hlen;
  *ents = NULL;
  if (!(*root = parse_header(b, len, name, &hlen, err, errlen))) return -1;
  int cnt = cJSON_GetArraySize(*root);
  *ents = malloc((size_t)(cnt ? cnt : 1) * sizeof **ents);
  int n = *ents ? collect_entries(*root, name, *ents, meta, err, errlen) : -1;
  if (!*ents) rt_errf(err, errlen, "%s: out of memory", name);
  uint64_t dlen = len - 8 - hlen;
  int ok = n >= 0;
  for (int i = 0; ok && i < n; i++) ok = check_extent(&(*ents)[i], name, dlen, err, errlen) == 0;
  ok = ok && check_disjoint(*ents, n, name, err, errlen) == 0;
  for (int i = 0; ok && i < n; i++) (*ents)[i].begin += 8 + hlen; /* from the file's start */
  if (ok) return n;
  free(*ents);
  cJSON_Delete(*root);
  *ents = NULL;
  *root = NULL;
  return -1;
}

int rt_st_parse(const void *buf, size_t len, const char *name, RtTensorSet *out, char *err,
                size_t errlen) {
  const unsigned char *b = buf;
  memset(out, 0, sizeof *out);
  cJSON *root;
  StEntry *ents;
  int n = st_index(b, len, name, &root, &ents, out, err, errlen), ok = n >= 0;
  for (int i = 0; ok && i < n; i++) {
    RtTensor t;
    if (rt_tensor_alloc(&t, ents[i].dt, ents[i].rank, ents[i].shape) != 0) {
      rt_errf(err, errlen, "%s: out of memory for tensor '%s'", name, ents[i].name);
      ok = 0;
      break;
    }
    memcpy(t.data, b + ents[i].begin, t.nbytes);
    char why[256];
    if (rt_set_add(out, ents[i].name, &t, why, sizeof why) != 0) {
      rt_errf(err, errlen, "%s: %s", name, why);
      rt_tensor_free(&t);
      ok = 0;
    }
  }
  free(ents);
  cJSON_Delete(root);
  if (!ok) rt_set_free(out);
  return ok ? 0 : -1;
}

int rt_st_read(const char *path, RtTensorSet *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  RtMap m;
  if (rt_map_file(path, &m, err, errlen)) return -1;
  int r = rt_st_parse(m.data, m.len, path, out, err, errlen);
  rt_map_free(&m);
  return r;
}

int rt_st_open(const char *path, RtStView *v, char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  if (rt_map_file(path, &v->map, err, errlen)) return -1;
  cJSON *root;
  StEntry *ents;
  int n = st_index(v->map.data, v->map.len, path, &root, &ents, &v->meta, err, errlen);
  if (n < 0 || !(v->items = calloc((size_t)n + 1, sizeof *v->items))) {
    if (n >= 0) rt_errf(err, errlen, "%s: out of memory", path);
    free(n >= 0 ? ents : NULL);
    cJSON_Delete(n >= 0 ? root : NULL);
    rt_set_free(&v->meta);
    rt_map_free(&v->map);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    RtStItem *it = &v->items[i];
    it->name = ents[i].name;
    it->dt = ents[i].dt;
    it->rank = ents[i].rank;
    memcpy(it->shape, ents[i].shape, sizeof it->shape);
    it->data = v->map.data + ents[i].begin;
    it->nbytes = (size_t)(ents[i].end - ents[i].begin);
  }
  free(ents);
  v->n = n;
  v->root = root;
  return 0;
}

const RtStItem *rt_st_find(const RtStView *v, const char *name) {
  for (int i = 0; i < v->n; i++)
    if (!strcmp(v->items[i].name, name)) return &v->items[i];
  return NULL;
}

void rt_st_close(RtStView *v) {
  free(v->items);
  cJSON_Delete(v->root);
  rt_set_free(&v->meta);
  rt_map_free(&v->map);
  memset(v, 0, sizeof *v);
}

/* --- writing ---------------------------------------------------------------------------- */

typedef struct {
  const RtTensorSet *s;
  int i;
} StRef;

static int cmp_ref_name(const void *a, const void *b) {
  const StRef *x = a, *y = b;
  return strcmp(x->s->names[x->i], y->s->names[y->i]);
}
/* largest elements first keeps every tensor aligned to its element size without gaps */
static int cmp_ref_layout(const void *a, const void *b) {
  const StRef *x = a, *y = b;
  size_t sx = dt_size(x->s->t[x->i].dt), sy = dt_size(y->s->t[y->i].dt);
  if (sx != sy) return sx > sy ? -1 : 1;
  return cmp_ref_name(a, b);
}

static int check_tensor(const RtTensorSet *s, int i, const char *path, char *err,
                        size_t errlen) {
  const RtTensor *t = &s->t[i];
  const char *nm = s->names[i];
  if (!nm || !*nm || strcmp(nm, "__metadata__") == 0) {
    rt_errf(err, errlen, "%s: invalid tensor name '%s'", path, nm ? nm : "(null)");
    return -1;
  }
  if ((unsigned)t->dt >= DT_COUNT || !st_dtype_name(t->dt) || t->rank < 0 ||
      t->rank > RT_MAX_RANK) {
    rt_errf(err, errlen, "%s: tensor '%s' has an invalid dtype or rank", path, nm);
    return -1;
  }
  double numel = 1;
  for (int k = 0; k < t->rank; k++) {
    if (t->shape[k] < 0 || (double)t->shape[k] >= 1e15) {
      rt_errf(err, errlen, "%s: tensor '%s' has an invalid dim %lld", path, nm,
              (long long)t->shape[k]);
      return -1;
    }
    numel *= (double)t->shape[k];
  }
  if (numel >= 1e15 || (uint64_t)rt_tensor_numel(t) * dt_size(t->dt) != t->nbytes ||
      (t->nbytes && !t->data)) {
    rt_errf(err, errlen, "%s: tensor '%s': nbytes %zu does not match its shape", path, nm,
            t->nbytes);
    return -1;
  }
  return 0;
}

static cJSON *make_metadata(const RtTensorSet *s, const char *json, const char *path,
                            char *err, size_t errlen) {
  if (!json) json = s->metadata_json;
  if (!json) return NULL;
  cJSON *m = cJSON_Parse(json);
  RtTensorSet tmp = {0};
  char why[256];
  if (!m || rt_set_meta_from_cjson(&tmp, m, why, sizeof why) != 0) {
    rt_errf(err, errlen, "%s: metadata must be a JSON object of strings, like "
            "{\"format\": \"pt\"}", path);
    cJSON_Delete(m);
    rt_set_free(&tmp);
    return (cJSON *)-1;
  }
  rt_set_free(&tmp);
  return m;
}

/* Header JSON: metadata first, then tensors by name; data offsets from the layout order. */
static char *build_header(const RtTensorSet *s, StRef *refs, cJSON *meta, size_t *hlen) {
  int n = s->n;
  uint64_t *begin = malloc((size_t)(n ? n : 1) * sizeof *begin);
  cJSON *root = cJSON_CreateObject();
  if (!begin || !root) {
    free(begin);
    cJSON_Delete(root);
    return NULL;
  }
  qsort(refs, (size_t)n, sizeof *refs, cmp_ref_layout);
  uint64_t off = 0;
  for (int k = 0; k < n; k++) {
    begin[refs[k].i] = off;
    off += s->t[refs[k].i].nbytes;
  }
  qsort(refs, (size_t)n, sizeof *refs, cmp_ref_name);
  if (meta && meta->child) cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(meta, 1));
  for (int k = 0; k < n; k++) {
    const RtTensor *t = &s->t[refs[k].i];
    cJSON *e = cJSON_CreateObject();
    cJSON *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
    cJSON_AddItemToObject(root, s->names[refs[k].i], e);
    cJSON_AddStringToObject(e, "dtype", st_dtype_name(t->dt));
    cJSON_AddItemToObject(e, "shape", shape);
    cJSON_AddItemToObject(e, "data_offsets", offs);
    for (int d = 0; d < t->rank; d++)
      cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)begin[refs[k].i]));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(begin[refs[k].i] + t->nbytes)));
  }
  free(begin);
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!text) return NULL;
  size_t len = strlen(text), padded = (len + 7) / 8 * 8;
  char *out = realloc(text, padded + 1);
  if (!out) {
    free(text);
    return NULL;
  }
  memset(out + len, ' ', padded - len);
  out[padded] = '\0';
  *hlen = padded;
  return out;
}

int rt_st_write(const char *path, const RtTensorSet *s, const char *metadata_json, char *err,
                size_t errlen) {
  for (int i = 0; i < s->n; i++)
    if (check_tensor(s, i, path, err, errlen) != 0) return -1;
  for (int i = 0; i < s->n; i++)
    for (int j = i + 1; j < s->n; j++)
      if (strcmp(s->names[i], s->names[j]) == 0) {
        rt_errf(err, errlen, "%s: tensor name '%s' appears twice", path, s->names[i]);
        return -1;
      }
  cJSON *meta = make_metadata(s, metadata_json, path, err, errlen);
  if (meta == (cJSON *)-1) return -1;
  int n = s->n;
  StRef *refs = malloc((size_t)(n ? n : 1) * sizeof *refs);
  const void **parts = malloc((size_t)(n + 2) * sizeof *parts);
  size_t *sizes = malloc((size_t)(n + 2) * sizeof *sizes);
  char *hdr = NULL;
  size_t hlen = 0;
  if (refs && parts && sizes) {
    for (int i = 0; i < n; i++) refs[i] = (StRef){s, i};
    hdr = build_header(s, refs, meta, &hlen);
  }
  cJSON_Delete(meta);
  int r = -1;
  if (!hdr) {
    rt_errf(err, errlen, "%s: out of memory building the header", path);
  } else {
    unsigned char lenbuf[8];
    for (int k = 0; k < 8; k++) lenbuf[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    parts[0] = lenbuf, sizes[0] = 8;
    parts[1] = hdr, sizes[1] = hlen;
    qsort(refs, (size_t)n, sizeof *refs, cmp_ref_layout);
    for (int k = 0; k < n; k++) {
      parts[2 + k] = s->t[refs[k].i].data;
      sizes[2 + k] = s->t[refs[k].i].nbytes;
    }
    r = rt_file_write_atomic(path, parts, sizes, n + 2, err, errlen);
  }
  free(hdr);
  free(refs);
  free(parts);
  free(sizes);
  return r;
}
