/* trash.c - directories deleted off the caller's path (trash.h). */
#include "cri/trash.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

#define TRASH_DIR "trash"

struct trash {
  char **parents;          /* the dirs given to trash_open */
  char **bins;             /* <parent>/trash */
  size_t n;
  pthread_t th;
  bool started;            /* th runs */
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* work queued, or stop */
  pthread_cond_t idle;     /* the queue ran dry */
  unsigned pending;        /* puts not swept yet */
  bool busy, stop;
  atomic_ulong seq;        /* unique names in the bins */
};

/* Deletes everything in every bin. */
static void sweep(struct trash *t)
{
  for (size_t i = 0; i < t->n; i++) {
    cleanup_closedir DIR *d = opendir(t->bins[i]);
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      cleanup_free char *p = path_join(t->bins[i], de->d_name);
      err_t *e = NULL;
      if (rm_rf(p, &e) < 0) {
        log_warn("cannot empty the trash", "path", p, "error", e->msg, NULL);
        err_free(&e);
      }
    }
  }
}

static void *run(void *arg)
{
  struct trash *t = arg;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    while (!t->stop && t->pending == 0)
      pthread_cond_wait(&t->cv, &t->mu);
    unsigned took = t->pending;
    bool stop = t->stop;
    t->busy = true;
    pthread_mutex_unlock(&t->mu);
    sweep(t);
    pthread_mutex_lock(&t->mu);
    t->busy = false;
    t->pending -= took;
    if (t->pending == 0)
      pthread_cond_broadcast(&t->idle);
    if (stop)
      break;
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

int trash_open(const char *const *dirs, size_t n, struct trash **out, err_t **e)
{
  struct trash *t = xcalloc(1, sizeof(*t));
  t->parents = xcalloc(n, sizeof(char *));
  t->bins = xcalloc(n, sizeof(char *));
  t->n = n;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  pthread_cond_init(&t->idle, NULL);
  for (size_t i = 0; i < n; i++) {
    t->parents[i] = xstrdup(dirs[i]);
    t->bins[i] = path_join(dirs[i], TRASH_DIR);
    if (mkdir(t->bins[i], 0700) < 0 && errno != EEXIST) {
      err_sys(e, errno, "create the trash dir %s", t->bins[i]);
      t->n = i + 1;
      trash_close(t);
      return -1;
    }
  }
  t->pending = 1;   /* what an earlier crispd left */
  int rc = pthread_create(&t->th, NULL, run, t);
  if (rc != 0) {
    trash_close(t);
    return err_sys(e, rc, "start the trash thread");
  }
  t->started = true;
  *out = t;
  return 0;
}

void trash_close(struct trash *t)
{
  if (!t)
    return;
  if (t->started) {
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
  }
  for (size_t i = 0; i < t->n; i++) {
    free(t->parents[i]);
    free(t->bins[i]);
  }
  free(t->parents);
  free(t->bins);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  pthread_cond_destroy(&t->idle);
  free(t);
}

/* The bin of the parent that path is directly or indirectly under. */
static const char *bin_for(const struct trash *t, const char *path)
{
  for (size_t i = 0; i < t->n; i++) {
    size_t l = strlen(t->parents[i]);
    if (strncmp(path, t->parents[i], l) == 0 && path[l] == '/')
      return t->bins[i];
  }
  return NULL;
}

int trash_put(struct trash *t, const char *path, err_t **e)
{
  const char *bin = bin_for(t, path);
  if (!bin)
    return rm_rf(path, e);
  const char *base = strrchr(path, '/') + 1;
  cleanup_free char *dst = xasprintf("%s/%.64s-%lu", bin, base, atomic_fetch_add(&t->seq, 1));
  if (rename(path, dst) < 0) {
    if (errno == ENOENT)
      return 0;
    if (errno != EXDEV)
      return err_sys(e, errno, "move %s to the trash", path);
    return rm_rf(path, e);
  }
  pthread_mutex_lock(&t->mu);
  t->pending++;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
  return 0;
}

void trash_flush(struct trash *t)
{
  pthread_mutex_lock(&t->mu);
  while (t->pending > 0 || t->busy)
    pthread_cond_wait(&t->idle, &t->mu);
  pthread_mutex_unlock(&t->mu);
}
