/* monitor_exec.c - ExecSync from crispd: `crisp-monitor exec` runs the command in the
 * container; this captures its output with caps and a timeout. */
#include "runtimes/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "runtimes/monitor_int.h"

/* After the helper exits, output still buffered in the pipes is read for this long.
 * A process the command left in the background may hold the pipes open for ever;
 * containerd's drain_exec_sync_io_timeout solves the same problem. */
#define EXEC_DRAIN_MS 2000

enum { IO_OUT, IO_ERR, IO_REPORT, IO_N };

struct exec_run {
  int fd[IO_N];          /* read ends; -1 once at EOF */
  struct buf *cap[2];    /* where stdout and stderr go */
  size_t max;
  char report[MON_REPORT_MAX];
  size_t report_len;
  pid_t helper;
  int pidfd;
  bool exited;
  int status;
};

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One readable descriptor: output beyond the cap is read and dropped, so the
 * process never blocks on a full pipe. */
static void read_one(struct exec_run *r, int i)
{
  char tmp[16384];
  ssize_t n = read(r->fd[i], tmp, sizeof(tmp));
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    close(r->fd[i]);
    r->fd[i] = -1;
    return;
  }
  size_t len = (size_t)n;
  if (i == IO_REPORT) {
    size_t room = sizeof(r->report) - 1 - r->report_len;
    len = len < room ? len : room;
    memcpy(r->report + r->report_len, tmp, len);
    r->report_len += len;
    r->report[r->report_len] = '\0';
    return;
  }
  struct buf *b = r->cap[i];
  size_t room = b->len < r->max ? r->max - b->len : 0;
  buf_append(b, tmp, len < room ? len : room);
}

static bool io_open(const struct exec_run *r)
{
  return r->fd[IO_OUT] >= 0 || r->fd[IO_ERR] >= 0 || r->fd[IO_REPORT] >= 0;
}

/* At the deadline the helper gets SIGTERM and kills the command (which the executor put
 * in a session of its own); if the helper is still there EXEC_KILL_GRACE_MS later, its
 * process group is SIGKILLed. After a timeout the helper's group is SIGKILLed before the
 * helper is reaped, while its pid (the group's id) cannot have been reused. */
#define EXEC_KILL_GRACE_MS 2000

static void on_deadline(struct exec_run *r, int64_t *kill_at, bool *timed_out)
{
  if (!*timed_out) {
    kill(r->helper, SIGTERM);
    *timed_out = true;
    *kill_at = mono_ms() + EXEC_KILL_GRACE_MS;
  } else {
    kill(-r->helper, SIGKILL);
    *kill_at = 0;
  }
}

/* Polls until the helper exited and the pipes are drained (or the drain time is up). */
static void exec_loop(struct exec_run *r, int64_t kill_at, bool *timed_out)
{
  int64_t drain_until = 0;
  while (!r->exited || io_open(r)) {
    int64_t now = mono_ms();
    if (r->exited && now >= drain_until)
      break;
    if (!r->exited && kill_at && now >= kill_at) {
      on_deadline(r, &kill_at, timed_out);
      continue;
    }
    int64_t until = r->exited ? drain_until : kill_at ? kill_at : -1;
    int wait = until < 0 ? -1 : until <= now ? 0 : (int)(until - now);
    struct pollfd p[IO_N + 1];
    for (int i = 0; i < IO_N; i++)
      p[i] = (struct pollfd){.fd = r->fd[i], .events = POLLIN};
    p[IO_N] = (struct pollfd){.fd = r->exited ? -1 : r->pidfd, .events = POLLIN};
    if (poll(p, IO_N + 1, wait) <= 0)
      continue;
    for (int i = 0; i < IO_N; i++)
      if (r->fd[i] >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        read_one(r, i);
    if (!r->exited && (p[IO_N].revents & POLLIN)) {
      if (*timed_out)
        kill(-r->helper, SIGKILL);
      r->status = mon_reap(r->helper, -1, 0);
      r->exited = true;
      drain_until = mono_ms() + EXEC_DRAIN_MS;
    }
  }
}

static char **exec_argv(const char *helper, const char *state_dir, const struct exec_spec *x)
{
  size_t n = 0;
  while (x->argv[n])
    n++;
  char **argv = xcalloc(n + 5, sizeof(char *));
  argv[0] = (char *)helper;
  argv[1] = "exec";
  argv[2] = (char *)state_dir;
  argv[3] = "--";
  for (size_t i = 0; i < n; i++)
    argv[4 + i] = x->argv[i];
  return argv;
}

static int exec_result_of(struct exec_run *r, struct exec_result *res, err_t **e)
{
  if (WIFSIGNALED(r->status))
    res->exit_code = 128 + WTERMSIG(r->status);
  else
    res->exit_code = WEXITSTATUS(r->status);
  char *nl = strchr(r->report, '\n');
  if (nl)
    *nl = '\0';
  pid_t pid;
  if (r->report_len == 0 || !nl) {
    if (res->timed_out)
      return 0;   /* killed before it could report: still a timeout */
    return err_set(e, ERR_INTERNAL, 0, "crisp-monitor exec ended (status %d) without reporting",
                   res->exit_code);
  }
  return mon_report_parse(r->report, &pid, e);
}

int monitor_exec_sync(const char *exec_helper, const char *state_dir, const struct exec_spec *x,
                      int64_t timeout_ms, size_t max_output, struct exec_result *res, err_t **e)
{
  res->exit_code = -1;
  res->timed_out = false;
  buf_reset(&res->out);
  buf_reset(&res->err);
  if (!x->argv || !x->argv[0])
    return err_set(e, ERR_INVALID, 0, "exec: empty command");
  int p[IO_N][2];
  for (int i = 0; i < IO_N; i++)
    if (pipe2(p[i], O_CLOEXEC) < 0) {
      int saved = errno;
      for (int j = 0; j < i; j++)
        close(p[j][0]), close(p[j][1]);
      return err_sys(e, saved, "exec: pipe");
    }
  cleanup_free char **argv = exec_argv(exec_helper, state_dir, x);
  struct exec_run r = {.cap = {&res->out, &res->err}, .max = max_output};
  int rc = mon_spawn(argv, p[IO_OUT][1], p[IO_ERR][1], p[IO_REPORT][1], true, &r.helper, &r.pidfd,
                     e);
  for (int i = 0; i < IO_N; i++) {
    close(p[i][1]);
    r.fd[i] = p[i][0];
  }
  if (rc == 0) {
    exec_loop(&r, timeout_ms > 0 ? mono_ms() + timeout_ms : 0, &res->timed_out);
    close(r.pidfd);
    rc = exec_result_of(&r, res, e);
  }
  for (int i = 0; i < IO_N; i++)
    if (r.fd[i] >= 0)
      close(r.fd[i]);
  return rc < 0 ? err_wrap(e, "exec in container") : 0;
}
