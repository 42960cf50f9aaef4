/* The executor's cgroups with real containers: limits land in the right files on this
 * host's layout (v1 or v2), usage is reported, OOM kills are seen, exec joins. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "ns_fixture.h"
#include "runtimes/cgroup.h"

TestSuite(nscg, .init = nsf_setup, .fini = nsf_teardown, .timeout = 60);

/* The content of a file in the container's cgroup for controller ctrl (v1 or v2 name). */
static char *cg_file(const char *ctrl, const char *v1, const char *v2)
{
  cleanup_free char *dir = NULL;
  bool is_v2 = false;
  err_t *e = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, ctrl, &dir, &is_v2, &e), 0, "%s", e ? e->msg : "");
  char *text = NULL;
  cr_assert_eq(cg_read(dir, is_v2 ? v2 : v1, &text, &e), 0, "%s", e ? e->msg : "");
  text[strcspn(text, "\n")] = '\0';
  return text;
}

static void start_ok(const char *cmd)
{
  err_t *e = NULL;
  nsf_cmd(cmd);
  cr_assert_eq(nsf_start(&e), 0, "%s", e ? e->msg : "");
}

Test(nscg, memory_limit_is_written_and_usage_reported)
{
  nsf.s->res.memory_limit = 64 << 20;
  start_ok("echo up; sleep 30");
  char c;
  cr_assert_eq(read(nsf.out, &c, 1), 1);
  cleanup_free char *lim = cg_file("memory", "memory.limit_in_bytes", "memory.max");
  cr_assert_str_eq(lim, "67108864");
  struct ctr_usage u;
  err_t *e = NULL;
  cr_assert_eq(cgroup_usage(nsf.s, &u, &e), 0, "%s", e ? e->msg : "");
  cr_assert_gt(u.memory_usage, 0);
  cr_assert_geq(u.pids, 1);
  cr_assert_not(u.oom_killed);
}

Test(nscg, container_over_its_memory_limit_is_oom_killed)
{
  nsf.s->res.memory_limit = 16 << 20;
  nsf.s->res.memory_swap_limit = 16 << 20;
  err_t *e = NULL;
  nsf_cmd("dd if=/dev/zero of=/dev/null bs=64M count=1");
  int rc = nsf_run(&e);
  cr_assert_eq(rc, 128 + SIGKILL, "rc %d: %s", rc, nsf.output);
  struct ctr_usage u;
  cr_assert_eq(cgroup_usage(nsf.s, &u, &e), 0, "%s", e ? e->msg : "");
  cr_assert(u.oom_killed);
}

Test(nscg, pids_limit_stops_a_fork_bomb)
{
  nsf.s->res.pids_limit = 10;
  err_t *e = NULL;
  nsf_cmd("for i in $(seq 20); do sleep 5 & done; echo all-started");
  int rc = nsf_run(&e);
  cr_assert_neq(rc, 0, "%s", nsf.output);
  cr_assert(strstr(nsf.output, "can't fork"), "%s", nsf.output);
  cr_assert_null(strstr(nsf.output, "all-started"), "%s", nsf.output);
  struct ctr_usage u;
  cr_assert_eq(cgroup_usage(nsf.s, &u, &e), 0, "%s", e ? e->msg : "");
  cr_assert_leq(u.pids, 10, "pids %" PRIu64, u.pids);
  cleanup_free char *max = cg_file("pids", "pids.max", "pids.max");
  cr_assert_str_eq(max, "10");
  cleanup_free char *dir = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, "pids", &dir, NULL, &e), 0);
  uint64_t events = 0;
  cr_assert_eq(cg_read_key(dir, "pids.events", "max", &events, &e), 0);
  cr_assert_gt(events, 0, "some forks were refused");
}

