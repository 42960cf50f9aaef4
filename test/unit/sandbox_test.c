/* sandbox: the policy table and its file format, the filter it compiles to (run in a
 * forked child, with and without a tracer), kernel identity files, the kmsg counter. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "sandbox/sandbox.h"

static struct sbx_policy *dflt(void)
{
  struct sbx_policy *p = NULL;
  err_t *e = NULL;
  cr_assert_eq(sbx_policy_default(&p, &e), 0);
  return p;
}

static enum sbx_action action_of(const struct sbx_policy *p, const char *name, int *err)
{
  enum sbx_action a;
  enum sbx_handler h;
  int er;
  cr_assert_eq(sbx_policy_lookup(p, name, &a, &er, &h), 0, "%s", name);
  if (err)
    *err = er;
  return a;
}

Test(sandbox_policy, default_refuses_the_required_list)
{
  struct sbx_policy *p = dflt();
  static const char *const names[] = {
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "mount", "umount2", "pivot_root",
    "chroot", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree",
    "mount_setattr", "unshare", "setns", "clone", "ptrace", "process_vm_writev", "reboot",
    "swapon", "swapoff", "acct", "clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
    "iopl", "ioperm", "open_by_handle_at", "userfaultfd", "personality", "mknod", "mknodat",
    "io_uring_setup"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    cr_expect_eq(action_of(p, names[i], NULL), SBX_REFUSE, "%s", names[i]);
  sbx_policy_free(p);
}

Test(sandbox_policy, default_traces_uname_and_syslog_allows_the_ordinary)
{
  struct sbx_policy *p = dflt();
  enum sbx_action a;
  enum sbx_handler h;
  int err;
  cr_assert_eq(sbx_policy_lookup(p, "uname", &a, &err, &h), 0);
  cr_expect_eq(a, SBX_TRACE);
  cr_expect_eq(h, SBX_H_UNAME);
  cr_assert_eq(sbx_policy_lookup(p, "syslog", &a, &err, &h), 0);
  cr_expect_eq(h, SBX_H_SYSLOG);
  static const char *const ok[] = {"read", "write", "openat", "mmap", "futex", "execve",
                                   "wait4", "fork", "vfork", "rt_sigaction", "getppid",
                                   "epoll_wait", "accept4", "newfstatat", "exit_group"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    cr_expect_eq(action_of(p, ok[i], NULL), SBX_ALLOW, "%s", ok[i]);
  cr_expect_eq(action_of(p, "clone3", &err), SBX_ERRNO);
  cr_expect_eq(err, ENOSYS);
  /* not in the table: the default, ENOSYS */
  cr_expect_eq(action_of(p, "lookup_dcookie", NULL), SBX_REFUSE);
  cr_expect_eq(action_of(p, "kexec_load", NULL), SBX_REFUSE);
  cr_expect_eq(action_of(p, "tuxcall", &err), SBX_ERRNO);
  cr_expect_eq(err, ENOSYS);
  sbx_policy_free(p);
}

static void expect_parse_error(const char *text, const char *needle)
{
  struct sbx_policy *p = NULL;
  err_t *e = NULL;
  cr_assert_eq(sbx_policy_parse(text, "t.json", &p, &e), -1, "%s", text);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_expect(strstr(e->msg, needle), "\"%s\" lacks \"%s\"", e->msg, needle);
  err_free(&e);
}

Test(sandbox_policy, parse_errors_name_the_key_and_the_reason)
{
  expect_parse_error("{\"syscalls\": {\"mountt\": \"refuse\"}}", "syscalls.mountt: unknown syscall");
  expect_parse_error("{\"syscalls\": {\"mount\": \"nope\"}}", "syscalls.mount: unknown action");
  expect_parse_error("{\"syscalls\": {\"mount\": \"errno:EWHAT\"}}", "syscalls.mount: unknown errno");
  expect_parse_error("{\"syscalls\": {\"mount\": \"trace:uname\"}}", "handler uname only emulates");
  expect_parse_error("{\"syscalls\": {\"uname\": \"trace:foo\"}}", "unknown handler");
  expect_parse_error("{\"syscalls\": {\"uname\": 3}}", "syscalls.uname: must be a string");
  expect_parse_error("{\"syscalls\": []}", "syscalls: must be an object");
  expect_parse_error("{\"refuseInKernel\": 1}", "refuseInKernel: must be true or false");
  expect_parse_error("{\"base\": \"x\"}", "base: must be");
  expect_parse_error("{\"bogus\": 1}", "bogus: unknown key");
  expect_parse_error("{\"syscalls\": ", "t.json");
}

