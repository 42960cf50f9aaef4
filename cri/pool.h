/* pool.h - a small worker pool that grows when every worker is busy.
 *
 * Jobs run in submission order on up to `max` threads; the pool keeps `min` threads
 * alive and lets extra ones exit after an idle spell, so one slow call (a pull)
 * never holds up the others and an idle daemon keeps few threads.
 * pool_submit is thread-safe. pool_free waits for queued and running jobs.
 */
#ifndef CRISP_CRI_POOL_H
#define CRISP_CRI_POOL_H

#include <stddef.h>

struct pool;
typedef void (*pool_fn)(void *arg);

struct pool *pool_new(unsigned min, unsigned max);
void pool_submit(struct pool *p, pool_fn fn, void *arg);
/* Threads currently alive (for tests and Status). */
unsigned pool_threads(struct pool *p);
void pool_free(struct pool *p);

#endif