Test(nscg, cpu_quota_period_and_shares_land_in_the_files)
{
  nsf.s->res.cpu_quota = 50000;
  nsf.s->res.cpu_period = 100000;
  nsf.s->res.cpu_shares = 512;
  start_ok("sleep 30");
  bool v2 = false;
  cleanup_free char *dir = NULL;
  err_t *e = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, "cpu", &dir, &v2, &e), 0);
  if (v2) {
    cleanup_free char *max = cg_file("cpu", "", "cpu.max");
    cleanup_free char *w = cg_file("cpu", "", "cpu.weight");
    cr_assert_str_eq(max, "50000 100000");
    cr_assert_str_eq(w, "20");
  } else {
    cleanup_free char *q = cg_file("cpu", "cpu.cfs_quota_us", "");
    cleanup_free char *p = cg_file("cpu", "cpu.cfs_period_us", "");
    cleanup_free char *sh = cg_file("cpu", "cpu.shares", "");
    cr_assert_str_eq(q, "50000");
    cr_assert_str_eq(p, "100000");
    cr_assert_str_eq(sh, "512");
  }
}

Test(nscg, update_changes_limits_of_a_running_container)
{
  nsf.s->res.memory_limit = 64 << 20;
  start_ok("sleep 30");
  struct resources r = {0};
  r.memory_limit = 32 << 20;
  r.pids_limit = 50;
  err_t *e = NULL;
  cr_assert_eq(cgroup_update(nsf.s, &r, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *lim = cg_file("memory", "memory.limit_in_bytes", "memory.max");
  cleanup_free char *pids = cg_file("pids", "pids.max", "pids.max");
  cr_assert_str_eq(lim, "33554432");
  cr_assert_str_eq(pids, "50");
}

Test(nscg, kill_all_reaches_every_process_in_the_container)
{
  start_ok("sleep 100 & sleep 100 & echo up; wait");
  char c;
  cr_assert_eq(read(nsf.out, &c, 1), 1);
  err_t *e = NULL;
  struct ctr_usage u;
  cr_assert_eq(cgroup_usage(nsf.s, &u, &e), 0);
  cr_assert_geq(u.pids, 3);
  cr_assert_eq(cgroup_kill_all(nsf.s, SIGKILL, &e), 0, "%s", e ? e->msg : "");
  int st;
  cr_assert_eq(waitpid(nsf.pid, &st, 0), nsf.pid);
  nsf.pid = 0;
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  for (int i = 0; i < 100 && cgroup_usage(nsf.s, &u, &e) == 0 && u.pids; i++)
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  cr_assert_eq(u.pids, 0);
}

Test(nscg, cleanup_removes_the_cgroup_and_unmounts_the_rootfs)
{
  start_ok("true");
  nsf_wait();
  cr_assert(nsf_mounted_below(nsf.s->rootfs), "the rootfs is mounted on the host while it runs");
  err_t *e = NULL;
  cleanup_free char *dir = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, "memory", &dir, NULL, &e), 0);
  cr_assert_eq(access(dir, F_OK), 0);
  cr_assert_eq(ns_cleanup(nsf.s, &e), 0, "%s", e ? e->msg : "");
  cr_assert_not(nsf_mounted_below(nsf.s->rootfs));
  cr_assert_eq(access(dir, F_OK), -1);
  cr_assert_eq(ns_cleanup(nsf.s, &e), 0, "idempotent: %s", e ? e->msg : "");
}

static char *ns_link(pid_t pid, const char *ns)
{
  cleanup_free char *p = xasprintf("/proc/%d/ns/%s", (int)pid, ns);
  char buf[128];
  ssize_t n = readlink(p, buf, sizeof(buf) - 1);
  cr_assert_gt(n, 0);
  buf[n] = '\0';
  return xstrdup(buf);
}

