/* monitor_attachers.c - attach sessions inside crisp-monitor (monitor_sup.h; the wire
 * protocol is in monitor_int.h).
 *
 * The monitor is one thread that must never block: the container's output goes to the
 * CRI log whatever an attacher does. So every attacher socket is non-blocking; output an
 * attacher cannot take at once is queued for it, and one that falls MON_ATT_MAX_PENDING
 * behind is disconnected (its session ends; the container is not slowed down). Stdin
 * flows the other way with back pressure: the container's stdin is non-blocking too,
 * and while it is full the attacher's socket is not read, so crispd's writes block and
 * the client's flow-control window shuts. Memory is taken per attacher only while one
 * is there: a 4 KiB input buffer, and an output queue only while it lags. */
#include "runtimes/monitor_sup.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"

static void put_hdr(uint8_t *h, uint8_t type, uint32_t len)
{
  h[0] = type;
  h[1] = (uint8_t)(len >> 24);
  h[2] = (uint8_t)(len >> 16);
  h[3] = (uint8_t)(len >> 8);
  h[4] = (uint8_t)len;
}

static uint32_t get_be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void att_release(struct mon_att *a)
{
  close(a->fd);
  free(a->ibuf);
  buf_free(&a->obuf);
  *a = (struct mon_att){.fd = -1};
}

static void resume_blocked(struct mon *m);

/* The container's stdin closed from our side: what attachers still send is dropped. */
static void close_stdin(struct mon *m)
{
  if (m->in_w < 0)
    return;
  close(m->in_w);
  m->in_w = -1;
  resume_blocked(m);
}

/* containerd's rule: stdin_once closes the container's stdin when the first attacher
 * that sent stdin is done with it (its stdin ended, or it left); not with a tty, whose
 * master stays open for the next attacher. */
static void stdin_done(struct mon *m, struct mon_att *a)
{
  if (!a->in || a->in_over)
    return;
  a->in_over = true;
  if (m->spec->stdin_once && !m->tty)
    close_stdin(m);
}

static void att_close(struct mon *m, struct mon_att *a)
{
  a->blocked = false;   /* what it still had for stdin is dropped */
  stdin_done(m, a);
  att_release(a);
}

/* Bytes of the container's stdin taken from p: all of them when there is no stdin
 * (dropped), fewer when it is full. */
static size_t stdin_write(struct mon *m, const uint8_t *p, size_t n)
{
  if (m->in_w < 0 || n == 0)
    return n;
  ssize_t w = write(m->in_w, p, n);
  if (w >= 0)
    return (size_t)w;
  if (errno == EAGAIN || errno == EINTR)
    return 0;
  close_stdin(m);   /* EPIPE: nobody reads it any more (EIO: a pty without a slave) */
  return n;
}

static void apply_resize(struct mon *m, const uint8_t *p)
{
  int fd = m->src[MON_OUT] >= 0 ? m->src[MON_OUT] : m->in_w;
  if (!m->tty || fd < 0)
    return;
  struct winsize ws = {.ws_col = (unsigned short)(p[0] << 8 | p[1]),
                       .ws_row = (unsigned short)(p[2] << 8 | p[3])};
  ioctl(fd, TIOCSWINSZ, &ws);
}

/* One stdin frame at the head of ibuf (off): writes what has arrived; the header is
 * rewritten in place for the rest. Returns bytes of ibuf consumed; *stop when the
 * frame waits for more input or for room in stdin. */
static size_t parse_stdin(struct mon *m, struct mon_att *a, size_t off, uint32_t len, bool *stop)
{
  size_t avail = a->ilen - off - MON_FRAME_HDR;
  if (avail > len)
    avail = len;
  if (len && !avail) {
    *stop = true;
    return 0;
  }
  /* stdin from an attacher that did not ask to send it is dropped */
  size_t w = a->in ? stdin_write(m, a->ibuf + off + MON_FRAME_HDR, avail) : avail;
  if (w == len)
    return MON_FRAME_HDR + w;
  put_hdr(a->ibuf + off + w, MON_F_STDIN, len - (uint32_t)w);
  a->blocked = w < avail;
  *stop = true;
  return w;
}

/* Handles every complete frame in ibuf; -1 for a protocol error. */
static int att_parse(struct mon *m, struct mon_att *a)
{
  size_t off = 0;
  bool stop = false;
  while (!stop && a->ilen - off >= MON_FRAME_HDR) {
    uint8_t *h = a->ibuf + off;
    uint32_t len = get_be32(h + 1);
    if (h[0] == MON_F_STDIN) {
      off += parse_stdin(m, a, off, len, &stop);
    } else if (h[0] == MON_F_STDIN_EOF && len == 0) {
      stdin_done(m, a);
      off += MON_FRAME_HDR;
    } else if (h[0] == MON_F_RESIZE && len == 4) {
      if (a->ilen - off < MON_FRAME_HDR + 4)
        break;
      apply_resize(m, h + MON_FRAME_HDR);
      off += MON_FRAME_HDR + 4;
    } else {
      return -1;
    }
  }
  memmove(a->ibuf, a->ibuf + off, a->ilen - off);
  a->ilen -= off;
  return 0;
}

