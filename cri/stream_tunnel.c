/* stream_tunnel.c - SPDY carried in WebSocket binary messages: the subprotocols
 * "SPDY/3.1+<stream protocol>" that client-go's tunneling dialer asks for
 * (`crictl port-forward --transport websocket`, kubectl through an apiserver that
 * tunnels). No HTTP upgrade happens inside: right after the 101 both sides speak
 * SPDY, and the WebSocket framing is only a byte pipe. Message boundaries mean
 * nothing; every data frame's payload is the next piece of the SPDY stream (the
 * client's writer may fragment a message), and each write the SPDY side makes
 * leaves as one binary message (sconn_send adds the header). */
#include <stdatomic.h>
#include <string.h>

#include "base/log.h"
#include "cri/stream_int.h"

#define TUNNEL_MAX_FRAME (1024 * 1024)

static void control(struct sconn *c, int op, const void *p, size_t n)
{
  uint8_t h[10];
  struct iovec iov[2] = {{h, stream_ws_header(h, op, n)}, {(void *)p, n}};
  err_t *e = NULL;
  if (sconn_send_unwrapped(c, iov, 2, &e) < 0)
    err_free(&e);
}

void stream_tunnel_close(struct sconn *c, uint16_t code)
{
  if (atomic_exchange(&c->tunnel_closed, true))
    return;
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  control(c, WS_CLOSE, p, 2);
}

static int fail(struct sconn *c, uint16_t code, const char *why)
{
  log_debug("streaming: tunnel WebSocket error, closing", "reason", why, NULL);
  stream_tunnel_close(c, code);
  return -1;
}

/* One frame at p[0..n): its size, 0 while incomplete, -1 once the tunnel is over. */
static ssize_t frame(struct sconn *c, uint8_t *p, size_t n, struct buf *out)
{
  uint64_t len;
  size_t hl;
  if (!stream_ws_head_len(p, n, &len, &hl))
    return 0;
  int op = p[0] & 0x0f;
  bool fin = p[0] & 0x80;
  if (p[0] & 0x70)
    return fail(c, WS_PROTOCOL, "reserved bits set");
  if (!(p[1] & 0x80))
    return fail(c, WS_PROTOCOL, "unmasked client frame");
  if (len > TUNNEL_MAX_FRAME)
    return fail(c, WS_TOO_BIG, "frame too large");
  if ((op & 0x8) && (!fin || len > 125))
    return fail(c, WS_PROTOCOL, "bad control frame");
  if (n < hl + 4 + len)
    return 0;
  const uint8_t *mask = p + hl;
  uint8_t *payload = p + hl + 4;
  for (uint64_t i = 0; i < len; i++)
    payload[i] ^= mask[i & 3];
  switch (op) {
  case WS_CONT:
  case WS_BINARY:
    buf_append(out, payload, (size_t)len);
    break;
  case WS_PING:
    control(c, WS_PONG, payload, (size_t)len);
    break;
  case WS_PONG:
    break;
  case WS_CLOSE:
    stream_tunnel_close(c, WS_NORMAL);
    return -1;
  case WS_TEXT:
    return fail(c, WS_UNSUPPORTED, "text message in a SPDY tunnel");
  default:
    return fail(c, WS_PROTOCOL, "unknown opcode");
  }
  return (ssize_t)(hl + 4 + len);
}

int stream_tunnel_unwrap(struct sconn *c, struct buf *raw, struct buf *out)
{
  size_t used = 0;
  int rc = 0;
  for (;;) {
    ssize_t n = frame(c, (uint8_t *)raw->data + used, raw->len - used, out);
    if (n < 0)
      rc = -1;
    if (n <= 0)
      break;
    used += (size_t)n;
  }
  if (used) {
    memmove(raw->data, raw->data + used, raw->len - used);
    raw->len -= used;
  }
  return rc;
}
