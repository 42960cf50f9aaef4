/* store_images.c - image records: the in-memory index, lookups, tag moves, removal. */
#include "image/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

static char *record_path(const struct store *s, const char *id)
{
  return xasprintf("%s/%s.json", s->images_dir, store_digest_hex(id));
}

static int record_write(const struct store *s, const struct image_record *r, err_t **e)
{
  cleanup_free char *path = record_path(s, r->id);
  cleanup_free char *text = store_record_encode(r);
  if (file_write_atomic(path, text, strlen(text), STORE_FILE_MODE, e) < 0)
    return err_wrap(e, "write image record %s", r->id);
  return 0;
}

static size_t index_by_id_locked(struct store *s, const char *id)
{
  for (size_t i = 0; i < s->n_images; i++)
    if (strcmp(s->images[i]->id, id) == 0)
      return i;
  return SIZE_MAX;
}

static bool has_name(char *const *v, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], name) == 0)
      return true;
  return false;
}

/* Removes name from v; true if it was there. */
static bool strip_name(char **v, size_t *n, const char *name)
{
  for (size_t i = 0; i < *n; i++) {
    if (strcmp(v[i], name) == 0) {
      free(v[i]);
      memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
      (*n)--;
      return true;
    }
  }
  return false;
}

bool store_image_references_layer_locked(struct store *s, const char *chain_id)
{
  for (size_t i = 0; i < s->n_images; i++)
    if (has_name(s->images[i]->chain_ids, s->images[i]->n_layers, chain_id))
      return true;
  return false;
}

bool store_image_references_blob_locked(struct store *s, const char *digest)
{
  for (size_t i = 0; i < s->n_images; i++)
    if (strcmp(s->images[i]->manifest_digest, digest) == 0 ||
        strcmp(s->images[i]->config_digest, digest) == 0)
      return true;
  return false;
}

/* ---- lookup -------------------------------------------------------------------- */

/* "sha256:<hex>" or "<hex>" -> the full ID in out; false for anything else. */
static bool normalise_id(const char *key, char out[STORE_DIGEST_BUF])
{
  if (store_digest_valid(key)) {
    memcpy(out, key, STORE_DIGEST_BUF);
    return true;
  }
  if (strlen(key) != STORE_HEX_LEN || !store_hex_valid(key, STORE_HEX_LEN))
    return false;
  memcpy(out, "sha256:", 7);
  memcpy(out + 7, key, STORE_HEX_LEN + 1);
  return true;
}

static const char *prefix_hex(const char *key)
{
  const char *hex = strncmp(key, "sha256:", 7) == 0 ? key + 7 : key;
  return store_hex_valid(hex, strlen(hex)) ? hex : NULL;
}

static enum store_key classify(const char *key)
{
  char id[STORE_DIGEST_BUF];
  if (normalise_id(key, id))
    return STORE_KEY_ID;
  if (strchr(key, '@'))
    return STORE_KEY_DIGEST;
  const char *hex = prefix_hex(key);
  if (hex && *hex)
    return STORE_KEY_PREFIX;
  return STORE_KEY_TAG;
}

static int by_prefix_locked(struct store *s, const char *key, struct image_record **found,
                            err_t **e)
{
  const char *hex = prefix_hex(key);
  size_t len = hex ? strlen(hex) : 0;
  if (!hex || len < STORE_ID_PREFIX_MIN || len > STORE_HEX_LEN)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not an image ID prefix of %d to %d hex digits",
                   key, STORE_ID_PREFIX_MIN, STORE_HEX_LEN);
  size_t matches = 0;
  for (size_t i = 0; i < s->n_images; i++) {
    if (strncmp(store_digest_hex(s->images[i]->id), hex, len) == 0) {
      *found = s->images[i];
      matches++;
    }
  }
  if (matches > 1)
    return err_set(e, ERR_INVALID, 0, "image ID prefix %s matches %zu images", key, matches);
  return matches ? 0 : err_set(e, ERR_NOT_FOUND, 0, "no image with ID prefix %s", key);
}

/* Finds the image whose tag (digests: false) or repo digest (true) list holds key. */
static int by_name_locked(struct store *s, const char *key, bool digests,
                          struct image_record **found, err_t **e)
{
  if (digests ? !store_repo_digest_valid(key) : !store_tag_valid(key))
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a normalised %s", key,
                   digests ? "repo digest" : "repo tag");
  for (size_t i = 0; i < s->n_images; i++) {
    struct image_record *r = s->images[i];
    if (digests ? has_name(r->repo_digests, r->n_digests, key)
                : has_name(r->repo_tags, r->n_tags, key)) {
      *found = r;
      return 0;
    }
  }
  return err_set(e, ERR_NOT_FOUND, 0, "image %s not found", key);
}

