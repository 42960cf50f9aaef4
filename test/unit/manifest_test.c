#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "image/manifest.h"

#define H8(c) c c c c c c c c
#define H(c) H8(c) H8(c) H8(c) H8(c) H8(c) H8(c) H8(c) H8(c) /* 64 hex digits */
#define D(c) "sha256:" H(c)
#define DA D("a")
#define DB D("b")
#define DC D("c")
#define DD D("d")
#define DE D("e")

static struct manifest *parse_ok(const char *ct, const char *body)
{
  struct manifest *m = NULL;
  err_t *e = NULL;
  int r = manifest_parse(ct, body, strlen(body), &m, &e);
  cr_assert_eq(r, 0, "parse failed: %s", e ? e->msg : "?");
  return m;
}

static err_t *parse_err(const char *ct, const char *body)
{
  struct manifest *m = NULL;
  err_t *e = NULL;
  cr_assert_eq(manifest_parse(ct, body, strlen(body), &m, &e), -1);
  cr_assert_null(m);
  cr_assert_not_null(e);
  return e;
}

static const char oci_manifest[] =
  "{\n  \"schemaVersion\": 2,\n"
  "  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
  "  \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n"
  "    \"digest\": \"" DA "\", \"size\": 1469},\n"
  "  \"layers\": [\n"
  "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
  "     \"digest\": \"" DB "\", \"size\": 2590386},\n"
  "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\",\n"
  "     \"digest\": \"" DC "\", \"size\": 120},\n"
  "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\",\n"
  "     \"digest\": \"" DD "\", \"size\": 0}\n"
  "  ],\n"
  "  \"annotations\": {\"org.opencontainers.image.created\": \"2024-01-01T00:00:00Z\"}\n}\n";

static const char docker_manifest[] =
  "{\"schemaVersion\":2,"
  "\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
  "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
  "\"size\":1457,\"digest\":\"" DA "\"},"
  "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
  "\"size\":2220094,\"digest\":\"" DB "\"}]}";

static const char oci_index[] =
  "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
  "\"manifests\":["
  "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DA "\","
  "\"size\":528,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
  "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DB "\","
  "\"size\":528,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
  "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DC "\","
  "\"size\":528,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
  "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DD "\","
  "\"size\":566,\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"},"
  "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}]}";

static const char docker_list[] =
  "{\"schemaVersion\":2,"
  "\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
  "\"manifests\":["
  "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":527,"
  "\"digest\":\"" DA "\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
  "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":527,"
  "\"digest\":\"" DB "\",\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
  "\"variant\":\"v6\"}},"
  "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":527,"
  "\"digest\":\"" DC "\",\"platform\":{\"architecture\":\"s390x\",\"os\":\"linux\"}}]}";

Test(manifest, parses_oci_manifest_with_all_layer_compressions)
{
  CLEANUP(manifest) struct manifest *m = parse_ok(MT_OCI_MANIFEST, oci_manifest);
  cr_assert_eq(m->kind, MANIFEST_OCI);
  cr_assert_not(manifest_is_index(m));
  cr_assert_str_eq(m->config.digest, DA);
  cr_assert_eq(m->config.size, 1469);
  cr_assert_eq(m->n_layers, 3);
  cr_assert_eq(m->layers[0].compression, LAYER_GZIP);
  cr_assert_eq(m->layers[0].desc.size, 2590386);
  cr_assert_eq(m->layers[1].compression, LAYER_ZSTD);
  cr_assert_eq(m->layers[2].compression, LAYER_TAR);
  cr_assert_str_eq(m->layers[2].desc.digest, DD);
}

Test(manifest, parses_docker_schema2_manifest)
{
  CLEANUP(manifest) struct manifest *m =
    parse_ok("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
             docker_manifest);
  cr_assert_eq(m->kind, MANIFEST_DOCKER);
  cr_assert_str_eq(m->config.media_type, MT_DOCKER_CONFIG);
  cr_assert_eq(m->n_layers, 1);
  cr_assert_eq(m->layers[0].compression, LAYER_GZIP);
}

