/* The streaming server over WebSocket (the channel.k8s.io family), driven by a
 * minimal client over loopback. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "stream_client.h"

#define WAIT 5000

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

static struct wsc *open_ws(const char *url, const char *protocols, const char *want)
{
  int status;
  cleanup_free char *chosen = NULL;
  struct wsc *w = wsc_open(url, protocols, &status, &chosen);
  cr_assert_eq(status, 101);
  cr_assert_not_null(w, "the accept key is right");
  if (want)
    cr_assert_str_eq(chosen, want);
  return w;
}

/* Reads data messages until Close, appending each channel's bytes to outs[ch]. */
static int read_until_close(struct wsc *w, struct buf *outs, size_t n, bool base64, int *close_code)
{
  for (;;) {
    int op;
    bool fin;
    struct buf p = BUF_INIT;
    if (wsc_read(w, &op, &fin, &p, WAIT) <= 0) {
      buf_free(&p);
      return -1;
    }
    if (op == OP_CLOSE) {
      *close_code = p.len >= 2 ? ((uint8_t)p.data[0] << 8 | (uint8_t)p.data[1]) : 0;
      buf_free(&p);
      return 0;
    }
    cr_assert(fin, "the server does not fragment");
    cr_assert_eq(op, base64 ? OP_TEXT : OP_BINARY);
    cr_assert_geq(p.len, 1u);
    unsigned ch = base64 ? (unsigned)(p.data[0] - '0') : (uint8_t)p.data[0];
    cr_assert_lt(ch, n);
    buf_append(&outs[ch], p.data + 1, p.len - 1);
    buf_free(&p);
  }
}

static void free_bufs(struct buf *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    buf_free(&b[i]);
}

Test(stream_ws, v4_exec_opens_with_an_empty_message_and_echoes_until_the_client_leaves)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, true, false, echo_req_new(0));
  struct wsc *w = open_ws(url, "v4.channel.k8s.io", "v4.channel.k8s.io");
  int op;
  bool fin;
  struct buf p = BUF_INIT;
  cr_assert_eq(wsc_read(w, &op, &fin, &p, WAIT), 1);
  cr_assert(op == OP_BINARY && p.len == 1 && p.data[0] == 1, "an empty message on stdout opens");
  buf_reset(&p);
  wsc_send_chan(w, 0, "hello", 5);
  cr_assert_eq(wsc_read(w, &op, &fin, &p, WAIT), 1);
  cr_assert(p.len == 6 && p.data[0] == 1 && memcmp(p.data + 1, "hello", 5) == 0);
  buf_free(&p);
  wsc_close(w);   /* v4 has no way to close stdin alone */
  cr_assert_eq(echo_wait(&echo.stdin_errors, 1, WAIT), 1);
  cr_assert_eq(echo_wait(&echo.closed_cbs, 1, WAIT), 1);
  cr_assert_eq(echo_wait(&echo.sessions_done, 1, WAIT), 1);
  stream_server_free(s);
}

Test(stream_ws, v5_close_signal_ends_stdin_and_status_arrives_before_close)
{
  struct stream_server *s = test_server(NULL);
  struct echo_req *r = echo_req_new(3);
  r->stderr_note = true;
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, true, false, r);
  struct wsc *w = open_ws(url, "v5.channel.k8s.io, v4.channel.k8s.io", "v5.channel.k8s.io");
  wsc_send_chan(w, 0, "hello ", 6);
  wsc_send_chan(w, 0, "world", 5);
  uint8_t close_stdin[2] = {255, 0};
  wsc_send(w, OP_BINARY, true, close_stdin, 2);
  struct buf outs[5] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  int code = 0;
  cr_assert_eq(read_until_close(w, outs, 5, false, &code), 0);
  cr_assert_eq(code, 1000);
  cr_assert_str_eq(outs[1].data, "hello world");
  cr_assert_str_eq(outs[2].data, "note\n");
  cr_assert_str_eq(outs[3].data,
                   "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit "
                   "code: exit status 3\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":"
                   "\"ExitCode\",\"message\":\"3\"}]}}");
  free_bufs(outs, 5);
  wsc_close(w);
  stream_server_free(s);
}

Test(stream_ws, base64_protocol_uses_text_frames_and_ascii_channels)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, echo_req_new(0));
  struct wsc *w = open_ws(url, "base64.channel.k8s.io", "base64.channel.k8s.io");
  wsc_send(w, OP_TEXT, true, "0aGVsbG8=", 9);   /* "hello" on stdin */
  wsc_send(w, OP_TEXT, true, "0!!!", 4);        /* not base64: dropped */
  struct buf outs[5] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  int op;
  bool fin;
  struct buf p = BUF_INIT;
  cr_assert_eq(wsc_read(w, &op, &fin, &p, WAIT), 1);
  cr_assert(op == OP_TEXT && p.len == 1 && p.data[0] == '1', "the opening message");
  buf_reset(&p);
  cr_assert_eq(wsc_read(w, &op, &fin, &p, WAIT), 1);
  cr_assert_str_eq(p.data, "1aGVsbG8=");
  buf_free(&p);
  free_bufs(outs, 5);
  wsc_close(w);
  stream_server_free(s);
}

