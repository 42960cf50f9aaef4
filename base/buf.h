/* buf.h - a growable byte buffer, always NUL-terminated so it can be used as a string.
 * A zero-initialised struct buf is an empty buffer. Not thread-safe. */
#ifndef CRISP_BASE_BUF_H
#define CRISP_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
  char *data;   /* NULL until the first append */
  size_t len;
  size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...);
/* Appends s as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);
void buf_reset(struct buf *b);          /* len = 0, memory kept */
void buf_free(struct buf *b);           /* releases memory, leaves an empty buffer */
char *buf_steal(struct buf *b);         /* returns the string (never NULL), leaves an empty buffer */
const char *buf_str(const struct buf *b); /* "" for an empty buffer */

static inline void cleanup_buf_fn(struct buf *b) { buf_free(b); }
#define cleanup_buf __attribute__((cleanup(cleanup_buf_fn)))

#endif
