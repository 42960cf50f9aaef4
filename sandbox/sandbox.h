/* sandbox.h - crisp's ptrace syscall sandbox: a seccomp table plus a tracer.
 *
 * A policy is a table syscall -> action. It is compiled (libseccomp, in the parent) into
 * a seccomp-BPF program that the child installs as the last thing before execve. Allowed
 * syscalls run natively; SBX_ERRNO ones fail in-kernel; SBX_REFUSE and SBX_TRACE ones stop
 * for the tracer (PTRACE_O_TRACESECCOMP), which counts and logs a refusal (EPERM) or
 * emulates the call (uname, syslog). A syscall the table does not know fails in-kernel
 * with ENOSYS. With no tracer a traced syscall fails (ENOSYS) and PTRACE_O_EXITKILL kills
 * the tree if the tracer dies: the sandbox fails closed.
 *
 * Threads: none of this is thread-safe; a tracer belongs to the thread that seized (ptrace
 * requires it). Ownership: every *_new/_load/_build result is the caller's, freed by the
 * matching *_free (NULL is a no-op). Errors: err_t chains (base/err.h), ERR_INVALID for a
 * bad policy (the message names the key and the reason).
 *
 * The tracer knows nothing of the policy's meaning beyond "which syscall numbers stop and
 * which handler takes them"; the policy knows nothing of ptrace.
 */
#ifndef CRISP_SANDBOX_SANDBOX_H
#define CRISP_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/err.h"

struct sock_filter;

/* --- policy ------------------------------------------------------------------ */

enum sbx_action {
  SBX_ALLOW,   /* runs natively, no stop */
  SBX_ERRNO,   /* refused in-kernel with an errno, silent (no stop, no count) */
  SBX_REFUSE,  /* stops: counted, logged to the sandbox kernel log, fails EPERM */
  SBX_TRACE,   /* stops: emulated by a named handler (uname, syslog) */
};

/* Handlers the tracer implements for SBX_TRACE entries. */
enum sbx_handler { SBX_H_NONE = 0, SBX_H_UNAME, SBX_H_SYSLOG, SBX_H_COUNT };

struct sbx_policy;

/* The built-in table (see policy.c and README "Syscall sandbox"). */
int sbx_policy_default(struct sbx_policy **out, err_t **e);
/* A JSON policy file: the default table, then the file's changes:
 *   {"base": "default"|"empty", "refuseInKernel": false, "defaultErrno": "ENOSYS",
 *    "syscalls": {"uname": "trace:uname", "mount": "refuse", "foo": "allow",
 *                 "bar": "errno:EACCES", "clone": "refuse"}}
 * Errors are ERR_INVALID naming the key and the reason ("syscalls.mountt: unknown syscall"). */
int sbx_policy_load(const char *path, struct sbx_policy **out, err_t **e);
/* Same from text (tests, config strings); `what` names the source in errors. */
int sbx_policy_parse(const char *text, const char *what, struct sbx_policy **out, err_t **e);
void sbx_policy_free(struct sbx_policy *p);
/* Compile SBX_REFUSE entries straight to SECCOMP_RET_ERRNO(EPERM): no stops, no counts. */
void sbx_policy_set_refuse_in_kernel(struct sbx_policy *p, bool on);
bool sbx_policy_refuse_in_kernel(const struct sbx_policy *p);
/* One entry of the effective table, for printing: calls fn for each known syscall in
 * number order. cond is "" or a note such as "if flags & CLONE_NEW*" when the action only
 * applies to some arguments (the other forms are allowed). Returns the count. */
typedef void (*sbx_policy_fn)(void *arg, const char *name, int nr, enum sbx_action a, int err,
                              enum sbx_handler h, const char *cond);
int sbx_policy_each(const struct sbx_policy *p, sbx_policy_fn fn, void *arg);
/* The action for a syscall name (SBX_ERRNO with *err = default errno if not listed);
 * -1 if the name is no syscall of this architecture. For tests and tools. */
int sbx_policy_lookup(const struct sbx_policy *p, const char *name, enum sbx_action *a, int *err,
                      enum sbx_handler *h);
const char *sbx_action_name(enum sbx_action a);
const char *sbx_handler_name(enum sbx_handler h);

/* --- filter program ------------------------------------------------------------ */

