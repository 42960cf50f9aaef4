/* Tests of image/store: chain IDs, content blobs, image records and lookups. */
#include "test/unit/store_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

/* ---- chain IDs ------------------------------------------------------------------- */

STORE_TEST(chain_id_of_base_layer_is_its_diff_id)
{
  char d[STORE_DIGEST_BUF], out[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("base", d);
  cr_assert_eq(store_chain_id(NULL, d, out, &e), 0);
  cr_assert_str_eq(out, d);
}

STORE_TEST(chain_id_of_upper_layer_hashes_parent_space_diff_id)
{
  char l0[STORE_DIGEST_BUF], l1[STORE_DIGEST_BUF], l2[STORE_DIGEST_BUF];
  char c1[STORE_DIGEST_BUF], c2[STORE_DIGEST_BUF], expect[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("base", l0);
  sf_digest("upper", l1);
  sf_digest("top", l2);
  cr_assert_eq(store_chain_id(l0, l1, c1, &e), 0);
  /* computed independently with Python's hashlib */
  cr_assert_str_eq(c1, "sha256:0bc9b1ae249c2d4059cb663339e2540536d3ad1df5a3c0cd0ffb45e2f257ad00");
  cleanup_free char *joined1 = xasprintf("%s %s", l0, l1);
  sf_digest(joined1, expect);
  cr_assert_str_eq(c1, expect);
  cr_assert_eq(store_chain_id(c1, l2, c2, &e), 0);
  cleanup_free char *joined2 = xasprintf("%s %s", c1, l2);
  sf_digest(joined2, expect);
  cr_assert_str_eq(c2, expect);
}

STORE_TEST(chain_id_rejects_malformed_digests)
{
  char d[STORE_DIGEST_BUF], out[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("x", d);
  const char *bad[] = {"sha256:abc", "sha512:0000", "", "SHA256:" "0000000000000000000000000000"
                       "000000000000000000000000000000000000"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(store_chain_id(NULL, bad[i], out, &e), -1);
    cr_assert_eq(e->code, ERR_INVALID);
    err_free(&e);
    cr_assert_eq(store_chain_id(bad[i], d, out, &e), -1);
    err_free(&e);
  }
}

/* ---- blobs ----------------------------------------------------------------------- */

STORE_TEST(put_blob_refuses_content_that_does_not_match_its_digest)
{
  char d[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("the real content", d);
  cr_assert_eq(store_put_blob(sf_st, d, "forged", 6, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  cleanup_free char *rel = xasprintf("content/blobs/sha256/%s", d + 7);
  cr_assert(!sf_exists(rel));
  char *data = NULL;
  cr_assert_eq(store_get_blob(sf_st, d, &data, NULL, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
}

STORE_TEST(put_blob_then_get_blob_returns_the_same_bytes)
{
  char d[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("{\"a\":1}", d);
  cr_assert_eq(store_put_blob(sf_st, d, "{\"a\":1}", 7, &e), 0);
  cr_assert_eq(store_put_blob(sf_st, d, "{\"a\":1}", 7, &e), 0);  /* again: no error */
  cleanup_free char *data = NULL;
  size_t len = 0;
  cr_assert_eq(store_get_blob(sf_st, d, &data, &len, &e), 0);
  cr_assert_eq(len, 7);
  cr_assert_str_eq(data, "{\"a\":1}");
}

/* ---- images ---------------------------------------------------------------------- */

STORE_TEST(image_is_found_by_id_bare_id_prefix_tag_and_repo_digest)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  const char *names[] = {"docker.io/library/busybox:latest", NULL};
  char rd[200];
  char mdig[STORE_DIGEST_BUF];
  sf_digest("some manifest", mdig);
  snprintf(rd, sizeof(rd), "docker.io/library/busybox@%s", mdig);
  names[1] = rd;
  struct sf_image im = sf_make_image("busybox", &l0, 1, names, 2);
  cleanup_free char *bare = xstrdup(im.id + 7);
  cleanup_free char *prefix = xstrndup(im.id + 7, STORE_ID_PREFIX_MIN);
  cleanup_free char *prefix_full = xstrndup(im.id, 7 + 20);
  const char *keys[] = {im.id, bare, prefix, prefix_full, "docker.io/library/busybox:latest", rd};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    CLEANUP(image_record) struct image_record *r = sf_find(keys[i]);
    cr_assert_str_eq(r->id, im.id, "key %s", keys[i]);
    cr_assert_str_eq(r->config_digest, im.id);
    cr_assert_str_eq(r->manifest_digest, im.manifest);
    cr_assert_eq(r->n_layers, 1);
    cr_assert_str_eq(r->chain_ids[0], l0.chain);
    cr_assert(r->pulled_at_ns > 0);
  }
  struct image_record *r = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_image_lookup(sf_st, STORE_KEY_TAG, "docker.io/library/busybox:latest", &r, &e),
               0);
  image_record_free(r);
  cr_assert_eq(store_image_lookup(sf_st, STORE_KEY_DIGEST, rd, &r, &e), 0);
  image_record_free(r);
  free(im.config);
}

STORE_TEST(short_or_unknown_keys_are_not_resolved)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  const char *tag[] = {"docker.io/library/busybox:latest"};
  struct sf_image im = sf_make_image("busybox", &l0, 1, tag, 1);
  cleanup_free char *short_prefix = xstrndup(im.id + 7, STORE_ID_PREFIX_MIN - 1);
  cr_assert_eq(sf_find_fails(STORE_KEY_ANY, short_prefix), ERR_NOT_FOUND);
  cr_assert_eq(sf_find_fails(STORE_KEY_PREFIX, short_prefix), ERR_INVALID);
  cr_assert_eq(sf_find_fails(STORE_KEY_ANY, "docker.io/library/busybox:1.36"), ERR_NOT_FOUND);
  cr_assert_eq(sf_find_fails(STORE_KEY_ANY, "000000000000000000"), ERR_NOT_FOUND);
  cr_assert_eq(sf_find_fails(STORE_KEY_TAG, im.id + 7), ERR_INVALID);
  cr_assert_eq(sf_find_fails(STORE_KEY_ID, "docker.io/library/busybox:latest"), ERR_INVALID);
  free(im.config);
}

STORE_TEST(image_size_is_layer_blob_sizes_plus_config_size)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_layer l1 = sf_make_layer(&l0, "etc");
  struct sf_layer ls[] = {l0, l1};
  struct sf_image im = sf_make_image("sized", ls, 2, NULL, 0);
  CLEANUP(image_record) struct image_record *r = sf_find(im.id);
  cr_assert_eq(r->size, l0.blob_size + l1.blob_size + strlen(im.config));
  free(im.config);
}

STORE_TEST(image_config_returns_the_config_blob)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  const char *tag[] = {"docker.io/library/app:1"};
  struct sf_image im = sf_make_image("app", &l0, 1, tag, 1);
  cleanup_free char *data = NULL;
  size_t len = 0;
  err_t *e = NULL;
  cr_assert_eq(store_image_config(sf_st, "docker.io/library/app:1", &data, &len, &e), 0);
  cr_assert_eq(len, strlen(im.config));
  cr_assert_str_eq(data, im.config);
  free(im.config);
}

STORE_TEST(adding_a_tag_to_another_image_moves_it_and_keeps_the_untagged_image)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  const char *a_tags[] = {"docker.io/library/app:latest", "docker.io/library/app:1"};
  const char *b_tags[] = {"docker.io/library/app:latest"};
  const char *c_tags[] = {"docker.io/library/app:1"};
  struct sf_image a = sf_make_image("a", &l0, 1, a_tags, 2);
  struct sf_image b = sf_make_image("b", &l0, 1, b_tags, 1);
  CLEANUP(image_record) struct image_record *ra = sf_find(a.id);
  cr_assert_eq(ra->n_tags, 1);
  cr_assert_str_eq(ra->repo_tags[0], "docker.io/library/app:1");
  CLEANUP(image_record) struct image_record *latest = sf_find("docker.io/library/app:latest");
  cr_assert_str_eq(latest->id, b.id);

  struct sf_image c = sf_make_image("c", &l0, 1, c_tags, 1);
  CLEANUP(image_record) struct image_record *ra2 = sf_find(a.id);
  cr_assert_eq(ra2->n_tags, 0);
  cr_assert_eq(ra2->n_digests, 0);
  struct image_record **list = NULL;
  size_t n = 0;
  err_t *e = NULL;
  cr_assert_eq(store_image_list(sf_st, &list, &n, &e), 0);
  cr_assert_eq(n, 3);
  image_record_list_free(list, n);

  sf_reopen();  /* the move is on disk too */
  CLEANUP(image_record) struct image_record *ra3 = sf_find(a.id);
  cr_assert_eq(ra3->n_tags, 0);
  CLEANUP(image_record) struct image_record *one = sf_find("docker.io/library/app:1");
  cr_assert_str_eq(one->id, c.id);
  free(a.config);
  free(b.config);
  free(c.config);
}

STORE_TEST(adding_the_same_image_again_unites_its_names)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  const char *t1[] = {"docker.io/library/app:latest"};
  const char *t2[] = {"docker.io/library/app:1.0"};
  struct sf_image a = sf_make_image("a", &l0, 1, t1, 1);
  struct sf_image a2 = sf_make_image("a", &l0, 1, t2, 1);
  cr_assert_str_eq(a.id, a2.id);
  CLEANUP(image_record) struct image_record *r = sf_find(a.id);
  cr_assert_eq(r->n_tags, 2);
  cr_assert(sf_has(r->repo_tags, r->n_tags, t1[0]));
  cr_assert(sf_has(r->repo_tags, r->n_tags, t2[0]));
  struct image_record **list = NULL;
  size_t n = 0;
  err_t *e = NULL;
  cr_assert_eq(store_image_list(sf_st, &list, &n, &e), 0);
  cr_assert_eq(n, 1);
  image_record_list_free(list, n);
  free(a.config);
  free(a2.config);
}

STORE_TEST(add_refuses_an_image_whose_layers_are_missing)
{
  char config_digest[STORE_DIGEST_BUF], manifest_digest[STORE_DIGEST_BUF];
  char missing[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("cfg", config_digest);
  sf_digest("man", manifest_digest);
  sf_digest("no such layer", missing);
  cr_assert_eq(store_put_blob(sf_st, config_digest, "cfg", 3, &e), 0);
  char *chains[] = {missing};
  struct image_record r = {.id = config_digest, .manifest_digest = manifest_digest,
                           .chain_ids = chains, .n_layers = 1};
  cr_assert_eq(store_image_add(sf_st, &r, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION);
  err_free(&e);
  cr_assert_eq(sf_find_fails(STORE_KEY_ID, config_digest), ERR_NOT_FOUND);
}

STORE_TEST(add_refuses_malformed_names)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  char config_digest[STORE_DIGEST_BUF], manifest_digest[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("cfg", config_digest);
  sf_digest("man", manifest_digest);
  cr_assert_eq(store_put_blob(sf_st, config_digest, "cfg", 3, &e), 0);
  char *chains[] = {l0.chain};
  char *bad_tags[] = {"docker.io/library/app"};  /* no tag */
  struct image_record r = {.id = config_digest, .manifest_digest = manifest_digest,
                           .chain_ids = chains, .n_layers = 1, .repo_tags = bad_tags,
                           .n_tags = 1};
  cr_assert_eq(store_image_add(sf_st, &r, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
}

STORE_TEST(remove_keeps_layers_another_image_uses_and_deletes_the_rest)
{
  struct sf_layer shared = sf_make_layer(NULL, "shared base");
  struct sf_layer only_a = sf_make_layer(&shared, "only in a");
  struct sf_layer only_b = sf_make_layer(&shared, "only in b");
  struct sf_layer la[] = {shared, only_a}, lb[] = {shared, only_b};
  struct sf_image a = sf_make_image("a", la, 2, NULL, 0);
  struct sf_image b = sf_make_image("b", lb, 2, NULL, 0);
  err_t *e = NULL;
  cr_assert_eq(store_image_remove(sf_st, a.id, &e), 0);
  cr_assert(sf_layer_present(&shared));
  cr_assert(sf_layer_present(&only_b));
  cr_assert(!sf_layer_present(&only_a));
  cleanup_free char *a_dir = xasprintf("layers/%s", only_a.chain + 7);
  cleanup_free char *a_meta = xasprintf("layers/%s.json", only_a.chain + 7);
  cr_assert(!sf_exists(a_dir));
  cr_assert(!sf_exists(a_meta));
  char *data = NULL;
  cr_assert_eq(store_get_blob(sf_st, a.id, &data, NULL, &e), -1);  /* its config went too */
  err_free(&e);
  cr_assert_eq(store_get_blob(sf_st, b.id, &data, NULL, &e), 0);
  free(data);
  cr_assert_eq(sf_find_fails(STORE_KEY_ID, a.id), ERR_NOT_FOUND);

  cr_assert_eq(store_image_remove(sf_st, b.id + 7, &e), 0);  /* bare ID */
  cr_assert(!sf_layer_present(&shared));
  free(a.config);
  free(b.config);
}

STORE_TEST(removing_a_missing_image_succeeds)
{
  char d[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("never pulled", d);
  cr_assert_eq(store_image_remove(sf_st, d, &e), 0);
  cr_assert_eq(store_image_remove(sf_st, d, &e), 0);
  cr_assert_eq(store_image_remove(sf_st, "docker.io/library/busybox:latest", &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
}
