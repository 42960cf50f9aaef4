/* libFuzzer target: the streaming server end to end, as a client reaches it. One real
 * server (cri/stream_*.c) runs in this process with an echo back end; each input is one
 * connection to it over loopback. The first byte picks the protocol: WebSocket exec
 * (v5, v4, base64) or port-forward, SPDY/3.1 exec or port-forward (a valid upgrade
 * request with a fresh token is sent first, then the rest of the input as the client's
 * frames), or the rest of the input as the whole HTTP request. The client then closes
 * its side and reads until the server closes. Whatever the bytes, the server must not
 * crash, leak or hang (the connection ends within the timeouts set below). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "cri/stream_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct stream_server *srv;
static struct sockaddr_in addr;

static void session(void *ctx, struct stream_session *s, void *req)
{
  (void)ctx, (void)req;
  err_t *e = NULL;
  char buf[4096];
  ssize_t n;
  while ((n = stream_session_read_stdin(s, buf, sizeof(buf), &e)) > 0)
    if (stream_session_write(s, STREAM_STDOUT, buf, (size_t)n, &e) < 0)
      break;
  err_free(&e);
  stream_session_finish(s, 3, NULL);
}

static int forward(void *ctx, struct stream_pipe *p, void *req, err_t **e)
{
  (void)ctx, (void)req;
  char buf[4096];
  ssize_t n;
  while ((n = stream_pipe_read(p, buf, sizeof(buf), e)) > 0)
    if (stream_pipe_write(p, buf, (size_t)n, e) < 0)
      break;
  err_free(e);
  return 0;
}

static const struct stream_handlers handlers = {.exec = session, .attach = session,
                                                .port_forward = forward};

static void start(void)
{
  struct stream_config cfg = {.address = "127.0.0.1:0", .creation_timeout_ms = 300,
                              .idle_timeout_ms = 300, .header_timeout_ms = 300};
  err_t *e = NULL;
  if (stream_server_new(&cfg, &handlers, &srv, &e) < 0)
    abort();
  const char *url = stream_server_url(srv);   /* http://127.0.0.1:PORT */
  const char *colon = strrchr(url, ':');
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(colon + 1));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static const char *const protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                     "v4.base64.channel.k8s.io", "v4.channel.k8s.io"};

/* The upgrade request for mode (0-3 WebSocket, 4-5 SPDY); NULL for mode 6 (raw). */
static char *upgrade(unsigned mode)
{
  if (mode >= 6)
    return NULL;
  bool pf = mode == 3 || mode == 5;
  int32_t ports[] = {80, 81};
  struct stream_opts o = {.in = true, .out = true, .err = !pf && mode != 1, .tty = mode == 1,
                          .ports = pf ? ports : NULL, .n_ports = pf ? 2 : 0};
  char *url = NULL;
  err_t *e = NULL;
  if (stream_token_new(srv, pf ? STREAM_PORT_FORWARD : STREAM_EXEC, &o, NULL, NULL, &url, &e) < 0)
    abort();
  const char *path = strchr(url + strlen("http://"), '/');
  char *head;
  if (mode < 4)
    head = xasprintf("GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n\r\n", path, protos[mode]);
  else
    head = xasprintf("POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     "X-Stream-Protocol-Version: %s\r\n\r\n", path,
                     pf ? "portforward.k8s.io" : "v4.channel.k8s.io");
  free(url);
  return head;
}

static void send_all(int fd, const void *p, size_t n)
{
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p = (const char *)p + w;
    n -= (size_t)w;
  }
}

/* Reads until the server closes; a server that keeps the connection past its own
 * timeouts is a hang. */
static void drain(int fd)
{
  char buf[65536];
  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, 5000);
    if (r == 0) {
      fprintf(stderr, "the server kept the connection open for 5 s\n");
      abort();
    }
    if (r < 0 || recv(fd, buf, sizeof(buf), 0) <= 0)
      return;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!srv)
    start();
  if (size < 1)
    return 0;
  char *head = upgrade(data[0] % 7);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    abort();
  if (head)
    send_all(fd, head, strlen(head));
  send_all(fd, data + 1, size - 1);
  shutdown(fd, SHUT_WR);
  drain(fd);
  close(fd);
  free(head);
  return 0;
}
