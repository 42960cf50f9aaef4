/* stream_spdy_frame.h - SPDY/3 framing and header blocks (zlib with the SPDY
 * dictionary), the wire format under Kubernetes' "SPDY/3.1" upgrade.
 *
 * Frames are parsed from and appended to plain buffers; the zlib streams are one
 * per direction per connection, so a spdy_zin/spdy_zout must see every header
 * block of its direction in order. Not thread-safe per object. */
#ifndef CRISP_CRI_STREAM_SPDY_FRAME_H
#define CRISP_CRI_STREAM_SPDY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"

#define STREAM_SPDY_DICT_LEN 1423
extern const unsigned char stream_spdy_dict[STREAM_SPDY_DICT_LEN];

#define SPDY_VERSION 3
#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02
#define SPDY_SETTINGS_INITIAL_WINDOW_SIZE 7
#define SPDY_DEFAULT_WINDOW 65536
#define SPDY_MAX_WINDOW 0x7fffffff

enum spdy_type {
  SPDY_SYN_STREAM = 1, SPDY_SYN_REPLY = 2, SPDY_RST_STREAM = 3, SPDY_SETTINGS = 4,
  SPDY_PING = 6, SPDY_GOAWAY = 7, SPDY_HEADERS = 8, SPDY_WINDOW_UPDATE = 9,
};

enum spdy_status {
  SPDY_PROTOCOL_ERROR = 1, SPDY_INVALID_STREAM = 2, SPDY_REFUSED_STREAM = 3,
  SPDY_UNSUPPORTED_VERSION = 4, SPDY_CANCEL = 5, SPDY_INTERNAL_ERROR = 6,
  SPDY_FLOW_CONTROL_ERROR = 7, SPDY_STREAM_IN_USE = 8, SPDY_STREAM_ALREADY_CLOSED = 9,
};

struct spdy_frame {
  bool control;
  uint16_t version;      /* control frames */
  uint16_t type;         /* control frames */
  uint32_t stream_id;    /* data frames */
  uint8_t flags;
  uint32_t len;
  const uint8_t *payload;
};

/* One frame from p[0..n): bytes used (> 0), 0 when incomplete, -1 when the length
 * exceeds max_payload (the caller ends the session). */
ssize_t spdy_frame_parse(const uint8_t *p, size_t n, size_t max_payload, struct spdy_frame *f);

static inline uint32_t spdy_u32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void spdy_put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* The 8-byte header of a control or data frame. */
void spdy_control_header(uint8_t h[8], uint16_t type, uint8_t flags, uint32_t len);
void spdy_data_header(uint8_t h[8], uint32_t stream_id, uint8_t flags, uint32_t len);
/* Appends a whole control frame. */
void spdy_put_control(struct buf *out, uint16_t type, uint8_t flags, const void *payload, size_t len);
/* RST_STREAM, WINDOW_UPDATE, GOAWAY and PING frames (appended). */
void spdy_put_rst(struct buf *out, uint32_t stream_id, uint32_t status);
void spdy_put_window_update(struct buf *out, uint32_t stream_id, uint32_t delta);
void spdy_put_goaway(struct buf *out, uint32_t last_stream_id, uint32_t status);
void spdy_put_ping(struct buf *out, uint32_t id);

struct spdy_hdr {
  char *name;            /* lower case */
  char *value;           /* NUL-separated values: as a C string, the first one */
};
struct spdy_headers {
  struct spdy_hdr *v;
  size_t n;
};
const char *spdy_headers_get(const struct spdy_headers *h, const char *name);
void spdy_headers_clear(struct spdy_headers *h);

struct spdy_zin;
struct spdy_zout;
struct spdy_zin *spdy_zin_new(void);
void spdy_zin_free(struct spdy_zin *z);
/* Inflates and parses one header block. Any error is a session error: the shared
 * zlib state can no longer be trusted. */
int spdy_zin_headers(struct spdy_zin *z, const uint8_t *p, size_t n, struct spdy_headers *out,
                     err_t **e);
/* window_bits 9..15: what the compressor keeps (the spec suggests 11 for headers). */
struct spdy_zout *spdy_zout_new(int window_bits);
void spdy_zout_free(struct spdy_zout *z);
/* Appends the compressed header block for h[0..n) (sync-flushed). */
int spdy_zout_headers(struct spdy_zout *z, const struct spdy_hdr *h, size_t n, struct buf *out,
                      err_t **e);

#endif
