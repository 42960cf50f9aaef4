/* monitor_exec_io.c - an interactive exec from crispd (the Exec RPC): `crisp-monitor exec`
 * with the caller's stdio, started, watched and killed through a pidfd. */
#include "runtimes/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "runtimes/monitor_int.h"

/* ns_exec joins the container and execs: it takes milliseconds; this is for a
 * machine that is thrashing. */
#define EXEC_START_TIMEOUT_MS 60000
/* After SIGTERM the helper SIGKILLs the command's process group at once; a helper
 * still there this much later is SIGKILLed itself (with its process group). */
#define EXEC_KILL_GRACE_MS 2000

struct monitor_exec {
  pid_t helper;
  int pidfd;
  bool reaped;
  int status;
};

static char **exec_argv(const char *helper, const char *state_dir, const struct exec_spec *x,
                        bool in)
{
  size_t n = 0;
  while (x->argv[n])
    n++;
  char **argv = xcalloc(n + 8, sizeof(char *));
  size_t i = 0;
  argv[i++] = (char *)helper;
  argv[i++] = "exec";
  if (x->tty)
    argv[i++] = "--tty";
  if (x->console_socket)
    argv[i++] = "--console-socket";
  if (in)
    argv[i++] = "--stdin";
  argv[i++] = (char *)state_dir;
  argv[i++] = "--";
  for (size_t j = 0; j < n; j++)
    argv[i++] = x->argv[j];
  return argv;
}

static void reap(struct monitor_exec *x, int timeout_ms)
{
  if (x->reaped)
    return;
  x->status = mon_reap(x->helper, x->pidfd, timeout_ms);
  x->reaped = true;
}

/* The helper reports "ok <pid>" once the command exec'd, "err ..." if it could not. */
static int read_report(struct monitor_exec *x, int rd, err_t **e)
{
  char line[MON_REPORT_MAX];
  err_t *re = NULL;
  if (mon_read_line(rd, EXEC_START_TIMEOUT_MS, line, sizeof(line), &re) < 0) {
    monitor_exec_kill(x);
    reap(x, EXEC_KILL_GRACE_MS);
    *e = re;
    return err_wrap(e, "exec in container: crisp-monitor exec did not report");
  }
  pid_t pid;
  if (mon_report_parse(line, &pid, e) < 0) {
    reap(x, EXEC_KILL_GRACE_MS);   /* it exits 255 right after an "err" */
    return -1;
  }
  return 0;
}

int monitor_exec_start(const char *exec_helper, const char *state_dir, const struct exec_spec *x,
                       int in, int out, int err, struct monitor_exec **out_exec, err_t **e)
{
  if (!x->argv || !x->argv[0])
    return err_set(e, ERR_INVALID, 0, "exec: empty command");
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return err_sys(e, errno, "exec: pipe");
  cleanup_close int rd = p[0];
  cleanup_close int wr = p[1];
  cleanup_free char **argv = exec_argv(exec_helper, state_dir, x, in >= 0);
  struct monitor_exec *m = xcalloc(1, sizeof(*m));
  if (mon_spawn_io(argv, in, out, err, wr, true, &m->helper, &m->pidfd, e) < 0) {
    free(m);
    return err_wrap(e, "exec in container");
  }
  close(steal_fd(&wr));
  if (read_report(m, rd, e) < 0) {   /* the helper's error names the container already */
    monitor_exec_free(m);
    return -1;
  }
  *out_exec = m;
  return 0;
}

int monitor_exec_fd(const struct monitor_exec *x) { return x->pidfd; }

int monitor_exec_wait(struct monitor_exec *x)
{
  reap(x, -1);
  if (WIFSIGNALED(x->status))
    return 128 + WTERMSIG(x->status);
  return WEXITSTATUS(x->status);
}

/* Through the pidfd: the helper's pid cannot have been reused while the pidfd is open. */
void monitor_exec_kill(struct monitor_exec *x)
{
  if (x && x->pidfd >= 0)
    syscall(SYS_pidfd_send_signal, x->pidfd, SIGTERM, NULL, 0);
}

void monitor_exec_free(struct monitor_exec *x)
{
  if (!x)
    return;
  if (!x->reaped) {
    monitor_exec_kill(x);
    struct pollfd p = {.fd = x->pidfd, .events = POLLIN};
    if (poll(&p, 1, EXEC_KILL_GRACE_MS) == 0)
      kill(-x->helper, SIGKILL);   /* not reaped yet: the group id is still ours */
    reap(x, -1);
  }
  close(x->pidfd);
  free(x);
}
