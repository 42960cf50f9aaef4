#include "stream_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cri/stream_spdy_frame.h"

/* --- HTTP ---------------------------------------------------------------------------- */

int tc_connect(const char *url)
{
  const char *h = strstr(url, "://");
  h = h ? h + 3 : url;
  const char *colon = strchr(h, ':');
  if (!colon)
    abort();
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  char host[64];
  snprintf(host, sizeof(host), "%.*s", (int)(colon - h), h);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
    abort();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
    abort();
  return fd;
}

const char *tc_path(const char *url)
{
  const char *h = strstr(url, "://");
  return strchr(h ? h + 3 : url, '/');
}

static void send_all(int fd, const void *p, size_t n)
{
  const char *q = p;
  while (n) {
    ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;   /* the server hung up: the test sees it when reading */
    q += w;
    n -= (size_t)w;
  }
}

/* Reads more into b; 1 on data, 0 on EOF, -1 on timeout. */
static int read_more(int fd, struct buf *b, int timeout_ms)
{
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0)
    return -1;
  buf_reserve(b, 65536);
  ssize_t n = read(fd, b->data + b->len, 65536);
  if (n <= 0)
    return 0;
  b->len += (size_t)n;
  b->data[b->len] = '\0';
  return 1;
}

int tc_request(int fd, const char *method, const char *path, const char *headers, struct buf *head,
               struct buf *rest)
{
  cleanup_free char *req = xasprintf("%s %s HTTP/1.1\r\nHost: test\r\n%s\r\n", method, path, headers ? headers : "");
  send_all(fd, req, strlen(req));
  struct buf in = BUF_INIT;
  char *end;
  while (!(end = in.data ? strstr(in.data, "\r\n\r\n") : NULL))
    if (read_more(fd, &in, 5000) <= 0) {
      buf_free(&in);
      return -1;
    }
  size_t hl = (size_t)(end + 4 - in.data);
  buf_append(head, in.data, hl);
  buf_append(rest, in.data + hl, in.len - hl);
  int status = atoi(in.data + 9);
  buf_free(&in);
  return status;
}

bool tc_closed_within(int fd, int timeout_ms)
{
  struct buf b = BUF_INIT;
  int rc;
  while ((rc = read_more(fd, &b, timeout_ms)) > 0)
    buf_reset(&b);
  buf_free(&b);
  return rc == 0;
}

static char *header_value(const char *head, const char *name)
{
  size_t n = strlen(name);
  for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n"))
    if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':') {
      const char *v = l + 3 + n, *e = strstr(v, "\r\n");
      while (*v == ' ')
        v++;
      return xstrndup(v, (size_t)(e - v));
    }
  return NULL;
}

/* --- SPDY ------------------------------------------------------------------------------ */

