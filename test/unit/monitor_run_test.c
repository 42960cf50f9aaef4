/* monitor_run_test.c - the real crisp-monitor running real containers through the
 * namespaces executor, driven the way crispd drives it: spec.json written with
 * spec_write, then monitor_start / monitor_state / monitor_reopen_log /
 * monitor_exec_sync. Needs root, the built crisp-monitor (next to this binary, or
 * $CRISP_MONITOR) and a static /bin/busybox (Debian busybox-static); skipped otherwise.
 * Each test cleans up its container, mounts, cgroup and directories. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/crilog.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"
#include "runtimes/monitor_int.h"

static struct {
  const char *skip;          /* why this machine cannot run these tests */
  char root[64];             /* everything below is in here */
  char *state, *layer, *log, *monitor;
  struct ctr_spec *spec;
} fx;

static const char *const applets[] = {"sh", "echo", "sleep", "cat", "head", "tr", "ps",
                                      "printf", "true", "ls", "wc"};

static void fx_layer(void)
{
  cleanup_free char *bin = path_join(fx.layer, "bin");
  cleanup_free char *bb = path_join(bin, "busybox");
  cleanup_free char *data = NULL;
  size_t len = 0;
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(bin, 0755, &e), 0);
  cr_assert_eq(file_read_all("/bin/busybox", 8 << 20, &data, &len, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(file_write_atomic(bb, data, len, 0755, &e), 0);
  for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
    cleanup_free char *link = path_join(bin, applets[i]);
    cr_assert_eq(symlink("busybox", link), 0);
  }
  cleanup_free char *marker = path_join(fx.layer, "marker");
  cr_assert_eq(file_write_atomic(marker, "from-the-image\n", 15, 0644, &e), 0);
}

static const char *why_skip(void)
{
  if (geteuid() != 0)
    return "needs root (namespaces, mounts, cgroups)";
  if (access(fx.monitor, X_OK) != 0)
    return "crisp-monitor is not built next to the tests (make $(B)/bin/crisp-monitor)";
  cleanup_free char *head = NULL;
  err_t *e = NULL;
  if (file_read_all("/bin/busybox", 8 << 20, &head, NULL, &e) < 0 || memcmp(head, "\177ELF", 4)) {
    err_free(&e);
    return "needs a static /bin/busybox (apt-get install busybox-static)";
  }
  return NULL;
}

static void fx_init(void)
{
  memset(&fx, 0, sizeof(fx));
  const char *env = getenv("CRISP_MONITOR");
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  cr_assert_gt(n, 0);
  self[n] = '\0';
  *strrchr(self, '/') = '\0';
  fx.monitor = env ? xstrdup(env) : path_join(self, "crisp-monitor");
  if ((fx.skip = why_skip()))
    return;
  snprintf(fx.root, sizeof(fx.root), "/tmp/crisp-monrun-XXXXXX");
  cr_assert_not_null(mkdtemp(fx.root));
  fx.state = path_join(fx.root, "state");
  fx.layer = path_join(fx.root, "layer");
  fx.log = path_join(fx.root, "logs/ns_pod_uid/ctr/0.log");   /* directories made by the monitor */
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(fx.state, 0700, &e), 0);
  fx_layer();
}

/* Whatever a test left running is killed, and the executor's pieces undone (a live
 * monitor does that itself; after a killed one, ns_cleanup here is all there is). */
static void fx_fini(void)
{
  err_t *e = NULL;
  if (fx.spec) {
    /* by cgroup, never by a pid that may have been reused since */
    cgroup_kill_all(fx.spec, SIGKILL, &e);
    err_free(&e);
    for (int i = 0; i < 500; i++) {   /* a live monitor cleans up, then writes exit.json */
      bool held = false, exists = false;
      if (mon_lock_held(fx.state, &held, &exists, &e) < 0 || !held)
        break;
      usleep(10000);
    }
    err_free(&e);
    ns_cleanup(fx.spec, &e);   /* idempotent: after a dead monitor it is the only cleanup */
    err_free(&e);
    spec_free(fx.spec);
  }
  /* the monitor's own diagnostics: under ASan/UBSan a report lands here, not in a test */
  cleanup_free char *mlog = fx.state ? path_join(fx.state, MON_LOG) : NULL;
  cleanup_free char *diag = NULL;
  if (mlog && file_read_all(mlog, 1 << 20, &diag, NULL, &e) == 0)
    cr_expect(!strstr(diag, "Sanitizer") && !strstr(diag, "runtime error"), "monitor.log: %s", diag);
  err_free(&e);
  if (fx.root[0])
    cr_expect_eq(rm_rf(fx.root, &e), 0, "%s", e ? e->msg : "");
  err_free(&e);
  free(fx.state);
  free(fx.layer);
  free(fx.log);
  free(fx.monitor);
}

