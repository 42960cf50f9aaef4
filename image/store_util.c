/* store_util.c - small containers and directory helpers for the image store. */
#include "image/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

void store_strv_push_owned(struct store_strv *sv, char *s)
{
  if (sv->n == sv->cap) {
    sv->cap = sv->cap ? 2 * sv->cap : 8;
    sv->v = xreallocarray(sv->v, sv->cap, sizeof(*sv->v));
  }
  sv->v[sv->n++] = s;
}

void store_strv_push(struct store_strv *sv, const char *s)
{
  store_strv_push_owned(sv, xstrdup(s));
}

bool store_strv_contains(const struct store_strv *sv, const char *s)
{
  for (size_t i = 0; i < sv->n; i++)
    if (strcmp(sv->v[i], s) == 0)
      return true;
  return false;
}

void store_strv_free(struct store_strv *sv)
{
  store_strv_free_array(sv->v, sv->n);
  sv->v = NULL;
  sv->n = sv->cap = 0;
}

char **store_strv_dup_array(char *const *v, size_t n)
{
  char **out = xcalloc(n ? n : 1, sizeof(*out));
  for (size_t i = 0; i < n; i++)
    out[i] = xstrdup(v[i]);
  return out;
}

void store_strv_free_array(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* vec points at a `T **` array of pointers; item is appended. Returns the new array. */
void *store_vec_push(void *vec, size_t *n, size_t *cap, void *item)
{
  void ***arr = vec;
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 8;
    *arr = xreallocarray(*arr, *cap, sizeof(**arr));
  }
  (*arr)[(*n)++] = item;
  return *arr;
}

/* Removes element i, keeping the order (lists are shown oldest first). */
void store_vec_remove(void *vec, size_t *n, size_t i)
{
  void ***arr = vec;
  memmove(&(*arr)[i], &(*arr)[i + 1], (*n - i - 1) * sizeof(**arr));
  (*n)--;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_list_dir(const char *dir, struct store_strv *out, err_t **e)
{
  cleanup_closedir DIR *d = opendir(dir);
  if (!d && errno == ENOENT)
    return 0;   /* store_open made it; only store_check meets a store that is not there */
  if (!d)
    return err_sys(e, errno, "open directory %s", dir);
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      store_strv_push(out, de->d_name);
    errno = 0;
  }
  if (errno)
    return err_sys(e, errno, "read directory %s", dir);
  if (out->n)
    qsort(out->v, out->n, sizeof(*out->v), cmp_str);
  return 0;
}

int store_fsync_dir(const char *dir, err_t **e)
{
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "open %s", dir);
  if (fsync(fd) < 0)
    return err_sys(e, errno, "fsync %s", dir);
  return 0;
}

void store_trash_empty(struct store_strv *trash)
{
  for (size_t i = 0; i < trash->n; i++) {
    err_t *e = NULL;
    /* a failure leaves "*.tmp-*" debris that the next store_open removes */
    if (rm_rf(trash->v[i], &e) < 0)
      log_warn("cannot delete layer directory", "path", trash->v[i], "error", e->msg, NULL);
    err_free(&e);
  }
  store_strv_free(trash);
}
