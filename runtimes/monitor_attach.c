/* monitor_attach.c - crispd's side of attach: a ctl.sock connection turned into a stream of
 * frames (protocol in monitor_int.h; the monitor's side is monitor_attachers.c).
 *
 * Writes come from two threads: stdin from the session's stdin pump (it may block while
 * the container does not read), resizes from the streaming connection's reader thread
 * (it must not block). Frames go out whole under wmu with non-blocking sends; a stdin
 * frame that has to wait for room releases the lock meanwhile with `mid` set, and a
 * resize arriving then (or finding the socket full) is parked and sent by the stdin
 * writer right after its frame. */
#include "runtimes/monitor.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "runtimes/monitor_int.h"

#define ATTACH_ANSWER_TIMEOUT_MS 10000

struct monitor_attach {
  int fd;
  /* reader */
  uint8_t type;           /* of the frame being read */
  size_t left;            /* its payload bytes still to read */
  /* writers */
  pthread_mutex_t wmu;
  bool mid;               /* a stdin frame is half sent */
  bool resize_parked;
  uint16_t width, height;
};

static void put_hdr(uint8_t *h, uint8_t type, uint32_t len)
{
  h[0] = type;
  h[1] = (uint8_t)(len >> 24);
  h[2] = (uint8_t)(len >> 16);
  h[3] = (uint8_t)(len >> 8);
  h[4] = (uint8_t)len;
}

/* The monitor's one-line answer, read a byte at a time: frames may follow it at once. */
static int read_answer(int fd, err_t **e)
{
  char line[MON_REPORT_MAX];
  size_t len = 0;
  while (len < sizeof(line) - 1) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, ATTACH_ANSWER_TIMEOUT_MS);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? err_sys(e, errno, "poll") : err_set(e, ERR_DEADLINE, 0, "no answer");
    ssize_t n = recv(fd, line + len, 1, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? err_sys(e, errno, "recv")
                   : err_set(e, ERR_PRECONDITION, 0, "container is not running");
    if (line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  if (strcmp(line, "ok") == 0)
    return 0;
  if (strncmp(line, "err ", 4) == 0)
    return mon_err_parse(line + 4, e);
  return err_set(e, ERR_INTERNAL, 0, "garbled answer \"%.64s\"", line);
}

int monitor_attach_open(const char *state_dir, bool in, bool out, bool err,
                        struct monitor_attach **out_attach, err_t **e)
{
  int fd_raw = -1;
  if (mon_ctl_connect(state_dir, &fd_raw, e) < 0)
    return err_wrap(e, "attach");
  cleanup_close int fd = fd_raw;
  char req[16];
  int n = snprintf(req, sizeof(req), "attach %d%d%d\n", in, out, err);
  if (send(fd, req, (size_t)n, MSG_NOSIGNAL) < 0)
    return err_sys(e, errno, "attach: send");
  if (read_answer(fd, e) < 0)
    return err_wrap(e, "attach");
  struct monitor_attach *a = xcalloc(1, sizeof(*a));
  a->fd = steal_fd(&fd);
  pthread_mutex_init(&a->wmu, NULL);
  *out_attach = a;
  return 0;
}

static int recv_full(int fd, void *buf, size_t len, err_t **e)
{
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return err_sys(e, errno, "attach: recv");
    if (n == 0)
      return got ? err_set(e, ERR_INTERNAL, 0, "attach: stream cut inside a frame") : 1;
    got += (size_t)n;
  }
  return 0;
}

