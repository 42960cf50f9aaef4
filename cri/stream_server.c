/* stream_server.c - the listener, the threads and the per-connection plumbing of
 * the streaming server; the HTTP upgrade itself is in stream_upgrade.c. */
#include "cri/stream_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/stream_int.h"
#include "cri/stream_srv.h"
#include "cri/stream_token.h"

#define MAX_CONNS 1100          /* the token limit, and some */
#define MAX_HANDSHAKING 64      /* connections that have not shown a token yet */
#define LINGER_MS 10000         /* after goodbye, how long the client has to hang up */
#define READ_CHUNK (64 * 1024)
#define READER_MAX_INPUT (SCHAN_IN_CAP + 2 * READ_CHUNK)
#define IO_STACK (256 * 1024)
#define BACKEND_STACK (1024 * 1024)

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t stream_srv_clock(const struct stream_server *s)
{
  return s->cfg.clock_ms ? s->cfg.clock_ms(s->cfg.clock_arg) : mono_ms();
}

/* --- threads -------------------------------------------------------------------------- */

struct thread_arg {
  struct stream_server *srv;
  void (*fn)(void *arg);
  void *arg;
};

static void *thread_main(void *p)
{
  struct thread_arg a = *(struct thread_arg *)p;
  free(p);
  a.fn(a.arg);
  pthread_mutex_lock(&a.srv->tmu);
  a.srv->threads--;
  pthread_cond_broadcast(&a.srv->tcond);
  pthread_mutex_unlock(&a.srv->tmu);
  return NULL;
}

int stream_srv_thread(struct stream_server *s, size_t stack, void (*fn)(void *), void *arg)
{
  struct thread_arg *a = xmalloc(sizeof(*a));
  *a = (struct thread_arg){s, fn, arg};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack);
  pthread_mutex_lock(&s->tmu);
  s->threads++;
  pthread_mutex_unlock(&s->tmu);
  pthread_t t;
  int rc = pthread_create(&t, &attr, thread_main, a);
  pthread_attr_destroy(&attr);
  if (rc == 0)
    return 0;
  free(a);
  pthread_mutex_lock(&s->tmu);
  s->threads--;
  pthread_cond_broadcast(&s->tcond);
  pthread_mutex_unlock(&s->tmu);
  return -1;
}

/* --- connections ----------------------------------------------------------------------- */

int64_t sconn_now(const struct sconn *c) { (void)c; return mono_ms(); }
unsigned sconn_idle_ms(const struct sconn *c) { return c->srv->cfg.idle_timeout_ms; }
unsigned sconn_creation_ms(const struct sconn *c) { return c->srv->cfg.creation_timeout_ms; }

void sconn_wake(struct sconn *c)
{
  uint64_t one = 1;
  if (write(c->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
    log_debug("streaming: cannot wake a reader", NULL);
}

void sconn_kill(struct sconn *c)
{
  pthread_mutex_lock(&c->mu);
  c->dead = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  shutdown(c->fd, SHUT_RDWR);
}

int sconn_send(struct sconn *c, const struct iovec *iov, int n, err_t **e)
{
  if (!c->tunnel)
    return sconn_send_unwrapped(c, iov, n, e);
  if (n > 4)
    abort();
  uint8_t h[10];
  size_t len = 0;
  struct iovec v[5];
  for (int i = 0; i < n; i++) {
    len += iov[i].iov_len;
    v[i + 1] = iov[i];
  }
  v[0] = (struct iovec){h, stream_ws_header(h, WS_BINARY, len)};
  return sconn_send_unwrapped(c, v, n + 1, e);
}

int sconn_send_unwrapped(struct sconn *c, const struct iovec *iov, int n, err_t **e)
{
  struct iovec v[5];
  if (n > 5)
    abort();
  memcpy(v, iov, sizeof(*iov) * (size_t)n);
  struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)n};
  int err = 0;
  pthread_mutex_lock(&c->wmu);
  while (m.msg_iovlen) {
    ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      err = errno;
      break;
    }
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
  pthread_mutex_unlock(&c->wmu);
  if (!err) {
    atomic_store(&c->last_io_ms, mono_ms());
    return 0;
  }
  sconn_kill(c);
  return err_set(e, ERR_CANCELLED, err, "the streaming client went away");
}

struct spawn_arg {
  struct sconn *c;
  void (*fn)(struct sconn *c, void *arg);
  void *arg;
};

static void spawned(void *p)
{
  struct spawn_arg a = *(struct spawn_arg *)p;
  free(p);
  a.fn(a.c, a.arg);
  sconn_unref(a.c);
}

