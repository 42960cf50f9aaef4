#include "cri/stream_token.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "cri/stream_util.h"

struct entry {
  uint8_t tok[STREAM_TOKEN_BYTES];
  int64_t expires_ms;
  struct stream_token_req r;
};

struct stream_tokens {
  pthread_mutex_t mu;
  struct entry *v;
  size_t n;
  unsigned max, ttl_ms;
};

void stream_opts_clear(struct stream_opts *o)
{
  free((void *)o->ports);
  o->ports = NULL;
  o->n_ports = 0;
}

void stream_token_req_release(struct stream_token_req *r)
{
  stream_opts_clear(&r->opts);
  if (r->req_free && r->req)
    r->req_free(r->req);
  r->req = NULL;
}

struct stream_tokens *stream_tokens_new(unsigned max, unsigned ttl_ms)
{
  struct stream_tokens *t = xcalloc(1, sizeof(*t));
  pthread_mutex_init(&t->mu, NULL);
  t->max = max;
  t->ttl_ms = ttl_ms;
  return t;
}

void stream_tokens_free(struct stream_tokens *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    stream_token_req_release(&t->v[i].r);
  free(t->v);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* With mu. Moves the last entry into slot i. */
static void drop(struct stream_tokens *t, size_t i)
{
  t->v[i] = t->v[--t->n];
}

/* With mu; the request data is released by the caller after unlocking. */
static size_t collect_expired(struct stream_tokens *t, int64_t now, struct stream_token_req **gone)
{
  size_t n = 0;
  for (size_t i = 0; i < t->n;) {
    if (t->v[i].expires_ms > now) {
      i++;
      continue;
    }
    *gone = xreallocarray(*gone, n + 1, sizeof(**gone));
    (*gone)[n++] = t->v[i].r;
    drop(t, i);
  }
  return n;
}

static void release_all(struct stream_token_req *gone, size_t n)
{
  for (size_t i = 0; i < n; i++)
    stream_token_req_release(&gone[i]);
  free(gone);
}

static int random_bytes(uint8_t *p, size_t n, err_t **e)
{
  while (n) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return err_sys(e, errno, "getrandom");
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int stream_tokens_add(struct stream_tokens *t, int64_t now_ms, struct stream_token_req *r,
                      char tok[STREAM_TOKEN_CHARS + 1], err_t **e)
{
  struct entry ent = {.expires_ms = now_ms + t->ttl_ms, .r = *r};
  memset(r, 0, sizeof(*r));
  if (random_bytes(ent.tok, sizeof(ent.tok), e) < 0) {
    stream_token_req_release(&ent.r);
    return -1;
  }
  struct stream_token_req *gone = NULL;
  pthread_mutex_lock(&t->mu);
  size_t n_gone = collect_expired(t, now_ms, &gone);
  bool full = t->n >= t->max;
  if (!full) {
    t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
    t->v[t->n++] = ent;
  }
  pthread_mutex_unlock(&t->mu);
  release_all(gone, n_gone);
  if (full) {
    stream_token_req_release(&ent.r);
    return err_set(e, ERR_RESOURCE, 0, "%u streaming requests are already waiting for their client",
                   t->max);
  }
  struct buf b = BUF_INIT;
  stream_b64_encode(&b, ent.tok, sizeof(ent.tok), true);
  memcpy(tok, b.data, STREAM_TOKEN_CHARS + 1);
  buf_free(&b);
  return 0;
}

static bool same_token(const uint8_t *a, const uint8_t *b)
{
  uint8_t diff = 0;
  for (size_t i = 0; i < STREAM_TOKEN_BYTES; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

int stream_tokens_take(struct stream_tokens *t, int64_t now_ms, const char *tok,
                       struct stream_token_req *out)
{
  struct buf raw = BUF_INIT;
  size_t len = strlen(tok);
  bool ok = len == STREAM_TOKEN_CHARS && stream_b64_decode(&raw, tok, len, true) == 0 &&
            raw.len == STREAM_TOKEN_BYTES;
  uint8_t want[STREAM_TOKEN_BYTES] = {0};
  if (ok)
    memcpy(want, raw.data, STREAM_TOKEN_BYTES);
  buf_free(&raw);
  struct stream_token_req *gone = NULL;
  pthread_mutex_lock(&t->mu);
  size_t n_gone = collect_expired(t, now_ms, &gone);
  size_t hit = t->n;
  for (size_t i = 0; i < t->n; i++)   /* no early exit: constant time */
    if (same_token(t->v[i].tok, want) && ok)
      hit = i;
  bool found = hit < t->n;
  if (found) {
    *out = t->v[hit].r;
    drop(t, hit);
  }
  pthread_mutex_unlock(&t->mu);
  release_all(gone, n_gone);
  return found ? 0 : -1;
}

unsigned stream_tokens_count(struct stream_tokens *t)
{
  pthread_mutex_lock(&t->mu);
  unsigned n = (unsigned)t->n;
  pthread_mutex_unlock(&t->mu);
  return n;
}
