/* ns_start.c - ns_start and ns_cleanup: building a container, runc-style.
 *
 *   caller                     middle (fork)                  init (clone, CLONE_PARENT)
 *   open pod ns paths,
 *   compile seccomp,
 *   create cgroup + limits
 *   open cgroup "tasks" files
 *   fork --------------------> mount overlay on the host
 *                              setns(pid) if joining one
 *                              clone3(NEWNS|NEWPID|...,
 *                                INTO_CGROUP v2) -----------> waits for "go"
 *   <------- pid ------------- _exit
 *   oom_score_adj
 *   "go" -------------------------------------------------> "0" -> each v1 tasks file,
 *                                                            setns pod's net/ipc/uts,
 *                                                            rootfs, pivot_root,
 *   <------- tty: the pty's master (console socket) ------- tty: pty of its own devpts,
 *                                                            hostname, sysctls, masks,
 *                                                            caps, seccomp
 *   <------- EOF (exec'd) or the error, naming the step ----- execve
 *
 * Why a middle process: clone() with namespace flags straight from the caller would run
 * the child on a raw copy of a possibly multi-threaded caller (a lock held by another
 * thread, malloc's for one, stays held forever in the copy). fork() handles that; the
 * middle is single-threaded, so its raw clone is safe, and CLONE_PARENT makes the
 * container a child of the caller, who can then waitpid() it. The middle is also where
 * chdir (for long overlay options) and setns(pid) (which only affects children) are free
 * to happen. The caller must not reap unknown children (waitpid(-1)) meanwhile.
 * Why init joins its cgroup itself: see cgroup_join_open (no global cgroup lock). */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "runtimes/cgroup.h"

struct start_ctx {
  const struct ctr_spec *s;
  struct init_io io;
  int net_fd, ipc_fd, uts_fd, pid_fd;   /* namespaces to join, -1 if none */
  struct seccomp_filter *filter;
  int sync[2];                          /* children -> caller */
  int go[2];                            /* caller -> init */
  struct cg_join cg;                    /* the container's cgroup, for init to join */
  bool in_v2;                           /* init was cloned into the v2 cgroup */
  bool cgroup_made, rootfs_maybe;
  bool cgroupns;                        /* pure cgroup v2: the container gets its own */
  pid_t init_pid;
  const struct ns_trace *trace;         /* NULL: untraced */
};

static void close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* Undoes a failed start: the init process, the overlay, the cgroup. */
static void ctx_abort(struct start_ctx *c)
{
  if (c->init_pid > 0) {
    kill(c->init_pid, SIGKILL);
    while (waitpid(c->init_pid, NULL, 0) < 0 && errno == EINTR)
      ;
    c->init_pid = 0;
  }
  err_t *ignored = NULL;
  if (c->rootfs_maybe)
    (void)rootfs_unmount(c->s, &ignored);
  err_free(&ignored);
  if (c->cgroup_made)
    (void)cgroup_remove(c->s, &ignored);
  err_free(&ignored);
}

static void ctx_release(struct start_ctx *c)
{
  close_fd(&c->net_fd);
  close_fd(&c->ipc_fd);
  close_fd(&c->uts_fd);
  close_fd(&c->pid_fd);
  for (int i = 0; i < 2; i++) {
    close_fd(&c->sync[i]);
    close_fd(&c->go[i]);
  }
  seccomp_filter_free(c->filter);
  c->filter = NULL;
  cgroup_join_close(&c->cg);
}

/* ---- checks and namespaces -------------------------------------------------- */

/* Only namespaced sysctls: written from inside the container by real root, a global one
 * (vm.*, most of kernel.*) would change the host. */
static int check_sysctl(const struct ctr_spec *s, const char *key, err_t **e)
{
  static const char *const ipc_keys[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                         "kernel.sem", "kernel.shmall", "kernel.shmmax",
                                         "kernel.shmmni", "kernel.shm_rmid_forced"};
  bool ipc = strncmp(key, "fs.mqueue.", 10) == 0;
  for (size_t i = 0; i < sizeof(ipc_keys) / sizeof(ipc_keys[0]); i++)
    ipc |= strcmp(key, ipc_keys[i]) == 0;
  if (ipc && s->ns.ipc != NS_MODE_NODE)
    return 0;
  if (strncmp(key, "net.", 4) == 0 && s->ns.net != NS_MODE_NODE)
    return 0;
  if ((strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0) &&
      s->ns.uts == NS_MODE_CONTAINER)
    return 0;
  return err_set(e, ERR_INVALID, 0, "sysctl %s is not in a namespace of this container: it "
                 "would change the host", key);
}

