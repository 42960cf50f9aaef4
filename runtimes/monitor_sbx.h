/* monitor_sbx.h - the sandbox executor inside crisp-monitor (runtimes/ only).
 *
 * A container or exec of a pod whose handler is a sandbox one runs under the
 * namespaces executor with two additions (executor.h, struct ns_trace): the monitor
 * seizes the process before it runs (it is the tracer of everything the process
 * starts), and the process installs the sandbox's seccomp filter last. The monitor's
 * loop then hands every wait status to the tracer (sbx_tracer_handle).
 *
 * The sandbox's kernel log is the pod's (spec sandbox.kmsg_path, written by every
 * tracer of the pod), so dmesg shows the pod's refusals as one kernel's would.
 */
#ifndef CRISP_RUNTIMES_MONITOR_SBX_H
#define CRISP_RUNTIMES_MONITOR_SBX_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/executor.h"
#include "runtimes/spec.h"
#include "sandbox/sandbox.h"

#define MON_SBX_FILES "kernel"   /* the kernel identity files, in the state dir */

struct mon_sbx {
  struct sbx_policy *policy;
  struct sbx_prog prog;
  struct sock_fprog *fprog;   /* prog as the kernel takes it */
  struct sbx_tracer *tracer;  /* NULL: not a sandboxed process */
  struct ns_trace trace;
  char tag[16];
};

/* For a sandbox spec: policy, filter and tracer; for a start (not an exec), also the
 * kernel identity files in state_dir (s->sandbox.files_dir is set to them). A spec of
 * another executor leaves x empty. */
int mon_sbx_prepare(struct ctr_spec *s, const char *state_dir, bool start, struct mon_sbx *x,
                    err_t **e);
/* What ns_start_traced / ns_exec_traced take: NULL when x is empty. */
const struct ns_trace *mon_sbx_trace(const struct mon_sbx *x);
/* Moves the monitor into pid's UTS namespace (the emulated uname's node name). */
int mon_sbx_follow_uts(const struct mon_sbx *x, pid_t pid, err_t **e);
void mon_sbx_clear(struct mon_sbx *x);

#endif
