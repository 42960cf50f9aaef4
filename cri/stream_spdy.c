/* stream_spdy.c - the SPDY/3.1 side of the streaming server, as kubelet's
 * (k8s.io/apimachinery httpstream/spdy over moby/spdystream) speaks it.
 *
 * The client opens every stream (SYN_STREAM with a "streamtype" header); we answer
 * each with an empty SYN_REPLY before any data flows on it. Remote command: once
 * the streams the options call for exist (error, then stdin/stdout/stderr as
 * requested, resize for a terminal from v3), the session starts. Port-forward: a
 * "data" and an "error" stream with the same "requestid" (and a "port") make a
 * pipe; one connection carries many.
 *
 * Flow control: we always give the client WINDOW_UPDATEs for what the back end
 * consumed, stream and session level. Toward the client we count the 64 KiB
 * windows but only wait on them once the client has shown it does flow control
 * (a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE): spdystream, the only SPDY
 * client Kubernetes has, never sends one and relies on TCP back-pressure, so
 * waiting for it would stall every exec after 64 KiB of output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/stream_int.h"
#include "cri/stream_spdy_frame.h"

#define SPDY_MAX_PAYLOAD (1024 * 1024)   /* spdystream's writes are 32 KiB */
#define SPDY_DATA_CHUNK (32 * 1024)
#define SPDY_HEADER_WINDOW_BITS 11       /* the spec's suggestion for header blocks */
#define SPDY_MAX_STREAMS 1024            /* open at once on one connection */

struct spdy {
  struct spdy_zin *zin;
  struct spdy_zout *zout;   /* reader thread only: SYN_REPLY is all we compress */
  uint32_t last_id;
  bool enforce;             /* the client does flow control */
  int64_t initial_window;   /* the client's window for new streams */
  int64_t session_window;   /* ours to send, stream 0 */
  size_t session_unacked;   /* received, not yet credited */
  int expected;             /* remote command: streams the options call for */
  int64_t deadline_ms;      /* remote command: by when they must exist */
};

static void send_frames(struct sconn *c, const struct buf *b)
{
  err_t *e = NULL;
  struct iovec iov = {b->data, b->len};
  if (b->len && sconn_send(c, &iov, 1, &e) < 0)
    err_free(&e);  /* the connection is dead; the reader sees it */
}

static void send_rst(struct sconn *c, uint32_t id, uint32_t status)
{
  cleanup_buf struct buf b = BUF_INIT;
  spdy_put_rst(&b, id, status);
  send_frames(c, &b);
}

/* A session error (spec 2.4.1): GOAWAY with the status, then the caller closes. */
static int session_error(struct sconn *c, const char *why)
{
  struct spdy *sp = c->proto;
  log_debug("streaming: SPDY session error, closing", "reason", why, NULL);
  cleanup_buf struct buf b = BUF_INIT;
  spdy_put_goaway(&b, sp->last_id, SPDY_PROTOCOL_ERROR);
  send_frames(c, &b);
  return -1;
}

/* Gives back window for n bytes that left our buffers (ch NULL: untracked
 * stream). Updates go out once half a window is owed, so a byte-at-a-time
 * reader does not cost a frame per byte. */
static void credit(struct sconn *c, struct schan *ch, size_t n)
{
  struct spdy *sp = c->proto;
  uint32_t session_delta = 0, stream_delta = 0, stream_id = 0;
  pthread_mutex_lock(&c->mu);
  sp->session_unacked += n;
  if (sp->session_unacked >= SPDY_DEFAULT_WINDOW / 2) {
    session_delta = (uint32_t)sp->session_unacked;
    sp->session_unacked = 0;
  }
  if (ch && !ch->in_eof && !ch->reset) {
    ch->unacked += n;
    if (ch->unacked >= SPDY_DEFAULT_WINDOW / 2) {
      stream_delta = (uint32_t)ch->unacked;
      stream_id = ch->id;
      ch->unacked = 0;
    }
  }
  pthread_mutex_unlock(&c->mu);
  cleanup_buf struct buf b = BUF_INIT;
  if (session_delta)
    spdy_put_window_update(&b, 0, session_delta);
  if (stream_delta)
    spdy_put_window_update(&b, stream_id, stream_delta);
  send_frames(c, &b);
}

