/* The streaming server over SPDY/3.1, driven by a minimal client over loopback. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cri/stream_spdy_frame.h"
#include "stream_client.h"

#define WAIT 5000

static const char *const err_hdr[] = {"streamtype", "error", NULL};
static const char *const in_hdr[] = {"streamtype", "stdin", NULL};
static const char *const out_hdr[] = {"streamtype", "stdout", NULL};
static const char *const errout_hdr[] = {"streamtype", "stderr", NULL};
static const char *const resize_hdr[] = {"streamtype", "resize", NULL};

static struct spdyc *open_v4(const char *url)
{
  int status;
  cleanup_free char *chosen = NULL;
  struct spdyc *c = spdyc_open(url, "v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io",
                               &status, &chosen);
  cr_assert_eq(status, 101);
  cr_assert_str_eq(chosen, "v4.channel.k8s.io");
  return c;
}

Test(stream_spdy, exec_echoes_stdin_and_reports_exit_code_3_as_v4_status)
{
  struct stream_server *s = test_server(NULL);
  struct echo_req *r = echo_req_new(3);
  r->stderr_note = true;
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, true, false, r);
  struct spdyc *c = open_v4(url);
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, in_hdr);
  spdyc_syn(c, 5, out_hdr);
  spdyc_syn(c, 7, errout_hdr);
  spdyc_data(c, 3, "hello ", 6, false);
  spdyc_data(c, 3, "world", 5, true);
  uint32_t ids[] = {1, 5, 7};
  struct buf out[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 3, WAIT, &st), 0, "every stream ends with FIN");
  cr_assert_eq(st.replies, 4, "each SYN_STREAM got its SYN_REPLY");
  cr_assert_str_eq(out[1].data, "hello world");
  cr_assert_str_eq(out[2].data, "note\n");
  cr_assert_str_eq(out[0].data,
                   "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit "
                   "code: exit status 3\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":"
                   "\"ExitCode\",\"message\":\"3\"}]}}");
  struct spdyc_frame f;
  cr_assert_eq(spdyc_read(c, &f, WAIT), 1);
  cr_assert(f.control && f.type == SPDY_GOAWAY, "the server says goodbye");
  spdyc_frame_free(&f);
  cr_assert_eq(echo_wait(&echo.sessions_done, 1, WAIT), 1);
  for (int i = 0; i < 3; i++)
    buf_free(&out[i]);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_spdy, success_is_a_status_without_message_and_v2_reports_text)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, echo_req_new(0));
  struct spdyc *c = open_v4(url);
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, out_hdr);
  uint32_t ids[] = {1, 3};
  struct buf out[2] = {BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 2, WAIT, &st), 0);
  cr_assert_str_eq(out[0].data, "{\"metadata\":{},\"status\":\"Success\"}");
  buf_free(&out[0]);
  buf_free(&out[1]);
  spdyc_close(c);

  cleanup_free char *url2 = test_token(s, STREAM_EXEC, false, true, false, false, echo_req_new(7));
  int status;
  cleanup_free char *chosen = NULL;
  c = spdyc_open(url2, "v2.channel.k8s.io", &status, &chosen);
  cr_assert_str_eq(chosen, "v2.channel.k8s.io");
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, out_hdr);
  struct buf out2[2] = {BUF_INIT, BUF_INIT};
  cr_assert_eq(spdyc_collect(c, ids, out2, 2, WAIT, &st), 0);
  cr_assert_str_eq(out2[0].data, "command terminated with non-zero exit code: exit status 7");
  buf_free(&out2[0]);
  buf_free(&out2[1]);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_spdy, negotiation_picks_the_best_version_offered)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  int status;
  cleanup_free char *chosen = NULL;
  struct spdyc *c = spdyc_open(url, "channel.k8s.io, v2.channel.k8s.io, v4.channel.k8s.io", &status, &chosen);
  cr_assert_eq(status, 101);
  cr_assert_str_eq(chosen, "v4.channel.k8s.io");
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_spdy, terminal_resizes_reach_the_callback)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, true, NULL);
  struct spdyc *c = open_v4(url);
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, in_hdr);
  spdyc_syn(c, 5, out_hdr);
  spdyc_syn(c, 7, resize_hdr);
  /* the latest size before the back end sets its callback is kept for it */
  const char *m = "{\"Width\":80,\"Height\":24}";
  spdyc_data(c, 7, m, strlen(m), false);
  cr_assert_eq(echo_wait(&echo.n_sizes, 1, WAIT), 1);
  /* then each message, however the frames cut them */
  m = "{\"Width\":1";
  spdyc_data(c, 7, m, strlen(m), false);
  m = "20,\"Height\":40}\n{\"width\":3,\"height\":4}";
  spdyc_data(c, 7, m, strlen(m), false);
  cr_assert_eq(echo_wait(&echo.n_sizes, 3, WAIT), 3);
  cr_assert_eq(echo.sizes[0][0], 80);
  cr_assert_eq(echo.sizes[0][1], 24);
  cr_assert_eq(echo.sizes[1][0], 120);
  cr_assert_eq(echo.sizes[1][1], 40);
  cr_assert_eq(echo.sizes[2][0], 3);
  spdyc_data(c, 3, "x", 1, true);
  uint32_t ids[] = {1, 5};
  struct buf out[2] = {BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 2, WAIT, &st), 0);
  cr_assert_str_eq(out[1].data, "x");
  buf_free(&out[0]);
  buf_free(&out[1]);
  spdyc_close(c);
  stream_server_free(s);
}

