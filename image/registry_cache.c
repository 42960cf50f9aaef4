/* registry_cache.c - a small key -> string cache with expiry, safe across threads.
 * A linear array: it holds a handful of endpoints and tokens, never thousands. */
#include <pthread.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/xalloc.h"
#include "image/registry_internal.h"

struct regcache_entry {
  char *key;
  char *val;
  double expires;   /* CLOCK_MONOTONIC seconds */
};

struct regcache {
  pthread_mutex_t mu;
  struct regcache_entry *v;
  size_t n, max;
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct regcache *regcache_new(size_t max_entries)
{
  struct regcache *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  c->max = max_entries ? max_entries : 1;
  c->v = xcalloc(c->max, sizeof(*c->v));
  return c;
}

static void entry_clear(struct regcache_entry *en)
{
  free(en->key);
  free(en->val);
  memset(en, 0, sizeof(*en));
}

/* Removes entry i by moving the last one into its place. Lock held. */
static void remove_at(struct regcache *c, size_t i)
{
  entry_clear(&c->v[i]);
  c->v[i] = c->v[--c->n];
  memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
}

void regcache_free(struct regcache *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    entry_clear(&c->v[i]);
  free(c->v);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static ssize_t find(struct regcache *c, const char *key)
{
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->v[i].key, key) == 0)
      return (ssize_t)i;
  return -1;
}

char *regcache_get(struct regcache *c, const char *key)
{
  char *val = NULL;
  pthread_mutex_lock(&c->mu);
  ssize_t i = find(c, key);
  if (i >= 0 && c->v[i].expires > now_s())
    val = xstrdup(c->v[i].val);
  else if (i >= 0)
    remove_at(c, (size_t)i);
  pthread_mutex_unlock(&c->mu);
  return val;
}

void regcache_put(struct regcache *c, const char *key, const char *val, double ttl_s)
{
  double now = now_s();
  pthread_mutex_lock(&c->mu);
  ssize_t i = find(c, key);
  if (i >= 0)
    remove_at(c, (size_t)i);
  for (size_t j = c->n; j-- > 0;)
    if (c->v[j].expires <= now)
      remove_at(c, j);
  if (c->n == c->max) {
    size_t soonest = 0;
    for (size_t j = 1; j < c->n; j++)
      if (c->v[j].expires < c->v[soonest].expires)
        soonest = j;
    remove_at(c, soonest);
  }
  c->v[c->n++] = (struct regcache_entry){xstrdup(key), xstrdup(val), now + ttl_s};
  pthread_mutex_unlock(&c->mu);
}

void regcache_drop(struct regcache *c, const char *key)
{
  pthread_mutex_lock(&c->mu);
  ssize_t i = find(c, key);
  if (i >= 0)
    remove_at(c, (size_t)i);
  pthread_mutex_unlock(&c->mu);
}
