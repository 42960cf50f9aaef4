/* stream_ws.c - the WebSocket side of the streaming server (RFC 6455 framing with
 * Kubernetes' channel subprotocols, as kubelet's wsstream serves them).
 *
 * Every message starts with its channel: a byte (channel.k8s.io, v4., v5.) or an
 * ASCII digit followed by base64 text (base64.channel.k8s.io, v4.base64.).
 * Remote command: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; the server
 * first sends an empty message on the lowest channel it writes, so the client
 * knows the session is up. v5 adds the close signal [255, channel]: the client
 * is done with a channel (stdin EOF). Port-forward: channels 2i (data) and 2i+1
 * (error) for the i-th port of the request, each opened by a message carrying
 * the port as 2 little-endian bytes. The connection ends with a Close frame.
 */
#include <string.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/stream_int.h"
#include "cri/stream_util.h"

#define WS_MAX_MESSAGE (1024 * 1024)
#define WS_CHUNK (32 * 1024)
#define WS_CLOSE_SIGNAL 255

struct ws {
  bool base64, v5;
  struct buf msg;       /* a fragmented message so far */
  int msg_op;           /* its opcode, 0 when none is open */
  bool close_sent;      /* with conn->mu */
};

struct ws_frame {
  bool fin;
  int op;
  uint64_t len;
  uint8_t *payload;     /* unmasked in place */
};

size_t stream_ws_header(uint8_t h[10], int op, size_t len)
{
  h[0] = (uint8_t)(0x80 | op);
  if (len < 126) {
    h[1] = (uint8_t)len;
    return 2;
  }
  if (len <= 0xffff) {
    h[1] = 126;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; i++)
    h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  return 10;
}

static int send_frame(struct sconn *c, int op, const void *a, size_t alen, const void *b, size_t blen,
                      err_t **e)
{
  uint8_t h[10];
  size_t hl = stream_ws_header(h, op, alen + blen);
  struct iovec iov[3] = {{h, hl}, {(void *)a, alen}, {(void *)b, blen}};
  return sconn_send(c, iov, 3, e);
}

/* Sends Close with code (once) and reports whether this call sent it. */
static bool send_close(struct sconn *c, uint16_t code)
{
  struct ws *ws = c->proto;
  pthread_mutex_lock(&c->mu);
  bool twice = ws->close_sent;
  ws->close_sent = true;
  c->finishing = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  if (twice)
    return false;
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  err_t *e = NULL;
  if (send_frame(c, WS_CLOSE, p, 2, NULL, 0, &e) < 0)
    err_free(&e);
  sconn_wake(c);
  return true;
}

/* Fails the connection (RFC 6455 7.1.7): Close with the reason, then the caller ends. */
static int ws_fail(struct sconn *c, uint16_t code, const char *why)
{
  log_debug("streaming: WebSocket protocol error, closing", "reason", why, NULL);
  send_close(c, code);
  return -1;
}

static int ws_write(struct sconn *c, struct schan *ch, const void *p, size_t len, err_t **e)
{
  struct ws *ws = c->proto;
  const uint8_t *q = p;
  do {
    size_t n = len < WS_CHUNK ? len : WS_CHUNK;
    pthread_mutex_lock(&c->mu);
    bool gone = c->dead || ch->reset;
    pthread_mutex_unlock(&c->mu);
    if (gone)
      return err_set(e, ERR_CANCELLED, 0, "the streaming client went away");
    int rc;
    if (ws->base64) {
      cleanup_buf struct buf t = BUF_INIT;
      buf_putc(&t, (char)('0' + ch->id));
      stream_b64_encode(&t, q, n, false);
      rc = send_frame(c, WS_TEXT, t.data, t.len, NULL, 0, e);
    } else {
      uint8_t id = (uint8_t)ch->id;
      rc = send_frame(c, WS_BINARY, &id, 1, q, n, e);
    }
    if (rc < 0)
      return -1;
    if (n)   /* p may be NULL for the empty message: NULL + 0 is undefined */
      q += n;
    len -= n;
  } while (len);
  return 0;
}

/* kubelet sends nothing when a channel ends; the Close frame ends them all. */
static void ws_close_write(struct sconn *c, struct schan *ch) { (void)c, (void)ch; }

static void ws_consumed(struct sconn *c, struct schan *ch, size_t n) { (void)c, (void)ch, (void)n; }

static void ws_goodbye(struct sconn *c) { send_close(c, WS_NORMAL); }

/* --- reading ----------------------------------------------------------------------- */

int stream_ws_head_len(const uint8_t *p, size_t n, uint64_t *len, size_t *hl)
{
  if (n < 2)
    return 0;
  *len = p[1] & 0x7f;
  *hl = 2;
  if (*len == 126) {
    if (n < 4)
      return 0;
    *len = (uint64_t)p[2] << 8 | p[3];
    *hl = 4;
  } else if (*len == 127) {
    if (n < 10)
      return 0;
    *len = 0;
    for (int i = 0; i < 8; i++)
      *len = *len << 8 | p[2 + i];
    *hl = 10;
  }
  return 1;
}