struct spdyc *spdyc_open(const char *url, const char *protocols, int *status, char **chosen)
{
  int fd = tc_connect(url);
  cleanup_buf struct buf head = BUF_INIT, hdrs = BUF_INIT;
  struct buf rest = BUF_INIT;
  buf_puts(&hdrs, "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
  if (protocols)
    buf_printf(&hdrs, "X-Stream-Protocol-Version: %s\r\n", protocols);
  *status = tc_request(fd, "POST", tc_path(url), hdrs.data, &head, &rest);
  if (chosen)
    *chosen = head.data ? header_value(head.data, "X-Stream-Protocol-Version") : NULL;
  if (*status != 101) {
    buf_free(&rest);
    close(fd);
    return NULL;
  }
  struct spdyc *c = xcalloc(1, sizeof(*c));
  c->fd = fd;
  c->in = rest;
  if (deflateInit(&c->def, Z_DEFAULT_COMPRESSION) != Z_OK ||
      deflateSetDictionary(&c->def, stream_spdy_dict, STREAM_SPDY_DICT_LEN) != Z_OK ||
      inflateInit(&c->inf) != Z_OK)
    abort();
  return c;
}

struct spdyc *spdyc_open_tunnel(const char *url, const char *protocol, int *status, char **chosen)
{
  cleanup_free char *sub = xasprintf("SPDY/3.1+%s", protocol);
  struct wsc *w = wsc_open(url, sub, status, chosen);
  if (!w)
    return NULL;
  struct spdyc *c = xcalloc(1, sizeof(*c));
  c->fd = w->fd;
  c->tun = w;
  if (deflateInit(&c->def, Z_DEFAULT_COMPRESSION) != Z_OK ||
      deflateSetDictionary(&c->def, stream_spdy_dict, STREAM_SPDY_DICT_LEN) != Z_OK ||
      inflateInit(&c->inf) != Z_OK)
    abort();
  return c;
}

static void spdyc_send(struct spdyc *c, const void *p, size_t n)
{
  if (c->tun)
    wsc_send(c->tun, 2, true, p, n);
  else
    send_all(c->fd, p, n);
}

/* More SPDY bytes into c->in: 1, 0 on EOF or a Close, -1 on timeout. */
static int spdyc_more(struct spdyc *c, int timeout_ms)
{
  if (!c->tun)
    return read_more(c->fd, &c->in, timeout_ms);
  int op;
  bool fin;
  cleanup_buf struct buf pay = BUF_INIT;
  int rc = wsc_read(c->tun, &op, &fin, &pay, timeout_ms);
  if (rc <= 0)
    return rc;
  if (op == 8)
    return 0;
  if (op == 2 || op == 0)
    buf_append(&c->in, pay.data, pay.len);
  return 1;
}

void spdyc_close(struct spdyc *c)
{
  if (!c)
    return;
  deflateEnd(&c->def);
  inflateEnd(&c->inf);
  if (c->tun)
    wsc_close(c->tun);
  else
    close(c->fd);
  buf_free(&c->in);
  free(c);
}

void spdyc_raw(struct spdyc *c, const void *p, size_t n) { spdyc_send(c, p, n); }

void spdyc_control(struct spdyc *c, uint16_t type, uint8_t flags, const void *p, size_t n)
{
  cleanup_buf struct buf b = BUF_INIT;
  spdy_put_control(&b, type, flags, p, n);
  spdyc_send(c, b.data, b.len);
}

static void put32(struct buf *b, uint32_t v)
{
  uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  buf_append(b, p, 4);
}

void spdyc_syn(struct spdyc *c, uint32_t id, const char *const *kv)
{
  cleanup_buf struct buf raw = BUF_INIT, pay = BUF_INIT;
  size_t n = 0;
  while (kv[2 * n])
    n++;
  put32(&raw, (uint32_t)n);
  for (size_t i = 0; i < 2 * n; i++) {
    put32(&raw, (uint32_t)strlen(kv[i]));
    buf_puts(&raw, kv[i]);
  }
  put32(&pay, id);
  put32(&pay, 0);
  buf_append(&pay, "\0\0", 2);
  uint8_t out[4096];
  c->def.next_in = (Bytef *)raw.data;
  c->def.avail_in = (uInt)raw.len;
  c->def.next_out = out;
  c->def.avail_out = sizeof(out);
  if (deflate(&c->def, Z_SYNC_FLUSH) != Z_OK)
    abort();
  buf_append(&pay, out, sizeof(out) - c->def.avail_out);
  spdyc_control(c, SPDY_SYN_STREAM, 0, pay.data, pay.len);
}

void spdyc_data(struct spdyc *c, uint32_t id, const void *p, size_t n, bool fin)
{
  uint8_t h[8];
  spdy_data_header(h, id, fin ? SPDY_FLAG_FIN : 0, (uint32_t)n);
  cleanup_buf struct buf b = BUF_INIT;
  buf_append(&b, h, 8);
  buf_append(&b, p, n);
  spdyc_send(c, b.data, b.len);
}

static void inflate_headers(struct spdyc *c, const uint8_t *p, size_t n, struct spdyc_frame *f)
{
  uint8_t out[4096];
  c->inf.next_in = (Bytef *)p;
  c->inf.avail_in = (uInt)n;
  c->inf.next_out = out;
  c->inf.avail_out = sizeof(out);
  int rc = inflate(&c->inf, Z_SYNC_FLUSH);
  if (rc == Z_NEED_DICT) {
    if (inflateSetDictionary(&c->inf, stream_spdy_dict, STREAM_SPDY_DICT_LEN) != Z_OK)
      abort();
    rc = inflate(&c->inf, Z_SYNC_FLUSH);
  }
  if ((rc != Z_OK && rc != Z_BUF_ERROR) || c->inf.avail_in)
    abort();   /* the server's header block did not inflate */
  size_t len = sizeof(out) - c->inf.avail_out, off = 4;
  uint32_t count = spdy_u32(out);
  for (uint32_t i = 0; i < count && off + 8 <= len; i++) {
    uint32_t nl = spdy_u32(out + off), vl = spdy_u32(out + off + 4 + nl);
    size_t used = strlen(f->headers);
    snprintf(f->headers + used, sizeof(f->headers) - used, "%.*s=%.*s;", (int)nl, out + off + 4, (int)vl,
             out + off + 8 + nl);
    off += 8 + nl + vl;
  }
}

int spdyc_read(struct spdyc *c, struct spdyc_frame *f, int timeout_ms)
{
  memset(f, 0, sizeof(*f));
  for (;;) {
    struct spdy_frame sf;
    ssize_t n = spdy_frame_parse((uint8_t *)c->in.data, c->in.len, 1 << 24, &sf);
    if (n > 0) {
      f->control = sf.control;
      f->type = sf.type;
      f->flags = sf.flags;
      f->stream_id = sf.control ? (sf.len >= 4 ? spdy_u32(sf.payload) & 0x7fffffff : 0) : sf.stream_id;
      buf_append(&f->payload, sf.payload, sf.len);
      if (sf.control && (sf.type == SPDY_SYN_REPLY || sf.type == SPDY_HEADERS))
        inflate_headers(c, sf.payload + 4, sf.len - 4, f);
      memmove(c->in.data, c->in.data + n, c->in.len - (size_t)n);
      c->in.len -= (size_t)n;
      return 1;
    }
    int rc = spdyc_more(c, timeout_ms);
    if (rc <= 0)
      return rc;
  }
}

void spdyc_frame_free(struct spdyc_frame *f) { buf_free(&f->payload); }

static int index_of(const uint32_t *ids, size_t n, uint32_t id)
{
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id)
      return (int)i;
  return -1;
}