static void pf_syn(struct spdyc *c, uint32_t id, const char *type, const char *port, const char *rid)
{
  const char *kv[] = {"streamtype", type, "port", port, "requestid", rid, NULL};
  spdyc_syn(c, id, kv);
}

Test(stream_spdy, port_forward_serves_three_requests_at_once)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_PORT_FORWARD, false, false, false, false, NULL);
  int status;
  struct spdyc *c = spdyc_open(url, "portforward.k8s.io", &status, NULL);
  cr_assert_eq(status, 101);
  /* three pairs, interleaved: error 1/3/5, data 7/9/11 */
  pf_syn(c, 1, "error", "80", "0");
  pf_syn(c, 3, "error", "81", "1");
  pf_syn(c, 5, "error", "82", "2");
  pf_syn(c, 7, "data", "80", "0");
  pf_syn(c, 9, "data", "81", "1");
  pf_syn(c, 11, "data", "82", "2");
  spdyc_data(c, 9, "second", 6, true);
  spdyc_data(c, 7, "first", 5, true);
  spdyc_data(c, 11, "third", 5, true);
  uint32_t ids[] = {7, 9, 11, 1, 3, 5};
  struct buf out[6] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 6, WAIT, &st), 0);
  cr_assert_str_eq(out[0].data, "first");
  cr_assert_str_eq(out[1].data, "second");
  cr_assert_str_eq(out[2].data, "third");
  for (int i = 3; i < 6; i++)
    cr_assert_eq(out[i].len, 0, "no error");
  cr_assert_eq(echo_wait(&echo.pipes_done, 3, WAIT), 3);
  for (int i = 0; i < 6; i++)
    buf_free(&out[i]);
  /* the connection stays for more; a failing forward reports on its error stream */
  pf_syn(c, 13, "error", "666", "3");
  pf_syn(c, 15, "data", "666", "3");
  uint32_t ids2[] = {13, 15};
  struct buf out2[2] = {BUF_INIT, BUF_INIT};
  cr_assert_eq(spdyc_collect(c, ids2, out2, 2, WAIT, &st), 0);
  cr_assert_str_eq(out2[0].data, "error forwarding port 666: nothing listens");
  buf_free(&out2[0]);
  buf_free(&out2[1]);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_spdy, port_forward_rejects_streams_without_a_port)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_PORT_FORWARD, false, false, false, false, NULL);
  int status;
  struct spdyc *c = spdyc_open(url, "portforward.k8s.io", &status, NULL);
  const char *kv[] = {"streamtype", "data", NULL};
  spdyc_syn(c, 1, kv);
  struct spdyc_frame f;
  cr_assert_eq(spdyc_read(c, &f, WAIT), 1);
  cr_assert(f.control && f.type == SPDY_RST_STREAM && f.stream_id == 1);
  spdyc_frame_free(&f);
  /* the header compression state survived the refusal */
  pf_syn(c, 3, "error", "80", "9");
  cr_assert_eq(spdyc_read(c, &f, WAIT), 1);
  cr_assert(f.control && f.type == SPDY_SYN_REPLY && f.stream_id == 3);
  spdyc_frame_free(&f);
  spdyc_close(c);
  stream_server_free(s);
}