Test(sandbox_policy, file_changes_apply_on_the_default)
{
  struct sbx_policy *p = NULL;
  err_t *e = NULL;
  cr_assert_eq(sbx_policy_parse("{\"refuseInKernel\": true, \"syscalls\": {\"mount\": \"allow\","
                                "\"getppid\": \"errno:EACCES\", \"uname\": \"refuse\"}}",
                                "t", &p, &e), 0);
  int err;
  cr_expect(sbx_policy_refuse_in_kernel(p));
  cr_expect_eq(action_of(p, "mount", NULL), SBX_ALLOW);
  cr_expect_eq(action_of(p, "getppid", &err), SBX_ERRNO);
  cr_expect_eq(err, EACCES);
  cr_expect_eq(action_of(p, "uname", NULL), SBX_REFUSE);
  cr_expect_eq(action_of(p, "read", NULL), SBX_ALLOW);
  sbx_policy_free(p);
  cr_assert_eq(sbx_policy_parse("{\"base\": \"empty\", \"syscalls\": {\"read\": \"allow\"}}",
                                "t", &p, &e), 0);
  cr_expect_eq(action_of(p, "write", &err), SBX_ERRNO);
  cr_expect_eq(err, ENOSYS);
  sbx_policy_free(p);
}

Test(sandbox_policy, load_reports_a_missing_file)
{
  struct sbx_policy *p = NULL;
  err_t *e = NULL;
  cr_assert_eq(sbx_policy_load("/nonexistent/policy.json", &p, &e), -1);
  cr_expect(strstr(e->msg, "/nonexistent/policy.json"));
  err_free(&e);
}

Test(sandbox_kernel, files_agree_with_uname_defaults)
{
  char *pv = NULL, *rel = NULL, *ver = NULL;
  err_t *e = NULL;
  cr_assert_eq(sbx_kernel_files(NULL, &pv, &rel, &ver, &e), 0);
  cr_expect_str_eq(rel, "4.4.0\n");
  cr_expect_str_eq(ver, SBX_DEFAULT_VERSION "\n");
  cr_expect(strncmp(pv, "Linux version 4.4.0 ", 20) == 0, "%s", pv);
  cr_expect(strstr(pv, SBX_DEFAULT_VERSION "\n"));
  free(pv);
  free(rel);
  free(ver);
  struct sbx_kernel k = {.release = "5.10.0-sbx"};
  cr_assert_eq(sbx_kernel_files(&k, NULL, &rel, NULL, &e), 0);
  cr_expect_str_eq(rel, "5.10.0-sbx\n");
  free(rel);
  k.release = "a\nb";
  cr_assert_eq(sbx_kernel_files(&k, NULL, &rel, NULL, &e), -1);
  cr_expect_eq(e->code, ERR_INVALID);
  err_free(&e);
}

/* --- the filter, in a child ------------------------------------------------------ */

static int install(const struct sbx_policy *p)
{
  struct sbx_prog prog;
  err_t *e = NULL;
  cr_assert_eq(sbx_prog_build(p, &prog, &e), 0, "%s", e ? e->msg : "");
  int rc = sbx_prog_install(&prog);
  sbx_prog_free(&prog);
  return rc;
}

/* Runs probe under p in an untraced child: exit code is probe's. */
static int untraced(const struct sbx_policy *p, int (*probe)(void))
{
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    if (install(p) < 0)
      _exit(100);
    _exit(probe());
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st), "status %#x", st);
  return WEXITSTATUS(st);
}

static int probe_fail_closed(void)
{
  struct utsname u;
  /* TRACE and REFUSE with no tracer: the kernel answers ENOSYS, never the real call */
  if (syscall(SYS_uname, &u) != -1 || errno != ENOSYS)
    return 1;
  if (syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL) != -1 || errno != ENOSYS)
    return 2;
  if (syscall(SYS_getppid) <= 0)
    return 3;
  if (syscall(SYS_tuxcall) != -1 || errno != ENOSYS)
    return 4;
  if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
    return 5;
  return 0;
}

