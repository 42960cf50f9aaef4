/* monitor_loop.c - crisp-monitor while the container runs, and after (monitor_sup.h). */
#include "runtimes/monitor_sup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "runtimes/executor.h"
#include "runtimes/monitor_int.h"

/* pollfd slots: signals, container exit, stdout, stderr, ctl.sock, connections, the
 * container's stdin (room for an attacher's input), attachers */
enum {
  PF_SIG, PF_PID, PF_OUT, PF_ERR, PF_CTL, PF_CONN, PF_IN = PF_CONN + MON_MAX_CONN, PF_ATT,
  PF_N = PF_ATT + MON_MAX_ATTACH
};

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_records(struct mon *m)
{
  if (m->rec.len == 0)
    return;
  if (m->log_fd >= 0) {
    err_t *e = NULL;
    if (fd_write_all(m->log_fd, m->rec.data, m->rec.len, &e) < 0 && !m->log_write_failed) {
      /* keep draining the container's output, as containerd does: a full disk must
       * not block the container on a full pipe */
      log_error("cannot write the container log", "path", m->spec->log_path, "error", e->msg, NULL);
      m->log_write_failed = true;
    }
    err_free(&e);
  }
  buf_reset(&m->rec);
}

static void stream_eof(struct mon *m, int i)
{
  crilog_flush(&m->log[i], mon_now_ns(), &m->rec);
  write_records(m);
  close(m->src[i]);
  m->src[i] = -1;
}

static void copy_output(struct mon *m, int i)
{
  char tmp[16384];
  ssize_t n = read(m->src[i], tmp, sizeof(tmp));
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {   /* EOF; a pty's master reads EIO once the slave is gone */
    stream_eof(m, i);
    return;
  }
  crilog_feed(&m->log[i], mon_now_ns(), tmp, (size_t)n, &m->rec);
  write_records(m);
  mon_att_output(m, i, tmp, (size_t)n);
}

/* The log file is reopened by path: kubelet renamed the old one away to rotate it.
 * The new one is opened before the old one is closed, so a failure keeps logging. */
static int reopen_log(struct mon *m, err_t **e)
{
  if (!m->spec->log_path)
    return 0;
  int fd;
  if (mon_open_log(m->spec->log_path, &fd, e) < 0)
    return -1;
  if (m->log_fd >= 0)
    close(m->log_fd);
  m->log_fd = fd;
  m->log_write_failed = false;
  return 0;
}

static void ctl_answer(struct mon *m, struct mon_conn *c)
{
  cleanup_buf struct buf reply = BUF_INIT;
  err_t *e = NULL;
  if (strcmp(c->buf, "reopen") == 0) {
    if (reopen_log(m, &e) == 0)
      buf_puts(&reply, "ok\n");
  } else if (strncmp(c->buf, "attach ", 7) == 0) {
    mon_att_add(m, c->fd, c->buf + 7);   /* the connection is the attacher's now */
    c->fd = -1;
    return;
  } else {
    err_set(&e, ERR_INVALID, 0, "unknown request \"%.32s\"", c->buf);
  }
  if (e) {
    buf_printf(&reply, "err %s %s\n", err_code_name(e->code), e->msg);
    err_free(&e);
  }
  ssize_t r = send(c->fd, reply.data, reply.len, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)r;   /* a client that left gets nothing */
  close(c->fd);
  c->fd = -1;
}

static void ctl_read(struct mon *m, struct mon_conn *c)
{
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    close(c->fd);
    c->fd = -1;
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  char *nl = strchr(c->buf, '\n');
  if (nl)
    *nl = '\0';
  if (nl || c->len == sizeof(c->buf) - 1)
    ctl_answer(m, c);   /* an over-long request is answered as an unknown one */
}

/* A client that connects and never speaks must not lock the others out: with every
 * slot busy, the oldest connection is dropped for the new one. */
static void ctl_accept(struct mon *m)
{
  int fd = accept4(m->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  struct mon_conn *slot = &m->conn[0];
  for (int i = 0; i < MON_MAX_CONN; i++) {
    struct mon_conn *c = &m->conn[i];
    if (c->fd < 0 || (slot->fd >= 0 && c->seq < slot->seq))
      slot = c;
    if (c->fd < 0)
      break;
  }
  if (slot->fd >= 0)
    close(slot->fd);
  slot->fd = fd;
  slot->seq = ++m->conn_seq;
  slot->len = 0;
}

/* Reaps the first process and any orphan of the container handed to us as the
 * subreaper. __WALL: an executor may clone with a non-SIGCHLD exit signal. */
static void reap(struct mon *m)
{
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG | __WALL);
    if (p < 0 && errno == EINTR)
      continue;
    if (p <= 0)
      return;
    if (m->sbx.tracer) {
      enum sbx_event ev = sbx_tracer_handle(m->sbx.tracer, p, st);
      if (ev == SBX_EV_HANDLED)
        continue;   /* a stop dealt with, or a traced process of the container gone */
    }
    if (p == m->pid && !m->exited) {
      m->exited = true;
      m->status = st;
      m->finished_ns = mon_now_ns();
    }
  }
}

static void drain_signals(struct mon *m)
{
  struct signalfd_siginfo si[8];
  while (read(m->sig_fd, si, sizeof(si)) > 0)
    ;
}