/* The back end writes 200 KiB; with the client doing SPDY/3.1 flow control the
 * server stops at the window and goes on with each WINDOW_UPDATE. */
static void big_exchange(bool client_flow_control)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  struct spdyc *c = open_v4(url);
  if (client_flow_control) {
    uint8_t upd[8] = {0, 0, 0, 0, 0, 0, 0, 0};   /* a zero credit: shows flow control */
    spdyc_control(c, SPDY_WINDOW_UPDATE, 0, upd, 8);
  }
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, in_hdr);
  spdyc_syn(c, 5, out_hdr);
  cleanup_free char *blob = xmalloc(200 * 1024);
  memset(blob, 'z', 200 * 1024);
  spdyc_data(c, 3, blob, 100 * 1024, false);
  spdyc_data(c, 3, blob, 100 * 1024, true);
  size_t got = 0, total = 0;
  uint32_t credit = 0;
  bool fin = false;
  while (!fin) {
    struct spdyc_frame f;
    int rc = spdyc_read(c, &f, client_flow_control ? 500 : WAIT);
    if (rc < 0 && client_flow_control) {
      cr_assert_leq(got, 65536u, "the server stayed inside the window");
      cr_assert_gt(got, 0u);
      uint8_t upd[8];   /* give back what we read, stream and session */
      spdy_put32(upd, 5);
      spdy_put32(upd + 4, (uint32_t)got);
      spdyc_control(c, SPDY_WINDOW_UPDATE, 0, upd, 8);
      spdy_put32(upd, 0);
      spdyc_control(c, SPDY_WINDOW_UPDATE, 0, upd, 8);
      got = 0;
      continue;
    }
    cr_assert_eq(rc, 1);
    if (f.control && f.type == SPDY_WINDOW_UPDATE)
      credit += spdy_u32((uint8_t *)f.payload.data + 4);
    if (!f.control && f.stream_id == 5) {
      got += f.payload.len;
      total += f.payload.len;
      fin = f.flags & SPDY_FLAG_FIN;
    }
    spdyc_frame_free(&f);
  }
  cr_assert_eq(total, 200 * 1024u, "every byte came back");
  cr_assert_geq(credit, 150 * 1024u, "the server credited what it consumed (%u)", credit);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_spdy, a_client_without_flow_control_gets_more_than_64k) { big_exchange(false); }

Test(stream_spdy, flow_control_holds_output_at_the_window) { big_exchange(true); }

