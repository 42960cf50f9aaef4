/* libFuzzer target: SPDY/3.1 framing and zlib header blocks, as the streaming server
 * reads them from a client: frames one after another from the input; every
 * SYN_STREAM, SYN_REPLY and HEADERS block goes through one inflater per input (a
 * connection's compression context spans its frames). Re-encoding what decoded must
 * decode to the same headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cri/stream_spdy_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct spdy_headers *h)
{
  struct spdy_zout *zo = spdy_zout_new(15);
  struct spdy_zin *zi = spdy_zin_new();
  struct buf out = BUF_INIT;
  struct spdy_headers back = {0};
  err_t *e = NULL;
  if (spdy_zout_headers(zo, h->v, h->n, &out, &e) < 0)
    abort();
  if (spdy_zin_headers(zi, (const uint8_t *)out.data, out.len, &back, &e) < 0 || back.n != h->n)
    abort();
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(back.v[i].name, h->v[i].name) || strcmp(back.v[i].value, h->v[i].value))
      abort();
  spdy_headers_clear(&back);
  buf_free(&out);
  spdy_zin_free(zi);
  spdy_zout_free(zo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct spdy_zin *z = spdy_zin_new();
  size_t off = 0;
  while (off < size) {
    struct spdy_frame f;
    ssize_t n = spdy_frame_parse(data + off, size - off, 1 << 16, &f);
    if (n <= 0)
      break;
    if ((size_t)n > size - off || f.len > (size_t)n)
      abort();
    off += (size_t)n;
    if (!f.control)
      continue;
    size_t skip = f.type == SPDY_SYN_STREAM ? 10 : f.type == SPDY_SYN_REPLY || f.type == SPDY_HEADERS ? 4 : 0;
    if (!skip || f.len < skip)
      continue;
    struct spdy_headers h = {0};
    err_t *e = NULL;
    int rc = spdy_zin_headers(z, f.payload + skip, f.len - skip, &h, &e);
    if (rc == 0)
      roundtrip(&h);
    spdy_headers_clear(&h);
    err_free(&e);
    if (rc < 0)
      break;   /* the server ends the session: the inflater state is gone */
  }
  spdy_zin_free(z);
  return 0;
}
