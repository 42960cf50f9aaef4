/* echo_httpd.c - an HTTP/1.0 POST echo server for the port-forward load tests
 * (test_streaming_load.py builds it static and bind-mounts it into a pod).
 *
 *   echo_httpd PORT     answers every request with "HTTP/1.0 200 OK", the request's
 *                       Content-Length and its body, then closes the connection
 *
 * Why not busybox httpd: it listens with a backlog of 9, so 50 connections opened at
 * once overflow its accept queue; the kernel then drops handshakes and, with SYN
 * cookies, can reset connections whose state it dropped. That is the pod's server
 * failing, not the port-forward under test. This one listens with a deep backlog and
 * forks one child per connection. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192

static int write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Content-Length of a request head, or -1 when it has none. */
static long content_length(const char *head)
{
  for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
    if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
      return strtol(l + 17, NULL, 10);
  }
  return -1;
}

static int serve(int fd)
{
  char buf[65536];
  size_t have = 0;
  char *end = NULL;
  while (!end) {
    if (have == HEAD_MAX)
      return 1;
    ssize_t r = read(fd, buf + have, HEAD_MAX - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 1;
    have += (size_t)r;
    buf[have] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  long left = content_length(buf);
  if (left < 0)
    return write_all(fd, "HTTP/1.0 411 Length Required\r\n\r\n", 33) < 0;
  char head[128];
  int n = snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\nContent-Length: %ld\r\n\r\n", left);
  if (write_all(fd, head, (size_t)n) < 0)
    return 1;
  size_t body = have - (size_t)(end + 4 - buf);
  if (body > (size_t)left)
    body = (size_t)left;
  if (write_all(fd, end + 4, body) < 0)
    return 1;
  left -= (long)body;
  while (left > 0) {
    ssize_t r = read(fd, buf, sizeof(buf) < (size_t)left ? sizeof(buf) : (size_t)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || write_all(fd, buf, (size_t)r) < 0)
      return 1;
    left -= r;
  }
  shutdown(fd, SHUT_WR);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: echo_httpd PORT\n");
    return 2;
  }
  signal(SIGCHLD, SIG_IGN);   /* children are reaped by the kernel */
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                          .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 512) < 0) {
    perror("echo_httpd: listen");
    return 1;
  }
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      perror("echo_httpd: accept");
      return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(ls);
      _exit(serve(c));
    }
    close(c);
  }
}
