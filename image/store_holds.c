/* store_holds.c - holders (containers) that keep layers alive, persisted in holds/. */
#include "image/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

DEFINE_CLEANUP(store_holder, struct store_holder)

static char *holder_path(const struct store *s, const char *name)
{
  return xasprintf("%s/%s.json", s->holds_dir, name);
}

static size_t holder_index_locked(struct store *s, const char *name)
{
  for (size_t i = 0; i < s->n_holders; i++)
    if (strcmp(s->holders[i]->name, name) == 0)
      return i;
  return SIZE_MAX;
}

bool store_layer_held_locked(struct store *s, const char *chain_id)
{
  for (size_t i = 0; i < s->n_holders; i++) {
    const struct store_holder *h = s->holders[i];
    for (size_t j = 0; j < h->n; j++)
      if (strcmp(h->chain_ids[j], chain_id) == 0)
        return true;
  }
  return false;
}

/* A holder naming the same layer twice holds it once. */
static struct store_holder *holder_new(const char *name, const char *const *ids, size_t n)
{
  struct store_holder *h = xcalloc(1, sizeof(*h));
  struct store_strv uniq = {0};
  h->name = xstrdup(name);
  for (size_t i = 0; i < n; i++)
    if (!store_strv_contains(&uniq, ids[i]))
      store_strv_push(&uniq, ids[i]);
  h->chain_ids = uniq.v;
  h->n = uniq.n;
  return h;
}

static int check_hold_args(const char *holder, const char *const *chain_ids, size_t n, err_t **e)
{
  if (!store_holder_name_valid(holder))
    return err_set(e, ERR_INVALID, 0, "invalid layer holder name \"%s\"", holder ? holder : "");
  for (size_t i = 0; i < n; i++)
    if (!store_digest_valid(chain_ids[i]))
      return err_set(e, ERR_INVALID, 0, "invalid chain ID \"%s\"",
                     chain_ids[i] ? chain_ids[i] : "");
  return 0;
}

static int hold_locked(struct store *s, struct store_holder *h, struct store_strv *trash,
                       err_t **e)
{
  for (size_t i = 0; i < h->n; i++)
    if (!store_layer_ready_locked(s, h->chain_ids[i]))
      return err_set(e, ERR_NOT_FOUND, 0, "layer %s is not in the store", h->chain_ids[i]);
  cleanup_free char *path = holder_path(s, h->name);
  cleanup_free char *text = store_holder_encode(h);
  /* not waited onto the disk here (CreateContainer's hot path): a hold matters after a
   * power loss only where no image record references its layers any more, and every
   * deletion that could bring that about syncs the pending holds first */
  if (file_write_atomic_nosync(path, text, strlen(text), STORE_FILE_MODE, e) < 0)
    return -1;
  h->durable = false;
  size_t i = holder_index_locked(s, h->name);
  CLEANUP(store_holder) struct store_holder *old = NULL;
  if (i != SIZE_MAX) {
    old = s->holders[i];
    store_vec_remove(&s->holders, &s->n_holders, i);
  }
  store_vec_push(&s->holders, &s->n_holders, &s->cap_holders, h);
  /* what the old set held and the new one does not may be garbage now */
  if (old)
    store_layers_gc_locked(s, old->chain_ids, old->n, trash);
  store_changed_locked(s);
  return 0;
}

int store_layers_hold(struct store *s, const char *holder, const char *const *chain_ids,
                      size_t n, err_t **e)
{
  if (check_hold_args(holder, chain_ids, n, e) < 0)
    return -1;
  CLEANUP(store_holder) struct store_holder *h = holder_new(holder, chain_ids, n);
  struct store_strv trash = {0};
  pthread_mutex_lock(&s->mu);
  int rc = hold_locked(s, h, &trash, e);
  if (rc == 0)
    h = NULL;  /* the index owns it now */
  pthread_mutex_unlock(&s->mu);
  store_trash_empty(&trash);
  return rc < 0 ? err_wrap(e, "hold layers for %s", holder) : 0;
}

int store_holds_sync_locked(struct store *s, err_t **e)
{
  bool any = false;
  for (size_t i = 0; i < s->n_holders; i++) {
    struct store_holder *h = s->holders[i];
    if (h->durable)
      continue;
    cleanup_free char *path = holder_path(s, h->name);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
      return err_sys(e, errno, "put layer hold %s on the disk", path);
    any = true;
  }
  if (any && store_fsync_dir(s->holds_dir, e) < 0)
    return err_wrap(e, "put layer holds on the disk");
  for (size_t i = 0; i < s->n_holders; i++)
    s->holders[i]->durable = true;
  return 0;
}

