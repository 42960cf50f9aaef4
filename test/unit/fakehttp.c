#include "fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

struct fakehttp {
  int lfd;
  int stop[2];
  int port;
  pthread_t th;
  fake_handler h;
  void *arg;
};

static int listen_local(int *port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0)
    abort();
  *port = ntohs(a.sin_port);
  return fd;
}

int fakehttp_dead_port(void)
{
  int port;
  int fd = listen_local(&port);
  close(fd);
  return port;
}

char *fake_req_header(const struct fake_req *rq, const char *name)
{
  size_t n = strlen(name);
  for (const char *l = rq->headers; l && *l;) {
    const char *end = strstr(l, "\r\n");
    size_t len = end ? (size_t)(end - l) : strlen(l);
    if (len > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
      const char *v = l + n + 1;
      while (*v == ' ')
        v++;
      return xstrndup(v, len - (size_t)(v - l));
    }
    l += len + (end ? 2 : 0);
  }
  return NULL;
}

/* Waits up to ms for the stop pipe; true if stopping. */
static int wait_stop(struct fakehttp *s, int fd, int ms)
{
  struct pollfd p[2] = {{s->stop[0], POLLIN, 0}, {fd, POLLIN, 0}};
  return poll(p, 2, ms) > 0 && (p[0].revents & POLLIN);
}

static int read_request(struct fakehttp *s, int fd, struct buf *in, struct fake_req *rq)
{
  char *hdr_end = NULL;
  while (!(hdr_end = in->data ? strstr(in->data, "\r\n\r\n") : NULL)) {
    char tmp[4096];
    if (wait_stop(s, fd, 5000))
      return -1;
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0)
      return -1;
    buf_append(in, tmp, (size_t)n);
    if (in->data[0] == 0x16)
      return -1; /* a TLS handshake: this server only speaks plain HTTP */
  }
  size_t head_len = (size_t)(hdr_end - in->data) + 4;
  memset(rq, 0, sizeof(*rq));
  if (sscanf(in->data, "%15s %1023s", rq->method, rq->path) != 2)
    return -1;
  const char *first_nl = strstr(in->data, "\r\n");
  rq->headers = xstrndup(first_nl + 2, head_len - (size_t)(first_nl + 2 - in->data));
  cleanup_free char *cl = fake_req_header(rq, "Content-Length");
  size_t want = cl ? strtoul(cl, NULL, 10) : 0;
  while (in->len - head_len < want) {
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0)
      return -1;
    buf_append(in, tmp, (size_t)n);
  }
  rq->body = xstrndup(in->data + head_len, want);
  rq->body_len = want;
  return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

static void respond(struct fakehttp *s, int fd, struct fake_resp *rs)
{
  if (rs->action == FAKE_DROP)
    return;
  struct buf out = BUF_INIT;
  buf_printf(&out, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
             rs->status ? rs->status : 200, rs->body.len, buf_str(&rs->headers));
  size_t body = rs->action == FAKE_RESPOND ? rs->body.len : rs->cut_at;
  if (body)
    buf_append(&out, rs->body.data, body);
  write_all(fd, out.data, out.len);
  buf_free(&out);
  if (rs->action == FAKE_STALL)
    wait_stop(s, -1, rs->stall_ms);
}

static void serve_one(struct fakehttp *s, int fd)
{
  struct buf in = BUF_INIT;
  struct fake_req rq;
  if (read_request(s, fd, &in, &rq) == 0) {
    struct fake_resp rs = {0};
    s->h(s->arg, &rq, &rs);
    respond(s, fd, &rs);
    buf_free(&rs.headers);
    buf_free(&rs.body);
    free(rq.headers);
    free(rq.body);
  }
  buf_free(&in);
  shutdown(fd, SHUT_RDWR);
  close(fd);
}

static void *serve(void *arg)
{
  struct fakehttp *s = arg;
  for (;;) {
    struct pollfd p[2] = {{s->stop[0], POLLIN, 0}, {s->lfd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[0].revents & POLLIN)
      break;
    if (!(p[1].revents & POLLIN))
      continue;
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
      serve_one(s, fd);
  }
  return NULL;
}

struct fakehttp *fakehttp_start(fake_handler h, void *arg)
{
  struct fakehttp *s = xcalloc(1, sizeof(*s));
  s->h = h;
  s->arg = arg;
  s->lfd = listen_local(&s->port);
  if (pipe2(s->stop, O_CLOEXEC) < 0 || pthread_create(&s->th, NULL, serve, s) != 0)
    abort();
  return s;
}

int fakehttp_port(const struct fakehttp *s) { return s->port; }

void fakehttp_stop(struct fakehttp *s)
{
  if (!s)
    return;
  write_all(s->stop[1], "x", 1);
  pthread_join(s->th, NULL);
  close(s->lfd);
  close(s->stop[0]);
  close(s->stop[1]);
  free(s);
}

char *fakehttp_base64(const char *s)
{
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  struct buf b = BUF_INIT;
  size_t n = strlen(s);
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    buf_putc(&b, tbl[(v >> 18) & 63]);
    buf_putc(&b, tbl[(v >> 12) & 63]);
    buf_putc(&b, i + 1 < n ? tbl[(v >> 6) & 63] : '=');
    buf_putc(&b, i + 2 < n ? tbl[v & 63] : '=');
  }
  return buf_steal(&b);
}
