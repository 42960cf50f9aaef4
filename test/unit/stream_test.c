/* The streaming server's pieces: codecs, the SPDY dictionary and header blocks,
 * the HTTP head parser, tokens, status messages, and the HTTP answers before any
 * upgrade (unknown, used and expired tokens, bad upgrade headers). */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cri/stream_http.h"
#include "cri/stream_int.h"
#include "cri/stream_spdy_frame.h"
#include "cri/stream_token.h"
#include "cri/stream_util.h"
#include "stream_client.h"

static char *hex(const uint8_t *p, size_t n)
{
  struct buf b = BUF_INIT;
  for (size_t i = 0; i < n; i++)
    buf_printf(&b, "%02x", p[i]);
  return buf_steal(&b);
}

Test(stream_util, sha1_matches_fips_vectors_and_libcrypto)
{
  uint8_t sum[SHA1_LEN];
  stream_sha1("abc", 3, sum);
  cleanup_free char *a = hex(sum, SHA1_LEN);
  cr_assert_str_eq(a, "a9993e364706816aba3e25717850c26c9cd0d89d");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  stream_sha1(two, strlen(two), sum);
  cleanup_free char *b = hex(sum, SHA1_LEN);
  cr_assert_str_eq(b, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  uint8_t data[300];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 7 + 3);
  for (size_t n = 0; n <= sizeof(data); n++) {   /* every padding case */
    uint8_t want[EVP_MAX_MD_SIZE];
    unsigned wl = 0;
    EVP_Digest(data, n, want, &wl, EVP_sha1(), NULL);
    stream_sha1(data, n, sum);
    cr_assert_eq(memcmp(sum, want, SHA1_LEN), 0, "length %zu", n);
  }
}

Test(stream_util, websocket_accept_key_is_the_rfc_example)
{
  cleanup_free char *k = stream_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
  cr_assert_str_eq(k, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(stream_util, base64_round_trips_and_refuses_junk)
{
  const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    struct buf e = BUF_INIT, d = BUF_INIT, u = BUF_INIT, ud = BUF_INIT;
    stream_b64_encode(&e, in[i], strlen(in[i]), false);
    cr_assert_str_eq(buf_str(&e), std[i]);
    cr_assert_eq(stream_b64_decode(&d, std[i], strlen(std[i]), false), 0);
    cr_assert_str_eq(buf_str(&d), in[i]);
    stream_b64_encode(&u, in[i], strlen(in[i]), true);
    cr_assert_null(strchr(buf_str(&u), '='));
    cr_assert_eq(stream_b64_decode(&ud, buf_str(&u), u.len, true), 0);
    cr_assert_str_eq(buf_str(&ud), in[i]);
    buf_free(&e), buf_free(&d), buf_free(&u), buf_free(&ud);
  }
  struct buf j = BUF_INIT;
  cr_assert_eq(stream_b64_decode(&j, "Zm9", 3, false), -1, "bad length");
  cr_assert_eq(stream_b64_decode(&j, "Zm9*", 4, false), -1, "bad character");
  cr_assert_eq(stream_b64_decode(&j, "Zh==", 4, false), -1, "non-zero padding bits");
  cr_assert_eq(stream_b64_decode(&j, "Zm-_", 4, false), -1, "URL alphabet in a standard string");
  buf_free(&j);
}

Test(stream_util, utf8_validation)
{
  cr_assert(stream_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
  cr_assert_not(stream_utf8_valid((const uint8_t *)"\xc0\xaf", 2), "overlong");
  cr_assert_not(stream_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3), "surrogate");
  cr_assert_not(stream_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4), "past U+10FFFF");
  cr_assert_not(stream_utf8_valid((const uint8_t *)"\xe2\x82", 2), "truncated");
}

Test(stream_spdy_frame, dictionary_is_the_spdy3_one)
{
  cr_assert_eq(sizeof(stream_spdy_dict), 1423u);
  cr_assert_eq(adler32(1, stream_spdy_dict, STREAM_SPDY_DICT_LEN), 0xe3c6a7c2u);
  cr_assert_eq(memcmp(stream_spdy_dict, "\0\0\0\7options", 11), 0);
  cr_assert_eq(memcmp(stream_spdy_dict + 1423 - 7, ",enq=0.", 7), 0);
}

