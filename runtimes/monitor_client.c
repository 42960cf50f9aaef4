/* monitor_client.c - crispd's side of crisp-monitor: start, state, log reopen.
 * Nothing here links the executor: crispd never forks a container itself. */
#include "runtimes/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/monitor_int.h"

extern char **environ;

#define MONITOR_START_TIMEOUT_MS 60000
#define MONITOR_CTL_TIMEOUT_MS 10000

static void actions_stdio(posix_spawn_file_actions_t *fa, int fd, int target, int mode)
{
  if (fd >= 0)
    posix_spawn_file_actions_adddup2(fa, fd, target);
  else
    posix_spawn_file_actions_addopen(fa, target, "/dev/null", mode, 0);
}

int mon_spawn(char *const argv[], int out, int err, int report, bool new_pgrp, pid_t *pid,
              int *pidfd, err_t **e)
{
  return mon_spawn_io(argv, -1, out, err, report, new_pgrp, pid, pidfd, e);
}

int mon_spawn_io(char *const argv[], int in, int out, int err, int report, bool new_pgrp,
                 pid_t *pid, int *pidfd, err_t **e)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  actions_stdio(&fa, in, 0, O_RDONLY);
  actions_stdio(&fa, out, 1, O_WRONLY);
  actions_stdio(&fa, err, 2, O_WRONLY);
  posix_spawn_file_actions_adddup2(&fa, report, MON_REPORT_FD);
  /* crispd's descriptors are all O_CLOEXEC; this is for a library that forgot */
  posix_spawn_file_actions_addclosefrom_np(&fa, MON_REPORT_FD + 1);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);   /* grpc ignores SIGPIPE: not the helper */
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_pgrp) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&at, 0);
  }
  posix_spawnattr_setflags(&at, flags);
  int rc = posix_spawn(pid, argv[0], &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0)
    return err_sys(e, rc, "run %s", argv[0]);
  *pidfd = (int)syscall(SYS_pidfd_open, *pid, 0);
  if (*pidfd < 0) {
    int saved = errno;
    kill(*pid, SIGKILL);
    mon_reap(*pid, -1, 0);
    return err_sys(e, saved, "pidfd_open");
  }
  return 0;
}

int mon_reap(pid_t pid, int pidfd, int timeout_ms)
{
  if (pidfd >= 0) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int r;
    do
      r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0)
      kill(pid, SIGKILL);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return st;
}

static void describe_status(int st, char *out, size_t cap)
{
  if (WIFSIGNALED(st))
    snprintf(out, cap, "was killed by signal %d", WTERMSIG(st));
  else
    snprintf(out, cap, "exited with status %d", WEXITSTATUS(st));
}

/* After a timeout the monitor may sit anywhere in its start; it is killed (its
 * container, if any, then shows as exited with "crisp-monitor died"). */
static void kill_stuck_monitor(const char *state_dir)
{
  bool held = false, exists = false;
  err_t *ignored = NULL;
  cleanup_free char *path = path_join(state_dir, MON_PIDFILE);
  cleanup_free char *text = NULL;
  if (mon_lock_held(state_dir, &held, &exists, &ignored) == 0 && held &&
      file_read_all(path, 64, &text, NULL, &ignored) == 0) {
    long pid = strtol(text, NULL, 10);
    if (pid > 1)
      kill((pid_t)pid, SIGKILL);
  }
  err_free(&ignored);
}

int monitor_start_timeout(const char *helper, const char *state_dir, int timeout_ms, pid_t *pid,
                          err_t **e)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return err_sys(e, errno, "start crisp-monitor: pipe");
  cleanup_close int rd = p[0];
  cleanup_close int wr = p[1];
  char *argv[] = {(char *)helper, "start", (char *)state_dir, NULL};
  pid_t child;
  int pidfd_raw;
  if (mon_spawn(argv, -1, -1, wr, false, &child, &pidfd_raw, e) < 0)
    return err_wrap(e, "start crisp-monitor");
  cleanup_close int pidfd = pidfd_raw;
  close(steal_fd(&wr));   /* EOF on rd once every monitor process is gone */

  char line[MON_REPORT_MAX];
  err_t *re = NULL;
  int rc = mon_read_line(rd, timeout_ms, line, sizeof(line), &re);
  /* the first process only forks the detached monitor and exits; after a timeout
   * it is killed at once */
  int wait_ms = rc == 0 ? 5000 : re->code == ERR_DEADLINE ? 0 : 1000;
  int st = mon_reap(child, pidfd, wait_ms);
  if (rc < 0 && re->code == ERR_DEADLINE) {
    kill_stuck_monitor(state_dir);
    err_free(&re);
    return err_set(e, ERR_DEADLINE, 0, "start crisp-monitor: no report within %d ms", timeout_ms);
  }
  if (rc < 0) {
    char how[64];
    describe_status(st, how, sizeof(how));
    err_set(e, ERR_INTERNAL, re->sys_errno, "crisp-monitor %s without reporting (%s)", how,
            re->msg);
    err_free(&re);
    return -1;
  }
  if (mon_report_parse(line, pid, e) < 0)
    return err_wrap(e, "start container");
  return 0;
}

int monitor_start(const char *helper, const char *state_dir, pid_t *pid, err_t **e)
{
  return monitor_start_timeout(helper, state_dir, MONITOR_START_TIMEOUT_MS, pid, e);
}

