/* Registry client, offline parts: challenges, endpoints, credentials, bodies, cache.
 * The protocol itself is tested against a fake registry in registry_fake_test.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "fakehttp.h"
#include "image/registry.h"
#include "image/registry_internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* ---- WWW-Authenticate ----------------------------------------------------- */

Test(registry, parses_bearer_challenge_with_quotes_and_commas)
{
  struct auth_challenge c;
  err_t *e = NULL;
  cr_assert_eq(registry_parse_challenge(
                 "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                 "scope=\"repository:library/busybox:pull,push\"",
                 &c, &e),
               0);
  cr_assert_eq(c.scheme, AUTH_BEARER);
  cr_assert_str_eq(c.realm, "https://auth.docker.io/token");
  cr_assert_str_eq(c.service, "registry.docker.io");
  cr_assert_str_eq(c.scope, "repository:library/busybox:pull,push");
  auth_challenge_clear(&c);
}

Test(registry, parses_challenge_spacing_case_escapes_and_bare_values)
{
  struct auth_challenge c;
  err_t *e = NULL;
  cr_assert_eq(registry_parse_challenge("  bearer  REALM = \"https://a/t?x=\\\"1\\\"\" ,"
                                        " error=\"invalid_token\",service=reg.example",
                                        &c, &e),
               0, "%s", e ? e->msg : "");
  cr_assert_eq(c.scheme, AUTH_BEARER);
  cr_assert_str_eq(c.realm, "https://a/t?x=\"1\"");
  cr_assert_str_eq(c.service, "reg.example");
  cr_assert_null(c.scope);
  auth_challenge_clear(&c);
  cr_assert_eq(registry_parse_challenge("Basic realm=\"Registry Realm\"", &c, &e), 0);
  cr_assert_eq(c.scheme, AUTH_BASIC);
  cr_assert_str_eq(c.realm, "Registry Realm");
  auth_challenge_clear(&c);
  cr_assert_eq(registry_parse_challenge("Basic realm=\"r\", Bearer realm=\"x\"", &c, &e), 0);
  cr_assert_eq(c.scheme, AUTH_BASIC);
  cr_assert_str_eq(c.realm, "r");
  auth_challenge_clear(&c);
  cr_assert_eq(registry_parse_challenge("", &c, &e), 0);
  cr_assert_eq(c.scheme, AUTH_NONE);
}

Test(registry, refuses_malformed_challenges)
{
  const char *bad[] = {"Bearer service=\"x\"", "Bearer realm=\"https://a", "Negotiate abc",
                       "Bearer realm=\"a\" junk", "Bearer =x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct auth_challenge c;
    err_t *e = NULL;
    cr_assert_eq(registry_parse_challenge(bad[i], &c, &e), -1, "accepted: %s", bad[i]);
    cr_assert_eq(e->code, ERR_INVALID);
    err_free(&e);
  }
}

/* ---- endpoints ------------------------------------------------------------ */

static char *endpoint_list(const struct registry_opts *o, const char *domain)
{
  struct registry_endpoints eps;
  err_t *e = NULL;
  cr_assert_eq(registry_resolve_endpoints(o, domain, &eps, &e), 0, "%s", e ? e->msg : "");
  struct buf b = BUF_INIT;
  for (size_t i = 0; i < eps.n; i++)
    buf_printf(&b, "%s%s%s", i ? " " : "", eps.v[i].base, eps.v[i].mirror ? "(m)" : "");
  registry_endpoints_clear(&eps);
  return buf_steal(&b);
}

#define ASSERT_ENDPOINTS(o, domain, want)                  \
  do {                                                     \
    cleanup_free char *got_ = endpoint_list((o), (domain)); \
    cr_assert_str_eq(got_, (want));                        \
  } while (0)

