/* policy.c - the sandbox's syscall table: the default, lookups, printing.
 *
 * The default allows what ordinary programs need (busybox, glibc programs, servers,
 * tar/gzip, threads, fork/exec), emulates uname and syslog, refuses (counted, EPERM) what
 * reaches into the kernel or out of the container, and leaves everything else to the
 * filter's default: ENOSYS, the answer of a kernel that lacks the call. Policy only: the
 * tracer (tracer.c) knows nothing of why an entry is there. */
#include "sandbox/policy_int.h"

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

static const char *const allowed[] = {
  "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget",
  "capset", "chdir", "chmod", "chown", "clock_getres", "clock_gettime", "clock_nanosleep",
  "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
  "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
  "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
  "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2",
  "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
  "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
  "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd",
  "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer",
  "get_mempolicy", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
  "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list", "getrusage", "getsid",
  "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr",
  "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
  "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set",
  "io_setup", "io_submit", "kill", "landlock_add_rule", "landlock_create_ruleset",
  "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr",
  "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack",
  "mbind", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat",
  "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
  "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
  "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
  "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
  "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
  "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
  "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
  "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
  "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
  "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
  "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity",
  "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
  "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
  "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
  "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
  "setdomainname", "setfsgid", "setfsuid", "setgid", "setgroups", "sethostname", "setitimer",
  "set_mempolicy", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
  "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
  "set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
  "sigaltstack", "signalfd", "signalfd4", "socket", "socketpair", "splice", "stat", "statfs",
  "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
  "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
  "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
  "truncate", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork",
  "vmsplice", "wait4", "waitid", "write", "writev", "clone", "unshare", "personality",
  "mknod", "mknodat",
};

/* Counted and logged, then EPERM: each reaches into the kernel, the host or a neighbour
 * (modules, kexec, eBPF, perf, keyrings, mounts, namespaces, ptrace, clocks, raw I/O,
 * file handles, userfaultfd, io_uring). clone/unshare/personality/mknod* are refused in
 * their dangerous forms only (see cond_of). */
static const char *const refused[] = {
  "init_module", "finit_module", "delete_module", "create_module", "query_module",
  "get_kernel_syms", "kexec_load", "kexec_file_load", "bpf", "perf_event_open", "keyctl",
  "add_key", "request_key", "mount", "umount2", "pivot_root", "chroot", "move_mount",
  "fsopen", "fsconfig", "fsmount", "fspick", "open_tree", "mount_setattr", "setns", "ptrace",
  "process_vm_writev", "process_vm_readv", "process_madvise", "pidfd_getfd", "kcmp",
  "reboot", "swapon", "swapoff", "acct", "clock_settime", "settimeofday", "adjtimex",
  "clock_adjtime", "iopl", "ioperm", "open_by_handle_at", "userfaultfd", "io_uring_setup",
  "io_uring_enter", "io_uring_register", "quotactl", "quotactl_fd", "lookup_dcookie",
  "fanotify_init", "vhangup", "nfsservctl", "uselib", "_sysctl", "migrate_pages",
  "move_pages", "clone", "unshare", "personality", "mknod", "mknodat",
};

static const struct {
  const char *name;
  enum sbx_cond cond;
} conds[] = {
  {"clone", SBX_COND_NS_FLAGS}, {"unshare", SBX_COND_NS_FLAGS},
  {"personality", SBX_COND_PERSONA}, {"mknod", SBX_COND_DEV_A1},
  {"mknodat", SBX_COND_DEV_A2},
};

static enum sbx_cond cond_of(const char *name)
{
  for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++)
    if (strcmp(conds[i].name, name) == 0)
      return conds[i].cond;
  return SBX_COND_NONE;
}

const char *policy_cond_note(enum sbx_cond c)
{
  switch (c) {
  case SBX_COND_NS_FLAGS: return "if flags has CLONE_NEW*";
  case SBX_COND_PERSONA: return "unless PER_LINUX or query";
  case SBX_COND_DEV_A1:
  case SBX_COND_DEV_A2: return "if a char/block device";
  case SBX_COND_NONE: break;
  }
  return "";
}

const char *sbx_action_name(enum sbx_action a)
{
  switch (a) {
  case SBX_ALLOW: return "allow";
  case SBX_ERRNO: return "errno";
  case SBX_REFUSE: return "refuse";
  case SBX_TRACE: return "trace";
  }
  return "?";
}

