/* sandbox_info.h - what crispd tells of a sandboxed container (ContainerStatus verbose).
 *
 * The refusals are read back from the pod's sandbox kernel log, where every tracer of
 * the pod (the container's monitor and its exec helpers) appends one line per refused
 * syscall tagged with the container's short id, so the counts survive crispd and
 * monitor restarts and cover execs too.
 */
#ifndef CRISP_RUNTIMES_SANDBOX_INFO_H
#define CRISP_RUNTIMES_SANDBOX_INFO_H

#include "base/buf.h"
#include "base/err.h"

/* Appends {"refused":{"<syscall>":count,...},"refusedTotal":N} for container ctr_id
 * (64 hex) to b. A missing log is no refusals. */
int sandbox_info_json(const char *kmsg_path, const char *ctr_id, struct buf *b, err_t **e);

#endif