int sconn_spawn(struct sconn *c, void (*fn)(struct sconn *c, void *arg), void *arg)
{
  struct spawn_arg *a = xmalloc(sizeof(*a));
  *a = (struct spawn_arg){c, fn, arg};
  c->refs++;
  if (stream_srv_thread(c->srv, BACKEND_STACK, spawned, a) == 0)
    return 0;
  c->refs--;
  free(a);
  return -1;
}

static void sconn_free(struct sconn *c)
{
  struct stream_server *s = c->srv;
  pthread_mutex_lock(&s->mu);
  for (struct sconn **pp = &s->conns; *pp; pp = &(*pp)->srv_next)
    if (*pp == c) {
      *pp = c->srv_next;
      break;
    }
  pthread_mutex_unlock(&s->mu);
  if (c->ops)
    c->ops->free(c->proto);
  sconn_free_state(c);
  buf_free(&c->pending);
  struct stream_token_req r = {c->kind, c->opts, c->req, c->req_free};
  stream_token_req_release(&r);
  close(c->fd);
  close(c->wake_fd);
  pthread_mutex_destroy(&c->mu);
  pthread_mutex_destroy(&c->wmu);
  pthread_cond_destroy(&c->cond);
  free(c);
  pthread_mutex_lock(&s->tmu);
  s->live--;
  pthread_cond_broadcast(&s->tcond);
  pthread_mutex_unlock(&s->tmu);
}

void sconn_unref(struct sconn *c)
{
  pthread_mutex_lock(&c->mu);
  bool last = --c->refs == 0;
  pthread_mutex_unlock(&c->mu);
  if (last)
    sconn_free(c);
}

struct sconn *stream_srv_conn_new(struct stream_server *s, int fd, struct stream_token_req *r)
{
  struct sconn *c = xcalloc(1, sizeof(*c));
  c->srv = s;
  c->h = &s->h;
  c->fd = fd;
  c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->wake_fd < 0)
    abort();  /* only EMFILE/ENOMEM: no way to serve anyway */
  c->kind = r->kind;
  c->opts = r->opts;
  c->req = r->req;
  c->req_free = r->req_free;
  memset(r, 0, sizeof(*r));
  c->refs = 1;   /* the reader's */
  c->sess.conn = c;
  atomic_store(&c->last_io_ms, mono_ms());
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->wmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_lock(&s->tmu);
  s->live++;
  pthread_mutex_unlock(&s->tmu);
  pthread_mutex_lock(&s->mu);
  c->srv_next = s->conns;
  s->conns = c;
  bool stopping = s->stopping;
  pthread_mutex_unlock(&s->mu);
  if (stopping)
    shutdown(fd, SHUT_RDWR);
  return c;
}

/* --- the reader loop --------------------------------------------------------------------- */

static int64_t min_due(int64_t a, int64_t b) { return a < 0 ? b : b < 0 ? a : a < b ? a : b; }

/* How long poll may wait: the protocol's timer, the idle timeout, the linger. */
static int loop_wait(struct sconn *c, int64_t now, int64_t next, int64_t *linger_until)
{
  pthread_mutex_lock(&c->mu);
  bool finishing = c->finishing, dead = c->dead;
  pthread_mutex_unlock(&c->mu);
  if (dead)
    return -2;
  if (finishing && !*linger_until)
    *linger_until = now + LINGER_MS;
  int64_t idle = atomic_load(&c->last_io_ms) + (int64_t)sconn_idle_ms(c) - now;
  int64_t due = min_due(min_due(next, idle), *linger_until ? *linger_until - now : -1);
  if (due <= 0)
    return -2;
  return due > 60000 ? 60000 : (int)due;
}