ssize_t monitor_attach_read(struct monitor_attach *a, int *stream, void *buf, size_t cap,
                            err_t **e)
{
  while (a->left == 0) {
    uint8_t h[MON_FRAME_HDR];
    int rc = recv_full(a->fd, h, sizeof(h), e);
    if (rc != 0)
      return rc > 0 ? 0 : -1;
    a->type = h[0];
    a->left = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
    if (a->type != MON_F_STDOUT && a->type != MON_F_STDERR)
      return err_set(e, ERR_INTERNAL, 0, "attach: unexpected frame type %u", a->type);
  }
  size_t want = a->left < cap ? a->left : cap;
  ssize_t n;
  do
    n = recv(a->fd, buf, want, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return err_sys(e, errno, "attach: recv");
  if (n == 0)
    return err_set(e, ERR_INTERNAL, 0, "attach: stream cut inside a frame");
  a->left -= (size_t)n;
  *stream = a->type;
  return n;
}

/* Sends iov whole. With wait, waits for room with wmu released (`mid` set); without,
 * gives up (1) if nothing could be sent, and waits holding wmu if part was (a resize
 * frame is 9 bytes: practically never). Called with wmu held. */
static int send_frame(struct monitor_attach *a, struct iovec *iov, int n, bool wait, err_t **e)
{
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
  bool sent_any = false;
  while (m.msg_iovlen) {
    ssize_t w = sendmsg(a->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == EAGAIN && !wait && !sent_any)
      return 1;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = a->fd, .events = POLLOUT};
      if (wait) {
        a->mid = true;
        pthread_mutex_unlock(&a->wmu);
      }
      poll(&p, 1, -1);
      if (wait) {
        pthread_mutex_lock(&a->wmu);
        a->mid = false;
      }
      continue;
    }
    if (w < 0)
      return err_sys(e, errno, "attach: send");
    sent_any = true;
    size_t left = (size_t)w;
    while (m.msg_iovlen && left >= m.msg_iov->iov_len) {
      left -= m.msg_iov->iov_len;
      m.msg_iov++;
      m.msg_iovlen--;
    }
    if (m.msg_iovlen) {
      m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + left;
      m.msg_iov->iov_len -= left;
    }
  }
  return 0;
}

/* With wmu held and no frame half sent. */
static int send_resize(struct monitor_attach *a, bool wait, err_t **e)
{
  uint8_t f[MON_FRAME_HDR + 4];
  put_hdr(f, MON_F_RESIZE, 4);
  f[5] = (uint8_t)(a->width >> 8);
  f[6] = (uint8_t)a->width;
  f[7] = (uint8_t)(a->height >> 8);
  f[8] = (uint8_t)a->height;
  struct iovec iov = {f, sizeof(f)};
  int rc = send_frame(a, &iov, 1, wait, e);
  a->resize_parked = rc == 1;
  return rc < 0 ? -1 : 0;
}

int monitor_attach_stdin(struct monitor_attach *a, const void *buf, size_t len, err_t **e)
{
  uint8_t h[MON_FRAME_HDR];
  put_hdr(h, len ? MON_F_STDIN : MON_F_STDIN_EOF, (uint32_t)len);
  struct iovec iov[2] = {{h, sizeof(h)}, {(void *)buf, len}};
  pthread_mutex_lock(&a->wmu);
  int rc = send_frame(a, iov, len ? 2 : 1, true, e);
  if (rc == 0 && a->resize_parked)
    rc = send_resize(a, true, e);
  pthread_mutex_unlock(&a->wmu);
  return rc;
}

void monitor_attach_resize(struct monitor_attach *a, uint16_t width, uint16_t height)
{
  pthread_mutex_lock(&a->wmu);
  a->width = width;
  a->height = height;
  a->resize_parked = true;
  if (!a->mid) {
    err_t *ignored = NULL;   /* a broken connection shows in the read and stdin paths */
    send_resize(a, false, &ignored);
    err_free(&ignored);
  }
  pthread_mutex_unlock(&a->wmu);
}

void monitor_attach_shutdown(struct monitor_attach *a)
{
  if (a)
    shutdown(a->fd, SHUT_RDWR);
}

void monitor_attach_free(struct monitor_attach *a)
{
  if (!a)
    return;
  close(a->fd);
  pthread_mutex_destroy(&a->wmu);
  free(a);
}
