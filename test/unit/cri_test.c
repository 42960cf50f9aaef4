/* Tests of cri/ pieces that need no socket: the worker pool and the event fan-out. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cri/events.h"
#include "cri/pool.h"

static atomic_int done;

static void slow_job(void *arg)
{
  (void)arg;
  usleep(300 * 1000);
  atomic_fetch_add(&done, 1);
}

static void quick_job(void *arg)
{
  (void)arg;
  atomic_fetch_add(&done, 1);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(pool, slow_jobs_do_not_block_quick_ones)
{
  atomic_store(&done, 0);
  struct pool *p = pool_new(2, 16);
  for (int i = 0; i < 4; i++)
    pool_submit(p, slow_job, NULL);
  double t0 = now_s();
  pool_submit(p, quick_job, NULL);
  while (atomic_load(&done) < 1 && now_s() - t0 < 2)
    usleep(1000);
  cr_assert_lt(now_s() - t0, 0.2, "a quick job waited behind slow ones");
  cr_assert_geq(pool_threads(p), 5, "the pool grew");
  pool_free(p);
  cr_assert_eq(atomic_load(&done), 5, "pool_free waits for every job");
}

Test(events, every_subscriber_gets_every_event_in_order)
{
  struct events *ev = events_new(8);
  struct events_sub *a = events_subscribe(ev), *b = events_subscribe(ev);
  events_publish(ev, "one", 3);
  events_publish(ev, "two", 3);
  struct events_sub *subs[] = {a, b};
  for (int i = 0; i < 2; i++) {
    void *m;
    size_t len;
    cr_assert_eq(events_next(ev, subs[i], 100, &m, &len), 1);
    cr_assert(len == 3 && memcmp(m, "one", 3) == 0);
    free(m);
    cr_assert_eq(events_next(ev, subs[i], 100, &m, &len), 1);
    cr_assert(memcmp(m, "two", 3) == 0);
    free(m);
    cr_assert_eq(events_next(ev, subs[i], 10, &m, &len), 0, "nothing more");
  }
  events_unsubscribe(ev, a);
  cr_assert_eq(events_subscribers(ev), 1);
  events_free(ev);
}

Test(events, a_slow_reader_loses_oldest_not_memory)
{
  struct events *ev = events_new(2);
  struct events_sub *s = events_subscribe(ev);
  events_publish(ev, "1", 1);
  events_publish(ev, "2", 1);
  events_publish(ev, "3", 1);
  void *m;
  size_t len;
  cr_assert_eq(events_next(ev, s, 10, &m, &len), 1);
  cr_assert_eq(((char *)m)[0], '2');
  free(m);
  events_free(ev);
}