void sconn_loop(struct sconn *c, int (*input)(struct sconn *c, uint8_t *p, size_t n, size_t *used),
                int (*tick)(struct sconn *c, int64_t now, int64_t *next_ms))
{
  struct buf raw = c->pending, unwrapped = BUF_INIT;
  memset(&c->pending, 0, sizeof(c->pending));
  /* a tunnel reads WebSocket frames into raw and gives the protocol their payload */
  struct buf *rd = &raw, *in = c->tunnel ? &unwrapped : &raw;
  int64_t linger_until = 0;
  for (;;) {
    size_t used = 0;
    if (c->tunnel && stream_tunnel_unwrap(c, rd, in) < 0)
      break;
    if (in->len && input(c, (uint8_t *)in->data, in->len, &used) < 0)
      break;
    if (used) {
      memmove(in->data, in->data + used, in->len - used);
      in->len -= used;
    }
    int64_t now = mono_ms(), next = -1;
    if (tick(c, now, &next) < 0 || in->len > READER_MAX_INPUT || rd->len > READER_MAX_INPUT)
      break;
    int wait = loop_wait(c, now, next, &linger_until);
    if (wait == -2)
      break;
    struct pollfd p[2] = {{c->fd, POLLIN, 0}, {c->wake_fd, POLLIN, 0}};
    if (poll(p, 2, wait) < 0 && errno != EINTR)
      break;
    uint64_t v;
    if (p[1].revents && read(c->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
      break;
    if (!p[0].revents)
      continue;
    buf_reserve(rd, READ_CHUNK);
    ssize_t n = read(c->fd, rd->data + rd->len, READ_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      break;
    rd->len += (size_t)n;
    atomic_store(&c->last_io_ms, mono_ms());
  }
  buf_free(&raw);
  buf_free(&unwrapped);
}

/* --- the server --------------------------------------------------------------------------- */

static void accept_loop(void *arg)
{
  struct stream_server *s = arg;
  for (;;) {
    struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[1].revents)
      break;
    if (!p[0].revents)
      continue;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE)
        usleep(100 * 1000);   /* out of descriptors: do not spin */
      continue;
    }
    stream_srv_accepted(s, fd);
  }
}

static int parse_address(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char **host,
                         err_t **e)
{
  const char *colon = strrchr(addr, ':');
  char *end = NULL;
  long port = colon && colon[1] ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || !end || *end || port < 0 || port > 65535)
    return err_set(e, ERR_INVALID, 0, "stream address \"%s\": must be host:port", addr);
  cleanup_free char *h = xstrndup(addr, (size_t)(colon - addr));
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  size_t hl = strlen(h);
  if (strcmp(h, "localhost") == 0 || inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
    if (strcmp(h, "localhost") == 0)
      v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof(*v4);
    *host = xstrdup(strcmp(h, "localhost") == 0 ? "127.0.0.1" : h);
    return 0;
  }
  if (hl > 2 && h[0] == '[' && h[hl - 1] == ']') {
    h[hl - 1] = '\0';
    if (inet_pton(AF_INET6, h + 1, &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons((uint16_t)port);
      *len = sizeof(*v6);
      *host = xasprintf("[%s]", h + 1);
      return 0;
    }
  }
  /* crispd is static: no resolver, so the host must be a literal */
  return err_set(e, ERR_INVALID, 0, "stream address \"%s\": host must be an IP address, [IPv6] or localhost",
                 addr);
}

static int listen_on(struct stream_server *s, const char *addr, err_t **e)
{
  struct sockaddr_storage ss;
  socklen_t len;
  cleanup_free char *host = NULL;
  if (parse_address(addr, &ss, &len, &host, e) < 0)
    return -1;
  s->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->listen_fd < 0)
    return err_sys(e, errno, "stream server: socket");
  int one = 1;
  setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s->listen_fd, (struct sockaddr *)&ss, len) < 0)
    return err_sys(e, errno, "stream server: bind %s", addr);
  if (listen(s->listen_fd, 128) < 0)
    return err_sys(e, errno, "stream server: listen on %s", addr);
  len = sizeof(ss);
  if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) < 0)
    return err_sys(e, errno, "stream server: getsockname");
  uint16_t port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
  s->url = xasprintf("http://%s:%u", host, port);
  return 0;
}

static void apply_defaults(struct stream_config *c)
{
  if (!c->address)
    c->address = "127.0.0.1:0";
  if (!c->token_ttl_ms)
    c->token_ttl_ms = 60000;
  if (!c->max_tokens)
    c->max_tokens = 1000;
  if (!c->creation_timeout_ms)
    c->creation_timeout_ms = 30000;
  if (!c->idle_timeout_ms)
    c->idle_timeout_ms = 4u * 3600 * 1000;
  if (!c->header_timeout_ms)
    c->header_timeout_ms = 10000;
}

