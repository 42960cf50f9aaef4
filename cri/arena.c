#include "cri/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

struct arena_block {
  struct arena_block *next;
  max_align_t data[];
};

void *arena_alloc(struct arena *a, size_t n)
{
  if (n > (size_t)-1 / 2)
    abort();
  struct arena_block *b = xcalloc(1, sizeof(*b) + n);
  b->next = a->blocks;
  a->blocks = b;
  return b->data;
}

void *arena_array(struct arena *a, size_t n, size_t size)
{
  if (size && n > (size_t)-1 / 2 / size)
    abort();
  return arena_alloc(a, n * size);
}

char *arena_strdup(struct arena *a, const char *s)
{
  if (!s)
    s = "";
  size_t n = strlen(s);
  char *d = arena_alloc(a, n + 1);
  memcpy(d, s, n);
  return d;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *tmp = xvasprintf(fmt, ap);
  va_end(ap);
  char *d = arena_strdup(a, tmp);
  free(tmp);
  return d;
}

void arena_free(struct arena *a)
{
  while (a->blocks) {
    struct arena_block *n = a->blocks->next;
    free(a->blocks);
    a->blocks = n;
  }
}