Test(sandbox_filter, without_a_tracer_traced_syscalls_fail_closed)
{
  struct sbx_policy *p = dflt();
  cr_expect_eq(untraced(p, probe_fail_closed), 0);
  sbx_policy_free(p);
}

static int probe_in_kernel(void)
{
  if (syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL) != -1 || errno != EPERM)
    return 1;
  if (syscall(SYS_unshare, CLONE_NEWUSER) != -1 || errno != EPERM)
    return 2;
  if (syscall(SYS_unshare, CLONE_FILES) != 0)   /* no namespace flag: allowed */
    return 3;
  if (syscall(SYS_personality, 0xffffffffUL) < 0)
    return 4;
  if (syscall(SYS_personality, 0x0040000UL) != -1 || errno != EPERM)   /* ADDR_NO_RANDOMIZE */
    return 5;
  if (syscall(SYS_mknodat, AT_FDCWD, "/nonexistent/x", S_IFCHR | 0600, 0x0103) != -1 ||
      errno != EPERM)
    return 6;
  /* a FIFO is no device: reaches the kernel, which answers ENOENT here */
  if (syscall(SYS_mknodat, AT_FDCWD, "/nonexistent/x", S_IFIFO | 0600, 0) != -1 ||
      errno != ENOENT)
    return 7;
  return 0;
}

Test(sandbox_filter, refuse_in_kernel_answers_eperm_by_argument)
{
  struct sbx_policy *p = dflt();
  sbx_policy_set_refuse_in_kernel(p, true);
  cr_expect_eq(untraced(p, probe_in_kernel), 0);
  sbx_policy_free(p);
}

/* --- the tracer ---------------------------------------------------------------- */

struct counted {
  char names[8][32];
  unsigned long n[8];
  int len;
};

static void count_cb(void *arg, const char *name, unsigned long n)
{
  struct counted *c = arg;
  if (c->len < 8) {
    snprintf(c->names[c->len], sizeof(c->names[0]), "%s", name);
    c->n[c->len++] = n;
  }
}

static int probe_traced(void)
{
  struct utsname u;
  char buf[4096];
  if (uname(&u) < 0 || strcmp(u.release, "9.9.9-test") != 0 || strcmp(u.sysname, "Linux") != 0)
    return 1;
  if (syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL) != -1 || errno != EPERM)
    return 2;
  if (syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL) != -1 || errno != EPERM)
    return 3;
  long n = syscall(SYS_syslog, 3, buf, (long)sizeof(buf) - 1);
  if (n <= 0)
    return 4;
  buf[n] = '\0';
  if (!strstr(buf, "Linux version 9.9.9-test") || !strstr(buf, "sandbox: refused mount"))
    return 5;
  if (syscall(SYS_syslog, 3, (void *)8, 100L) != -1 || errno != EFAULT)
    return 6;
  if (syscall(SYS_syslog, 6, NULL, 0L) != -1 || errno != EPERM)   /* console off */
    return 7;
  if (syscall(SYS_uname, (void *)16) != -1 || errno != EFAULT)
    return 8;
  /* a short buffer gets the newest whole lines, like the kernel's ring */
  n = syscall(SYS_syslog, 3, buf, 100L);
  if (n <= 0 || n > 100 || buf[0] != '<' || buf[n - 1] != '\n')
    return 9;
  if (syscall(SYS_syslog, 10, NULL, 0L) < 4096)   /* SIZE_BUFFER */
    return 10;
  long all = syscall(SYS_syslog, 9, NULL, 0L);     /* SIZE_UNREAD: nothing read yet */
  if (all <= 0 || syscall(SYS_syslog, 2, buf, 10L) != 10 ||
      syscall(SYS_syslog, 9, NULL, 0L) != all - 10)
    return 11;
  if (syscall(SYS_syslog, 5, NULL, 0L) != 0 || syscall(SYS_syslog, 3, buf, 100L) != 0)
    return 12;   /* CLEAR: read-all starts after it */
  return 0;
}