static void count_control(const struct spdyc_frame *f, struct spdyc_stats *st)
{
  if (f->type == SPDY_SYN_REPLY)
    st->replies++;
  else if (f->type == SPDY_RST_STREAM)
    st->resets++;
  else if (f->type == SPDY_GOAWAY)
    st->goaways++;
  else if (f->type == SPDY_PING)
    st->pings++;
  else if (f->type == SPDY_WINDOW_UPDATE) {
    st->window_updates++;
    st->window_credit += spdy_u32((const uint8_t *)f->payload.data + 4);
  }
}

int spdyc_collect(struct spdyc *c, const uint32_t *ids, struct buf *outs, size_t n, int timeout_ms,
                  struct spdyc_stats *st)
{
  bool done[16] = {false};
  size_t left = n;
  while (left) {
    struct spdyc_frame f;
    int rc = spdyc_read(c, &f, timeout_ms);
    if (rc <= 0) {
      st->eof = rc == 0;
      return -1;
    }
    int i = index_of(ids, n, f.stream_id);
    if (f.control) {
      count_control(&f, st);
      if (f.type == SPDY_RST_STREAM && i >= 0 && !done[i]) {
        done[i] = true;
        left--;
      }
    } else if (i >= 0) {
      buf_append(&outs[i], f.payload.data, f.payload.len);
      if ((f.flags & SPDY_FLAG_FIN) && !done[i]) {
        done[i] = true;
        left--;
      }
    }
    spdyc_frame_free(&f);
  }
  return 0;
}