Test(manifest, parses_oci_index_and_docker_list)
{
  CLEANUP(manifest) struct manifest *ix = parse_ok(MT_OCI_INDEX, oci_index);
  cr_assert_eq(ix->kind, MANIFEST_OCI_INDEX);
  cr_assert(manifest_is_index(ix));
  cr_assert_eq(ix->n_entries, 4);
  cr_assert_str_eq(ix->entries[0].platform.variant, "v7");
  cr_assert_null(ix->entries[1].platform.variant);
  CLEANUP(manifest) struct manifest *dl = parse_ok(MT_DOCKER_LIST, docker_list);
  cr_assert_eq(dl->kind, MANIFEST_DOCKER_LIST);
  cr_assert_eq(dl->n_entries, 3);
  cr_assert_str_eq(dl->entries[2].platform.architecture, "s390x");
}

Test(manifest, falls_back_to_body_media_type_when_content_type_is_generic)
{
  CLEANUP(manifest) struct manifest *m = parse_ok("application/json", docker_list);
  cr_assert_eq(m->kind, MANIFEST_DOCKER_LIST);
  CLEANUP(manifest) struct manifest *m2 = parse_ok(NULL, docker_manifest);
  cr_assert_eq(m2->kind, MANIFEST_DOCKER);
}

Test(manifest, detects_oci_kind_from_shape_without_media_type)
{
  const char ix[] = "{\"schemaVersion\":2,\"manifests\":[]}";
  CLEANUP(manifest) struct manifest *m = parse_ok(NULL, ix);
  cr_assert_eq(m->kind, MANIFEST_OCI_INDEX);
  const char mf[] = "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
                    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\","
                    "\"size\":2},\"layers\":[]}";
  CLEANUP(manifest) struct manifest *m2 = parse_ok("text/plain", mf);
  cr_assert_eq(m2->kind, MANIFEST_OCI);
  cr_assert_eq(m2->n_layers, 0);
}

Test(manifest, refuses_content_type_that_contradicts_body)
{
  err_t *e = parse_err(MT_OCI_INDEX, oci_manifest);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "Content-Type"), "%s", e->msg);
  err_free(&e);
}

Test(manifest, refuses_schema1_by_content_type_and_by_body)
{
  const char s1[] = "{\"schemaVersion\":1,\"name\":\"library/x\",\"tag\":\"1\","
                    "\"fsLayers\":[],\"history\":[],\"signatures\":[]}";
  const char *cts[] = {MT_DOCKER_SCHEMA1_SIGNED, MT_DOCKER_SCHEMA1, NULL};
  for (size_t i = 0; i < 3; i++) {
    err_t *e = parse_err(cts[i], s1);
    cr_assert_eq(e->code, ERR_INVALID);
    cr_assert_str_eq(e->msg, "manifest: schema1 manifests are not supported; push the image "
                             "with a newer client");
    err_free(&e);
  }
}

static void expect_layer_refused(const char *layer_json, const char *needle)
{
  cleanup_free char *body = xasprintf(
    "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"config\":{\"mediaType\":"
    "\"" MT_DOCKER_CONFIG "\",\"digest\":\"" DA "\",\"size\":2},\"layers\":[%s]}",
    layer_json);
  err_t *e = parse_err(NULL, body);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, needle), "message: %s", e->msg);
  err_free(&e);
}

Test(manifest, refuses_foreign_and_nondistributable_layers)
{
  expect_layer_refused("{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar"
                       ".gzip\",\"digest\":\"" DB "\",\"size\":5,\"urls\":[\"https://x/y\"]}",
                       "foreign");
  expect_layer_refused("{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1"
                       ".tar+gzip\",\"digest\":\"" DB "\",\"size\":5}",
                       "non-distributable");
}

