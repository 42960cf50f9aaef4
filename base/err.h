/* err.h - the one error type of crisp.
 *
 * A fallible function returns 0 on success or -1 on failure and takes `err_t **e`
 * as its last argument. On failure it sets *e (err_set) or adds context to an
 * error a callee set (err_wrap). The caller owns *e and frees it with err_free.
 * Lower layers never log an error they return; cri/ maps err_code to a gRPC
 * status exactly once. Thread-safe: an err_t belongs to the thread that made it.
 */
#ifndef CRISP_BASE_ERR_H
#define CRISP_BASE_ERR_H

#include <stdarg.h>

enum err_code {
  ERR_INTERNAL = 1,   /* a bug or an unexpected system failure */
  ERR_INVALID,        /* the caller's input is wrong */
  ERR_NOT_FOUND,      /* the named object does not exist */
  ERR_EXISTS,         /* the object already exists */
  ERR_UNAVAILABLE,    /* a dependency (registry, plugin) cannot be reached now */
  ERR_DEADLINE,       /* the caller's deadline passed */
  ERR_CANCELLED,      /* the caller went away */
  ERR_PRECONDITION,   /* the object is in the wrong state for this operation */
  ERR_RESOURCE,       /* a limit was hit (disk full, too many objects) */
  ERR_PERMISSION,     /* not allowed */
  ERR_UNIMPLEMENTED,  /* crisp does not do this (yet) */
};

typedef struct err {
  enum err_code code;
  int sys_errno;      /* errno that caused it, 0 if none */
  char *msg;          /* "context: context: cause", never NULL */
} err_t;

__attribute__((format(printf, 4, 5)))
int err_set(err_t **e, enum err_code code, int sys_errno, const char *fmt, ...);

/* Like err_set, appending ": strerror(sys_errno)" to the message. */
__attribute__((format(printf, 3, 4)))
int err_sys(err_t **e, int sys_errno, const char *fmt, ...);

/* Prefixes context to the message of *e ("open config: " + msg). Returns -1. */
__attribute__((format(printf, 2, 3)))
int err_wrap(err_t **e, const char *fmt, ...);

void err_free(err_t **e);

/* Name of a code ("invalid argument"), for logs. */
const char *err_code_name(enum err_code code);

/* Maps an errno to the closest err_code (ENOENT -> NOT_FOUND, ENOSPC -> RESOURCE...). */
enum err_code err_code_from_errno(int sys_errno);

#endif