TestSuite(monitor_run, .init = fx_init, .fini = fx_fini, .timeout = 60);

/* First thing in a test: a skip ends the test's process without running .fini, so
 * nothing may have been started yet. */
#define REQUIRE()                \
  do {                           \
    if (fx.skip)                 \
      cr_skip_test("%s", fx.skip); \
  } while (0)

static char **strv(const char *const *v, size_t *n)
{
  size_t k = 0;
  while (v[k])
    k++;
  char **out = xcalloc(k + 1, sizeof(char *));
  for (size_t i = 0; i < k; i++)
    out[i] = xstrdup(v[i]);
  if (n)
    *n = k;
  return out;
}

/* A minimal container of its own: every namespace new, no pod. */
static void fx_spec(const char *const *argv, bool tty)
{
  struct ctr_spec *s = xcalloc(1, sizeof(*s));
  char id[65];
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  for (int i = 0; i < 64; i++)
    id[i] = "0123456789abcdef"[(seed = seed * 1103515245u + 12345u) >> 28];
  id[64] = '\0';
  s->id = xstrdup(id);
  s->name = xstrdup("monrun");
  s->argv = strv(argv, &s->argc);
  s->env = strv((const char *const[]){"PATH=/bin", "HOME=/", NULL}, &s->n_env);
  s->cwd = xstrdup("/");
  s->tty = tty;
  s->lower_dirs = strv((const char *const[]){fx.layer, NULL}, &s->n_lower);
  s->upper_dir = path_join(fx.root, "upper");
  s->work_dir = path_join(fx.root, "work");
  s->rootfs = path_join(fx.state, "rootfs");
  s->ns.net = s->ns.ipc = s->ns.uts = s->ns.pid = NS_MODE_CONTAINER;
  s->cgroup_name = xasprintf("crisp-monrun-%.12s", id);
  s->log_path = xstrdup(fx.log);
  s->stop_signal = xstrdup("SIGTERM");
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(s->upper_dir, 0755, &e), 0);
  cr_assert_eq(mkdir_p(s->work_dir, 0755, &e), 0);
  fx.spec = s;
}

static pid_t fx_start(void)
{
  cleanup_free char *path = path_join(fx.state, MON_SPEC);
  err_t *e = NULL;
  cr_assert_eq(spec_write(fx.spec, path, &e), 0, "%s", e ? e->msg : "");
  pid_t pid = 0;
  cr_assert_eq(monitor_start(fx.monitor, fx.state, &pid, &e), 0, "%s", e ? e->msg : "");
  cr_assert_gt(pid, 0);
  return pid;
}

static void wait_exited(struct ctr_runtime_state *s)
{
  err_t *e = NULL;
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(monitor_state(fx.state, s, &e), 0, "%s", e ? e->msg : "");
    if (s->exited)
      return;
    usleep(10000);
  }
  cr_assert_fail("the container did not exit within 10 s");
}

static char *read_log(const char *path)
{
  char *text = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(path, 1 << 20, &text, NULL, &e), 0, "%s", e ? e->msg : "");
  return text;
}

static size_t count_lines(const char *path)
{
  cleanup_free char *text = NULL;
  err_t *e = NULL;
  if (file_read_all(path, 1 << 20, &text, NULL, &e) < 0) {
    err_free(&e);
    return 0;
  }
  size_t n = 0;
  for (const char *p = text; (p = strchr(p, '\n')); p++)
    n++;
  return n;
}