static int check_sysctls(const struct ctr_spec *s, err_t **e)
{
  for (size_t i = 0; i < s->n_sysctls; i++) {
    const char *k = s->sysctls[i].key;
    if (!k || !*k || strstr(k, "..") || k[0] == '.' || strchr(k, '/'))
      return err_set(e, ERR_INVALID, 0, "sysctl \"%s\": bad name", k ? k : "");
    if (check_sysctl(s, k, e) < 0)
      return -1;
  }
  return 0;
}

static int check_spec(const struct ctr_spec *s, err_t **e)
{
  if (!s->argv || !s->argc || !s->argv[0])
    return err_set(e, ERR_INVALID, 0, "no command to run");
  if (!s->rootfs || !s->cgroup_name)
    return err_set(e, ERR_INVALID, 0, "spec without rootfs or cgroup name");
  if (s->ns.net == NS_MODE_TARGET || s->ns.ipc == NS_MODE_TARGET || s->ns.uts == NS_MODE_TARGET)
    return err_set(e, ERR_INVALID, 0, "only the pid namespace can target another container");
  if (s->ns.pid == NS_MODE_TARGET && s->ns.target_pid <= 0)
    return err_set(e, ERR_INVALID, 0, "pid namespace mode target without a target pid");
  return check_sysctls(s, e);
}

static int open_ns(enum ns_mode mode, const char *path, const char *what, int *fd, err_t **e)
{
  *fd = -1;
  if (mode != NS_MODE_POD)
    return 0;
  if (!path || !*path)
    return err_set(e, ERR_INVALID, 0, "%s namespace mode is pod, but no pod namespace is given", what);
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0)
    return err_sys(e, errno, "open the pod's %s namespace %s", what, path);
  return 0;
}

static int open_namespaces(const struct ctr_spec *s, struct start_ctx *c, err_t **e)
{
  if (open_ns(s->ns.net, s->ns.netns_path, "network", &c->net_fd, e) < 0 ||
      open_ns(s->ns.ipc, s->ns.ipcns_path, "ipc", &c->ipc_fd, e) < 0 ||
      open_ns(s->ns.uts, s->ns.utsns_path, "uts", &c->uts_fd, e) < 0 ||
      open_ns(s->ns.pid, s->ns.pidns_path, "pid", &c->pid_fd, e) < 0)
    return -1;
  if (s->ns.pid == NS_MODE_TARGET) {
    cleanup_free char *p = xasprintf("/proc/%d/ns/pid", (int)s->ns.target_pid);
    c->pid_fd = open(p, O_RDONLY | O_CLOEXEC);
    if (c->pid_fd < 0)
      return err_set(e, ERR_NOT_FOUND, errno, "target container process %d is gone",
                     (int)s->ns.target_pid);
  }
  return 0;
}

static int clone_flags(const struct ctr_spec *s)
{
  int f = CLONE_PARENT | CLONE_NEWNS | SIGCHLD;
  if (s->ns.pid == NS_MODE_CONTAINER)
    f |= CLONE_NEWPID;
  if (s->ns.net == NS_MODE_CONTAINER)
    f |= CLONE_NEWNET;
  if (s->ns.ipc == NS_MODE_CONTAINER)
    f |= CLONE_NEWIPC;
  if (s->ns.uts == NS_MODE_CONTAINER)
    f |= CLONE_NEWUTS;
  return f;
}

/* ---- the container's init (child of the clone) ------------------------------- */

static int join(int fd, int type, const char *what, err_t **e)
{
  if (fd >= 0 && setns(fd, type) < 0)
    return err_sys(e, errno, "join the pod's %s namespace", what);
  return 0;
}

static int write_sysctls(const struct ctr_spec *s, err_t **e)
{
  for (size_t i = 0; i < s->n_sysctls; i++) {
    const struct kv *k = &s->sysctls[i];   /* names checked by check_sysctls */
    cleanup_free char *path = xasprintf("/proc/sys/%s", k->key);
    for (char *p = path + 10; *p; p++)
      if (*p == '.')
        *p = '/';
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    const char *v = k->value ? k->value : "";
    if (fd < 0 || write(fd, v, strlen(v)) < 0)
      return err_set(e, ERR_INVALID, errno, "sysctl %s=%s: %s", k->key, v, strerror(errno));
  }
  return 0;
}

