#include "runtimes/crilog.h"

#include <string.h>

void crilog_init(struct crilog *l, const char *stream)
{
  l->stream = stream;
  l->line = (struct buf)BUF_INIT;
}

void crilog_free(struct crilog *l) { buf_free(&l->line); }

static void put_num(char *p, int64_t v, int width)
{
  for (int i = width - 1; i >= 0; i--, v /= 10)
    p[i] = (char)('0' + v % 10);
}

/* Days since 1970-01-01 -> proleptic Gregorian date. Counted in 400-year eras from
 * 0000-03-01 (a leap day then ends each year, which keeps the month arithmetic flat). */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
  int64_t z = days + 719468;                     /* days since 0000-03-01 */
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;                /* day of era, [0, 146096] */
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;              /* month from March, [0, 11] */
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* By hand rather than gmtime_r + snprintf: this runs for every record, and keeping
 * glibc's time zone and printf code off that path keeps the monitor's resident set
 * small (see monitor_trim.c). */
void crilog_timestamp(int64_t realtime_ns, char out[CRILOG_TS_LEN + 1])
{
  int64_t sec = realtime_ns / 1000000000, nsec = realtime_ns % 1000000000;
  if (nsec < 0) {
    sec--;
    nsec += 1000000000;
  }
  int64_t days = sec / 86400, rem = sec % 86400;
  if (rem < 0) {
    days--;
    rem += 86400;
  }
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);   /* int64 ns: 1677..2262, always four digits */
  memcpy(out, "0000-00-00T00:00:00.000000000Z", CRILOG_TS_LEN + 1);
  put_num(out, y, 4);
  put_num(out + 5, m, 2);
  put_num(out + 8, d, 2);
  put_num(out + 11, rem / 3600, 2);
  put_num(out + 14, rem / 60 % 60, 2);
  put_num(out + 17, rem % 60, 2);
  put_num(out + 20, nsec, 9);
}

void crilog_record(struct buf *out, const char *ts, const char *stream, bool partial,
                   const char *content, size_t len)
{
  size_t sl = strlen(stream);
  buf_reserve(out, CRILOG_TS_LEN + sl + len + 5);
  buf_append(out, ts, strlen(ts));
  buf_putc(out, ' ');
  buf_append(out, stream, sl);
  buf_append(out, partial ? " P " : " F ", 3);
  buf_append(out, content, len);
  buf_putc(out, '\n');
}

/* A finished line (terminated, or cut off by the end of the stream): P pieces of
 * CRILOG_MAX_RECORD bytes, then the rest tagged F if the line ended, P if not. */
static void emit_line(const struct crilog *l, const char *ts, const char *s, size_t n,
                      bool terminated, struct buf *out)
{
  if (terminated && n > 0 && s[n - 1] == '\r')
    n--;
  while (n > CRILOG_MAX_RECORD) {
    crilog_record(out, ts, l->stream, true, s, CRILOG_MAX_RECORD);
    s += CRILOG_MAX_RECORD;
    n -= CRILOG_MAX_RECORD;
  }
  crilog_record(out, ts, l->stream, !terminated, s, n);
}

/* An unterminated line past the record size gives P pieces now, so the pending bytes
 * stay bounded. A lone "\r" just past the limit waits: with a "\n" after it the line
 * is exactly CRILOG_MAX_RECORD bytes long and must end in one F record. */
static void emit_overflow(struct crilog *l, const char *ts, struct buf *out)
{
  size_t done = 0;
  while (l->line.len - done > CRILOG_MAX_RECORD) {
    if (l->line.len - done == CRILOG_MAX_RECORD + 1 && l->line.data[l->line.len - 1] == '\r')
      break;
    crilog_record(out, ts, l->stream, true, l->line.data + done, CRILOG_MAX_RECORD);
    done += CRILOG_MAX_RECORD;
  }
  if (done) {
    memmove(l->line.data, l->line.data + done, l->line.len - done);
    l->line.len -= done;
    l->line.data[l->line.len] = '\0';
  }
}

void crilog_feed(struct crilog *l, int64_t ts_ns, const char *data, size_t len, struct buf *out)
{
  char ts[CRILOG_TS_LEN + 1];
  crilog_timestamp(ts_ns, ts);
  while (len) {
    const char *nl = memchr(data, '\n', len);
    if (!nl) {
      buf_append(&l->line, data, len);
      emit_overflow(l, ts, out);
      return;
    }
    size_t n = (size_t)(nl - data);
    if (l->line.len == 0) {
      emit_line(l, ts, data, n, true, out);
    } else {
      buf_append(&l->line, data, n);
      emit_line(l, ts, l->line.data, l->line.len, true, out);
      buf_reset(&l->line);
    }
    data += n + 1;
    len -= n + 1;
  }
}

void crilog_flush(struct crilog *l, int64_t ts_ns, struct buf *out)
{
  if (l->line.len == 0)
    return;
  char ts[CRILOG_TS_LEN + 1];
  crilog_timestamp(ts_ns, ts);
  emit_line(l, ts, l->line.data, l->line.len, false, out);
  buf_reset(&l->line);
}
