/* log.h - structured logging: one logfmt line per event on stderr.
 *
 *   log_info("pod started", "pod", id, "ip", ip, NULL);
 *   -> time=2026-11-22T15:44:12.123Z level=info msg="pod started" pod=4f2a ip=10.88.0.4
 *
 * Key/value pairs end with NULL; a NULL value is skipped. Values are quoted when they
 * hold spaces, quotes, '=' or control characters. Thread-safe: each line is written
 * with a single write(2). The level threshold is process-wide (set once in cmd/).
 */
#ifndef CRISP_BASE_LOG_H
#define CRISP_BASE_LOG_H

#include "base/buf.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* "debug", "info", "warn"/"warning", "error" -> 0 and *out; -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level lvl);
/* Where lines go (default 2, stderr). */
void log_set_fd(int fd);

__attribute__((sentinel)) void log_event(enum log_level lvl, const char *msg, ...);
#define log_debug(...) log_event(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_event(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_event(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_event(LOG_ERROR, __VA_ARGS__)

/* Appends ` key=value` in logfmt quoting to b (exposed for tests and for callers
 * that build a line piece by piece). */
void log_append_kv(struct buf *b, const char *key, const char *val);

#endif