/* A tty container's terminal comes from its own devpts, so only once that is our
 * /dev/pts (after pivot_root, before the masks and the read-only root): the master goes
 * to the caller over the console socket (io.in), the slave becomes stdio, the
 * controlling terminal and /dev/console. */
static int console_stdio(struct start_ctx *c, err_t **e)
{
  int slave;
  if (init_console(c->io.in, &slave, e) < 0)
    return err_wrap(e, "the container's terminal");
  close_fd(&c->io.in);
  struct init_io io = {slave, slave, slave};
  if (dev_bind_console(slave, e) < 0 || init_stdio(&io, true, e) < 0)
    return -1;
  return 0;
}

static int init_steps(struct start_ctx *c, err_t **e)
{
  const struct ctr_spec *s = c->s;
  if (join(c->net_fd, CLONE_NEWNET, "network", e) < 0 || join(c->ipc_fd, CLONE_NEWIPC, "ipc", e) < 0 ||
      join(c->uts_fd, CLONE_NEWUTS, "uts", e) < 0 || (!s->tty && init_stdio(&c->io, false, e) < 0))
    return -1;
  /* now that we are in the container's cgroup, it can become our root */
  if (c->cgroupns && unshare(CLONE_NEWCGROUP) < 0)
    return err_sys(e, errno, "new cgroup namespace");
  if (rootfs_setup(s, e) < 0)
    return err_wrap(e, "rootfs");
  if (s->tty && console_stdio(c, e) < 0)
    return -1;
  if (s->ns.uts == NS_MODE_CONTAINER && s->hostname && *s->hostname &&
      sethostname(s->hostname, strlen(s->hostname)) < 0)
    return err_sys(e, errno, "sethostname %s", s->hostname);
  if (write_sysctls(s, e) < 0 || rootfs_finish(s, e) < 0)
    return -1;
  return init_exec(s, s->argv, c->filter, c->trace ? c->trace->filter : NULL, e);
}

__attribute__((noreturn)) static void init_main(struct start_ctx *c)
{
  err_t *err = NULL;
  char go = 0;
  ssize_t n;
  close_fd(&c->go[1]);
  do
    n = read(c->go[0], &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)   /* the caller gave up on us */
    _exit(1);
  close_fd(&c->go[0]);
  if (cgroup_join_self(&c->cg, c->in_v2, &err) == 0)
    (void)init_steps(c, &err);
  sync_fail(c->sync[1], err);
}

/* ---- the middle process ------------------------------------------------------ */

__attribute__((noreturn)) static void middle_main(struct start_ctx *c)
{
  err_t *err = NULL;
  close_fd(&c->sync[0]);
  /* keep our pipe ends clear of 0-2, which init_stdio is about to overwrite */
  int fd = fcntl(c->sync[1], F_DUPFD_CLOEXEC, 10);
  if (fd >= 0) {
    close(c->sync[1]);
    c->sync[1] = fd;
  }
  if (rootfs_mount_overlay(c->s, &err) < 0)
    sync_fail(c->sync[1], err);
  if (c->pid_fd >= 0 && setns(c->pid_fd, CLONE_NEWPID) < 0) {
    err_sys(&err, errno, "join pid namespace");
    sync_fail(c->sync[1], err);
  }
  long pid = cgroup_clone(&c->cg, (unsigned long)clone_flags(c->s), &c->in_v2);
  if (pid == 0)
    init_main(c);
  if (pid < 0) {
    err_sys(&err, errno, "clone the container's init");
    sync_fail(c->sync[1], err);
  }
  sync_send_pid(c->sync[1], (pid_t)pid);
  _exit(0);
}

/* ---- the caller ----------------------------------------------------------------- */

/* A negative score needs CAP_SYS_RESOURCE, which not every host grants (this project's
 * CI VM does not): never ask for one; 0 and a warning instead. */
