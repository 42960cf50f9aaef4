/* ns_exec.c - ns_exec: a new process inside a running container.
 *
 * The same two-step shape as ns_start (see there for why): a forked middle process joins
 * the container's v1 cgroups (by writing "0" to "tasks" files opened beforehand: no global
 * cgroup lock, see cgroup_join_open), then its namespaces but the cgroup one (mount last:
 * it replaces root and cwd), and clones the process with CLONE_PARENT straight into the
 * v2 cgroup; the process then joins the cgroup namespace (a process in the container's
 * cgroup namespace may no longer move itself from a host cgroup under nsdelegate).
 * setns(pid) only applies to children, which is the other reason for the middle step.
 * The new process takes the container's user, capabilities, no_new_privs and seccomp
 * filter (a filter is per process tree, so it is loaded again here). */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "runtimes/cgroup.h"

/* Joined in this order: mnt last, since it changes root and cwd. User namespaces are not
 * used by crisp containers. */
static const struct {
  const char *name;
  int type;
} exec_ns[] = {
  {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
  {"cgroup", CLONE_NEWCGROUP}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
};
#define N_NS (sizeof(exec_ns) / sizeof(exec_ns[0]))

struct exec_ctx {
  const struct ctr_spec *s;
  const struct exec_spec *x;
  struct init_io io;
  int ns_fd[N_NS];
  struct seccomp_filter *filter;
  int sync[2];
  int go[2];        /* traced: caller -> child once the tracer holds it */
  struct cg_join cg;
  bool in_v2;       /* the process was cloned into the v2 cgroup */
  pid_t pid;
  const struct ns_trace *trace;   /* NULL: untraced */
};

static bool same_file(int fd, const char *path)
{
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The target's namespaces, minus those we already share (joining our own mount
 * namespace would needlessly reset root and cwd). */
static int open_target_ns(struct exec_ctx *c, pid_t target, err_t **e)
{
  for (size_t i = 0; i < N_NS; i++) {
    cleanup_free char *p = xasprintf("/proc/%d/ns/%s", (int)target, exec_ns[i].name);
    cleanup_free char *mine = xasprintf("/proc/self/ns/%s", exec_ns[i].name);
    c->ns_fd[i] = open(p, O_RDONLY | O_CLOEXEC);
    if (c->ns_fd[i] < 0)
      return errno == ENOENT || errno == ESRCH
                 ? err_set(e, ERR_NOT_FOUND, errno, "container process %d is gone", (int)target)
                 : err_sys(e, errno, "open %s", p);
    if (same_file(c->ns_fd[i], mine)) {
      close(c->ns_fd[i]);
      c->ns_fd[i] = -1;
    }
  }
  return 0;
}

static int set_own_oom_score(const struct ctr_spec *s, err_t **e)
{
  /* never negative: see set_oom_score in ns_start.c */
  long long v = s->res.oom_score_adj > 0 ? (long long)s->res.oom_score_adj : 0;
  char num[24];
  int len = snprintf(num, sizeof(num), "%lld", v);
  cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, num, (size_t)len) < 0)
    return err_sys(e, errno, "set oom_score_adj %s", num);
  return 0;
}

/* A pty of the container's own devpts instance (so `tty` names /dev/pts/N inside):
 * its master goes to the caller over io->in, its slave becomes the stdio. */
static int console_pty(struct init_io *io, err_t **e)
{
  int slave;
  if (init_console(io->in, &slave, e) < 0)
    return err_wrap(e, "the exec'd process's terminal");
  close(io->in);
  io->in = io->out = io->err = slave;
  return 0;
}

static bool is_cgroup_ns(size_t i)
{
  return exec_ns[i].type == CLONE_NEWCGROUP;
}

__attribute__((noreturn)) static void exec_child(struct exec_ctx *c)
{
  err_t *err = NULL;
  struct cg_join v2 = c->cg;
  v2.n = 0;   /* the middle joined the v1 hierarchies */
  if (cgroup_join_self(&v2, c->in_v2, &err) < 0)
    sync_fail(c->sync[1], err);
  for (size_t i = 0; i < N_NS; i++)
    if (is_cgroup_ns(i) && c->ns_fd[i] >= 0 && setns(c->ns_fd[i], exec_ns[i].type) < 0) {
      err_sys(&err, errno, "join the container's %s namespace", exec_ns[i].name);
      sync_fail(c->sync[1], err);
    }
  if (c->trace) {
    char go = 0;
    close(c->go[1]);
    if (read(c->go[0], &go, 1) != 1 || go != 1)
      _exit(1);   /* the caller gave up: nobody waits for a report */
    close(c->go[0]);
  }
  if (c->x->console_socket && console_pty(&c->io, &err) < 0)
    sync_fail(c->sync[1], err);
  if (init_stdio(&c->io, c->x->tty, &err) == 0)
    (void)init_exec(c->s, c->x->argv, c->filter, c->trace ? c->trace->filter : NULL, &err);
  sync_fail(c->sync[1], err);
}

