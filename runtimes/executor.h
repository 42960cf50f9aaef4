/* executor.h - building and entering containers (the namespaces executor).
 *
 * These run inside crisp-monitor (start) or a short-lived exec helper (exec), never in
 * crispd: they fork, clone, mount and setns. RuntimeClass routing picks the executor per
 * pod; the sandbox executor (sandbox/) is the namespaces executor plus a tracer.
 *
 * Errors: ERR_INVALID for a spec the kernel refuses for a reason in the spec (a mount
 * source that does not exist, an unknown user...), with the path or value named;
 * ERR_PERMISSION / ERR_INTERNAL for system failures, naming the step ("mount /proc:
 * Operation not permitted"). A failure reported before the container's process exec'd
 * leaves nothing behind (mounts, cgroup).
 */
#ifndef CRISP_RUNTIMES_EXECUTOR_H
#define CRISP_RUNTIMES_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/spec.h"

/* Descriptors the container's process gets as 0, 1, 2; -1 means /dev/null. A tty
 * (spec tty for a start, exec_spec console_socket for an exec) is made inside the
 * container instead, as runc's --console-socket: in is then a unix socket (SOCK_STREAM
 * or SOCK_SEQPACKET) on which the process sends the master of a pty of the container's
 * own devpts (SCM_RIGHTS, base/fdpass.h) before it execs, and takes the slave as 0, 1,
 * 2, its controlling terminal (and, for a start, /dev/console); out and err are unused.
 * The master is queued on the socket by the time the call returns success. */
struct ctr_stdio {
  int in, out, err;
};

/* Builds the container described by s (cgroup, namespaces, rootfs, mounts, devices,
 * user, capabilities, no_new_privs, seccomp) and starts its first process. Returns once
 * that process has exec'd argv[0], with *pid its pid in the caller's pid namespace, or
 * with the exact reason it could not (the executable is missing: ERR_INVALID naming it). */
int ns_start(const struct ctr_spec *s, const struct ctr_stdio *io, pid_t *pid, err_t **e);

/* Starts x inside the running container whose first process is target: same
 * namespaces, cgroup, rootfs, user, capabilities, no_new_privs and seccomp as the
 * container. Returns once it exec'd. */
int ns_exec(const struct ctr_spec *s, pid_t target, const struct exec_spec *x,
            const struct ctr_stdio *io, pid_t *pid, err_t **e);

/* The sandbox executor's additions to a start or an exec: the tracer seizes the new
 * process (seize is called with its pid while it still waits, before it may run its
 * setup to the end), and the process installs the sandbox's filter as its very last
 * step before execve, after the container's own seccomp filter (so the stricter action
 * wins). The filter needs no_new_privs or CAP_SYS_ADMIN like any seccomp filter: it
 * goes in where the container's filter would. */
struct sock_fprog;
struct ns_trace {
  const struct sock_fprog *filter;
  int (*seize)(void *arg, pid_t pid, err_t **e);
  void *arg;
};
/* ns_start / ns_exec with a tracer (t may be NULL: untraced). */
int ns_start_traced(const struct ctr_spec *s, const struct ctr_stdio *io, const struct ns_trace *t,
                    pid_t *pid, err_t **e);
int ns_exec_traced(const struct ctr_spec *s, pid_t target, const struct exec_spec *x,
                   const struct ctr_stdio *io, const struct ns_trace *t, pid_t *pid, err_t **e);

/* Undoes on the host what ns_start set up (the rootfs mount, the cgroup) once the
 * container's processes are gone. Idempotent: missing pieces are fine. */
int ns_cleanup(const struct ctr_spec *s, err_t **e);

