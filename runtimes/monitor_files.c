/* monitor_files.c - the monitor's state files and report lines (monitor_int.h). */
#include "runtimes/monitor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"

int64_t mon_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void mon_copy_field(char *dst, size_t cap, const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n >= cap)
    n = cap - 1;
  if (n)
    memcpy(dst, s, n);
  dst[n] = '\0';
}

static int write_json(const char *dir, const char *name, const struct buf *b, err_t **e)
{
  cleanup_free char *path = path_join(dir, name);
  return file_write_atomic(path, b->data, b->len, 0644, e);
}

int mon_started_write(const char *dir, pid_t pid, int64_t started_ns, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_printf(&b, "{\"pid\":%d,\"started_at\":%lld}\n", (int)pid, (long long)started_ns);
  return write_json(dir, MON_STARTED, &b, e);
}

int mon_exit_write(const char *dir, const struct ctr_exit *x, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_printf(&b, "{\"exit_code\":%d,\"signal\":%d,\"finished_at\":%lld,\"reason\":", x->exit_code,
             x->signal, (long long)x->finished_at_ns);
  buf_json_str(&b, x->reason);
  buf_puts(&b, ",\"message\":");
  buf_json_str(&b, x->message);
  buf_puts(&b, x->cleaned ? ",\"cleaned\":true}\n" : "}\n");
  return write_json(dir, MON_EXIT, &b, e);
}

static int read_json(const char *dir, const char *name, json_t **out, err_t **e)
{
  cleanup_free char *path = path_join(dir, name);
  cleanup_free char *text = NULL;
  if (file_read_all(path, MON_STATE_FILE_MAX, &text, NULL, e) < 0)
    return -1;
  if (json_parse(text, out, e) < 0) {
    (*e)->code = ERR_INTERNAL;   /* our own file is corrupt: not the caller's input */
    return err_wrap(e, "%s", path);
  }
  return 0;
}

static int get_int(const json_t *root, const char *key, long long *out, const char *dir,
                   const char *name, err_t **e)
{
  if (json_int(json_get(root, key), out) < 0)
    return err_set(e, ERR_INTERNAL, 0, "%s/%s: \"%s\" is not an integer", dir, name, key);
  return 0;
}

int mon_started_read(const char *dir, pid_t *pid, int64_t *started_ns, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (read_json(dir, MON_STARTED, &root, e) < 0)
    return -1;
  long long p, t;
  if (get_int(root, "pid", &p, dir, MON_STARTED, e) < 0 ||
      get_int(root, "started_at", &t, dir, MON_STARTED, e) < 0)
    return -1;
  if (p <= 0 || p > INT32_MAX)
    return err_set(e, ERR_INTERNAL, 0, "%s/%s: bad pid %lld", dir, MON_STARTED, p);
  *pid = (pid_t)p;
  *started_ns = t;
  return 0;
}

int mon_exit_read(const char *dir, struct ctr_exit *x, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (read_json(dir, MON_EXIT, &root, e) < 0)
    return -1;
  long long code, sig, t;
  if (get_int(root, "exit_code", &code, dir, MON_EXIT, e) < 0 ||
      get_int(root, "signal", &sig, dir, MON_EXIT, e) < 0 ||
      get_int(root, "finished_at", &t, dir, MON_EXIT, e) < 0)
    return -1;
  memset(x, 0, sizeof(*x));
  x->exit_code = (int)code;
  x->signal = (int)sig;
  x->finished_at_ns = t;
  mon_copy_field(x->reason, sizeof(x->reason), json_str(json_get(root, "reason")));
  mon_copy_field(x->message, sizeof(x->message), json_str(json_get(root, "message")));
  bool cleaned = false;   /* absent (an older monitor, or one that died): not known */
  if (json_bool(json_get(root, "cleaned"), &cleaned) == 0)
    x->cleaned = cleaned;
  return 0;
}

void mon_exit_from_status(int wstatus, bool oom_killed, int64_t finished_ns, struct ctr_exit *x)
{
  memset(x, 0, sizeof(*x));
  if (WIFSIGNALED(wstatus)) {
    x->signal = WTERMSIG(wstatus);
    x->exit_code = 128 + x->signal;
  } else {
    x->exit_code = WEXITSTATUS(wstatus);
  }
  x->finished_at_ns = finished_ns;
  const char *reason = oom_killed ? "OOMKilled" : x->exit_code == 0 ? "Completed" : "Error";
  mon_copy_field(x->reason, sizeof(x->reason), reason);
}

