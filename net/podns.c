/* podns.c - crispd's side of a pod's namespaces: plan, clone, pin, tear down.
 *
 * Propagation: <dir>/ns is a private bind mount of itself, so a pin made there never
 * propagates into other mount namespaces (on a systemd host / and /run are shared:
 * every service with a mount namespace of its own would otherwise get a copy of every
 * pod's pins). A mount namespace made while the pod lives (a container before its
 * pivot_root, a service started meanwhile) still copies them, and a private copy
 * receives no unmount; teardown reaches it anyway by removing the pin files: since
 * Linux 3.18 unlinking a file detaches the mounts on it in every mount namespace.
 * (ip-netns makes /run/netns shared instead, which predates that kernel behaviour.)
 */
#include "net/podns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "net/mnt.h"
#include "net/podfiles.h"
#include "net/podns_int.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define CHILD_STACK (256 * 1024)
#define PAUSE_RECORD "pause"
#define PAUSE_EXIT_TIMEOUT_MS 5000
#define CHILD_REPORT_TIMEOUT_S 10

/* The pins, in struct pod_ns order. */
static const struct {
  const char *name;
  int flag;
} pins[] = {
  {"net", CLONE_NEWNET},
  {"ipc", CLONE_NEWIPC},
  {"uts", CLONE_NEWUTS},
  {"pid", CLONE_NEWPID},
};
#define N_PINS (sizeof(pins) / sizeof(pins[0]))

static char **pin_slot(struct pod_ns *ns, size_t i)
{
  char **slots[N_PINS] = {&ns->netns_path, &ns->ipcns_path, &ns->utsns_path, &ns->pidns_path};
  return slots[i];
}

void podns_clear(struct pod_ns *ns)
{
  for (size_t i = 0; i < N_PINS; i++)
    free(*pin_slot(ns, i));
  memset(ns, 0, sizeof(*ns));
}

/* --- the plan: everything checked and prepared before anything is touched ---------- */

struct plan {
  const struct pod_ns_opts *o;
  int flags;                            /* CLONE_NEW* */
  struct podns_child_sysctl *sysctls;   /* paths owned */
};

static void plan_free(struct plan *p)
{
  for (size_t i = 0; p->sysctls && i < p->o->n_sysctls; i++)
    free((char *)p->sysctls[i].path);
  free(p->sysctls);
  p->sysctls = NULL;
}

static int plan_sysctl(const struct plan *p, size_t i, err_t **e)
{
  const struct sysctl_kv *kv = &p->o->sysctls[i];
  enum sysctl_ns ns;
  char *path;
  if (sysctl_ns_resolve(kv, &ns, &path, e) < 0)
    return -1;
  bool own = ns == SYSCTL_NS_IPC ? !p->o->host_ipc : !p->o->host_net;
  if (!own) {
    free(path);
    return err_set(e, ERR_INVALID, 0, "sysctl %s: the pod shares the node's %s namespace", kv->name,
                   sysctl_ns_name(ns));
  }
  p->sysctls[i] = (struct podns_child_sysctl){path, kv->value, strlen(kv->value)};
  return 0;
}

static int plan_build(const struct pod_ns_opts *o, struct plan *p, err_t **e)
{
  *p = (struct plan){.o = o};
  if (!o->dir || !*o->dir)
    return err_set(e, ERR_INVALID, 0, "pod namespaces: no pod directory");
  if (!o->host_net && o->hostname && *o->hostname && podfiles_check_hostname(o->hostname, e) < 0)
    return -1;
  if (!o->host_net)
    p->flags |= CLONE_NEWNET | CLONE_NEWUTS;
  if (!o->host_ipc)
    p->flags |= CLONE_NEWIPC;
  if (o->shared_pid)
    p->flags |= CLONE_NEWPID | CLONE_NEWNS;
  p->sysctls = xcalloc(o->n_sysctls + 1, sizeof(*p->sysctls));
  for (size_t i = 0; i < o->n_sysctls; i++)
    if (plan_sysctl(p, i, e) < 0)
      return -1;
  return 0;
}

/* --- the pause record: pid and start time, so a recycled pid is never mistaken ----- */

/* State and start time (clock ticks since boot, fields 3 and 22) of /proc/<pid>/stat;
 * -1 with errno (ENOENT: no such process). */