Test(stream_spdy, ping_is_echoed)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  struct spdyc *c = open_v4(url);
  uint8_t id[4] = {0, 0, 0, 7};
  spdyc_control(c, SPDY_PING, 0, id, 4);
  struct spdyc_frame f;
  cr_assert_eq(spdyc_read(c, &f, WAIT), 1);
  cr_assert(f.control && f.type == SPDY_PING && f.stream_id == 7);
  spdyc_frame_free(&f);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_spdy, client_leaving_mid_exec_cancels_the_back_end)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  struct spdyc *c = open_v4(url);
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, in_hdr);
  spdyc_syn(c, 5, out_hdr);
  spdyc_data(c, 3, "a", 1, false);
  uint32_t ids[] = {5};
  struct buf out = BUF_INIT;
  struct spdyc_stats st = {0};
  spdyc_collect(c, ids, &out, 1, 300, &st);   /* "a" arrives; no FIN */
  cr_assert_str_eq(out.data, "a");
  buf_free(&out);
  spdyc_close(c);
  cr_assert_eq(echo_wait(&echo.stdin_errors, 1, WAIT), 1, "stdin read fails with the client gone");
  cr_assert_eq(echo_wait(&echo.closed_cbs, 1, WAIT), 1, "the close callback ran");
  cr_assert_eq(echo_wait(&echo.sessions_done, 1, WAIT), 1);
  stream_server_free(s);
}

Test(stream_spdy, streams_not_created_in_time_close_the_connection)
{
  struct stream_config cfg = {.creation_timeout_ms = 200};
  struct stream_server *s = test_server(&cfg);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  struct spdyc *c = open_v4(url);
  spdyc_syn(c, 1, err_hdr);
  cr_assert(tc_closed_within(c->fd, 3000));
  spdyc_close(c);
  cr_assert_eq(echo.sessions_done, 0, "no session started");
  stream_server_free(s);
}

Test(stream_spdy, garbage_after_the_upgrade_closes_only_that_connection)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  struct spdyc *c = open_v4(url);
  const char junk[] = "GET / HTTP/1.1\r\nHost: nonsense\r\n\r\n";
  spdyc_raw(c, junk, sizeof(junk) - 1);
  cr_assert(tc_closed_within(c->fd, 3000));
  spdyc_close(c);
  /* a bad control frame version is a session error too */
  cleanup_free char *url2 = test_token(s, STREAM_EXEC, true, true, false, false, NULL);
  c = open_v4(url2);
  uint8_t bad[12] = {0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1};
  spdyc_raw(c, bad, sizeof(bad));
  cr_assert(tc_closed_within(c->fd, 3000));
  spdyc_close(c);
  /* and the server keeps serving */
  cleanup_free char *url3 = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  c = open_v4(url3);
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, out_hdr);
  uint32_t ids[] = {1, 3};
  struct buf out[2] = {BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 2, WAIT, &st), 0);
  buf_free(&out[0]);
  buf_free(&out[1]);
  spdyc_close(c);
  stream_server_free(s);
}

/* found by fuzz_spdy: a header name holding a NUL was read as a shorter (or empty) name */
Test(stream_spdy, a_header_name_holding_nul_is_refused)
{
  static const uint8_t block[] = {0, 0, 0, 1, 0, 0, 0, 5, 'a', 0, 'b', 'c', 'd', 0, 0, 0, 1, 'v'};
  struct spdy_zin *zi = spdy_zin_new();
  /* compress the raw block as a client would (the encoder only takes C strings) */
  z_stream zs = {0};
  cr_assert_eq(deflateInit(&zs, Z_DEFAULT_COMPRESSION), Z_OK);
  cr_assert_eq(deflateSetDictionary(&zs, stream_spdy_dict, STREAM_SPDY_DICT_LEN), Z_OK);
  uint8_t out[256];
  zs.next_in = (uint8_t *)block;
  zs.avail_in = sizeof(block);
  zs.next_out = out;
  zs.avail_out = sizeof(out);
  cr_assert_eq(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
  struct spdy_headers h = {0};
  err_t *e = NULL;
  cr_assert_eq(spdy_zin_headers(zi, out, sizeof(out) - zs.avail_out, &h, &e), -1);
  cr_assert(strstr(e->msg, "bad name"), "%s", e->msg);
  err_free(&e);
  spdy_headers_clear(&h);
  deflateEnd(&zs);
  spdy_zin_free(zi);
}
