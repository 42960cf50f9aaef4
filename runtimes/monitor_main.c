/* monitor_main.c - crisp-monitor's two modes (monitor_proc.h). */
#include "runtimes/monitor_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/trim.h"
#include "base/xalloc.h"
#include "runtimes/executor.h"
#include "runtimes/monitor_int.h"
#include "runtimes/monitor_sbx.h"
#include "runtimes/monitor_sup.h"

/* fd 3 must be the report pipe crispd passed; it is made close-on-exec at once so
 * neither the container nor an exec'd process ever holds it (crispd waits for its EOF). */
static int take_report_fd(void)
{
  struct stat st;
  if (fstat(MON_REPORT_FD, &st) < 0 || !S_ISFIFO(st.st_mode))
    return -1;
  if (fcntl(MON_REPORT_FD, F_SETFD, FD_CLOEXEC) < 0)
    return -1;
  return MON_REPORT_FD;
}

static void fail(int report, err_t **e)
{
  if (report >= 0)
    mon_report(report, 0, *e);
  else
    log_error("crisp-monitor failed", "error", (*e)->msg, NULL);
  err_free(e);
}

/* The monitor's own diagnostics: crispd's stderr may belong to a journal stream that
 * ends with crispd, the monitor's file lives as long as the container's state. */
static void redirect_stderr(const char *dir)
{
  cleanup_free char *path = path_join(dir, MON_LOG);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0)
    return;
  dup2(fd, 2);   /* not close-on-exec, but the executor replaces 0-2 in the container */
  close(fd);
}

/* The detached monitor: builds the container, reports, supervises, records the exit. */
static int supervise(const char *dir, int report)
{
  if (chdir("/") < 0)
    return 1;
  umask(022);
  redirect_stderr(dir);
  struct mon m;
  mon_init(&m);
  err_t *e = NULL;
  if (mon_setup(&m, dir, &e) < 0) {
    log_info("container did not start", "dir", dir, "error", e->msg, NULL);
    fail(report, &e);
    mon_release(&m);
    return 1;
  }
  mon_report(report, m.pid, NULL);
  close(report);
  char pid[16];
  snprintf(pid, sizeof(pid), "%d", (int)m.pid);
  log_info("container started", "id", m.spec->id, "pid", pid, NULL);
  trim_startup_pages();   /* the loop needs little of what building the container did */
  mon_supervise(&m);
  mon_finish(&m);
  log_info("container exited", "id", m.spec->id, NULL);
  mon_release(&m);
  return 0;
}

static int start_main(const char *dir)
{
  int report = take_report_fd();
  if (report < 0) {
    fprintf(stderr, "crisp-monitor start: fd 3 must be crispd's report pipe\n");
    return 2;
  }
  err_t *e = NULL;
  if (dir[0] != '/') {
    err_set(&e, ERR_INVALID, 0, "state directory %s is not absolute", dir);
    fail(report, &e);
    return 1;
  }
  pid_t child = fork();
  if (child < 0) {
    err_sys(&e, errno, "fork");
    fail(report, &e);
    return 1;
  }
  if (child > 0)
    return 0;   /* crispd reaps this one; the child is reparented to init */
  setsid();     /* cannot fail: a fresh child is no process group leader */
  return supervise(dir, report);
}

/* ExecSync's timeout: crispd sends SIGTERM. The command runs in its own session (the
 * executor makes one), out of reach of a kill of our process group, so we kill its
 * group ourselves. The handler only writes to a self-pipe; handlers, unlike a blocked
 * mask, do not survive the command's execve. The pipe is global only because a
 * handler can reach nothing else. */
static int term_pipe[2] = {-1, -1};

static void on_term(int sig)
{
  char c = (char)sig;
  ssize_t r = write(term_pipe[1], &c, 1);
  (void)r;
}

