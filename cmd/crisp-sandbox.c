/* crisp-sandbox - the syscall sandbox as a standalone command (like `runsc do`).
 *
 *   crisp-sandbox run [--policy FILE] [--kernel-release R] [--kernel-version V]
 *                     [--machine M] [--kmsg FILE] [--tag T] [--refuse-in-kernel] -- CMD...
 *   crisp-sandbox policy [--policy FILE] [--refuse-in-kernel]
 *
 * run forks CMD under the tracer and exits with its status (128+N for a signal N, as a
 * shell reports it). As root it first takes a private mount and UTS namespace, so the
 * synthetic /proc kernel files can be bind-mounted and sethostname stays inside. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/filter.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/err.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "sandbox/sandbox.h"

DEFINE_CLEANUP(sbx_policy, struct sbx_policy)
DEFINE_CLEANUP(sbx_tracer, struct sbx_tracer)

struct cli {
  const char *policy, *kmsg, *tag;
  struct sbx_kernel kernel;
  bool refuse_in_kernel;
  char **argv;
};

static void usage(FILE *f)
{
  fputs("usage: crisp-sandbox run [--policy FILE] [--kernel-release R] [--kernel-version V]\n"
        "                         [--machine M] [--kmsg FILE] [--tag T] [--refuse-in-kernel]\n"
        "                         -- CMD [ARG...]\n"
        "       crisp-sandbox policy [--policy FILE] [--refuse-in-kernel]\n", f);
}

static int parse_args(int argc, char **argv, struct cli *c)
{
  static const struct option opts[] = {
    {"policy", required_argument, NULL, 'p'}, {"kernel-release", required_argument, NULL, 'r'},
    {"kernel-version", required_argument, NULL, 'v'}, {"machine", required_argument, NULL, 'm'},
    {"kmsg", required_argument, NULL, 'k'}, {"tag", required_argument, NULL, 't'},
    {"refuse-in-kernel", no_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  int o;
  while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (o) {
    case 'p': c->policy = optarg; break;
    case 'r': c->kernel.release = optarg; break;
    case 'v': c->kernel.version = optarg; break;
    case 'm': c->kernel.machine = optarg; break;
    case 'k': c->kmsg = optarg; break;
    case 't': c->tag = optarg; break;
    case 'R': c->refuse_in_kernel = true; break;
    case 'h': usage(stdout); exit(0);
    default: return -1;
    }
  }
  c->argv = argv + optind;
  return 0;
}

static int load_policy(const struct cli *c, struct sbx_policy **out, err_t **e)
{
  if ((c->policy ? sbx_policy_load(c->policy, out, e) : sbx_policy_default(out, e)) < 0)
    return -1;
  if (c->refuse_in_kernel)
    sbx_policy_set_refuse_in_kernel(*out, true);
  return 0;
}

static void print_rule(void *arg, const char *name, int nr, enum sbx_action a, int err,
                       enum sbx_handler h, const char *cond)
{
  bool rik = *(bool *)arg;
  if (a == SBX_ERRNO)
    printf("%-24s %3d  errno %s%s%s\n", name, nr, strerrorname_np(err) ? strerrorname_np(err) : "?",
           *cond ? "  " : "", cond);
  else if (a == SBX_TRACE)
    printf("%-24s %3d  trace %s\n", name, nr, sbx_handler_name(h));
  else if (a == SBX_REFUSE)
    printf("%-24s %3d  %s%s%s\n", name, nr, rik ? "errno EPERM (refuse in kernel)" : "refuse",
           *cond ? "  " : "", cond);
  else
    printf("%-24s %3d  allow\n", name, nr);
}

static int cmd_policy(const struct cli *c)
{
  err_t *e = NULL;
  CLEANUP(sbx_policy) struct sbx_policy *p = NULL;
  if (load_policy(c, &p, &e) < 0) {
    fprintf(stderr, "crisp-sandbox: %s\n", e->msg);
    err_free(&e);
    return 2;
  }
  bool rik = sbx_policy_refuse_in_kernel(p);
  int n = sbx_policy_each(p, print_rule, &rik);
  printf("# %d syscalls listed; any other fails with ENOSYS\n", n);
  return 0;
}

/* Bind-mounts a read-only file holding text over target (a file or device node). The
 * source is a plain tmpfs file, unlinked once mounted: nothing to fsync, nothing left. */