/* ---- where cgroups go (cgroup_name.c) ----
 * The driver crispd reports to kubelet in RuntimeConfig decides the form of the pod's
 * cgroup_parent and the name of each container's cgroup, as on containerd and CRI-O
 * nodes; either way crisp creates the directories itself on the cgroup file system.
 *   cgroupfs: parent a path ("/kubepods/burstable/pod<uid>"), leaf "crisp-<id>";
 *             no parent: CGROUP_POD_ROOT/<pod id>.
 *   systemd:  parent a slice ("kubepods-burstable-pod<uid>.slice", laid out as
 *             kubepods.slice/kubepods-burstable.slice/...), leaf "crisp-<id>.scope";
 *             no parent: "crisp-<pod id>.slice" (crisp.slice/crisp-<pod id>.slice). */
enum cgroup_driver { CGROUP_DRIVER_CGROUPFS = 0, CGROUP_DRIVER_SYSTEMD };
#define CGROUP_POD_ROOT "/crisp"
#define CGROUP_POD_SLICE_PREFIX "crisp"
#define CGROUP_LEAF_PREFIX "crisp-"
/* A pod's cgroup_parent as driver d takes it ("" or NULL: none): cgroupfs refuses a bare
 * slice name, systemd anything but a valid slice name. ERR_INVALID naming the driver,
 * the form expected and that kubelet's driver must match. */
int cgroup_parent_check(enum cgroup_driver d, const char *parent, err_t **e);
/* The cgroup parent and leaf name (caller frees both) of object id (a container) of pod
 * pod_id whose cgroup_parent is pod_parent; checks pod_parent as cgroup_parent_check. */
int cgroup_place(enum cgroup_driver d, const char *pod_parent, const char *pod_id, const char *id,
                 char **parent, char **name, err_t **e);

/* The container's cgroup path (as created by ns_start) for each controller hierarchy
 * is derived from s->cgroup_parent and s->cgroup_name; these read it. */
struct ctr_usage {
  uint64_t cpu_usage_ns;        /* cumulative */
  uint64_t memory_usage;        /* bytes, incl. cache */
  uint64_t memory_working_set;  /* usage minus inactive file */
  uint64_t memory_rss;
  uint64_t pids;
  bool oom_killed;              /* the cgroup saw an OOM kill */
};
int cgroup_usage(const struct ctr_spec *s, struct ctr_usage *out, err_t **e);
/* Applies new limits to a running container's cgroup (UpdateContainerResources). */
int cgroup_update(const struct ctr_spec *s, const struct resources *r, err_t **e);
/* The pod's own cgroup, for its pause process (a pod whose containers share a PID
 * namespace; other pods have no process of their own): the leaf cgroup_place gives
 * with the pod's id, a sibling of its containers' as containerd's sandbox is
 * (<slices>/crisp-<pod id>.scope, <parent>/crisp-<pod id>). Creates it and moves pid in
 * (through cgroup.procs: the pause process is already running). On failure nothing
 * is left. */
int cgroup_pod_enter(enum cgroup_driver d, const char *pod_parent, const char *pod_id, pid_t pid,
                     err_t **e);
/* Removes the pod's own cgroup (its pause process is gone: StopPodSandbox). Both
 * drivers' names, so a driver change since RunPodSandbox leaves nothing. Missing is
 * fine. */
int cgroup_pod_remove_own(const char *pod_parent, const char *pod_id, err_t **e);
/* The same, then the parent crisp made for a pod that named none (CGROUP_POD_ROOT/<pod
 * id> or crisp.slice/crisp-<pod id>.slice), once the containers' cgroups are gone
 * (RemovePodSandbox). */
int cgroup_pod_remove(const char *pod_parent, const char *pod_id, err_t **e);
/* Signals every process in the container's cgroup (for SIGKILL on stop/remove). */
int cgroup_kill_all(const struct ctr_spec *s, int sig, err_t **e);
/* Thaws the container's v1 freezer cgroup if it is frozen: cgroup_kill_all freezes
 * around its SIGKILL pass, and a crispd killed inside that window leaves it frozen.
 * No freezer, no cgroup or not frozen: 0. */
int cgroup_thaw(const struct ctr_spec *s, err_t **e);

#endif
