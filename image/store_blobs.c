/* store_blobs.c - content blobs (manifests, indexes, configs) under content/blobs/sha256. */
#include "image/store_int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

char *store_blob_path(const struct store *s, const char *digest)
{
  return path_join(s->blobs_dir, store_digest_hex(digest));
}

bool store_blob_exists(const struct store *s, const char *digest)
{
  cleanup_free char *path = store_blob_path(s, digest);
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int store_blob_size(const struct store *s, const char *digest, uint64_t *size, err_t **e)
{
  cleanup_free char *path = store_blob_path(s, digest);
  struct stat st;
  if (stat(path, &st) < 0)
    return err_sys(e, errno, "blob %s", digest);
  *size = (uint64_t)st.st_size;
  return 0;
}

int store_put_blob(struct store *s, const char *digest, const void *data, size_t len,
                   err_t **e)
{
  if (!store_digest_valid(digest))
    return err_set(e, ERR_INVALID, 0, "invalid blob digest \"%s\"", digest ? digest : "");
  char actual[STORE_DIGEST_BUF];
  store_sha256_digest(data, len, actual);
  if (strcmp(actual, digest) != 0)
    return err_set(e, ERR_INVALID, 0, "blob content has digest %s, not %s", actual, digest);
  cleanup_free char *path = store_blob_path(s, digest);
  /* under the lock, so a concurrent GC cannot delete the file between the check and
   * the write, and the usage cache sees the change */
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  if (!store_blob_exists(s, digest)) {
    rc = file_write_atomic(path, data, len, STORE_FILE_MODE, e);
    if (rc == 0)
      store_changed_locked(s);
  }
  pthread_mutex_unlock(&s->mu);
  return rc < 0 ? err_wrap(e, "store blob %s", digest) : 0;
}

int store_get_blob(struct store *s, const char *digest, char **data, size_t *len, err_t **e)
{
  if (!store_digest_valid(digest))
    return err_set(e, ERR_INVALID, 0, "invalid blob digest \"%s\"", digest ? digest : "");
  cleanup_free char *path = store_blob_path(s, digest);
  cleanup_free char *raw = NULL;
  size_t n = 0;
  if (file_read_all(path, STORE_BLOB_MAX, &raw, &n, e) < 0)
    return err_wrap(e, "read blob %s", digest);
  char actual[STORE_DIGEST_BUF];
  store_sha256_digest(raw, n, actual);
  if (strcmp(actual, digest) != 0)
    return err_set(e, ERR_INTERNAL, 0, "blob %s is corrupt on disk (content digest %s)", digest,
                   actual);
  *data = steal(&raw);
  if (len)
    *len = n;
  return 0;
}

void store_blobs_gc_locked(struct store *s, char *const *digests, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (store_image_references_blob_locked(s, digests[i]))
      continue;
    cleanup_free char *path = store_blob_path(s, digests[i]);
    if (unlink(path) == 0) {
      store_changed_locked(s);
      log_debug("deleted unreferenced blob", "digest", digests[i], NULL);
    } else if (errno != ENOENT) {
      log_warn("cannot delete blob", "path", path, "error", strerror(errno), NULL);
    }
  }
}

/* Checks every blob against its name; *all receives the digests of the good ones. */
int store_blobs_load(struct store *s, struct store_strv *all, err_t **e)
{
  struct store_strv names = {0};
  if (store_list_dir(s->blobs_dir, &names, e) < 0)
    return -1;
  for (size_t i = 0; i < names.n; i++) {
    cleanup_free char *digest = xasprintf("sha256:%s", names.v[i]);
    cleanup_free char *path = path_join(s->blobs_dir, names.v[i]);
    cleanup_free char *data = NULL;
    err_t *err = NULL;
    if (!store_digest_valid(digest))
      err_set(&err, ERR_INVALID, 0, "name is not a sha256 hex digest");
    else if (store_get_blob(s, digest, &data, NULL, &err) == 0) {
      store_strv_push(all, digest);
      store_report_count(s->report, "blob");
    }
    if (err)
      store_quarantine(s, path, "blob", err->msg);
    err_free(&err);
  }
  store_strv_free(&names);
  return 0;
}