Test(registry, endpoints_are_mirrors_in_order_then_the_host)
{
  const char *hub[] = {"http://localhost:5000", "https://mirror.example/cache/v2/",
                       "m2.local:8443"};
  const char *quay[] = {"https://quay-mirror.example"};
  struct registry_mirror_conf m[] = {{"docker.io", hub, 3}, {"quay.io", quay, 1}};
  struct registry_opts o = {.mirrors = m, .n_mirrors = 2};
  ASSERT_ENDPOINTS(&o, "docker.io", "http://localhost:5000(m) https://mirror.example/cache(m) "
                                    "https://m2.local:8443(m) https://registry-1.docker.io");
  ASSERT_ENDPOINTS(&o, "index.docker.io", "http://localhost:5000(m) "
                                          "https://mirror.example/cache(m) "
                                          "https://m2.local:8443(m) https://registry-1.docker.io");
  ASSERT_ENDPOINTS(&o, "quay.io", "https://quay-mirror.example(m) https://quay.io");
  ASSERT_ENDPOINTS(&o, "ghcr.io", "https://ghcr.io");
}

Test(registry, plain_http_for_insecure_and_loopback_hosts)
{
  const char *insecure[] = {"reg.lan:5000", "build-cache"};
  struct registry_opts o = {.insecure = insecure, .n_insecure = 2};
  ASSERT_ENDPOINTS(&o, "reg.lan:5000", "http://reg.lan:5000");
  ASSERT_ENDPOINTS(&o, "reg.lan:5001", "https://reg.lan:5001");
  ASSERT_ENDPOINTS(&o, "build-cache:9000", "http://build-cache:9000");
  ASSERT_ENDPOINTS(&o, "build-cache", "http://build-cache");
  ASSERT_ENDPOINTS(&o, "localhost:5000", "http://localhost:5000");
  ASSERT_ENDPOINTS(&o, "127.0.0.1:35000", "http://127.0.0.1:35000");
  ASSERT_ENDPOINTS(&o, "[::1]:5000", "http://[::1]:5000");
  ASSERT_ENDPOINTS(&o, "localhost", "http://localhost");
  ASSERT_ENDPOINTS(&o, "localhost.example.com", "https://localhost.example.com");
  ASSERT_ENDPOINTS(NULL, "registry.k8s.io", "https://registry.k8s.io");
}

