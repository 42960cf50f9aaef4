#include "cri/stream_spdy_frame.h"

#include <ctype.h>
#include <string.h>
#include <zlib.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

/* a header block that inflates past this is hostile (kubelet's are ~100 bytes) */
#define SPDY_MAX_HEADER_BLOCK (64 * 1024)
#define SPDY_MAX_HEADERS 256

ssize_t spdy_frame_parse(const uint8_t *p, size_t n, size_t max_payload, struct spdy_frame *f)
{
  if (n < 8)
    return 0;
  uint32_t w0 = spdy_u32(p), w1 = spdy_u32(p + 4);
  memset(f, 0, sizeof(*f));
  f->control = (w0 & 0x80000000u) != 0;
  if (f->control) {
    f->version = (uint16_t)(w0 >> 16 & 0x7fff);
    f->type = (uint16_t)(w0 & 0xffff);
  } else {
    f->stream_id = w0 & 0x7fffffffu;
  }
  f->flags = (uint8_t)(w1 >> 24);
  f->len = w1 & 0xffffff;
  if (f->len > max_payload)
    return -1;
  if (n - 8 < f->len)
    return 0;
  f->payload = p + 8;
  return (ssize_t)(8 + f->len);
}

void spdy_control_header(uint8_t h[8], uint16_t type, uint8_t flags, uint32_t len)
{
  spdy_put32(h, 0x80000000u | (uint32_t)SPDY_VERSION << 16 | type);
  spdy_put32(h + 4, (uint32_t)flags << 24 | (len & 0xffffff));
}

void spdy_data_header(uint8_t h[8], uint32_t stream_id, uint8_t flags, uint32_t len)
{
  spdy_put32(h, stream_id & 0x7fffffffu);
  spdy_put32(h + 4, (uint32_t)flags << 24 | (len & 0xffffff));
}

void spdy_put_control(struct buf *out, uint16_t type, uint8_t flags, const void *payload, size_t len)
{
  uint8_t h[8];
  spdy_control_header(h, type, flags, (uint32_t)len);
  buf_append(out, h, 8);
  buf_append(out, payload, len);
}

static void put_two(struct buf *out, uint16_t type, uint32_t a, uint32_t b)
{
  uint8_t p[8];
  spdy_put32(p, a);
  spdy_put32(p + 4, b);
  spdy_put_control(out, type, 0, p, 8);
}

void spdy_put_rst(struct buf *out, uint32_t stream_id, uint32_t status)
{
  put_two(out, SPDY_RST_STREAM, stream_id & 0x7fffffffu, status);
}

void spdy_put_window_update(struct buf *out, uint32_t stream_id, uint32_t delta)
{
  put_two(out, SPDY_WINDOW_UPDATE, stream_id & 0x7fffffffu, delta & 0x7fffffffu);
}

void spdy_put_goaway(struct buf *out, uint32_t last_stream_id, uint32_t status)
{
  put_two(out, SPDY_GOAWAY, last_stream_id & 0x7fffffffu, status);
}

void spdy_put_ping(struct buf *out, uint32_t id)
{
  uint8_t p[4];
  spdy_put32(p, id);
  spdy_put_control(out, SPDY_PING, 0, p, 4);
}

const char *spdy_headers_get(const struct spdy_headers *h, const char *name)
{
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->v[i].name, name) == 0)
      return h->v[i].value;
  return NULL;
}

void spdy_headers_clear(struct spdy_headers *h)
{
  for (size_t i = 0; i < h->n; i++) {
    free(h->v[i].name);
    free(h->v[i].value);
  }
  free(h->v);
  h->v = NULL;
  h->n = 0;
}

/* --- inflate ------------------------------------------------------------------- */

struct spdy_zin {
  z_stream z;
};

struct spdy_zin *spdy_zin_new(void)
{
  struct spdy_zin *z = xcalloc(1, sizeof(*z));
  if (inflateInit(&z->z) != Z_OK)
    abort();  /* only out of memory fails here */
  return z;
}

void spdy_zin_free(struct spdy_zin *z)
{
  if (!z)
    return;
  inflateEnd(&z->z);
  free(z);
}

