/* stream_session.c - the protocol-independent side of a streaming connection:
 * channels with their input queues, the exec/attach session a back end drives,
 * port-forward pipes, terminal resize messages and the final status. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/stream_int.h"

#define RESIZE_MAX_MESSAGE 4096

/* --- channels ---------------------------------------------------------------- */

struct schan *schan_new(struct sconn *c, enum sch_role role, uint32_t id)
{
  struct schan *ch = xcalloc(1, sizeof(*ch));
  ch->conn = c;
  ch->role = role;
  ch->id = id;
  ch->readable = role == SROLE_STDIN || role == SROLE_RESIZE || role == SROLE_PF_DATA;
  ch->writable = role == SROLE_STDOUT || role == SROLE_STDERR || role == SROLE_ERROR ||
                 role == SROLE_PF_DATA || role == SROLE_PF_ERROR;
  ch->next = c->chans;
  c->chans = ch;
  c->n_chans++;
  return ch;
}

struct schan *schan_find(struct sconn *c, uint32_t id)
{
  for (struct schan *ch = c->chans; ch; ch = ch->next)
    if (ch->id == id)
      return ch;
  return NULL;
}

static void resize_feed(struct stream_session *s, const void *p, size_t len);

bool schan_deliver(struct schan *ch, const void *p, size_t len)
{
  struct sconn *c = ch->conn;
  if (ch->role == SROLE_RESIZE) {
    resize_feed(&c->sess, p, len);  /* the reader thread owns the parser */
    return false;
  }
  pthread_mutex_lock(&c->mu);
  /* after goodbye nobody reads: drop rather than wait */
  while (ch->readable && !ch->reset && !ch->in_eof && !c->dead && !c->finishing &&
         ch->in.len - ch->in_off > SCHAN_IN_CAP)
    pthread_cond_wait(&c->cond, &c->mu);
  bool take = ch->readable && !ch->reset && !ch->in_eof && !c->dead && !c->finishing;
  if (take) {
    buf_append(&ch->in, p, len);
    pthread_cond_broadcast(&c->cond);
  }
  pthread_mutex_unlock(&c->mu);
  return take;
}

void schan_input_end(struct schan *ch, bool reset)
{
  if (reset)
    ch->reset = true;
  ch->in_eof = true;
  pthread_cond_broadcast(&ch->conn->cond);
}

ssize_t schan_read(struct schan *ch, void *buf, size_t cap, err_t **e)
{
  struct sconn *c = ch->conn;
  pthread_mutex_lock(&c->mu);
  size_t avail;
  while (!(avail = ch->in.len - ch->in_off) && !ch->in_eof && !c->dead)
    pthread_cond_wait(&c->cond, &c->mu);
  if (avail && !ch->reset) {
    size_t n = avail < cap ? avail : cap;
    memcpy(buf, ch->in.data + ch->in_off, n);
    ch->in_off += n;
    if (ch->in_off == ch->in.len) {
      buf_reset(&ch->in);
      ch->in_off = 0;
    }
    pthread_cond_broadcast(&c->cond);   /* the reader may wait for room */
    pthread_mutex_unlock(&c->mu);
    c->ops->consumed(c, ch, n);
    return (ssize_t)n;
  }
  bool cancelled = ch->reset || !ch->in_eof;
  pthread_mutex_unlock(&c->mu);
  if (cancelled)
    return err_set(e, ERR_CANCELLED, 0, "the streaming client went away");
  return 0;
}

void schan_close_output(struct schan *ch)
{
  if (!ch)
    return;
  struct sconn *c = ch->conn;
  pthread_mutex_lock(&c->mu);
  bool now = ch->writable && !ch->out_closed && !ch->reset && !c->dead;
  ch->out_closed = true;
  pthread_mutex_unlock(&c->mu);
  if (now)
    c->ops->close_write(c, ch);
}

static int chan_write(struct schan *ch, const void *buf, size_t len, err_t **e)
{
  struct sconn *c = ch->conn;
  pthread_mutex_lock(&c->mu);
  bool closed = ch->out_closed;
  pthread_mutex_unlock(&c->mu);
  if (closed)
    return err_set(e, ERR_PRECONDITION, 0, "write after close");
  return c->ops->write(c, ch, buf, len, e);
}

/* --- exec / attach session ----------------------------------------------------- */

const struct stream_opts *stream_session_opts(const struct stream_session *s) { return &s->conn->opts; }

enum stream_kind stream_session_kind(const struct stream_session *s) { return s->conn->kind; }