static int catch_term(void)
{
  if (pipe2(term_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term;
  sa.sa_flags = SA_RESTART;   /* the executor's reads and waits go on undisturbed */
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGTERM, &sa, NULL);
}

/* Waits for the command (our child: the executor clones it with CLONE_PARENT). */
static int wait_exec(pid_t pid)
{
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  struct pollfd p[2] = {{.fd = term_pipe[0], .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
  while (pidfd >= 0 && !(p[1].revents & POLLIN)) {
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[0].revents & POLLIN) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      p[0].fd = -1;
    }
  }
  int st;
  while (waitpid(pid, &st, __WALL) < 0) {
    if (errno != EINTR)
      return 255;
  }
  if (pidfd >= 0)
    close(pidfd);
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* The same for a sandboxed command: we are the tracer of it and of everything it
 * starts, so every wait status goes to the tracer, woken by SIGCHLD (blocked since
 * before the command existed, read from sig_fd). What the command leaves running when
 * it exits dies with us (PTRACE_O_EXITKILL): a sandboxed process never runs untraced. */
static int wait_exec_traced(pid_t pid, int sig_fd, struct sbx_tracer *t)
{
  struct pollfd p[2] = {{.fd = term_pipe[0], .events = POLLIN}, {.fd = sig_fd, .events = POLLIN}};
  for (;;) {
    int st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
      if (sbx_tracer_handle(t, w, st) == SBX_EV_ROOT_EXIT || (w == pid && !WIFSTOPPED(st)))
        return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    if (w < 0 && errno == ECHILD)
      return 255;
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      return 255;
    if (p[0].revents & POLLIN) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      p[0].fd = -1;
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si[8];
      while (read(sig_fd, si, sizeof(si)) > 0)
        ;
    }
  }
}

struct exec_flags {
  bool tty;     /* fds 0-2 are a pty's slave: the command's controlling terminal */
  bool in;      /* fd 0 is the command's stdin (else /dev/null) */
  bool console; /* tty: fd 0 is a unix socket; the pty is made in the container */
};

static int exec_start(const char *dir, char **argv, const struct exec_flags *f,
                      struct ctr_spec **spec_out, struct mon_sbx *sbx, pid_t *pid, err_t **e)
{
  bool held = false, exists = false;
  if (mon_lock_held(dir, &held, &exists, e) < 0)
    return -1;
  cleanup_free char *exit_path = path_join(dir, MON_EXIT);
  if (!held || access(exit_path, F_OK) == 0)
    return err_set(e, ERR_PRECONDITION, 0, "container is not running");
  pid_t target;
  int64_t started;
  if (mon_started_read(dir, &target, &started, e) < 0) {
    if ((*e)->code == ERR_NOT_FOUND)
      (*e)->code = ERR_PRECONDITION;
    return err_wrap(e, "container is not running");
  }
  cleanup_free char *spec_path = path_join(dir, MON_SPEC);
  struct ctr_spec *spec = NULL;
  if (spec_read(spec_path, &spec, e) < 0)
    return -1;
  *spec_out = spec;   /* the tracer keeps pointers into it */
  if (mon_sbx_prepare(spec, dir, false, sbx, e) < 0)
    return -1;
  struct exec_spec x = {.argv = argv, .tty = f->tty, .stdin_open = f->in, .console_socket = f->console};
  while (argv[x.argc])
    x.argc++;
  struct ctr_stdio io = {.in = f->in || f->tty ? 0 : -1, .out = 1, .err = 2};
  if (ns_exec_traced(spec, target, &x, &io, mon_sbx_trace(sbx), pid, e) < 0)
    return -1;
  if (mon_sbx_follow_uts(sbx, *pid, e) < 0) {
    kill(*pid, SIGKILL);
    return -1;
  }
  return 0;
}

/* SIGCHLD to a signalfd, for a tracer's loop; blocked before any child exists. */
static int sigchld_fd(void)
{
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
    return -1;
  return signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int exec_main(const char *dir, char **argv, const struct exec_flags *f)
{
  int report = take_report_fd();
  err_t *e = NULL;
  pid_t pid;
  int sig_fd = sigchld_fd();
  if (catch_term() < 0 || sig_fd < 0) {
    err_sys(&e, errno, "catch SIGTERM and SIGCHLD");
    fail(report, &e);
    return 255;
  }
  struct ctr_spec *spec = NULL;
  struct mon_sbx sbx;
  memset(&sbx, 0, sizeof(sbx));
  if (exec_start(dir, argv, f, &spec, &sbx, &pid, &e) < 0) {
    fail(report, &e);
    mon_sbx_clear(&sbx);
    spec_free(spec);
    return 255;
  }
  /* the command exec'd, so this mask is ours alone: a crispd gone by now makes the
   * report EPIPE instead of killing us before we can reap the command */
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigprocmask(SIG_BLOCK, &pipe_only, NULL);
  if (report >= 0) {
    mon_report(report, pid, NULL);
    close(report);
  }
  int rc = sbx.tracer ? wait_exec_traced(pid, sig_fd, sbx.tracer) : wait_exec(pid);
  mon_sbx_clear(&sbx);
  spec_free(spec);
  return rc;
}

/* exec [--tty] [--stdin] [--console-socket] STATE_DIR -- COMMAND [ARG...] */
static int exec_args(int argc, char **argv)
{
  struct exec_flags f = {0};
  int i = 2;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2]; i++) {
    if (strcmp(argv[i], "--tty") == 0)
      f.tty = true;
    else if (strcmp(argv[i], "--stdin") == 0)
      f.in = true;
    else if (strcmp(argv[i], "--console-socket") == 0)
      f.console = f.tty = true;
    else
      return -1;
  }
  if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0)
    return -1;
  return exec_main(argv[i], argv + i + 2, &f);
}

int monitor_main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "start") == 0)
    return start_main(argv[2]);
  int rc = argc >= 5 && strcmp(argv[1], "exec") == 0 ? exec_args(argc, argv) : -1;
  if (rc >= 0)
    return rc;
  fprintf(stderr, "usage: crisp-monitor start STATE_DIR\n"
                  "       crisp-monitor exec [--tty] [--stdin] [--console-socket] STATE_DIR -- COMMAND [ARG...]\n");
  return 2;
}