Test(sandbox_tracer, emulates_uname_and_syslog_counts_refusals)
{
  char dir[] = "/tmp/sbx-unit-XXXXXX";
  cr_assert(mkdtemp(dir));
  cleanup_free char *kmsg = xasprintf("%s/kmsg", dir);
  struct sbx_policy *p = dflt();
  struct sbx_tracer *t = NULL;
  err_t *e = NULL;
  struct sbx_tracer_opts o = {.kernel = {.release = "9.9.9-test"}, .kmsg_path = kmsg,
                              .tag = "ctr1"};
  cr_assert_eq(sbx_tracer_new(&o, p, &t, &e), 0);
  int go[2];
  cr_assert_eq(pipe(go), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char b;
    close(go[1]);
    if (read(go[0], &b, 1) != 1 || install(p) < 0)
      _exit(100);
    _exit(probe_traced());
  }
  close(go[0]);
  cr_assert_eq(sbx_tracer_seize(t, pid, &e), 0);
  cr_assert_eq(write(go[1], "g", 1), 1);
  close(go[1]);
  int st = 0;
  for (;;) {
    pid_t w = waitpid(-1, &st, __WALL);
    cr_assert_gt(w, 0);
    if (sbx_tracer_handle(t, w, st) == SBX_EV_ROOT_EXIT)
      break;
  }
  cr_assert(WIFEXITED(st), "status %#x", st);
  cr_expect_eq(WEXITSTATUS(st), 0);
  struct counted c = {0};
  cr_expect_eq(sbx_tracer_counts(t, count_cb, &c), 2);
  cr_expect_str_eq(c.names[0], "mount");
  struct counted k = {0};
  cr_assert_eq(sbx_kmsg_counts(kmsg, "ctr1", count_cb, &k, &e), 0);
  cr_expect_eq(k.len, 1);
  cr_expect_str_eq(k.names[0], "mount");
  cr_expect_eq(k.n[0], 2);
  struct counted none = {0};
  cr_assert_eq(sbx_kmsg_counts(kmsg, "other", count_cb, &none, &e), 0);
  cr_expect_eq(none.len, 0);
  sbx_tracer_free(t);
  sbx_policy_free(p);
  unlink(kmsg);
  rmdir(dir);
}

Test(sandbox_kmsg, a_missing_file_counts_nothing)
{
  struct counted c = {0};
  err_t *e = NULL;
  cr_assert_eq(sbx_kmsg_counts("/nonexistent/kmsg", NULL, count_cb, &c, &e), 0);
  cr_expect_eq(c.len, 0);
}

Test(sandbox_prog, cache_returns_the_same_program_and_ignores_a_shared_dir)
{
  char dir[] = "/tmp/sbx-cache-XXXXXX";
  cr_assert(mkdtemp(dir));
  chmod(dir, 0700);
  struct sbx_policy *p = dflt();
  struct sbx_prog a, b, c;
  err_t *e = NULL;
  cr_assert_eq(sbx_prog_build(p, &a, &e), 0);
  cr_assert_eq(sbx_prog_build_cached(p, dir, &b, &e), 0);   /* miss: builds, stores */
  cr_assert_eq(sbx_prog_build_cached(p, dir, &c, &e), 0);   /* hit */
  cr_assert_eq(a.len, c.len);
  cr_expect_eq(memcmp(a.insns, c.insns, a.len * sizeof(*a.insns)), 0);
  /* another table must not get that program */
  sbx_policy_set_refuse_in_kernel(p, true);
  struct sbx_prog d;
  cr_assert_eq(sbx_prog_build_cached(p, dir, &d, &e), 0);
  cr_expect(d.len != a.len || memcmp(a.insns, d.insns, a.len * sizeof(*a.insns)) != 0);
  sbx_prog_free(&d);
  /* a directory others can write is not trusted: nothing is stored there */
  char shared[] = "/tmp/sbx-cache-XXXXXX";
  cr_assert(mkdtemp(shared));
  chmod(shared, 0777);
  cr_assert_eq(sbx_prog_build_cached(p, shared, &d, &e), 0);
  cr_expect_eq(rmdir(shared), 0, "the shared dir got a cache file");
  sbx_prog_free(&a);
  sbx_prog_free(&b);
  sbx_prog_free(&c);
  sbx_prog_free(&d);
  sbx_policy_free(p);
  cleanup_free char *cmd = xasprintf("rm -rf %s", dir);
  cr_expect_eq(system(cmd), 0);
}
