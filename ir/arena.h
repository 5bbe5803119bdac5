/* arena.h — bump allocation for one compilation; everything is freed at once. */
#ifndef NN_ARENA_H
#define NN_ARENA_H
#include <stdarg.h>
#include <stddef.h>

typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned; aborts on OOM */
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(Arena *a, const char *fmt, va_list ap);

/* growable array helper: grows *arr (element size es) to hold at least n elements. */
void arena_grow(Arena *a, void **arr, int *cap, int n, size_t es);

/* heap helpers that abort on failure (for data that outlives no arena) */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
#endif