static int proc_stat(pid_t pid, char *state, unsigned long long *start)
{
  cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  char buf[4096];
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');   /* the command name may hold anything */
  /* after the name: state, then 18 fields, then the start time */
  if (!p || sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
                   state, start) != 2) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static int pause_record(const char *nsdir, pid_t pid, err_t **e)
{
  char state;
  unsigned long long start;
  if (proc_stat(pid, &state, &start) < 0)
    return err_sys(e, errno, "pause process %d", (int)pid);
  cleanup_free char *path = path_join(nsdir, PAUSE_RECORD);
  cleanup_free char *line = xasprintf("%d %llu\n", (int)pid, start);
  return file_write_atomic(path, line, strlen(line), 0600, e);
}

/* 1 and the recorded pid and start time, 0 if there is no record, -1 on error. */
static int pause_read(const char *nsdir, pid_t *pid, unsigned long long *start, err_t **e)
{
  cleanup_free char *path = path_join(nsdir, PAUSE_RECORD);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "open %s", path);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (fd_read_all(fd, 256, &text, &len, e) < 0)
    return err_wrap(e, "%s", path);
  int p;
  if (len == 0 || sscanf(text, "%d %llu", &p, start) != 2 || p <= 0)
    return err_set(e, ERR_INTERNAL, 0, "%s: malformed pause record", path);
  *pid = p;
  return 1;
}

enum pause_state { PAUSE_GONE, PAUSE_ZOMBIE, PAUSE_RUNNING };

/* Whether pid is still the pause process that started at start. */
static enum pause_state pause_state(pid_t pid, unsigned long long start)
{
  char state;
  unsigned long long now;
  if (proc_stat(pid, &state, &now) < 0 || now != start)
    return PAUSE_GONE;
  return state == 'Z' || state == 'X' ? PAUSE_ZOMBIE : PAUSE_RUNNING;
}

/* Kills the recorded pause process if it is still the one we started, waits for it
 * to exit and reaps it when it is our child (after a restart, init reaps it). */
static int pause_stop(const char *nsdir, err_t **e)
{
  pid_t pid;
  unsigned long long start;
  int have = pause_read(nsdir, &pid, &start, e);
  if (have <= 0)
    return have;
  cleanup_close int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0 && errno != ESRCH && errno != EINVAL)   /* EINVAL: pid is now some thread */
    return err_sys(e, errno, "pidfd_open pause process %d", (int)pid);
  if (pidfd >= 0 && pause_state(pid, start) != PAUSE_GONE) {
    if (pidfd_send_signal(pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
      return err_sys(e, errno, "kill pause process %d", (int)pid);
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    int rc;
    while ((rc = poll(&pf, 1, PAUSE_EXIT_TIMEOUT_MS)) < 0 && errno == EINTR)
      ;
    if (rc == 0)
      return err_set(e, ERR_UNAVAILABLE, 0, "pause process %d did not exit", (int)pid);
    siginfo_t si;
    waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG);   /* ECHILD: not ours */
  }
  cleanup_free char *path = path_join(nsdir, PAUSE_RECORD);
  if (unlink(path) < 0 && errno != ENOENT)
    return err_sys(e, errno, "remove %s", path);
  return 0;
}

/* --- mounts ------------------------------------------------------------------------ */

static int ns_dir_mount(const char *nsdir, err_t **e)
{
  if (mount(nsdir, nsdir, NULL, MS_BIND, NULL) < 0)
    return err_sys(e, errno, "bind-mount %s on itself", nsdir);
  if (mount(NULL, nsdir, NULL, MS_PRIVATE, NULL) < 0)
    return err_sys(e, errno, "make %s a private mount", nsdir);
  return 0;
}

static int pin(const char *nsdir, size_t i, pid_t pid, char **out, err_t **e)
{
  cleanup_free char *path = path_join(nsdir, pins[i].name);
  cleanup_free char *src = xasprintf("/proc/%d/ns/%s", (int)pid, pins[i].name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0)
    return err_sys(e, errno, "create %s", path);
  close(fd);
  if (mount(src, path, NULL, MS_BIND, NULL) < 0)
    return err_sys(e, errno, "pin %s namespace: bind-mount %s on %s", pins[i].name, src, path);
  *out = steal(&path);
  return 0;
}

/* --- the child ------------------------------------------------------------------- */