static void spdy_consumed(struct sconn *c, struct schan *ch, size_t n) { credit(c, ch, n); }

static int spdy_write(struct sconn *c, struct schan *ch, const void *p, size_t len, err_t **e)
{
  struct spdy *sp = c->proto;
  const uint8_t *q = p;
  while (len) {
    size_t chunk = len < SPDY_DATA_CHUNK ? len : SPDY_DATA_CHUNK;
    pthread_mutex_lock(&c->mu);
    for (;;) {
      if (c->dead || ch->reset) {
        pthread_mutex_unlock(&c->mu);
        return err_set(e, ERR_CANCELLED, 0, "the streaming client went away");
      }
      int64_t avail = ch->send_window < sp->session_window ? ch->send_window : sp->session_window;
      if (!sp->enforce || avail > 0) {
        if (sp->enforce && (int64_t)chunk > avail)
          chunk = (size_t)avail;
        break;
      }
      pthread_cond_wait(&c->cond, &c->mu);
    }
    ch->send_window -= (int64_t)chunk;
    sp->session_window -= (int64_t)chunk;
    pthread_mutex_unlock(&c->mu);
    uint8_t h[8];
    spdy_data_header(h, ch->id, 0, (uint32_t)chunk);
    struct iovec iov[2] = {{h, 8}, {(void *)q, chunk}};
    if (sconn_send(c, iov, 2, e) < 0)
      return -1;
    q += chunk;
    len -= chunk;
  }
  return 0;
}

static void spdy_close_write(struct sconn *c, struct schan *ch)
{
  uint8_t h[8];
  spdy_data_header(h, ch->id, SPDY_FLAG_FIN, 0);
  struct iovec iov = {h, 8};
  err_t *e = NULL;
  if (sconn_send(c, &iov, 1, &e) < 0)
    err_free(&e);
}

static void spdy_goodbye(struct sconn *c)
{
  struct spdy *sp = c->proto;
  pthread_mutex_lock(&c->mu);
  bool twice = c->finishing;
  c->finishing = true;
  uint32_t last = sp->last_id;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  if (twice)
    return;
  cleanup_buf struct buf b = BUF_INIT;
  spdy_put_goaway(&b, last, 0);
  send_frames(c, &b);
  sconn_wake(c);
}

static void send_reply(struct sconn *c, struct schan *ch)
{
  struct spdy *sp = c->proto;
  cleanup_buf struct buf block = BUF_INIT, b = BUF_INIT;
  err_t *e = NULL;
  if (spdy_zout_headers(sp->zout, NULL, 0, &block, &e) < 0) {
    err_free(&e);
    sconn_kill(c);
    return;
  }
  uint8_t id[4];
  spdy_put32(id, ch->id);
  uint8_t h[8];
  spdy_control_header(h, SPDY_SYN_REPLY, 0, (uint32_t)(4 + block.len));
  buf_append(&b, h, 8);
  buf_append(&b, id, 4);
  buf_append(&b, block.data, block.len);
  send_frames(c, &b);
  ch->replied = true;
}

/* --- remote command streams ------------------------------------------------------ */

static enum sch_role rc_role(const struct sconn *c, const char *type)
{
  const struct stream_opts *o = &c->opts;
  if (!type)
    return SROLE_IGNORE;
  if (strcmp(type, "error") == 0)
    return SROLE_ERROR;
  if (strcmp(type, "stdin") == 0 && o->in)
    return SROLE_STDIN;
  if (strcmp(type, "stdout") == 0 && o->out)
    return SROLE_STDOUT;
  if (strcmp(type, "stderr") == 0 && o->err)
    return SROLE_STDERR;
  if (strcmp(type, "resize") == 0 && o->tty && c->version >= 3)
    return SROLE_RESIZE;
  return SROLE_IGNORE;
}

static void new_chan_flags(struct schan *ch, uint8_t flags, int64_t window)
{
  ch->send_window = window;
  if (flags & SPDY_FLAG_FIN)
    ch->in_eof = true;
  if (flags & SPDY_FLAG_UNIDIRECTIONAL)
    ch->out_closed = true;
}