ssize_t stream_session_read_stdin(struct stream_session *s, void *buf, size_t cap, err_t **e)
{
  if (!s->ch[SROLE_STDIN])
    return 0;
  return schan_read(s->ch[SROLE_STDIN], buf, cap, e);
}

int stream_session_write(struct stream_session *s, enum stream_out which, const void *buf,
                         size_t len, err_t **e)
{
  struct schan *ch = s->ch[which == STREAM_STDERR ? SROLE_STDERR : SROLE_STDOUT];
  if (!ch || !len)
    return 0;
  return chan_write(ch, buf, len, e);
}

void stream_session_close_output(struct stream_session *s, enum stream_out which)
{
  schan_close_output(s->ch[which == STREAM_STDERR ? SROLE_STDERR : SROLE_STDOUT]);
}

void stream_session_set_resize_cb(struct stream_session *s, stream_resize_fn fn, void *arg)
{
  struct sconn *c = s->conn;
  pthread_mutex_lock(&c->mu);
  s->resize_fn = fn;
  s->resize_arg = arg;
  bool have = s->have_size;
  uint16_t w = s->width, h = s->height;
  pthread_mutex_unlock(&c->mu);
  if (have && fn)
    fn(arg, w, h);
}

void stream_session_set_close_cb(struct stream_session *s, void (*fn)(void *arg), void *arg)
{
  struct sconn *c = s->conn;
  pthread_mutex_lock(&c->mu);
  s->close_fn = fn;
  s->close_arg = arg;
  bool now = c->dead && !s->finished;
  pthread_mutex_unlock(&c->mu);
  if (now && fn)
    fn(arg);
}

static void json_status(struct buf *b, const char *message, const char *reason, const char *cause_reason,
                        const char *cause_message, int code)
{
  buf_puts(b, "{\"metadata\":{},\"status\":\"Failure\",\"message\":");
  buf_json_str(b, message);
  buf_printf(b, ",\"reason\":\"%s\",\"details\":{\"causes\":[{", reason);
  if (cause_reason)
    buf_printf(b, "\"reason\":\"%s\",", cause_reason);
  buf_puts(b, "\"message\":");
  buf_json_str(b, cause_message);
  buf_puts(b, "}]}");
  if (code)
    buf_printf(b, ",\"code\":%d", code);
  buf_putc(b, '}');
}

/* What kubelet writes on the error stream: a metav1.Status as JSON for v4 and up,
 * the status message alone (and nothing on success) before. */
char *stream_status_message(enum stream_kind kind, int version, int exit_code, const char *error)
{
  struct buf b = BUF_INIT;
  if (!error && exit_code == 0) {
    if (version < 4)
      return NULL;
    buf_puts(&b, "{\"metadata\":{},\"status\":\"Success\"}");
    return buf_steal(&b);
  }
  cleanup_free char *message = NULL, *cause = NULL, *code = NULL;
  if (error) {
    cause = xasprintf("%s: %s", kind == STREAM_ATTACH ? "error attaching to container"
                                                      : "error executing command in container", error);
    message = xasprintf("Internal error occurred: %s", cause);
  } else {
    code = xasprintf("%d", exit_code);
    message = xasprintf("command terminated with non-zero exit code: exit status %d", exit_code);
  }
  if (version < 4) {
    buf_puts(&b, message);
    return buf_steal(&b);
  }
  if (error)
    json_status(&b, message, "InternalError", NULL, cause, 500);
  else
    json_status(&b, message, "NonZeroExitCode", "ExitCode", code, 0);
  return buf_steal(&b);
}

void stream_session_finish(struct stream_session *s, int exit_code, const char *error)
{
  struct sconn *c = s->conn;
  pthread_mutex_lock(&c->mu);
  bool twice = s->finished;
  s->finished = true;
  /* once finish returns the back end may free what its callbacks use */
  s->resize_fn = NULL;
  s->close_fn = NULL;
  while (s->cb_running)
    pthread_cond_wait(&c->cond, &c->mu);
  pthread_mutex_unlock(&c->mu);
  if (twice)
    return;
  schan_close_output(s->ch[SROLE_STDOUT]);
  schan_close_output(s->ch[SROLE_STDERR]);
  cleanup_free char *msg = stream_status_message(c->kind, c->version, exit_code, error);
  if (msg && s->ch[SROLE_ERROR]) {
    err_t *e = NULL;
    if (c->ops->write(c, s->ch[SROLE_ERROR], msg, strlen(msg), &e) < 0)
      err_free(&e);  /* the client left: nobody to tell */
  }
  schan_close_output(s->ch[SROLE_ERROR]);
  c->ops->goodbye(c);
  sconn_unref(c);    /* the reference session_start took */
}

