#include "cri/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"

#define POOL_IDLE_EXIT_SEC 30

struct job {
  struct job *next;
  pool_fn fn;
  void *arg;
};

struct pool {
  pthread_mutex_t mu;
  pthread_cond_t work;     /* a job arrived or the pool stops */
  pthread_cond_t gone;     /* a thread exited */
  struct job *head, *tail;
  unsigned min, max, threads, idle;
  unsigned queued;         /* jobs not yet taken by a worker */
  bool stopping;
};

static void *worker(void *arg)
{
  struct pool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->head && !p->stopping) {
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      until.tv_sec += POOL_IDLE_EXIT_SEC;
      p->idle++;
      int rc = pthread_cond_timedwait(&p->work, &p->mu, &until);
      p->idle--;
      if (rc == ETIMEDOUT && !p->head && p->threads > p->min)
        goto out;
    }
    if (!p->head)  /* stopping and drained */
      break;
    struct job *j = p->head;
    p->queued--;
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&p->mu);
  }
out:
  p->threads--;
  pthread_cond_broadcast(&p->gone);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Called with p->mu held. */
static void spawn(struct pool *p)
{
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 256 * 1024);
  if (pthread_create(&t, &a, worker, p) == 0)
    p->threads++;
  else if (p->threads == 0)
    abort();  /* no thread at all would hang every call */
  else
    log_warn("worker pool cannot grow", "threads", NULL);
  pthread_attr_destroy(&a);
}

struct pool *pool_new(unsigned min, unsigned max)
{
  struct pool *p = xcalloc(1, sizeof(*p));
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->work, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&p->gone, NULL);
  p->min = min ? min : 1;
  p->max = max < p->min ? p->min : max;
  pthread_mutex_lock(&p->mu);
  for (unsigned i = 0; i < p->min; i++)
    spawn(p);
  pthread_mutex_unlock(&p->mu);
  return p;
}

void pool_submit(struct pool *p, pool_fn fn, void *arg)
{
  struct job *j = xmalloc(sizeof(*j));
  j->next = NULL;
  j->fn = fn;
  j->arg = arg;
  pthread_mutex_lock(&p->mu);
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  p->queued++;
  /* more jobs waiting than idle workers to take them (a signalled worker counts as
   * idle until it runs): grow rather than queue behind a slow call */
  if (p->queued > p->idle && p->threads < p->max && !p->stopping)
    spawn(p);
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->mu);
}

unsigned pool_threads(struct pool *p)
{
  pthread_mutex_lock(&p->mu);
  unsigned n = p->threads;
  pthread_mutex_unlock(&p->mu);
  return n;
}

void pool_free(struct pool *p)
{
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_broadcast(&p->work);
  while (p->threads > 0)
    pthread_cond_wait(&p->gone, &p->mu);
  pthread_mutex_unlock(&p->mu);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->gone);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
