/* store_fixture.h - the fixture and helpers shared by the image store tests.
 * Each STORE_TEST runs with a fresh store opened on an empty directory under /tmp,
 * closed and deleted afterwards. */
#ifndef CRISP_TEST_STORE_FIXTURE_H
#define CRISP_TEST_STORE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "image/store.h"

#define STORE_TEST(name) Test(store, name, .init = sf_setup, .fini = sf_teardown)

extern char sf_root[64];      /* the store's root directory */
extern struct store *sf_st;   /* the open store */

void sf_setup(void);
void sf_teardown(void);
/* Closes and reopens the store, as a daemon restart does. */
void sf_reopen(void);

/* sha256 of s as "sha256:<hex>", computed by the test itself. */
void sf_digest(const char *s, char out[STORE_DIGEST_BUF]);
/* sf_root + "/" + rel (caller frees). */
char *sf_path(const char *rel);
bool sf_exists(const char *rel);
void sf_write(const char *path, const char *text);
int64_t sf_mono_ns(void);

struct sf_layer {
  char chain[STORE_DIGEST_BUF];
  char diff[STORE_DIGEST_BUF];
  char blob[STORE_DIGEST_BUF];
  uint64_t blob_size;
};
/* Unpacks a fake layer holding one file "data" with content, on top of parent (or NULL). */
struct sf_layer sf_make_layer(const struct sf_layer *parent, const char *content);
bool sf_layer_present(const struct sf_layer *l);

struct sf_image {
  char id[STORE_DIGEST_BUF];
  char manifest[STORE_DIGEST_BUF];
  char *config;   /* caller frees */
};
/* Stores config and manifest blobs named after name and adds a record with the given
 * layers and names (names with '@' are repo digests, the others tags). */
struct sf_image sf_make_image(const char *name, const struct sf_layer *layers, size_t n,
                              const char *const *names, size_t n_names);

bool sf_has(char *const *v, size_t n, const char *s);
/* store_image_find that must succeed (free the copy). */
struct image_record *sf_find(const char *key);
/* store_image_lookup that must fail: its error code. */
enum err_code sf_find_fails(enum store_key kind, const char *key);

#endif