static int inflate_block(struct spdy_zin *z, const uint8_t *p, size_t n, struct buf *out, err_t **e)
{
  z->z.next_in = (Bytef *)p;
  z->z.avail_in = (uInt)n;
  for (;;) {
    buf_reserve(out, 4096);
    z->z.next_out = (Bytef *)out->data + out->len;
    z->z.avail_out = (uInt)(out->cap - out->len - 1);
    int rc = inflate(&z->z, Z_SYNC_FLUSH);
    out->len = out->cap - 1 - z->z.avail_out;
    out->data[out->len] = '\0';
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(&z->z, stream_spdy_dict, STREAM_SPDY_DICT_LEN) != Z_OK)
        return err_set(e, ERR_INVALID, 0, "header block: not primed with the SPDY dictionary");
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      return err_set(e, ERR_INVALID, 0, "header block: zlib: %s", z->z.msg ? z->z.msg : "bad data");
    if (out->len > SPDY_MAX_HEADER_BLOCK)
      return err_set(e, ERR_INVALID, 0, "header block larger than %d bytes", SPDY_MAX_HEADER_BLOCK);
    if (z->z.avail_in == 0 && z->z.avail_out > 0)
      return 0;
    if (rc == Z_BUF_ERROR && z->z.avail_out > 0)
      return err_set(e, ERR_INVALID, 0, "header block: truncated");
  }
}

static int take_str(const uint8_t **p, const uint8_t *end, char **out, bool name)
{
  if (end - *p < 4)
    return -1;
  uint32_t len = spdy_u32(*p);
  *p += 4;
  if ((uint32_t)(end - *p) < len || (name && len == 0))
    return -1;
  /* a NUL separates a value's values; in a name it would cut the name short ("" or a
   * different header) as C reads it (found by fuzz_spdy) */
  if (name && memchr(*p, 0, len))
    return -1;
  char *s = xstrndup((const char *)*p, len);
  if (name)
    for (char *c = s; *c; c++)
      *c = (char)tolower((unsigned char)*c);
  *p += len;
  *out = s;
  return 0;
}

int spdy_zin_headers(struct spdy_zin *z, const uint8_t *p, size_t n, struct spdy_headers *out,
                     err_t **e)
{
  cleanup_buf struct buf raw = BUF_INIT;
  if (inflate_block(z, p, n, &raw, e) < 0)
    return -1;
  const uint8_t *q = (const uint8_t *)raw.data, *end = q + raw.len;
  if (raw.len < 4)
    return err_set(e, ERR_INVALID, 0, "header block: no pair count");
  uint32_t count = spdy_u32(q);
  q += 4;
  if (count > SPDY_MAX_HEADERS)
    return err_set(e, ERR_INVALID, 0, "header block: %u pairs", count);
  out->v = xcalloc(count ? count : 1, sizeof(*out->v));
  for (uint32_t i = 0; i < count; i++) {
    struct spdy_hdr *h = &out->v[out->n];
    if (take_str(&q, end, &h->name, true) < 0)
      return err_set(e, ERR_INVALID, 0, "header block: bad name %u", i);
    out->n++;
    if (take_str(&q, end, &h->value, false) < 0)
      return err_set(e, ERR_INVALID, 0, "header block: bad value for %s", h->name);
  }
  return 0;
}

/* --- deflate ------------------------------------------------------------------- */

struct spdy_zout {
  z_stream z;
};

struct spdy_zout *spdy_zout_new(int window_bits)
{
  struct spdy_zout *z = xcalloc(1, sizeof(*z));
  /* memLevel 1: header blocks are tiny, the hash tables need not be big */
  if (deflateInit2(&z->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 1, Z_DEFAULT_STRATEGY) != Z_OK ||
      deflateSetDictionary(&z->z, stream_spdy_dict, STREAM_SPDY_DICT_LEN) != Z_OK)
    abort();
  return z;
}

void spdy_zout_free(struct spdy_zout *z)
{
  if (!z)
    return;
  deflateEnd(&z->z);
  free(z);
}

static void put_str(struct buf *b, const char *s)
{
  uint8_t len[4];
  spdy_put32(len, (uint32_t)strlen(s));
  buf_append(b, len, 4);
  buf_puts(b, s);
}

int spdy_zout_headers(struct spdy_zout *z, const struct spdy_hdr *h, size_t n, struct buf *out,
                      err_t **e)
{
  cleanup_buf struct buf raw = BUF_INIT;
  uint8_t cnt[4];
  spdy_put32(cnt, (uint32_t)n);
  buf_append(&raw, cnt, 4);
  for (size_t i = 0; i < n; i++) {
    put_str(&raw, h[i].name);
    put_str(&raw, h[i].value);
  }
  z->z.next_in = (Bytef *)raw.data;
  z->z.avail_in = (uInt)raw.len;
  do {
    buf_reserve(out, raw.len + 64);
    z->z.next_out = (Bytef *)out->data + out->len;
    z->z.avail_out = (uInt)(out->cap - out->len - 1);
    int rc = deflate(&z->z, Z_SYNC_FLUSH);
    out->len = out->cap - 1 - z->z.avail_out;
    out->data[out->len] = '\0';
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      return err_set(e, ERR_INTERNAL, 0, "header block: deflate failed");
  } while (z->z.avail_out == 0);
  return 0;
}
