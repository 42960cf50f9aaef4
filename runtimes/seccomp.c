/* seccomp.c - the RuntimeDefault profile, and compiling/loading filters (libseccomp).
 *
 * RuntimeDefault is the set Docker and containerd ship, written from its documented
 * behaviour: an allowlist of ordinary syscalls; everything else fails with EPERM; some
 * syscalls open up when the container holds the capability that makes them meaningful
 * (mount with CAP_SYS_ADMIN, ptrace with CAP_SYS_PTRACE...); clone may not make
 * namespaces without CAP_SYS_ADMIN; clone3 answers ENOSYS so libc falls back to clone,
 * whose flags the filter can see; personality only takes the harmless values.
 * Stricter than Docker: bpf, perf_event_open, keyrings, io_uring, userfaultfd, kexec,
 * swapon/off and pivot_root are refused whatever the capabilities. */
#include "runtimes/seccomp_int.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "runtimes/ns_int.h"
#include "base/xalloc.h"

static const char *const allowed[] = {
  "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget",
  "capset", "chdir", "chmod", "chown", "chown32", "clock_getres", "clock_getres_time64",
  "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
  "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
  "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
  "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
  "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
  "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
  "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
  "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
  "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
  "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
  "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
  "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
  "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
  "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
  "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch",
  "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
  "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
  "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
  "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
  "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
  "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
  "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
  "modify_ldt", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
  "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
  "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
  "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
  "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
  "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
  "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2",
  "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
  "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
  "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
  "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
  "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
  "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
  "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
  "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
  "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
  "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
  "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
  "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
  "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
  "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
  "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
  "sigprocmask", "sigreturn", "socket", "socketcall", "socketpair", "splice", "stat", "stat64",
  "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
  "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
  "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
  "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
  "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
  "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
  "waitpid", "write", "writev",
};

/* Syscalls that only make sense with a capability: allowed when the container has it. */
static const struct {
  int cap;
  const char *names[12];
} by_cap[] = {
  {CAP_SYS_ADMIN, {"fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
                   "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", NULL}},
  {CAP_SYS_ADMIN, {"quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
                   "syslog", "umount", "umount2", "clone3", NULL}},
  {CAP_DAC_READ_SEARCH, {"open_by_handle_at", NULL}},
  {CAP_SYS_BOOT, {"reboot", NULL}},
  {CAP_SYS_CHROOT, {"chroot", NULL}},
  {CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module", NULL}},
  {CAP_SYS_PACCT, {"acct", NULL}},
  {CAP_SYS_PTRACE, {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                    "process_vm_writev", "ptrace", NULL}},
  {CAP_SYS_RAWIO, {"iopl", "ioperm", NULL}},
  {CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex",
                  "clock_adjtime", "clock_adjtime64", NULL}},
  {CAP_SYS_TTY_CONFIG, {"vhangup", NULL}},
  {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", NULL}},
  {CAP_SYSLOG, {"syslog", NULL}},
};

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
                  CLONE_NEWNET | CLONE_NEWCGROUP)

int seccomp_new(uint32_t def, struct seccomp_filter **out, err_t **e)
{
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx)
    return err_set(e, ERR_INVALID, 0, "seccomp: bad default action %#x", def);
  /* no_new_privs is the spec's choice: without it the filter is loaded while the
   * process still has CAP_SYS_ADMIN (see init_exec) */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) {
    seccomp_release(ctx);
    return err_sys(e, -rc, "seccomp: clear the no_new_privs attribute");
  }
  struct seccomp_filter *f = xcalloc(1, sizeof(*f));
  f->ctx = ctx;
  *out = f;
  return 0;
}

void seccomp_filter_free(struct seccomp_filter *f)
{
  if (!f)
    return;
  seccomp_release(f->ctx);
  free(f);
}

int seccomp_rule(struct seccomp_filter *f, const char *name, uint32_t action, unsigned n,
                 const struct scmp_arg_cmp *args, err_t **e)
{
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR)
    return 0;
  uint32_t def = 0;
  if (seccomp_attr_get(f->ctx, SCMP_FLTATR_ACT_DEFAULT, &def) == 0 && def == action)
    return 0;
  int rc = seccomp_rule_add_array(f->ctx, action, nr, n, args);
  if (rc < 0 && rc != -EEXIST)   /* the same rule twice (syslog: two caps open it) */
    return err_set(e, ERR_INVALID, -rc, "seccomp: rule for %s: %s", name, strerror(-rc));
  return 0;
}