static void session_thread(struct sconn *c, void *arg)
{
  (void)arg;
  void (*fn)(void *, struct stream_session *, void *) = c->kind == STREAM_ATTACH ? c->h->attach : c->h->exec;
  if (!fn) {
    stream_session_finish(&c->sess, 0, "not supported by this runtime");
    return;
  }
  fn(c->h->ctx, &c->sess, c->req);
}

void session_start(struct sconn *c)
{
  struct stream_session *s = &c->sess;
  if (s->started)
    return;
  s->started = true;
  c->refs++;  /* the session's own, until finish */
  if (sconn_spawn(c, session_thread, NULL) < 0) {
    c->refs--;
    s->finished = true;
    log_warn("streaming: cannot start a thread for the session", NULL);
  }
}

/* Go's json.Decoder reads concatenated objects and matches field names without
 * regard to case; so do we. Junk resets the parser rather than stopping resizes. */
static int resize_parse(const char *text, uint16_t *w, uint16_t *h)
{
  cleanup_json json_t *j = NULL;
  err_t *e = NULL;
  if (json_parse(text, &j, &e) < 0) {
    err_free(&e);
    return -1;
  }
  long long vw = -1, vh = -1;
  for (size_t i = 0; i < json_len(j); i++) {
    const char *k = json_key_at(j, i);
    if (k && strcasecmp(k, "width") == 0)
      json_int(json_at(j, i), &vw);
    else if (k && strcasecmp(k, "height") == 0)
      json_int(json_at(j, i), &vh);
  }
  if (vw < 0 || vw > 65535 || vh < 0 || vh > 65535)
    return -1;
  *w = (uint16_t)vw;
  *h = (uint16_t)vh;
  return 0;
}

static void callback_done(struct stream_session *s)
{
  struct sconn *c = s->conn;
  pthread_mutex_lock(&c->mu);
  s->cb_running--;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
}

static void resize_deliver(struct stream_session *s, uint16_t w, uint16_t h)
{
  struct sconn *c = s->conn;
  pthread_mutex_lock(&c->mu);
  s->have_size = true;
  s->width = w;
  s->height = h;
  stream_resize_fn fn = s->resize_fn;
  void *arg = s->resize_arg;
  if (fn)
    s->cb_running++;
  pthread_mutex_unlock(&c->mu);
  if (!fn)
    return;
  fn(arg, w, h);
  callback_done(s);
}

