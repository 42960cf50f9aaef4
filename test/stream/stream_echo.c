/* stream_echo - the streaming server with an echo back end, for trying real clients
 * (kubectl/crictl through a fake CRI, curl, Python websockets) by hand. Not built
 * by make; after `make`:
 *
 *   cc -std=c11 -D_GNU_SOURCE -I. -include base/banned.h -o build/stream-echo \
 *     test/stream/stream_echo.c build/lib/libcri.a build/lib/libbase.a -lz -lyajl -pthread
 *   build/stream-echo [host:port]
 *
 * Then one request per line on stdin, each answered with its URL on stdout:
 *   exec|attach STDIN STDOUT STDERR TTY EXIT   (0/1 flags; EXIT: the exit code to report)
 *   portforward [PORT...]
 * The exec/attach back end echoes stdin to stdout, writes "stderr says hi" to
 * stderr, logs terminal sizes, and exits with EXIT once stdin ends (at once
 * without stdin). Port-forward echoes each connection's bytes back; port 666
 * fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cri/stream_server.h"

struct req {
  int exit_code;
};

static void on_resize(void *arg, uint16_t w, uint16_t h)
{
  (void)arg;
  fprintf(stderr, "resize %ux%u\n", w, h);
}

static void session(void *ctx, struct stream_session *s, void *arg)
{
  (void)ctx;
  struct req *r = arg;
  err_t *e = NULL;
  stream_session_set_resize_cb(s, on_resize, NULL);
  stream_session_write(s, STREAM_STDERR, "stderr says hi\n", 15, &e);
  err_free(&e);
  char buf[16384];
  ssize_t n;
  while ((n = stream_session_read_stdin(s, buf, sizeof(buf), &e)) > 0)
    if (stream_session_write(s, STREAM_STDOUT, buf, (size_t)n, &e) < 0)
      break;
  fprintf(stderr, "session ends: %s\n", e ? e->msg : "stdin closed");
  err_free(&e);
  stream_session_finish(s, r->exit_code, NULL);
}

static int forward(void *ctx, struct stream_pipe *p, void *req, err_t **e)
{
  (void)ctx, (void)req;
  fprintf(stderr, "forward port %u\n", stream_pipe_port(p));
  if (stream_pipe_port(p) == 666)
    return err_set(e, ERR_UNAVAILABLE, 0, "error forwarding port 666 to pod test: connection refused");
  char buf[16384];
  ssize_t n;
  while ((n = stream_pipe_read(p, buf, sizeof(buf), e)) > 0)
    if (stream_pipe_write(p, buf, (size_t)n, e) < 0)
      break;
  err_free(e);
  return 0;
}

static const struct stream_handlers handlers = {.exec = session, .attach = session, .port_forward = forward};

static int request(struct stream_server *s, char *line, char **url, err_t **e)
{
  char *save = NULL, *w = strtok_r(line, " \t\n", &save);
  if (!w)
    return err_set(e, ERR_INVALID, 0, "empty line");
  enum stream_kind kind = strcmp(w, "exec") == 0 ? STREAM_EXEC : strcmp(w, "attach") == 0 ? STREAM_ATTACH
                                                                                            : STREAM_PORT_FORWARD;
  if (kind == STREAM_PORT_FORWARD && strcmp(w, "portforward") != 0)
    return err_set(e, ERR_INVALID, 0, "unknown request %s", w);
  int v[6] = {0};
  int32_t ports[16];
  size_t n = 0;
  while ((w = strtok_r(NULL, " \t\n", &save)) && n < 16) {
    if (kind == STREAM_PORT_FORWARD)
      ports[n++] = atoi(w);
    else if (n < 6)
      v[n++] = atoi(w);
  }
  struct stream_opts o = {.in = v[0], .out = v[1], .err = v[2], .tty = v[3]};
  if (kind == STREAM_PORT_FORWARD) {
    o.ports = ports;
    o.n_ports = n;
  }
  struct req *r = xcalloc(1, sizeof(*r));
  r->exit_code = v[4];
  return stream_token_new(s, kind, &o, r, free, url, e);
}

int main(int argc, char **argv)
{
  struct stream_config cfg = {.address = argc > 1 ? argv[1] : NULL};
  struct stream_server *s = NULL;
  err_t *e = NULL;
  if (stream_server_new(&cfg, &handlers, &s, &e) < 0) {
    fprintf(stderr, "stream-echo: %s\n", e->msg);
    return 1;
  }
  fprintf(stderr, "serving on %s\n", stream_server_url(s));
  char line[512];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof(line), stdin)) {
    char *url = NULL;
    if (request(s, line, &url, &e) < 0) {
      printf("error: %s\n", e->msg);
      err_free(&e);
      continue;
    }
    printf("%s\n", url);
    free(url);
  }
  stream_server_free(s);
  return 0;
}