Test(stream_spdy_frame, header_blocks_round_trip_across_one_zlib_stream)
{
  struct spdy_zout *zo = spdy_zout_new(11);
  struct spdy_zin *zi = spdy_zin_new();
  for (int round = 0; round < 3; round++) {
    struct spdy_hdr h[] = {{"streamtype", "stdout"}, {"port", "8080"}};
    struct buf block = BUF_INIT;
    err_t *e = NULL;
    cr_assert_eq(spdy_zout_headers(zo, h, 2, &block, &e), 0);
    if (round == 0)   /* zlib header: FDICT set, then the dictionary id */
      cr_assert(block.data[1] & 0x20 && spdy_u32((uint8_t *)block.data + 2) == 0xe3c6a7c2u);
    struct spdy_headers got = {0};
    cr_assert_eq(spdy_zin_headers(zi, (uint8_t *)block.data, block.len, &got, &e), 0);
    cr_assert_str_eq(spdy_headers_get(&got, "streamtype"), "stdout");
    cr_assert_str_eq(spdy_headers_get(&got, "port"), "8080");
    spdy_headers_clear(&got);
    buf_free(&block);
  }
  struct spdy_headers junk = {0};
  err_t *e = NULL;
  cr_assert_eq(spdy_zin_headers(zi, (const uint8_t *)"\x01\x02\x03\x04", 4, &junk, &e), -1);
  err_free(&e);
  spdy_headers_clear(&junk);
  spdy_zout_free(zo);
  spdy_zin_free(zi);
}

Test(stream_spdy_frame, parse_needs_whole_frames_and_caps_length)
{
  uint8_t f[12] = {0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 9};
  struct spdy_frame sf;
  cr_assert_eq(spdy_frame_parse(f, 11, 1024, &sf), 0);
  cr_assert_eq(spdy_frame_parse(f, 12, 1024, &sf), 12);
  cr_assert(sf.control && sf.version == 3 && sf.type == SPDY_PING && sf.len == 4);
  uint8_t big[8] = {0, 0, 0, 1, 0x01, 0xff, 0xff, 0xff};
  cr_assert_eq(spdy_frame_parse(big, 8, 1024, &sf), -1);
}

Test(stream_http, parses_a_request_and_negotiates_server_preference)
{
  char head[] = "POST /exec/abc?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                "X-Stream-Protocol-Version: channel.k8s.io\r\nX-Stream-Protocol-Version: v2.channel.k8s.io, "
                "v4.channel.k8s.io\r\n\r\n";
  struct http_req rq;
  cr_assert_eq(http_head_len(head, strlen(head)), strlen(head));
  cr_assert_eq(http_req_parse(head, strlen(head), &rq), 0);
  cr_assert_str_eq(rq.method, "POST");
  cr_assert_str_eq(rq.path, "/exec/abc");
  cr_assert(http_req_has_token(&rq, "connection", "upgrade"));
  static const char *const sup[] = {"v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io", NULL};
  bool offered;
  cr_assert_str_eq(http_req_negotiate(&rq, "X-Stream-Protocol-Version", sup, &offered), "v4.channel.k8s.io");
  cr_assert(offered);
  const char *bad[] = {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
                       "GET / HTTP/1.1 extra\r\n\r\n", "GET / FTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nA : b\r\n\r\n"};
  for (size_t i = 0; i < 5; i++) {
    char *copy = xstrdup(bad[i]);
    cr_assert_eq(http_req_parse(copy, strlen(copy), &rq), -1, "case %zu", i);
    free(copy);
  }
}

static atomic_int freed;
static void count_free(void *p)
{
  free(p);
  atomic_fetch_add(&freed, 1);
}

static int64_t fake_now;
static int64_t fake_clock(void *arg)
{
  (void)arg;
  return fake_now;
}

