/* crilog_test.c - the CRI log format: records, tags, 16 KiB splits, timestamps. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "runtimes/crilog.h"

#define TS0 1700000000123456789LL   /* 2023-11-14T22:13:20.123456789Z */
#define TS0_TEXT "2023-11-14T22:13:20.123456789Z"

struct rec {
  char ts[CRILOG_TS_LEN + 1];
  char stream[8];
  char tag;
  size_t len;
  const char *content;   /* points into the buffer */
};

/* Splits out into records, asserting each one's shape; returns how many. */
static size_t parse(const struct buf *out, struct rec *r, size_t max)
{
  size_t n = 0;
  const char *p = buf_str(out), *end = p + out->len;
  while (p < end) {
    cr_assert_lt(n, max, "more records than expected");
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    cr_assert_not_null(nl, "record without a newline");
    cr_assert_gt(nl - p, CRILOG_TS_LEN + 10);
    memcpy(r[n].ts, p, CRILOG_TS_LEN);
    r[n].ts[CRILOG_TS_LEN] = '\0';
    cr_assert_eq(p[CRILOG_TS_LEN], ' ');
    const char *s = p + CRILOG_TS_LEN + 1;
    const char *sp = memchr(s, ' ', (size_t)(nl - s));
    cr_assert_not_null(sp);
    cr_assert_lt(sp - s, 8);
    memcpy(r[n].stream, s, (size_t)(sp - s));
    r[n].stream[sp - s] = '\0';
    r[n].tag = sp[1];
    cr_assert(r[n].tag == 'P' || r[n].tag == 'F');
    cr_assert_eq(sp[2], ' ');
    r[n].content = sp + 3;
    r[n].len = (size_t)(nl - (sp + 3));
    n++;
    p = nl + 1;
  }
  return n;
}

static bool content_is(const struct rec *r, const char *s)
{
  return r->len == strlen(s) && memcmp(r->content, s, r->len) == 0;
}

static bool all_bytes(const struct rec *r, size_t len, char c)
{
  if (r->len != len)
    return false;
  for (size_t i = 0; i < len; i++)
    if (r->content[i] != c)
      return false;
  return true;
}

Test(crilog, timestamp_is_utc_with_nine_digits)
{
  char ts[CRILOG_TS_LEN + 1];
  crilog_timestamp(TS0, ts);
  cr_assert_str_eq(ts, TS0_TEXT);
  crilog_timestamp(0, ts);
  cr_assert_str_eq(ts, "1970-01-01T00:00:00.000000000Z");
  crilog_timestamp(1700000000000000005LL, ts);
  cr_assert_str_eq(ts, "2023-11-14T22:13:20.000000005Z");
}

/* The hand-written calendar against glibc's, over leap days, century years, both ends
 * of the int64 nanosecond range and a spread of instants from 1900 to 2200. */
Test(crilog, timestamp_matches_gmtime_everywhere)
{
  const int64_t fixed[] = {951782400, 951868800, 4107542400, 4107628800, -2208988800LL,
                           946684799, 1709164800, 9223372036LL, -9223372036LL};
  unsigned seed = 12345;
  for (int i = 0; i < 20000; i++) {
    int64_t sec;
    if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
      sec = fixed[i];
    } else {
      seed = seed * 1103515245u + 12345u;
      sec = -2208988800LL + (int64_t)((uint64_t)seed * 7 % 9467280000ULL) + i;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    cr_assert_not_null(gmtime_r(&t, &tm));
    char want[64], got[CRILOG_TS_LEN + 1];
    snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.000000042Z", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    crilog_timestamp(sec * 1000000000 + 42, got);
    cr_assert_str_eq(got, want, "at %lld", (long long)sec);
  }
}

Test(crilog, whole_lines_are_full_records_in_order)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  crilog_feed(&l, TS0, "hello world\nsecond\n", 19, &out);
  cr_assert_str_eq(buf_str(&out), TS0_TEXT " stdout F hello world\n" TS0_TEXT " stdout F second\n");
  crilog_free(&l);
}

Test(crilog, empty_line_is_full_record_with_empty_content)
{
  struct crilog l;
  crilog_init(&l, "stderr");
  cleanup_buf struct buf out = BUF_INIT;
  crilog_feed(&l, TS0, "\n", 1, &out);
  cr_assert_str_eq(buf_str(&out), TS0_TEXT " stderr F \n");
  crilog_free(&l);
}

Test(crilog, crlf_is_dropped_but_inner_cr_kept)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  crilog_feed(&l, TS0, "a\rb\r\n", 5, &out);
  cr_assert_str_eq(buf_str(&out), TS0_TEXT " stdout F a\rb\n");
  crilog_free(&l);
}

Test(crilog, line_split_across_reads_waits_for_its_newline)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  crilog_feed(&l, TS0, "ab", 2, &out);
  cr_assert_eq(out.len, 0, "an unterminated short line is held");
  crilog_feed(&l, TS0 + 1000, "c\nd", 3, &out);
  cr_assert_str_eq(buf_str(&out), "2023-11-14T22:13:20.123457789Z stdout F abc\n");
  buf_reset(&out);
  crilog_flush(&l, TS0, &out);
  cr_assert_str_eq(buf_str(&out), TS0_TEXT " stdout P d\n", "the rest at EOF is partial");
  crilog_free(&l);
}

