#include "fakereg.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "image/manifest.h"

void fakereg_sha256(const void *p, size_t n, char out[72])
{
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
  memcpy(out, "sha256:", 7);
  for (unsigned i = 0; i < 32; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static void set_str(char **slot, char *v)
{
  free(*slot);
  *slot = v;
}

static void challenge(struct freg *f, struct fake_resp *rs)
{
  rs->status = 401;
  if (f->auth == FA_BASIC)
    buf_puts(&rs->headers, "WWW-Authenticate: Basic realm=\"fake\"\r\n");
  else
    buf_printf(&rs->headers,
               "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\","
               "service=\"fake-registry\",scope=\"registry:catalog:*\"\r\n",
               f->port);
  buf_puts(&rs->body, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
                      "required\"}]}");
}

static bool basic_ok(const struct freg *f, const char *authz)
{
  if (!f->user)
    return true;
  cleanup_free char *up = xasprintf("%s:%s", f->user, f->pass);
  cleanup_free char *enc = fakehttp_base64(up);
  cleanup_free char *want = xasprintf("Basic %s", enc);
  return authz && strcmp(authz, want) == 0;
}

static bool authorized(const struct freg *f, const char *authz)
{
  if (f->auth == FA_OPEN)
    return true;
  if (f->auth == FA_BASIC)
    return authz && strncmp(authz, "Basic ", 6) == 0 && basic_ok(f, authz);
  return authz && strncmp(authz, "Bearer tok-", 11) == 0;
}

static void serve_token(struct freg *f, const struct fake_req *rq, char *authz,
                        struct fake_resp *rs)
{
  f->n_token++;
  const char *q = strchr(rq->path, '?');
  set_str(&f->token_query, xstrdup(q ? q + 1 : ""));
  set_str(&f->token_auth, authz);
  if (!basic_ok(f, f->token_auth)) {
    rs->status = 401;
    return;
  }
  buf_printf(&rs->body, "{\"token\":\"tok-%d\",\"expires_in\":300}", f->n_token);
}

static void serve_manifest(struct freg *f, const struct fake_req *rq, struct fake_resp *rs)
{
  f->n_manifest++;
  if (f->fail_500 > 0 && f->fail_500--) {
    rs->status = 500;
    return;
  }
  if (f->fail_429 > 0 && f->fail_429--) {
    rs->status = 429;
    return;
  }
  if (strstr(rq->path, "/manifests/missing")) {
    rs->status = 404;
    buf_puts(&rs->body, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
                        "unknown\"}]}");
    return;
  }
  char d[72];
  fakereg_sha256(f->manifest, strlen(f->manifest), d);
  buf_printf(&rs->headers, "Content-Type: %s\r\nDocker-Content-Digest: %s\r\n", f->manifest_ct,
             f->dcd ? f->dcd : d);
  buf_puts(&rs->body, f->manifest);
}

static void serve_blob(struct freg *f, struct fake_resp *rs)
{
  f->n_blob++;
  if (f->fail_500 > 0 && f->fail_500--) {
    rs->status = 500;
    return;
  }
  if (f->redirect_port) {
    rs->status = 307;
    buf_printf(&rs->headers, "Location: http://localhost:%d/storage/blob\r\n", f->redirect_port);
    return;
  }
  buf_append(&rs->body, f->blob, f->blob_len);
  if (f->corrupt)
    rs->body.data[f->blob_len / 2] ^= 1;
  if (f->cut > 0 && f->cut--) {
    rs->action = FAKE_CUT;
    rs->cut_at = f->blob_len / 2;
  } else if (f->stall_ms) {
    rs->action = FAKE_STALL;
    rs->cut_at = f->stall_at_start ? 0 : f->blob_len / 2;
    rs->stall_ms = f->stall_ms;
  }
}

static void freg_handle(void *arg, const struct fake_req *rq, struct fake_resp *rs)
{
  struct freg *f = arg;
  pthread_mutex_lock(&f->mu);
  char *authz = fake_req_header(rq, "Authorization");
  if (strcmp(rq->path, "/v2/") == 0) {
    f->n_ping++;
    if (f->auth == FA_OPEN)
      buf_puts(&rs->body, "{}");
    else
      challenge(f, rs);
  } else if (strncmp(rq->path, "/token", 6) == 0) {
    serve_token(f, rq, steal(&authz), rs);
  } else if (strncmp(rq->path, "/v2/test/app/", 13) != 0) {
    rs->status = 404;
  } else if (!authorized(f, authz)) {
    challenge(f, rs);
  } else {
    set_str(&f->last_auth, xstrdup(authz));
    if (strstr(rq->path, "/manifests/"))
      serve_manifest(f, rq, rs);
    else
      serve_blob(f, rs);
  }
  free(authz);
  pthread_mutex_unlock(&f->mu);
}

const char fakereg_manifest[] =
  "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\""
  MT_OCI_CONFIG "\",\"digest\":\"sha256:"
  "1111111111111111111111111111111111111111111111111111111111111111\",\"size\":2},"
  "\"layers\":[]}";

struct freg *fakereg_start(enum fake_auth auth)
{
  struct freg *f = xcalloc(1, sizeof(*f));
  pthread_mutex_init(&f->mu, NULL);
  f->auth = auth;
  f->manifest = xstrdup(fakereg_manifest);
  f->manifest_ct = MT_OCI_MANIFEST;
  f->blob_len = 300000;
  f->blob = xmalloc(f->blob_len);
  for (size_t i = 0; i < f->blob_len; i++)
    f->blob[i] = (char)(i * 7 + i / 251);
  fakereg_sha256(f->blob, f->blob_len, f->blob_digest);
  f->srv = fakehttp_start(freg_handle, f);
  f->port = fakehttp_port(f->srv);
  return f;
}

void fakereg_stop(struct freg *f)
{
  fakehttp_stop(f->srv);
  free(f->manifest);
  free(f->blob);
  free(f->last_auth);
  free(f->token_query);
  free(f->token_auth);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

char *fakereg_domain(int port) { return xasprintf("127.0.0.1:%d", port); }

struct registry *fakereg_registry(struct registry_opts *o)
{
  struct registry_opts dflt = {0};
  struct registry *r = NULL;
  err_t *e = NULL;
  if (!o)
    o = &dflt;
  if (!o->retry_delay_ms)
    o->retry_delay_ms = 5;
  cr_assert_eq(registry_new(o, &r, &e), 0);
  return r;
}


int fakereg_collect_write(void *arg, const void *p, size_t n, err_t **e)
{
  struct collect *c = arg;
  if (c->fail_write)
    return err_set(e, ERR_RESOURCE, 0, "disk full");
  buf_append(&c->b, p, n);
  return 0;
}

int fakereg_collect_restart(void *arg, err_t **e)
{
  struct collect *c = arg;
  c->restarts++;
  buf_reset(&c->b);
  return 0;
}

int fakereg_get_blob(struct registry *r, struct freg *f, struct collect *c, bool restartable,
                    const struct registry_creds *cr, const struct registry_io *io, err_t **e)
{
  cleanup_free char *dom = fakereg_domain(f->port);
  struct registry_sink s = {fakereg_collect_write, restartable ? fakereg_collect_restart : NULL, c};
  return registry_get_blob(r, dom, "test/app", f->blob_digest, (int64_t)f->blob_len, cr, io, &s,
                           e);
}

int fakereg_get_manifest(struct registry *r, int port, const char *ref,
                        const struct registry_creds *cr, struct registry_manifest *m, err_t **e)
{
  cleanup_free char *dom = fakereg_domain(port);
  return registry_get_manifest(r, dom, "test/app", ref, cr, NULL, m, e);
}