/* --- WebSocket -------------------------------------------------------------------------- */

struct wsc *wsc_open(const char *url, const char *protocols, int *status, char **chosen)
{
  int fd = tc_connect(url);
  cleanup_buf struct buf head = BUF_INIT, hdrs = BUF_INIT;
  struct buf rest = BUF_INIT;
  buf_puts(&hdrs, "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
  if (protocols)
    buf_printf(&hdrs, "Sec-WebSocket-Protocol: %s\r\n", protocols);
  *status = tc_request(fd, "GET", tc_path(url), hdrs.data, &head, &rest);
  if (chosen)
    *chosen = head.data ? header_value(head.data, "Sec-WebSocket-Protocol") : NULL;
  if (*status != 101 || !strstr(head.data, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
    buf_free(&rest);
    close(fd);
    return NULL;
  }
  struct wsc *w = xcalloc(1, sizeof(*w));
  w->fd = fd;
  w->in = rest;
  return w;
}

void wsc_close(struct wsc *w)
{
  if (!w)
    return;
  close(w->fd);
  buf_free(&w->in);
  free(w);
}

void wsc_send(struct wsc *w, int op, bool fin, const void *p, size_t n)
{
  cleanup_buf struct buf b = BUF_INIT;
  uint8_t h[14];
  size_t hl = 2;
  h[0] = (uint8_t)((fin ? 0x80 : 0) | op);
  if (n < 126) {
    h[1] = (uint8_t)(0x80 | n);
  } else if (n <= 0xffff) {
    h[1] = 0x80 | 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    hl = 4;
  } else {
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
      h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  memcpy(h + hl, mask, 4);
  buf_append(&b, h, hl + 4);
  const uint8_t *q = p;
  for (size_t i = 0; i < n; i++)
    buf_putc(&b, (char)(q[i] ^ mask[i & 3]));
  send_all(w->fd, b.data, b.len);
}

void wsc_send_chan(struct wsc *w, uint8_t ch, const void *p, size_t n)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_putc(&b, (char)ch);
  buf_append(&b, p, n);
  wsc_send(w, 2, true, b.data, b.len);
}

int wsc_read(struct wsc *w, int *op, bool *fin, struct buf *payload, int timeout_ms)
{
  for (;;) {
    const uint8_t *p = (const uint8_t *)w->in.data;
    size_t n = w->in.len, hl = 2;
    if (n >= 2) {
      if (p[1] & 0x80)
        abort();   /* a server must not mask */
      uint64_t len = p[1] & 0x7f;
      if (len == 126 && n >= 4) {
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
      } else if (len == 127 && n >= 10) {
        len = 0;
        for (int i = 0; i < 8; i++)
          len = len << 8 | p[2 + i];
        hl = 10;
      }
      if ((p[1] & 0x7f) < 126 || hl > 2) {
        if (n >= hl + len) {
          *op = p[0] & 0x0f;
          *fin = p[0] & 0x80;
          buf_append(payload, p + hl, (size_t)len);
          memmove(w->in.data, w->in.data + hl + len, n - hl - (size_t)len);
          w->in.len -= hl + (size_t)len;
          return 1;
        }
      }
    }
    int rc = read_more(w->fd, &w->in, timeout_ms);
    if (rc <= 0)
      return rc;
  }
}

/* --- the echo back end -------------------------------------------------------------------- */

struct echo_state echo = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, {{0}}, 0, 0};

void echo_reset(void)
{
  pthread_mutex_lock(&echo.mu);
  echo.sessions_done = echo.closed_cbs = echo.stdin_errors = echo.n_sizes = echo.pipes_done = 0;
  pthread_mutex_unlock(&echo.mu);
}

static void bump(int *field)
{
  pthread_mutex_lock(&echo.mu);
  (*field)++;
  pthread_cond_broadcast(&echo.cond);
  pthread_mutex_unlock(&echo.mu);
}

int echo_wait(const int *field, int n, int timeout_ms)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&echo.mu);
  while (*field < n && pthread_cond_timedwait(&echo.cond, &echo.mu, &until) == 0)
    ;
  int v = *field;
  pthread_mutex_unlock(&echo.mu);
  return v;
}