__attribute__((noreturn)) static void exec_middle(struct exec_ctx *c)
{
  err_t *err = NULL;
  close(c->sync[0]);
  int fd = fcntl(c->sync[1], F_DUPFD_CLOEXEC, 10);
  if (fd >= 0) {
    close(c->sync[1]);
    c->sync[1] = fd;
  }
  /* v1 hierarchies now (we are single-threaded), v2 by being cloned into it */
  struct cg_join v1 = c->cg;
  v1.v2_procs = -1;
  if (cgroup_join_self(&v1, true, &err) < 0 || set_own_oom_score(c->s, &err) < 0)
    sync_fail(c->sync[1], err);
  for (size_t i = 0; i < N_NS; i++)
    if (!is_cgroup_ns(i) && c->ns_fd[i] >= 0 && setns(c->ns_fd[i], exec_ns[i].type) < 0) {
      err_sys(&err, errno, "join the container's %s namespace", exec_ns[i].name);
      sync_fail(c->sync[1], err);
    }
  long pid = cgroup_clone(&c->cg, (unsigned long)(CLONE_PARENT | SIGCHLD), &c->in_v2);
  if (pid == 0)
    exec_child(c);
  if (pid < 0) {
    err_sys(&err, errno, "clone");
    sync_fail(c->sync[1], err);
  }
  sync_send_pid(c->sync[1], (pid_t)pid);
  _exit(0);
}

/* First message: the pid (or the middle's error); then EOF (exec'd) or the child's error. */
static int wait_exec(struct exec_ctx *c, pid_t middle, err_t **e)
{
  struct sync_msg m;
  int rc = sync_recv(c->sync[0], &m, e);
  while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
    ;
  if (rc == 0)
    return err_set(e, ERR_INTERNAL, 0, "the exec helper died without a word");
  if (rc == 1 && m.kind == SYNC_PID) {
    c->pid = m.pid;
    if (c->trace) {
      char go = 1;
      if (c->trace->seize(c->trace->arg, c->pid, e) < 0)
        return err_wrap(e, "trace the exec'd process");
      if (write(c->go[1], &go, 1) != 1)
        return err_sys(e, errno, "start the exec'd process");
      close(c->go[1]);
      c->go[1] = -1;
    }
    rc = sync_recv(c->sync[0], &m, e);
    if (rc == 0)
      return 0;
  }
  if (rc == 1 && m.kind == SYNC_ERR) {
    err_free(e);
    *e = m.err;
  } else if (rc == 1) {
    err_set(e, ERR_INTERNAL, 0, "exec helper: unexpected message");
  }
  return -1;
}

static int run_exec(struct exec_ctx *c, pid_t target, err_t **e)
{
  if (!c->x->argv || !c->x->argc || !c->x->argv[0])
    return err_set(e, ERR_INVALID, 0, "no command to run");
  if (open_target_ns(c, target, e) < 0 || seccomp_prepare(c->s, &c->filter, e) < 0 ||
      cgroup_join_open(c->s, &c->cg, e) < 0)
    return -1;
  if (pipe2(c->sync, O_CLOEXEC) < 0 || (c->trace && pipe2(c->go, O_CLOEXEC) < 0))
    return err_sys(e, errno, "pipe");
  pid_t middle = fork();
  if (middle < 0)
    return err_sys(e, errno, "fork");
  if (middle == 0)
    exec_middle(c);
  close(c->sync[1]);
  c->sync[1] = -1;
  if (c->go[0] >= 0) {
    close(c->go[0]);
    c->go[0] = -1;
  }
  return wait_exec(c, middle, e);
}

int ns_exec(const struct ctr_spec *s, pid_t target, const struct exec_spec *x,
            const struct ctr_stdio *io, pid_t *pid, err_t **e)
{
  return ns_exec_traced(s, target, x, io, NULL, pid, e);
}

int ns_exec_traced(const struct ctr_spec *s, pid_t target, const struct exec_spec *x,
                   const struct ctr_stdio *io, const struct ns_trace *t, pid_t *pid, err_t **e)
{
  struct exec_ctx c = {
    .s = s, .x = x, .io = {io ? io->in : -1, io ? io->out : -1, io ? io->err : -1},
    .sync = {-1, -1}, .go = {-1, -1}, .cg = {.v2_dir = -1, .v2_procs = -1}, .trace = t,
  };
  for (size_t i = 0; i < N_NS; i++)
    c.ns_fd[i] = -1;
  int rc = run_exec(&c, target, e);
  if (rc < 0 && c.pid > 0) {
    kill(c.pid, SIGKILL);
    while (waitpid(c.pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  if (rc == 0)
    *pid = c.pid;
  for (size_t i = 0; i < N_NS; i++)
    if (c.ns_fd[i] >= 0)
      close(c.ns_fd[i]);
  for (int i = 0; i < 2; i++) {
    if (c.sync[i] >= 0)
      close(c.sync[i]);
    if (c.go[i] >= 0)
      close(c.go[i]);
  }
  seccomp_filter_free(c.filter);
  cgroup_join_close(&c.cg);
  return rc < 0 ? err_wrap(e, "exec in container %s", s->name ? s->name : s->id ? s->id : "") : 0;
}