static int bind_file(const char *target, const char *text, int i)
{
  char src[64];
  snprintf(src, sizeof(src), "%s/.crisp-sandbox-%d-%d",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid(), i);
  int fd = open(src, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
  if (fd < 0)
    return -errno;
  size_t len = strlen(text);
  int rc = write(fd, text, len) == (ssize_t)len ? 0 : -EIO;
  close(fd);
  if (rc == 0 && mount(src, target, NULL, MS_BIND, NULL) < 0)
    rc = errno == ENOENT ? 0 : -errno;   /* no such file on this kernel: nothing to mask */
  if (rc == 0)
    mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  unlink(src);
  return rc;
}

/* As root, in the child (while the parent builds the filter): a private mount namespace
 * with the /proc kernel files that must agree with uname, and the host's kernel log,
 * sysrq and kcore masked by empty read-only files, as a pod's masked paths would be. */
static int private_mounts(char *const files[3])
{
  static const char *const targets[] = {"/proc/version", "/proc/sys/kernel/osrelease",
                                        "/proc/sys/kernel/version", "/proc/kmsg", "/dev/kmsg",
                                        "/proc/sysrq-trigger", "/proc/kcore"};
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return -errno;
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
    int rc = bind_file(targets[i], i < 3 ? files[i] : "", (int)i);
    if (rc < 0) {
      fprintf(stderr, "crisp-sandbox: bind-mount over %s: %s\n", targets[i], strerror(-rc));
      return rc;
    }
  }
  return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
  for (size_t off = 0; off < len;) {
    ssize_t n = read(fd, (char *)buf + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    off += (size_t)n;
  }
  return 0;
}

/* The child's copy of the filter, received over the go pipe once the parent has seized
 * the child and built it (the build overlaps the child's mount set-up). */
static struct sock_filter child_insns[BPF_MAXINSNS];

/* The child: private mounts (root), wait for the filter, install it, exec. Reports a
 * failure's errno on err_fd (close-on-exec: silence means exec worked). */
static __attribute__((noreturn)) void child(char *const files[3], int go_fd, int err_fd,
                                            char **argv, const sigset_t *old)
{
  unsigned short len = 0;
  sigprocmask(SIG_SETMASK, old, NULL);
  int rc = geteuid() == 0 ? private_mounts(files) : 0;
  if (read_full(go_fd, &len, sizeof(len)) < 0 || len == 0 || len > BPF_MAXINSNS ||
      read_full(go_fd, child_insns, len * sizeof(struct sock_filter)) < 0)
    _exit(125);   /* the parent failed and said why */
  struct sbx_prog prog = {child_insns, len};
  if (rc == 0)
    rc = sbx_prog_install(&prog);
  if (rc == 0) {
    execvp(argv[0], argv);
    rc = -errno;
  }
  int err = -rc;
  if (write(err_fd, &err, sizeof(err)) < 0)
    _exit(127);
  _exit(err == ENOENT ? 127 : 126);
}

static int exit_code(int status)
{
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits for the root to exit, feeding every wait status to the tracer and forwarding
 * signals sent to us (not those the terminal sent the whole process group). */
static int supervise(struct sbx_tracer *t, pid_t root, int sfd)
{
  for (;;) {
    struct signalfd_siginfo si;
    ssize_t n = read(sfd, &si, sizeof(si));
    if (n < 0 && errno == EINTR)
      continue;
    if (n != sizeof(si))
      return 125;
    if (si.ssi_signo != SIGCHLD) {
      if (si.ssi_code != SI_KERNEL)
        kill(root, (int)si.ssi_signo);
      continue;
    }
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, __WALL | WNOHANG)) > 0)
      if (sbx_tracer_handle(t, pid, st) == SBX_EV_ROOT_EXIT)
        return exit_code(st);
  }
}

/* Compiled filters are cached in a directory only the caller can write. */
static const char *cache_dir(void)
{
  static char dir[256];
  const char *base = geteuid() == 0 ? "/run" : getenv("XDG_RUNTIME_DIR");
  if (!base || !*base)
    return NULL;
  int n = snprintf(dir, sizeof(dir), "%s/crisp-sandbox", base);
  if (n < 0 || (size_t)n >= sizeof(dir) || (mkdir(dir, 0700) < 0 && errno != EEXIST))
    return NULL;
  return dir;
}

