/* The registry client against a real registry (Debian's docker-registry) started and
 * filled by test/fixtures/registry.sh:
 *
 *   test/fixtures/registry.sh start D && test/fixtures/registry.sh push D
 *   test/fixtures/registry.sh start D2 user:pass && test/fixtures/registry.sh push D2
 *   eval "$(test/fixtures/registry.sh env D)"; eval "$(test/fixtures/registry.sh env D2)"
 *
 * CRISP_TEST_REGISTRY (host:port) enables these tests; CRISP_TEST_REGISTRY_AUTH with
 * CRISP_TEST_REGISTRY_USER/_PASS enables the auth ones. Unset: every test skips. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "fakehttp.h"
#include "image/manifest.h"
#include "image/registry.h"

static const char *live_host(void)
{
  const char *h = getenv("CRISP_TEST_REGISTRY");
  if (!h || !*h)
    cr_skip_test("CRISP_TEST_REGISTRY is not set (see test/fixtures/registry.sh)");
  return h;
}

static struct registry *live_registry(const struct registry_opts *o)
{
  struct registry *r = NULL;
  err_t *e = NULL;
  cr_assert_eq(registry_new(o, &r, &e), 0);
  return r;
}

static struct manifest *fetch_parsed(struct registry *r, const char *host, const char *path,
                                     const char *ref, const struct registry_creds *c,
                                     struct registry_manifest *raw)
{
  err_t *e = NULL;
  struct manifest *m = NULL;
  cr_assert_eq(registry_get_manifest(r, host, path, ref, c, NULL, raw, &e), 0, "%s",
               e ? e->msg : "");
  cr_assert_eq(manifest_parse(raw->media_type, raw->body, raw->len, &m, &e), 0, "%s",
               e ? e->msg : "");
  return m;
}

/* Sink that hashes and counts, the way the store will. */
struct hashing_sink {
  EVP_MD_CTX *md;
  uint64_t n;
  struct buf keep;   /* small blobs (configs) are kept */
};

static int hs_write(void *arg, const void *p, size_t n, err_t **e)
{
  struct hashing_sink *h = arg;
  EVP_DigestUpdate(h->md, p, n);
  h->n += n;
  if (h->keep.len < ((size_t)1 << 20))
    buf_append(&h->keep, p, n);
  return 0;
}

static int hs_restart(void *arg, err_t **e)
{
  struct hashing_sink *h = arg;
  EVP_DigestInit_ex(h->md, EVP_sha256(), NULL);
  h->n = 0;
  buf_reset(&h->keep);
  return 0;
}

static int fetch_blob(struct registry *r, const char *host, const char *path,
                      const struct manifest_desc *d, int64_t size, struct hashing_sink *h,
                      err_t **e)
{
  h->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(h->md, EVP_sha256(), NULL);
  struct registry_sink s = {hs_write, hs_restart, h};
  int rc = registry_get_blob(r, host, path, d->digest, size, NULL, NULL, &s, e);
  EVP_MD_CTX_free(h->md);
  return rc;
}

Test(registry_live, oci_manifest_by_tag_then_by_digest)
{
  const char *host = live_host();
  struct registry *r = live_registry(NULL);
  struct registry_manifest raw, raw2;
  struct manifest *m = fetch_parsed(r, host, "crisp-test/busybox", "1", NULL, &raw);
  cr_assert_eq(m->kind, MANIFEST_OCI);
  cr_assert_eq(m->n_layers, 1);
  struct manifest *m2 = fetch_parsed(r, host, "crisp-test/busybox", raw.digest, NULL, &raw2);
  cr_assert_str_eq(raw2.digest, raw.digest);
  cr_assert_eq(raw2.len, raw.len);
  manifest_free(m);
  manifest_free(m2);
  registry_manifest_clear(&raw);
  registry_manifest_clear(&raw2);
  registry_free(r);
}