/* The first process is gone. In its own PID namespace the kernel already killed the
 * rest; sharing the pod's or the host's, the rest of its cgroup is killed here, as runc
 * does, so nothing keeps running (or holds the output pipes) unsupervised. */
static void on_exit_of_first(struct mon *m)
{
  close(m->pidfd);
  m->pidfd = -1;
  mon_att_stdin_gone(m);
  if (m->spec->ns.pid == NS_MODE_CONTAINER)
    return;
  err_t *e = NULL;
  if (cgroup_kill_all(m->spec, SIGKILL, &e) < 0)
    log_warn("cannot kill the container's other processes", "error", e->msg, NULL);
  err_free(&e);
}

static void fill_poll(const struct mon *m, struct pollfd *p)
{
  p[PF_SIG] = (struct pollfd){.fd = m->sig_fd, .events = POLLIN};
  p[PF_PID] = (struct pollfd){.fd = m->pidfd, .events = POLLIN};
  p[PF_OUT] = (struct pollfd){.fd = m->src[MON_OUT], .events = POLLIN};
  p[PF_ERR] = (struct pollfd){.fd = m->src[MON_ERR], .events = POLLIN};
  p[PF_CTL] = (struct pollfd){.fd = m->ctl_fd, .events = POLLIN};
  for (int i = 0; i < MON_MAX_CONN; i++)
    p[PF_CONN + i] = (struct pollfd){.fd = m->conn[i].fd, .events = POLLIN};
  mon_att_fill_poll(m, &p[PF_ATT], &p[PF_IN]);
}

static void handle_events(struct mon *m, const struct pollfd *p)
{
  const short in = POLLIN | POLLHUP | POLLERR;
  if (p[PF_SIG].revents & POLLIN)
    drain_signals(m);
  if ((p[PF_SIG].revents | p[PF_PID].revents) & POLLIN) {
    bool was = m->exited;
    reap(m);
    if (m->exited && !was)
      on_exit_of_first(m);
  }
  if (m->src[MON_OUT] >= 0 && (p[PF_OUT].revents & in))
    copy_output(m, MON_OUT);
  if (m->src[MON_ERR] >= 0 && (p[PF_ERR].revents & in))
    copy_output(m, MON_ERR);
  mon_att_events(m, &p[PF_ATT], &p[PF_IN]);
  if (p[PF_CTL].revents & POLLIN)
    ctl_accept(m);
  for (int i = 0; i < MON_MAX_CONN; i++)
    if (p[PF_CONN + i].fd >= 0 && m->conn[i].fd >= 0 && (p[PF_CONN + i].revents & in))
      ctl_read(m, &m->conn[i]);
}

void mon_supervise(struct mon *m)
{
  int64_t drain_until = -1;
  /* a traced process may have stopped before the signalfd was there to say so */
  if (m->sbx.tracer) {
    reap(m);
    if (m->exited)
      on_exit_of_first(m);
  }
  for (;;) {
    /* after the exit: until the output is read and handed to the attachers */
    bool out_open = m->src[MON_OUT] >= 0 || m->src[MON_ERR] >= 0 || mon_att_pending(m);
    if (m->exited && drain_until < 0)
      drain_until = mono_ms() + MON_DRAIN_MS;
    if (m->exited && (!out_open || mono_ms() >= drain_until))
      break;
    struct pollfd p[PF_N];
    fill_poll(m, p);
    int wait = -1;   /* running: until something happens; exited: until the drain ends */
    if (m->exited) {
      int64_t left = drain_until - mono_ms();
      wait = left > 0 ? (int)left : 0;
    }
    int n = poll(p, PF_N, wait);
    if (n < 0 && errno != EINTR) {
      log_error("poll failed", "error", strerror(errno), NULL);
      return;
    }
    if (n > 0)
      handle_events(m, p);
  }
}

static void reap_all_left(void)
{
  while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
    ;
}

void mon_finish(struct mon *m)
{
  if (!m->exited) {   /* the loop gave up (it cannot poll): no container without us */
    kill(m->pid, SIGKILL);
    while (waitpid(m->pid, &m->status, __WALL) < 0 && errno == EINTR)
      ;
    m->exited = true;
    m->finished_ns = mon_now_ns();
  }
  for (int i = MON_OUT; i <= MON_ERR; i++)
    if (m->src[i] >= 0)
      stream_eof(m, i);   /* drain time is up: the rest is written as it is */
  mon_att_close_all(m);   /* their sessions end */
  struct ctr_usage u;
  memset(&u, 0, sizeof(u));
  err_t *e = NULL;
  if (cgroup_usage(m->spec, &u, &e) < 0) {
    log_debug("no cgroup usage for the exit reason", "error", e->msg, NULL);
    err_free(&e);
  }
  struct ctr_exit x;
  mon_exit_from_status(m->status, u.oom_killed, m->finished_ns, &x);
  if (ns_cleanup(m->spec, &e) < 0) {
    log_warn("container cleanup failed", "error", e->msg, NULL);
    err_free(&e);
  } else {
    x.cleaned = true;   /* RemoveContainer need not do it again */
  }
  reap_all_left();
  cleanup_free char *ctl = path_join(m->dir, MON_CTL);
  unlink(ctl);
  /* exit.json is the last thing the monitor writes: once it exists the state dir is
   * crispd's alone (it may remove it) */
  if (mon_exit_write(m->dir, &x, &e) < 0) {
    log_error("cannot record the container's exit", "error", e->msg, NULL);
    err_free(&e);
  }
}
