/* stream_upgrade.c - one accepted connection from its first byte to the protocol:
 * read the HTTP request head, find the token in the path, negotiate SPDY or
 * WebSocket as kubelet does, answer 101 (or the error kubelet would) and run the
 * protocol's reader until the connection ends.
 *
 * Answers: unknown path, unknown or used token, or a token of another kind: 404
 * (the token is consumed first, as kubelet does). SPDY: no
 * X-Stream-Protocol-Version 400, none we speak 403 (with
 * X-Accepted-Stream-Protocol-Versions), no "Connection: Upgrade" +
 * "Upgrade: SPDY/3.1" 400. WebSocket: not GET 405, version other than 13 or a bad
 * key 400, only subprotocols we do not speak 403. A WebSocket asking for
 * "SPDY/3.1+<protocol>" carries SPDY in its binary messages (stream_tunnel.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/stream_http.h"
#include "cri/stream_srv.h"
#include "cri/stream_util.h"

#define DRAIN_MS 1000
#define IO_STACK (256 * 1024)

static const char *const rc_spdy[] = {"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                                      "channel.k8s.io", NULL};
static const char *const pf_spdy[] = {"portforward.k8s.io", NULL};
static const char *const rc_ws[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                                    "channel.k8s.io", "base64.channel.k8s.io", NULL};
static const char *const pf_ws[] = {"v4.channel.k8s.io", "v4.base64.channel.k8s.io", NULL};

static void write_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* Half-closes and reads what the client still sends for a moment, so the answer
 * is not lost to a reset from unread input. */
static void drain(struct stream_server *s, int fd)
{
  shutdown(fd, SHUT_WR);
  char sink[4096];
  for (int i = 0; i < 16; i++) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
    if (poll(p, 2, DRAIN_MS) <= 0 || p[1].revents || read(fd, sink, sizeof(sink)) <= 0)
      break;
  }
}

static int respond(int fd, int status, const char *extra, const char *body)
{
  cleanup_buf struct buf b = BUF_INIT;
  http_error_response(&b, status, extra, body);
  write_all(fd, b.data, b.len);
  return -1;
}

/* 0 and the head (plus whatever followed it) in *in; -1 to hang up silently;
 * an HTTP status to answer with. */
static int read_head(struct stream_server *s, int fd, struct buf *in, size_t *head_len)
{
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    int64_t left = (int64_t)s->cfg.header_timeout_ms - spent;
    if (left <= 0)
      return -1;
    struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
    if (poll(p, 2, (int)left) < 0 && errno != EINTR)
      return -1;
    if (p[1].revents)
      return -1;
    if (!p[0].revents)
      continue;
    buf_reserve(in, 4096);
    ssize_t n = read(fd, in->data + in->len, 4096);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    in->len += (size_t)n;
    if ((*head_len = http_head_len(in->data, in->len)))
      return *head_len > HTTP_MAX_HEAD ? 431 : 0;
    if (in->len > HTTP_MAX_HEAD)
      return 431;
  }
}

/* "/exec/<token>" -> STREAM_EXEC and the token; -1 for any other path. */
static int route(const char *path, enum stream_kind *kind, const char **tok)
{
  static const struct {
    const char *prefix;
    enum stream_kind kind;
  } routes[] = {{"/exec/", STREAM_EXEC}, {"/attach/", STREAM_ATTACH}, {"/portforward/", STREAM_PORT_FORWARD}};
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    size_t n = strlen(routes[i].prefix);
    if (strncmp(path, routes[i].prefix, n) == 0 && path[n] && !strchr(path + n, '/')) {
      *kind = routes[i].kind;
      *tok = path + n;
      return 0;
    }
  }
  return -1;
}

static int send_101(struct sconn *c, const char *head)
{
  err_t *e = NULL;
  struct iovec iov = {(void *)head, strlen(head)};
  if (sconn_send(c, &iov, 1, &e) == 0)
    return 0;
  err_free(&e);
  return -1;
}

static int protocol_version(const char *p)
{
  if (strncmp(p, "v", 1) == 0 && p[1] >= '2' && p[1] <= '5' && p[2] == '.')
    return p[1] - '0';
  return 1;
}

