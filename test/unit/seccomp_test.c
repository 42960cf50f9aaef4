/* seccomp: the RuntimeDefault filter's behaviour (loaded in a forked child) and the
 * Localhost profile reader. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/ns_int.h"
#include "runtimes/seccomp_int.h"

/* Runs probe() under f in a child; returns the child's exit code. */
static int under_filter(struct seccomp_filter *f, int (*probe)(void))
{
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    err_t *e = NULL;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_install(f, &e) < 0)
      _exit(100);
    _exit(probe());
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st), "the probe was killed (signal %d)", WTERMSIG(st));
  return WEXITSTATUS(st);
}

/* Each check is a bit: 0 = as expected. */
static int probe_default(void)
{
  int bad = 0;
  if (syscall(SYS_personality, 0x40000UL) != -1 || errno != EPERM)
    bad |= 1;
  if (syscall(SYS_personality, 0xffffffffUL) == -1)
    bad |= 2;
  if (syscall(SYS_unshare, CLONE_NEWNS) != -1 || errno != EPERM)
    bad |= 4;
  if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
    bad |= 8;
  if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != EPERM)
    bad |= 16;
  if (syscall(SYS_bpf, 0, NULL, 0) != -1 || errno != EPERM)
    bad |= 32;
  pid_t child = fork();   /* plain clone without namespace flags stays allowed */
  if (child == 0)
    _exit(0);
  if (child < 0 || waitpid(child, NULL, 0) != child)
    bad |= 64;
  if (syscall(SYS_unshare, CLONE_FILES) != 0)
    bad |= 128;
  return bad;
}

Test(seccomp, runtime_default_refuses_the_dangerous_and_allows_the_ordinary)
{
  struct seccomp_filter *f = NULL;
  err_t *e = NULL;
  cr_assert_eq(seccomp_runtime_default(0, &f, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(under_filter(f, probe_default), 0, "failed checks: see probe_default bits");
  seccomp_filter_free(f);
}

static int probe_mount_gate(void)
{
  /* with CAP_SYS_ADMIN held by the container, unshare is the kernel's business */
  return syscall(SYS_unshare, CLONE_NEWUTS) == -1 && errno == EPERM ? 1 : 0;
}

Test(seccomp, runtime_default_opens_namespace_calls_to_cap_sys_admin)
{
  struct seccomp_filter *f = NULL;
  err_t *e = NULL;
  cr_assert_eq(seccomp_runtime_default(1ull << CAP_SYS_ADMIN, &f, &e), 0);
  if (geteuid() != 0)
    cr_skip_test("needs root for the unshare itself");
  cr_assert_eq(under_filter(f, probe_mount_gate), 0);
  seccomp_filter_free(f);
}

static int load_profile(const char *json, struct seccomp_filter **f, err_t **e)
{
  cleanup_free char *path = xasprintf("/tmp/crisp-seccomp-%d.json", (int)getpid());
  cr_assert_eq(file_write_atomic(path, json, strlen(json), 0644, e), 0);
  int rc = seccomp_profile_load(path, 0, f, e);
  unlink(path);
  return rc;
}

static int probe_profile(void)
{
  int bad = 0;
  if (syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent/x", 0) != -1 || errno != 38)
    bad |= 1;
  if (syscall(SYS_personality, 8UL) == -1)
    bad |= 2;
  if (syscall(SYS_personality, 0x40000UL) != -1 || errno != EPERM)
    bad |= 4;
  if (syscall(SYS_setns, -1, 0) != -1 || errno != EBADF)   /* includes.caps: not held */
    bad |= 8;
  return bad;
}

Test(seccomp, docker_style_profile_with_arch_map_includes_and_or_args_loads)
{
  static const char json[] =
    "{\"defaultAction\": \"SCMP_ACT_ALLOW\","
    " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\","
    "               \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]}],"
    " \"syscalls\": ["
    "  {\"names\": [\"mkdir\", \"mkdirat\", \"no_such_syscall\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38},"
    "  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
    "     {\"index\": 0, \"value\": 262144, \"op\": \"SCMP_CMP_EQ\"},"
    "     {\"index\": 0, \"value\": 131072, \"op\": \"SCMP_CMP_EQ\"}]},"
    "  {\"names\": [\"setns\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
    "   \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}}]}";
  struct seccomp_filter *f = NULL;
  err_t *e = NULL;
  cr_assert_eq(load_profile(json, &f, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(under_filter(f, probe_profile), 0);
  seccomp_filter_free(f);
}

static void expect_refused(const char *json, enum err_code code, const char *needle)
{
  struct seccomp_filter *f = NULL;
  err_t *e = NULL;
  cr_assert_eq(load_profile(json, &f, &e), -1, "%s accepted", json);
  cr_assert_eq(e->code, code, "%s", e->msg);
  cr_assert(strstr(e->msg, needle), "%s does not say %s", e->msg, needle);
  err_free(&e);
}

Test(seccomp, bad_profiles_are_refused_with_the_reason)
{
  expect_refused("{\"defaultAction\": \"SCMP_ACT_MAYBE\"}", ERR_INVALID, "SCMP_ACT_MAYBE");
  expect_refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
                 " \"action\": \"SCMP_ACT_NOTIFY\"}]}", ERR_UNIMPLEMENTED, "syscalls[0]");
  expect_refused("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
                 " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 7, \"op\": \"SCMP_CMP_EQ\"}]}]}",
                 ERR_INVALID, "index");
  expect_refused("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_Z80\"]}",
                 ERR_INVALID, "architectures[0]");
  expect_refused("not json", ERR_INVALID, "invalid JSON");
  struct seccomp_filter *f = NULL;
  err_t *e = NULL;
  cr_assert_eq(seccomp_profile_load("/nonexistent/profile.json", 0, &f, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "/nonexistent/profile.json"), "%s", e->msg);
  err_free(&e);
}