void mon_report(int fd, pid_t pid, const err_t *err)
{
  cleanup_buf struct buf b = BUF_INIT;
  if (!err) {
    buf_printf(&b, "ok %d\n", (int)pid);
  } else {
    buf_printf(&b, "err %s %s", err_code_name(err->code), err->msg);
    for (size_t i = 0; i < b.len; i++)
      if (b.data[i] == '\n' || b.data[i] == '\r')
        b.data[i] = ' ';
    buf_putc(&b, '\n');
  }
  err_t *ignored = NULL;
  fd_write_all(fd, b.data, b.len, &ignored);
  err_free(&ignored);
}

int mon_err_parse(const char *tail, err_t **e)
{
  for (int c = ERR_INTERNAL; c <= ERR_UNIMPLEMENTED; c++) {
    const char *name = err_code_name((enum err_code)c);
    size_t n = strlen(name);
    if (strncmp(tail, name, n) == 0 && (tail[n] == ' ' || tail[n] == '\0'))
      return err_set(e, (enum err_code)c, 0, "%s", tail[n] ? tail + n + 1 : name);
  }
  return err_set(e, ERR_INTERNAL, 0, "%s", tail);
}

int mon_report_parse(const char *line, pid_t *pid, err_t **e)
{
  if (strncmp(line, "ok ", 3) == 0) {
    char *end = NULL;
    errno = 0;
    long v = strtol(line + 3, &end, 10);
    if (errno == 0 && end != line + 3 && *end == '\0' && v > 0 && v <= INT32_MAX) {
      *pid = (pid_t)v;
      return 0;
    }
  } else if (strncmp(line, "err ", 4) == 0) {
    return mon_err_parse(line + 4, e);
  }
  return err_set(e, ERR_INTERNAL, 0, "crisp-monitor sent a garbled report \"%.64s\"", line);
}

int mon_lock_held(const char *dir, bool *held, bool *exists, err_t **e)
{
  cleanup_free char *path = path_join(dir, MON_PIDFILE);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  *held = false;
  *exists = fd >= 0;
  if (fd < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "open %s", path);
  /* a shared lock conflicts only with the monitor's exclusive one: concurrent
   * monitor_state calls do not disturb each other */
  if (flock(fd, LOCK_SH | LOCK_NB) == 0)
    return 0;   /* closing fd drops our lock */
  if (errno == EWOULDBLOCK) {
    *held = true;
    return 0;
  }
  return err_sys(e, errno, "lock %s", path);
}

int mon_sock_addr(const char *dir, const char *name, struct sockaddr_un *sa, int *dirfd,
                  err_t **e)
{
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  *dirfd = -1;
  cleanup_free char *path = path_join(dir, name);
  if (strlen(path) < sizeof(sa->sun_path)) {
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
  }
  *dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dirfd < 0)
    return err_sys(e, errno, "open %s", dir);
  int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", *dirfd, name);
  if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
    close(*dirfd);
    *dirfd = -1;
    return err_set(e, ERR_INVALID, ENAMETOOLONG, "socket name %s is too long", name);
  }
  return 0;
}

int mon_read_line(int fd, int timeout_ms, char *out, size_t cap, err_t **e)
{
  size_t len = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int wait = timeout_ms;
    if (timeout_ms >= 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long long spent = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
      wait = spent >= timeout_ms ? 0 : (int)(timeout_ms - spent);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, wait);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return err_sys(e, errno, "poll");
    if (r == 0)
      return err_set(e, ERR_DEADLINE, 0, "no answer within %d ms", timeout_ms);
    ssize_t n = read(fd, out + len, cap - 1 - len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0)
      return err_sys(e, errno, "read");
    if (n == 0)
      return err_set(e, ERR_UNAVAILABLE, 0, "closed before answering");
    len += (size_t)n;
    out[len] = '\0';
    char *nl = memchr(out, '\n', len);
    if (nl) {
      *nl = '\0';
      return 0;
    }
    if (len == cap - 1)
      return err_set(e, ERR_INTERNAL, 0, "answer longer than %zu bytes", cap - 1);
  }
}