/* Whether deleting h's file could leave one of its layers referenced on the disk only by
 * a hold that is not there yet: a layer no image record names, held by a pending hold. */
static bool release_needs_sync_locked(struct store *s, const struct store_holder *h)
{
  for (size_t i = 0; i < h->n; i++) {
    if (store_image_references_layer_locked(s, h->chain_ids[i]))
      continue;
    for (size_t j = 0; j < s->n_holders; j++) {
      const struct store_holder *o = s->holders[j];
      if (o == h || o->durable)
        continue;
      for (size_t k = 0; k < o->n; k++)
        if (strcmp(o->chain_ids[k], h->chain_ids[i]) == 0)
          return true;
    }
  }
  return false;
}

int store_layers_release(struct store *s, const char *holder, err_t **e)
{
  if (!store_holder_name_valid(holder))
    return err_set(e, ERR_INVALID, 0, "invalid layer holder name \"%s\"", holder ? holder : "");
  cleanup_free char *path = holder_path(s, holder);
  struct store_strv trash = {0};
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  size_t i = holder_index_locked(s, holder);
  if (i != SIZE_MAX && release_needs_sync_locked(s, s->holders[i]) &&
      store_holds_sync_locked(s, e) < 0) {
    rc = err_wrap(e, "release layers of %s", holder);
  } else if (unlink(path) < 0 && errno != ENOENT) {
    rc = err_sys(e, errno, "release layers of %s: delete %s", holder, path);
  } else if (i != SIZE_MAX) {
    CLEANUP(store_holder) struct store_holder *h = s->holders[i];
    store_vec_remove(&s->holders, &s->n_holders, i);
    store_layers_gc_locked(s, h->chain_ids, h->n, &trash);
    store_changed_locked(s);
  }
  pthread_mutex_unlock(&s->mu);
  store_trash_empty(&trash);
  return rc;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_layers_holders(struct store *s, char ***out, size_t *n, err_t **e)
{
  struct store_strv names = {0};
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n_holders; i++)
    store_strv_push(&names, s->holders[i]->name);
  pthread_mutex_unlock(&s->mu);
  if (names.n)
    qsort(names.v, names.n, sizeof(*names.v), cmp_str);
  *out = names.v ? names.v : xcalloc(1, sizeof(char *));
  *n = names.n;
  return 0;
}

static void load_holder(struct store *s, const char *name)
{
  cleanup_free char *path = path_join(s->holds_dir, name);
  cleanup_free char *text = NULL;
  CLEANUP(store_holder) struct store_holder *h = NULL;
  err_t *e = NULL;
  size_t len = strlen(name);
  if (len <= 5 || strcmp(name + len - 5, ".json") != 0)
    err_set(&e, ERR_INVALID, 0, "unexpected name in holds/");
  else if (file_read_all(path, STORE_RECORD_MAX, &text, NULL, &e) == 0 &&
           store_holder_decode(text, &h, &e) == 0 &&
           (strlen(h->name) != len - 5 || strncmp(h->name, name, len - 5) != 0))
    err_set(&e, ERR_INVALID, 0, "file name does not match holder %s", h->name);
  if (e) {
    store_quarantine(s, path, "hold", e->msg);
    err_free(&e);
    return;
  }
  for (size_t i = 0; i < h->n; i++)
    if (!store_layer_ready_locked(s, h->chain_ids[i]))
      log_warn("a held layer is missing", "holder", h->name, "chain_id", h->chain_ids[i], NULL);
  store_report_count(s->report, "hold");
  h->durable = false;   /* a restart does not put what an earlier crispd wrote on the disk */
  store_vec_push(&s->holders, &s->n_holders, &s->cap_holders, steal(&h));
}

int store_holders_load(struct store *s, err_t **e)
{
  struct store_strv names = {0};
  if (store_list_dir(s->holds_dir, &names, e) < 0)
    return -1;
  for (size_t i = 0; i < names.n; i++)
    load_holder(s, names.v[i]);
  store_strv_free(&names);
  return 0;
}

void store_holders_free_all(struct store *s)
{
  for (size_t i = 0; i < s->n_holders; i++)
    store_holder_free(s->holders[i]);
  free(s->holders);
  s->holders = NULL;
  s->n_holders = s->cap_holders = 0;
}