/* After fork: seize, build the filter and the tracer, send the filter to the child. */
static int start_tracer(const struct cli *c, const struct sbx_policy *p, pid_t pid, int go_fd,
                        struct sbx_tracer **t, err_t **e)
{
  cleanup_free char *tmp_kmsg = NULL;
  if (!c->kmsg) {   /* a private log that lives as long as the tracer's descriptor */
    tmp_kmsg = xasprintf("/tmp/.crisp-sandbox-%d.kmsg", (int)getpid());
    unlink(tmp_kmsg);
  }
  struct sbx_tracer_opts o = {.kernel = c->kernel, .kmsg_path = c->kmsg ? c->kmsg : tmp_kmsg,
                              .tag = c->tag};
  struct sbx_prog prog = {NULL, 0};
  int rc = sbx_tracer_new(&o, p, t, e);
  if (tmp_kmsg)
    unlink(tmp_kmsg);
  if (rc == 0)
    rc = sbx_tracer_seize(*t, pid, e);
  if (rc == 0)
    rc = sbx_prog_build_cached(p, cache_dir(), &prog, e);
  if (rc == 0 && (write(go_fd, &prog.len, sizeof(prog.len)) != sizeof(prog.len) ||
                  fd_write_all(go_fd, prog.insns, prog.len * sizeof(*prog.insns), e) < 0))
    rc = e && *e ? -1 : err_sys(e, errno, "send the filter");
  sbx_prog_free(&prog);
  return rc;
}

static void free_files(char *(*f)[3])
{
  for (int i = 0; i < 3; i++)
    free((*f)[i]);
}

static int cmd_run(const struct cli *c)
{
  err_t *e = NULL;
  CLEANUP(sbx_policy) struct sbx_policy *p = NULL;
  CLEANUP(sbx_tracer) struct sbx_tracer *t = NULL;
  __attribute__((cleanup(free_files))) char *files[3] = {NULL, NULL, NULL};
  if (!c->argv[0]) {
    usage(stderr);
    return 2;
  }
  /* as root, the tracer shares the sandbox's UTS namespace: sethostname stays inside,
   * and uname (answered by the tracer) reports it */
  if (load_policy(c, &p, &e) < 0 ||
      sbx_kernel_files(&c->kernel, &files[0], &files[1], &files[2], &e) < 0 ||
      (geteuid() == 0 && unshare(CLONE_NEWUTS) < 0 && err_sys(&e, errno, "unshare UTS") < 0)) {
    fprintf(stderr, "crisp-sandbox: %s\n", e->msg);
    err_free(&e);
    return 125;
  }
  sigset_t set, old;
  sigemptyset(&set);
  int fwd[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
    sigaddset(&set, fwd[i]);
  sigprocmask(SIG_BLOCK, &set, &old);
  cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  int go[2], errp[2];
  if (sfd < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
    perror("crisp-sandbox: set-up");
    return 125;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("crisp-sandbox: fork");
    return 125;
  }
  if (pid == 0)
    child(files, go[0], errp[1], c->argv, &old);
  close(go[0]);
  close(errp[1]);
  int rc = start_tracer(c, p, pid, go[1], &t, &e);
  close(go[1]);
  if (rc < 0) {
    fprintf(stderr, "crisp-sandbox: %s\n", e->msg);
    err_free(&e);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, __WALL);
    return 125;
  }
  rc = supervise(t, pid, sfd);
  int child_err = 0;
  if (read(errp[0], &child_err, sizeof(child_err)) == sizeof(child_err))
    fprintf(stderr, "crisp-sandbox: %s: %s\n", c->argv[0], strerror(child_err));
  close(errp[0]);
  return rc;
}

int main(int argc, char **argv)
{
  struct cli c = {0};
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *verb = argv[1];
  if (parse_args(argc - 1, argv + 1, &c) < 0) {
    usage(stderr);
    return 2;
  }
  if (strcmp(verb, "run") == 0)
    return cmd_run(&c);
  if (strcmp(verb, "policy") == 0)
    return cmd_policy(&c);
  usage(stderr);
  return 2;
}
