/* crilog.h - the CRI container log format, as kubelet reads it (`kubectl logs`).
 *
 * Each record is one line of the log file:
 *   2026-11-22T16:14:46.123456789Z stdout F hello world\n
 * the time (UTC, always nine fractional digits: fixed width, so records sort as text;
 * kubelet parses it with Go's RFC3339Nano, which takes any number of digits), the
 * stream ("stdout" or "stderr"; a tty's output is "stdout"), a tag and the content.
 * The tag is F for the end of a line and P for a piece of one. Rules (containerd's,
 * internal/cri/io/logger.go, so kubelet sees the same records from either runtime):
 *   - a line's "\n" (and a "\r" just before it) is dropped from the content;
 *   - a record holds at most CRILOG_MAX_RECORD bytes of content: a longer line becomes
 *     P records of exactly that size followed by an F record with the rest (so a line
 *     of 2 x 16 KiB is P + F, never an empty F);
 *   - an empty line is an F record with empty content ("... stdout F \n");
 *   - bytes not followed by "\n" wait for it (or for 16 KiB to accumulate); at end of
 *     stream they are written as a P record: the line never ended.
 * The content is copied byte for byte (no UTF-8 checks; kubelet does none either).
 *
 * Ownership: a struct crilog owns its pending bytes; crilog_free releases them.
 * Thread-safety: one struct crilog per stream, used by one thread.
 */
#ifndef CRISP_RUNTIMES_CRILOG_H
#define CRISP_RUNTIMES_CRILOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define CRILOG_MAX_RECORD 16384
#define CRILOG_TS_LEN 30           /* strlen("2026-11-22T16:14:46.123456789Z") */

struct crilog {
  const char *stream;              /* "stdout" / "stderr", not owned (a literal) */
  struct buf line;                 /* bytes of the unterminated current line */
};

void crilog_init(struct crilog *l, const char *stream);
void crilog_free(struct crilog *l);

/* Formats realtime_ns (nanoseconds since the epoch) as a CRI log timestamp. */
void crilog_timestamp(int64_t realtime_ns, char out[CRILOG_TS_LEN + 1]);

/* Appends one record: "<ts> <stream> <P|F> <content>\n". */
void crilog_record(struct buf *out, const char *ts, const char *stream, bool partial,
                   const char *content, size_t len);

/* Consumes len bytes read from the stream at time ts_ns and appends to out the records
 * they complete (whole lines, and 16 KiB pieces of long ones). */
void crilog_feed(struct crilog *l, int64_t ts_ns, const char *data, size_t len, struct buf *out);

/* End of stream: appends the unterminated rest, if any, as P records. */
void crilog_flush(struct crilog *l, int64_t ts_ns, struct buf *out);

#endif
