/* kmsg.c - the sandbox's kernel log: a plain file several tracers of one pod append to.
 *
 * Lines look like syslog(2) output ("<6>[    0.000000] text"), so dmesg prints them as it
 * would a kernel's. Each line is one write(2) on an O_APPEND descriptor, which the kernel
 * serialises per inode: lines from different tracers never interleave. */
#include "sandbox/kmsg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "sandbox/kernel_int.h"

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int boot_lines(int fd, const struct sbx_kernel *k, err_t **e)
{
  struct sbx_kernel r;
  char machine[65];
  kernel_resolve(k, &r, machine);
  cleanup_free char *text = xasprintf(
      "<5>[    0.000000] Linux version %s (crisp@sandbox) %s\n"
      "<6>[    0.000000] Command line: crisp-sandbox (%s)\n"
      "<6>[    0.000001] crisp sandbox: ordinary syscalls run on the host kernel, natively\n"
      "<6>[    0.000002] crisp sandbox: a seccomp table stops the few it must answer itself\n"
      "<6>[    0.000003] crisp sandbox: every refusal is written below, one line each\n"
      "<6>[    0.000004] Mounting the pretend root... done\n"
      "<6>[    0.000005] Ready!\n",
      r.release, r.version, r.machine);
  return fd_write_all(fd, text, strlen(text), e);
}

int kmsg_open(struct kmsg *m, const char *path, const struct sbx_kernel *k, err_t **e)
{
  m->fd = -1;
  m->full_noted = 0;
  m->boot_ns = now_ns();
  if (!path)
    return 0;
  int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd >= 0) {
    if (boot_lines(fd, k, e) < 0) {
      close(fd);
      return err_wrap(e, "sandbox kernel log %s", path);
    }
    m->fd = fd;
    return 0;
  }
  if (errno != EEXIST)
    return err_sys(e, errno, "sandbox kernel log %s", path);
  fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return err_sys(e, errno, "sandbox kernel log %s", path);
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME | STATX_MTIME, &sx) == 0) {
    struct statx_timestamp t = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime : sx.stx_mtime;
    m->boot_ns = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
  }
  m->fd = fd;
  return 0;
}

void kmsg_close(struct kmsg *m)
{
  if (m->fd >= 0)
    close(m->fd);
  m->fd = -1;
}

void kmsg_refusal(struct kmsg *m, const char *name, const char *comm, pid_t pid,
                  const char *tag)
{
  if (m->fd < 0)
    return;
  struct stat st;
  if (fstat(m->fd, &st) == 0 && st.st_size >= KMSG_MAX_BYTES) {
    if (!m->full_noted) {
      static const char full[] = "<4>[    0.000000] sandbox: log full, further refusals are only counted\n";
      m->full_noted = 1;
      if (write(m->fd, full, sizeof(full) - 1) < 0)
        return;
    }
    return;
  }
  int64_t d = now_ns() - m->boot_ns;
  if (d < 0)
    d = 0;
  char line[256];
  int n = snprintf(line, sizeof(line), "<4>[%5lld.%06lld] sandbox: refused %s comm=%s pid=%d%s%s\n",
                   (long long)(d / 1000000000), (long long)(d % 1000000000 / 1000), name,
                   comm, (int)pid, tag ? " tag=" : "", tag ? tag : "");
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(line)) {   /* a very long tag: keep the line whole */
    n = sizeof(line) - 1;
    line[n - 1] = '\n';
  }
  /* one write: atomic against the other tracers' appends; a failure loses a log line,
   * never the refusal itself (the caller has counted it) */
  if (write(m->fd, line, (size_t)n) < 0)
    return;
}

struct name_count {
  char *name;
  unsigned long n;
};

static void count_line(const char *line, const char *tag, struct name_count **v, size_t *nv)
{
  /* "<4>[ time] sandbox: refused NAME ...": anchored on the timestamp's bracket, so
   * no other line's text counts */
  const char *p = strstr(line, "] sandbox: refused ");
  if (!p)
    return;
  p += strlen("] sandbox: refused ");
  size_t len = strcspn(p, " \n");
  if (len == 0 || len > 64)
    return;
  if (tag) {
    const char *t = strstr(p, " tag=");
    if (!t)
      return;
    t += 5;
    size_t tl = strcspn(t, " \n");
    if (tl != strlen(tag) || strncmp(t, tag, tl) != 0)
      return;
  }
  for (size_t i = 0; i < *nv; i++)
    if (strlen((*v)[i].name) == len && strncmp((*v)[i].name, p, len) == 0) {
      (*v)[i].n++;
      return;
    }
  *v = xreallocarray(*v, *nv + 1, sizeof(**v));
  (*v)[*nv].name = xstrndup(p, len);
  (*v)[*nv].n = 1;
  (*nv)++;
}

int sbx_kmsg_counts(const char *kmsg_path, const char *tag, sbx_count_fn fn, void *arg,
                    err_t **e)
{
  cleanup_free char *text = NULL;
  err_t *e2 = NULL;
  /* the file stops growing at KMSG_MAX_BYTES plus the last lines of racing tracers */
  if (file_read_all(kmsg_path, 2 * KMSG_MAX_BYTES, &text, NULL, &e2) < 0) {
    if (e2->code == ERR_NOT_FOUND) {
      err_free(&e2);
      return 0;
    }
    *e = e2;
    return err_wrap(e, "sandbox kernel log");
  }
  struct name_count *v = NULL;
  size_t nv = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    count_line(line, tag, &v, &nv);
  for (size_t i = 0; i < nv; i++) {
    fn(arg, v[i].name, v[i].n);
    free(v[i].name);
  }
  free(v);
  return 0;
}
