/* stream_token.h - the single-use tokens behind streaming URLs.
 *
 * A token is 16 random bytes (base64url, 22 characters) naming one pending
 * request: its kind, its options and the back end's request data. Taking a token
 * removes it; tokens expire after ttl_ms; at most max are outstanding. The table
 * owns the request data until taken, and frees it on expiry or on free.
 * Thread-safe (one mutex). Lookups compare every entry in constant time, so the
 * time an answer takes says nothing about how close a guess was. */
#ifndef CRISP_CRI_STREAM_TOKEN_H
#define CRISP_CRI_STREAM_TOKEN_H

#include <stdint.h>

#include "base/err.h"
#include "cri/stream_server.h"

#define STREAM_TOKEN_BYTES 16
#define STREAM_TOKEN_CHARS 22

struct stream_token_req {
  enum stream_kind kind;
  struct stream_opts opts;   /* ports owned (free with stream_opts_clear) */
  void *req;
  void (*req_free)(void *);
};

struct stream_tokens;

struct stream_tokens *stream_tokens_new(unsigned max, unsigned ttl_ms);
void stream_tokens_free(struct stream_tokens *t);

/* Stores r (taking ownership of everything in it, even on failure) and writes the
 * token to tok. ERR_RESOURCE when max are outstanding after dropping expired ones. */
int stream_tokens_add(struct stream_tokens *t, int64_t now_ms, struct stream_token_req *r,
                      char tok[STREAM_TOKEN_CHARS + 1], err_t **e);
/* Removes the token and hands its request to *out. -1 if unknown or expired. */
int stream_tokens_take(struct stream_tokens *t, int64_t now_ms, const char *tok,
                       struct stream_token_req *out);
/* Outstanding (unexpired as of the last add/take) tokens, for tests. */
unsigned stream_tokens_count(struct stream_tokens *t);

void stream_opts_clear(struct stream_opts *o);
void stream_token_req_release(struct stream_token_req *r);

#endif
