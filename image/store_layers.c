/* store_layers.c - unpacked layers: claiming, committing, holding and deleting them. */
#include "image/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

DEFINE_CLEANUP(store_layer, struct store_layer)

static char *layer_dir(const struct store *s, const char *chain_id)
{
  return path_join(s->layers_dir, store_digest_hex(chain_id));
}

static char *layer_meta(const struct store *s, const char *chain_id)
{
  return xasprintf("%s/%s.json", s->layers_dir, store_digest_hex(chain_id));
}

struct store_layer *store_layer_find_locked(struct store *s, const char *chain_id)
{
  for (size_t i = 0; i < s->n_layers; i++)
    if (strcmp(s->layers[i]->chain_id, chain_id) == 0)
      return s->layers[i];
  return NULL;
}

bool store_layer_ready_locked(struct store *s, const char *chain_id)
{
  struct store_layer *l = store_layer_find_locked(s, chain_id);
  return l && l->phase == LAYER_READY;
}

static void layer_drop_locked(struct store *s, struct store_layer *l)
{
  for (size_t i = 0; i < s->n_layers; i++) {
    if (s->layers[i] == l) {
      store_vec_remove(&s->layers, &s->n_layers, i);
      store_layer_free(l);
      return;
    }
  }
}

/* 0 when woken, ETIMEDOUT when the deadline passed. */
static int wait_layer_locked(struct store *s, int64_t deadline_ns)
{
  if (deadline_ns <= 0)
    return pthread_cond_wait(&s->layer_cv, &s->mu);
  struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
  return pthread_cond_timedwait(&s->layer_cv, &s->mu, &ts);
}

static int claim_locked(struct store *s, const char *chain_id, char **tmpdir, err_t **e)
{
  cleanup_free char *tmpl = xasprintf("%s/%s.tmp-XXXXXX", s->layers_dir,
                                      store_digest_hex(chain_id));
  if (!mkdtemp(tmpl))
    return err_sys(e, errno, "create layer directory in %s", s->layers_dir);
  struct store_layer *l = xcalloc(1, sizeof(*l));
  memcpy(l->chain_id, chain_id, STORE_DIGEST_BUF);
  l->phase = LAYER_UNPACKING;
  l->tmpdir = xstrdup(tmpl);
  store_vec_push(&s->layers, &s->n_layers, &s->cap_layers, l);
  *tmpdir = steal(&tmpl);
  return 0;
}

int store_layer_begin(struct store *s, const char *chain_id, int64_t deadline_ns,
                      enum store_layer_state *state, char **tmpdir, err_t **e)
{
  if (!store_digest_valid(chain_id))
    return err_set(e, ERR_INVALID, 0, "invalid chain ID \"%s\"", chain_id ? chain_id : "");
  *tmpdir = NULL;
  pthread_mutex_lock(&s->mu);
  struct store_layer *l;
  while ((l = store_layer_find_locked(s, chain_id)) && l->phase == LAYER_UNPACKING) {
    if (wait_layer_locked(s, deadline_ns) == ETIMEDOUT) {
      pthread_mutex_unlock(&s->mu);
      return err_set(e, ERR_DEADLINE, ETIMEDOUT, "waiting for layer %s to be unpacked",
                     chain_id);
    }
  }
  int rc = 0;
  if (l) {
    *state = STORE_LAYER_PRESENT;
  } else {
    *state = STORE_LAYER_YOURS;
    rc = claim_locked(s, chain_id, tmpdir, e);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* The caller's claim: its layer if chain_id is being unpacked into tmpdir. */
static struct store_layer *claim_find_locked(struct store *s, const char *chain_id,
                                             const char *tmpdir)
{
  struct store_layer *l = store_layer_find_locked(s, chain_id);
  if (!l || l->phase != LAYER_UNPACKING || !tmpdir || strcmp(l->tmpdir, tmpdir) != 0)
    return NULL;
  return l;
}

static int check_info(const char *chain_id, const struct store_layer_info *info, err_t **e)
{
  char expect[STORE_DIGEST_BUF];
  if (!info || !store_digest_valid(info->blob_digest))
    return err_set(e, ERR_INVALID, 0, "layer %s: invalid blob digest", chain_id);
  if (store_chain_id(info->parent, info->diff_id, expect, e) < 0)
    return err_wrap(e, "layer %s", chain_id);
  if (strcmp(expect, chain_id) != 0)
    return err_set(e, ERR_INVALID, 0, "layer %s: its parent and diff ID give chain ID %s",
                   chain_id, expect);
  return 0;
}

/* Metadata first, then the directory: a crash in between leaves metadata without a
 * directory, which store_open deletes. syncfs makes the unpacked files durable before
 * the rename publishes them, so a crash never leaves a layer that looks whole but is not. */
static int publish(struct store *s, const char *chain_id, const char *tmpdir,
                   const struct store_layer *meta, err_t **e)
{
  cleanup_free char *dir = layer_dir(s, chain_id);
  cleanup_free char *meta_path = layer_meta(s, chain_id);
  cleanup_free char *text = store_layer_encode(meta);
  cleanup_close int fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) < 0)
    return err_sys(e, errno, "sync %s", tmpdir);
  if (file_write_atomic(meta_path, text, strlen(text), STORE_FILE_MODE, e) < 0)
    return -1;
  if (rename(tmpdir, dir) < 0) {
    int saved = errno;
    unlink(meta_path);
    return err_sys(e, saved, "rename %s to %s", tmpdir, dir);
  }
  return store_fsync_dir(s->layers_dir, e);
}

