/* monitor_attach_test.c - attach and interactive exec against the real crisp-monitor and
 * real containers (busybox): the frames of the attach stream, stdin with and without
 * stdin_once, terminal sizes, a slow attacher, the attacher limit, and
 * monitor_exec_start with a pty. Needs root, the built crisp-monitor and a static
 * /bin/busybox, like monitor_run_test.c (whose fixture this one follows). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"
#include "runtimes/monitor_int.h"

static struct {
  const char *skip;
  char root[64];
  char *state, *layer, *log, *monitor;
  struct ctr_spec *spec;
} fx;

static const char *const applets[] = {"sh", "echo", "sleep", "cat", "head", "tr", "stty", "true"};

static const char *why_skip(void)
{
  if (geteuid() != 0)
    return "needs root (namespaces, mounts, cgroups)";
  if (access(fx.monitor, X_OK) != 0)
    return "crisp-monitor is not built next to the tests";
  cleanup_free char *head = NULL;
  err_t *e = NULL;
  if (file_read_all("/bin/busybox", 8 << 20, &head, NULL, &e) < 0 || memcmp(head, "\177ELF", 4)) {
    err_free(&e);
    return "needs a static /bin/busybox (apt-get install busybox-static)";
  }
  return NULL;
}

static void fx_layer(void)
{
  cleanup_free char *bin = path_join(fx.layer, "bin");
  cleanup_free char *bb = path_join(bin, "busybox");
  cleanup_free char *data = NULL;
  size_t len = 0;
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(bin, 0755, &e), 0);
  cr_assert_eq(file_read_all("/bin/busybox", 8 << 20, &data, &len, &e), 0);
  cr_assert_eq(file_write_atomic(bb, data, len, 0755, &e), 0);
  for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
    cleanup_free char *link = path_join(bin, applets[i]);
    cr_assert_eq(symlink("busybox", link), 0);
  }
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
  snprintf(fx.root, sizeof(fx.root), "/tmp/crisp-monatt-XXXXXX");
  cr_assert_not_null(mkdtemp(fx.root));
  fx.state = path_join(fx.root, "state");
  fx.layer = path_join(fx.root, "layer");
  fx.log = path_join(fx.root, "logs/0.log");
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(fx.state, 0700, &e), 0);
  fx_layer();
}

static void fx_fini(void)
{
  err_t *e = NULL;
  if (fx.spec) {
    cgroup_kill_all(fx.spec, SIGKILL, &e);
    err_free(&e);
    for (int i = 0; i < 500; i++) {
      bool held = false, exists = false;
      if (mon_lock_held(fx.state, &held, &exists, &e) < 0 || !held)
        break;
      usleep(10000);
    }
    err_free(&e);
    ns_cleanup(fx.spec, &e);
    err_free(&e);
    spec_free(fx.spec);
  }
  /* the monitor's own diagnostics: under ASan/UBSan a report lands here */
  cleanup_free char *mlog = fx.state ? path_join(fx.state, MON_LOG) : NULL;
  cleanup_free char *diag = NULL;
  if (mlog && file_read_all(mlog, 1 << 20, &diag, NULL, &e) == 0)
    cr_expect(!strstr(diag, "Sanitizer") && !strstr(diag, "runtime error"), "monitor.log: %s",
              diag);
  err_free(&e);
  if (fx.root[0])
    cr_expect_eq(rm_rf(fx.root, &e), 0, "%s", e ? e->msg : "");
  err_free(&e);
  free(fx.state);
  free(fx.layer);
  free(fx.log);
  free(fx.monitor);
}

TestSuite(monitor_attach, .init = fx_init, .fini = fx_fini, .timeout = 60);

#define REQUIRE()                  \
  do {                             \
    if (fx.skip)                   \
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

struct io_flags {
  bool tty, stdin_open, stdin_once;
};

static void fx_run(const char *const *argv, struct io_flags f)
{
  struct ctr_spec *s = xcalloc(1, sizeof(*s));
  char id[65];
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  for (int i = 0; i < 64; i++)
    id[i] = "0123456789abcdef"[(seed = seed * 1103515245u + 12345u) >> 28];
  id[64] = '\0';
  s->id = xstrdup(id);
  s->name = xstrdup("monatt");
  s->argv = strv(argv, &s->argc);
  s->env = strv((const char *const[]){"PATH=/bin", "HOME=/", NULL}, &s->n_env);
  s->cwd = xstrdup("/");
  s->tty = f.tty;
  s->stdin_open = f.stdin_open;
  s->stdin_once = f.stdin_once;
  s->lower_dirs = strv((const char *const[]){fx.layer, NULL}, &s->n_lower);
  s->upper_dir = path_join(fx.root, "upper");
  s->work_dir = path_join(fx.root, "work");
  s->rootfs = path_join(fx.state, "rootfs");
  s->ns.net = s->ns.ipc = s->ns.uts = s->ns.pid = NS_MODE_CONTAINER;
  s->cgroup_name = xasprintf("crisp-monatt-%.12s", id);
  s->log_path = xstrdup(fx.log);
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(s->upper_dir, 0755, &e), 0);
  cr_assert_eq(mkdir_p(s->work_dir, 0755, &e), 0);
  fx.spec = s;
  cleanup_free char *path = path_join(fx.state, MON_SPEC);
  cr_assert_eq(spec_write(s, path, &e), 0, "%s", e ? e->msg : "");
  pid_t pid = 0;
  cr_assert_eq(monitor_start(fx.monitor, fx.state, &pid, &e), 0, "%s", e ? e->msg : "");
}

