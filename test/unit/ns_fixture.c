#include "ns_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/cgroup.h"

struct nsf nsf;

char **nsf_strv(size_t *n, ...)
{
  va_list ap;
  size_t k = 0;
  char **v = xcalloc(1, sizeof(*v));
  va_start(ap, n);
  for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
    v = xreallocarray(v, k + 2, sizeof(*v));
    v[k++] = xstrdup(s);
    v[k] = NULL;
  }
  va_end(ap);
  if (n)
    *n = k;
  return v;
}

static void must(int ok, const char *what)
{
  if (!ok)
    cr_assert_fail("fixture: %s: %s", what, strerror(errno));
}

/* /bin/busybox and one relative link per applet: the image's only layer. */
static void make_busybox_layer(const char *lower)
{
  cleanup_free char *bin = path_join(lower, "bin");
  cleanup_free char *bb = path_join(bin, "busybox");
  must(mkdir(lower, 0755) == 0 && mkdir(bin, 0755) == 0, "mkdir lower/bin");
  if (link("/bin/busybox", bb) < 0) {
    cleanup_free char *cmd = xasprintf("cp /bin/busybox %s", bb);
    must(system(cmd) == 0, "copy busybox");
  }
  FILE *p = popen("/bin/busybox --list", "r");
  must(p != NULL, "busybox --list");
  char name[128];
  while (fgets(name, sizeof(name), p)) {
    name[strcspn(name, "\n")] = '\0';
    if (!*name || strcmp(name, "busybox") == 0)
      continue;
    cleanup_free char *l = path_join(bin, name);
    (void)symlinkat("busybox", AT_FDCWD, l);
  }
  pclose(p);
  const char *dirs[] = {"etc", "tmp", "root", "data"};
  for (size_t i = 0; i < 4; i++) {
    cleanup_free char *d = path_join(lower, dirs[i]);
    must(mkdir(d, i == 1 ? 01777 : 0755) == 0, "mkdir layer dir");
  }
}

static uint64_t default_caps(void)
{
  static const int caps[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD,
                             CAP_NET_RAW, CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP,
                             CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE};
  uint64_t m = 0;
  for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
    m |= 1ull << caps[i];
  return m;
}

static void default_spec(struct ctr_spec *s)
{
  static int seq;
  s->id = xasprintf("%d-%d", (int)getpid(), seq++);
  s->name = xasprintf("test-%s", s->id);
  s->argv = nsf_strv(&s->argc, "/bin/true", NULL);
  s->env = nsf_strv(&s->n_env, "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", NULL);
  s->cwd = xstrdup("/");
  s->lower_dirs = nsf_strv(&s->n_lower, nsf.lower, NULL);
  s->upper_dir = path_join(nsf.dir, "upper");
  s->work_dir = path_join(nsf.dir, "work");
  s->rootfs = path_join(nsf.dir, "rootfs");
  s->masked_paths = nsf_strv(&s->n_masked, "/proc/acpi", "/proc/kcore", "/proc/keys",
                             "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug",
                             "/proc/scsi", "/sys/firmware", NULL);
  s->readonly_paths = nsf_strv(&s->n_readonly, "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                               "/proc/sysrq-trigger", NULL);
  s->caps.bounding = s->caps.effective = s->caps.permitted = default_caps();
  s->seccomp = SECCOMP_RUNTIME_DEFAULT;
  s->ns.net = s->ns.ipc = s->ns.uts = s->ns.pid = NS_MODE_CONTAINER;
  s->hostname = xstrdup("crisp-box");
  s->cgroup_parent = xasprintf("/crisp-test-%d", (int)getpid());
  s->cgroup_name = xasprintf("ctr-%s", s->id);
  s->stop_signal = xstrdup("SIGTERM");
}

void nsf_setup(void)
{
  memset(&nsf, 0, sizeof(nsf));
  nsf.out = -1;
  if (geteuid() != 0 || access("/bin/busybox", X_OK) < 0)
    cr_skip_test("needs root and busybox-static");
  nsf.dir = xstrdup("/tmp/crisp-ns-XXXXXX");
  must(mkdtemp(nsf.dir) != NULL, "mkdtemp");
  nsf.lower = path_join(nsf.dir, "lower");
  make_busybox_layer(nsf.lower);
  const char *sub[] = {"upper", "work", "rootfs"};
  for (size_t i = 0; i < 3; i++) {
    cleanup_free char *d = path_join(nsf.dir, sub[i]);
    must(mkdir(d, 0755) == 0, "mkdir");
  }
  nsf.s = xcalloc(1, sizeof(*nsf.s));
  default_spec(nsf.s);
}

/* Removes the per-test cgroup parent from every hierarchy. */
static void remove_cgroup_parent(void)
{
  struct cg_layout l;
  if (cg_layout_detect(&l, NULL) < 0)
    return;
  for (size_t i = 0; i < l.n; i++) {
    cleanup_free char *d = xasprintf("%s/crisp-test-%d", l.h[i].mount, (int)getpid());
    (void)rmdir(d);
  }
  cg_layout_clear(&l);
}

/* Mounts a test made below dir (pinned namespaces...), deepest first. */
static void unmount_below(const char *dir)
{
  for (int i = 0; i < 32 && nsf_mounted_below(dir); i++) {
    cleanup_free char *text = NULL;
    err_t *e = NULL;
    if (file_read_all("/proc/self/mountinfo", 1 << 22, &text, NULL, &e) < 0) {
      err_free(&e);
      return;
    }
    char *last = NULL, mnt[4096], *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
      if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strncmp(mnt, dir, strlen(dir)) == 0) {
        free(last);
        last = xstrdup(mnt);
      }
    if (last)
      umount2(last, MNT_DETACH);
    free(last);
  }
}

