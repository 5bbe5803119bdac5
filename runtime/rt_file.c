/* rt_file.c — whole-file reads and atomic whole-file writes for the runtime's I/O, plus the
 * shared error formatter. A write goes to a fresh temporary beside the target, is flushed to
 * disk, then renamed over the target, so readers see either the old or the new file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rt_io.h"

void rt_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* --- reading ---------------------------------------------------------------------------- */

void *rt_file_read_all(const char *path, size_t *len, char *err, size_t errlen) {
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    rt_errf(err, errlen, "%s: is a directory, not a file", path);
    fclose(f);
    return NULL;
  }
  /* the size from fstat is only a hint: pipes report 0 and files may change under us */
  size_t cap = (S_ISREG(st.st_mode) && st.st_size > 0) ? (size_t)st.st_size + 1 : 4096;
  size_t n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (!buf) {
      rt_errf(err, errlen, "%s: out of memory reading %zu bytes", path, cap);
      fclose(f);
      return NULL;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *nb = cap > SIZE_MAX / 2 - 1 ? NULL : realloc(buf, cap * 2 + 1);
    if (!nb) free(buf);
    buf = nb;
    cap *= 2;
  }
  if (ferror(f)) {
    rt_errf(err, errlen, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* --- atomic writing --------------------------------------------------------------------- */

static int write_full(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Creates path.tmp.XXXXXX exclusively. mkstemp would do, but it forces mode 0600; opening
 * with O_EXCL and 0666 lets the umask decide, like any other file the user creates, without
 * touching the process-wide umask. */
static int open_temp(const char *path, char *tmp, size_t tmplen) {
  static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  static unsigned long counter;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
  for (int attempt = 0; attempt < 100; attempt++) {
    x += 0x9E3779B97F4A7C15ull * (++counter);
    uint64_t r = x;
    char suf[7];
    for (int i = 0; i < 6; i++, r /= 36) suf[i] = alnum[r % 36];
    suf[6] = '\0';
    if ((size_t)snprintf(tmp, tmplen, "%s.tmp.%s", path, suf) >= tmplen) {
      errno = ENAMETOOLONG;
      return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) (void)flock(fd, LOCK_EX | LOCK_NB); /* "being written": see remove_stale */
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* is `name` "<base>.tmp.XXXXXX", a temporary of open_temp for target <base>? */
static int is_temp_of(const char *name, const char *base) {
  size_t n = strlen(base);
  if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0) return 0;
  const char *suf = name + n + 5;
  if (strlen(suf) != 6) return 0;
  for (int i = 0; i < 6; i++)
    if (!((suf[i] >= 'a' && suf[i] <= 'z') || (suf[i] >= '0' && suf[i] <= '9'))) return 0;
  return 1;
}

/* Removes the temporaries a killed writer of the same target left behind (a full-size
 * checkpoint each). A live writer holds an flock on its temporary until it closes it, and
 * the kernel drops the lock when a process dies: a temporary that can be locked is stale. */
static void remove_stale(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
  char dir[4096], full[4096];
  if (dlen >= sizeof dir) return;
  memcpy(dir, path, dlen);
  strcpy(dir + dlen, dlen ? "" : "./");
  DIR *dp = opendir(dir);
  if (!dp) return;
  for (struct dirent *e; (e = readdir(dp));) {
    if (!is_temp_of(e->d_name, base)) continue;
    if ((size_t)snprintf(full, sizeof full, "%s%s", dir, e->d_name) >= sizeof full) continue;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) unlink(full);
    close(fd);
  }
  closedir(dp);
}

/* fsync of the directory makes the rename itself durable; failure here is not an error for
 * the caller (the file is complete and in place; some file systems refuse directory fsync) */
static void sync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

int rt_file_write_atomic(const char *path, const void *const parts[], const size_t sizes[],
                         int nparts, char *err, size_t errlen) {
  size_t tmplen = strlen(path) + 16;
  char *tmp = malloc(tmplen);
  if (!tmp) {
    rt_errf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  remove_stale(path);
  int fd = open_temp(path, tmp, tmplen);
  if (fd < 0) {
    int e = errno;
    rt_errf(err, errlen, "%s: cannot create temporary file %s: %s%s", path, tmp, strerror(e),
            e == ENOENT ? " (does the directory exist?)" : "");
    free(tmp);
    return -1;
  }
  const char *what = "write";
  int ok = 1;
  for (int i = 0; i < nparts && ok; i++)
    if (sizes[i] && write_full(fd, parts[i], sizes[i]) != 0) ok = 0;
  if (ok && fsync(fd) != 0) ok = 0, what = "fsync";
  int e = errno;
  if (close(fd) != 0 && ok) ok = 0, what = "close", e = errno;
  if (ok && rename(tmp, path) != 0) ok = 0, what = "rename into place", e = errno;
  if (!ok) {
    rt_errf(err, errlen, "%s: %s failed: %s%s", path, what, strerror(e),
            e == ENOSPC ? " (disk full?)" : "");
    unlink(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  sync_dir_of(path);
  return 0;
}
