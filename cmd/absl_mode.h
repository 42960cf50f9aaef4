/* absl_mode.h - process-wide settings of the abseil that gRPC links in.
 *
 * Debian builds abseil without NDEBUG, so its Mutex keeps a lock-order graph for
 * deadlock detection: every mutex gRPC ever locks gets a 512-byte node in memory
 * that abseil maps for itself and never returns (outside malloc, so malloc_trim and
 * mallinfo see none of it), freed only when the mutex is destroyed. Static mutexes
 * never are: gRPC's debug timer table alone has 1009 of them, reached one by one as
 * timers hash into new buckets, so crispd's RSS crept up over hours of calls
 * (README "Memory"). Call once from main, before anything locks a mutex. */
#ifndef CRISP_CMD_ABSL_MODE_H
#define CRISP_CMD_ABSL_MODE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Turns the lock-order graph off (a no-op where abseil was built with NDEBUG). */
void absl_lock_graph_off(void);

#ifdef __cplusplus
}
#endif

#endif