static int child_spawn(const struct plan *p, const char *nsdir, int *sock, pid_t *pid, err_t **e)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return err_sys(e, errno, "socketpair");
  const char *host = p->o->hostname;
  bool set_host = (p->flags & CLONE_NEWUTS) && host && *host;
  struct podns_child_args a = {
    .sock = sv[1],
    .hostname = set_host ? host : NULL,
    .hostname_len = set_host ? strlen(host) : 0,
    .new_net = p->flags & CLONE_NEWNET,
    .sysctls = p->sysctls,
    .n_sysctls = p->o->n_sysctls,
    .pause = p->o->shared_pid,
    .pause_root = nsdir,
  };
  void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  /* bounded wait for the report: a child stuck in the kernel must not hang the caller */
  struct timeval tv = {.tv_sec = CHILD_REPORT_TIMEOUT_S};
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  *pid = stack == MAP_FAILED ? -1 : clone(podns_child_main, (char *)stack + CHILD_STACK, p->flags | SIGCHLD, &a);
  int saved = errno;
  if (stack != MAP_FAILED)
    munmap(stack, CHILD_STACK);   /* the child runs on its own copy */
  close(sv[1]);
  if (*pid < 0) {
    close(sv[0]);
    return err_sys(e, saved, "clone into new namespaces");
  }
  *sock = sv[0];
  return 0;
}

static int report_err(const struct plan *p, const struct podns_report *r, err_t **e)
{
  const char *what = "namespace child";
  switch ((enum podns_step)r->step) {
  case PODNS_OK: break;
  case PODNS_STEP_HOSTNAME: return err_sys(e, r->sys_errno, "set hostname %s", p->o->hostname);
  case PODNS_STEP_LO: return err_sys(e, r->sys_errno, "bring up lo");
  case PODNS_STEP_SYSCTL:
    if (r->index < 0 || (size_t)r->index >= p->o->n_sysctls)
      break;
    return err_set(e, ERR_INVALID, r->sys_errno, "set sysctl %s=\"%s\" in the pod's namespace: %s",
                   p->o->sysctls[r->index].name, p->o->sysctls[r->index].value, strerror(r->sys_errno));
  case PODNS_STEP_PAUSE_SIGNALS: what = "pause process: signals"; break;
  case PODNS_STEP_PAUSE_ROOT: what = "pause process: empty root"; break;
  case PODNS_STEP_PAUSE_PRIVS: what = "pause process: drop privileges"; break;
  }
  return err_sys(e, r->sys_errno, "%s", what);
}

/* Waits for the child's report, records and pins its namespaces, lets it go on. */
static int child_pin(const struct plan *p, const char *nsdir, int sock, pid_t pid, struct pod_ns *ns, err_t **e)
{
  struct podns_report r;
  ssize_t n;
  while ((n = recv(sock, &r, sizeof(r), 0)) < 0 && errno == EINTR)
    ;
  if (n != (ssize_t)sizeof(r))
    return err_set(e, ERR_INTERNAL, n < 0 ? errno : 0, "namespace child %d did not report (%s)", (int)pid,
                   n < 0 ? strerror(errno) : "it died");
  if (r.step != PODNS_OK)
    return report_err(p, &r, e);
  if (p->o->shared_pid && pause_record(nsdir, pid, e) < 0)
    return -1;
  for (size_t i = 0; i < N_PINS; i++)
    if ((p->flags & pins[i].flag) && pin(nsdir, i, pid, pin_slot(ns, i), e) < 0)
      return -1;
  if (send(sock, "g", 1, MSG_NOSIGNAL) != 1)
    return err_sys(e, errno, "namespace child %d", (int)pid);
  if (p->o->shared_pid)
    ns->infra_pid = pid;
  return 0;
}