int store_layer_commit(struct store *s, const char *chain_id, const char *tmpdir,
                       const struct store_layer_info *info, err_t **e)
{
  if (!store_digest_valid(chain_id))
    return err_set(e, ERR_INVALID, 0, "invalid chain ID \"%s\"", chain_id ? chain_id : "");
  if (check_info(chain_id, info, e) < 0)
    return -1;
  pthread_mutex_lock(&s->mu);
  bool owned = claim_find_locked(s, chain_id, tmpdir) != NULL;
  pthread_mutex_unlock(&s->mu);
  if (!owned)
    return err_set(e, ERR_PRECONDITION, 0, "layer %s is not being unpacked into %s", chain_id,
                   tmpdir ? tmpdir : "(null)");
  /* the claim is exclusive, so the files are touched outside the lock */
  struct store_layer meta = {.parent = (char *)info->parent, .diff_id = (char *)info->diff_id,
                             .blob_digest = (char *)info->blob_digest,
                             .blob_size = info->blob_size};
  memcpy(meta.chain_id, chain_id, STORE_DIGEST_BUF);
  if (publish(s, chain_id, tmpdir, &meta, e) < 0)
    return err_wrap(e, "commit layer %s", chain_id);
  pthread_mutex_lock(&s->mu);
  struct store_layer *l = claim_find_locked(s, chain_id, tmpdir);
  if (!l) {  /* aborted by another thread meanwhile: the contract says once, by the owner */
    pthread_mutex_unlock(&s->mu);
    return err_set(e, ERR_INTERNAL, 0, "layer %s was aborted while being committed", chain_id);
  }
  l->phase = LAYER_READY;
  free(l->tmpdir);
  l->tmpdir = NULL;
  l->parent = xstrdup(info->parent);
  l->diff_id = xstrdup(info->diff_id);
  l->blob_digest = xstrdup(info->blob_digest);
  l->blob_size = info->blob_size;
  store_changed_locked(s);
  pthread_cond_broadcast(&s->layer_cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void store_layer_abort(struct store *s, const char *chain_id, const char *tmpdir)
{
  if (!store_digest_valid(chain_id))
    return;
  pthread_mutex_lock(&s->mu);
  struct store_layer *l = claim_find_locked(s, chain_id, tmpdir);
  if (l) {
    layer_drop_locked(s, l);
    store_changed_locked(s);
    pthread_cond_broadcast(&s->layer_cv);
  }
  pthread_mutex_unlock(&s->mu);
  if (!l)
    return;
  err_t *e = NULL;
  if (rm_rf(tmpdir, &e) < 0)  /* left as debris for the next store_open */
    log_warn("cannot delete aborted layer directory", "path", tmpdir, "error", e->msg, NULL);
  err_free(&e);
}

int store_layer_path(struct store *s, const char *chain_id, char **out, err_t **e)
{
  if (!store_digest_valid(chain_id))
    return err_set(e, ERR_INVALID, 0, "invalid chain ID \"%s\"", chain_id ? chain_id : "");
  pthread_mutex_lock(&s->mu);
  bool ready = store_layer_ready_locked(s, chain_id);
  pthread_mutex_unlock(&s->mu);
  if (!ready)
    return err_set(e, ERR_NOT_FOUND, 0, "layer %s is not in the store", chain_id);
  *out = layer_dir(s, chain_id);
  return 0;
}

/* ---- deletion ------------------------------------------------------------------ */

/* Metadata goes first (the directory is then garbage even if the rest fails), then the
 * directory is renamed to a "*.tmp-*" name that the caller deletes outside the lock. */
static int layer_delete_locked(struct store *s, struct store_layer *l, struct store_strv *trash)
{
  cleanup_free char *meta = layer_meta(s, l->chain_id);
  cleanup_free char *dir = layer_dir(s, l->chain_id);
  if (unlink(meta) < 0 && errno != ENOENT) {
    log_warn("cannot delete layer metadata", "path", meta, "error", strerror(errno), NULL);
    return -1;
  }
  cleanup_free char *gone = xasprintf("%s.tmp-gc-XXXXXX", dir);
  /* an empty directory from mkdtemp is a unique name that rename(2) may replace */
  bool made = mkdtemp(gone) != NULL;
  if (made && rename(dir, gone) == 0) {
    store_strv_push(trash, gone);
    return 0;
  }
  /* never hand the final name to the trash: a new claim could reuse it before the
   * trash is emptied. Deleting in place under the lock is slow but this is rare. */
  log_warn("cannot move deleted layer aside", "path", dir, "error", strerror(errno), NULL);
  if (made)
    rmdir(gone);
  err_t *e = NULL;
  if (rm_rf(dir, &e) < 0)
    log_warn("cannot delete layer directory", "path", dir, "error", e->msg, NULL);
  err_free(&e);
  return 0;
}

void store_layers_gc_locked(struct store *s, char *const *chain_ids, size_t n,
                            struct store_strv *trash)
{
  for (size_t i = 0; i < n; i++) {
    struct store_layer *l = store_layer_find_locked(s, chain_ids[i]);
    if (!l || l->phase != LAYER_READY || store_layer_held_locked(s, l->chain_id) ||
        store_image_references_layer_locked(s, l->chain_id))
      continue;
    log_debug("deleting unreferenced layer", "chain_id", l->chain_id, NULL);
    if (layer_delete_locked(s, l, trash) == 0)
      layer_drop_locked(s, l);
    store_changed_locked(s);
  }
}

/* ---- loading ------------------------------------------------------------------- */

static bool is_dir(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void remove_garbage_dir(const char *dir, const char *why)
{
  err_t *e = NULL;
  log_warn("removing layer directory", "path", dir, "reason", why, NULL);
  if (rm_rf(dir, &e) < 0)
    log_warn("cannot delete layer directory", "path", dir, "error", e->msg, NULL);
  err_free(&e);
}

/* layers/<hex>.json: a good one with its directory becomes a ready layer. */
static void load_layer_meta(struct store *s, const char *name)
{
  cleanup_free char *path = path_join(s->layers_dir, name);
  cleanup_free char *dir = xstrndup(path, strlen(path) - strlen(".json"));
  cleanup_free char *text = NULL;
  CLEANUP(store_layer) struct store_layer *l = NULL;
  err_t *e = NULL;
  if (file_read_all(path, STORE_RECORD_MAX, &text, NULL, &e) == 0 &&
      store_layer_decode(text, &l, &e) == 0 &&
      strncmp(store_digest_hex(l->chain_id), name, STORE_HEX_LEN) != 0)
    err_set(&e, ERR_INVALID, 0, "file name does not match chain ID %s", l->chain_id);
  if (e) {
    store_quarantine(s, path, "layer", e->msg);
    err_free(&e);
    if (is_dir(dir) && !s->check_only)
      remove_garbage_dir(dir, "its metadata is corrupt");
    return;
  }
  if (!is_dir(dir)) {
    /* a crash between writing the metadata and renaming the directory */
    if (s->check_only)
      return;
    log_info("removing metadata of a layer that was never committed", "path", path, NULL);
    unlink(path);
    return;
  }
  l->phase = LAYER_READY;
  store_report_count(s->report, "layer");
  store_vec_push(&s->layers, &s->n_layers, &s->cap_layers, steal(&l));
}

static bool name_is_hex(const char *name, const char *suffix)
{
  size_t n = strlen(name), sl = strlen(suffix);
  return n == STORE_HEX_LEN + sl && store_hex_valid(name, STORE_HEX_LEN) &&
         strcmp(name + STORE_HEX_LEN, suffix) == 0;
}

int store_layers_load(struct store *s, err_t **e)
{
  struct store_strv names = {0};
  if (store_list_dir(s->layers_dir, &names, e) < 0)
    return -1;
  for (size_t i = 0; i < names.n; i++) {
    const char *name = names.v[i];
    cleanup_free char *path = path_join(s->layers_dir, name);
    if (name_is_hex(name, ".json")) {
      load_layer_meta(s, name);
    } else if (name_is_hex(name, "") && is_dir(path)) {
      cleanup_free char *meta = xasprintf("%s.json", path);
      if (access(meta, F_OK) < 0 && !s->check_only)
        remove_garbage_dir(path, "it has no metadata");
    } else {
      store_quarantine(s, path, "layer", "unexpected name in layers/");
    }
  }
  store_strv_free(&names);
  return 0;
}

void store_layers_free_all(struct store *s)
{
  for (size_t i = 0; i < s->n_layers; i++)
    store_layer_free(s->layers[i]);
  free(s->layers);
  s->layers = NULL;
  s->n_layers = s->cap_layers = 0;
}
