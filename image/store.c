/* store.c - opening, loading and repairing the image store; quarantine; closing. */
#include "image/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

void store_changed_locked(struct store *s)
{
  s->generation++;
  s->usage_valid = false;
}

void store_quarantine(struct store *s, const char *path, const char *kind, const char *reason)
{
  store_problem(s->report, s->quarantine_dir, path, kind, reason);
}

/* "*.tmp-*" entries are unfinished work of a process that died. */
static int remove_debris(const struct store *s, const char *dir, err_t **e)
{
  struct store_strv names = {0};
  if (s->check_only)
    return 0;
  if (store_list_dir(dir, &names, e) < 0)
    return -1;
  for (size_t i = 0; i < names.n; i++) {
    if (!strstr(names.v[i], ".tmp-"))
      continue;
    cleanup_free char *path = path_join(dir, names.v[i]);
    err_t *err = NULL;
    log_info("removing leftover of an interrupted write", "path", path, NULL);
    if (rm_rf(path, &err) < 0)
      log_warn("cannot remove leftover", "path", path, "error", err->msg, NULL);
    err_free(&err);
  }
  store_strv_free(&names);
  return 0;
}

static int make_dirs(struct store *s, err_t **e)
{
  const char *dirs[] = {s->root, s->blobs_dir, s->layers_dir, s->images_dir, s->holds_dir};
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !s->check_only; i++)
    if (mkdir_p(dirs[i], STORE_DIR_MODE, e) < 0)
      return -1;
  if (s->check_only)
    return 0;
  s->root_real = realpath(s->root, NULL);
  if (!s->root_real)
    return err_sys(e, errno, "resolve %s", s->root);
  return 0;
}

static int lock_fd(const char *root, int *out, err_t **e)
{
  cleanup_free char *path = path_join(root, "lock");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, STORE_FILE_MODE);
  if (fd < 0)
    return err_sys(e, errno, "open %s", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int saved = errno;
    close(fd);
    if (saved == EWOULDBLOCK)
      return err_set(e, ERR_PRECONDITION, saved, "image store %s is in use by another process",
                     root);
    return err_sys(e, saved, "lock %s", path);
  }
  *out = fd;
  return 0;
}

int store_lock(const char *root, int *fd, err_t **e)
{
  if (mkdir_p(root, STORE_DIR_MODE, e) < 0)
    return -1;
  return lock_fd(root, fd, e);
}

/* One process per root: two daemons sharing layers/ would delete each other's work. */
static int lock_root(struct store *s, err_t **e)
{
  return lock_fd(s->root, &s->lock_fd, e);
}

/* Deletes what no record and no holder needs: what a failed or crashed pull left. */
static void collect_orphans(struct store *s, struct store_strv *blobs)
{
  struct store_strv chains = {0}, trash = {0};
  for (size_t i = 0; i < s->n_layers; i++)
    store_strv_push(&chains, s->layers[i]->chain_id);
  store_layers_gc_locked(s, chains.v, chains.n, &trash);
  store_blobs_gc_locked(s, blobs->v, blobs->n);
  store_strv_free(&chains);
  store_trash_empty(&trash);
}

void store_collect(struct store *s, char *const *chain_ids, size_t n_chains,
                   char *const *digests, size_t n_digests)
{
  struct store_strv trash = {0};
  pthread_mutex_lock(&s->mu);
  store_layers_gc_locked(s, chain_ids, n_chains, &trash);
  store_blobs_gc_locked(s, digests, n_digests);
  pthread_mutex_unlock(&s->mu);
  store_trash_empty(&trash);
}

static int load(struct store *s, err_t **e)
{
  const char *dirs[] = {s->blobs_dir, s->layers_dir, s->images_dir, s->holds_dir};
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
    if (remove_debris(s, dirs[i], e) < 0)
      return -1;
  struct store_strv blobs = {0};
  int rc = -1;
  /* order matters: records are checked against layers and blobs */
  if (store_blobs_load(s, &blobs, e) == 0 && store_layers_load(s, e) == 0 &&
      store_holders_load(s, e) == 0 && store_images_load(s, e) == 0) {
    if (!s->check_only)
      collect_orphans(s, &blobs);
    rc = 0;
  }
  store_strv_free(&blobs);
  return rc;
}

static struct store *store_new(const char *root)
{
  struct store *s = xcalloc(1, sizeof(*s));
  s->lock_fd = -1;
  s->root = xstrdup(root);
  s->blobs_dir = path_join(root, "content/blobs/sha256");
  s->layers_dir = path_join(root, "layers");
  s->images_dir = path_join(root, "images");
  s->holds_dir = path_join(root, "holds");
  s->quarantine_dir = path_join(root, "quarantine");
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&s->layer_cv, &attr);
  pthread_condattr_destroy(&attr);
  return s;
}

static void cleanup_store_fn(struct store **p) { store_close(*p); }

int store_open(const char *root, struct store **out, err_t **e)
{
  if (!root || !*root)
    return err_set(e, ERR_INVALID, 0, "image store: empty root path");
  __attribute__((cleanup(cleanup_store_fn))) struct store *s = store_new(root);
  if (make_dirs(s, e) < 0 || lock_root(s, e) < 0 || load(s, e) < 0)
    return err_wrap(e, "open image store %s", root);
  log_debug("image store loaded", "root", root, NULL);
  *out = steal(&s);
  return 0;
}

int store_check(const char *root, struct store_report *r, err_t **e)
{
  if (!root || !*root)
    return err_set(e, ERR_INVALID, 0, "image store: empty root path");
  __attribute__((cleanup(cleanup_store_fn))) struct store *s = store_new(root);
  s->report = r;
  s->check_only = r->check_only;
  if (make_dirs(s, e) < 0 || load(s, e) < 0)
    return err_wrap(e, "check image store %s", root);
  return 0;
}

void store_close(struct store *s)
{
  if (!s)
    return;
  store_images_free_all(s);
  store_holders_free_all(s);
  store_layers_free_all(s);
  pthread_cond_destroy(&s->layer_cv);
  pthread_mutex_destroy(&s->mu);
  if (s->lock_fd >= 0)
    close(s->lock_fd);
  free(s->root);
  free(s->root_real);
  free(s->blobs_dir);
  free(s->layers_dir);
  free(s->images_dir);
  free(s->holds_dir);
  free(s->quarantine_dir);
  free(s);
}
