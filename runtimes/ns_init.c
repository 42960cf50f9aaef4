/* ns_init.c - the last steps of a container process, shared by start and exec: stdio,
 * finding the executable, privileges, seccomp, exec. (child) */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fdpass.h"
#include "base/file.h"
#include "base/xalloc.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int init_stdio(const struct init_io *io, bool tty, err_t **e)
{
  const int want[3] = {io->in, io->out, io->err};
  int moved[3] = {-1, -1, -1};
  int rc = 0;
  /* copy everything above 2 first, so that dup2 onto 0-2 cannot clobber a source */
  for (int i = 0; i < 3 && rc == 0; i++) {
    int src = want[i] >= 0 ? want[i] : open("/dev/null", O_RDWR | O_CLOEXEC);
    moved[i] = src < 0 ? -1 : fcntl(src, F_DUPFD_CLOEXEC, 10);
    if (want[i] < 0 && src >= 0)
      close(src);
    if (moved[i] < 0)
      rc = err_sys(e, errno, "stdio: fd %d", want[i]);
  }
  for (int i = 0; i < 3 && rc == 0; i++)
    if (dup2(moved[i], i) < 0)
      rc = err_sys(e, errno, "stdio: dup2 onto %d", i);
  for (int i = 0; i < 3; i++)
    if (moved[i] >= 0)
      close(moved[i]);
  if (rc < 0)
    return -1;
  /* its own session: the container's signals and job control stay its own */
  if (setsid() < 0)
    return err_sys(e, errno, "setsid");
  if (tty && isatty(0) && ioctl(0, TIOCSCTTY, 0) < 0)
    return err_sys(e, errno, "make the tty the controlling terminal");
  return 0;
}

int init_console(int sock, int *slave, err_t **e)
{
  /* the current root's devpts: the container's own instance, mounted newinstance */
  cleanup_close int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return err_sys(e, errno, "open the container's /dev/pts/ptmx");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
    return err_sys(e, errno, "unlock the pty");
  /* by the master, not by a path: nothing in the container can swap the slave's node */
  int fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "open the pty's slave");
  if (fd_send(sock, master, e) < 0) {
    close(fd);
    return err_wrap(e, "hand the pty's master over");
  }
  *slave = fd;
  return 0;
}

static const char *env_path(char *const *env)
{
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], "PATH=", 5) == 0)
      return env[i] + 5;
  return DEFAULT_PATH;
}

static bool executable(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

int init_find_exec(const char *argv0, char *const *env, char **out, err_t **e)
{
  if (!argv0 || !*argv0)
    return err_set(e, ERR_INVALID, 0, "no executable given");
  if (strchr(argv0, '/')) {
    if (!executable(argv0))
      return err_set(e, ERR_INVALID, errno, "executable \"%s\" not found in the container",
                     argv0);
    *out = xstrdup(argv0);
    return 0;
  }
  const char *path = env_path(env);
  cleanup_free char *copy = xstrdup(path);
  char *save = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char *cand = path_join(*dir ? dir : ".", argv0);
    if (executable(cand)) {
      *out = cand;
      return 0;
    }
    free(cand);
  }
  return err_set(e, ERR_INVALID, ENOENT, "executable \"%s\" not found in $PATH (%s)", argv0, path);
}

static int exec_errno_code(int err)
{
  return err == ENOENT || err == EACCES || err == ENOEXEC || err == ENOTDIR || err == ELOOP
             ? ERR_INVALID : err_code_from_errno(err);
}

/* Resolves argv[0] in the container (relative to cwd for "./x"). */
static int find(const struct ctr_spec *s, char *const *argv, char **out, err_t **e)
{
  if (argv[0][0] != '/' && strchr(argv[0], '/') && s->cwd) {
    cleanup_free char *full = path_join(s->cwd, argv[0]);
    if (!executable(full))
      return err_set(e, ERR_INVALID, errno, "executable \"%s\" not found in %s", argv[0], s->cwd);
    *out = xstrdup(argv[0]);
    return 0;
  }
  return init_find_exec(argv[0], s->env, out, e);
}

/* The order is runc's: without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it
 * goes in before the capabilities are dropped (the filter then must allow the few
 * syscalls that follow: setgroups, setresuid, capset, prctl, chdir, execve; the
 * RuntimeDefault profile does); with no_new_privs it goes in last, just before execve,
 * so the fewest syscalls run under it before the program does. */
/* The caller's signal mask and ignored signals survive execve: a monitor that blocks
 * SIGTERM for its signalfd would hand the container a SIGTERM it never sees. */
/* The kernel's struct for rt_sigaction (glibc's differs), enough to set SIG_DFL. */
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

static int reset_signals(err_t **e)
{
  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP)
      continue;
    /* glibc refuses the signals it reserves (32, 33) in signal(), yet an ignore on
     * them is inherited across execve like any other: the raw syscall clears them */
    struct kernel_sigaction dfl = {SIG_DFL, 0, NULL, 0};
    (void)syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
  }
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
    return err_sys(e, errno, "reset the signal mask");
  return 0;
}

static int install_sandbox(const struct sock_fprog *prog, err_t **e)
{
  if (prog && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
    return err_sys(e, errno, "install the sandbox's seccomp filter");
  return 0;
}

int init_exec(const struct ctr_spec *s, char *const *argv, struct seccomp_filter *f,
              const struct sock_fprog *sandbox, err_t **e)
{
  cleanup_free char *path = NULL;
  if (reset_signals(e) < 0 || find(s, argv, &path, e) < 0)
    return -1;
  umask(022);   /* the OCI default; the caller's may be anything */
  if (f && !s->no_new_privs && seccomp_install(f, e) < 0)
    return -1;
  if (!s->no_new_privs && install_sandbox(sandbox, e) < 0)
    return -1;
  if (priv_apply(s, e) < 0)
    return -1;
  if (s->no_new_privs && priv_no_new_privs(e) < 0)
    return -1;
  if (f && s->no_new_privs && seccomp_install(f, e) < 0)
    return -1;
  if (s->no_new_privs && install_sandbox(sandbox, e) < 0)
    return -1;
  if (s->cwd && *s->cwd && chdir(s->cwd) < 0)
    return err_sys(e, errno, "chdir %s", s->cwd);
  /* descriptors the caller forgot to mark close-on-exec must not reach the container */
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0 && errno != ENOSYS && errno != EINVAL)
    return err_sys(e, errno, "close_range");
  static char *const no_env[] = {NULL};
  execve(path, argv, s->env ? s->env : no_env);
  int err = errno;
  return err_set(e, exec_errno_code(err), err, "exec \"%s\": %s", argv[0], strerror(err));
}