/* A monitor that is gone without an exit.json was killed (or crashed): the container
 * has no supervisor, so it is reported exited. The verdict is written down once, so
 * finished_at does not move on every poll. */
static void record_dead_monitor(const char *state_dir, struct ctr_runtime_state *out)
{
  out->exited = true;
  out->exit.exit_code = 255;   /* containerd's "unknown exit code" */
  out->exit.signal = 0;
  out->exit.finished_at_ns = mon_now_ns();
  mon_copy_field(out->exit.reason, sizeof(out->exit.reason), "Error");
  mon_copy_field(out->exit.message, sizeof(out->exit.message), "crisp-monitor died");
  err_t *ignored = NULL;
  mon_exit_write(state_dir, &out->exit, &ignored);
  err_free(&ignored);
}

int monitor_state(const char *state_dir, struct ctr_runtime_state *out, err_t **e)
{
  memset(out, 0, sizeof(*out));
  /* the lock first: once it is free the monitor is gone and its files are final */
  bool held = false, pidfile = false;
  if (mon_lock_held(state_dir, &held, &pidfile, e) < 0)
    return err_wrap(e, "container state");
  out->monitor_alive = held;
  err_t *fe = NULL;
  if (mon_started_read(state_dir, &out->pid, &out->started_at_ns, &fe) == 0)
    out->started = true;
  else if (fe->code != ERR_NOT_FOUND)
    goto fail;
  err_free(&fe);
  if (mon_exit_read(state_dir, &out->exit, &fe) == 0)
    out->exited = true;
  else if (fe->code != ERR_NOT_FOUND)
    goto fail;
  err_free(&fe);
  if (!out->exited && pidfile && !held)
    record_dead_monitor(state_dir, out);
  return 0;
fail:
  *e = fe;
  return err_wrap(e, "container state");
}

int mon_ctl_connect(const char *state_dir, int *out, err_t **e)
{
  struct sockaddr_un sa;
  int dirfd_raw = -1;
  if (mon_sock_addr(state_dir, MON_CTL, &sa, &dirfd_raw, e) < 0)
    return -1;
  cleanup_close int dirfd = dirfd_raw;
  cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return err_sys(e, errno, "socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    if (errno == ENOENT || errno == ECONNREFUSED)
      return err_set(e, ERR_PRECONDITION, errno, "container is not running");
    return err_sys(e, errno, "connect %s/%s", state_dir, MON_CTL);
  }
  *out = steal_fd(&fd);
  return 0;
}

int monitor_reopen_log(const char *state_dir, err_t **e)
{
  int fd_raw = -1;
  if (mon_ctl_connect(state_dir, &fd_raw, e) < 0)
    return err_wrap(e, "reopen container log");
  cleanup_close int fd = fd_raw;
  static const char req[] = "reopen\n";
  if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
    return err_sys(e, errno, "reopen container log: send");
  char line[MON_REPORT_MAX];
  if (mon_read_line(fd, MONITOR_CTL_TIMEOUT_MS, line, sizeof(line), e) < 0)
    return err_wrap(e, "reopen container log");
  if (strcmp(line, "ok") == 0)
    return 0;
  if (strncmp(line, "err ", 4) == 0)
    mon_err_parse(line + 4, e);
  else
    err_set(e, ERR_INTERNAL, 0, "garbled answer \"%.64s\"", line);
  return err_wrap(e, "reopen container log");
}

pid_t monitor_pid_read(const char *state_dir)
{
  cleanup_free char *path = path_join(state_dir, MON_PIDFILE);
  cleanup_free char *text = NULL;
  err_t *e = NULL;
  if (file_read_all(path, 64, &text, NULL, &e) < 0) {
    err_free(&e);
    return -1;
  }
  long pid = strtol(text, NULL, 10);
  return pid > 1 && pid <= INT32_MAX ? (pid_t)pid : -1;
}

/* The monitor's pidfd, or -1 when no monitor holds the lock (gone, or never there).
 * The lock is checked again after pidfd_open: while it is held the pid in the file is
 * the monitor's, so the pidfd cannot name a process that reused a stale pid. */
static int held_monitor_pidfd(const char *state_dir, err_t **e)
{
  bool held, exists;
  if (mon_lock_held(state_dir, &held, &exists, e) < 0 || !held)
    return -1;
  pid_t pid = monitor_pid_read(state_dir);
  if (pid < 0)
    return err_set(e, ERR_INTERNAL, 0, "%s/%s is locked but names no pid", state_dir, MON_PIDFILE);
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return errno == ESRCH ? -1 : err_sys(e, errno, "pidfd_open %d", (int)pid);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (mon_lock_held(state_dir, &held, &exists, e) < 0 || !held) {
    close(fd);
    return -1;
  }
  return fd;
}

#define MON_KILL_WAIT_MS 5000

static bool pidfd_ends(int fd, int timeout_ms)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int rc;
  do
    rc = poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

int monitor_wait_gone(const char *state_dir, int timeout_ms, err_t **e)
{
  cleanup_close int fd = held_monitor_pidfd(state_dir, e);
  if (fd < 0)
    return *e ? -1 : 0;
  if (pidfd_ends(fd, timeout_ms))
    return 0;
  syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
  if (pidfd_ends(fd, MON_KILL_WAIT_MS))
    return 0;
  return err_set(e, ERR_INTERNAL, 0, "the monitor of %s did not exit after SIGKILL", state_dir);
}
