/* The registry protocol against the fake registry (fakereg.c): manifests, auth,
 * retries. Blobs, endpoints and failures are in registry_blob_test.c. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "fakereg.h"
#include "image/manifest.h"
#include "image/registry.h"

/* ---- manifests ------------------------------------------------------------ */

Test(registry_proto, manifest_by_tag_then_by_digest_from_open_registry)
{
  struct freg *f = fakereg_start(FA_OPEN);
  struct registry *r = fakereg_registry(NULL);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", NULL, &m, &e), 0, "%s", e ? e->msg : "");
  char want[72];
  fakereg_sha256(fakereg_manifest, strlen(fakereg_manifest), want);
  cr_assert_str_eq(m.body, fakereg_manifest);
  cr_assert_eq(m.len, strlen(fakereg_manifest));
  cr_assert_str_eq(m.media_type, MT_OCI_MANIFEST);
  cr_assert_str_eq(m.digest, want);
  registry_manifest_clear(&m);
  cr_assert_eq(fakereg_get_manifest(r, f->port, want, NULL, &m, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(m.digest, want);
  registry_manifest_clear(&m);
  cr_assert_eq(f->n_ping, 1, "the /v2/ ping is cached per endpoint");
  cr_assert_null(f->last_auth);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, manifest_whose_body_does_not_match_the_digest_is_refused)
{
  struct freg *f = fakereg_start(FA_OPEN);
  struct registry *r = fakereg_registry(NULL);
  struct registry_manifest m;
  err_t *e = NULL;
  const char *other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
  f->dcd = other; /* the header must match too, so send the lie both ways */
  cr_assert_eq(fakereg_get_manifest(r, f->port, other, NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "digest mismatch: got sha256:"), "%s", e->msg);
  cr_assert_null(m.body);
  err_free(&e);
  cr_assert_eq(fakereg_get_manifest(r, f->port, "latest", NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "Docker-Content-Digest"), "%s", e->msg);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, missing_manifest_is_not_found_naming_image_and_registry)
{
  struct freg *f = fakereg_start(FA_OPEN);
  struct registry *r = fakereg_registry(NULL);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "missing", NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  cleanup_free char *want = xasprintf("image 127.0.0.1:%d/test/app:missing not found in "
                                      "registry http://127.0.0.1:%d (MANIFEST_UNKNOWN: manifest "
                                      "unknown)",
                                      f->port, f->port);
  cr_assert_str_eq(e->msg, want);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, oversized_manifest_is_refused)
{
  struct freg *f = fakereg_start(FA_OPEN);
  free(f->manifest);
  f->manifest = xmalloc(MANIFEST_MAX_SIZE + 2);
  memset(f->manifest, ' ', MANIFEST_MAX_SIZE + 1);
  f->manifest[MANIFEST_MAX_SIZE + 1] = '\0';
  struct registry *r = fakereg_registry(NULL);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "big", NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_RESOURCE, "%s", e->msg);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, bad_path_or_tag_is_invalid_before_any_request)
{
  struct freg *f = fakereg_start(FA_OPEN);
  struct registry *r = fakereg_registry(NULL);
  struct registry_manifest m;
  err_t *e = NULL;
  cleanup_free char *dom = fakereg_domain(f->port);
  cr_assert_eq(registry_get_manifest(r, dom, "../x", "1", NULL, NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  cr_assert_eq(registry_get_manifest(r, dom, "test/app", "a?b", NULL, NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  cr_assert_eq(f->n_ping, 0);
  registry_free(r);
  fakereg_stop(f);
}

/* ---- auth ----------------------------------------------------------------- */

Test(registry_proto, bearer_token_flow_with_basic_credentials_and_token_cache)
{
  struct freg *f = fakereg_start(FA_BEARER);
  f->user = "alice";
  f->pass = "wonder";
  struct registry *r = fakereg_registry(NULL);
  struct registry_creds c = {.username = "alice", .password = "wonder"};
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", &c, &m, &e), 0, "%s", e ? e->msg : "");
  registry_manifest_clear(&m);
  cr_assert_str_eq(f->token_query, "service=fake-registry&scope=repository%3Atest%2Fapp%3Apull");
  cleanup_free char *enc = fakehttp_base64("alice:wonder");
  cleanup_free char *basic = xasprintf("Basic %s", enc);
  cr_assert_str_eq(f->token_auth, basic);
  cr_assert_str_eq(f->last_auth, "Bearer tok-1");
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", &c, &m, &e), 0);
  registry_manifest_clear(&m);
  cr_assert_eq(f->n_token, 1, "the token is reused until it expires");
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, tokens_are_not_shared_across_credentials)
{
  struct freg *f = fakereg_start(FA_BEARER);
  struct registry *r = fakereg_registry(NULL);
  struct registry_creds c = {.username = "alice", .password = "wonder"};
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", &c, &m, &e), 0);
  registry_manifest_clear(&m);
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", NULL, &m, &e), 0);
  registry_manifest_clear(&m);
  cr_assert_eq(f->n_token, 2);
  cr_assert_null(f->token_auth, "the anonymous token request carries no credentials");
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, registry_token_is_used_as_bearer_directly)
{
  struct freg *f = fakereg_start(FA_BEARER);
  struct registry *r = fakereg_registry(NULL);
  struct registry_creds c = {.registry_token = "tok-direct"};
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", &c, &m, &e), 0, "%s", e ? e->msg : "");
  registry_manifest_clear(&m);
  cr_assert_str_eq(f->last_auth, "Bearer tok-direct");
  cr_assert_eq(f->n_token, 0);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, basic_auth_from_docker_config_file)
{
  struct freg *f = fakereg_start(FA_BASIC);
  f->user = "bob";
  f->pass = "builder";
  cleanup_free char *enc = fakehttp_base64("bob:builder");
  cleanup_free char *json =
    xasprintf("{\"auths\":{\"http://127.0.0.1:%d/v1/\":{\"auth\":\"%s\"}}}", f->port, enc);
  char path[] = "/tmp/crisp-regauth-XXXXXX";
  int fd = mkstemp(path);
  err_t *e = NULL;
  cr_assert_eq(fd_write_all(fd, json, strlen(json), &e), 0);
  close(fd);
  struct registry_opts o = {.auth_file = path};
  struct registry *r = fakereg_registry(&o);
  struct registry_manifest m;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", NULL, &m, &e), 0, "%s", e ? e->msg : "");
  registry_manifest_clear(&m);
  cleanup_free char *want = xasprintf("Basic %s", enc);
  cr_assert_str_eq(f->last_auth, want);
  unlink(path);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, wrong_credentials_are_permission_denied)
{
  struct freg *f = fakereg_start(FA_BASIC);
  f->user = "bob";
  f->pass = "builder";
  struct registry *r = fakereg_registry(NULL);
  struct registry_creds c = {.username = "bob", .password = "nope"};
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", &c, &m, &e), -1);
  cr_assert_eq(e->code, ERR_PERMISSION);
  cr_assert(strstr(e->msg, "pull access denied for 127.0.0.1:"), "%s", e->msg);
  cr_assert(strstr(e->msg, "UNAUTHORIZED: authentication required"), "%s", e->msg);
  err_free(&e);
  f->auth = FA_BEARER;  /* the token server refuses too */
  registry_free(r);
  r = fakereg_registry(NULL);
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", &c, &m, &e), -1);
  cr_assert_eq(e->code, ERR_PERMISSION, "%s", e->msg);
  cr_assert(strstr(e->msg, "refused the credentials"), "%s", e->msg);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}

/* ---- retries -------------------------------------------------------------- */

Test(registry_proto, retries_5xx_and_429_then_succeeds)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->fail_500 = 2;
  f->fail_429 = 1;
  struct registry *r = fakereg_registry(NULL);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", NULL, &m, &e), 0, "%s", e ? e->msg : "");
  registry_manifest_clear(&m);
  cr_assert_eq(f->n_manifest, 4);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, gives_up_after_the_configured_retries)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->fail_500 = 100;
  struct registry_opts o = {.retries = 2};
  struct registry *r = fakereg_registry(&o);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cr_assert(strstr(e->msg, "HTTP 500"), "%s", e->msg);
  cr_assert_eq(f->n_manifest, 3);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}
