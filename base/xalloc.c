#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(void)
{
  static const char m[] = "crisp: out of memory\n";
  ssize_t r = write(2, m, sizeof(m) - 1);
  (void)r;
  abort();
}

void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    oom();
  return p;
}

void *xcalloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    oom();
  return p;
}

void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    oom();
  return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
  if (size && n > (size_t)-1 / size)
    oom();
  return xrealloc(p, n * size);
}

char *xstrdup(const char *s)
{
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    oom();
  return d;
}

char *xstrndup(const char *s, size_t n)
{
  char *d = strndup(s, n);
  if (!d)
    oom();
  return d;
}

char *xvasprintf(const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    oom();
  return s;
}

char *xasprintf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = xvasprintf(fmt, ap);
  va_end(ap);
  return s;
}