Test(stream_ws, fragments_pings_and_resizes)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, true, echo_req_new(0));
  struct wsc *w = open_ws(url, "v5.channel.k8s.io", NULL);
  const char *rs = "\x04{\"Width\":100,\"Height\":50}";
  wsc_send(w, OP_BINARY, true, rs, strlen(rs));
  cr_assert_eq(echo_wait(&echo.n_sizes, 1, WAIT), 1);
  cr_assert_eq(echo.sizes[0][0], 100);
  cr_assert_eq(echo.sizes[0][1], 50);
  /* one stdin message in three fragments with a ping in the middle */
  wsc_send(w, OP_BINARY, false, "\0fr", 3);
  wsc_send(w, OP_PING, true, "pp", 2);
  wsc_send(w, OP_CONT, false, "ag", 2);
  wsc_send(w, OP_CONT, true, "ment", 4);
  uint8_t close_stdin[2] = {255, 0};
  wsc_send(w, OP_BINARY, true, close_stdin, 2);
  bool pong = false;
  struct buf out = BUF_INIT;
  for (;;) {
    int op;
    bool fin;
    struct buf p = BUF_INIT;
    cr_assert_eq(wsc_read(w, &op, &fin, &p, WAIT), 1);
    if (op == OP_PONG)
      pong = p.len == 2 && memcmp(p.data, "pp", 2) == 0;
    else if (op == OP_BINARY && p.data[0] == 1)
      buf_append(&out, p.data + 1, p.len - 1);
    bool close = op == OP_CLOSE;
    buf_free(&p);
    if (close)
      break;
  }
  cr_assert(pong, "the ping was answered");
  cr_assert_str_eq(out.data, "fragment");
  buf_free(&out);
  wsc_close(w);
  stream_server_free(s);
}

Test(stream_ws, port_forward_opens_each_channel_with_its_port)
{
  struct stream_server *s = test_server(NULL);
  struct stream_opts o = {.ports = (const int32_t[]){8080, 666}, .n_ports = 2};
  cleanup_free char *url = NULL;
  err_t *e = NULL;
  cr_assert_eq(stream_token_new(s, STREAM_PORT_FORWARD, &o, NULL, NULL, &url, &e), 0);
  struct wsc *w = open_ws(url, "v4.channel.k8s.io", "v4.channel.k8s.io");
  wsc_send_chan(w, 0, "ping-pong", 9);
  struct buf outs[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  int opened[4] = {0};
  for (int got = 0; got < 5;) {   /* 4 openings, the echo; port 666's error comes too */
    int op;
    bool fin;
    struct buf p = BUF_INIT;
    cr_assert_eq(wsc_read(w, &op, &fin, &p, WAIT), 1);
    cr_assert_eq(op, OP_BINARY);
    uint8_t ch = (uint8_t)p.data[0];
    cr_assert_lt(ch, 4);
    if (!opened[ch]++) {
      cr_assert_eq(p.len, 3u, "the first message is the port");
      uint16_t port = (uint16_t)((uint8_t)p.data[1] | (uint8_t)p.data[2] << 8);
      cr_assert_eq(port, ch < 2 ? 8080 : 666);
    } else {
      buf_append(&outs[ch], p.data + 1, p.len - 1);
    }
    got++;
    buf_free(&p);
    if (got == 5 && !(outs[0].len && outs[3].len))
      got--;   /* wait for both the echo and the error */
  }
  cr_assert_str_eq(outs[0].data, "ping-pong");
  cr_assert_str_eq(outs[3].data, "error forwarding port 666: nothing listens");
  free_bufs(outs, 4);
  wsc_close(w);
  stream_server_free(s);
}

Test(stream_ws, protocol_errors_close_the_connection_and_the_server_goes_on)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  struct wsc *w = open_ws(url, "v4.channel.k8s.io", NULL);
  uint8_t unmasked[3] = {0x82, 0x01, 0x00};
  send(w->fd, unmasked, 3, MSG_NOSIGNAL);
  int code = 0;
  struct buf outs[5] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  cr_assert_eq(read_until_close(w, outs, 5, false, &code), 0);
  cr_assert_eq(code, 1002);
  cr_assert(tc_closed_within(w->fd, 3000));
  wsc_close(w);
  free_bufs(outs, 5);

  cleanup_free char *url2 = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  w = open_ws(url2, "v4.channel.k8s.io", NULL);
  wsc_send(w, OP_TEXT, true, "\xff\xfe", 2);   /* not UTF-8 */
  struct buf outs2[5] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  cr_assert_eq(read_until_close(w, outs2, 5, false, &code), 0);
  cr_assert_eq(code, 1007);
  wsc_close(w);
  free_bufs(outs2, 5);

  cleanup_free char *url3 = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  w = open_ws(url3, "v5.channel.k8s.io", NULL);
  uint8_t close_stdin[2] = {255, 0};
  wsc_send(w, OP_BINARY, true, close_stdin, 2);
  struct buf outs3[5] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  cr_assert_eq(read_until_close(w, outs3, 5, false, &code), 0, "the server still serves");
  cr_assert_str_eq(outs3[3].data, "{\"metadata\":{},\"status\":\"Success\"}");
  wsc_close(w);
  free_bufs(outs3, 5);
  stream_server_free(s);
}

Test(stream_ws, bad_handshakes_are_refused)
{
  struct stream_server *s = test_server(NULL);
  struct {
    const char *headers;
    int status;
  } cases[] = {
    {"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 400},
    {"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", 400},
    {"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v9.channel.k8s.io\r\n", 403},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
    int fd = tc_connect(url);
    struct buf head = BUF_INIT, rest = BUF_INIT;
    cr_assert_eq(tc_request(fd, "GET", tc_path(url), cases[i].headers, &head, &rest), cases[i].status,
                 "case %zu", i);
    close(fd);
    buf_free(&head);
    buf_free(&rest);
  }
  stream_server_free(s);
}