static int lookup_locked(struct store *s, enum store_key kind, const char *key,
                         struct image_record **found, err_t **e)
{
  char id[STORE_DIGEST_BUF];
  bool any = kind == STORE_KEY_ANY;
  if (any)
    kind = classify(key);
  switch (kind) {
  case STORE_KEY_ID: {
    if (!normalise_id(key, id))
      return err_set(e, ERR_INVALID, 0, "\"%s\" is not an image ID", key);
    size_t i = index_by_id_locked(s, id);
    if (i == SIZE_MAX)
      return err_set(e, ERR_NOT_FOUND, 0, "image %s not found", key);
    *found = s->images[i];
    return 0;
  }
  case STORE_KEY_PREFIX:
    if (any && strlen(prefix_hex(key)) < STORE_ID_PREFIX_MIN)
      return err_set(e, ERR_NOT_FOUND, 0, "image %s not found", key);
    return by_prefix_locked(s, key, found, e);
  case STORE_KEY_TAG:
    return by_name_locked(s, key, false, found, e);
  case STORE_KEY_DIGEST:
    return by_name_locked(s, key, true, found, e);
  case STORE_KEY_ANY:
    break;
  }
  return err_set(e, ERR_INVALID, 0, "unknown image key kind %d", (int)kind);
}