static int set_oom_score(const struct ctr_spec *s, pid_t pid, err_t **e)
{
  int64_t v = s->res.oom_score_adj;
  if (v < 0) {
    cleanup_free char *asked = xasprintf("%lld", (long long)v);
    log_warn("negative oom_score_adj not applied, using 0", "container", s->id, "asked", asked,
             NULL);
    v = 0;
  }
  cleanup_free char *path = xasprintf("/proc/%d/oom_score_adj", (int)pid);
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  char num[24];
  int len = snprintf(num, sizeof(num), "%lld", (long long)v);
  if (fd < 0 || write(fd, num, (size_t)len) < 0)
    return err_sys(e, errno, "set oom_score_adj %s", num);
  return 0;
}

/* Waits for the middle's report: the init pid, or why there is none. */
static int receive_pid(struct start_ctx *c, pid_t middle, err_t **e)
{
  struct sync_msg m;
  int rc = sync_recv(c->sync[0], &m, e);
  while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
    ;
  if (rc < 0)
    return -1;
  if (rc == 0)
    return err_set(e, ERR_INTERNAL, 0, "the setup process died without a word");
  if (m.kind == SYNC_ERR) {
    err_free(e);
    *e = m.err;
    return -1;
  }
  c->init_pid = m.pid;
  return 0;
}

/* Lets init go and waits for exec (EOF) or its error. */
static int release_init(struct start_ctx *c, err_t **e)
{
  struct sync_msg m;
  char go = 1;
  if (write(c->go[1], &go, 1) != 1)
    return err_sys(e, errno, "start the container's init");
  close_fd(&c->go[1]);
  int rc = sync_recv(c->sync[0], &m, e);
  if (rc < 0)
    return -1;
  if (rc == 1 && m.kind == SYNC_ERR) {
    err_free(e);
    *e = m.err;
    return -1;
  }
  return 0;
}

static int start(struct start_ctx *c, err_t **e)
{
  const struct ctr_spec *s = c->s;
  if (check_spec(s, e) < 0 || open_namespaces(s, c, e) < 0 || seccomp_prepare(s, &c->filter, e) < 0)
    return -1;
  if (s->tty && c->io.in < 0)
    return err_set(e, ERR_INVALID, 0, "a tty container needs a console socket as its stdin");
  if (pipe2(c->sync, O_CLOEXEC) < 0 || pipe2(c->go, O_CLOEXEC) < 0)
    return err_sys(e, errno, "pipe");
  struct cg_layout l;
  if (cg_layout_detect(&l, e) < 0)
    return -1;
  c->cgroupns = l.pure_v2;
  cg_layout_clear(&l);
  if (cgroup_create(s, e) < 0)
    return -1;
  c->cgroup_made = true;
  if (cgroup_join_open(s, &c->cg, e) < 0)
    return -1;
  c->rootfs_maybe = true;
  pid_t middle = fork();
  if (middle < 0)
    return err_sys(e, errno, "fork");
  if (middle == 0)
    middle_main(c);
  close_fd(&c->sync[1]);
  close_fd(&c->go[0]);
  if (receive_pid(c, middle, e) < 0)
    return -1;
  if (set_oom_score(s, c->init_pid, e) < 0)
    return -1;
  if (c->trace && c->trace->seize(c->trace->arg, c->init_pid, e) < 0)
    return err_wrap(e, "trace the container's init");
  return release_init(c, e);
}

int ns_start(const struct ctr_spec *s, const struct ctr_stdio *io, pid_t *pid, err_t **e)
{
  return ns_start_traced(s, io, NULL, pid, e);
}

int ns_start_traced(const struct ctr_spec *s, const struct ctr_stdio *io, const struct ns_trace *t,
                    pid_t *pid, err_t **e)
{
  struct start_ctx c = {
    .s = s, .trace = t, .io = {io ? io->in : -1, io ? io->out : -1, io ? io->err : -1},
    .net_fd = -1, .ipc_fd = -1, .uts_fd = -1, .pid_fd = -1,
    .sync = {-1, -1}, .go = {-1, -1}, .cg = {.v2_dir = -1, .v2_procs = -1},
  };
  int rc = start(&c, e);
  if (rc < 0)
    ctx_abort(&c);
  else
    *pid = c.init_pid;
  ctx_release(&c);
  return rc < 0 ? err_wrap(e, "start container %s", s->name ? s->name : s->id ? s->id : "") : 0;
}

int ns_cleanup(const struct ctr_spec *s, err_t **e)
{
  err_t *second = NULL;
  int rc = rootfs_unmount(s, e);
  if (cgroup_remove(s, rc < 0 ? &second : e) < 0 && rc == 0)
    rc = -1;
  err_free(&second);
  return rc;
}