Test(registry_live, docker_schema2_config_and_layer_verify)
{
  const char *host = live_host();
  struct registry *r = live_registry(NULL);
  struct registry_manifest raw;
  struct manifest *m = fetch_parsed(r, host, "crisp-test/busybox", "v2s2", NULL, &raw);
  cr_assert_eq(m->kind, MANIFEST_DOCKER);
  struct hashing_sink h = {0};
  err_t *e = NULL;
  cr_assert_eq(fetch_blob(r, host, "crisp-test/busybox", &m->config, m->config.size, &h, &e), 0,
               "%s", e ? e->msg : "");
  struct image_config *c = NULL;
  cr_assert_eq(image_config_parse(h.keep.data, h.keep.len, &c, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(c->architecture, "amd64");
  cr_assert_eq(c->cmd.n, 1);
  cr_assert_str_eq(c->cmd.items[0], "/bin/sh");
  cr_assert_eq(image_config_check_layers(c, m, &e), 0);
  buf_free(&h.keep);
  struct hashing_sink lh = {0};
  cr_assert_eq(fetch_blob(r, host, "crisp-test/busybox", &m->layers[0].desc,
                          m->layers[0].desc.size, &lh, &e),
               0, "%s", e ? e->msg : "");
  cr_assert_eq(lh.n, (uint64_t)m->layers[0].desc.size);
  buf_free(&lh.keep);
  image_config_free(c);
  manifest_free(m);
  registry_manifest_clear(&raw);
  registry_free(r);
}

Test(registry_live, index_picks_platform_manifest)
{
  const char *host = live_host();
  struct registry *r = live_registry(NULL);
  struct registry_manifest raw, raw2;
  struct manifest *ix = fetch_parsed(r, host, "crisp-test/multi", "1", NULL, &raw);
  cr_assert_eq(ix->kind, MANIFEST_OCI_INDEX);
  const struct manifest_desc *amd = NULL, *arm = NULL;
  err_t *e = NULL;
  struct platform_want w_amd = {"linux", "amd64", NULL}, w_arm = {"linux", "arm64", NULL};
  struct platform_want w_rv = {"linux", "riscv64", NULL};
  cr_assert_eq(manifest_select_platform(ix, &w_amd, &amd, &e), 0);
  cr_assert_eq(manifest_select_platform(ix, &w_arm, &arm, &e), 0);
  cr_assert_str_neq(amd->digest, arm->digest);
  cr_assert_eq(manifest_select_platform(ix, &w_rv, &amd, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  cr_assert(strstr(e->msg, "linux/amd64, linux/arm64"), "%s", e->msg);
  err_free(&e);
  cr_assert_eq(manifest_select_platform(ix, &w_amd, &amd, &e), 0);
  struct manifest *m = fetch_parsed(r, host, "crisp-test/multi", amd->digest, NULL, &raw2);
  cr_assert_eq(m->kind, MANIFEST_OCI);
  manifest_free(m);
  manifest_free(ix);
  registry_manifest_clear(&raw);
  registry_manifest_clear(&raw2);
  registry_free(r);
}

Test(registry_live, wrong_digest_or_size_is_refused)
{
  const char *host = live_host();
  struct registry *r = live_registry(NULL);
  struct registry_manifest raw;
  struct manifest *m = fetch_parsed(r, host, "crisp-test/busybox", "1", NULL, &raw);
  struct hashing_sink h = {0};
  err_t *e = NULL;
  cr_assert_eq(fetch_blob(r, host, "crisp-test/busybox", &m->layers[0].desc,
                          m->layers[0].desc.size - 1, &h, &e),
               -1);
  cr_assert_eq(e->code, ERR_INVALID, "%s", e->msg);
  err_free(&e);
  buf_free(&h.keep);
  struct manifest_desc bogus = {NULL, (char *)"sha256:00000000000000000000000000000000000000"
                                              "00000000000000000000000000", 10};
  cr_assert_eq(fetch_blob(r, host, "crisp-test/busybox", &bogus, 10, &h, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  err_free(&e);
  buf_free(&h.keep);
  struct registry_manifest none;
  cr_assert_eq(registry_get_manifest(r, host, "crisp-test/busybox", bogus.digest, NULL, NULL,
                                     &none, &e),
               -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  err_free(&e);
  manifest_free(m);
  registry_manifest_clear(&raw);
  registry_free(r);
}

Test(registry_live, missing_image_is_not_found)
{
  const char *host = live_host();
  struct registry *r = live_registry(NULL);
  struct registry_manifest raw;
  err_t *e = NULL;
  cr_assert_eq(registry_get_manifest(r, host, "crisp-test/nope", "1", NULL, NULL, &raw, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  cr_assert(strstr(e->msg, "not found in registry http://"), "%s", e->msg);
  err_free(&e);
  cr_assert_eq(registry_get_manifest(r, host, "crisp-test/busybox", "nope", NULL, NULL, &raw, &e),
               -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  err_free(&e);
  registry_free(r);
}

Test(registry_live, mirror_down_falls_back_to_registry)
{
  const char *host = live_host();
  cleanup_free char *dead = xasprintf("http://127.0.0.1:%d", fakehttp_dead_port());
  const char *eps[] = {dead};
  struct registry_mirror_conf mc = {host, eps, 1};
  struct registry_opts o = {.mirrors = &mc, .n_mirrors = 1};
  struct registry *r = live_registry(&o);
  struct registry_manifest raw;
  struct manifest *m = fetch_parsed(r, host, "crisp-test/busybox", "1", NULL, &raw);
  manifest_free(m);
  registry_manifest_clear(&raw);
  registry_free(r);
}

static const char *auth_host(void)
{
  const char *h = getenv("CRISP_TEST_REGISTRY_AUTH");
  if (!h || !*h || !getenv("CRISP_TEST_REGISTRY_USER") || !getenv("CRISP_TEST_REGISTRY_PASS"))
    cr_skip_test("CRISP_TEST_REGISTRY_AUTH/_USER/_PASS are not set");
  return h;
}

Test(registry_live, basic_auth_registry)
{
  const char *host = auth_host();
  struct registry *r = live_registry(NULL);
  struct registry_manifest raw;
  err_t *e = NULL;
  cr_assert_eq(registry_get_manifest(r, host, "crisp-test/busybox", "1", NULL, NULL, &raw, &e),
               -1);
  cr_assert_eq(e->code, ERR_PERMISSION, "%s", e->msg);
  cr_assert(strstr(e->msg, "pull access denied"), "%s", e->msg);
  err_free(&e);
  struct registry_creds bad = {.username = getenv("CRISP_TEST_REGISTRY_USER"), .password = "x"};
  cr_assert_eq(registry_get_manifest(r, host, "crisp-test/busybox", "1", &bad, NULL, &raw, &e),
               -1);
  cr_assert_eq(e->code, ERR_PERMISSION, "%s", e->msg);
  err_free(&e);
  struct registry_creds good = {.username = getenv("CRISP_TEST_REGISTRY_USER"),
                                .password = getenv("CRISP_TEST_REGISTRY_PASS")};
  struct manifest *m = fetch_parsed(r, host, "crisp-test/busybox", "1", &good, &raw);
  struct hashing_sink h = {0};
  h.md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
  struct registry_sink s = {hs_write, hs_restart, &h};
  cr_assert_eq(registry_get_blob(r, host, "crisp-test/busybox", m->layers[0].desc.digest,
                                 m->layers[0].desc.size, &good, NULL, &s, &e),
               0, "%s", e ? e->msg : "");
  EVP_MD_CTX_free(h.md);
  buf_free(&h.keep);
  manifest_free(m);
  registry_manifest_clear(&raw);
  registry_free(r);
}

Test(registry_live, basic_auth_from_docker_config_file)
{
  const char *host = auth_host();
  cleanup_free char *up = xasprintf("%s:%s", getenv("CRISP_TEST_REGISTRY_USER"),
                                    getenv("CRISP_TEST_REGISTRY_PASS"));
  cleanup_free char *enc = fakehttp_base64(up);
  cleanup_free char *json = xasprintf("{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}", host, enc);
  char path[] = "/tmp/crisp-live-auth-XXXXXX";
  int fd = mkstemp(path);
  err_t *e = NULL;
  cr_assert_eq(fd_write_all(fd, json, strlen(json), &e), 0);
  close(fd);
  struct registry_opts o = {.auth_file = path};
  struct registry *r = live_registry(&o);
  struct registry_manifest raw;
  int rc = registry_get_manifest(r, host, "crisp-test/busybox", "1", NULL, NULL, &raw, &e);
  unlink(path);
  cr_assert_eq(rc, 0, "%s", e ? e->msg : "");
  registry_manifest_clear(&raw);
  registry_free(r);
}