Test(stream_token, single_use_expiring_and_limited)
{
  struct stream_tokens *t = stream_tokens_new(3, 1000);
  atomic_store(&freed, 0);
  char tok[4][STREAM_TOKEN_CHARS + 1];
  err_t *e = NULL;
  for (int i = 0; i < 3; i++) {
    struct stream_token_req r = {.kind = STREAM_EXEC, .req = xstrdup("x"), .req_free = count_free};
    cr_assert_eq(stream_tokens_add(t, 0, &r, tok[i], &e), 0);
    cr_assert_eq(strlen(tok[i]), (size_t)STREAM_TOKEN_CHARS);
  }
  struct stream_token_req r = {.kind = STREAM_EXEC, .req = xstrdup("x"), .req_free = count_free};
  cr_assert_eq(stream_tokens_add(t, 0, &r, tok[3], &e), -1);
  cr_assert_eq(e->code, ERR_RESOURCE);
  err_free(&e);
  cr_assert_eq(atomic_load(&freed), 1, "a refused request is released");
  struct stream_token_req out = {0};
  cr_assert_eq(stream_tokens_take(t, 10, tok[0], &out), 0);
  stream_token_req_release(&out);
  cr_assert_eq(stream_tokens_take(t, 10, tok[0], &out), -1, "single use");
  cr_assert_eq(stream_tokens_take(t, 10, "AAAAAAAAAAAAAAAAAAAAAA", &out), -1);
  cr_assert_eq(stream_tokens_take(t, 10, "short", &out), -1);
  cr_assert_eq(stream_tokens_take(t, 1000, tok[1], &out), -1, "expired at ttl");
  cr_assert_eq(stream_tokens_count(t), 0u);
  cr_assert_eq(atomic_load(&freed), 4, "taken and expired requests are released");
  stream_tokens_free(t);
}

Test(stream_status, messages_per_protocol_version)
{
  cr_assert_null(stream_status_message(STREAM_EXEC, 3, 0, NULL));
  cleanup_free char *ok = stream_status_message(STREAM_EXEC, 4, 0, NULL);
  cr_assert_str_eq(ok, "{\"metadata\":{},\"status\":\"Success\"}");
  cleanup_free char *in = stream_status_message(STREAM_ATTACH, 4, 0, "no \"such\" container");
  cr_assert_str_eq(in, "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: error "
                       "attaching to container: no \\\"such\\\" container\",\"reason\":\"InternalError\","
                       "\"details\":{\"causes\":[{\"message\":\"error attaching to container: no \\\"such\\\" "
                       "container\"}]},\"code\":500}");
  cleanup_free char *v2 = stream_status_message(STREAM_EXEC, 2, 0, "boom");
  cr_assert_str_eq(v2, "Internal error occurred: error executing command in container: boom");
}

