/* xalloc.h - allocation that cannot fail: out of memory aborts (STYLE.md allows it). */
#ifndef CRISP_BASE_XALLOC_H
#define CRISP_BASE_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* reallocarray that aborts on overflow or out of memory */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);          /* NULL -> NULL */
char *xstrndup(const char *s, size_t n);
__attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...);
__attribute__((format(printf, 1, 0))) char *xvasprintf(const char *fmt, va_list ap);

#endif