int stream_server_new(const struct stream_config *cfg, const struct stream_handlers *h,
                      struct stream_server **out, err_t **e)
{
  struct stream_server *s = xcalloc(1, sizeof(*s));
  s->cfg = cfg ? *cfg : (struct stream_config){0};
  apply_defaults(&s->cfg);
  s->h = *h;
  s->listen_fd = s->stop_fd = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->tmu, NULL);
  pthread_cond_init(&s->tcond, NULL);
  s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop_fd < 0) {
    err_sys(e, errno, "stream server: eventfd");
    stream_server_free(s);
    return -1;
  }
  if (listen_on(s, s->cfg.address, e) < 0) {
    stream_server_free(s);
    return -1;
  }
  s->address = xstrdup(s->cfg.address);
  s->cfg.address = s->address;
  s->tokens = stream_tokens_new(s->cfg.max_tokens, s->cfg.token_ttl_ms);
  *out = s;
  return 0;
}

const char *stream_server_url(const struct stream_server *s) { return s->url; }

static int start_accepting(struct stream_server *s, err_t **e)
{
  pthread_mutex_lock(&s->mu);
  bool go = !s->accepting && !s->stopping;
  s->accepting = true;
  pthread_mutex_unlock(&s->mu);
  if (go && stream_srv_thread(s, IO_STACK, accept_loop, s) < 0) {
    pthread_mutex_lock(&s->mu);
    s->accepting = false;
    pthread_mutex_unlock(&s->mu);
    return err_set(e, ERR_RESOURCE, 0, "stream server: cannot start its thread");
  }
  return 0;
}

static int check_opts(enum stream_kind kind, const struct stream_opts *o, err_t **e)
{
  if (kind == STREAM_PORT_FORWARD) {
    for (size_t i = 0; i < o->n_ports; i++)
      if (o->ports[i] < 1 || o->ports[i] > 65535)
        return err_set(e, ERR_INVALID, 0, "port %d is outside 1-65535", o->ports[i]);
    return 0;
  }
  if (o->tty && o->err)
    return err_set(e, ERR_INVALID, 0, "tty and stderr cannot both be true");
  if (!o->in && !o->out && !o->err)
    return err_set(e, ERR_INVALID, 0, "one of stdin, stdout, or stderr must be set");
  return 0;
}

static const char *kind_path(enum stream_kind kind)
{
  switch (kind) {
  case STREAM_EXEC: return "exec";
  case STREAM_ATTACH: return "attach";
  case STREAM_PORT_FORWARD: return "portforward";
  }
  return "?";
}

int stream_token_new(struct stream_server *s, enum stream_kind kind, const struct stream_opts *o,
                     void *req, void (*req_free)(void *), char **url, err_t **e)
{
  struct stream_token_req r = {.kind = kind, .opts = *o, .req = req, .req_free = req_free};
  r.opts.ports = NULL;
  r.opts.n_ports = 0;
  if (kind == STREAM_PORT_FORWARD && o->n_ports) {
    int32_t *ports = xcalloc(o->n_ports, sizeof(*ports));
    memcpy(ports, o->ports, o->n_ports * sizeof(*ports));
    r.opts.ports = ports;
    r.opts.n_ports = o->n_ports;
  }
  if (check_opts(kind, &r.opts, e) < 0 || start_accepting(s, e) < 0) {
    stream_token_req_release(&r);
    return -1;
  }
  char tok[STREAM_TOKEN_CHARS + 1];
  if (stream_tokens_add(s->tokens, stream_srv_clock(s), &r, tok, e) < 0)
    return -1;
  *url = xasprintf("%s/%s/%s", s->url, kind_path(kind), tok);
  return 0;
}

void stream_server_free(struct stream_server *s)
{
  if (!s)
    return;
  /* readers end and back ends see their calls fail. Taking c->mu under s->mu is
   * safe: nothing takes s->mu holding a c->mu, and a connection on the list is
   * not freed before its sconn_free gets s->mu. */
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  for (struct sconn *c = s->conns; c; c = c->srv_next)
    sconn_kill(c);
  pthread_mutex_unlock(&s->mu);
  uint64_t one = 1;
  if (s->stop_fd >= 0 && write(s->stop_fd, &one, sizeof(one)) < 0)
    log_warn("stream server: cannot signal its threads", NULL);
  pthread_mutex_lock(&s->tmu);
  while (s->threads || s->live)
    pthread_cond_wait(&s->tcond, &s->tmu);
  pthread_mutex_unlock(&s->tmu);
  stream_tokens_free(s->tokens);
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  if (s->stop_fd >= 0)
    close(s->stop_fd);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->tmu);
  pthread_cond_destroy(&s->tcond);
  free(s->url);
  free(s->address);
  free(s);
}

unsigned stream_srv_limit_conns(void) { return MAX_CONNS; }
unsigned stream_srv_limit_handshaking(void) { return MAX_HANDSHAKING; }
