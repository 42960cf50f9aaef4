#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "image/pull_int.h"

static char *take_line(struct line_reader *r)
{
  char *start = r->b.data + r->used;
  char *nl = memchr(start, '\n', r->b.len - r->used);
  if (!nl)
    return NULL;
  *nl = '\0';
  r->used = (size_t)(nl - r->b.data) + 1;
  return start;
}

int line_read(struct line_reader *r, int timeout_ms, char **line, err_t **e)
{
  if (r->used && r->used == r->b.len) {
    buf_reset(&r->b);
    r->used = 0;
  }
  for (;;) {
    if (r->b.len > r->used && (*line = take_line(r)))
      return 1;
    if (r->used) {  /* move the partial line to the front */
      memmove(r->b.data, r->b.data + r->used, r->b.len - r->used);
      r->b.len -= r->used;
      r->used = 0;
    }
    if (r->b.len > PULL_LINE_MAX)
      return err_set(e, ERR_RESOURCE, 0, "pull helper message over %u bytes", PULL_LINE_MAX);
    struct pollfd pfd = {r->fd, POLLIN, 0};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return err_sys(e, errno, "poll");
    if (n == 0)
      return 0;
    buf_reserve(&r->b, 65536);
    ssize_t got = read(r->fd, r->b.data + r->b.len, r->b.cap - r->b.len - 1);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return err_sys(e, errno, "read");
    if (got == 0)
      return err_set(e, ERR_UNAVAILABLE, 0, "the other side closed the pipe");
    r->b.len += (size_t)got;
    r->b.data[r->b.len] = '\0';
  }
}

void line_reader_clear(struct line_reader *r) { buf_free(&r->b); }

int line_write(int fd, pthread_mutex_t *mu, const struct buf *b, err_t **e)
{
  struct buf out = BUF_INIT;
  buf_append(&out, b->data ? b->data : "", b->len);
  buf_putc(&out, '\n');
  if (mu)
    pthread_mutex_lock(mu);
  int rc = fd_write_all(fd, out.data, out.len, e);
  if (mu)
    pthread_mutex_unlock(mu);
  buf_free(&out);
  return rc;
}

enum err_code pull_code_parse(const char *name)
{
  for (int c = ERR_INTERNAL; c <= ERR_UNIMPLEMENTED; c++)
    if (name && strcmp(name, err_code_name((enum err_code)c)) == 0)
      return (enum err_code)c;
  return ERR_INTERNAL;
}

void line_write_error(int fd, pthread_mutex_t *mu, const err_t *err)
{
  struct buf b = BUF_INIT;
  buf_puts(&b, "{\"type\":\"error\",\"code\":");
  buf_json_str(&b, err_code_name(err->code));
  buf_puts(&b, ",\"message\":");
  buf_json_str(&b, err->msg);
  buf_putc(&b, '}');
  err_t *e = NULL;
  line_write(fd, mu, &b, &e);
  err_free(&e);
  buf_free(&b);
}
