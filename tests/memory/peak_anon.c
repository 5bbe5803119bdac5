/* peak_anon.c — runs a command and reports the peak of its private (anonymous) memory:
 *
 *   peak_anon [--every-us U] [--data-limit BYTES] -- COMMAND ARGS...
 *
 * The kernel keeps a high-water mark of the resident set (VmHWM), but that counts the file
 * pages of a mapped data set, which are page cache the kernel can drop. The private memory
 * is RssAnon in /proc/PID/status, of which Linux keeps no peak; so the child's RssAnon is
 * sampled every U microseconds (default 500) until it exits. A transient shorter than the
 * interval can be missed; the copies this is meant to catch (a data set read into memory,
 * a region zeroed) take far longer than that to be written. --data-limit sets the child's
 * RLIMIT_DATA (private writable mappings and the heap; a read-only file mapping does not
 * count) before it starts.
 *
 * Prints "peak_anon_bytes N" and "peak_rss_bytes N" (VmHWM at the last sample) to stderr
 * and exits with the command's status (128 + signal when it was killed). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* RssAnon and VmHWM of pid in bytes; -1 when the process is gone */
static int read_status(pid_t pid, int64_t *anon, int64_t *hwm) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long long kb;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "RssAnon: %lld kB", &kb) == 1) *anon = kb * 1024;
    if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) *hwm = kb * 1024;
  }
  fclose(f);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: peak_anon [--every-us U] [--data-limit BYTES] -- COMMAND ARGS...\n");
  return 2;
}

int main(int argc, char **argv) {
  long every_us = 500;
  long long data_limit = 0;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    if (!strcmp(argv[i], "--every-us") && i + 1 < argc)
      every_us = atol(argv[++i]);
    else if (!strcmp(argv[i], "--data-limit") && i + 1 < argc)
      data_limit = atoll(argv[++i]);
    else
      return usage();
  }
  if (i + 1 >= argc || every_us <= 0) return usage();
  pid_t pid = fork();
  if (pid < 0) {
    perror("peak_anon: fork");
    return 2;
  }
  if (pid == 0) {
    struct rlimit rl = {(rlim_t)data_limit, (rlim_t)data_limit};
    if (data_limit > 0 && setrlimit(RLIMIT_DATA, &rl)) {
      perror("peak_anon: setrlimit(RLIMIT_DATA)");
      _exit(127);
    }
    execvp(argv[i + 1], argv + i + 1);
    fprintf(stderr, "peak_anon: %s: %s\n", argv[i + 1], strerror(errno));
    _exit(127);
  }
  int64_t peak = 0, hwm = 0;
  int status = 0;
  struct timespec ts = {0, every_us * 1000};
  for (;;) {
    int64_t anon = 0;
    /* sampled before waitpid, so the last sample is of the live (or zombie) process */
    if (read_status(pid, &anon, &hwm) == 0 && anon > peak) peak = anon;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      perror("peak_anon: waitpid");
      return 2;
    }
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "peak_anon_bytes %lld\npeak_rss_bytes %lld\n", (long long)peak,
          (long long)hwm);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