Test(manifest, refuses_layers_with_external_urls_and_unknown_types)
{
  expect_layer_refused("{\"mediaType\":\"" MT_OCI_LAYER_GZIP "\",\"digest\":\"" DB "\","
                       "\"size\":5,\"urls\":[\"https://example.com/layer\"]}",
                       "external URLs");
  expect_layer_refused("{\"mediaType\":\"application/x-tar\",\"digest\":\"" DB "\","
                       "\"size\":5}",
                       "unsupported layer media type application/x-tar");
}

Test(manifest, refuses_bad_digests_and_sizes)
{
  const char *bad[] = {
    "sha256:abc", "sha512:" H("a") H("a"), "sha256:" H("A"), "SHA256:" H("a"),
    "sha256:" H("g"), "sha256:" H("a") "0",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cleanup_free char *layer = xasprintf(
      "{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"%s\",\"size\":1}", bad[i]);
    expect_layer_refused(layer, "invalid digest");
  }
  expect_layer_refused("{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" DB "\","
                       "\"size\":-1}",
                       "negative");
  expect_layer_refused("{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" DB "\","
                       "\"size\":\"12\"}",
                       "integer size");
  cr_assert(manifest_digest_valid(DE));
  cr_assert_not(manifest_digest_valid(DE "0"));
}

Test(manifest, refuses_artifact_whose_config_is_not_an_image)
{
  const char art[] = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
                     "\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\","
                     "\"digest\":\"" DA "\",\"size\":2},\"layers\":[]}";
  err_t *e = parse_err(NULL, art);
  cr_assert(strstr(e->msg, "not a container image"), "%s", e->msg);
  err_free(&e);
}