/* One frame from p[0..n): bytes used, 0 if incomplete, -1 after failing the conn. */
static ssize_t parse_frame(struct sconn *c, uint8_t *p, size_t n, struct ws_frame *f)
{
  uint64_t len;
  size_t hl;
  if (!stream_ws_head_len(p, n, &len, &hl))
    return 0;
  f->fin = p[0] & 0x80;
  f->op = p[0] & 0x0f;
  bool masked = p[1] & 0x80;
  if (p[0] & 0x70)
    return ws_fail(c, WS_PROTOCOL, "reserved bits set");
  if (!masked)
    return ws_fail(c, WS_PROTOCOL, "unmasked client frame");
  if (len > WS_MAX_MESSAGE)
    return ws_fail(c, WS_TOO_BIG, "frame too large");
  if (n < hl + 4 + len)
    return 0;
  const uint8_t *mask = p + hl;
  f->payload = p + hl + 4;
  f->len = len;
  for (uint64_t i = 0; i < len; i++)
    f->payload[i] ^= mask[i & 3];
  return (ssize_t)(hl + 4 + len);
}

static struct schan *chan_by_id(struct sconn *c, unsigned id)
{
  pthread_mutex_lock(&c->mu);
  struct schan *ch = schan_find(c, id);
  pthread_mutex_unlock(&c->mu);
  return ch;
}

static void on_message(struct sconn *c, const uint8_t *p, size_t n)
{
  struct ws *ws = c->proto;
  if (n == 0)
    return;
  if (ws->v5 && p[0] == WS_CLOSE_SIGNAL) {
    struct schan *ch = n == 2 ? chan_by_id(c, p[1]) : NULL;
    if (ch) {
      pthread_mutex_lock(&c->mu);
      schan_input_end(ch, false);
      pthread_mutex_unlock(&c->mu);
    }
    return;
  }
  unsigned id = ws->base64 ? (unsigned)(p[0] - '0') : p[0];
  struct schan *ch = chan_by_id(c, id & 0xff);
  if (!ch || !ch->readable)
    return;   /* kubelet ignores messages for channels nobody reads */
  if (!ws->base64) {
    if (n > 1)
      schan_deliver(ch, p + 1, n - 1);
    return;
  }
  cleanup_buf struct buf raw = BUF_INIT;
  if (stream_b64_decode(&raw, (const char *)p + 1, n - 1, false) < 0)
    return;   /* kubelet logs and drops a message that does not decode */
  if (raw.len)
    schan_deliver(ch, raw.data, raw.len);
}

static int on_close(struct sconn *c, const struct ws_frame *f)
{
  uint16_t code = WS_NORMAL;
  if (f->len == 1)
    return ws_fail(c, WS_PROTOCOL, "one-byte close payload");
  if (f->len >= 2)
    code = (uint16_t)(f->payload[0] << 8 | f->payload[1]);
  if (code < 1000 || code == 1004 || code == 1005 || code == 1006 || (code > 1011 && code < 3000) ||
      code > 4999)
    code = WS_PROTOCOL;
  send_close(c, code);
  return -1;   /* both sides said Close: the TCP connection goes */
}

static int on_control(struct sconn *c, const struct ws_frame *f)
{
  if (!f->fin || f->len > 125)
    return ws_fail(c, WS_PROTOCOL, "bad control frame");
  if (f->op == WS_CLOSE)
    return on_close(c, f);
  if (f->op == WS_PING) {
    err_t *e = NULL;
    if (send_frame(c, WS_PONG, f->payload, (size_t)f->len, NULL, 0, &e) < 0)
      err_free(&e);
  }
  return 0;   /* a pong needs nothing */
}

static int on_frame(struct sconn *c, const struct ws_frame *f)
{
  struct ws *ws = c->proto;
  if (f->op & 0x8)
    return f->op == WS_CLOSE || f->op == WS_PING || f->op == WS_PONG ? on_control(c, f)
                                                                      : ws_fail(c, WS_PROTOCOL, "unknown opcode");
  if (f->op != WS_CONT && f->op != WS_TEXT && f->op != WS_BINARY)
    return ws_fail(c, WS_PROTOCOL, "unknown opcode");
  if ((f->op == WS_CONT) != (ws->msg_op != 0))
    return ws_fail(c, WS_PROTOCOL, "bad fragmentation");
  if (f->op != WS_CONT)
    ws->msg_op = f->op;
  if (ws->msg.len + f->len > WS_MAX_MESSAGE)
    return ws_fail(c, WS_TOO_BIG, "message too large");
  buf_append(&ws->msg, f->payload, (size_t)f->len);
  if (!f->fin)
    return 0;
  bool text = ws->msg_op == WS_TEXT;
  ws->msg_op = 0;
  if (text && !stream_utf8_valid((const uint8_t *)ws->msg.data, ws->msg.len))
    return ws_fail(c, WS_BAD_DATA, "text message is not UTF-8");
  on_message(c, (const uint8_t *)ws->msg.data, ws->msg.len);
  buf_reset(&ws->msg);
  return 0;
}

