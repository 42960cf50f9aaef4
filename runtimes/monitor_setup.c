/* monitor_setup.c - crisp-monitor up to a running container (monitor_sup.h). */
#include "runtimes/monitor_sup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fdpass.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/executor.h"
#include "runtimes/monitor_int.h"

void mon_init(struct mon *m)
{
  memset(m, 0, sizeof(*m));
  m->pidfd = m->lock_fd = m->log_fd = m->ctl_fd = m->sig_fd = m->in_w = -1;
  m->src[MON_OUT] = m->src[MON_ERR] = -1;
  for (int i = 0; i < MON_MAX_CONN; i++)
    m->conn[i].fd = -1;
  for (int i = 0; i < MON_MAX_ATTACH; i++)
    m->att[i].fd = -1;
  crilog_init(&m->log[MON_OUT], "stdout");
  crilog_init(&m->log[MON_ERR], "stderr");
}

static void close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

void mon_release(struct mon *m)
{
  close_fd(&m->pidfd);
  close_fd(&m->log_fd);
  close_fd(&m->ctl_fd);
  close_fd(&m->sig_fd);
  close_fd(&m->in_w);
  close_fd(&m->src[MON_OUT]);
  close_fd(&m->src[MON_ERR]);
  for (int i = 0; i < MON_MAX_CONN; i++)
    close_fd(&m->conn[i].fd);
  mon_att_close_all(m);
  crilog_free(&m->log[MON_OUT]);
  crilog_free(&m->log[MON_ERR]);
  buf_free(&m->rec);
  mon_sbx_clear(&m->sbx);
  spec_free(m->spec);
  m->spec = NULL;
  free(m->dir);
  m->dir = NULL;
  close_fd(&m->lock_fd);   /* last: the lock says "a monitor is here" */
}

static bool state_file_exists(const char *dir, const char *name)
{
  cleanup_free char *path = path_join(dir, name);
  return access(path, F_OK) == 0;
}

/* monitor.pid appears already locked (written under a temporary name, locked, then
 * renamed), so monitor_state never sees the file without its lock and mistakes a
 * starting monitor for a dead one. */
static int lock_pidfile(struct mon *m, err_t **e)
{
  bool held = false, exists = false;
  if (mon_lock_held(m->dir, &held, &exists, e) < 0)
    return -1;
  if (held)
    return err_set(e, ERR_EXISTS, 0, "a crisp-monitor already runs in %s", m->dir);
  if (state_file_exists(m->dir, MON_STARTED) || state_file_exists(m->dir, MON_EXIT))
    return err_set(e, ERR_PRECONDITION, 0, "the container in %s was already started", m->dir);
  cleanup_free char *tmp = xasprintf("%s/%s.XXXXXX", m->dir, MON_PIDFILE);
  cleanup_free char *path = path_join(m->dir, MON_PIDFILE);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "create %s", tmp);
  m->lock_fd = fd;
  char text[32];
  int n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
  if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fchmod(fd, 0644) < 0 ||
      fd_write_all(fd, text, (size_t)n, e) < 0 || rename(tmp, path) < 0) {
    int saved = errno;
    unlink(tmp);
    return *e ? err_wrap(e, "%s", tmp) : err_sys(e, saved, "lock %s", path);
  }
  return 0;
}

int mon_open_log(const char *path, int *fd, err_t **e)
{
  cleanup_free char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (mkdir_p(dir, 0755, e) < 0)
      return err_wrap(e, "container log directory");
  }
  /* a symlink planted where the log goes must not take the log (and its appends)
   * anywhere else: the file itself is never followed */
  int f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0640);
  if (f < 0 && errno == ELOOP)
    return err_set(e, ERR_INVALID, errno, "container log %s is a symbolic link", path);
  if (f < 0)
    return err_sys(e, errno, "open container log %s", path);
  *fd = f;
  return 0;
}

static int set_nonblock(int fd, err_t **e)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return err_sys(e, errno, "fcntl O_NONBLOCK");
  return 0;
}

/* A tty: the container's init makes the pty in its own devpts instance (so its
 * terminal has a name in there, and the host's devpts never reaches a container) and
 * sends us the master over this socket pair (ns_start, runc's --console-socket). */
static int open_console_socket(int *console, struct ctr_stdio *io, err_t **e)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return err_sys(e, errno, "socketpair");
  *console = sv[0];
  io->in = sv[1];
  return 0;
}

/* We keep the master: output in, and input out, for attach. It was queued before the
 * container exec'd, and ns_start returns after that: it is there, or it never comes. */
static int take_pty(struct mon *m, int console, err_t **e)
{
  int master;
  if (fd_recv(console, 0, &master, e) < 0)
    return err_wrap(e, "the container's init sent no pty");
  m->src[MON_OUT] = master;
  if (m->spec->stdin_open && (m->in_w = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0)
    return err_sys(e, errno, "dup pty");
  return set_nonblock(master, e);
}

static int open_pipe(int *ours, int *theirs, bool ours_reads, err_t **e)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return err_sys(e, errno, "pipe");
  *ours = ours_reads ? p[0] : p[1];
  *theirs = ours_reads ? p[1] : p[0];
  return 0;
}

/* Pipes: stdout and stderr read by the monitor. stdin only with stdin_open, its write
 * end kept by the monitor for attach, non-blocking (the monitor never waits for the
 * container to read; stdin_once: attach closes it when its first session ends). */
