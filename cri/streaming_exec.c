/* streaming_exec.c - the exec and attach back ends of the streaming server.
 *
 * Both run the same way on the session's thread: output from the container is copied
 * to the client until it ends, then the session is finished; stdin, if asked for, is
 * pumped by a second thread, because reading the client's stdin blocks with no way to
 * poll it. That thread may still be reading when the session finishes (the client
 * hangs up on the status); the session's thread waits for it before freeing anything,
 * and the connection stays alive meanwhile (the server holds it for this thread).
 *
 * exec: `crisp-monitor exec` (runtimes/monitor.h) runs the command in the container with
 * ExecSync's isolation; crispd owns the other ends of its stdio: pipes, or the master
 * of a pty made in the container's own devpts (sent back over a socket pair), which
 * takes the resizes (TIOCSWINSZ) and whose slave is the command's controlling terminal. The exit code becomes the session's status. A client that goes
 * away kills the command.
 * attach: a connection to the container's monitor (monitor_attach_*); a client that goes
 * away only detaches. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fdpass.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "cri/streaming.h"
#include "runtimes/monitor.h"

#define IO_CHUNK 16384
#define PUMP_STACK (128 * 1024)
/* After the command exits, output still in the pipes is read for this long: a process
 * it left in the background may hold them open for ever (as ExecSync does). */
#define EXEC_DRAIN_MS 2000
/* the helper reported the command exec'd, so the pty was sent before: this is slack */
#define PTY_RECEIVE_MS 5000

/* --- stdin pump ------------------------------------------------------------------- */

struct pump {
  struct stream_session *s;
  /* len 0: end of stdin. -1: the other side is gone, stop. */
  int (*write)(void *arg, const void *p, size_t len);
  void (*client_gone)(void *arg);
  void *arg;
  pthread_t thread;
  bool running;
};

static void *pump_main(void *p)
{
  struct pump *u = p;
  char buf[IO_CHUNK];
  err_t *e = NULL;
  for (;;) {
    ssize_t n = stream_session_read_stdin(u->s, buf, sizeof(buf), &e);
    if (n < 0) {
      err_free(&e);
      u->client_gone(u->arg);
      break;
    }
    if (u->write(u->arg, buf, (size_t)n) < 0 || n == 0)
      break;
  }
  return NULL;
}

static int pump_start(struct pump *u, err_t **e)
{
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, PUMP_STACK);
  int rc = pthread_create(&u->thread, &attr, pump_main, u);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return err_sys(e, rc, "start the stdin thread");
  u->running = true;
  return 0;
}

static void pump_join(struct pump *u)
{
  if (u->running)
    pthread_join(u->thread, NULL);
  u->running = false;
}

/* --- exec ------------------------------------------------------------------------- */

struct exec_io {
  struct monitor_exec *x;
  int master;        /* tty: the pty's master, -1 otherwise */
  int in_w;          /* the command's stdin, our end (a dup of master with a tty) */
  int out_r, err_r;  /* its output, our ends (tty: out_r is master) */
  int stop_fd;       /* eventfd: the session is over, stdin writes give up */
  int console;       /* tty: our end of the socket the pty's master arrives on */
};

static void close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void on_tty_resize(void *arg, uint16_t w, uint16_t h)
{
  struct exec_io *io = arg;
  struct winsize ws = {.ws_row = h, .ws_col = w};
  ioctl(io->master, TIOCSWINSZ, &ws);
}

/* The pty is made inside the container (its devpts instance, so the command's
 * terminal has a name there); the command's side sends us the master over the
 * socket pair made here (SCM_RIGHTS), before it execs. */
static int open_console_socket(struct exec_io *io, int *theirs, err_t **e)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return err_sys(e, errno, "socketpair");
  io->console = sv[0];
  *theirs = sv[1];
  return 0;
}

