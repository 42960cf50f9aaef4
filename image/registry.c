/* registry.c - the distribution protocol: endpoints in order, /v2/ ping, auth,
 * retries with backoff, manifest and blob requests with digest checks. The HTTP
 * exchange itself is registry_http.c. */
#include "image/registry.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "image/manifest.h"
#include "image/registry_internal.h"

#define PING_TTL_S 600.0      /* a registry's auth setup rarely changes; re-ask now and then */
#define CACHE_MAX 256
#define PING_BODY_MAX ((size_t)64 << 10)
#define TOKEN_BODY_MAX ((size_t)1 << 20)

struct registry {
  struct registry_opts o;     /* points into the copies below */
  struct registry_mirror_conf *mirrors;
  char **insecure;
  char *auth_file;
  int retries;
  long retry_delay_ms;
  struct regcache *pings;     /* endpoint base -> WWW-Authenticate of /v2/ ("" when open) */
  struct regcache *tokens;    /* base \n scope \n credential id -> bearer token */
};

/* One operation: a manifest or a blob, over all endpoints. */
struct op {
  struct registry *r;
  const char *domain;
  const char *path;
  const struct registry_io *io;
  struct registry_auth auth;
  char cred_id[20];           /* tokens are cached per credentials, never shared across them */
  bool stop;                  /* the consumer failed: no retry, no other endpoint */
};

static void http_response_cleanup(struct http_response *rs) { http_response_clear(rs); }
#define cleanup_response __attribute__((cleanup(http_response_cleanup)))

/* ---- construction ------------------------------------------------------- */

static char **copy_strv(const char *const *v, size_t n)
{
  char **c = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    c[i] = xstrdup(v[i]);
  return c;
}

static void free_strv(char **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

int registry_new(const struct registry_opts *o, struct registry **out, err_t **e)
{
  static const struct registry_opts none = {0};
  if (registry_global_init(e) < 0)
    return -1;
  o = o ? o : &none;
  struct registry *r = xcalloc(1, sizeof(*r));
  r->o = *o;
  r->mirrors = xcalloc(o->n_mirrors + 1, sizeof(*r->mirrors));
  for (size_t i = 0; i < o->n_mirrors; i++) {
    r->mirrors[i].host = xstrdup(o->mirrors[i].host);
    char **eps = copy_strv(o->mirrors[i].endpoints, o->mirrors[i].n);
    r->mirrors[i].endpoints = (const char *const *)eps;
    r->mirrors[i].n = o->mirrors[i].n;
  }
  r->o.mirrors = r->mirrors;
  r->insecure = copy_strv(o->insecure, o->n_insecure);
  r->o.insecure = (const char *const *)r->insecure;
  r->auth_file = xstrdup(o->auth_file);
  r->o.auth_file = r->auth_file;
  r->retries = o->retries == 0 ? 3 : o->retries < 0 ? 0 : o->retries;
  r->retry_delay_ms = o->retry_delay_ms > 0 ? o->retry_delay_ms : 500;
  r->pings = regcache_new(CACHE_MAX);
  r->tokens = regcache_new(CACHE_MAX);
  *out = r;
  return 0;
}

void registry_free(struct registry *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->o.n_mirrors; i++) {
    free((char *)r->mirrors[i].host);
    free_strv((char **)r->mirrors[i].endpoints, r->mirrors[i].n);
  }
  free(r->mirrors);
  free_strv(r->insecure, r->o.n_insecure);
  free(r->auth_file);
  regcache_free(r->pings);
  regcache_free(r->tokens);
  free(r);
}

void registry_manifest_clear(struct registry_manifest *m)
{
  free(m->body);
  free(m->media_type);
  free(m->digest);
  memset(m, 0, sizeof(*m));
}

/* ---- small helpers ------------------------------------------------------ */

static void digest_string(EVP_MD_CTX *md, char out[72])
{
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(md, sum, &len);
  memcpy(out, "sha256:", 7);
  for (unsigned i = 0; i < 32 && i < len; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", sum[i]);
  out[71] = '\0';
}

static void sha256_of(const void *p, size_t n, char out[72])
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md)
    abort();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  EVP_DigestUpdate(md, p, n);
  digest_string(md, out);
  EVP_MD_CTX_free(md);
}