/* Asserts every record of the log has kubelet's shape; returns how many there are. */
static size_t check_records(const char *text)
{
  size_t n = 0;
  for (const char *p = text; *p; n++) {
    const char *nl = strchr(p, '\n');
    cr_assert_not_null(nl);
    cr_assert_gt(nl - p, CRILOG_TS_LEN + 9, "short record");
    cr_assert(p[4] == '-' && p[10] == 'T' && p[19] == '.' && p[29] == 'Z', "time in %.40s", p);
    cr_assert(!strncmp(p + 30, " stdout ", 8) || !strncmp(p + 30, " stderr ", 8), "%.40s", p);
    cr_assert((p[38] == 'F' || p[38] == 'P') && p[39] == ' ', "tag in %.44s", p);
    p = nl + 1;
  }
  return n;
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t monitor_pid(void)
{
  cleanup_free char *path = path_join(fx.state, MON_PIDFILE);
  cleanup_free char *text = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(path, 64, &text, NULL, &e), 0);
  return (pid_t)strtol(text, NULL, 10);
}

Test(monitor_run, exit_code_reason_and_both_streams_reach_the_cri_log)
{
  REQUIRE();
  fx_spec((const char *const[]){"sh", "-c", "echo out; echo err >&2; exit 3", NULL}, false);
  fx_start();
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert(s.started);
  cr_assert_eq(s.exit.exit_code, 3);
  cr_assert_eq(s.exit.signal, 0);
  cr_assert_str_eq(s.exit.reason, "Error");
  cr_assert_geq(s.exit.finished_at_ns, s.started_at_ns);
  cleanup_free char *log = read_log(fx.log);
  cr_assert_eq(check_records(log), 2, "%s", log);
  cr_assert(strstr(log, " stdout F out\n") != NULL, "%s", log);
  cr_assert(strstr(log, " stderr F err\n") != NULL, "%s", log);
  cleanup_free char *ctl = path_join(fx.state, MON_CTL);
  cr_assert_neq(access(ctl, F_OK), 0, "ctl.sock is gone with the monitor");
  cr_assert_eq(access(fx.spec->rootfs, F_OK), 0);
  cr_assert_eq(rmdir(fx.spec->rootfs), 0, "the rootfs is unmounted (an empty mount point)");
}

Test(monitor_run, zero_exit_is_completed)
{
  REQUIRE();
  fx_spec((const char *const[]){"true", NULL}, false);
  fx_start();
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert_eq(s.exit.exit_code, 0);
  cr_assert_str_eq(s.exit.reason, "Completed");
}

Test(monitor_run, missing_executable_fails_the_start_and_leaves_nothing)
{
  REQUIRE();
  fx_spec((const char *const[]){"/nonexistent-binary", NULL}, false);
  cleanup_free char *path = path_join(fx.state, MON_SPEC);
  err_t *e = NULL;
  cr_assert_eq(spec_write(fx.spec, path, &e), 0);
  pid_t pid = 0;
  cr_assert_eq(monitor_start(fx.monitor, fx.state, &pid, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID, "%s: %s", err_code_name(e->code), e->msg);
  cr_assert(strstr(e->msg, "nonexistent-binary") != NULL, "%s", e->msg);
  err_free(&e);
  const char *gone[] = {MON_PIDFILE, MON_CTL, MON_STARTED, MON_EXIT, MON_CTR_PID};
  for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
    cleanup_free char *f = path_join(fx.state, gone[i]);
    cr_assert_neq(access(f, F_OK), 0, "%s left behind", gone[i]);
  }
  struct ctr_runtime_state s;
  cr_assert_eq(monitor_state(fx.state, &s, &e), 0);
  cr_assert(!s.started && !s.exited && !s.monitor_alive, "still just created");
  cr_assert(access(fx.spec->rootfs, F_OK) != 0 || rmdir(fx.spec->rootfs) == 0, "rootfs unmounted");
}