static int spdy_upgrade(struct sconn *c, const struct http_req *rq)
{
  const char *const *list = c->kind == STREAM_PORT_FORWARD ? pf_spdy : rc_spdy;
  bool offered;
  const char *proto = http_req_negotiate(rq, "X-Stream-Protocol-Version", list, &offered);
  if (!offered)
    return respond(c->fd, 400, NULL, "unable to upgrade: X-Stream-Protocol-Version is required\n");
  if (!proto) {
    cleanup_buf struct buf extra = BUF_INIT;
    for (const char *const *p = list; *p; p++)
      buf_printf(&extra, "X-Accepted-Stream-Protocol-Versions: %s\r\n", *p);
    return respond(c->fd, 403, extra.data, "unable to upgrade: unable to negotiate protocol\n");
  }
  if (!http_req_has_token(rq, "Connection", "upgrade") || !http_req_has_token(rq, "Upgrade", "SPDY/3.1"))
    return respond(c->fd, 400, NULL, "unable to upgrade: missing upgrade headers in request\n");
  c->version = c->kind == STREAM_PORT_FORWARD ? 4 : protocol_version(proto);
  err_t *e = NULL;
  if (stream_spdy_attach(c, &e) < 0) {
    respond(c->fd, 400, NULL, e->msg);
    err_free(&e);
    return -1;
  }
  cleanup_free char *head = xasprintf("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                      "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n", proto);
  return send_101(c, head);
}

static bool ws_key_ok(const char *key)
{
  struct buf raw = BUF_INIT;
  bool ok = key && stream_b64_decode(&raw, key, strlen(key), false) == 0 && raw.len == 16;
  buf_free(&raw);
  return ok;
}

/* client-go's tunneling dialer: the SPDY protocols, each behind this prefix */
static const char *const pf_tunnel[] = {"SPDY/3.1+portforward.k8s.io", NULL};
static const char *const rc_tunnel[] = {"SPDY/3.1+v4.channel.k8s.io", "SPDY/3.1+v3.channel.k8s.io",
                                        "SPDY/3.1+v2.channel.k8s.io", "SPDY/3.1+channel.k8s.io", NULL};

static int tunnel_upgrade(struct sconn *c, const char *key, const char *proto)
{
  c->version = c->kind == STREAM_PORT_FORWARD ? 4 : protocol_version(proto + strlen("SPDY/3.1+"));
  err_t *e = NULL;
  if (stream_spdy_attach(c, &e) < 0) {
    respond(c->fd, 400, NULL, e->msg);
    err_free(&e);
    return -1;
  }
  cleanup_free char *accept = stream_ws_accept_key(key);
  cleanup_free char *head = xasprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                                      "Sec-WebSocket-Protocol: %s\r\n\r\n", accept, proto);
  if (send_101(c, head) < 0)
    return -1;
  c->tunnel = true;   /* from here on every write is a binary message */
  return 0;
}

static int ws_upgrade(struct sconn *c, const struct http_req *rq)
{
  if (strcmp(rq->method, "GET") != 0)
    return respond(c->fd, 405, NULL, "a WebSocket upgrade must be a GET\n");
  const char *version = http_req_get(rq, "Sec-WebSocket-Version");
  if (!version || strcmp(version, "13") != 0)
    return respond(c->fd, 400, "Sec-WebSocket-Version: 13\r\n", "unsupported WebSocket version\n");
  const char *key = http_req_get(rq, "Sec-WebSocket-Key");
  if (!ws_key_ok(key))
    return respond(c->fd, 400, NULL, "missing or malformed Sec-WebSocket-Key\n");
  bool offered;
  const char *proto = http_req_negotiate(rq, "Sec-WebSocket-Protocol",
                                         c->kind == STREAM_PORT_FORWARD ? pf_tunnel : rc_tunnel, &offered);
  if (proto)
    return tunnel_upgrade(c, key, proto);
  proto = http_req_negotiate(rq, "Sec-WebSocket-Protocol",
                             c->kind == STREAM_PORT_FORWARD ? pf_ws : rc_ws, &offered);
  if (offered && !proto)
    return respond(c->fd, 403, NULL, "requested protocol(s) are not supported\n");
  c->version = proto ? protocol_version(proto) : 1;
  err_t *e = NULL;
  if (stream_ws_attach(c, proto && strstr(proto, "base64"), c->version == 5, &e) < 0) {
    respond(c->fd, 400, NULL, e->msg);
    err_free(&e);
    return -1;
  }
  cleanup_free char *accept = stream_ws_accept_key(key);
  cleanup_free char *sub = proto ? xasprintf("Sec-WebSocket-Protocol: %s\r\n", proto) : xstrdup("");
  cleanup_free char *head = xasprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept, sub);
  return send_101(c, head);
}

