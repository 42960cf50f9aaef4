#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_threshold = LOG_INFO;
static atomic_int log_fd = 2;

void log_set_level(enum log_level lvl) { atomic_store(&log_threshold, (int)lvl); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&log_threshold); }
void log_set_fd(int fd) { atomic_store(&log_fd, fd); }

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *log_level_name(enum log_level lvl)
{
  return (unsigned)lvl < 4 ? level_names[lvl] : "info";
}

int log_level_parse(const char *name, enum log_level *out)
{
  if (!name)
    return -1;
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      *out = (enum log_level)i;
      return 0;
    }
  }
  if (strcasecmp(name, "warning") == 0) {
    *out = LOG_WARN;
    return 0;
  }
  return -1;
}

static int needs_quotes(const char *v)
{
  if (!*v)
    return 1;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
      return 1;
  return 0;
}

void log_append_kv(struct buf *b, const char *key, const char *val)
{
  buf_putc(b, ' ');
  buf_puts(b, key);
  buf_putc(b, '=');
  if (needs_quotes(val))
    buf_json_str(b, val);  /* JSON escaping is a valid logfmt quoting */
  else
    buf_puts(b, val);
}

void log_event(enum log_level lvl, const char *msg, ...)
{
  if ((int)lvl < atomic_load(&log_threshold))
    return;
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  cleanup_buf struct buf b = BUF_INIT;
  buf_printf(&b, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
             log_level_name(lvl));
  log_append_kv(&b, "msg", msg);
  va_list ap;
  va_start(ap, msg);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k)
      break;
    const char *v = va_arg(ap, const char *);
    if (v)
      log_append_kv(&b, k, v);
  }
  va_end(ap);
  buf_putc(&b, '\n');
  ssize_t r = write(atomic_load(&log_fd), b.data, b.len);
  (void)r;
}