static int receive_master(struct exec_io *io, err_t **e)
{
  if (fd_recv(io->console, PTY_RECEIVE_MS, &io->master, e) < 0)
    return err_wrap(e, "exec: no pty from the command's side");
  close_fd(&io->console);
  io->out_r = io->master;
  io->in_w = fcntl(io->master, F_DUPFD_CLOEXEC, 3);
  if (io->in_w < 0)
    return err_sys(e, errno, "dup the pty");
  for (int i = 0; i < 2; i++) {
    int fd = i ? io->in_w : io->out_r;
    if (fcntl(fd, F_SETFL, O_NONBLOCK | fcntl(fd, F_GETFL)) < 0)
      return err_sys(e, errno, "fcntl O_NONBLOCK");
  }
  return 0;
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

/* The command's stdio in child[0..2] (-1: /dev/null), ours in io. Non-blocking on our
 * side: output is polled, stdin writes wait with the stop eventfd. */
static int open_stdio(struct exec_io *io, const struct stream_opts *o, int child[3], err_t **e)
{
  io->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (io->stop_fd < 0)
    return err_sys(e, errno, "eventfd");
  if (o->tty) {
    if (open_console_socket(io, &child[0], e) < 0)
      return -1;
  } else if ((o->in && open_pipe(&io->in_w, &child[0], false, e) < 0) ||
             (o->out && open_pipe(&io->out_r, &child[1], true, e) < 0) ||
             (o->err && open_pipe(&io->err_r, &child[2], true, e) < 0)) {
    return -1;
  }
  int ours[3] = {io->in_w, io->out_r, io->err_r};
  for (int i = 0; i < 3; i++)
    if (ours[i] >= 0 && fcntl(ours[i], F_SETFL, O_NONBLOCK | fcntl(ours[i], F_GETFL)) < 0)
      return err_sys(e, errno, "fcntl O_NONBLOCK");
  return 0;
}

/* Writes all of p to the command's stdin, waiting for room; -1 once it is gone or the
 * session is over. */
static int exec_stdin(void *arg, const void *p, size_t len)
{
  struct exec_io *io = arg;
  if (len == 0) {   /* end of stdin: EOF for a pipe; a pty has no such thing */
    if (io->master < 0)
      close_fd(&io->in_w);
    return 0;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(io->in_w, (const char *)p + off, len - off);
    if (w >= 0) {
      off += (size_t)w;
      continue;
    }
    if (errno != EAGAIN && errno != EINTR)
      return -1;   /* EPIPE: the command closed its stdin or ended */
    struct pollfd f[2] = {{.fd = io->in_w, .events = POLLOUT},
                          {.fd = io->stop_fd, .events = POLLIN}};
    if (poll(f, 2, -1) < 0 && errno != EINTR)
      return -1;
    if (f[1].revents)
      return -1;
  }
  return 0;
}

static void exec_client_gone(void *arg)
{
  struct exec_io *io = arg;
  monitor_exec_kill(io->x);
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One read from the command's stdout or stderr to the client. A client that cannot
 * take it any more gets the command killed; the output is still read (and dropped)
 * so that the command is never stuck on a full pipe. */
static void exec_copy(struct exec_io *io, struct stream_session *s, int *fd, enum stream_out which,
                      bool *client_gone)
{
  char buf[IO_CHUNK];
  ssize_t n = read(*fd, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {   /* EOF; EIO from a pty's master once the slave is gone */
    if (*fd != io->master)
      close_fd(fd);
    else
      *fd = -1;   /* the master stays open (stdin, resizes) until the end */
    stream_session_close_output(s, which);
    return;
  }
  err_t *e = NULL;
  if (!*client_gone && stream_session_write(s, which, buf, (size_t)n, &e) < 0) {
    err_free(&e);
    *client_gone = true;
    monitor_exec_kill(io->x);
  }
}

/* Copies output until the command exited and its output ended (or the drain time is
 * up); returns its exit code. */
static int exec_output(struct exec_io *io, struct stream_session *s)
{
  bool exited = false, client_gone = false;
  int code = 0;
  int64_t drain_until = 0;
  while (!exited || io->out_r >= 0 || io->err_r >= 0) {
    int wait = -1;
    if (exited) {
      int64_t left = drain_until - mono_ms();
      if (left <= 0)
        break;
      wait = (int)left;
    }
    struct pollfd p[3] = {{.fd = io->out_r, .events = POLLIN},
                          {.fd = io->err_r, .events = POLLIN},
                          {.fd = exited ? -1 : monitor_exec_fd(io->x), .events = POLLIN}};
    if (poll(p, 3, wait) < 0 && errno != EINTR)
      break;
    if (io->out_r >= 0 && p[0].revents)
      exec_copy(io, s, &io->out_r, STREAM_STDOUT, &client_gone);
    if (io->err_r >= 0 && p[1].revents)
      exec_copy(io, s, &io->err_r, STREAM_STDERR, &client_gone);
    if (!exited && p[2].revents) {
      code = monitor_exec_wait(io->x);
      exited = true;
      drain_until = mono_ms() + EXEC_DRAIN_MS;
    }
  }
  return exited ? code : monitor_exec_wait(io->x);
}

static void exec_io_clear(struct exec_io *io)
{
  monitor_exec_free(io->x);
  io->x = NULL;
  if (io->out_r == io->master)
    io->out_r = -1;
  close_fd(&io->in_w);
  close_fd(&io->out_r);
  close_fd(&io->err_r);
  close_fd(&io->master);
  close_fd(&io->console);
  close_fd(&io->stop_fd);
}

static int exec_start(struct cri *d, struct stream_session *s, const struct stream_req *r,
                      struct exec_io *io, err_t **e)
{
  const struct stream_opts *o = stream_session_opts(s);
  int child[3] = {-1, -1, -1};
  int rc = open_stdio(io, o, child, e);
  struct exec_spec x = {.argv = r->argv, .argc = r->argc, .tty = o->tty, .stdin_open = o->in,
                        .console_socket = o->tty};
  if (rc == 0)
    rc = monitor_exec_start(d->monitor_helper, r->dir, &x, child[0], child[1], child[2], &io->x, e);
  for (int i = 0; i < 3; i++)
    if (child[i] >= 0)
      close(child[i]);
  if (rc == 0 && o->tty)
    rc = receive_master(io, e);
  if (rc == 0 && o->tty)   /* a size the client sent before now applies at once */
    stream_session_set_resize_cb(s, on_tty_resize, io);
  return rc;
}

void cri_stream_exec(void *ctx, struct stream_session *s, void *req)
{
  struct cri *d = ctx;
  const struct stream_req *r = req;
  struct exec_io io = {.master = -1, .in_w = -1, .out_r = -1, .err_r = -1, .stop_fd = -1, .console = -1};
  struct pump u = {.s = s, .write = exec_stdin, .client_gone = exec_client_gone, .arg = &io};
  err_t *e = NULL;
  if (exec_start(d, s, r, &io, &e) < 0 ||
      (stream_session_opts(s)->in && pump_start(&u, &e) < 0)) {
    stream_session_finish(s, 0, e->msg);
    err_free(&e);
    exec_io_clear(&io);
    return;
  }
  stream_session_set_close_cb(s, exec_client_gone, &io);
  int code = exec_output(&io, s);
  uint64_t one = 1;
  if (write(io.stop_fd, &one, sizeof(one)) < 0)
    abort();   /* an eventfd write cannot fail short of a bug */
  stream_session_finish(s, code, NULL);
  pump_join(&u);
  exec_io_clear(&io);
}

/* --- attach ----------------------------------------------------------------------- */

static int attach_stdin(void *arg, const void *p, size_t len)
{
  err_t *e = NULL;
  int rc = monitor_attach_stdin(arg, p, len, &e);
  err_free(&e);   /* the monitor is gone: the output side ends the session */
  return rc;
}

static void attach_gone(void *arg) { monitor_attach_shutdown(arg); }

static void on_attach_resize(void *arg, uint16_t w, uint16_t h)
{
  monitor_attach_resize(arg, w, h);
}

/* Copies the container's output until it ends (the container exited) or the client left;
 * NULL, or why the stream broke. */
static char *attach_output(struct monitor_attach *a, struct stream_session *s)
{
  char buf[IO_CHUNK];
  err_t *e = NULL;
  for (;;) {
    int which;
    ssize_t n = monitor_attach_read(a, &which, buf, sizeof(buf), &e);
    if (n < 0) {
      char *msg = xstrdup(e->msg);
      err_free(&e);
      return msg;
    }
    if (n == 0)
      return NULL;
    enum stream_out to = which == 2 ? STREAM_STDERR : STREAM_STDOUT;
    if (stream_session_write(s, to, buf, (size_t)n, &e) < 0) {
      err_free(&e);
      return NULL;   /* the client left: a detach */
    }
  }
}

void cri_stream_attach(void *ctx, struct stream_session *s, void *req)
{
  (void)ctx;
  const struct stream_req *r = req;
  const struct stream_opts *o = stream_session_opts(s);
  struct monitor_attach *a = NULL;
  err_t *e = NULL;
  if (monitor_attach_open(r->dir, o->in, o->out, o->err, &a, &e) < 0) {
    stream_session_finish(s, 0, e->msg);
    err_free(&e);
    return;
  }
  struct pump u = {.s = s, .write = attach_stdin, .client_gone = attach_gone, .arg = a};
  if (o->in && pump_start(&u, &e) < 0) {
    stream_session_finish(s, 0, e->msg);
    err_free(&e);
    monitor_attach_free(a);
    return;
  }
  if (o->tty)
    stream_session_set_resize_cb(s, on_attach_resize, a);
  stream_session_set_close_cb(s, attach_gone, a);
  cleanup_free char *broken = attach_output(a, s);
  monitor_attach_shutdown(a);   /* a stdin write still waiting for the monitor returns */
  stream_session_finish(s, 0, broken);
  pump_join(&u);
  monitor_attach_free(a);
}