static struct monitor_attach *attach(bool in, bool out, bool err)
{
  struct monitor_attach *a = NULL;
  err_t *e = NULL;
  cr_assert_eq(monitor_attach_open(fx.state, in, out, err, &a, &e), 0, "%s", e ? e->msg : "");
  return a;
}

/* Reads until the streams hold what was asked for, or (nothing asked) until the end. */
struct got {
  char s[3][8192];
  size_t n[3];
  bool ended;
};

static void read_until(struct monitor_attach *a, struct got *g, const char *out, const char *err)
{
  while ((!out && !err) || (out && !strstr(g->s[1], out)) || (err && !strstr(g->s[2], err))) {
    char buf[4096];
    int which = 0;
    err_t *e = NULL;
    ssize_t n = monitor_attach_read(a, &which, buf, sizeof(buf), &e);
    cr_assert_geq(n, 0, "%s", e ? e->msg : "");
    if (n == 0) {
      g->ended = true;
      return;
    }
    cr_assert(which == 1 || which == 2);
    size_t room = sizeof(g->s[which]) - 1 - g->n[which];
    size_t k = (size_t)n < room ? (size_t)n : room;
    memcpy(g->s[which] + g->n[which], buf, k);
    g->n[which] += k;
    g->s[which][g->n[which]] = '\0';
  }
}

static void send_stdin(struct monitor_attach *a, const char *text)
{
  err_t *e = NULL;
  cr_assert_eq(monitor_attach_stdin(a, text, strlen(text), &e), 0, "%s", e ? e->msg : "");
}

static void wait_exited(struct ctr_runtime_state *s)
{
  err_t *e = NULL;
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(monitor_state(fx.state, s, &e), 0);
    if (s->exited)
      return;
    usleep(10000);
  }
  cr_assert_fail("the container did not exit within 10 s");
}

Test(monitor_attach, stdout_and_stderr_arrive_apart_and_stdin_reaches_the_container)
{
  REQUIRE();
  fx_run((const char *const[]){"sh", "-c", "while read l; do echo out-$l; echo err-$l >&2; done",
                               NULL},
         (struct io_flags){.stdin_open = true});
  struct monitor_attach *a = attach(true, true, true);
  struct monitor_attach *b = attach(false, true, false);
  send_stdin(a, "one\n");
  struct got ga = {0}, gb = {0};
  read_until(a, &ga, "out-one\n", "err-one\n");
  read_until(b, &gb, "out-one\n", NULL);
  cr_assert_str_eq(ga.s[1], "out-one\n");
  cr_assert_str_eq(ga.s[2], "err-one\n");
  cr_assert_eq(gb.n[2], 0, "b asked for no stderr");
  monitor_attach_free(a);   /* a detach: no stdin_once, so stdin stays open */
  send_stdin(b, "two\n");   /* b asked for no stdin: dropped */
  struct monitor_attach *c = attach(true, true, false);
  send_stdin(c, "three\n");
  struct got gc = {0};
  read_until(c, &gc, "out-three\n", NULL);
  cr_assert_null(strstr(gc.s[1], "two"), "%s", gc.s[1]);
  monitor_attach_free(b);
  monitor_attach_free(c);
}

Test(monitor_attach, stdin_once_closes_stdin_when_the_first_attacher_ends_it)
{
  REQUIRE();
  fx_run((const char *const[]){"sh", "-c", "cat; echo eof", NULL},
         (struct io_flags){.stdin_open = true, .stdin_once = true});
  struct monitor_attach *a = attach(true, true, false);
  send_stdin(a, "abc\n");
  struct got g = {0};
  read_until(a, &g, "abc\n", NULL);
  err_t *e = NULL;
  cr_assert_eq(monitor_attach_stdin(a, NULL, 0, &e), 0);
  read_until(a, &g, "abc\neof\n", NULL);
  read_until(a, &g, NULL, NULL);   /* the container exited: the monitor ends the stream */
  cr_assert(g.ended);
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert_eq(s.exit.exit_code, 0);
  monitor_attach_free(a);
}

Test(monitor_attach, terminal_size_reaches_a_tty_container)
{
  REQUIRE();
  fx_run((const char *const[]){"sh", NULL}, (struct io_flags){.tty = true, .stdin_open = true});
  struct monitor_attach *a = attach(true, true, false);
  monitor_attach_resize(a, 77, 22);
  send_stdin(a, "stty size\n");
  struct got g = {0};
  read_until(a, &g, "22 77\r\n", NULL);
  send_stdin(a, "exit 3\n");
  struct ctr_runtime_state s;
  wait_exited(&s);
  cr_assert_eq(s.exit.exit_code, 3);
  monitor_attach_free(a);
}

