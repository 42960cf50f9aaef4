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

/* Compiles a sandbox handler's policy (o->policy_file, or the built-in table) into the
 * seccomp program its processes install, and writes it atomically to path. crispd does
 * this at start for every sandbox handler: a bad policy stops crispd with its reason,
 * and monitors load the program instead of compiling it (~2 ms) for every start and
 * exec. The policy is read once: change it, restart crispd. */
struct sandbox_opts;
int sandbox_prog_write(const struct sandbox_opts *o, const char *path, err_t **e);

/* Reads a program written by sandbox_prog_write: *insns (malloc'd) and *len. */
struct sock_filter;
int sandbox_prog_read(const char *path, struct sock_filter **insns, unsigned short *len,
                      err_t **e);

#endif