Test(nscg, exec_joins_the_containers_namespaces_cgroup_and_rootfs)
{
  start_ok("echo marker > /tmp/marker; echo up; sleep 30");
  char c;
  cr_assert_eq(read(nsf.out, &c, 1), 1);
  struct exec_spec x = {0};
  x.argv = nsf_strv(&x.argc, "/bin/sh", "-c",
                    "hostname; cat /tmp/marker; readlink /proc/self/ns/pid; echo $$; "
                    "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup | grep pids",
                    NULL);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  struct ctr_stdio io = {-1, p[1], p[1]};
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(ns_exec(nsf.s, nsf.pid, &x, &io, &pid, &e), 0, "%s", e ? e->msg : "");
  close(p[1]);
  char out[4096];
  size_t len = 0;
  ssize_t n;
  while ((n = read(p[0], out + len, sizeof(out) - 1 - len)) > 0)
    len += (size_t)n;
  out[len] = '\0';
  close(p[0]);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
  cleanup_free char *want_ns = ns_link(nsf.pid, "pid");
  cleanup_free char *want = xasprintf("crisp-box\nmarker\n%s\n", want_ns);
  cr_assert(strncmp(out, want, strlen(want)) == 0, "got:\n%s\nwant prefix:\n%s", out, want);
  cr_assert(strstr(out, "\nsleep 30 \n"), "pid 1 is the container's init: %s", out);
  cr_assert(strstr(out, nsf.s->cgroup_name), "same cgroup: %s", out);
  cr_assert_str_neq(strchr(strchr(strchr(out, '\n') + 1, '\n') + 1, '\n') + 1, "1\n");
  for (size_t i = 0; i < x.argc; i++)
    free(x.argv[i]);
  free(x.argv);
}

Test(nscg, exec_of_a_missing_program_is_invalid)
{
  start_ok("sleep 30");
  struct exec_spec x = {0};
  x.argv = nsf_strv(&x.argc, "not-there", NULL);
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(ns_exec(nsf.s, nsf.pid, &x, NULL, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "not-there"), "%s", e->msg);
  err_free(&e);
  free(x.argv[0]);
  free(x.argv);
}

/* Every line of /proc/<pid>/cgroup (read from the host: full paths) names the container's
 * cgroup: the process is in it in every hierarchy, v1 and v2. */
static void assert_in_every_hierarchy(pid_t pid)
{
  cleanup_free char *path = xasprintf("/proc/%d/cgroup", (int)pid);
  cleanup_free char *text = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(path, 1 << 16, &text, NULL, &e), 0, "%s", e ? e->msg : "");
  int lines = 0;
  for (char *line = text; line && *line; lines++) {
    char *end = strchr(line, '\n');
    if (end)
      *end = '\0';
    const char *p = strrchr(line, '/');
    cr_assert(p && strcmp(p + 1, nsf.s->cgroup_name) == 0, "pid %d: %s", (int)pid, line);
    line = end ? end + 1 : NULL;
  }
  cr_assert_gt(lines, 0);
}

/* crisp joins without cgroup.procs (see cgroup_join_open): the container's init writes "0"
 * to each v1 "tasks" file and is cloned into the v2 cgroup; so is an exec'd process. */
Test(nscg, start_and_exec_join_every_hierarchy)
{
  start_ok("echo up; sleep 30");
  char c;
  cr_assert_eq(read(nsf.out, &c, 1), 1);
  assert_in_every_hierarchy(nsf.pid);
  struct exec_spec x = {0};
  x.argv = nsf_strv(&x.argc, "/bin/sh", "-c", "echo in; sleep 30", NULL);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  struct ctr_stdio io = {-1, p[1], p[1]};
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(ns_exec(nsf.s, nsf.pid, &x, &io, &pid, &e), 0, "%s", e ? e->msg : "");
  close(p[1]);
  cr_assert_eq(read(p[0], &c, 1), 1);
  close(p[0]);
  assert_in_every_hierarchy(pid);
  kill(pid, SIGKILL);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  for (size_t i = 0; i < x.argc; i++)
    free(x.argv[i]);
  free(x.argv);
}