Test(manifest, refuses_oversized_nul_and_malformed_documents)
{
  size_t big = MANIFEST_MAX_SIZE + 1;
  char *body = xmalloc(big);
  memset(body, ' ', big);
  struct manifest *m = NULL;
  err_t *e = NULL;
  cr_assert_eq(manifest_parse(NULL, body, big, &m, &e), -1);
  cr_assert_eq(e->code, ERR_RESOURCE);
  err_free(&e);
  free(body);
  cr_assert_eq(manifest_parse(NULL, "{\"a\":\0}", 7, &m, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  e = parse_err(NULL, "[1,2]");
  err_free(&e);
  e = parse_err(NULL, "{\"schemaVersion\":2,");
  err_free(&e);
  e = parse_err(NULL, "{\"schemaVersion\":3,\"manifests\":[]}");
  cr_assert(strstr(e->msg, "schemaVersion 3"), "%s", e->msg);
  err_free(&e);
}

static const char *select_digest(const struct manifest *ix, const char *os, const char *arch,
                                 const char *variant)
{
  const struct manifest_desc *d = NULL;
  err_t *e = NULL;
  struct platform_want w = {os, arch, variant};
  if (manifest_select_platform(ix, &w, &d, &e) < 0) {
    err_free(&e);
    return NULL;
  }
  return d->digest;
}

Test(manifest, picks_amd64_from_a_multi_platform_index)
{
  CLEANUP(manifest) struct manifest *ix = parse_ok(NULL, oci_index);
  cr_assert_str_eq(select_digest(ix, "linux", "amd64", NULL), DB);
  cr_assert_str_eq(select_digest(ix, "linux", "x86_64", ""), DB);
  cr_assert_str_eq(select_digest(ix, "linux", "arm64", NULL), DC);
  cr_assert_str_eq(select_digest(ix, "linux", "aarch64", "v8"), DC);
  cr_assert_str_eq(select_digest(ix, "linux", "arm", "v7"), DA);
  cr_assert_null(select_digest(ix, "linux", "arm", "v6"));
  cr_assert_null(select_digest(ix, "windows", "amd64", NULL));
}

Test(manifest, prefers_exact_variant_then_no_variant)
{
  const char ix_json[] =
    "{\"schemaVersion\":2,\"manifests\":["
    "{\"digest\":\"" DA "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\"}},"
    "{\"digest\":\"" DB "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\","
    "\"variant\":\"v7\"}},"
    "{\"digest\":\"" DC "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"amd64\",\"variant\":\"v3\"}}]}";
  CLEANUP(manifest) struct manifest *ix = parse_ok(NULL, ix_json);
  cr_assert_str_eq(select_digest(ix, "linux", "arm", "v7"), DB);
  cr_assert_str_eq(select_digest(ix, "linux", "arm", "v5"), DA);
  cr_assert_str_eq(select_digest(ix, "linux", "amd64", "v3"), DC);
  /* a v3 image may use instructions a baseline amd64 CPU lacks */
  cr_assert_null(select_digest(ix, "linux", "amd64", NULL));
}

Test(manifest, no_platform_match_lists_what_the_index_offers)
{
  CLEANUP(manifest) struct manifest *ix = parse_ok(NULL, docker_list);
  const struct manifest_desc *d = NULL;
  err_t *e = NULL;
  struct platform_want w = {"linux", "riscv64", NULL};
  cr_assert_eq(manifest_select_platform(ix, &w, &d, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  cr_assert_str_eq(e->msg, "no image for linux/riscv64 in the index; it offers: linux/amd64, "
                           "linux/arm/v6, linux/s390x");
  err_free(&e);
}

Test(manifest, host_platform_is_linux)
{
  struct platform_want w = platform_want_host();
  cr_assert_str_eq(w.os, "linux");
#if defined(__x86_64__)
  cr_assert_str_eq(w.architecture, "amd64");
#endif
}

static const char image_config_json[] =
  "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-05-01T10:00:00Z\","
  "\"config\":{\"User\":\"1000:1000\",\"Env\":[\"PATH=/usr/local/sbin:/usr/bin\","
  "\"NGINX_VERSION=1.25.5\"],\"Entrypoint\":[\"/docker-entrypoint.sh\"],"
  "\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"WorkingDir\":\"/srv\","
  "\"Volumes\":{\"/var/cache/nginx\":{}},\"ExposedPorts\":{\"80/tcp\":{},\"443/tcp\":{}},"
  "\"Labels\":{\"maintainer\":\"NGINX <nginx@example.com>\"},\"StopSignal\":\"SIGQUIT\"},"
  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DC "\",\"" DD "\"]},"
  "\"history\":[{\"created\":\"2024-05-01T10:00:00Z\",\"created_by\":\"ADD file:x in /\"},"
  "{\"created_by\":\"ENV A=b\",\"empty_layer\":true},{\"created_by\":\"RUN x\"}]}";

Test(image_config, parses_runtime_fields)
{
  struct image_config *c = NULL;
  err_t *e = NULL;
  cr_assert_eq(image_config_parse(image_config_json, strlen(image_config_json), &c, &e), 0,
               "%s", e ? e->msg : "");
  cr_assert_str_eq(c->os, "linux");
  cr_assert_str_eq(c->architecture, "amd64");
  cr_assert_str_eq(c->user, "1000:1000");
  cr_assert_eq(c->env.n, 2);
  cr_assert_str_eq(c->env.items[1], "NGINX_VERSION=1.25.5");
  cr_assert_null(c->env.items[2]);
  cr_assert_eq(c->entrypoint.n, 1);
  cr_assert_eq(c->cmd.n, 3);
  cr_assert_str_eq(c->cmd.items[2], "daemon off;");
  cr_assert_str_eq(c->working_dir, "/srv");
  cr_assert_eq(c->volumes.n, 1);
  cr_assert_str_eq(c->volumes.items[0], "/var/cache/nginx");
  cr_assert_eq(c->exposed_ports.n, 2);
  cr_assert_str_eq(c->exposed_ports.items[1], "443/tcp");
  cr_assert_eq(c->n_labels, 1);
  cr_assert_str_eq(c->labels[0].key, "maintainer");
  cr_assert_str_eq(c->stop_signal, "SIGQUIT");
  cr_assert_eq(c->diff_ids.n, 2);
  cr_assert_str_eq(c->diff_ids.items[0], DC);
  cr_assert_eq(c->n_history, 3);
  cr_assert(c->history[1].empty_layer);
  cr_assert_not(c->history[2].empty_layer);
  image_config_free(c);
}

Test(image_config, accepts_null_config_and_missing_optional_fields)
{
  const char j[] = "{\"os\":\"linux\",\"config\":null,\"rootfs\":{\"type\":\"layers\","
                   "\"diff_ids\":[]}}";
  CLEANUP(image_config) struct image_config *c = NULL;
  err_t *e = NULL;
  cr_assert_eq(image_config_parse(j, strlen(j), &c, &e), 0);
  cr_assert_null(c->user);
  cr_assert_eq(c->cmd.n, 0);
  cr_assert_null(c->cmd.items);
  cr_assert_eq(c->diff_ids.n, 0);
}

static void expect_config_refused(const char *j, const char *needle)
{
  struct image_config *c = NULL;
  err_t *e = NULL;
  cr_assert_eq(image_config_parse(j, strlen(j), &c, &e), -1);
  cr_assert_null(c);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, needle), "message: %s", e->msg);
  err_free(&e);
}

Test(image_config, refuses_bad_rootfs_and_field_types)
{
  expect_config_refused("{\"os\":\"linux\"}", "rootfs is missing");
  expect_config_refused("{\"rootfs\":{\"type\":\"zfs\",\"diff_ids\":[]}}", "not \"layers\"");
  expect_config_refused("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:12\"]}}",
                        "diff_ids[0]: invalid digest");
  expect_config_refused("{\"rootfs\":{\"type\":\"layers\"}}", "diff_ids is missing");
  expect_config_refused("{\"config\":{\"Cmd\":\"sh\"},\"rootfs\":{\"type\":\"layers\","
                        "\"diff_ids\":[]}}",
                        "config.Cmd: expected an array");
  expect_config_refused("{\"config\":{\"Env\":[1]},\"rootfs\":{\"type\":\"layers\","
                        "\"diff_ids\":[]}}",
                        "config.Env[0]");
  expect_config_refused("{\"config\":{\"Labels\":{\"a\":1}},\"rootfs\":{\"type\":\"layers\","
                        "\"diff_ids\":[]}}",
                        "config.Labels");
}

Test(image_config, diff_ids_must_pair_with_manifest_layers)
{
  CLEANUP(image_config) struct image_config *c = NULL;
  err_t *e = NULL;
  cr_assert_eq(image_config_parse(image_config_json, strlen(image_config_json), &c, &e), 0);
  CLEANUP(manifest) struct manifest *m = parse_ok(NULL, oci_manifest); /* 3 layers */
  cr_assert_eq(image_config_check_layers(c, m, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "2 layer diff_ids but the manifest has 3"), "%s", e->msg);
  err_free(&e);
  CLEANUP(manifest) struct manifest *m2 = parse_ok(NULL, docker_manifest); /* 1 layer */
  CLEANUP(image_config) struct image_config *c1 = NULL;
  const char j[] = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DC "\"]}}";
  cr_assert_eq(image_config_parse(j, strlen(j), &c1, &e), 0);
  cr_assert_eq(image_config_check_layers(c1, m2, &e), 0);
}

Test(manifest, refuses_known_content_type_over_an_unknown_body_media_type)
{
  const char art[] = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.artifact.manifest"
                     ".v1+json\",\"config\":{},\"layers\":[]}";
  err_t *e = parse_err(MT_OCI_MANIFEST, art);
  cr_assert(strstr(e->msg, "Content-Type is"), "%s", e->msg);
  err_free(&e);
}
