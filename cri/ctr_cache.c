/* ctr_cache.c - containers' runtime state in memory, so status calls read no files.
 *
 * Reading a container's state from its monitor's files (monitor.pid's lock,
 * started.json, exit.json) costs ~20 us; ListContainers does it for every container,
 * and 50 pollers listing 400 containers every second would keep a core busy. Two
 * states can be answered from memory instead:
 * - exited: final (a container never runs again), kept until the container is removed;
 * - running while the exit watcher holds a pidfd on its live monitor: the watcher
 *   drops the entry (ctr_cache_drop, under its own mutex) before it publishes the exit,
 *   and the next read goes to the files again.
 * Thread-safe (one mutex; the exit watcher calls in with its mutex held, never the
 * other way round). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cri/internal.h"
#include "runtimes/monitor.h"

#define CACHE_BUCKETS 1024

struct cache_ent {
  struct cache_ent *next;
  char id[65];
  struct ctr_runtime_state st;
};

struct ctr_cache {
  pthread_mutex_t mu;
  atomic_uint_fast64_t version;   /* bumped under mu by every put and drop */
  struct cache_ent *b[CACHE_BUCKETS];
};

struct ctr_cache *ctr_cache_new(void)
{
  struct ctr_cache *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

void ctr_cache_free(struct ctr_cache *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < CACHE_BUCKETS; i++)
    while (c->b[i]) {
      struct cache_ent *x = c->b[i];
      c->b[i] = x->next;
      free(x);
    }
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* IDs are 64 random hex digits: their first 16 spread them as well as all 64, at a
 * quarter of the cost (ListContainers looks up every container). */
#define HASHED_CHARS 16

static struct cache_ent **slot(struct ctr_cache *c, const char *id)
{
  unsigned h = 2166136261u;
  for (const char *p = id; *p && p < id + HASHED_CHARS; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  struct cache_ent **pp = &c->b[h % CACHE_BUCKETS];
  while (*pp && strcmp((*pp)->id, id) != 0)
    pp = &(*pp)->next;
  return pp;
}

bool ctr_cache_get(struct ctr_cache *c, const char *id, struct ctr_runtime_state *out)
{
  if (!c)
    return false;
  pthread_mutex_lock(&c->mu);
  struct cache_ent *x = *slot(c, id);
  if (x)
    *out = x->st;
  pthread_mutex_unlock(&c->mu);
  return x != NULL;
}

void ctr_cache_put(struct ctr_cache *c, const char *id, const struct ctr_runtime_state *st)
{
  if (!c || strlen(id) != 64)
    return;
  pthread_mutex_lock(&c->mu);
  struct cache_ent **pp = slot(c, id);
  if (!*pp) {
    *pp = xcalloc(1, sizeof(**pp));
    memcpy((*pp)->id, id, 65);
  }
  (*pp)->st = *st;
  atomic_fetch_add(&c->version, 1);
  pthread_mutex_unlock(&c->mu);
}

void ctr_cache_drop(struct ctr_cache *c, const char *id)
{
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  struct cache_ent **pp = slot(c, id);
  struct cache_ent *x = *pp;
  if (x) {
    *pp = x->next;
    atomic_fetch_add(&c->version, 1);
  }
  pthread_mutex_unlock(&c->mu);
  free(x);
}

uint64_t ctr_cache_version(struct ctr_cache *c)
{
  return c ? atomic_load(&c->version) : 0;
}
