/* store_int.h - what the store_*.c files share; never included outside them. */
#ifndef CRISP_IMAGE_STORE_INT_H
#define CRISP_IMAGE_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"
#include "image/store.h"

#define STORE_HEX_LEN 64
#define STORE_BLOB_MAX (64u << 20)   /* manifests and configs are far smaller */
#define STORE_RECORD_MAX (4u << 20)
#define STORE_DIR_MODE 0700
#define STORE_FILE_MODE 0600

/* A growable array of owned strings. */
struct store_strv {
  char **v;
  size_t n, cap;
};
void store_strv_push(struct store_strv *sv, const char *s);      /* copies s */
void store_strv_push_owned(struct store_strv *sv, char *s);
bool store_strv_contains(const struct store_strv *sv, const char *s);
void store_strv_free(struct store_strv *sv);
char **store_strv_dup_array(char *const *v, size_t n);
void store_strv_free_array(char **v, size_t n);

enum layer_phase { LAYER_UNPACKING, LAYER_READY };

struct store_layer {
  char chain_id[STORE_DIGEST_BUF];
  enum layer_phase phase;
  char *tmpdir;          /* LAYER_UNPACKING: the owner's directory */
  char *parent;          /* LAYER_READY: metadata, as committed */
  char *diff_id;
  char *blob_digest;
  uint64_t blob_size;
};

struct store_holder {
  char *name;
  char **chain_ids;
  size_t n;
  bool durable;   /* its file is known to be on the disk (store_holds_sync_locked) */
};

struct store {
  char *root;
  char *root_real;       /* realpath of root, for the mount point lookup */
  char *blobs_dir;
  char *layers_dir;
  char *images_dir;
  char *holds_dir;
  char *quarantine_dir;
  int lock_fd;
  struct store_report *report;   /* store_check only; NULL for a serving store */
  bool check_only;               /* report->check_only: change nothing on disk */

  pthread_mutex_t mu;    /* guards everything below */
  pthread_cond_t layer_cv;  /* a layer left LAYER_UNPACKING; CLOCK_MONOTONIC */
  struct image_record **images;
  size_t n_images, cap_images;
  struct store_layer **layers;
  size_t n_layers, cap_layers;
  struct store_holder **holders;
  size_t n_holders, cap_holders;

  uint64_t generation;   /* bumped by every change on disk */
  bool usage_valid;
  uint64_t usage_generation;
  uint64_t usage_bytes, usage_inodes;
};

/* store_digest.c */
void store_sha256_digest(const void *data, size_t len, char out[STORE_DIGEST_BUF]);
bool store_hex_valid(const char *s, size_t len);
const char *store_digest_hex(const char *digest);   /* the part after "sha256:" */

/* store_disk.c: on-disk formats. Encoders return a string the caller frees; decoders
 * fail with ERR_INVALID and a reason fit for the quarantine log. */
char *store_record_encode(const struct image_record *r);
int store_record_decode(const char *text, struct image_record **out, err_t **e);
int store_record_check(const struct image_record *r, err_t **e);
bool store_tag_valid(const char *tag);
bool store_repo_digest_valid(const char *rd);
char *store_layer_encode(const struct store_layer *l);
int store_layer_decode(const char *text, struct store_layer **out, err_t **e);
char *store_holder_encode(const struct store_holder *h);
int store_holder_decode(const char *text, struct store_holder **out, err_t **e);
bool store_holder_name_valid(const char *name);
void store_layer_free(struct store_layer *l);
void store_holder_free(struct store_holder *h);

/* store_util.c */
void *store_vec_push(void *vec, size_t *n, size_t *cap, void *item);
void store_vec_remove(void *vec, size_t *n, size_t i);
/* Names in dir, sorted, without "." and ".."; a missing dir has none. */
int store_list_dir(const char *dir, struct store_strv *out, err_t **e);
int store_fsync_dir(const char *dir, err_t **e);
/* Removes the directories in trash (outside the lock), logging failures; frees trash. */
void store_trash_empty(struct store_strv *trash);

/* store.c */
/* Moves path into quarantine/ and logs why (kind: "image", "layer", "blob", "hold"). */
void store_quarantine(struct store *s, const char *path, const char *kind, const char *reason);
/* Something on disk changed: the usage cache is stale. */
void store_changed_locked(struct store *s);

/* store_layers.c (callers hold s->mu) */
struct store_layer *store_layer_find_locked(struct store *s, const char *chain_id);
bool store_layer_ready_locked(struct store *s, const char *chain_id);
/* Deletes the listed layers that nothing references; directories go to trash. */
void store_layers_gc_locked(struct store *s, char *const *chain_ids, size_t n,
                            struct store_strv *trash);
int store_layers_load(struct store *s, err_t **e);
void store_layers_free_all(struct store *s);

/* store_holds.c (callers hold s->mu) */
bool store_layer_held_locked(struct store *s, const char *chain_id);
int store_holders_load(struct store *s, err_t **e);
/* Puts every hold file written since the last call on the disk (fsync of each, then of
 * holds/). Called before a change on the disk could leave a held layer without any
 * reference there: an image record's deletion, a hold's release. */
int store_holds_sync_locked(struct store *s, err_t **e);
void store_holders_free_all(struct store *s);

/* store_blobs.c (callers hold s->mu) */
char *store_blob_path(const struct store *s, const char *digest);
bool store_blob_exists(const struct store *s, const char *digest);
int store_blob_size(const struct store *s, const char *digest, uint64_t *size, err_t **e);
void store_blobs_gc_locked(struct store *s, char *const *digests, size_t n);
int store_blobs_load(struct store *s, struct store_strv *all, err_t **e);

/* store_images.c (callers hold s->mu) */
bool store_image_references_layer_locked(struct store *s, const char *chain_id);
bool store_image_references_blob_locked(struct store *s, const char *digest);
int store_images_load(struct store *s, err_t **e);
void store_images_free_all(struct store *s);

/* store_usage.c */
int store_mountpoint(const char *path, char **out, err_t **e);

#endif
