/* The child podns_create clones into the pod's new namespaces.
 *
 * It runs in a copy of a multi-threaded crispd, so it makes plain system calls only
 * (no malloc, no stdio, no locks another thread may have held at clone time); the
 * parent prepared every string it uses. With `pause` it stays as the pod's pid 1.
 */
#include "net/podns_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What kubelet gives pod infrastructure: the last thing the OOM killer picks. */
#define PAUSE_OOM_SCORE_ADJ "-998"

static int fail(struct podns_report *r, enum podns_step step, int index)
{
  r->step = step;
  r->sys_errno = errno;
  r->index = index;
  return -1;
}

/* Only the report socket stays open: crispd's listening socket and other pods'
 * descriptors must not live on in a pod's namespaces, least of all in its init. */
static void close_inherited(int keep)
{
  if (keep > 0)
    close_range(0, (unsigned)keep - 1, 0);
  close_range((unsigned)keep + 1, ~0U, 0);
}

static int write_file(const char *path, const char *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = write(fd, data, len);
  int saved = errno;
  close(fd);
  errno = saved;
  if (n >= 0 && (size_t)n != len)
    errno = EIO;
  return n >= 0 && (size_t)n == len ? 0 : -1;
}

/* A new network namespace starts with lo down: localhost would not answer. */
static int lo_up(void)
{
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, "lo", sizeof("lo"));
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int saved = errno;
  close(s);
  errno = saved;
  return rc;
}

static int configure(const struct podns_child_args *a, struct podns_report *r)
{
  if (a->hostname && sethostname(a->hostname, a->hostname_len) < 0)
    return fail(r, PODNS_STEP_HOSTNAME, 0);
  if (a->new_net && lo_up() < 0)
    return fail(r, PODNS_STEP_LO, 0);
  for (size_t i = 0; i < a->n_sysctls; i++) {
    const struct podns_child_sysctl *s = &a->sysctls[i];
    if (write_file(s->path, s->value, s->value_len) < 0)
      return fail(r, PODNS_STEP_SYSCTL, (int)i);
  }
  return 0;
}

static void pause_wake(int sig) { (void)sig; }

static void pause_wait_set(sigset_t *set)
{
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGCHLD);
}

/* The kernel drops a signal to a pid 1 that has no handler for it, blocked or not;
 * so the three signals the pause acts on get a handler (that never runs: they are
 * blocked and taken with sigwaitinfo) and every other one goes back to SIG_DFL,
 * which for an init means ignored. crispd's own handlers must not run here. */
static int pause_signals(void)
{
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP)
      sigaction(s, &dfl, NULL);   /* fails harmlessly for libc's reserved signals */
  struct sigaction wake = {.sa_handler = pause_wake};
  sigset_t set;
  pause_wait_set(&set);
  if (sigaction(SIGTERM, &wake, NULL) < 0 || sigaction(SIGINT, &wake, NULL) < 0 ||
      sigaction(SIGCHLD, &wake, NULL) < 0)
    return -1;
  return sigprocmask(SIG_SETMASK, &set, NULL);
}

/* An empty read-only root in a mount namespace of its own: the pod's containers see
 * this process as pid 1, and /proc/1/root must not lead to the node's filesystem.
 * Dropping the old root also keeps the pause from holding the node's mounts busy. */
static int pause_root(const char *dir)
{
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return -1;
  if (mount("crisp-pause", dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=4k,mode=0555") < 0)
    return -1;
  if (chdir(dir) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
    return -1;
  if (umount2(".", MNT_DETACH) < 0)
    return -1;
  return chdir("/");
}

/* No capability, no way back to any, and no ptrace or /proc/1/mem access for the
 * pod's processes without CAP_SYS_PTRACE (the copy of crispd's memory stays private). */
static int pause_privs(void)
{
  for (int c = 0; c < 64; c++)
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return -1;
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
  memset(d, 0, sizeof(d));
  if (syscall(SYS_capset, &h, d) < 0)
    return -1;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -1;
  return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int pause_prepare(const struct podns_child_args *a, struct podns_report *r)
{
  /* its own session: a ^C or hangup meant for crispd's terminal must not end the pod */
  if (setsid() < 0 || pause_signals() < 0)
    return fail(r, PODNS_STEP_PAUSE_SIGNALS, 0);
  prctl(PR_SET_NAME, "crisp-pause", 0, 0, 0);
  /* best effort: lowering it needs CAP_SYS_RESOURCE, which a confined crispd may lack,
   * and a pause with crispd's score still works */
  write_file("/proc/self/oom_score_adj", PAUSE_OOM_SCORE_ADJ, strlen(PAUSE_OOM_SCORE_ADJ));
  if (pause_root(a->pause_root) < 0)
    return fail(r, PODNS_STEP_PAUSE_ROOT, 0);
  if (pause_privs() < 0)
    return fail(r, PODNS_STEP_PAUSE_PRIVS, 0);
  return 0;
}

__attribute__((noreturn)) static void pause_loop(void)
{
  sigset_t set;
  pause_wait_set(&set);
  for (;;) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGTERM || sig == SIGINT)
      _exit(0);
    if (sig == SIGCHLD)   /* orphans of the pod are re-parented here */
      while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
        ;
  }
}

int podns_child_main(void *arg)
{
  const struct podns_child_args *a = arg;
  struct podns_report r = {PODNS_OK, 0, 0};
  close_inherited(a->sock);
  if (configure(a, &r) == 0 && a->pause)
    pause_prepare(a, &r);
  if (write(a->sock, &r, sizeof(r)) != (ssize_t)sizeof(r) || r.step != PODNS_OK)
    _exit(1);
  char go;
  ssize_t n;
  while ((n = read(a->sock, &go, 1)) < 0 && errno == EINTR)
    ;
  if (n != 1)
    _exit(1);   /* crispd gave up (pinning failed); it kills and reaps us anyway */
  if (!a->pause)
    _exit(0);
  close(a->sock);
  pause_loop();
}