Test(stream_server, token_options_are_checked_and_1000_may_wait)
{
  struct stream_server *s = test_server(NULL);
  struct stream_opts o = {.tty = true, .err = true, .out = true};
  char *url = NULL;
  err_t *e = NULL;
  cr_assert_eq(stream_token_new(s, STREAM_EXEC, &o, NULL, NULL, &url, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  o = (struct stream_opts){0};
  cr_assert_eq(stream_token_new(s, STREAM_ATTACH, &o, NULL, NULL, &url, &e), -1);
  err_free(&e);
  o.ports = (const int32_t[]){0};
  o.n_ports = 1;
  cr_assert_eq(stream_token_new(s, STREAM_PORT_FORWARD, &o, NULL, NULL, &url, &e), -1);
  err_free(&e);
  o = (struct stream_opts){.out = true};
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(stream_token_new(s, STREAM_EXEC, &o, NULL, NULL, &url, &e), 0);
    cr_assert_str_eq(strstr(url, "/exec/") - strlen(stream_server_url(s)) + 0, url);
    free(url);
  }
  cr_assert_eq(stream_token_new(s, STREAM_EXEC, &o, NULL, NULL, &url, &e), -1, "the 1001st");
  cr_assert_eq(e->code, ERR_RESOURCE);
  err_free(&e);
  stream_server_free(s);
}

static int answer(const char *url, const char *path, const char *method, const char *headers)
{
  int fd = tc_connect(url);
  struct buf head = BUF_INIT, rest = BUF_INIT;
  int st = tc_request(fd, method, path, headers, &head, &rest);
  close(fd);
  buf_free(&head);
  buf_free(&rest);
  return st;
}

#define SPDY_HEADERS "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"

Test(stream_server, unknown_used_expired_and_mismatched_tokens_are_404)
{
  fake_now = 1000;
  struct stream_config cfg = {.clock_ms = fake_clock};
  struct stream_server *s = test_server(&cfg);
  cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  const char *base = stream_server_url(s);
  cr_assert_eq(answer(base, "/exec/AAAAAAAAAAAAAAAAAAAAAA", "POST", SPDY_HEADERS), 404);
  cr_assert_eq(answer(base, "/nothing/here", "GET", NULL), 404);
  cleanup_free char *as_attach = xasprintf("/attach/%s", strrchr(url, '/') + 1);
  cr_assert_eq(answer(base, as_attach, "POST", SPDY_HEADERS), 404, "an exec token is no attach token");
  cr_assert_eq(answer(base, tc_path(url), "POST", SPDY_HEADERS), 404, "and the try used it up");
  cleanup_free char *url2 = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  fake_now += 60000;
  cr_assert_eq(answer(base, tc_path(url2), "POST", SPDY_HEADERS), 404, "expired after a minute");
  cleanup_free char *url3 = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  fake_now += 59999;
  int status;
  struct spdyc *c = spdyc_open(url3, "v4.channel.k8s.io", &status, NULL);
  cr_assert_eq(status, 101, "still good just before");
  spdyc_close(c);
  cr_assert_eq(answer(base, tc_path(url3), "POST", SPDY_HEADERS), 404, "single use");
  stream_server_free(s);
}

Test(stream_server, bad_upgrade_headers_are_400_and_unknown_versions_403)
{
  struct stream_server *s = test_server(NULL);
  struct {
    const char *headers;
    int status;
  } cases[] = {
    {"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n", 400},
    {"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n", 400},
    {"Connection: close\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n", 400},
    {"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9.channel.k8s.io\r\n", 403},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
    cr_assert_eq(answer(url, tc_path(url), "POST", cases[i].headers), cases[i].status, "case %zu", i);
  }
  cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  cr_assert_eq(answer(url, tc_path(url), "DELETE", SPDY_HEADERS), 405);
  int fd = tc_connect(url);
  const char junk[] = "\x16\x03\x01\x02\x00garbage\r\n\r\n";
  cr_assert_eq(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
  cr_assert(tc_closed_within(fd, 3000), "garbage gets an answer and a close");
  close(fd);
  stream_server_free(s);
}

Test(stream_server, a_silent_client_is_dropped_after_the_header_timeout)
{
  struct stream_config cfg = {.header_timeout_ms = 200};
  struct stream_server *s = test_server(&cfg);
  cleanup_free char *url = test_token(s, STREAM_EXEC, false, true, false, false, NULL);
  int fd = tc_connect(url);
  cr_assert(tc_closed_within(fd, 3000));
  close(fd);
  stream_server_free(s);
}

Test(stream_server, address_must_be_a_literal_host_and_port)
{
  struct stream_server *s = NULL;
  err_t *e = NULL;
  const char *bad[] = {"localhost", "example.com:80", "127.0.0.1:99999", "[::1:80", ":80"};
  for (size_t i = 0; i < 5; i++) {
    struct stream_config cfg = {.address = bad[i]};
    cr_assert_eq(stream_server_new(&cfg, &echo_handlers, &s, &e), -1, "%s", bad[i]);
    cr_assert_eq(e->code, ERR_INVALID);
    err_free(&e);
  }
  struct stream_config cfg = {.address = "localhost:0"};
  cr_assert_eq(stream_server_new(&cfg, &echo_handlers, &s, &e), 0);
  cr_assert_eq(strncmp(stream_server_url(s), "http://127.0.0.1:", 17), 0);
  stream_server_free(s);
}
