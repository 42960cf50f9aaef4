/* cleanup.h - scope-bound release of memory and descriptors (GCC/Clang cleanup attribute).
 *
 *   cleanup_free char *s = xstrdup("x");   freed when s goes out of scope
 *   cleanup_close int fd = open(...);      closed when fd goes out of scope (if >= 0)
 *   return steal(&s);                      hands ownership out; the cleanup sees NULL
 */
#ifndef CRISP_BASE_CLEANUP_H
#define CRISP_BASE_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void cleanup_free_fn(void *p) { free(*(void **)p); }
static inline void cleanup_close_fn(int *fd)
{
  if (*fd >= 0)
    close(*fd);
}
static inline void cleanup_fclose_fn(FILE **f)
{
  if (*f)
    fclose(*f);
}
static inline void cleanup_closedir_fn(DIR **d)
{
  if (*d)
    closedir(*d);
}

#define cleanup_free __attribute__((cleanup(cleanup_free_fn)))
#define cleanup_close __attribute__((cleanup(cleanup_close_fn)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclose_fn)))
#define cleanup_closedir __attribute__((cleanup(cleanup_closedir_fn)))

/* DEFINE_CLEANUP(foo, struct foo) for a type with `void foo_free(struct foo *)`;
 * then `CLEANUP(foo) struct foo *f = ...;` frees f at the end of the scope. */
#define DEFINE_CLEANUP(name, type)                                  \
  static inline void cleanup_##name##_fn(type **p) { name##_free(*p); }
#define CLEANUP(name) __attribute__((cleanup(cleanup_##name##_fn)))

static inline void *steal_ptr(void *pp)
{
  void **p = (void **)pp;
  void *v = *p;
  *p = NULL;
  return v;
}
#define steal(pp) ((__typeof__(*(pp)))steal_ptr(pp))

static inline int steal_fd(int *fd)
{
  int v = *fd;
  *fd = -1;
  return v;
}

#endif
