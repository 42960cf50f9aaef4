/* monitor_state_test.c - crispd's side of crisp-monitor without a container: state
 * files, report lines, monitor_state on hand-made state dirs (a live, a finished and a
 * dead monitor), and monitor_start / monitor_exec_sync / monitor_reopen_log against
 * shell scripts standing in for crisp-monitor. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/monitor.h"
#include "runtimes/monitor_int.h"

static char dir[64];

static void setup(void)
{
  snprintf(dir, sizeof(dir), "/tmp/crisp-monstate-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
  err_t *e = NULL;
  rm_rf(dir, &e);
  err_free(&e);
}

TestSuite(monitor_state, .init = setup, .fini = teardown);
TestSuite(monitor_client, .init = setup, .fini = teardown);

static void put(const char *name, const char *text)
{
  cleanup_free char *path = path_join(dir, name);
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(path, text, strlen(text), 0755, &e), 0, "%s", e ? e->msg : "");
}

static bool exists(const char *name)
{
  cleanup_free char *path = path_join(dir, name);
  return access(path, F_OK) == 0;
}

/* Holds monitor.pid's lock the way a live monitor does (flock is per open file, so
 * this process's own monitor_state sees the conflict). */
static int fake_live_monitor(void)
{
  put(MON_PIDFILE, "12345\n");
  cleanup_free char *path = path_join(dir, MON_PIDFILE);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(flock(fd, LOCK_EX), 0);
  return fd;
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(monitor_state, started_and_exit_files_round_trip)
{
  err_t *e = NULL;
  cr_assert_eq(mon_started_write(dir, 4242, 1700000000123456789LL, &e), 0);
  pid_t pid;
  int64_t t;
  cr_assert_eq(mon_started_read(dir, &pid, &t, &e), 0);
  cr_assert_eq(pid, 4242);
  cr_assert_eq(t, 1700000000123456789LL);

  struct ctr_exit x = {.exit_code = 137, .signal = 9, .finished_at_ns = 1700000001000000000LL};
  mon_copy_field(x.reason, sizeof(x.reason), "OOMKilled");
  mon_copy_field(x.message, sizeof(x.message), "a \"quoted\"\nmessage");
  cr_assert_eq(mon_exit_write(dir, &x, &e), 0);
  struct ctr_exit y;
  cr_assert_eq(mon_exit_read(dir, &y, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(y.exit_code, 137);
  cr_assert_eq(y.signal, 9);
  cr_assert_eq(y.finished_at_ns, x.finished_at_ns);
  cr_assert_str_eq(y.reason, "OOMKilled");
  cr_assert_str_eq(y.message, "a \"quoted\"\nmessage");
  cr_assert(!y.cleaned);
  x.cleaned = true;   /* the monitor took the container's mounts and cgroup down */
  cr_assert_eq(mon_exit_write(dir, &x, &e), 0);
  cr_assert_eq(mon_exit_read(dir, &y, &e), 0, "%s", e ? e->msg : "");
  cr_assert(y.cleaned);
}

Test(monitor_state, missing_file_is_not_found_and_garbage_is_internal)
{
  err_t *e = NULL;
  struct ctr_exit x;
  cr_assert_eq(mon_exit_read(dir, &x, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
  put(MON_EXIT, "{\"exit_code\": \"three\"}");
  cr_assert_eq(mon_exit_read(dir, &x, &e), -1);
  cr_assert_eq(e->code, ERR_INTERNAL);
  cr_assert(strstr(e->msg, "exit_code") != NULL, "%s", e->msg);
  err_free(&e);
  put(MON_STARTED, "{not json");
  pid_t pid;
  int64_t t;
  cr_assert_eq(mon_started_read(dir, &pid, &t, &e), -1);
  cr_assert_eq(e->code, ERR_INTERNAL);
  err_free(&e);
}

Test(monitor_state, wait_status_becomes_kubelet_exit_code_and_reason)
{
  struct ctr_exit x;
  mon_exit_from_status(0, false, 1, &x);
  cr_assert_eq(x.exit_code, 0);
  cr_assert_str_eq(x.reason, "Completed");
  mon_exit_from_status(3 << 8, false, 1, &x);
  cr_assert_eq(x.exit_code, 3);
  cr_assert_eq(x.signal, 0);
  cr_assert_str_eq(x.reason, "Error");
  mon_exit_from_status(SIGKILL, false, 1, &x);   /* WIFSIGNALED, WTERMSIG 9 */
  cr_assert_eq(x.exit_code, 137);
  cr_assert_eq(x.signal, SIGKILL);
  cr_assert_str_eq(x.reason, "Error");
  mon_exit_from_status(SIGKILL, true, 1, &x);
  cr_assert_str_eq(x.reason, "OOMKilled");
  cr_assert_eq(x.finished_at_ns, 1);
}

Test(monitor_state, report_lines_round_trip)
{
  int p[2];
  cr_assert_eq(pipe(p), 0);
  err_t *e = NULL;
  err_set(&e, ERR_INVALID, 0, "executable \"nope\" not found\nin rootfs");
  mon_report(p[1], 0, e);
  err_free(&e);
  mon_report(p[1], 77, NULL);
  close(p[1]);
  char line[MON_REPORT_MAX];
  pid_t pid = 0;
  cr_assert_eq(mon_read_line(p[0], 1000, line, sizeof(line), &e), 0);
  cr_assert_str_eq(line, "err invalid argument executable \"nope\" not found in rootfs");
  cr_assert_eq(mon_report_parse(line, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert_str_eq(e->msg, "executable \"nope\" not found in rootfs");
  err_free(&e);
  close(p[0]);
  cr_assert_eq(mon_report_parse("ok 77", &pid, &e), 0);
  cr_assert_eq(pid, 77);
  const char *bad[] = {"ok", "ok x", "ok -1", "ok 12x", "hello", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(mon_report_parse(bad[i], &pid, &e), -1, "%s", bad[i]);
    cr_assert_eq(e->code, ERR_INTERNAL);
    err_free(&e);
  }
  cr_assert_eq(mon_report_parse("err who knows", &pid, &e), -1);
  cr_assert_eq(e->code, ERR_INTERNAL, "an unknown code name is internal");
  err_free(&e);
}

Test(monitor_state, empty_dir_is_created_not_running)
{
  struct ctr_runtime_state s;
  err_t *e = NULL;
  cr_assert_eq(monitor_state(dir, &s, &e), 0);
  cr_assert(!s.started && !s.exited && !s.monitor_alive);
}

Test(monitor_state, live_monitor_with_started_container_is_running)
{
  int lock = fake_live_monitor();
  cr_assert_eq(mon_started_write(dir, 999, 5, NULL), 0);
  struct ctr_runtime_state s;
  err_t *e = NULL;
  cr_assert_eq(monitor_state(dir, &s, &e), 0);
  cr_assert(s.started && s.monitor_alive && !s.exited);
  cr_assert_eq(s.pid, 999);
  cr_assert_eq(s.started_at_ns, 5);
  close(lock);
}

Test(monitor_state, finished_monitor_reports_its_exit)
{
  put(MON_PIDFILE, "12345\n");
  cr_assert_eq(mon_started_write(dir, 999, 5, NULL), 0);
  put(MON_EXIT, "{\"exit_code\":3,\"signal\":0,\"finished_at\":9,\"reason\":\"Error\",\"message\":\"\"}");
  struct ctr_runtime_state s;
  err_t *e = NULL;
  cr_assert_eq(monitor_state(dir, &s, &e), 0);
  cr_assert(s.started && s.exited && !s.monitor_alive);
  cr_assert_eq(s.exit.exit_code, 3);
  cr_assert_eq(s.exit.finished_at_ns, 9);
  cr_assert_str_eq(s.exit.reason, "Error");
}

Test(monitor_state, dead_monitor_without_exit_file_is_exited_with_error_once)
{
  put(MON_PIDFILE, "12345\n");   /* nobody holds its lock: the monitor was killed */
  cr_assert_eq(mon_started_write(dir, 999, 5, NULL), 0);
  struct ctr_runtime_state s;
  err_t *e = NULL;
  cr_assert_eq(monitor_state(dir, &s, &e), 0);
  cr_assert(s.started && s.exited && !s.monitor_alive);
  cr_assert_str_eq(s.exit.reason, "Error");
  cr_assert_str_eq(s.exit.message, "crisp-monitor died");
  cr_assert_eq(s.exit.exit_code, 255);
  cr_assert(!s.exit.cleaned, "nobody cleaned up after it");
  cr_assert(exists(MON_EXIT), "the verdict is written down");
  struct ctr_runtime_state again;
  cr_assert_eq(monitor_state(dir, &again, &e), 0);
  cr_assert_eq(again.exit.finished_at_ns, s.exit.finished_at_ns, "finished_at does not move");
}

Test(monitor_state, corrupt_exit_file_is_an_error_naming_it)
{
  put(MON_EXIT, "garbage");
  struct ctr_runtime_state s;
  err_t *e = NULL;
  cr_assert_eq(monitor_state(dir, &s, &e), -1);
  cr_assert_eq(e->code, ERR_INTERNAL);
  cr_assert(strstr(e->msg, MON_EXIT) != NULL, "%s", e->msg);
  err_free(&e);
}

/* --- the client against scripts standing in for crisp-monitor ------------------ */

static char *script(const char *name, const char *body)
{
  char *path = path_join(dir, name);
  cleanup_free char *text = xasprintf("#!/bin/sh\n%s\n", body);
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(path, text, strlen(text), 0755, &e), 0);
  return path;
}

Test(monitor_client, start_returns_the_reported_pid)
{
  cleanup_free char *h = script("h", "[ \"$1\" = start ] && [ -d \"$2\" ] || exit 9\necho 'ok 4242' >&3");
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(monitor_start(h, dir, &pid, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(pid, 4242);
}

Test(monitor_client, start_returns_the_reported_error)
{
  cleanup_free char *h =
      script("h", "echo 'err invalid argument executable \"nope\" not found' >&3; exit 1");
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(monitor_start(h, dir, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "executable \"nope\" not found") != NULL, "%s", e->msg);
  err_free(&e);
}

Test(monitor_client, start_of_a_monitor_that_dies_silently_says_how_it_ended)
{
  cleanup_free char *h = script("h", "exit 7");
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(monitor_start(h, dir, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_INTERNAL);
  cr_assert(strstr(e->msg, "exited with status 7") != NULL, "%s", e->msg);
  err_free(&e);
}

Test(monitor_client, start_with_a_missing_helper_is_not_found)
{
  pid_t pid = 0;
  err_t *e = NULL;
  cr_assert_eq(monitor_start("/nonexistent/crisp-monitor", dir, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  err_free(&e);
}

Test(monitor_client, start_gives_up_after_its_timeout)
{
  cleanup_free char *h = script("h", "exec sleep 30");
  pid_t pid = 0;
  err_t *e = NULL;
  int64_t t0 = mono_ms();
  cr_assert_eq(monitor_start_timeout(h, dir, 300, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_DEADLINE, "%s", e->msg);
  cr_assert_lt(mono_ms() - t0, 5000);
  err_free(&e);
}

Test(monitor_client, exec_sync_captures_output_and_exit_code)
{
  cleanup_free char *h = script(
      "h", "[ \"$1\" = exec ] && [ \"$3\" = -- ] || exit 9\necho \"ok $$\" >&3; exec 3>&-\n"
           "shift 3; echo \"out $*\"; echo err-line >&2; exit 3");
  char *argv[] = {"ls", "-l", NULL};
  struct exec_spec x = {.argv = argv, .argc = 2};
  struct exec_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(monitor_exec_sync(h, dir, &x, 10000, 1024, &r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(r.exit_code, 3);
  cr_assert(!r.timed_out);
  cr_assert_str_eq(buf_str(&r.out), "out ls -l\n");
  cr_assert_str_eq(buf_str(&r.err), "err-line\n");
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_client, exec_sync_caps_output_and_keeps_reading)
{
  cleanup_free char *h =
      script("h", "echo \"ok $$\" >&3; exec 3>&-\nhead -c 300000 /dev/zero; echo done >&2");
  char *argv[] = {"x", NULL};
  struct exec_spec x = {.argv = argv, .argc = 1};
  struct exec_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(monitor_exec_sync(h, dir, &x, 10000, 1000, &r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(r.exit_code, 0);
  cr_assert_eq(r.out.len, 1000);
  cr_assert_str_eq(buf_str(&r.err), "done\n");
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_client, exec_sync_timeout_stops_the_helper_and_its_process_group)
{
  cleanup_free char *h =
      script("h", "echo \"ok $$\" >&3; exec 3>&-\necho started; sleep 30; echo never");
  char *argv[] = {"x", NULL};
  struct exec_spec x = {.argv = argv, .argc = 1};
  struct exec_result r = {0};
  err_t *e = NULL;
  int64_t t0 = mono_ms();
  cr_assert_eq(monitor_exec_sync(h, dir, &x, 300, 1024, &r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_lt(mono_ms() - t0, 1500, "the sleep in the group was killed too: no drain wait");
  cr_assert(r.timed_out);
  /* the stand-in dies of the SIGTERM itself; the real helper kills the command and
   * exits with its status (monitor_run tests) */
  cr_assert_eq(r.exit_code, 128 + SIGTERM);
  cr_assert_str_eq(buf_str(&r.out), "started\n");
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_client, exec_sync_does_not_wait_for_a_background_holder_of_its_output)
{
  cleanup_free char *h =
      script("h", "echo \"ok $$\" >&3; exec 3>&-\n(sleep 4 &) ; echo done; exit 0");
  char *argv[] = {"x", NULL};
  struct exec_spec x = {.argv = argv, .argc = 1};
  struct exec_result r = {0};
  err_t *e = NULL;
  int64_t t0 = mono_ms();
  cr_assert_eq(monitor_exec_sync(h, dir, &x, 0, 1024, &r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_lt(mono_ms() - t0, 3500);
  cr_assert_eq(r.exit_code, 0);
  cr_assert_str_eq(buf_str(&r.out), "done\n");
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_client, exec_sync_returns_the_reported_error)
{
  cleanup_free char *h =
      script("h", "echo 'err failed precondition container is not running' >&3; exit 255");
  char *argv[] = {"x", NULL};
  struct exec_spec x = {.argv = argv, .argc = 1};
  struct exec_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(monitor_exec_sync(h, dir, &x, 1000, 1024, &r, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION);
  cr_assert(strstr(e->msg, "container is not running") != NULL, "%s", e->msg);
  err_free(&e);
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_client, exec_sync_rejects_an_empty_command)
{
  char *argv[] = {NULL};
  struct exec_spec x = {.argv = argv};
  struct exec_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(monitor_exec_sync("/bin/true", dir, &x, 1000, 1024, &r, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
}

Test(monitor_client, reopen_without_a_monitor_is_a_precondition_error)
{
  err_t *e = NULL;
  cr_assert_eq(monitor_reopen_log(dir, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION, "%s", e->msg);
  err_free(&e);
}

/* A stand-in monitor: listens on ctl.sock (bound here, so the client cannot race it) and
 * serves one connection from a child with a canned answer, passing back the request. */
struct fake_ctl {
  pid_t pid;
  int got;   /* read end: the request the child received */
};

static struct fake_ctl fake_ctl_start(const char *state, const char *answer)
{
  struct sockaddr_un sa;
  int dirfd = -1;
  err_t *e = NULL;
  cr_assert_eq(mon_sock_addr(state, MON_CTL, &sa, &dirfd, &e), 0, "%s", e ? e->msg : "");
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
  cr_assert_eq(listen(ls, 1), 0);
  if (dirfd >= 0)
    close(dirfd);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) {
    int c = accept(ls, NULL, NULL);
    char req[64];
    ssize_t n = read(c, req, sizeof(req));
    ssize_t w = write(p[1], req, n > 0 ? (size_t)n : 0);
    w = write(c, answer, strlen(answer));
    (void)w;
    _exit(0);
  }
  close(ls);
  close(p[1]);
  return (struct fake_ctl){child, p[0]};
}

static void fake_ctl_end(struct fake_ctl f, char *got, size_t cap)
{
  cr_assert_eq(waitpid(f.pid, NULL, 0), f.pid);
  ssize_t n = read(f.got, got, cap - 1);
  got[n > 0 ? n : 0] = '\0';
  close(f.got);
}

/* deeper than sun_path (108 bytes) allows: both sides go through /proc/self/fd */
static char *long_state_dir(void)
{
  char *deep = xasprintf("%s/%0120d", dir, 0);
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(deep, 0700, &e), 0);
  struct sockaddr_un sa;
  int dirfd = -1;
  cr_assert_eq(mon_sock_addr(deep, MON_CTL, &sa, &dirfd, &e), 0);
  cr_assert_geq(dirfd, 0, "a long state dir takes the /proc/self/fd path");
  close(dirfd);
  return deep;
}

Test(monitor_client, reopen_sends_its_request_and_reads_ok)
{
  cleanup_free char *deep = long_state_dir();
  struct fake_ctl f = fake_ctl_start(deep, "ok\n");
  err_t *e = NULL;
  cr_assert_eq(monitor_reopen_log(deep, &e), 0, "%s", e ? e->msg : "");
  char got[64];
  fake_ctl_end(f, got, sizeof(got));
  cr_assert_str_eq(got, "reopen\n");
}

Test(monitor_client, reopen_passes_on_the_monitors_error)
{
  struct fake_ctl f =
      fake_ctl_start(dir, "err permission denied open container log /x: Permission denied\n");
  err_t *e = NULL;
  cr_assert_eq(monitor_reopen_log(dir, &e), -1);
  cr_assert_eq(e->code, ERR_PERMISSION, "%s", e->msg);
  cr_assert(strstr(e->msg, "open container log /x") != NULL, "%s", e->msg);
  err_free(&e);
  char got[64];
  fake_ctl_end(f, got, sizeof(got));
}
