/* store_fixture.c - see store_fixture.h. */
#include "test/unit/store_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

char sf_root[64];
struct store *sf_st;

void sf_setup(void)
{
  snprintf(sf_root, sizeof(sf_root), "/tmp/crisp-store-test-XXXXXX");
  cr_assert_not_null(mkdtemp(sf_root));
  err_t *e = NULL;
  cr_assert_eq(store_open(sf_root, &sf_st, &e), 0, "%s", e ? e->msg : "");
}

void sf_teardown(void)
{
  store_close(sf_st);
  sf_st = NULL;
  err_t *e = NULL;
  rm_rf(sf_root, &e);
  err_free(&e);
}

void sf_reopen(void)
{
  err_t *e = NULL;
  store_close(sf_st);
  sf_st = NULL;
  cr_assert_eq(store_open(sf_root, &sf_st, &e), 0, "%s", e ? e->msg : "");
}

/* The test's own sha256, independent of the store's. */
static void sf_sha256(const void *data, size_t len, char out[STORE_DIGEST_BUF])
{
  unsigned char md[32];
  unsigned int n = 0;
  cr_assert_eq(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
  memcpy(out, "sha256:", 7);
  for (unsigned i = 0; i < n; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

void sf_digest(const char *s, char out[STORE_DIGEST_BUF])
{
  sf_sha256(s, strlen(s), out);
}

char *sf_path(const char *rel)
{
  return path_join(sf_root, rel);
}

bool sf_exists(const char *rel)
{
  cleanup_free char *p = sf_path(rel);
  return access(p, F_OK) == 0;
}

void sf_write(const char *path, const char *text)
{
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(path, text, strlen(text), 0600, &e), 0, "%s", e ? e->msg : "");
}

struct sf_layer sf_make_layer(const struct sf_layer *parent, const char *content)
{
  struct sf_layer l = {.blob_size = strlen(content) + 1000};
  cleanup_free char *diff_src = xasprintf("diff:%s", content);
  cleanup_free char *blob_src = xasprintf("blob:%s", content);
  sf_digest(diff_src, l.diff);
  sf_digest(blob_src, l.blob);
  err_t *e = NULL;
  cr_assert_eq(store_chain_id(parent ? parent->chain : NULL, l.diff, l.chain, &e), 0);
  enum store_layer_state state;
  cleanup_free char *tmp = NULL;
  cr_assert_eq(store_layer_begin(sf_st, l.chain, 0, &state, &tmp, &e), 0, "%s", e ? e->msg : "");
  if (state == STORE_LAYER_PRESENT)
    return l;
  cleanup_free char *file = path_join(tmp, "data");
  sf_write(file, content);
  struct store_layer_info info = {.parent = parent ? parent->chain : NULL, .diff_id = l.diff,
                                  .blob_digest = l.blob, .blob_size = l.blob_size};
  cr_assert_eq(store_layer_commit(sf_st, l.chain, tmp, &info, &e), 0, "%s", e ? e->msg : "");
  return l;
}

bool sf_layer_present(const struct sf_layer *l)
{
  cleanup_free char *p = NULL;
  err_t *e = NULL;
  int rc = store_layer_path(sf_st, l->chain, &p, &e);
  err_free(&e);
  return rc == 0 && access(p, F_OK) == 0;
}

struct sf_image sf_make_image(const char *name, const struct sf_layer *layers, size_t n,
                              const char *const *names, size_t n_names)
{
  struct sf_image im;
  im.config = xasprintf("{\"config\":\"%s\"}", name);
  cleanup_free char *manifest = xasprintf("{\"manifest\":\"%s\"}", name);
  sf_digest(im.config, im.id);
  sf_digest(manifest, im.manifest);
  err_t *e = NULL;
  cr_assert_eq(store_put_blob(sf_st, im.id, im.config, strlen(im.config), &e), 0);
  cr_assert_eq(store_put_blob(sf_st, im.manifest, manifest, strlen(manifest), &e), 0);
  char *chains[8], *tags[8], *digests[8];
  size_t n_tags = 0, n_digests = 0;
  for (size_t i = 0; i < n; i++)
    chains[i] = (char *)layers[i].chain;
  for (size_t i = 0; i < n_names; i++) {
    if (strchr(names[i], '@'))
      digests[n_digests++] = (char *)names[i];
    else
      tags[n_tags++] = (char *)names[i];
  }
  struct image_record r = {.id = im.id, .repo_tags = tags, .n_tags = n_tags,
                           .repo_digests = digests, .n_digests = n_digests,
                           .manifest_digest = im.manifest, .chain_ids = chains, .n_layers = n};
  cr_assert_eq(store_image_add(sf_st, &r, &e), 0, "%s", e ? e->msg : "");
  return im;
}

bool sf_has(char *const *v, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

struct image_record *sf_find(const char *key)
{
  struct image_record *r = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_image_find(sf_st, key, &r, &e), 0, "%s: %s", key, e ? e->msg : "");
  return r;
}

enum err_code sf_find_fails(enum store_key kind, const char *key)
{
  struct image_record *r = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_image_lookup(sf_st, kind, key, &r, &e), -1, "%s was found", key);
  enum err_code c = e->code;
  err_free(&e);
  return c;
}

int64_t sf_mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