Test(monitor_run, monitor_outlives_the_process_that_started_it)
{
  REQUIRE();
  fx_spec((const char *const[]){"sleep", "1000", NULL}, false);
  cleanup_free char *path = path_join(fx.state, MON_SPEC);
  err_t *e = NULL;
  cr_assert_eq(spec_write(fx.spec, path, &e), 0);
  pid_t starter = fork();
  cr_assert_geq(starter, 0);
  if (starter == 0) {   /* crispd's stand-in: starts the monitor, then dies abruptly */
    pid_t pid;
    err_t *ce = NULL;
    _exit(monitor_start(fx.monitor, fx.state, &pid, &ce) == 0 ? 0 : 1);
  }
  int st;
  cr_assert_eq(waitpid(starter, &st, 0), starter);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "monitor_start failed in the child");
  usleep(100000);
  struct ctr_runtime_state s;
  cr_assert_eq(monitor_state(fx.state, &s, &e), 0);
  cr_assert(s.started && s.monitor_alive && !s.exited, "the container runs on");
  pid_t mon = monitor_pid();
  cleanup_free char *statpath = xasprintf("/proc/%d/stat", (int)mon);
  cleanup_free char *stat = read_log(statpath);
  int ppid = 0, pgrp = 0, sid = 0;
  const char *rp = strrchr(stat, ')');
  cr_assert_eq(sscanf(rp + 2, "%*c %d %d %d", &ppid, &pgrp, &sid), 3);
  cr_assert_neq(ppid, starter);
  cr_assert_neq(ppid, getpid());
  cr_assert_eq(sid, mon, "the monitor leads its own session");
  cr_assert_eq(kill(s.pid, SIGKILL), 0);
  wait_exited(&s);
  cr_assert_eq(s.exit.exit_code, 128 + SIGKILL);
  cr_assert_eq(s.exit.signal, SIGKILL);
  cr_assert_str_eq(s.exit.reason, "Error");
}

/* crispd dies while the container starts: the report has no reader (SIGPIPE), and the
 * container must run on, supervised, all the same. */