static int rc_stream(struct sconn *c, uint32_t id, uint8_t flags, const struct spdy_headers *h)
{
  struct spdy *sp = c->proto;
  struct stream_session *s = &c->sess;
  pthread_mutex_lock(&c->mu);
  enum sch_role role = rc_role(c, spdy_headers_get(h, "streamtype"));
  if (role != SROLE_IGNORE && (s->ch[role] || s->started))
    role = SROLE_IGNORE;   /* a second stdout, or one after the start: unused */
  struct schan *ch = schan_new(c, role, id);
  new_chan_flags(ch, flags, sp->initial_window);
  if (role != SROLE_IGNORE)
    s->ch[role] = ch;
  pthread_mutex_unlock(&c->mu);
  send_reply(c, ch);
  pthread_mutex_lock(&c->mu);
  int have = 0;
  for (int r = 0; r < SESSION_CHANNELS; r++)
    have += s->ch[r] && s->ch[r]->replied;
  if (have == sp->expected && !c->dead)
    session_start(c);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* --- port-forward streams --------------------------------------------------------- */

static int pf_port(const char *s)
{
  if (!s || !*s || strlen(s) > 5)
    return -1;
  char *end;
  long v = strtol(s, &end, 10);
  return *end || v < 1 || v > 65535 ? -1 : (int)v;
}

static struct stream_pipe *pipe_for(struct sconn *c, const char *request_id)
{
  for (struct stream_pipe *p = c->pipes; p; p = p->next)
    if (!p->started && strcmp(p->request_id, request_id) == 0)
      return p;
  return NULL;
}

static int pf_stream(struct sconn *c, uint32_t id, uint8_t flags, const struct spdy_headers *h)
{
  struct spdy *sp = c->proto;
  const char *type = spdy_headers_get(h, "streamtype");
  int port = pf_port(spdy_headers_get(h, "port"));
  bool data = type && strcmp(type, "data") == 0, error = type && strcmp(type, "error") == 0;
  if (port < 0 || (!data && !error)) {
    send_rst(c, id, SPDY_CANCEL);   /* as kubelet rejects a stream */
    return 0;
  }
  /* old clients send no requestid: kubelet pairs error N with data N+2 */
  const char *rid = spdy_headers_get(h, "requestid");
  char derived[16];
  if (!rid || !*rid) {
    snprintf(derived, sizeof(derived), "%ld", (long)id - (data ? 2 : 0));
    rid = derived;
  }
  pthread_mutex_lock(&c->mu);
  struct stream_pipe *p = pipe_for(c, rid);
  if (!p)
    p = pipe_new(c, (uint16_t)port, rid);
  if (data ? p->data != NULL : p->err != NULL) {
    pthread_mutex_unlock(&c->mu);
    send_rst(c, id, SPDY_PROTOCOL_ERROR);
    return 0;
  }
  struct schan *ch = schan_new(c, data ? SROLE_PF_DATA : SROLE_PF_ERROR, id);
  new_chan_flags(ch, flags, sp->initial_window);
  ch->pipe = p;
  if (data) {
    p->data = ch;
    p->port = (uint16_t)port;
  } else {
    p->err = ch;
  }
  pthread_mutex_unlock(&c->mu);
  send_reply(c, ch);
  pthread_mutex_lock(&c->mu);
  if (p->data && p->err && p->data->replied && p->err->replied && !p->started && !c->dead)
    pipe_start(c, p);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* --- frames ------------------------------------------------------------------------ */

static int on_syn_stream(struct sconn *c, const struct spdy_frame *f)
{
  struct spdy *sp = c->proto;
  if (f->len < 10)
    return session_error(c, "short SYN_STREAM");
  uint32_t id = spdy_u32(f->payload) & 0x7fffffffu;
  struct spdy_headers h = {0};
  err_t *e = NULL;
  /* inflate even a stream we refuse: the zlib state is shared by all frames */
  if (spdy_zin_headers(sp->zin, f->payload + 10, f->len - 10, &h, &e) < 0) {
    err_free(&e);
    spdy_headers_clear(&h);
    return session_error(c, "bad header block");
  }
  if (id == 0 || id % 2 == 0 || id <= sp->last_id) {
    spdy_headers_clear(&h);
    return session_error(c, "bad stream id");
  }
  pthread_mutex_lock(&c->mu);
  sp->last_id = id;
  bool refuse = c->finishing || c->n_chans >= SPDY_MAX_STREAMS;
  pthread_mutex_unlock(&c->mu);
  int rc = 0;
  if (refuse)
    send_rst(c, id, SPDY_REFUSED_STREAM);
  else if (c->kind == STREAM_PORT_FORWARD)
    rc = pf_stream(c, id, f->flags, &h);
  else
    rc = rc_stream(c, id, f->flags, &h);
  spdy_headers_clear(&h);
  return rc;
}

static int on_data(struct sconn *c, const struct spdy_frame *f)
{
  if (f->stream_id == 0)
    return session_error(c, "DATA on stream 0");
  pthread_mutex_lock(&c->mu);
  struct schan *ch = schan_find(c, f->stream_id);
  bool open = ch && !ch->in_eof;
  pthread_mutex_unlock(&c->mu);
  if (!open) {
    /* a stream we never had or that the client already closed: spdystream drops
     * such data too; the session window still gets its bytes back */
    credit(c, NULL, f->len);
    return 0;
  }
  if (f->len && !schan_deliver(ch, f->payload, f->len))
    credit(c, ch, f->len);
  if (f->flags & SPDY_FLAG_FIN) {
    pthread_mutex_lock(&c->mu);
    schan_input_end(ch, false);
    pthread_mutex_unlock(&c->mu);
  }
  return 0;
}

static void on_rst(struct sconn *c, const struct spdy_frame *f)
{
  if (f->len < 8)
    return;
  pthread_mutex_lock(&c->mu);
  struct schan *ch = schan_find(c, spdy_u32(f->payload) & 0x7fffffffu);
  if (ch)
    schan_input_end(ch, true);
  pthread_mutex_unlock(&c->mu);
}

static int64_t add_window(int64_t w, uint32_t delta)
{
  w += delta;
  return w > SPDY_MAX_WINDOW ? SPDY_MAX_WINDOW : w;
}

static void on_window_update(struct sconn *c, const struct spdy_frame *f)
{
  struct spdy *sp = c->proto;
  if (f->len < 8)
    return;
  uint32_t id = spdy_u32(f->payload) & 0x7fffffffu, delta = spdy_u32(f->payload + 4) & 0x7fffffffu;
  pthread_mutex_lock(&c->mu);
  sp->enforce = true;
  if (id == 0) {
    sp->session_window = add_window(sp->session_window, delta);
  } else {
    struct schan *ch = schan_find(c, id);
    if (ch)
      ch->send_window = add_window(ch->send_window, delta);
  }
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
}

static void on_settings(struct sconn *c, const struct spdy_frame *f)
{
  struct spdy *sp = c->proto;
  if (f->len < 4)
    return;
  uint32_t n = spdy_u32(f->payload);
  if (n > (f->len - 4) / 8)
    return;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = f->payload + 4 + 8 * i;
    uint32_t value = spdy_u32(e + 4);
    if ((spdy_u32(e) & 0xffffff) != SPDY_SETTINGS_INITIAL_WINDOW_SIZE || value > SPDY_MAX_WINDOW)
      continue;
    pthread_mutex_lock(&c->mu);
    int64_t delta = (int64_t)value - sp->initial_window;
    sp->initial_window = value;
    sp->enforce = true;
    for (struct schan *ch = c->chans; ch; ch = ch->next)
      ch->send_window += delta;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
  }
}

static void on_ping(struct sconn *c, const struct spdy_frame *f)
{
  if (f->len != 4)
    return;
  uint32_t id = spdy_u32(f->payload);
  if (!(id & 1))
    return;   /* even ids are server pings: we send none, so nothing to answer */
  cleanup_buf struct buf b = BUF_INIT;
  spdy_put_ping(&b, id);
  send_frames(c, &b);
}

static int on_control(struct sconn *c, const struct spdy_frame *f)
{
  struct spdy *sp = c->proto;
  if (f->version != SPDY_VERSION)
    return session_error(c, "unsupported SPDY version");
  switch (f->type) {
  case SPDY_SYN_STREAM:
    return on_syn_stream(c, f);
  case SPDY_SYN_REPLY:
  case SPDY_HEADERS: {
    /* we open no streams and need no trailers, but the block must be inflated */
    struct spdy_headers h = {0};
    err_t *e = NULL;
    int rc = f->len >= 4 ? spdy_zin_headers(sp->zin, f->payload + 4, f->len - 4, &h, &e) : -1;
    err_free(&e);
    spdy_headers_clear(&h);
    return rc < 0 ? session_error(c, "bad header block") : 0;
  }
  case SPDY_RST_STREAM:
    on_rst(c, f);
    return 0;
  case SPDY_SETTINGS:
    on_settings(c, f);
    return 0;
  case SPDY_PING:
    on_ping(c, f);
    return 0;
  case SPDY_WINDOW_UPDATE:
    on_window_update(c, f);
    return 0;
  case SPDY_GOAWAY:
    return 0;   /* the client stops opening streams; it closes the socket when done */
  default:
    return 0;   /* spec 2.2.1: unknown control frames are ignored */
  }
}

static int spdy_input(struct sconn *c, uint8_t *p, size_t n, size_t *used)
{
  *used = 0;
  for (;;) {
    struct spdy_frame f;
    ssize_t len = spdy_frame_parse(p + *used, n - *used, SPDY_MAX_PAYLOAD, &f);
    if (len < 0)
      return session_error(c, "frame too large");
    if (len == 0)
      return 0;
    *used += (size_t)len;
    if ((f.control ? on_control(c, &f) : on_data(c, &f)) < 0)
      return -1;
  }
}

static int spdy_tick(struct sconn *c, int64_t now, int64_t *next)
{
  struct spdy *sp = c->proto;
  *next = -1;
  pthread_mutex_lock(&c->mu);
  if (c->kind != STREAM_PORT_FORWARD) {
    bool late = !c->sess.started && now >= sp->deadline_ms;
    if (!c->sess.started)
      *next = sp->deadline_ms - now;
    pthread_mutex_unlock(&c->mu);
    if (late)
      log_debug("streaming: the client did not create its streams in time", NULL);
    return late ? -1 : 0;
  }
  for (struct stream_pipe *p = c->pipes; p; p = p->next) {
    if (p->started)
      continue;
    int64_t due = p->created_ms + sconn_creation_ms(c);
    if (now >= due) {
      cleanup_free char *msg = xasprintf("timed out waiting for the streams of request %s", p->request_id);
      pipe_fail_unstarted(c, p, msg);
    } else if (*next < 0 || due - now < *next) {
      *next = due - now;
    }
  }
  sconn_reap(c);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

static void spdy_serve(struct sconn *c) { sconn_loop(c, spdy_input, spdy_tick); }

static void spdy_free(void *proto)
{
  struct spdy *sp = proto;
  if (!sp)
    return;
  spdy_zin_free(sp->zin);
  spdy_zout_free(sp->zout);
  free(sp);
}

const struct sproto_ops stream_spdy_ops = {
  .write = spdy_write,
  .close_write = spdy_close_write,
  .consumed = spdy_consumed,
  .goodbye = spdy_goodbye,
  .serve = spdy_serve,
  .free = spdy_free,
};

int stream_spdy_attach(struct sconn *c, err_t **e)
{
  struct spdy *sp = xcalloc(1, sizeof(*sp));
  sp->zin = spdy_zin_new();
  sp->zout = spdy_zout_new(SPDY_HEADER_WINDOW_BITS);
  sp->initial_window = SPDY_DEFAULT_WINDOW;
  sp->session_window = SPDY_DEFAULT_WINDOW;
  const struct stream_opts *o = &c->opts;
  sp->expected = 1 + o->in + o->out + o->err + (o->tty && c->version >= 3);
  sp->deadline_ms = sconn_now(c) + sconn_creation_ms(c);
  c->proto = sp;
  c->ops = &stream_spdy_ops;
  (void)e;
  return 0;
}