void nsf_teardown(void)
{
  err_t *e = NULL;
  if (!nsf.s)
    return;
  if (nsf.pid > 0) {
    kill(nsf.pid, SIGKILL);
    waitpid(nsf.pid, NULL, 0);
  }
  (void)cgroup_kill_all(nsf.s, SIGKILL, &e);
  err_free(&e);
  (void)ns_cleanup(nsf.s, &e);
  err_free(&e);
  remove_cgroup_parent();
  unmount_below(nsf.dir);
  if (nsf.out >= 0)
    close(nsf.out);
  (void)rm_rf(nsf.dir, &e);
  err_free(&e);
  spec_free(nsf.s);
  free(nsf.dir);
  free(nsf.lower);
  free(nsf.output);
  memset(&nsf, 0, sizeof(nsf));
}

void nsf_cmd(const char *cmd)
{
  struct ctr_spec *s = nsf.s;
  for (size_t i = 0; i < s->argc; i++)
    free(s->argv[i]);
  free(s->argv);
  s->argv = nsf_strv(&s->argc, "/bin/sh", "-c", cmd, NULL);
}

int nsf_start(err_t **e)
{
  int p[2];
  must(pipe2(p, O_CLOEXEC) == 0, "pipe");
  struct ctr_stdio io = {-1, p[1], p[1]};
  int rc = ns_start(nsf.s, &io, &nsf.pid, e);
  close(p[1]);
  if (rc < 0) {
    close(p[0]);
    nsf.pid = 0;
    return -1;
  }
  if (nsf.out >= 0)
    close(nsf.out);
  nsf.out = p[0];
  return 0;
}

int nsf_wait(void)
{
  struct buf b = BUF_INIT;
  struct pollfd pfd = {nsf.out, POLLIN, 0};
  char chunk[4096];
  while (poll(&pfd, 1, 10000) > 0) {
    ssize_t n = read(nsf.out, chunk, sizeof(chunk));
    if (n <= 0)
      break;
    buf_append(&b, chunk, (size_t)n);
  }
  free(nsf.output);
  nsf.output = buf_steal(&b);
  close(nsf.out);
  nsf.out = -1;
  /* a container that hangs must not hang the test: 10 s, then SIGKILL */
  pid_t got = 0;
  for (int i = 0; i < 1000 && (got = waitpid(nsf.pid, &nsf.status, WNOHANG)) == 0; i++)
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  if (got == 0) {
    kill(nsf.pid, SIGKILL);
    got = waitpid(nsf.pid, &nsf.status, 0);
  }
  must(got == nsf.pid, "waitpid");
  nsf.pid = 0;
  return 0;
}

int nsf_run(err_t **e)
{
  if (nsf_start(e) < 0)
    return -1;
  nsf_wait();
  if (WIFSIGNALED(nsf.status))
    return 128 + WTERMSIG(nsf.status);
  return WEXITSTATUS(nsf.status);
}

void nsf_add_mount(const char *src, const char *dest, const char *type, bool ro)
{
  struct ctr_spec *s = nsf.s;
  s->mounts = xreallocarray(s->mounts, s->n_mounts + 1, sizeof(*s->mounts));
  struct mount_spec *m = &s->mounts[s->n_mounts++];
  memset(m, 0, sizeof(*m));
  m->source = xstrdup(src);
  m->destination = xstrdup(dest);
  m->type = xstrdup(type);
  m->readonly = ro;
}

void nsf_lower_file(const char *path, const char *content)
{
  err_t *e = NULL;
  cleanup_free char *full = xasprintf("%s%s", nsf.lower, path);
  cleanup_free char *dir = xstrdup(full);
  *strrchr(dir, '/') = '\0';
  cr_assert_eq(mkdir_p(dir, 0755, &e), 0);
  cr_assert_eq(file_write_atomic(full, content, strlen(content), 0644, &e), 0);
}

bool nsf_mounted_below(const char *path)
{
  cleanup_free char *text = NULL;
  err_t *e = NULL;
  if (file_read_all("/proc/self/mountinfo", 1 << 22, &text, NULL, &e) < 0) {
    err_free(&e);
    return false;
  }
  size_t n = strlen(path);
  for (char *line = text; line && *line;) {
    char *next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char mnt[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strncmp(mnt, path, n) == 0 &&
        (mnt[n] == '\0' || mnt[n] == '/'))
      return true;
    line = next;
  }
  return false;
}