static void on_resize(void *arg, uint16_t w, uint16_t h)
{
  (void)arg;
  pthread_mutex_lock(&echo.mu);
  if (echo.n_sizes < 16) {
    echo.sizes[echo.n_sizes][0] = w;
    echo.sizes[echo.n_sizes][1] = h;
    echo.n_sizes++;
  }
  pthread_cond_broadcast(&echo.cond);
  pthread_mutex_unlock(&echo.mu);
}

static void on_close(void *arg)
{
  (void)arg;
  bump(&echo.closed_cbs);
}

static void echo_session(void *ctx, struct stream_session *s, void *req)
{
  (void)ctx;
  struct echo_req *r = req;
  stream_session_set_resize_cb(s, on_resize, NULL);
  stream_session_set_close_cb(s, on_close, NULL);
  err_t *e = NULL;
  if (r->stderr_note)
    stream_session_write(s, STREAM_STDERR, "note\n", 5, &e);
  err_free(&e);
  char buf[8192];
  ssize_t n;
  while (!r->finish_early && (n = stream_session_read_stdin(s, buf, sizeof(buf), &e)) > 0)
    if (stream_session_write(s, STREAM_STDOUT, buf, (size_t)n, &e) < 0)
      break;
  if (e)
    bump(&echo.stdin_errors);
  err_free(&e);
  stream_session_finish(s, r->exit_code, r->error);
  bump(&echo.sessions_done);
}

static int echo_forward(void *ctx, struct stream_pipe *p, void *req, err_t **e)
{
  (void)ctx, (void)req;
  if (stream_pipe_port(p) == 666) {
    bump(&echo.pipes_done);
    return err_set(e, ERR_UNAVAILABLE, 0, "error forwarding port 666: nothing listens");
  }
  char buf[8192];
  ssize_t n;
  while ((n = stream_pipe_read(p, buf, sizeof(buf), e)) > 0)
    if (stream_pipe_write(p, buf, (size_t)n, e) < 0)
      break;
  err_free(e);
  bump(&echo.pipes_done);
  return 0;
}

const struct stream_handlers echo_handlers = {
  .exec = echo_session, .attach = echo_session, .port_forward = echo_forward,
};

struct echo_req *echo_req_new(int exit_code)
{
  struct echo_req *r = xcalloc(1, sizeof(*r));
  r->exit_code = exit_code;
  return r;
}

struct stream_server *test_server(const struct stream_config *cfg)
{
  struct stream_server *s = NULL;
  err_t *e = NULL;
  struct stream_config c = cfg ? *cfg : (struct stream_config){0};
  if (!c.creation_timeout_ms)
    c.creation_timeout_ms = 3000;
  if (stream_server_new(&c, &echo_handlers, &s, &e) < 0)
    abort();
  echo_reset();
  return s;
}

char *test_token(struct stream_server *s, enum stream_kind kind, bool in, bool out, bool err, bool tty,
                 struct echo_req *r)
{
  struct stream_opts o = {.in = in, .out = out, .err = err, .tty = tty};
  char *url = NULL;
  err_t *e = NULL;
  if (stream_token_new(s, kind, &o, r ? r : echo_req_new(0), free, &url, &e) < 0)
    abort();
  return url;
}