static int open_stdio(struct mon *m, struct ctr_stdio *io, int *console, err_t **e)
{
  io->in = io->out = io->err = -1;
  m->tty = m->spec->tty;
  if (m->tty)
    return open_console_socket(console, io, e);
  if (open_pipe(&m->src[MON_OUT], &io->out, true, e) < 0 ||
      open_pipe(&m->src[MON_ERR], &io->err, true, e) < 0 ||
      set_nonblock(m->src[MON_OUT], e) < 0 || set_nonblock(m->src[MON_ERR], e) < 0)
    return -1;
  if (m->spec->stdin_open &&
      (open_pipe(&m->in_w, &io->in, false, e) < 0 || set_nonblock(m->in_w, e) < 0))
    return -1;
  return 0;
}

static void close_theirs(struct ctr_stdio *io)
{
  int fds[3] = {io->in, io->out, io->err};
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      if (fds[j] == fds[i])
        fds[j] = -1;   /* one descriptor may serve twice */
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  io->in = io->out = io->err = -1;
}

/* ctl.sock, mode 0600: only root (crispd) may ask the monitor anything. */
static int ctl_listen(struct mon *m, err_t **e)
{
  struct sockaddr_un sa;
  int dirfd_raw = -1;
  if (mon_sock_addr(m->dir, MON_CTL, &sa, &dirfd_raw, e) < 0)
    return -1;
  cleanup_close int dirfd = dirfd_raw;
  cleanup_free char *path = path_join(m->dir, MON_CTL);
  unlink(path);
  m->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (m->ctl_fd < 0)
    return err_sys(e, errno, "socket");
  mode_t old = umask(0177);
  int rc = bind(m->ctl_fd, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (rc < 0)
    return err_sys(e, errno, "bind %s", path);
  if (listen(m->ctl_fd, MON_MAX_CONN) < 0)
    return err_sys(e, errno, "listen %s", path);
  return 0;
}

static int record_start(struct mon *m, int64_t started_ns, err_t **e)
{
  m->pidfd = (int)syscall(SYS_pidfd_open, m->pid, 0);
  if (m->pidfd < 0)
    return err_sys(e, errno, "pidfd_open %d", (int)m->pid);
  char text[32];
  int n = snprintf(text, sizeof(text), "%d\n", (int)m->pid);
  cleanup_free char *path = path_join(m->dir, MON_CTR_PID);
  if (file_write_atomic(path, text, (size_t)n, 0644, e) < 0 ||
      mon_started_write(m->dir, m->pid, started_ns, e) < 0)
    return -1;
  return 0;
}

/* Blocked only once the container exec'd (a blocked mask would be inherited by it, as
 * would an ignored signal), and before the report: if crispd is gone by then, writing
 * "ok" must be EPIPE, not a SIGPIPE that kills the monitor and orphans the container.
 * SIGTERM, SIGINT and SIGHUP are read from the signalfd and ignored (the monitor ends
 * with its container); SIGCHLD wakes the loop to reap the container's orphans. */
static int block_signals(struct mon *m, err_t **e)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGPIPE);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
    return err_sys(e, errno, "sigprocmask");
  sigdelset(&set, SIGPIPE);
  m->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (m->sig_fd < 0)
    return err_sys(e, errno, "signalfd");
  return 0;
}

/* The container started but cannot be recorded: it must not run unsupervised. */
static void abort_container(struct mon *m)
{
  kill(m->pid, SIGKILL);
  while (waitpid(m->pid, NULL, __WALL) < 0 && errno == EINTR)
    ;
  close_fd(&m->pidfd);
  m->pid = 0;
  err_t *ignored = NULL;
  ns_cleanup(m->spec, &ignored);
  err_free(&ignored);
}

static int build(struct mon *m, err_t **e)
{
  cleanup_free char *spec_path = path_join(m->dir, MON_SPEC);
  if (spec_read(spec_path, &m->spec, e) < 0)
    return -1;
  if (mon_sbx_prepare(m->spec, m->dir, true, &m->sbx, e) < 0)
    return -1;
  if (m->spec->log_path && mon_open_log(m->spec->log_path, &m->log_fd, e) < 0)
    return -1;
  struct ctr_stdio io;
  cleanup_close int console = -1;
  int rc = open_stdio(m, &io, &console, e);
  if (rc == 0)
    rc = ctl_listen(m, e);
  if (rc == 0)
    rc = ns_start_traced(m->spec, &io, mon_sbx_trace(&m->sbx), &m->pid, e);
  int64_t started_ns = mon_now_ns();
  close_theirs(&io);
  if (rc < 0)
    return -1;
  if ((console >= 0 && take_pty(m, console, e) < 0) || block_signals(m, e) < 0 ||
      mon_sbx_follow_uts(&m->sbx, m->pid, e) < 0 || record_start(m, started_ns, e) < 0) {
    abort_container(m);
    return -1;
  }
  return 0;
}

int mon_setup(struct mon *m, const char *dir, err_t **e)
{
  m->dir = xstrdup(dir);
  if (lock_pidfile(m, e) < 0)
    return err_wrap(e, "crisp-monitor");
  /* the container's orphans (and an executor's double fork) come back to us */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    err_sys(e, errno, "PR_SET_CHILD_SUBREAPER");
  else if (build(m, e) == 0)
    return 0;
  cleanup_free char *ctl = path_join(dir, MON_CTL);
  cleanup_free char *pidfile = path_join(dir, MON_PIDFILE);
  if (m->ctl_fd >= 0)
    unlink(ctl);
  unlink(pidfile);   /* still under our lock: "never started", not "died" */
  return -1;
}
