#include "cri/stream_util.h"

#include <string.h>

#include "base/xalloc.h"

/* --- SHA-1 (FIPS 180-4, section 6.1) ---------------------------------------- */

static uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t blk[64])
{
  uint32_t w[80];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)blk[4 * t] << 24 | (uint32_t)blk[4 * t + 1] << 16 |
           (uint32_t)blk[4 * t + 2] << 8 | blk[4 * t + 3];
  for (int t = 16; t < 80; t++)
    w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void stream_sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
  uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  const uint8_t *p = data;
  size_t left = len;
  for (; left >= 64; left -= 64, p += 64)
    sha1_block(h, p);
  /* the tail, the 0x80 marker and the bit length fill one or two more blocks */
  uint8_t tail[128] = {0};
  memcpy(tail, p, left);
  tail[left] = 0x80;
  size_t n = left < 56 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++)
    tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < n; off += 64)
    sha1_block(h, tail + off);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++)
      out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

/* --- base64 (RFC 4648 sections 4 and 5) -------------------------------------- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void stream_b64_encode(struct buf *out, const void *data, size_t len, bool url)
{
  const char *abc = url ? b64_url : b64_std;
  const uint8_t *p = data;
  buf_reserve(out, (len + 2) / 3 * 4 + 1);
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    size_t n = len - i < 3 ? len - i : 3;
    if (n > 1)
      v |= (uint32_t)p[i + 1] << 8;
    if (n > 2)
      v |= p[i + 2];
    char q[4] = {abc[v >> 18 & 63], abc[v >> 12 & 63], abc[v >> 6 & 63], abc[v & 63]};
    if (n < 3)
      q[3] = '=';
    if (n < 2)
      q[2] = '=';
    size_t keep = url ? n + 1 : 4;
    buf_append(out, q, keep);
  }
  buf_append(out, "", 0);   /* terminated even when empty */
}

static int b64_val(char ch, bool url)
{
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == (url ? '-' : '+'))
    return 62;
  if (ch == (url ? '_' : '/'))
    return 63;
  return -1;
}

int stream_b64_decode(struct buf *out, const char *s, size_t len, bool url)
{
  size_t pad = 0;
  if (!url) {
    if (len % 4)
      return -1;
    while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
      pad++;
  } else if (len % 4 == 1) {
    return -1;
  }
  size_t n = len - pad;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_val(s[i], url);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf_putc(out, (char)(acc >> bits & 0xff));
    }
  }
  /* leftover bits must be zero, or two encodings would decode alike */
  if (bits && (acc & ((1u << bits) - 1)))
    return -1;
  return 0;
}

/* --- UTF-8 (RFC 3629 section 4) ---------------------------------------------- */

bool stream_utf8_valid(const uint8_t *s, size_t len)
{
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf;   /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0)
        lo = 0xa0;                  /* no overlongs */
      if (c == 0xed)
        hi = 0x9f;                  /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0)
        lo = 0x90;
      if (c == 0xf4)
        hi = 0x8f;                  /* nothing past U+10FFFF */
    } else {
      return false;
    }
    if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
      return false;
    for (size_t k = 2; k <= n; k++)
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
    i += n + 1;
  }
  return true;
}

char *stream_ws_accept_key(const char *key)
{
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  struct buf in = BUF_INIT, out = BUF_INIT;
  buf_puts(&in, key);
  buf_puts(&in, guid);
  uint8_t sum[SHA1_LEN];
  stream_sha1(in.data, in.len, sum);
  buf_free(&in);
  stream_b64_encode(&out, sum, sizeof(sum), false);
  return buf_steal(&out);
}