Test(registry, refuses_bad_mirror_urls_and_hosts)
{
  const char *ftp[] = {"ftp://mirror"};
  struct registry_mirror_conf m[] = {{"docker.io", ftp, 1}};
  struct registry_opts o = {.mirrors = m, .n_mirrors = 1};
  struct registry_endpoints eps;
  err_t *e = NULL;
  cr_assert_eq(registry_resolve_endpoints(&o, "docker.io", &eps, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  cr_assert_eq(registry_resolve_endpoints(NULL, "evil.com/x?", &eps, &e), -1);
  err_free(&e);
}

/* ---- credentials ---------------------------------------------------------- */

static char *write_tmp(const char *content)
{
  char *path = xstrdup("/tmp/crisp-regtest-XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  err_t *e = NULL;
  cr_assert_eq(fd_write_all(fd, content, strlen(content), &e), 0);
  close(fd);
  return path;
}

Test(registry, docker_config_json_credentials)
{
  cleanup_free char *a1 = fakehttp_base64("alice:s3cr:et");
  cleanup_free char *a2 = fakehttp_base64("hubuser:hubpass");
  cleanup_free char *json = xasprintf(
    "{\"auths\":{\"reg.example:5000\":{\"auth\":\"%s\"},"
    "\"https://index.docker.io/v1/\":{\"auth\":\"%s\"},"
    "\"https://ghcr.io\":{\"username\":\"bob\",\"password\":\"pw\"},"
    "\"quay.io\":{\"identitytoken\":\"refresh-me\"}},\"credsStore\":\"desktop\"}",
    a1, a2);
  cleanup_free char *path = write_tmp(json);
  struct registry_auth a;
  err_t *e = NULL;
  cr_assert_eq(registry_auth_file_lookup(path, "reg.example:5000", &a, &e), 0);
  cr_assert_str_eq(a.username, "alice");
  cr_assert_str_eq(a.password, "s3cr:et");
  registry_auth_clear(&a);
  cr_assert_eq(registry_auth_file_lookup(path, "docker.io", &a, &e), 0);
  cr_assert_str_eq(a.username, "hubuser");
  registry_auth_clear(&a);
  cr_assert_eq(registry_auth_file_lookup(path, "ghcr.io", &a, &e), 0);
  cr_assert_str_eq(a.password, "pw");
  registry_auth_clear(&a);
  cr_assert_eq(registry_auth_file_lookup(path, "quay.io", &a, &e), 0);
  cr_assert_str_eq(a.identity_token, "refresh-me");
  cr_assert_null(a.username);
  registry_auth_clear(&a);
  cr_assert_eq(registry_auth_file_lookup(path, "reg.example", &a, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
  unlink(path);
  cr_assert_eq(registry_auth_file_lookup(path, "docker.io", &a, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
}

Test(registry, caller_credentials_decode_auth_and_reject_garbage)
{
  cleanup_free char *enc = fakehttp_base64("u:p");
  struct registry_creds c = {.auth = enc};
  struct registry_auth a;
  err_t *e = NULL;
  cr_assert_eq(registry_auth_from_creds(&c, &a, &e), 0);
  cr_assert_str_eq(a.username, "u");
  cr_assert_str_eq(a.password, "p");
  registry_auth_clear(&a);
  struct registry_creds none = {.username = "", .password = ""};
  cr_assert_eq(registry_auth_from_creds(&none, &a, &e), 0);
  cr_assert(registry_auth_empty(&a));
  cleanup_free char *nocolon = fakehttp_base64("justuser");
  struct registry_creds bad1 = {.auth = nocolon}, bad2 = {.auth = "%%%"};
  cr_assert_eq(registry_auth_from_creds(&bad1, &a, &e), -1);
  err_free(&e);
  cr_assert_eq(registry_auth_from_creds(&bad2, &a, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
}

Test(registry, base64_and_url_escape)
{
  char *out = NULL;
  size_t len = 0;
  err_t *e = NULL;
  cr_assert_eq(registry_base64_decode("aGVsbG8=", &out, &len, &e), 0);
  cr_assert_str_eq(out, "hello");
  cr_assert_eq(len, 5);
  free(out);
  cr_assert_eq(registry_base64_decode("aGVsbG8", &out, &len, &e), 0);
  cr_assert_str_eq(out, "hello");
  free(out);
  cr_assert_eq(registry_base64_decode("a", &out, &len, &e), -1);
  err_free(&e);
  cleanup_free char *esc = registry_url_escape("repository:a/b:pull x&y");
  cr_assert_str_eq(esc, "repository%3Aa%2Fb%3Apull%20x%26y");
}

Test(registry, token_and_error_bodies)
{
  char *tok = NULL;
  long exp = 0;
  err_t *e = NULL;
  const char t1[] = "{\"token\":\"abc\",\"access_token\":\"zzz\",\"expires_in\":300}";
  cr_assert_eq(registry_parse_token_response(t1, strlen(t1), &tok, &exp, &e), 0);
  cr_assert_str_eq(tok, "abc");
  cr_assert_eq(exp, 300);
  free(tok);
  const char t2[] = "{\"access_token\":\"xyz\",\"expires_in\":5}";
  cr_assert_eq(registry_parse_token_response(t2, strlen(t2), &tok, &exp, &e), 0);
  cr_assert_str_eq(tok, "xyz");
  cr_assert_eq(exp, 60);
  free(tok);
  cr_assert_eq(registry_parse_token_response("{}", 2, &tok, &exp, &e), -1);
  err_free(&e);
  const char eb[] = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
                    "unknown\",\"detail\":{\"Tag\":\"x\"}}]}";
  cleanup_free char *s = registry_error_summary(eb, strlen(eb));
  cr_assert_str_eq(s, "MANIFEST_UNKNOWN: manifest unknown");
  cr_assert_null(registry_error_summary("<html>", 6));
}

Test(registry, cache_expires_and_evicts)
{
  struct regcache *c = regcache_new(2);
  regcache_put(c, "a", "1", 60);
  regcache_put(c, "b", "2", 0.05);
  cleanup_free char *a = regcache_get(c, "a");
  cr_assert_str_eq(a, "1");
  usleep(80 * 1000);
  cr_assert_null(regcache_get(c, "b"));
  regcache_put(c, "c", "3", 30);
  regcache_put(c, "d", "4", 90); /* full: "c" expires soonest and goes */
  cr_assert_null(regcache_get(c, "c"));
  cleanup_free char *d = regcache_get(c, "d");
  cr_assert_str_eq(d, "4");
  regcache_drop(c, "d");
  cr_assert_null(regcache_get(c, "d"));
  regcache_free(c);
}