Test(monitor_run, monitor_survives_crispd_vanishing_before_the_report)
{
  REQUIRE();
  fx_spec((const char *const[]){"sleep", "1000", NULL}, false);
  cleanup_free char *path = path_join(fx.state, MON_SPEC);
  err_t *e = NULL;
  cr_assert_eq(spec_write(fx.spec, path, &e), 0);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  close(p[0]);   /* nobody will ever read the report */
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) {
    dup2(p[1], MON_REPORT_FD);
    execl(fx.monitor, fx.monitor, "start", fx.state, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  cr_assert_eq(waitpid(child, NULL, 0), child);
  struct ctr_runtime_state s = {0};
  for (int i = 0; i < 500 && !s.started; i++) {
    usleep(10000);
    cr_assert_eq(monitor_state(fx.state, &s, &e), 0, "%s", e ? e->msg : "");
  }
  cr_assert(s.started, "the container started");
  usleep(200000);
  cr_assert_eq(monitor_state(fx.state, &s, &e), 0);
  cr_assert(s.monitor_alive && !s.exited, "and its monitor is still there");
  cr_assert_eq(kill(s.pid, SIGKILL), 0);
  wait_exited(&s);
  cr_assert_eq(s.exit.signal, SIGKILL);
}

Test(monitor_run, killed_monitor_is_reported_dead)
{
  REQUIRE();
  fx_spec((const char *const[]){"sleep", "1000", NULL}, false);
  fx_start();
  cr_assert_eq(kill(monitor_pid(), SIGKILL), 0);
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert(!s.monitor_alive);
  cr_assert_str_eq(s.exit.reason, "Error");
  cr_assert_str_eq(s.exit.message, "crisp-monitor died");
}

#define MON_IDLE_CLIENTS 5

static int connect_ctl(void)
{
  struct sockaddr_un sa;
  int dirfd = -1;
  err_t *e = NULL;
  cr_assert_eq(mon_sock_addr(fx.state, MON_CTL, &sa, &dirfd, &e), 0);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
  if (dirfd >= 0)
    close(dirfd);
  usleep(20000);   /* let the monitor accept it */
  return fd;
}

Test(monitor_run, reopen_moves_logging_to_a_new_file_after_rotation)
{
  REQUIRE();
  fx_spec((const char *const[]){"sh", "-c", "i=0; while :; do echo line$i; i=$((i+1)); sleep 0.05; done",
                                NULL},
          false);
  fx_start();
  int64_t t0 = mono_ms();
  while (count_lines(fx.log) < 3 && mono_ms() - t0 < 5000)
    usleep(20000);
  /* clients that connect and never speak do not lock crispd out */
  int idle[MON_IDLE_CLIENTS];
  for (int i = 0; i < MON_IDLE_CLIENTS; i++)
    idle[i] = connect_ctl();
  cleanup_free char *old = xasprintf("%s.1", fx.log);
  cr_assert_eq(rename(fx.log, old), 0);
  err_t *e = NULL;
  cr_assert_eq(monitor_reopen_log(fx.state, &e), 0, "%s", e ? e->msg : "");
  for (int i = 0; i < MON_IDLE_CLIENTS; i++)
    close(idle[i]);
  while (count_lines(fx.log) < 3 && mono_ms() - t0 < 10000)
    usleep(20000);
  cr_assert_geq(count_lines(fx.log), 3, "the new file gets the output");
  size_t frozen = count_lines(old);
  usleep(300000);
  cr_assert_eq(count_lines(old), frozen, "the rotated file is left alone");
  cleanup_free char *a = read_log(old);
  cleanup_free char *b = read_log(fx.log);
  check_records(a);
  check_records(b);
  int last = -1, first = -1;
  const char *la = strrchr(a, 'F');
  cr_assert_eq(sscanf(la, "F line%d", &last), 1);
  cr_assert_eq(sscanf(strstr(b, " F ") + 1, "F line%d", &first), 1);
  cr_assert_eq(first, last + 1, "no line lost or repeated across the rotation");
}

Test(monitor_run, long_lines_are_split_and_an_unterminated_tail_is_partial)
{
  REQUIRE();
  fx_spec((const char *const[]){"sh", "-c",
                                "head -c 40000 /dev/zero | tr '\\0' x; echo; printf tail", NULL},
          false);
  fx_start();
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert_eq(s.exit.exit_code, 0);
  cleanup_free char *log = read_log(fx.log);
  cr_assert_eq(check_records(log), 4, "%.200s", log);
  const char *p = log;
  const char tags[] = {'P', 'P', 'F', 'P'};
  const size_t lens[] = {CRILOG_MAX_RECORD, CRILOG_MAX_RECORD, 40000 - 2 * CRILOG_MAX_RECORD, 4};
  for (int i = 0; i < 4; i++) {
    const char *nl = strchr(p, '\n');
    cr_assert_eq(p[38], tags[i], "record %d", i);
    cr_assert_eq((size_t)(nl - (p + 40)), lens[i], "record %d", i);
    p = nl + 1;
  }
  cr_assert(strstr(log, " stdout P tail\n") != NULL);
}

Test(monitor_run, tty_output_is_logged_as_stdout_without_carriage_returns)
{
  REQUIRE();
  /* the pty is the container's own (its devpts), not one of the host's */
  fx_spec((const char *const[]){"sh", "-c", "echo tty-out; [ -t 1 ] && echo is-a-tty; tty; "
                                "ls /dev/pts | tr '\\n' ' '; echo", NULL}, true);
  fx_start();
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert_eq(s.exit.exit_code, 0);
  cleanup_free char *log = read_log(fx.log);
  check_records(log);
  cr_assert(strstr(log, " stdout F tty-out\n") != NULL, "%s", log);
  cr_assert(strstr(log, " stdout F is-a-tty\n") != NULL, "%s", log);
  cr_assert(strstr(log, " stdout F /dev/pts/0\n") != NULL, "%s", log);
  cr_assert(strstr(log, " stdout F 0 ptmx \n") != NULL, "%s", log);
  cr_assert_null(strchr(log, '\r'), "%s", log);
}

static int run_exec(const char *const *argv, int64_t timeout_ms, struct exec_result *r, err_t **e)
{
  cleanup_free char **v = strv(argv, NULL);
  struct exec_spec x = {.argv = v};
  while (v[x.argc])
    x.argc++;
  int rc = monitor_exec_sync(fx.monitor, fx.state, &x, timeout_ms, 65536, r, e);
  for (size_t i = 0; v[i]; i++)
    free(v[i]);
  return rc;
}

Test(monitor_run, exec_sync_runs_in_the_container_with_output_and_exit_code)
{
  REQUIRE();
  fx_spec((const char *const[]){"sleep", "1000", NULL}, false);
  fx_start();
  struct exec_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(run_exec((const char *const[]){"sh", "-c", "cat /marker; echo ho >&2; exit 5", NULL},
                        10000, &r, &e),
               0, "%s", e ? e->msg : "");
  cr_assert_eq(r.exit_code, 5);
  cr_assert(!r.timed_out);
  cr_assert_str_eq(buf_str(&r.out), "from-the-image\n", "the image's files, not the host's");
  cr_assert_str_eq(buf_str(&r.err), "ho\n");
  cr_assert_eq(run_exec((const char *const[]){"/no-such-tool", NULL}, 10000, &r, &e), -1);
  cr_assert(strstr(e->msg, "no-such-tool") != NULL, "%s", e->msg);
  err_free(&e);
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_run, exec_sync_timeout_kills_the_command)
{
  REQUIRE();
  fx_spec((const char *const[]){"sleep", "1000", NULL}, false);
  fx_start();
  struct exec_result r = {0};
  err_t *e = NULL;
  int64_t t0 = mono_ms();
  cr_assert_eq(run_exec((const char *const[]){"sleep", "31", NULL}, 500, &r, &e), 0, "%s",
               e ? e->msg : "");
  cr_assert(r.timed_out);
  cr_assert_eq(r.exit_code, 128 + SIGKILL);
  cr_assert_lt(mono_ms() - t0, 3000);
  cr_assert_eq(run_exec((const char *const[]){"ps", NULL}, 10000, &r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_null(strstr(buf_str(&r.out), "sleep 31"), "left running: %s", buf_str(&r.out));
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_run, exec_sync_in_an_exited_container_is_refused)
{
  REQUIRE();
  fx_spec((const char *const[]){"true", NULL}, false);
  fx_start();
  struct ctr_runtime_state s;
  wait_exited(&s);
  struct exec_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(run_exec((const char *const[]){"true", NULL}, 1000, &r, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION, "%s", e->msg);
  err_free(&e);
  cr_assert_eq(monitor_reopen_log(fx.state, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION, "%s", e->msg);
  err_free(&e);
  buf_free(&r.out);
  buf_free(&r.err);
}

Test(monitor_run, memory_limit_kill_is_reported_as_oomkilled)
{
  REQUIRE();
  fx_spec((const char *const[]){"sh", "-c", "x=$(head -c 400000000 /dev/zero | tr '\\0' x); echo no",
                                NULL},
          false);
  fx.spec->res.memory_limit = 16 << 20;
  fx.spec->res.memory_swap_limit = 16 << 20;
  fx_start();
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert_str_eq(s.exit.reason, "OOMKilled", "exit %d", s.exit.exit_code);
}

/* VmRSS means nothing under ASan (a dynamic build with shadow memory): disabled there
 * (not skipped: a disabled test runs neither .init nor .fini, a skipped one leaks them) */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

Test(monitor_run, live_monitor_stays_under_one_mebibyte, .disabled = UNDER_ASAN)
{
  REQUIRE();
  fx_spec((const char *const[]){"sh", "-c", "while :; do echo tick; sleep 0.05; done", NULL}, false);
  fx_start();
  usleep(500000);   /* start-up is over, the loop has logged a few records */
  cleanup_free char *path = xasprintf("/proc/%d/status", (int)monitor_pid());
  cleanup_free char *status = read_log(path);
  long rss = -1;
  const char *v = strstr(status, "VmRSS:");
  cr_assert_not_null(v);
  cr_assert_eq(sscanf(v, "VmRSS: %ld kB", &rss), 1);
  cr_log_info("crisp-monitor VmRSS: %ld kB", rss);
  cr_assert_lt(rss, 1024, "VmRSS %ld kB", rss);
}
