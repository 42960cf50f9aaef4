/* kmsg_int.h - the sandbox kernel log file (boot lines + refusal lines). */
#ifndef CRISP_SANDBOX_KMSG_INT_H
#define CRISP_SANDBOX_KMSG_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* Past this size refusals are only counted, not logged: a tenant looping on a refused
 * syscall must not fill the node's disk. */
#define KMSG_MAX_BYTES (1 << 20)

struct kmsg {
  int fd;            /* O_RDWR|O_APPEND, -1 when there is no log */
  int64_t boot_ns;   /* CLOCK_REALTIME of the log's creation: timestamps count from it */
  int full_noted;    /* the "log full" line was written */
};

/* Opens path, creating it with the boot lines for k if missing (O_EXCL: exactly one of
 * the tracers sharing it writes them). */
int kmsg_open(struct kmsg *m, const char *path, const struct sbx_kernel *k, err_t **e);
void kmsg_close(struct kmsg *m);
/* Appends "sandbox: refused <name> comm=<comm> pid=<pid>[ tag=<tag>]" as one write. */
void kmsg_refusal(struct kmsg *m, const char *name, const char *comm, pid_t pid,
                  const char *tag);

#endif
