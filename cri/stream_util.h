/* stream_util.h - small codecs the streaming protocols need: SHA-1 (the WebSocket
 * accept key, RFC 6455 4.2.2), base64 (that key, the base64.channel.k8s.io
 * subprotocols, tokens) and UTF-8 validation (WebSocket text frames).
 * Pure functions, thread-safe. SHA-1 is here rather than from libcrypto so the
 * static crispd does not initialise OpenSSL for a handshake. */
#ifndef CRISP_CRI_STREAM_UTIL_H
#define CRISP_CRI_STREAM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SHA1_LEN 20
void stream_sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);

/* Appends the base64 of data to out: standard alphabet with padding, or the
 * URL-safe one without (tokens). */
void stream_b64_encode(struct buf *out, const void *data, size_t len, bool url);
/* Decodes into out (appended). Standard alphabet needs correct padding, the
 * URL-safe one takes none. -1 for any other character or a bad length. */
int stream_b64_decode(struct buf *out, const char *s, size_t len, bool url);

/* true if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool stream_utf8_valid(const uint8_t *s, size_t len);

/* "Sec-WebSocket-Accept" for a client key: base64(sha1(key + GUID)). Caller frees. */
char *stream_ws_accept_key(const char *key);

#endif