const char *sbx_handler_name(enum sbx_handler h)
{
  switch (h) {
  case SBX_H_UNAME: return "uname";
  case SBX_H_SYSLOG: return "syslog";
  case SBX_H_NONE:
  case SBX_H_COUNT: break;
  }
  return "";
}

static int rule_cmp(const void *a, const void *b)
{
  const struct sbx_rule *x = a, *y = b;
  return (x->nr > y->nr) - (x->nr < y->nr);
}

const struct sbx_rule *policy_find(const struct sbx_policy *p, int nr)
{
  struct sbx_rule key = {.nr = nr};
  if (p->n == 0)
    return NULL;   /* an empty table has no array to search */
  return bsearch(&key, p->rules, p->n, sizeof(key), rule_cmp);
}

int policy_set(struct sbx_policy *p, const char *name, enum sbx_action a, int err,
               enum sbx_handler h)
{
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR || nr < 0)   /* negative: a pseudo number, not on this arch */
    return -1;
  struct sbx_rule r = {.nr = nr, .action = (uint8_t)a, .handler = (uint8_t)h,
                       .cond = (uint8_t)cond_of(name), .err = (uint16_t)err};
  size_t lo = 0, hi = p->n;   /* sorted insert: the table is built in microseconds */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (p->rules[mid].nr < nr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < p->n && p->rules[lo].nr == nr) {
    p->rules[lo] = r;
    return 0;
  }
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 512;
    p->rules = xreallocarray(p->rules, p->cap, sizeof(*p->rules));
  }
  memmove(&p->rules[lo + 1], &p->rules[lo], (p->n - lo) * sizeof(*p->rules));
  p->rules[lo] = r;
  p->n++;
  return 0;
}

struct sbx_policy *policy_empty(void)
{
  struct sbx_policy *p = xcalloc(1, sizeof(*p));
  p->default_errno = ENOSYS;
  return p;
}

int sbx_policy_default(struct sbx_policy **out, err_t **e)
{
  struct sbx_policy *p = policy_empty();
  /* names this architecture lacks (or this libseccomp does not know) are skipped */
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
    policy_set(p, allowed[i], SBX_ALLOW, 0, SBX_H_NONE);
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
    policy_set(p, refused[i], SBX_REFUSE, 0, SBX_H_NONE);
  policy_set(p, "uname", SBX_TRACE, 0, SBX_H_UNAME);
  policy_set(p, "syslog", SBX_TRACE, 0, SBX_H_SYSLOG);
  /* clone3 hides its flags behind a pointer the filter cannot read: ENOSYS makes libc
   * fall back to clone, whose flags it can */
  policy_set(p, "clone3", SBX_ERRNO, ENOSYS, SBX_H_NONE);
  *out = p;
  return 0;
}

void sbx_policy_free(struct sbx_policy *p)
{
  if (!p)
    return;
  free(p->rules);
  free(p);
}

void sbx_policy_set_refuse_in_kernel(struct sbx_policy *p, bool on)
{
  p->refuse_in_kernel = on;
}

bool sbx_policy_refuse_in_kernel(const struct sbx_policy *p)
{
  return p->refuse_in_kernel;
}

char *policy_syscall_name(int nr)
{
  char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (!s)
    return xasprintf("nr%d", nr);
  char *r = xstrdup(s);
  free(s);
  return r;
}

int sbx_policy_each(const struct sbx_policy *p, sbx_policy_fn fn, void *arg)
{
  for (size_t i = 0; i < p->n; i++) {
    const struct sbx_rule *r = &p->rules[i];
    char *name = policy_syscall_name(r->nr);
    fn(arg, name, r->nr, (enum sbx_action)r->action, r->err, (enum sbx_handler)r->handler,
       r->action == SBX_ALLOW ? "" : policy_cond_note((enum sbx_cond)r->cond));
    free(name);
  }
  return (int)p->n;
}

int sbx_policy_lookup(const struct sbx_policy *p, const char *name, enum sbx_action *a, int *err,
                      enum sbx_handler *h)
{
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR || nr < 0)
    return -1;
  const struct sbx_rule *r = policy_find(p, nr);
  *a = r ? (enum sbx_action)r->action : SBX_ERRNO;
  *err = r ? r->err : p->default_errno;
  *h = r ? (enum sbx_handler)r->handler : SBX_H_NONE;
  return 0;
}