static int ws_input(struct sconn *c, uint8_t *p, size_t n, size_t *used)
{
  *used = 0;
  for (;;) {
    struct ws_frame f;
    ssize_t len = parse_frame(c, p + *used, n - *used, &f);
    if (len <= 0)
      return (int)len;
    *used += (size_t)len;
    if (on_frame(c, &f) < 0)
      return -1;
  }
}

static int ws_tick(struct sconn *c, int64_t now, int64_t *next)
{
  (void)now;
  *next = -1;
  pthread_mutex_lock(&c->mu);
  sconn_reap(c);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* --- start --------------------------------------------------------------------------- */

static void send_opening(struct sconn *c, struct schan *ch, const void *p, size_t n)
{
  err_t *e = NULL;
  if (ws_write(c, ch, p, n, &e) < 0)   /* 0 bytes make a message holding the channel alone */
    err_free(&e);
}

static void start_session(struct sconn *c)
{
  struct stream_session *s = &c->sess;
  const struct stream_opts *o = &c->opts;
  /* the empty message on the lowest channel we write tells the client we are up */
  struct schan *first = o->out ? s->ch[SROLE_STDOUT] : o->err ? s->ch[SROLE_STDERR] : s->ch[SROLE_ERROR];
  send_opening(c, first, NULL, 0);
  pthread_mutex_lock(&c->mu);
  session_start(c);
  pthread_mutex_unlock(&c->mu);
}

static void start_pipes(struct sconn *c)
{
  for (struct stream_pipe *p = c->pipes; p; p = p->next) {
    uint8_t port[2] = {(uint8_t)p->port, (uint8_t)(p->port >> 8)};
    send_opening(c, p->data, port, 2);
    send_opening(c, p->err, port, 2);
  }
  pthread_mutex_lock(&c->mu);
  for (struct stream_pipe *p = c->pipes; p; p = p->next)
    pipe_start(c, p);
  bool none = c->pipes_running == 0;
  pthread_mutex_unlock(&c->mu);
  if (none)
    ws_goodbye(c);   /* no port: kubelet's handler returns at once too */
}

static void ws_serve(struct sconn *c)
{
  if (c->kind == STREAM_PORT_FORWARD)
    start_pipes(c);
  else
    start_session(c);
  sconn_loop(c, ws_input, ws_tick);
}

static void ws_free(void *proto)
{
  struct ws *ws = proto;
  if (!ws)
    return;
  buf_free(&ws->msg);
  free(ws);
}

const struct sproto_ops stream_ws_ops = {
  .write = ws_write,
  .close_write = ws_close_write,
  .consumed = ws_consumed,
  .goodbye = ws_goodbye,
  .serve = ws_serve,
  .free = ws_free,
};

static void add_session_channels(struct sconn *c)
{
  const struct stream_opts *o = &c->opts;
  bool want[SESSION_CHANNELS] = {o->in, o->out, o->err, true, true};
  for (int r = 0; r < SESSION_CHANNELS; r++)
    if (want[r])
      c->sess.ch[r] = schan_new(c, (enum sch_role)r, (uint32_t)r);
}

/* The pipes go on the list in reverse, so the list reads in port order. */
static void add_pipes(struct sconn *c)
{
  for (size_t i = c->opts.n_ports; i-- > 0;) {
    struct stream_pipe *p = pipe_new(c, (uint16_t)c->opts.ports[i], "");
    p->data = schan_new(c, SROLE_PF_DATA, (uint32_t)(2 * i));
    p->err = schan_new(c, SROLE_PF_ERROR, (uint32_t)(2 * i + 1));
    p->data->pipe = p->err->pipe = p;
  }
}

int stream_ws_attach(struct sconn *c, bool base64, bool v5, err_t **e)
{
  if (c->kind == STREAM_PORT_FORWARD && c->opts.n_ports > 127)
    return err_set(e, ERR_INVALID, 0, "%zu ports do not fit the channel numbers", c->opts.n_ports);
  struct ws *ws = xcalloc(1, sizeof(*ws));
  ws->base64 = base64;
  ws->v5 = v5;
  c->proto = ws;
  c->ops = &stream_ws_ops;
  if (c->kind == STREAM_PORT_FORWARD)
    add_pipes(c);
  else
    add_session_channels(c);
  return 0;
}
