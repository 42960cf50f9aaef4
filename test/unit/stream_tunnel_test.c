/* The streaming server's SPDY tunnelled in WebSocket ("SPDY/3.1+<protocol>", what
 * `crictl port-forward --transport websocket` speaks), driven by the test client. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cri/stream_spdy_frame.h"
#include "stream_client.h"

#define WAIT 5000

static void pf_syn(struct spdyc *c, uint32_t id, const char *type, const char *port, const char *rid)
{
  const char *kv[] = {"streamtype", type, "port", port, "requestid", rid, NULL};
  spdyc_syn(c, id, kv);
}

static struct spdyc *open_pf(struct stream_server *s)
{
  cleanup_free char *url = test_token(s, STREAM_PORT_FORWARD, false, false, false, false, NULL);
  int status;
  cleanup_free char *chosen = NULL;
  struct spdyc *c = spdyc_open_tunnel(url, "portforward.k8s.io", &status, &chosen);
  cr_assert_eq(status, 101);
  cr_assert_str_eq(chosen, "SPDY/3.1+portforward.k8s.io");
  return c;
}

Test(stream_tunnel, port_forward_pairs_run_inside_the_websocket)
{
  struct stream_server *s = test_server(NULL);
  struct spdyc *c = open_pf(s);
  pf_syn(c, 1, "error", "80", "0");
  pf_syn(c, 3, "data", "80", "0");
  pf_syn(c, 5, "error", "81", "1");
  pf_syn(c, 7, "data", "81", "1");
  char big[100000];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (char)('a' + i % 23);
  spdyc_data(c, 3, big, sizeof(big), true);
  spdyc_data(c, 7, "second", 6, true);
  uint32_t ids[] = {3, 7, 1, 5};
  struct buf out[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 4, WAIT, &st), 0);
  cr_assert_eq(st.replies, 4);
  cr_assert_eq(out[0].len, sizeof(big));
  cr_assert(memcmp(out[0].data, big, sizeof(big)) == 0);
  cr_assert_str_eq(out[1].data, "second");
  cr_assert_eq(out[2].len + out[3].len, 0, "no errors");
  for (int i = 0; i < 4; i++)
    buf_free(&out[i]);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_tunnel, exec_session_and_status_over_the_tunnel)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_EXEC, true, true, false, false, echo_req_new(3));
  int status;
  cleanup_free char *chosen = NULL;
  struct spdyc *c = spdyc_open_tunnel(url, "v4.channel.k8s.io", &status, &chosen);
  cr_assert_eq(status, 101);
  cr_assert_str_eq(chosen, "SPDY/3.1+v4.channel.k8s.io");
  static const char *const err_hdr[] = {"streamtype", "error", NULL};
  static const char *const in_hdr[] = {"streamtype", "stdin", NULL};
  static const char *const out_hdr[] = {"streamtype", "stdout", NULL};
  spdyc_syn(c, 1, err_hdr);
  spdyc_syn(c, 3, in_hdr);
  spdyc_syn(c, 5, out_hdr);
  spdyc_data(c, 3, "tunnelled", 9, true);
  uint32_t ids[] = {1, 5};
  struct buf out[2] = {BUF_INIT, BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 2, WAIT, &st), 0);
  cr_assert_str_eq(out[1].data, "tunnelled");
  cr_assert(strstr(out[0].data, "\"reason\":\"NonZeroExitCode\""));
  buf_free(&out[0]);
  buf_free(&out[1]);
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_tunnel, fragmented_frames_pings_and_close)
{
  struct stream_server *s = test_server(NULL);
  struct spdyc *c = open_pf(s);
  pf_syn(c, 1, "error", "80", "0");
  /* the data stream's SYN_STREAM and a DATA frame, cut across three WebSocket frames */
  const char *kv[] = {"streamtype", "data", "port", "80", "requestid", "0", NULL};
  spdyc_syn(c, 3, kv);
  uint8_t h[8];
  spdy_data_header(h, 3, SPDY_FLAG_FIN, 5);
  uint8_t frame[13];
  memcpy(frame, h, 8);
  memcpy(frame + 8, "split", 5);
  wsc_send(c->tun, 2, false, frame, 3);
  wsc_send(c->tun, 9, true, "hi", 2);   /* a ping between the fragments */
  wsc_send(c->tun, 0, false, frame + 3, 6);
  wsc_send(c->tun, 0, true, frame + 9, 4);
  /* the pong comes back outside SPDY */
  int op;
  bool fin;
  cleanup_buf struct buf pong = BUF_INIT;
  do {
    buf_reset(&pong);
    cr_assert_eq(wsc_read(c->tun, &op, &fin, &pong, WAIT), 1);
    if (op == 2)
      buf_append(&c->in, pong.data, pong.len);   /* SPDY bytes: keep for the reader */
  } while (op != 10);
  cr_assert_eq(pong.len, 2);
  cr_assert(memcmp(pong.data, "hi", 2) == 0);
  uint32_t ids[] = {3};
  struct buf out[1] = {BUF_INIT};
  struct spdyc_stats st = {0};
  cr_assert_eq(spdyc_collect(c, ids, out, 1, WAIT, &st), 0);
  cr_assert_str_eq(out[0].data, "split");
  buf_free(&out[0]);
  /* text has no place in a tunnel: Close 1003, then the connection ends */
  wsc_send(c->tun, 1, true, "text", 4);
  bool closed = false;
  for (int i = 0; i < 20 && !closed; i++) {
    cleanup_buf struct buf p = BUF_INIT;
    int rc = wsc_read(c->tun, &op, &fin, &p, WAIT);
    cr_assert_neq(rc, -1, "no answer to a text frame");
    if (rc == 0)
      break;
    if (op == 8) {
      cr_assert_eq(p.len, 2);
      cr_assert_eq((uint8_t)p.data[0] << 8 | (uint8_t)p.data[1], 1003);
      closed = true;
    }
  }
  cr_assert(closed, "a Close frame");
  cr_assert(tc_closed_within(c->fd, WAIT));
  spdyc_close(c);
  stream_server_free(s);
}

Test(stream_tunnel, unknown_tunnelled_protocol_is_refused)
{
  struct stream_server *s = test_server(NULL);
  cleanup_free char *url = test_token(s, STREAM_PORT_FORWARD, false, false, false, false, NULL);
  int status;
  struct spdyc *c = spdyc_open_tunnel(url, "v2.portforward.k8s.io", &status, NULL);
  cr_assert_null(c);
  cr_assert_eq(status, 403);
  stream_server_free(s);
}
