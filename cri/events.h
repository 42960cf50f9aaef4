/* events.h - fan-out of container lifecycle events to GetContainerEvents streams.
 *
 * Events are carried as already-encoded messages. Each subscriber has its own
 * bounded queue: a client that stops reading loses its oldest events (counted and
 * logged) instead of growing crispd's memory. All functions are thread-safe.
 */
#ifndef CRISP_CRI_EVENTS_H
#define CRISP_CRI_EVENTS_H

#include <stddef.h>

struct events;
struct events_sub;

struct events *events_new(size_t queue_max);
void events_free(struct events *ev);   /* all subscribers must be gone */
/* Copies msg to every subscriber's queue. */
void events_publish(struct events *ev, const void *msg, size_t len);
struct events_sub *events_subscribe(struct events *ev);
void events_unsubscribe(struct events *ev, struct events_sub *s);
/* Waits up to ms for the next event. 1: *msg (caller frees) and *len set; 0: none. */
int events_next(struct events *ev, struct events_sub *s, int ms, void **msg, size_t *len);
/* Number of live subscribers. */
size_t events_subscribers(struct events *ev);

#endif