/* The BPF program, built in the parent (malloc allowed) with libseccomp. */
struct sbx_prog {
  struct sock_filter *insns;
  unsigned short len;
};
int sbx_prog_build(const struct sbx_policy *p, struct sbx_prog *out, err_t **e);
/* Same, through a cache of compiled programs in dir (~1.5 ms saved per start). dir must
 * be owned by the caller and writable by no one else, else (or NULL) this just builds. */
int sbx_prog_build_cached(const struct sbx_policy *p, const char *dir, struct sbx_prog *out,
                          err_t **e);
void sbx_prog_free(struct sbx_prog *prog);
/* In the child, last thing before execve: sets no_new_privs (again, harmlessly) and
 * installs the program. Async-signal-safe, no malloc; returns 0 or -errno. */
int sbx_prog_install(const struct sbx_prog *prog);

/* --- kernel identity ------------------------------------------------------------ */

/* What uname and friends report. NULL fields take the defaults: release "4.4.0",
 * version "#1 SMP Sun Jan 10 15:06:54 PST 2016", machine = the host's. */
struct sbx_kernel {
  const char *release, *version, *machine;
};
#define SBX_DEFAULT_RELEASE "4.4.0"
#define SBX_DEFAULT_VERSION "#1 SMP Sun Jan 10 15:06:54 PST 2016"

/* Contents (NUL-terminated, caller frees each) of /proc/version, /proc/sys/kernel/osrelease
 * and /proc/sys/kernel/version that agree with uname under k; the caller bind-mounts them
 * (openat is never trapped). Any out pointer may be NULL. */
int sbx_kernel_files(const struct sbx_kernel *k, char **proc_version, char **osrelease,
                     char **version, err_t **e);

/* --- tracer ---------------------------------------------------------------------- */

struct sbx_tracer_opts {
  struct sbx_kernel kernel;
  /* The sandbox kernel log: created with boot lines if missing, refusals appended
   * (O_APPEND, one write per line, so tracers of one pod may share it); syslog()/dmesg
   * in the sandbox read it. NULL: no log file (dmesg reads empty, refusals only counted). */
  const char *kmsg_path;
  const char *tag;   /* short id put in refusal lines ("tag=<id>"), may be NULL */
};

struct sbx_tracer;

/* Copies what it needs from o and p (both may be freed afterwards). Opens the log. */
int sbx_tracer_new(const struct sbx_tracer_opts *o, const struct sbx_policy *p,
                   struct sbx_tracer **out, err_t **e);
/* Frees the tracer. Tracees still attached are killed by PTRACE_O_EXITKILL only when the
 * tracing thread exits; free does not detach them. */
void sbx_tracer_free(struct sbx_tracer *t);

/* PTRACE_SEIZE the root (EXITKILL|TRACESECCOMP|TRACECLONE|TRACEFORK|TRACEVFORK|TRACEEXEC).
 * The caller is root's parent; it calls this right after creating the child and before
 * letting the child install its filter. Also pins the calling thread to the CPU it runs
 * on (next to the root it just forked), so traps stay on one CPU (tracer.c, "CPU
 * placement"); the tracees themselves are never left pinned. */
int sbx_tracer_seize(struct sbx_tracer *t, pid_t root, err_t **e);

/* Feed every waitpid(-1, &st, __WALL|WNOHANG) result here. */
enum sbx_event {
  SBX_EV_HANDLED,    /* a tracee stop, or a non-root tracee's exit: dealt with */
  SBX_EV_ROOT_EXIT,  /* pid is the root and it exited or was killed; status is exact */
  SBX_EV_NOT_MINE,   /* not a tracee: the caller's business (an orphan it reaps...) */
};
enum sbx_event sbx_tracer_handle(struct sbx_tracer *t, pid_t pid, int status);

/* Refusals seen by this tracer: calls fn(name, count) for each refused syscall with a
 * non-zero count; returns the total. */
typedef void (*sbx_count_fn)(void *arg, const char *name, unsigned long count);
unsigned long sbx_tracer_counts(const struct sbx_tracer *t, sbx_count_fn fn, void *arg);

/* Counts the refusal lines of a kmsg file for tag (NULL: every tag), across all the
 * tracers that share it: fn(name, count) once per syscall name, in first-seen order.
 * A missing file is no refusals (0). Returns 0 or -1 with *e. */
int sbx_kmsg_counts(const char *kmsg_path, const char *tag, sbx_count_fn fn, void *arg,
                    err_t **e);

#endif