static bool op_cancelled(const struct op *op)
{
  return op->io && op->io->cancelled && op->io->cancelled(op->io->arg);
}

/* Sleeps ms, waking every 50 ms to honour cancellation. */
static int backoff(const struct op *op, long ms, err_t **e)
{
  while (ms > 0) {
    if (op_cancelled(op))
      return err_set(e, ERR_CANCELLED, 0, "cancelled");
    long step = ms < 50 ? ms : 50;
    struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
  return 0;
}

static bool path_valid(const char *p)
{
  if (!p || !*p || strlen(p) > 255)
    return false;
  for (const char *c = p; *c;) {
    size_t n = strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789._-");
    if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
      return false;
    c += n;
    if (*c == '/' && c[1])
      c++;
    else if (*c)
      return false;
  }
  return true;
}

static bool tag_valid(const char *t)
{
  size_t n = strlen(t);
  return n > 0 && n <= 128 && t[0] != '.' && t[0] != '-' &&
         strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static struct http_request base_request(const struct op *op, const char *url)
{
  return (struct http_request){
    .url = url,
    .io = op->io,
    .connect_timeout_s = op->r->o.connect_timeout_s,
    .low_speed_time_s = op->r->o.low_speed_time_s,
  };
}

/* ---- operation setup ---------------------------------------------------- */

static void cred_id(struct op *op)
{
  const struct registry_auth *a = &op->auth;
  if (registry_auth_empty(a)) {
    snprintf(op->cred_id, sizeof(op->cred_id), "anon");
    return;
  }
  struct buf b = BUF_INIT;
  const char *parts[] = {a->username, a->password, a->identity_token, a->registry_token};
  for (size_t i = 0; i < 4; i++) {
    buf_puts(&b, parts[i] ? parts[i] : "");
    buf_putc(&b, '\n');
  }
  char d[72];
  sha256_of(b.data, b.len, d);
  buf_free(&b);
  snprintf(op->cred_id, sizeof(op->cred_id), "%.16s", d + 7);
}

static int op_init(struct op *op, struct registry *r, const char *domain, const char *path,
                   const struct registry_creds *c, const struct registry_io *io, err_t **e)
{
  *op = (struct op){.r = r, .domain = domain, .path = path, .io = io};
  if (!path_valid(path))
    return err_set(e, ERR_INVALID, 0, "invalid repository path \"%.300s\"", path ? path : "");
  if (registry_auth_from_creds(c, &op->auth, e) < 0)
    return err_wrap(e, "credentials for %s", domain);
  if (registry_auth_empty(&op->auth) && r->auth_file) {
    err_t *fe = NULL;
    registry_auth_clear(&op->auth);
    if (registry_auth_file_lookup(r->auth_file, domain, &op->auth, &fe) < 0) {
      if (fe->code != ERR_NOT_FOUND) {
        err_free(e);
        *e = fe;
        return err_wrap(e, "registry auth file");
      }
      err_free(&fe);
    }
  }
  cred_id(op);
  if (op_cancelled(op))
    return err_set(e, ERR_CANCELLED, 0, "cancelled");
  return 0;
}

/* ---- one request: retries, ping, auth ----------------------------------- */

/* Runs rq with retries on transient failures, 5xx and 429. before() runs ahead
 * of every attempt (a blob consumer's restart). */
static int exchange(struct op *op, const struct http_request *rq, struct http_response *rs,
                    int (*before)(void *arg, err_t **e), void *arg, err_t **e)
{
  for (int attempt = 0;; attempt++) {
    if (op_cancelled(op))
      return err_set(e, ERR_CANCELLED, 0, "cancelled");
    if (before && before(arg, e) < 0)
      return -1;
    err_t *te = NULL;
    int rc = http_do(rq, rs, &te);
    bool again = rc < 0 ? rs->retryable : (rs->status >= 500 || rs->status == 429);
    if (op->stop || !again || attempt >= op->r->retries) {
      if (rc < 0 && e) {
        err_free(e);
        *e = te;
      } else {
        err_free(&te);
      }
      return rc;
    }
    err_free(&te);
    if (backoff(op, op->r->retry_delay_ms << attempt, e) < 0)
      return -1;
  }
}

/* The endpoint's WWW-Authenticate challenge for /v2/ ("" when open). */
static int ping(struct op *op, const struct registry_endpoint *ep, char **chal, err_t **e)
{
  char *cached = regcache_get(op->r->pings, ep->base);
  if (cached) {
    *chal = cached;
    return 0;
  }
  cleanup_free char *url = xasprintf("%s/v2/", ep->base);
  struct http_request rq = base_request(op, url);
  rq.max_body = PING_BODY_MAX;
  cleanup_response struct http_response rs = {0};
  if (exchange(op, &rq, &rs, NULL, NULL, e) < 0)
    return -1;
  const char *c;
  if (rs.status >= 200 && rs.status < 300)
    c = "";
  else if (rs.status == 401)
    c = rs.www_authenticate ? rs.www_authenticate : "Basic realm=\"registry\"";
  else
    return err_set(e, ERR_UNAVAILABLE, 0, "GET /v2/ answered HTTP %ld: not a registry API",
                   rs.status);
  regcache_put(op->r->pings, ep->base, c, PING_TTL_S);
  *chal = xstrdup(c);
  return 0;
}

/* A realm over plain http is only acceptable from an endpoint that is itself http. */
static int check_realm(const struct registry_endpoint *ep, const char *realm, err_t **e)
{
  if (strncasecmp(realm, "https://", 8) == 0)
    return 0;
  if (strncasecmp(realm, "http://", 7) == 0 && strncasecmp(ep->base, "http://", 7) == 0)
    return 0;
  return err_set(e, ERR_UNAVAILABLE, 0, "token realm \"%.200s\" is not an https URL", realm);
}

static char *token_query(const struct op *op, const struct auth_challenge *ch, const char *scope)
{
  struct buf q = BUF_INIT;
  cleanup_free char *esc_scope = registry_url_escape(scope);
  if (ch->service) {
    cleanup_free char *s = registry_url_escape(ch->service);
    buf_printf(&q, "service=%s&", s);
  }
  buf_printf(&q, "scope=%s", esc_scope);
  if (op->auth.identity_token) {
    cleanup_free char *t = registry_url_escape(op->auth.identity_token);
    buf_printf(&q, "&grant_type=refresh_token&client_id=crisp&refresh_token=%s", t);
  }
  return buf_steal(&q);
}

static int fetch_token(struct op *op, const struct registry_endpoint *ep,
                       const struct auth_challenge *ch, const char *scope, char **token,
                       long *expires_in, err_t **e)
{
  if (check_realm(ep, ch->realm, e) < 0)
    return -1;
  cleanup_free char *query = token_query(op, ch, scope);
  cleanup_free char *url = NULL;
  if (op->auth.identity_token)
    url = xstrdup(ch->realm);   /* OAuth2: the refresh token travels in a POST body */
  else
    url = xasprintf("%s%c%s", ch->realm, strchr(ch->realm, '?') ? '&' : '?', query);
  struct http_request rq = base_request(op, url);
  rq.max_body = TOKEN_BODY_MAX;
  rq.post_form = op->auth.identity_token ? query : NULL;
  if (op->auth.username && !op->auth.identity_token) {
    rq.auth = HTTP_AUTH_BASIC;
    rq.user = op->auth.username;
    rq.password = op->auth.password;
  }
  cleanup_response struct http_response rs = {0};
  if (exchange(op, &rq, &rs, NULL, NULL, e) < 0)
    return err_wrap(e, "token server %s", ch->realm);
  if (rs.status == 401 || rs.status == 403)
    return err_set(e, ERR_PERMISSION, 0, "token server %s refused %s (HTTP %ld)", ch->realm,
                   registry_auth_empty(&op->auth) ? "anonymous access" : "the credentials",
                   rs.status);
  if (rs.status != 200)
    return err_set(e, ERR_UNAVAILABLE, 0, "token server %s answered HTTP %ld", ch->realm,
                   rs.status);
  return registry_parse_token_response(rs.body.data, rs.body.len, token, expires_in, e);
}

/* Sets rq's credentials for the endpoint's challenge; *hold keeps a token alive. */
static int authorize(struct op *op, const struct registry_endpoint *ep, const char *chal,
                     bool fresh, struct http_request *rq, char **hold, err_t **e)
{
  struct auth_challenge ch;
  if (op->auth.registry_token) {
    rq->auth = HTTP_AUTH_BEARER;
    rq->token = op->auth.registry_token;
    return 0;
  }
  if (registry_parse_challenge(chal, &ch, e) < 0)
    return -1;
  int ret = 0;
  if (ch.scheme == AUTH_BASIC && op->auth.username) {
    rq->auth = HTTP_AUTH_BASIC;
    rq->user = op->auth.username;
    rq->password = op->auth.password;
  } else if (ch.scheme == AUTH_BEARER) {
    cleanup_free char *scope = xasprintf("repository:%s:pull", op->path);
    cleanup_free char *key = xasprintf("%s\n%s\n%s", ep->base, scope, op->cred_id);
    long ttl = 0;
    free(*hold);
    *hold = fresh ? NULL : regcache_get(op->r->tokens, key);
    if (!*hold && (ret = fetch_token(op, ep, &ch, scope, hold, &ttl, e)) == 0)
      regcache_put(op->r->tokens, key, *hold, ttl > 20 ? (double)ttl - 10 : (double)ttl / 2);
    rq->auth = HTTP_AUTH_BEARER;
    rq->token = *hold;
  }
  auth_challenge_clear(&ch);
  return ret;
}

/* Ping, authorise and run rq on one endpoint; a 401 gets one more try with a
 * fresh token and the challenge of that 401 (tokens can expire early, and some
 * registries only announce auth on the resource). */
static int ep_request(struct op *op, const struct registry_endpoint *ep, struct http_request *rq,
                      struct http_response *rs, int (*before)(void *, err_t **), void *arg,
                      err_t **e)
{
  cleanup_free char *chal = NULL;
  cleanup_free char *tok = NULL;
  if (ping(op, ep, &chal, e) < 0 || authorize(op, ep, chal, false, rq, &tok, e) < 0)
    return err_wrap(e, "%s", ep->base);
  if (exchange(op, rq, rs, before, arg, e) < 0)
    return op->stop ? -1 : err_wrap(e, "%s", ep->base);
  if (rs->status != 401 || !rs->www_authenticate || op->auth.registry_token)
    return 0;
  cleanup_free char *again = xstrdup(rs->www_authenticate);
  regcache_put(op->r->pings, ep->base, again, PING_TTL_S);
  enum http_auth sent = rq->auth;
  rq->auth = HTTP_AUTH_NONE;
  if (authorize(op, ep, again, true, rq, &tok, e) < 0)
    return err_wrap(e, "%s", ep->base);
  /* nothing new to offer: the same Basic credentials, or none at all */
  if (rq->auth == HTTP_AUTH_NONE || (rq->auth == HTTP_AUTH_BASIC && sent == HTTP_AUTH_BASIC))
    return 0;
  if (exchange(op, rq, rs, before, arg, e) < 0)
    return op->stop ? -1 : err_wrap(e, "%s", ep->base);
  return 0;
}

static int status_error(const struct op *op, const struct registry_endpoint *ep,
                        const char *what, const struct http_response *rs, err_t **e)
{
  cleanup_free char *why = registry_error_summary(rs->body.data, rs->body.len);
  cleanup_free char *sfx = why ? xasprintf(" (%s)", why) : xstrdup("");
  long s = rs->status;
  if (s == 401 || s == 403)
    return err_set(e, ERR_PERMISSION, 0,
                   "pull access denied for %s/%s at %s: HTTP %ld%s; the repository does not "
                   "exist or needs credentials",
                   op->domain, op->path, ep->base, s, sfx);
  if (s == 404)
    return err_set(e, ERR_NOT_FOUND, 0, "%s not found in registry %s%s", what, ep->base, sfx);
  if (s == 429)
    return err_set(e, ERR_UNAVAILABLE, 0, "%s: rate limited (HTTP 429)%s", ep->base, sfx);
  if (s == 400)
    return err_set(e, ERR_INVALID, 0, "%s refused the request for %s: HTTP 400%s", ep->base,
                   what, sfx);
  return err_set(e, ERR_UNAVAILABLE, 0, "%s answered HTTP %ld for %s%s", ep->base, s, what,
                 sfx);
}

/* ---- endpoints in order ------------------------------------------------- */

typedef int (*attempt_fn)(struct op *op, const struct registry_endpoint *ep, void *ctx,
                          err_t **e);

/* Tries fn on each endpoint until one succeeds. The final error has the last
 * endpoint's code and lists what went wrong on the others. */
static int over_endpoints(struct op *op, attempt_fn fn, void *ctx, err_t **e)
{
  struct registry_endpoints eps = {NULL, 0};
  if (registry_resolve_endpoints(&op->r->o, op->domain, &eps, e) < 0)
    return -1;
  cleanup_buf struct buf tried = BUF_INIT;
  int ret = -1;
  for (size_t i = 0; i < eps.n; i++) {
    err_t *ee = NULL;
    if (fn(op, &eps.v[i], ctx, &ee) == 0) {
      ret = 0;
      break;
    }
    if (ee->code == ERR_CANCELLED || op->stop || i + 1 == eps.n) {
      if (tried.len && ee->code != ERR_CANCELLED && !op->stop)
        err_set(e, ee->code, ee->sys_errno, "%s (also tried: %s)", ee->msg, buf_str(&tried));
      else if (e) {
        err_free(e);
        *e = steal(&ee);
      }
      err_free(&ee);
      break;
    }
    buf_printf(&tried, "%s%s", tried.len ? "; " : "", ee->msg);
    err_free(&ee);
  }
  registry_endpoints_clear(&eps);
  return ret;
}

/* ---- manifests ---------------------------------------------------------- */

struct manifest_ctx {
  const char *ref;
  bool by_digest;
  struct registry_manifest *out;
};

static int manifest_verify(const struct manifest_ctx *m, struct http_response *rs, err_t **e)
{
  char got[72];
  sha256_of(rs->body.data ? rs->body.data : "", rs->body.len, got);
  if (m->by_digest && strcmp(got, m->ref) != 0)
    return err_set(e, ERR_INVALID, 0, "manifest %s digest mismatch: got %s", m->ref, got);
  const char *dcd = rs->docker_digest;
  if (dcd && strncmp(dcd, "sha256:", 7) == 0 && strcmp(dcd, got) != 0)
    return err_set(e, ERR_INVALID, 0,
                   "manifest %s: Docker-Content-Digest %.80s does not match the body (%s)",
                   m->ref, dcd, got);
  struct registry_manifest *out = m->out;
  out->len = rs->body.len;
  out->body = rs->body.data ? buf_steal(&rs->body) : xstrdup("");
  out->digest = xstrdup(got);
  if (rs->content_type) {
    size_t n = strcspn(rs->content_type, "; \t");
    out->media_type = n ? xstrndup(rs->content_type, n) : NULL;
  }
  return 0;
}

static int manifest_attempt(struct op *op, const struct registry_endpoint *ep, void *ctx,
                            err_t **e)
{
  struct manifest_ctx *m = ctx;
  cleanup_free char *url = xasprintf("%s/v2/%s/manifests/%s", ep->base, op->path, m->ref);
  struct http_request rq = base_request(op, url);
  rq.accept = MANIFEST_ACCEPT;
  rq.max_body = MANIFEST_MAX_SIZE;
  cleanup_response struct http_response rs = {0};
  if (ep_request(op, ep, &rq, &rs, NULL, NULL, e) < 0)
    return -1;
  if (rs.status != 200) {
    cleanup_free char *what = xasprintf("image %s/%s%c%s", op->domain, op->path,
                                        m->by_digest ? '@' : ':', m->ref);
    return status_error(op, ep, what, &rs, e);
  }
  if (manifest_verify(m, &rs, e) < 0)
    return err_wrap(e, "%s", ep->base);
  return 0;
}

int registry_get_manifest(struct registry *r, const char *domain, const char *path,
                          const char *ref, const struct registry_creds *c,
                          const struct registry_io *io, struct registry_manifest *out,
                          err_t **e)
{
  struct op op;
  memset(out, 0, sizeof(*out));
  bool by_digest = ref && manifest_digest_valid(ref);
  if (!ref || (!by_digest && !tag_valid(ref)))
    return err_set(e, ERR_INVALID, 0, "invalid tag or digest \"%.200s\"", ref ? ref : "");
  int ret = op_init(&op, r, domain, path, c, io, e);
  struct manifest_ctx m = {.ref = ref, .by_digest = by_digest, .out = out};
  if (ret == 0)
    ret = over_endpoints(&op, manifest_attempt, &m, e);
  registry_auth_clear(&op.auth);
  if (ret < 0)
    registry_manifest_clear(out);
  return ret;
}

/* ---- blobs -------------------------------------------------------------- */

struct blob_ctx {
  struct op *op;
  const char *digest;
  int64_t size;
  const struct registry_sink *sink;
  EVP_MD_CTX *md;
  uint64_t got;
};

static int blob_write(void *arg, const void *p, size_t n, err_t **e)
{
  struct blob_ctx *b = arg;
  b->got += n;
  if (b->size >= 0 && b->got > (uint64_t)b->size)
    return err_set(e, ERR_INVALID, 0, "blob %s is larger than its declared %lld bytes",
                   b->digest, (long long)b->size);
  EVP_DigestUpdate(b->md, p, n);
  if (b->sink->write(b->sink->arg, p, n, e) < 0) {
    b->op->stop = true;
    return -1;
  }
  return 0;
}

/* Before each attempt: if bytes went out, the consumer starts over. */
static int blob_restart(void *arg, err_t **e)
{
  struct blob_ctx *b = arg;
  if (b->got > 0) {
    if (!b->sink->restart) {
      b->op->stop = true;
      return err_set(e, ERR_UNAVAILABLE, 0,
                     "blob %s: transfer broke after %llu bytes and the consumer cannot restart",
                     b->digest, (unsigned long long)b->got);
    }
    if (b->sink->restart(b->sink->arg, e) < 0) {
      b->op->stop = true;
      return -1;
    }
  }
  b->got = 0;
  EVP_DigestInit_ex(b->md, EVP_sha256(), NULL);
  return 0;
}

static int blob_attempt(struct op *op, const struct registry_endpoint *ep, void *ctx, err_t **e)
{
  struct blob_ctx *b = ctx;
  cleanup_free char *url = xasprintf("%s/v2/%s/blobs/%s", ep->base, op->path, b->digest);
  struct http_request rq = base_request(op, url);
  rq.sink = blob_write;
  rq.sink_arg = b;
  rq.progress_total = b->size > 0 ? (uint64_t)b->size : 0;
  cleanup_response struct http_response rs = {0};
  if (ep_request(op, ep, &rq, &rs, blob_restart, b, e) < 0)
    return -1;
  if (rs.status != 200) {
    cleanup_free char *what = xasprintf("blob %s of %s/%s", b->digest, op->domain, op->path);
    return status_error(op, ep, what, &rs, e);
  }
  char got[72];
  digest_string(b->md, got);
  if (strcmp(got, b->digest) != 0)
    return err_set(e, ERR_INVALID, 0, "%s: blob %s digest mismatch: got %s", ep->base,
                   b->digest, got);
  if (b->size >= 0 && b->got != (uint64_t)b->size)
    return err_set(e, ERR_INVALID, 0, "%s: blob %s size mismatch: got %llu bytes, want %lld",
                   ep->base, b->digest, (unsigned long long)b->got, (long long)b->size);
  return 0;
}

int registry_get_blob(struct registry *r, const char *domain, const char *path,
                      const char *digest, int64_t size, const struct registry_creds *c,
                      const struct registry_io *io, const struct registry_sink *sink,
                      err_t **e)
{
  if (!manifest_digest_valid(digest))
    return err_set(e, ERR_INVALID, 0, "invalid blob digest \"%.100s\"", digest ? digest : "");
  if (!sink || !sink->write)
    return err_set(e, ERR_INVALID, 0, "blob %s: no sink", digest);
  struct op op;
  int ret = op_init(&op, r, domain, path, c, io, e);
  struct blob_ctx b = {.op = &op, .digest = digest, .size = size, .sink = sink};
  b.md = EVP_MD_CTX_new();
  if (!b.md)
    abort();
  EVP_DigestInit_ex(b.md, EVP_sha256(), NULL);
  if (ret == 0)
    ret = over_endpoints(&op, blob_attempt, &b, e);
  EVP_MD_CTX_free(b.md);
  registry_auth_clear(&op.auth);
  return ret;
}
