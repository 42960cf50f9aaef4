#include "cri/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"

struct event_msg {
  struct event_msg *next;
  size_t len;
  unsigned char data[];
};

struct events_sub {
  struct events_sub *next;
  struct event_msg *head, *tail;
  size_t queued;
  size_t dropped;
};

struct events {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct events_sub *subs;
  size_t queue_max;
};

struct events *events_new(size_t queue_max)
{
  struct events *ev = xcalloc(1, sizeof(*ev));
  pthread_mutex_init(&ev->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ev->cv, &ca);
  pthread_condattr_destroy(&ca);
  ev->queue_max = queue_max ? queue_max : 1;
  return ev;
}

void events_free(struct events *ev)
{
  if (!ev)
    return;
  while (ev->subs)
    events_unsubscribe(ev, ev->subs);
  pthread_cond_destroy(&ev->cv);
  pthread_mutex_destroy(&ev->mu);
  free(ev);
}

static struct event_msg *pop(struct events_sub *s)
{
  struct event_msg *m = s->head;
  if (m) {
    s->head = m->next;
    if (!s->head)
      s->tail = NULL;
    s->queued--;
  }
  return m;
}

void events_publish(struct events *ev, const void *msg, size_t len)
{
  pthread_mutex_lock(&ev->mu);
  for (struct events_sub *s = ev->subs; s; s = s->next) {
    if (s->queued >= ev->queue_max) {
      free(pop(s));
      if (s->dropped++ == 0)
        log_warn("an event stream client is not reading; dropping its oldest events", NULL);
    }
    struct event_msg *m = xmalloc(sizeof(*m) + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, msg, len);
    if (s->tail)
      s->tail->next = m;
    else
      s->head = m;
    s->tail = m;
    s->queued++;
  }
  pthread_cond_broadcast(&ev->cv);
  pthread_mutex_unlock(&ev->mu);
}

struct events_sub *events_subscribe(struct events *ev)
{
  struct events_sub *s = xcalloc(1, sizeof(*s));
  pthread_mutex_lock(&ev->mu);
  s->next = ev->subs;
  ev->subs = s;
  pthread_mutex_unlock(&ev->mu);
  return s;
}

void events_unsubscribe(struct events *ev, struct events_sub *s)
{
  pthread_mutex_lock(&ev->mu);
  for (struct events_sub **p = &ev->subs; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      break;
    }
  }
  pthread_mutex_unlock(&ev->mu);
  struct event_msg *m;
  while ((m = pop(s)))
    free(m);
  free(s);
}

int events_next(struct events *ev, struct events_sub *s, int ms, void **msg, size_t *len)
{
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&ev->mu);
  while (!s->head)
    if (pthread_cond_timedwait(&ev->cv, &ev->mu, &until) == ETIMEDOUT)
      break;
  struct event_msg *m = pop(s);
  pthread_mutex_unlock(&ev->mu);
  if (!m)
    return 0;
  *len = m->len;
  *msg = xmalloc(m->len ? m->len : 1);
  memcpy(*msg, m->data, m->len);
  free(m);
  return 1;
}

size_t events_subscribers(struct events *ev)
{
  size_t n = 0;
  pthread_mutex_lock(&ev->mu);
  for (struct events_sub *s = ev->subs; s; s = s->next)
    n++;
  pthread_mutex_unlock(&ev->mu);
  return n;
}

/* GetContainerEvents: stream every event published from now on until the client
 * goes away or crispd stops. */
int cri_container_events_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             struct rpc_stream *st, err_t **e)
{
  (void)req;
  struct events_sub *s = events_subscribe(d->events);
  int rc = 0;
  while (!rpc_ctx_done(c->ctx)) {
    void *msg;
    size_t len;
    if (!events_next(d->events, s, 200, &msg, &len))
      continue;
    rc = rpc_stream_send(st, msg, len, e);
    free(msg);
    if (rc < 0)
      break;
  }
  events_unsubscribe(d->events, s);
  /* a stream that ends because the client left or crispd stops ends cleanly */
  if (rc < 0 && (*e)->code == ERR_CANCELLED) {
    err_free(e);
    rc = 0;
  }
  return rc;
}
