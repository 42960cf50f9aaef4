#include "base/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

static int set_v(err_t **e, enum err_code code, int sys_errno, const char *fmt, va_list ap,
                 int with_strerror)
{
  if (!e)
    return -1;
  char *msg = xvasprintf(fmt, ap);
  if (with_strerror && sys_errno) {
    char *full = xasprintf("%s: %s", msg, strerror(sys_errno));
    free(msg);
    msg = full;
  }
  if (*e)  /* a second error replaces the first: the newest cause is the useful one */
    err_free(e);
  err_t *n = xmalloc(sizeof(*n));
  n->code = code;
  n->sys_errno = sys_errno;
  n->msg = msg;
  *e = n;
  return -1;
}

int err_set(err_t **e, enum err_code code, int sys_errno, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  set_v(e, code, sys_errno, fmt, ap, 0);
  va_end(ap);
  return -1;
}

int err_sys(err_t **e, int sys_errno, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  set_v(e, err_code_from_errno(sys_errno), sys_errno, fmt, ap, 1);
  va_end(ap);
  return -1;
}

int err_wrap(err_t **e, const char *fmt, ...)
{
  if (!e || !*e)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  char *ctx = xvasprintf(fmt, ap);
  va_end(ap);
  char *full = xasprintf("%s: %s", ctx, (*e)->msg);
  free(ctx);
  free((*e)->msg);
  (*e)->msg = full;
  return -1;
}

void err_free(err_t **e)
{
  if (!e || !*e)
    return;
  free((*e)->msg);
  free(*e);
  *e = NULL;
}

const char *err_code_name(enum err_code code)
{
  switch (code) {
  case ERR_INTERNAL: return "internal";
  case ERR_INVALID: return "invalid argument";
  case ERR_NOT_FOUND: return "not found";
  case ERR_EXISTS: return "already exists";
  case ERR_UNAVAILABLE: return "unavailable";
  case ERR_DEADLINE: return "deadline exceeded";
  case ERR_CANCELLED: return "cancelled";
  case ERR_PRECONDITION: return "failed precondition";
  case ERR_RESOURCE: return "resource exhausted";
  case ERR_PERMISSION: return "permission denied";
  case ERR_UNIMPLEMENTED: return "unimplemented";
  }
  return "unknown";
}

enum err_code err_code_from_errno(int sys_errno)
{
  switch (sys_errno) {
  case ENOENT: case ESRCH: return ERR_NOT_FOUND;
  case EEXIST: return ERR_EXISTS;
  case EINVAL: case ENAMETOOLONG: case ELOOP: case ENOTDIR: return ERR_INVALID;
  case ENOSPC: case EDQUOT: case EMFILE: case ENFILE: case ENOMEM: return ERR_RESOURCE;
  case EPERM: case EACCES: case EROFS: return ERR_PERMISSION;
  case ETIMEDOUT: return ERR_DEADLINE;
  case ECONNREFUSED: case ECONNRESET: case EHOSTUNREACH: case ENETUNREACH: return ERR_UNAVAILABLE;
  case EBUSY: case ENOTEMPTY: return ERR_PRECONDITION;
  case ENOSYS: case EOPNOTSUPP: return ERR_UNIMPLEMENTED;
  default: return ERR_INTERNAL;
  }
}
