/* arena.h - per-call allocation for building protobuf-c responses.
 * Everything allocated from an arena is freed at once by arena_free, so a handler
 * can build a deep response without a matching free for every node. Not thread-safe. */
#ifndef CRISP_CRI_ARENA_H
#define CRISP_CRI_ARENA_H

#include <stddef.h>

struct arena {
  struct arena_block *blocks;
};

#define ARENA_INIT {NULL}

void *arena_alloc(struct arena *a, size_t n);          /* zeroed */
void *arena_array(struct arena *a, size_t n, size_t size);
char *arena_strdup(struct arena *a, const char *s);    /* NULL -> "" */
__attribute__((format(printf, 2, 3))) char *arena_printf(struct arena *a, const char *fmt, ...);
void arena_free(struct arena *a);

#endif