static void reap(pid_t pid)
{
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

static int build(const struct plan *p, const char *nsdir, struct pod_ns *ns, err_t **e)
{
  if (ns_dir_mount(nsdir, e) < 0)
    return -1;
  cleanup_close int sock = -1;
  pid_t pid = -1;
  if (child_spawn(p, nsdir, &sock, &pid, e) < 0)
    return -1;
  int rc = child_pin(p, nsdir, sock, pid, ns, e);
  if (rc < 0)
    kill(pid, SIGKILL);   /* still our unreaped child: the pid cannot be anyone else's */
  if (rc < 0 || !p->o->shared_pid)
    reap(pid);
  return rc;
}

int podns_create(const struct pod_ns_opts *o, struct pod_ns *out, err_t **e)
{
  struct plan p __attribute__((cleanup(plan_free))) = {.o = o};
  if (plan_build(o, &p, e) < 0)
    return -1;
  if (mkdir_p(o->dir, 0700, e) < 0)
    return -1;
  cleanup_free char *nsdir = path_join(o->dir, "ns");
  if (mkdir(nsdir, 0700) < 0)
    return errno == EEXIST ? err_set(e, ERR_EXISTS, EEXIST, "pod namespaces already exist in %s", o->dir)
                           : err_sys(e, errno, "mkdir %s", nsdir);
  struct pod_ns ns = {0};
  if (p.flags && build(&p, nsdir, &ns, e) < 0) {
    podns_clear(&ns);
    err_t *undo = NULL;
    if (podns_destroy(o->dir, &undo) < 0) {
      log_warn("pod namespaces: cleanup after a failed create", "dir", o->dir, "err", undo->msg, NULL);
      err_free(&undo);
    }
    return -1;
  }
  *out = ns;
  return 0;
}

int podns_destroy(const char *dir, err_t **e)
{
  cleanup_free char *nsdir = path_join(dir, "ns");
  struct stat st;
  if (lstat(nsdir, &st) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "stat %s", nsdir);
  if (pause_stop(nsdir, e) < 0)
    return err_wrap(e, "pod namespaces %s", dir);
  for (size_t i = 0; i < N_PINS; i++) {
    cleanup_free char *path = path_join(nsdir, pins[i].name);
    if (mnt_detach_all(path, e) < 0)
      return -1;
  }
  if (mnt_detach_all(nsdir, e) < 0)
    return -1;
  return rm_rf(nsdir, e);   /* also detaches copies of the pins in other mount namespaces */
}

int podns_repin_net(const char *dir, int nsfd, err_t **e)
{
  cleanup_free char *nsdir = path_join(dir, "ns");
  cleanup_free char *path = path_join(nsdir, pins[0].name);
  struct stat st, own;
  if (stat(nsdir, &st) < 0)
    return errno == ENOENT ? err_set(e, ERR_NOT_FOUND, ENOENT, "no pod namespaces in %s", dir)
                           : err_sys(e, errno, "stat %s", nsdir);
  struct statfs sf;
  if (statfs(path, &sf) == 0 && sf.f_type == NSFS_MAGIC)
    return 0;
  if (ioctl(nsfd, NS_GET_NSTYPE) != CLONE_NEWNET)
    return err_set(e, ERR_INVALID, errno, "%s: descriptor %d is not a network namespace", path, nsfd);
  if (fstat(nsfd, &st) < 0 || stat("/proc/self/ns/net", &own) < 0)
    return err_sys(e, errno, "stat network namespace");
  if (st.st_dev == own.st_dev && st.st_ino == own.st_ino)
    return err_set(e, ERR_PRECONDITION, 0, "%s: not pinning the node's network namespace as the pod's", path);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0);   /* the file may be there, unmounted */
  if (fd < 0)
    return err_sys(e, errno, "create %s", path);
  close(fd);
  cleanup_free char *src = xasprintf("/proc/self/fd/%d", nsfd);
  if (mount(src, path, NULL, MS_BIND, NULL) < 0)
    return err_sys(e, errno, "pin network namespace again: bind-mount on %s", path);
  return 1;
}

static int load_pin(const char *nsdir, size_t i, char **out, err_t **e)
{
  cleanup_free char *path = path_join(nsdir, pins[i].name);
  struct statfs sf;
  if (statfs(path, &sf) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "statfs %s", path);
  if (sf.f_type != NSFS_MAGIC)
    return err_set(e, ERR_PRECONDITION, 0, "%s: the %s namespace pin is not mounted", path, pins[i].name);
  *out = steal(&path);
  return 0;
}

int podns_load(const char *dir, struct pod_ns *out, err_t **e)
{
  cleanup_free char *nsdir = path_join(dir, "ns");
  struct stat st;
  if (stat(nsdir, &st) < 0)
    return errno == ENOENT ? err_set(e, ERR_NOT_FOUND, ENOENT, "no pod namespaces in %s", dir)
                           : err_sys(e, errno, "stat %s", nsdir);
  struct pod_ns ns __attribute__((cleanup(podns_clear))) = {0};
  for (size_t i = 0; i < N_PINS; i++)
    if (load_pin(nsdir, i, pin_slot(&ns, i), e) < 0)
      return -1;
  pid_t pid;
  unsigned long long start;
  int have = pause_read(nsdir, &pid, &start, e);
  if (have < 0)
    return -1;
  if (have && pause_state(pid, start) == PAUSE_RUNNING)
    ns.infra_pid = pid;
  *out = ns;
  memset(&ns, 0, sizeof(ns));
  return 0;
}