static bool is_websocket(const struct http_req *rq)
{
  const char *up = http_req_get(rq, "Upgrade");
  return up && strcasecmp(up, "websocket") == 0 && http_req_has_token(rq, "Connection", "upgrade");
}

/* Answers a request that gets no connection (status 0: none) and hangs up. */
static struct sconn *refuse(struct stream_server *s, int fd, int status, const char *extra,
                            const char *body)
{
  if (status)
    respond(fd, status, extra, body);
  drain(s, fd);
  close(fd);
  return NULL;
}

/* Everything up to the 101. NULL when the request was answered otherwise. */
static struct sconn *upgrade(struct stream_server *s, int fd)
{
  cleanup_buf struct buf in = BUF_INIT;
  size_t hl = 0;
  int st = read_head(s, fd, &in, &hl);
  if (st)
    return refuse(s, fd, st > 0 ? st : 0, NULL, "request head too large\n");
  cleanup_free char *head = xstrndup(in.data, hl);
  struct http_req rq;
  enum stream_kind kind;
  const char *tok;
  if (http_req_parse(head, hl, &rq) < 0)
    return refuse(s, fd, 400, NULL, "malformed HTTP request\n");
  if (route(rq.path, &kind, &tok) < 0)
    return refuse(s, fd, 404, NULL, "404 page not found\n");
  if (strcmp(rq.method, "GET") != 0 && strcmp(rq.method, "POST") != 0)
    return refuse(s, fd, 405, "Allow: GET, POST\r\n", "405: Method Not Allowed\n");
  struct stream_token_req r = {0};
  if (stream_tokens_take(s->tokens, stream_srv_clock(s), tok, &r) < 0 || r.kind != kind) {
    stream_token_req_release(&r);
    return refuse(s, fd, 404, NULL, "404 page not found\n");
  }
  struct sconn *c = stream_srv_conn_new(s, fd, &r);
  buf_append(&c->pending, in.data + hl, in.len - hl);
  if ((is_websocket(&rq) ? ws_upgrade(c, &rq) : spdy_upgrade(c, &rq)) < 0) {
    drain(s, fd);
    sconn_unref(c);   /* closes fd */
    return NULL;
  }
  return c;
}

struct accepted {
  struct stream_server *s;
  int fd;
};

static void conn_main(void *arg)
{
  struct accepted a = *(struct accepted *)arg;
  free(arg);
  struct sconn *c = upgrade(a.s, a.fd);
  pthread_mutex_lock(&a.s->mu);
  a.s->handshaking--;
  pthread_mutex_unlock(&a.s->mu);
  if (!c)
    return;
  c->ops->serve(c);
  if (c->tunnel)
    stream_tunnel_close(c, 1000);
  sconn_closed(c);
  shutdown(c->fd, SHUT_RDWR);
  sconn_unref(c);
}

void stream_srv_accepted(struct stream_server *s, int fd)
{
  pthread_mutex_lock(&s->tmu);
  unsigned live = s->live;
  pthread_mutex_unlock(&s->tmu);
  pthread_mutex_lock(&s->mu);
  bool room = !s->stopping && s->handshaking < stream_srv_limit_handshaking() &&
              live < stream_srv_limit_conns();
  if (room)
    s->handshaking++;
  pthread_mutex_unlock(&s->mu);
  /* small frames (SYN_REPLY, a status, a prompt) go out at once: with Nagle each one
   * after the first would wait for the client's delayed ACK (40 ms), as kubelet's and
   * containerd's Go sockets never do */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  /* a stuck client must not hold a writer forever (the idle timeout, at most) */
  struct timeval tv = {.tv_sec = s->cfg.idle_timeout_ms / 1000, .tv_usec = s->cfg.idle_timeout_ms % 1000 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct accepted *a = xmalloc(sizeof(*a));
  *a = (struct accepted){s, fd};
  if (room && stream_srv_thread(s, IO_STACK, conn_main, a) == 0)
    return;
  if (room) {
    pthread_mutex_lock(&s->mu);
    s->handshaking--;
    pthread_mutex_unlock(&s->mu);
  }
  free(a);
  log_warn("streaming: too many connections, refusing one", NULL);
  close(fd);
}