static void resume_blocked(struct mon *m)
{
  for (int i = 0; i < MON_MAX_ATTACH; i++) {
    struct mon_att *a = &m->att[i];
    if (a->fd < 0 || !a->blocked)
      continue;
    a->blocked = false;
    if (att_parse(m, a) < 0)
      att_close(m, a);
  }
}

static void att_read(struct mon *m, struct mon_att *a)
{
  ssize_t n = recv(a->fd, a->ibuf + a->ilen, MON_ATT_IBUF - a->ilen, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0 || (a->ilen += (size_t)n, att_parse(m, a) < 0))
    att_close(m, a);
}

static void att_flush(struct mon *m, struct mon_att *a)
{
  size_t left = a->obuf.len - a->ooff;
  ssize_t w = send(a->fd, a->obuf.data + a->ooff, left, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (w < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (w < 0) {
    att_close(m, a);
    return;
  }
  a->ooff += (size_t)w;
  if (a->ooff == a->obuf.len) {
    buf_free(&a->obuf);   /* a lag costs memory only while it lasts */
    a->ooff = 0;
  }
}

/* Sends a frame, queueing what the socket does not take now. */
static void att_send(struct mon *m, struct mon_att *a, uint8_t type, const void *p, size_t n)
{
  uint8_t h[MON_FRAME_HDR];
  put_hdr(h, type, (uint32_t)n);
  size_t sent = 0;
  if (a->obuf.len == a->ooff) {
    struct iovec iov[2] = {{h, sizeof(h)}, {(void *)p, n}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t w = sendmsg(a->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      att_close(m, a);
      return;
    }
    sent = w > 0 ? (size_t)w : 0;
  }
  if (sent < sizeof(h))
    buf_append(&a->obuf, h + sent, sizeof(h) - sent);
  size_t skip = sent > sizeof(h) ? sent - sizeof(h) : 0;
  buf_append(&a->obuf, (const char *)p + skip, n - skip);
  if (a->obuf.len - a->ooff > MON_ATT_MAX_PENDING) {
    log_warn("an attacher does not keep up with the output: disconnected", NULL);
    att_close(m, a);
  }
}

void mon_att_output(struct mon *m, int stream, const void *p, size_t n)
{
  for (int i = 0; i < MON_MAX_ATTACH; i++) {
    struct mon_att *a = &m->att[i];
    if (a->fd >= 0 && (stream == MON_OUT ? a->out : a->err))
      att_send(m, a, stream == MON_OUT ? MON_F_STDOUT : MON_F_STDERR, p, n);
  }
}

static void reply(int fd, const char *text)
{
  ssize_t r = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)r;   /* a client that left finds out by itself */
}

void mon_att_add(struct mon *m, int fd, const char *flags)
{
  bool ok = strlen(flags) == 3 && strspn(flags, "01") == 3;
  struct mon_att *a = NULL;
  for (int i = 0; ok && i < MON_MAX_ATTACH && !a; i++)
    if (m->att[i].fd < 0)
      a = &m->att[i];
  if (!a) {
    reply(fd, ok ? "err resource exhausted too many attach sessions\n"
                 : "err invalid argument bad attach flags\n");
    close(fd);
    return;
  }
  *a = (struct mon_att){.fd = fd, .in = flags[0] == '1', .out = flags[1] == '1',
                        .err = flags[2] == '1', .ibuf = xmalloc(MON_ATT_IBUF)};
  reply(fd, "ok\n");
}

void mon_att_fill_poll(const struct mon *m, struct pollfd *att, struct pollfd *in)
{
  bool want_in = false;
  for (int i = 0; i < MON_MAX_ATTACH; i++) {
    const struct mon_att *a = &m->att[i];
    short ev = (short)((a->blocked ? 0 : POLLIN) | (a->obuf.len > a->ooff ? POLLOUT : 0));
    att[i] = (struct pollfd){.fd = a->fd, .events = ev};
    want_in |= a->fd >= 0 && a->blocked;
  }
  *in = (struct pollfd){.fd = want_in ? m->in_w : -1, .events = POLLOUT};
}

void mon_att_events(struct mon *m, const struct pollfd *att, const struct pollfd *in)
{
  if (in->fd >= 0 && in->fd == m->in_w && (in->revents & (POLLOUT | POLLERR | POLLHUP)))
    resume_blocked(m);
  for (int i = 0; i < MON_MAX_ATTACH; i++) {
    struct mon_att *a = &m->att[i];
    short r = att[i].revents;
    if (a->fd < 0 || att[i].fd != a->fd || !r)
      continue;
    if (r & POLLOUT)
      att_flush(m, a);
    if (a->fd < 0)
      continue;
    if (a->blocked && (r & (POLLHUP | POLLERR)))
      att_close(m, a);   /* gone, with stdin still queued: dropped */
    else if (!a->blocked && (r & (POLLIN | POLLHUP | POLLERR)))
      att_read(m, a);
  }
}

void mon_att_stdin_gone(struct mon *m) { close_stdin(m); }

bool mon_att_pending(const struct mon *m)
{
  for (int i = 0; i < MON_MAX_ATTACH; i++)
    if (m->att[i].fd >= 0 && m->att[i].obuf.len > m->att[i].ooff)
      return true;
  return false;
}

void mon_att_close_all(struct mon *m)
{
  for (int i = 0; i < MON_MAX_ATTACH; i++)
    if (m->att[i].fd >= 0)
      att_release(&m->att[i]);
}