/* Length of the complete JSON object at the start of p[0..n), 0 if incomplete. */
static size_t object_len(const char *p, size_t n)
{
  int depth = 0;
  bool str = false, esc = false;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (str) {
      if (esc)
        esc = false;
      else if (ch == '\\')
        esc = true;
      else if (ch == '"')
        str = false;
    } else if (ch == '"') {
      str = true;
    } else if (ch == '{') {
      depth++;
    } else if (ch == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return 0;
}

static void resize_feed(struct stream_session *s, const void *p, size_t len)
{
  struct buf *acc = &s->resize_acc;
  buf_append(acc, p, len);
  size_t off = 0;
  while (off < acc->len) {
    while (off < acc->len && strchr(" \t\r\n", acc->data[off]))
      off++;
    if (off == acc->len)
      break;
    if (acc->data[off] != '{') {
      off = acc->len;   /* not a resize message: drop what we have */
      break;
    }
    size_t n = object_len(acc->data + off, acc->len - off);
    if (!n)
      break;
    cleanup_free char *text = xstrndup(acc->data + off, n);
    uint16_t w, h;
    if (resize_parse(text, &w, &h) == 0)
      resize_deliver(s, w, h);
    off += n;
  }
  memmove(acc->data, acc->data + off, acc->len - off);
  acc->len -= off;
  acc->data[acc->len] = '\0';
  if (acc->len > RESIZE_MAX_MESSAGE)
    buf_reset(acc);
}

/* --- port-forward pipes -------------------------------------------------------- */

uint16_t stream_pipe_port(const struct stream_pipe *p) { return p->port; }

ssize_t stream_pipe_read(struct stream_pipe *p, void *buf, size_t cap, err_t **e)
{
  return schan_read(p->data, buf, cap, e);
}

int stream_pipe_write(struct stream_pipe *p, const void *buf, size_t len, err_t **e)
{
  if (!len)
    return 0;
  return chan_write(p->data, buf, len, e);
}

void stream_pipe_close_write(struct stream_pipe *p) { schan_close_output(p->data); }

void stream_pipe_close_read(struct stream_pipe *p)
{
  struct schan *ch = p->data;
  struct sconn *c = ch->conn;
  pthread_mutex_lock(&c->mu);
  size_t queued = ch->in.len - ch->in_off;
  buf_reset(&ch->in);
  ch->in_off = 0;
  bool credit = queued && !c->dead;
  ch->in_eof = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  if (credit)
    c->ops->consumed(c, ch, queued);
}

struct stream_pipe *pipe_new(struct sconn *c, uint16_t port, const char *request_id)
{
  struct stream_pipe *p = xcalloc(1, sizeof(*p));
  p->conn = c;
  p->port = port;
  p->request_id = xstrdup(request_id);
  p->created_ms = sconn_now(c);
  p->next = c->pipes;
  c->pipes = p;
  return p;
}

static void pipe_end(struct sconn *c, struct stream_pipe *p, const char *msg)
{
  if (msg && p->err) {
    err_t *e = NULL;
    if (c->ops->write(c, p->err, msg, strlen(msg), &e) < 0)
      err_free(&e);
  }
  schan_close_output(p->data);
  schan_close_output(p->err);
}

static void pipe_thread(struct sconn *c, void *arg)
{
  struct stream_pipe *p = arg;
  err_t *e = NULL;
  int rc = c->h->port_forward ? c->h->port_forward(c->h->ctx, p, c->req, &e)
                              : err_set(&e, ERR_UNIMPLEMENTED, 0, "port forwarding is not supported");
  pipe_end(c, p, rc < 0 ? e->msg : NULL);
  err_free(&e);
  pthread_mutex_lock(&c->mu);
  p->done = true;
  bool last = --c->pipes_running == 0;
  pthread_mutex_unlock(&c->mu);
  /* a WebSocket port-forward serves the ports it was opened for, then ends */
  if (last && c->ops == &stream_ws_ops)
    c->ops->goodbye(c);
  sconn_wake(c);
}

void pipe_start(struct sconn *c, struct stream_pipe *p)
{
  p->started = true;
  c->pipes_running++;
  if (sconn_spawn(c, pipe_thread, p) < 0) {
    c->pipes_running--;
    p->done = true;
    log_warn("streaming: cannot start a thread for a port-forward", NULL);
  }
}

void pipe_fail_unstarted(struct sconn *c, struct stream_pipe *p, const char *msg)
{
  p->started = p->done = true;
  pthread_mutex_unlock(&c->mu);
  pipe_end(c, p, msg);
  pthread_mutex_lock(&c->mu);
}

/* --- connection end ------------------------------------------------------------- */

void sconn_closed(struct sconn *c)
{
  pthread_mutex_lock(&c->mu);
  c->dead = true;
  pthread_cond_broadcast(&c->cond);
  struct stream_session *s = &c->sess;
  void (*fn)(void *) = s->started && !s->finished ? s->close_fn : NULL;
  void *arg = s->close_arg;
  if (fn)
    s->cb_running++;
  pthread_mutex_unlock(&c->mu);
  if (!fn)
    return;
  fn(arg);
  callback_done(s);
}

static bool input_over(const struct schan *ch) { return !ch || ch->in_eof || ch->reset; }

static void unlink_chan(struct sconn *c, struct schan *gone)
{
  for (struct schan **pp = &c->chans; *pp; pp = &(*pp)->next)
    if (*pp == gone) {
      *pp = gone->next;
      c->n_chans--;
      buf_free(&gone->in);
      free(gone);
      return;
    }
}

void sconn_reap(struct sconn *c)
{
  for (struct stream_pipe **pp = &c->pipes; *pp;) {
    struct stream_pipe *p = *pp;
    if (!p->done || !input_over(p->data) || !input_over(p->err)) {
      pp = &p->next;
      continue;
    }
    *pp = p->next;
    if (p->data)
      unlink_chan(c, p->data);
    if (p->err)
      unlink_chan(c, p->err);
    free(p->request_id);
    free(p);
  }
  for (struct schan **pp = &c->chans; *pp;) {
    struct schan *ch = *pp;
    if (ch->role == SROLE_IGNORE && input_over(ch)) {
      *pp = ch->next;
      c->n_chans--;
      buf_free(&ch->in);
      free(ch);
    } else {
      pp = &ch->next;
    }
  }
}

void sconn_free_state(struct sconn *c)
{
  while (c->chans) {
    struct schan *ch = c->chans;
    c->chans = ch->next;
    buf_free(&ch->in);
    free(ch);
  }
  while (c->pipes) {
    struct stream_pipe *p = c->pipes;
    c->pipes = p->next;
    free(p->request_id);
    free(p);
  }
  buf_free(&c->sess.resize_acc);
}