int store_image_lookup(struct store *s, enum store_key kind, const char *key,
                       struct image_record **out, err_t **e)
{
  if (!key || !*key)
    return err_set(e, ERR_INVALID, 0, "empty image reference");
  struct image_record *found = NULL;
  pthread_mutex_lock(&s->mu);
  int rc = lookup_locked(s, kind, key, &found, e);
  if (rc == 0)
    *out = image_record_dup(found);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int store_image_find(struct store *s, const char *key, struct image_record **out, err_t **e)
{
  return store_image_lookup(s, STORE_KEY_ANY, key, out, e);
}

static int cmp_pulled(const void *a, const void *b)
{
  const struct image_record *x = *(struct image_record *const *)a;
  const struct image_record *y = *(struct image_record *const *)b;
  if (x->pulled_at_ns != y->pulled_at_ns)
    return x->pulled_at_ns < y->pulled_at_ns ? -1 : 1;
  return strcmp(x->id, y->id);
}

int store_image_list(struct store *s, struct image_record ***out, size_t *n, err_t **e)
{
  pthread_mutex_lock(&s->mu);
  size_t count = s->n_images;
  struct image_record **v = xcalloc(count ? count : 1, sizeof(*v));
  for (size_t i = 0; i < count; i++)
    v[i] = image_record_dup(s->images[i]);
  pthread_mutex_unlock(&s->mu);
  if (count)
    qsort(v, count, sizeof(*v), cmp_pulled);
  *out = v;
  *n = count;
  return 0;
}

int store_image_config(struct store *s, const char *key, char **data, size_t *len, err_t **e)
{
  CLEANUP(image_record) struct image_record *r = NULL;
  if (store_image_find(s, key, &r, e) < 0)
    return -1;
  return store_get_blob(s, r->config_digest, data, len, e);
}

/* ---- add ----------------------------------------------------------------------- */

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The layers and the config must be here; the size is what they weigh. */
static int check_content_locked(struct store *s, const struct image_record *r, uint64_t *size,
                                err_t **e)
{
  uint64_t total = 0;
  for (size_t i = 0; i < r->n_layers; i++) {
    struct store_layer *l = store_layer_find_locked(s, r->chain_ids[i]);
    if (!l || l->phase != LAYER_READY)
      return err_set(e, ERR_PRECONDITION, 0, "layer %s is not in the store", r->chain_ids[i]);
    total += l->blob_size;
  }
  uint64_t config_size = 0;
  if (store_blob_size(s, r->id, &config_size, e) < 0)
    return err_set(e, ERR_PRECONDITION, 0, "config blob %s is not in the store", r->id);
  *size = total + config_size;
  return 0;
}

static void unite(char ***v, size_t *n, char *const *add, size_t n_add)
{
  for (size_t i = 0; i < n_add; i++) {
    if (has_name(*v, *n, add[i]))
      continue;
    *v = xreallocarray(*v, *n + 1, sizeof(**v));
    (*v)[(*n)++] = xstrdup(add[i]);
  }
}

/* r as it will be stored: united with the existing record of the same ID. */
static struct image_record *merged_record(const struct image_record *old,
                                          const struct image_record *r, uint64_t size)
{
  struct image_record *m = image_record_dup(r);
  m->size = size;
  if (!m->pulled_at_ns)
    m->pulled_at_ns = now_ns();
  /* rebuilt by union, which also drops duplicates within r */
  store_strv_free_array(m->repo_tags, m->n_tags);
  store_strv_free_array(m->repo_digests, m->n_digests);
  m->repo_tags = m->repo_digests = NULL;
  m->n_tags = m->n_digests = 0;
  unite(&m->repo_tags, &m->n_tags, r->repo_tags, r->n_tags);
  unite(&m->repo_digests, &m->n_digests, r->repo_digests, r->n_digests);
  if (old) {
    unite(&m->repo_tags, &m->n_tags, old->repo_tags, old->n_tags);
    unite(&m->repo_digests, &m->n_digests, old->repo_digests, old->n_digests);
    m->pinned = m->pinned || old->pinned;
  }
  return m;
}

/* Takes m's tags and digests off every other image. The new record is already on disk
 * and store_open settles a name found twice in favour of the newest pull, so a failed
 * rewrite here is logged and the in-memory index stays what a reload would give. */
static void move_names_locked(struct store *s, const struct image_record *m)
{
  for (size_t i = 0; i < s->n_images; i++) {
    struct image_record *o = s->images[i];
    if (strcmp(o->id, m->id) == 0)
      continue;
    bool changed = false;
    for (size_t t = 0; t < m->n_tags; t++)
      changed |= strip_name(o->repo_tags, &o->n_tags, m->repo_tags[t]);
    for (size_t d = 0; d < m->n_digests; d++)
      changed |= strip_name(o->repo_digests, &o->n_digests, m->repo_digests[d]);
    err_t *e = NULL;
    if (changed && record_write(s, o, &e) < 0)
      log_warn("cannot take moved tags off an image record", "id", o->id, "error", e->msg, NULL);
    err_free(&e);
  }
}

static int add_locked(struct store *s, const struct image_record *r, err_t **e)
{
  uint64_t size = 0;
  if (check_content_locked(s, r, &size, e) < 0)
    return -1;
  size_t i = index_by_id_locked(s, r->id);
  struct image_record *old = i == SIZE_MAX ? NULL : s->images[i];
  CLEANUP(image_record) struct image_record *m = merged_record(old, r, size);
  if (record_write(s, m, e) < 0)
    return -1;
  move_names_locked(s, m);
  if (old) {
    /* the old manifest may now be unreferenced */
    cleanup_free char *old_manifest = xstrdup(old->manifest_digest);
    image_record_free(old);
    s->images[i] = steal(&m);
    store_blobs_gc_locked(s, &old_manifest, 1);
  } else {
    store_vec_push(&s->images, &s->n_images, &s->cap_images, steal(&m));
  }
  store_changed_locked(s);
  return 0;
}

int store_image_add(struct store *s, const struct image_record *r, err_t **e)
{
  if (!r || store_record_check(r, e) < 0)
    return r ? err_wrap(e, "add image") : err_set(e, ERR_INVALID, 0, "add image: no record");
  pthread_mutex_lock(&s->mu);
  int rc = add_locked(s, r, e);
  pthread_mutex_unlock(&s->mu);
  return rc < 0 ? err_wrap(e, "add image %s", r->id) : 0;
}

/* ---- remove -------------------------------------------------------------------- */

static int remove_locked(struct store *s, const char *id, struct store_strv *trash, err_t **e)
{
  size_t i = index_by_id_locked(s, id);
  if (i == SIZE_MAX)
    return 0;
  cleanup_free char *path = record_path(s, id);
  /* the record may be the last reference on the disk to layers that containers hold */
  if (store_holds_sync_locked(s, e) < 0)
    return -1;
  if (unlink(path) < 0 && errno != ENOENT)
    return err_sys(e, errno, "delete %s", path);
  err_t *sync_err = NULL;
  if (store_fsync_dir(s->images_dir, &sync_err) < 0)
    log_warn("image record deletion may not be durable", "error", sync_err->msg, NULL);
  err_free(&sync_err);
  CLEANUP(image_record) struct image_record *r = s->images[i];
  store_vec_remove(&s->images, &s->n_images, i);
  store_layers_gc_locked(s, r->chain_ids, r->n_layers, trash);
  char *blobs[] = {r->manifest_digest, r->config_digest};
  store_blobs_gc_locked(s, blobs, 2);
  store_changed_locked(s);
  return 0;
}

int store_image_remove(struct store *s, const char *id, err_t **e)
{
  char full[STORE_DIGEST_BUF];
  if (!id || !normalise_id(id, full))
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not an image ID", id ? id : "");
  struct store_strv trash = {0};
  pthread_mutex_lock(&s->mu);
  int rc = remove_locked(s, full, &trash, e);
  pthread_mutex_unlock(&s->mu);
  store_trash_empty(&trash);
  return rc < 0 ? err_wrap(e, "remove image %s", full) : 0;
}

/* ---- load ---------------------------------------------------------------------- */

static int load_record(struct store *s, const char *name, struct image_record **out, err_t **e)
{
  cleanup_free char *path = path_join(s->images_dir, name);
  cleanup_free char *text = NULL;
  CLEANUP(image_record) struct image_record *r = NULL;
  size_t len = strlen(name);
  if (len != STORE_HEX_LEN + 5 || strcmp(name + STORE_HEX_LEN, ".json") != 0 ||
      !store_hex_valid(name, STORE_HEX_LEN))
    return err_set(e, ERR_INVALID, 0, "unexpected name in images/");
  if (file_read_all(path, STORE_RECORD_MAX, &text, NULL, e) < 0 ||
      store_record_decode(text, &r, e) < 0)
    return -1;
  if (strncmp(store_digest_hex(r->id), name, STORE_HEX_LEN) != 0)
    return err_set(e, ERR_INVALID, 0, "file name does not match image ID %s", r->id);
  for (size_t i = 0; i < r->n_layers; i++)
    if (!store_layer_ready_locked(s, r->chain_ids[i]))
      return err_set(e, ERR_INVALID, 0, "layer %s is missing", r->chain_ids[i]);
  if (!store_blob_exists(s, r->config_digest))
    return err_set(e, ERR_INVALID, 0, "config blob %s is missing", r->config_digest);
  *out = steal(&r);
  return 0;
}

/* A crash while moving a tag can leave it on two records: the newest pull keeps it. */
static void settle_names_locked(struct store *s)
{
  struct store_strv seen = {0};
  for (size_t i = s->n_images; i-- > 0;) {
    struct image_record *r = s->images[i];
    bool changed = false;
    for (size_t t = r->n_tags; t-- > 0;)
      if (store_strv_contains(&seen, r->repo_tags[t]))
        changed |= strip_name(r->repo_tags, &r->n_tags, r->repo_tags[t]);
    for (size_t d = r->n_digests; d-- > 0;)
      if (store_strv_contains(&seen, r->repo_digests[d]))
        changed |= strip_name(r->repo_digests, &r->n_digests, r->repo_digests[d]);
    for (size_t t = 0; t < r->n_tags; t++)
      store_strv_push(&seen, r->repo_tags[t]);
    for (size_t d = 0; d < r->n_digests; d++)
      store_strv_push(&seen, r->repo_digests[d]);
    err_t *e = NULL;
    if (changed)
      log_info("took names that a newer image holds off a record", "id", r->id, NULL);
    if (changed && !s->check_only && record_write(s, r, &e) < 0)
      log_warn("cannot rewrite image record", "id", r->id, "error", e->msg, NULL);
    err_free(&e);
  }
  store_strv_free(&seen);
}

int store_images_load(struct store *s, err_t **e)
{
  struct store_strv names = {0};
  if (store_list_dir(s->images_dir, &names, e) < 0)
    return -1;
  for (size_t i = 0; i < names.n; i++) {
    struct image_record *r = NULL;
    err_t *err = NULL;
    if (load_record(s, names.v[i], &r, &err) == 0) {
      store_report_count(s->report, "image");
      store_vec_push(&s->images, &s->n_images, &s->cap_images, r);
      continue;
    }
    cleanup_free char *path = path_join(s->images_dir, names.v[i]);
    store_quarantine(s, path, "image", err->msg);
    err_free(&err);
  }
  store_strv_free(&names);
  if (s->n_images)
    qsort(s->images, s->n_images, sizeof(*s->images), cmp_pulled);
  settle_names_locked(s);
  return 0;
}

void store_images_free_all(struct store *s)
{
  for (size_t i = 0; i < s->n_images; i++)
    image_record_free(s->images[i]);
  free(s->images);
  s->images = NULL;
  s->n_images = s->cap_images = 0;
}