Test(crilog, flush_with_nothing_pending_writes_nothing)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  crilog_feed(&l, TS0, "x\n", 2, &out);
  buf_reset(&out);
  crilog_flush(&l, TS0, &out);
  cr_assert_eq(out.len, 0);
  crilog_free(&l);
}

static void feed_line(struct crilog *l, size_t len, const char *tail, struct buf *out)
{
  cleanup_free char *s = xmalloc(len + strlen(tail));
  memset(s, 'x', len);
  memcpy(s + len, tail, strlen(tail));
  crilog_feed(l, TS0, s, len + strlen(tail), out);
}

Test(crilog, line_of_exactly_16k_is_one_full_record)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  feed_line(&l, CRILOG_MAX_RECORD, "\n", &out);
  struct rec r[4];
  cr_assert_eq(parse(&out, r, 4), 1);
  cr_assert_eq(r[0].tag, 'F');
  cr_assert(all_bytes(&r[0], CRILOG_MAX_RECORD, 'x'));
  crilog_free(&l);
}

Test(crilog, line_one_byte_over_16k_is_partial_then_full)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  feed_line(&l, CRILOG_MAX_RECORD + 1, "\n", &out);
  struct rec r[4];
  cr_assert_eq(parse(&out, r, 4), 2);
  cr_assert_eq(r[0].tag, 'P');
  cr_assert(all_bytes(&r[0], CRILOG_MAX_RECORD, 'x'));
  cr_assert_eq(r[1].tag, 'F');
  cr_assert(all_bytes(&r[1], 1, 'x'));
  crilog_free(&l);
}

Test(crilog, line_of_two_records_ends_in_full_not_empty_record)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  feed_line(&l, 2 * CRILOG_MAX_RECORD, "\n", &out);
  struct rec r[4];
  cr_assert_eq(parse(&out, r, 4), 2);
  cr_assert_eq(r[0].tag, 'P');
  cr_assert_eq(r[1].tag, 'F');
  cr_assert(all_bytes(&r[1], CRILOG_MAX_RECORD, 'x'));
  crilog_free(&l);
}

Test(crilog, long_unterminated_output_is_cut_while_it_streams)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  for (int i = 0; i < 10; i++) {   /* 10 x 5000 bytes, no newline */
    feed_line(&l, 5000, "", &out);
    cr_assert_leq(l.line.len, CRILOG_MAX_RECORD, "pending bytes stay bounded");
  }
  struct rec r[8];
  cr_assert_eq(parse(&out, r, 8), 3, "50000 bytes = 3 full pieces so far");
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(r[i].tag, 'P');
    cr_assert_eq(r[i].len, CRILOG_MAX_RECORD);
  }
  buf_reset(&out);
  crilog_feed(&l, TS0, "\n", 1, &out);
  cr_assert_eq(parse(&out, r, 8), 1);
  cr_assert_eq(r[0].tag, 'F');
  cr_assert_eq(r[0].len, 50000 - 3 * CRILOG_MAX_RECORD);
  crilog_free(&l);
}

Test(crilog, crlf_straddling_the_16k_limit_still_ends_in_one_full_record)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  feed_line(&l, CRILOG_MAX_RECORD, "\r", &out);
  cr_assert_eq(out.len, 0, "a trailing \\r past the limit waits for what follows");
  crilog_feed(&l, TS0, "\n", 1, &out);
  struct rec r[4];
  cr_assert_eq(parse(&out, r, 4), 1);
  cr_assert_eq(r[0].tag, 'F');
  cr_assert(all_bytes(&r[0], CRILOG_MAX_RECORD, 'x'));
  crilog_free(&l);
}

Test(crilog, cr_past_the_limit_followed_by_text_is_content)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  feed_line(&l, CRILOG_MAX_RECORD, "\r", &out);
  crilog_feed(&l, TS0, "y\n", 2, &out);
  struct rec r[4];
  cr_assert_eq(parse(&out, r, 4), 2);
  cr_assert_eq(r[0].tag, 'P');
  cr_assert_eq(r[0].len, CRILOG_MAX_RECORD);
  cr_assert(content_is(&r[1], "\ry"));
  cr_assert_eq(r[1].tag, 'F');
  crilog_free(&l);
}

Test(crilog, unterminated_long_tail_at_eof_is_all_partial)
{
  struct crilog l;
  crilog_init(&l, "stderr");
  cleanup_buf struct buf out = BUF_INIT;
  feed_line(&l, CRILOG_MAX_RECORD + 10, "", &out);
  crilog_flush(&l, TS0, &out);
  struct rec r[4];
  cr_assert_eq(parse(&out, r, 4), 2);
  cr_assert_eq(r[0].tag, 'P');
  cr_assert_eq(r[1].tag, 'P');
  cr_assert_eq(r[1].len, 10);
  cr_assert_str_eq(r[1].stream, "stderr");
  crilog_free(&l);
}

Test(crilog, bytes_are_copied_verbatim)
{
  struct crilog l;
  crilog_init(&l, "stdout");
  cleanup_buf struct buf out = BUF_INIT;
  const char in[] = "a\0b\xff\tc\n";
  crilog_feed(&l, TS0, in, sizeof(in) - 1, &out);
  struct rec r[2];
  cr_assert_eq(parse(&out, r, 2), 1);
  cr_assert_eq(r[0].len, 6);
  cr_assert_eq(memcmp(r[0].content, "a\0b\xff\tc", 6), 0);
  crilog_free(&l);
}