int seccomp_native_arches(struct seccomp_filter *f, err_t **e)
{
  uint32_t extra[2] = {0, 0};
  switch (seccomp_arch_native()) {
  case SCMP_ARCH_X86_64:
    extra[0] = SCMP_ARCH_X86;
    extra[1] = SCMP_ARCH_X32;
    break;
  case SCMP_ARCH_AARCH64:
    extra[0] = SCMP_ARCH_ARM;
    break;
  default:
    break;
  }
  for (int i = 0; i < 2; i++) {
    int rc = extra[i] ? seccomp_arch_add(f->ctx, extra[i]) : 0;
    if (rc < 0 && rc != -EEXIST)
      return err_sys(e, -rc, "seccomp: add architecture %#x", extra[i]);
  }
  return 0;
}

static bool has_cap(uint64_t caps, int cap)
{
  return (caps >> cap) & 1;
}

/* clone, clone3, unshare and personality: allowed only in their harmless forms. */
static int special_rules(struct seccomp_filter *f, uint64_t caps, err_t **e)
{
  static const uint64_t personas[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
  const struct scmp_arg_cmp no_ns = SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0);
  for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++) {
    const struct scmp_arg_cmp is = SCMP_A0(SCMP_CMP_EQ, personas[i]);
    if (seccomp_rule(f, "personality", SCMP_ACT_ALLOW, 1, &is, e) < 0)
      return -1;
  }
  if (has_cap(caps, CAP_SYS_ADMIN))
    return seccomp_rule(f, "clone", SCMP_ACT_ALLOW, 0, NULL, e) < 0 ||
                   seccomp_rule(f, "unshare", SCMP_ACT_ALLOW, 0, NULL, e) < 0
               ? -1 : 0;
  if (seccomp_rule(f, "clone", SCMP_ACT_ALLOW, 1, &no_ns, e) < 0 ||
      seccomp_rule(f, "unshare", SCMP_ACT_ALLOW, 1, &no_ns, e) < 0 ||
      seccomp_rule(f, "clone3", SCMP_ACT_ERRNO(ENOSYS), 0, NULL, e) < 0)
    return -1;
  return 0;
}

int seccomp_runtime_default(uint64_t caps, struct seccomp_filter **out, err_t **e)
{
  struct seccomp_filter *f = NULL;
  if (seccomp_new(SCMP_ACT_ERRNO(EPERM), &f, e) < 0)
    return -1;
  int rc = seccomp_native_arches(f, e);
  for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++)
    rc = seccomp_rule(f, allowed[i], SCMP_ACT_ALLOW, 0, NULL, e);
  for (size_t i = 0; rc == 0 && i < sizeof(by_cap) / sizeof(by_cap[0]); i++)
    for (size_t j = 0; rc == 0 && has_cap(caps, by_cap[i].cap) && by_cap[i].names[j]; j++)
      rc = seccomp_rule(f, by_cap[i].names[j], SCMP_ACT_ALLOW, 0, NULL, e);
  if (rc == 0)
    rc = special_rules(f, caps, e);
  if (rc < 0) {
    seccomp_filter_free(f);
    return err_wrap(e, "RuntimeDefault");
  }
  *out = f;
  return 0;
}

int seccomp_prepare(const struct ctr_spec *s, struct seccomp_filter **out, err_t **e)
{
  *out = NULL;
  if (s->privileged || s->seccomp == SECCOMP_UNCONFINED)
    return 0;
  uint64_t caps = priv_effective_caps(s).bounding;
  /* in the sandbox, syslog never reaches the kernel: the sandbox's own filter stops it
   * for the tracer, which reads the sandbox's log (and a trap outranks an allow), so
   * the profile lets it through as it would with CAP_SYSLOG, and dmesg works as in
   * gVisor whatever the profile */
  if (s->seccomp == SECCOMP_RUNTIME_DEFAULT)
    return seccomp_runtime_default(
        s->executor == EXECUTOR_SANDBOX ? caps | (1ull << CAP_SYSLOG) : caps, out, e);
  if (!s->seccomp_profile || !*s->seccomp_profile)
    return err_set(e, ERR_INVALID, 0, "seccomp: a Localhost profile needs a profile path");
  return seccomp_profile_load(s->seccomp_profile, caps, out, e);
}

int seccomp_install(struct seccomp_filter *f, err_t **e)
{
  if (!f)
    return 0;
  int rc = seccomp_load(f->ctx);
  if (rc < 0)
    return err_sys(e, -rc, "load the seccomp filter");
  return 0;
}