/* An attacher that reads nothing must not hold the container up: it is dropped once far
 * enough behind, while the log gets everything. */
Test(monitor_attach, an_attacher_that_does_not_read_is_dropped_not_waited_for)
{
  REQUIRE();
  fx_run((const char *const[]){"sh", "-c", "read go; head -c 3000000 /dev/zero | tr '\\0' x; "
                                           "echo; echo written; sleep 60", NULL},
         (struct io_flags){.stdin_open = true});
  struct monitor_attach *slow = attach(true, true, false);
  send_stdin(slow, "go\n");
  for (int i = 0; i < 1000; i++) {   /* the log sees it all: the container was not blocked */
    cleanup_free char *log = NULL;
    err_t *e = NULL;
    if (file_read_all(fx.log, 8 << 20, &log, NULL, &e) == 0 && strstr(log, " stdout F written\n"))
      break;
    err_free(&e);
    cr_assert_lt(i, 999, "the container's output did not reach the log");
    usleep(10000);
  }
  size_t total = 0;
  for (;;) {
    char buf[65536];
    int which;
    err_t *e = NULL;
    ssize_t n = monitor_attach_read(slow, &which, buf, sizeof(buf), &e);
    cr_assert_geq(n, 0, "%s", e ? e->msg : "");
    if (n == 0)
      break;
    total += (size_t)n;
  }
  cr_assert_lt(total, 3000000, "dropped: it saw only part (%zu bytes)", total);
  struct ctr_runtime_state s;
  err_t *e = NULL;
  cr_assert_eq(monitor_state(fx.state, &s, &e), 0);
  cr_assert(!s.exited, "the container runs on");
  monitor_attach_free(slow);
}

Test(monitor_attach, attachers_beyond_the_limit_are_refused)
{
  REQUIRE();
  fx_run((const char *const[]){"sleep", "60", NULL}, (struct io_flags){0});
  struct monitor_attach *a[MON_MAX_ATTACH];
  for (int i = 0; i < MON_MAX_ATTACH; i++)
    a[i] = attach(false, true, true);
  struct monitor_attach *extra = NULL;
  err_t *e = NULL;
  cr_assert_eq(monitor_attach_open(fx.state, false, true, true, &extra, &e), -1);
  cr_assert_eq(e->code, ERR_RESOURCE, "%s", e->msg);
  err_free(&e);
  monitor_attach_free(a[0]);
  usleep(100000);
  cr_assert_eq(monitor_attach_open(fx.state, false, true, true, &extra, &e), 0, "a slot was freed");
  monitor_attach_free(extra);
  for (int i = 1; i < MON_MAX_ATTACH; i++)
    monitor_attach_free(a[i]);
}

static char *drain_pty(int master, int ms)
{
  struct buf b = BUF_INIT;
  struct pollfd p = {.fd = master, .events = POLLIN};
  while (poll(&p, 1, ms) > 0) {
    char tmp[4096];
    ssize_t n = read(master, tmp, sizeof(tmp));
    if (n <= 0)
      break;
    buf_append(&b, tmp, (size_t)n);
  }
  return buf_steal(&b);
}

Test(monitor_attach, interactive_exec_gets_a_pty_its_size_and_its_exit_code)
{
  REQUIRE();
  fx_run((const char *const[]){"sleep", "60", NULL}, (struct io_flags){0});
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  cr_assert_geq(master, 0);
  cr_assert_eq(grantpt(master) | unlockpt(master), 0);
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  cr_assert_geq(slave, 0);
  struct winsize ws = {.ws_row = 33, .ws_col = 111};
  cr_assert_eq(ioctl(master, TIOCSWINSZ, &ws), 0);
  char *argv[] = {"sh", "-c", "stty size; [ -t 0 ] && echo tty; exit 6", NULL};
  struct exec_spec x = {.argv = argv, .argc = 3, .tty = true};
  struct monitor_exec *me = NULL;
  err_t *e = NULL;
  cr_assert_eq(monitor_exec_start(fx.monitor, fx.state, &x, slave, slave, slave, &me, &e), 0, "%s",
               e ? e->msg : "");
  close(slave);
  cr_assert_eq(monitor_exec_wait(me), 6);
  cleanup_free char *out = drain_pty(master, 500);
  cr_assert(strstr(out, "33 111\r\n") && strstr(out, "tty\r\n"), "%s", out);
  monitor_exec_free(me);

  char *sleeper[] = {"sleep", "77", NULL};
  struct exec_spec y = {.argv = sleeper, .argc = 2};
  cr_assert_eq(monitor_exec_start(fx.monitor, fx.state, &y, -1, -1, -1, &me, &e), 0);
  monitor_exec_kill(me);
  cr_assert_eq(monitor_exec_wait(me), 128 + SIGKILL);
  monitor_exec_free(me);
  close(master);
}
