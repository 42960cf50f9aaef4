/* tracer.c - the ptrace mechanism: seize a tree, answer seccomp stops, keep every other
 * stop (clone/fork/exec events, signals, group-stops) transparent.
 *
 * Only syscalls the filter marks TRACE stop here; everything else runs natively, so
 * the tracer is idle unless a tracee calls uname/syslog or a refused syscall. The
 * seize options make the tree fail closed: EXITKILL (a dead tracer kills the tracees),
 * TRACESECCOMP, and TRACECLONE/FORK/VFORK so every descendant is traced from birth
 * (an untraced process would get ENOSYS for TRACE syscalls, never the real call).
 *
 * x86_64 only (registers by name); the filter kills any other syscall ABI. */
#include "sandbox/tracer_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "sandbox/kernel_int.h"
#include "sandbox/policy_int.h"

#ifndef __x86_64__
#error "the sandbox tracer reads x86_64 registers"
#endif

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* --- the set of tracees (tids) ---------------------------------------------------- */

static size_t slot_of(const struct sbx_tracer *t, pid_t pid)
{
  return ((size_t)pid * 2654435761u) & (t->set_cap - 1);
}

static void set_grow(struct sbx_tracer *t);

static void set_add(struct sbx_tracer *t, pid_t pid)
{
  if ((t->set_used + 1) * 2 > t->set_cap)
    set_grow(t);
  size_t i = slot_of(t, pid), free_slot = (size_t)-1;
  for (;; i = (i + 1) & (t->set_cap - 1)) {
    if (t->set[i] == pid)
      return;
    if (t->set[i] == -1 && free_slot == (size_t)-1)
      free_slot = i;
    if (t->set[i] == 0)
      break;
  }
  if (free_slot == (size_t)-1) {
    free_slot = i;
    t->set_used++;
  }
  t->set[free_slot] = pid;
}

static void set_grow(struct sbx_tracer *t)
{
  pid_t *old = t->set;
  size_t old_cap = t->set_cap;
  t->set_cap = old_cap ? old_cap * 2 : 64;
  t->set = xcalloc(t->set_cap, sizeof(pid_t));
  t->set_used = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i] > 0)
      set_add(t, old[i]);
  free(old);
}

static bool set_del(struct sbx_tracer *t, pid_t pid)
{
  if (!t->set_cap)
    return false;
  for (size_t i = slot_of(t, pid); t->set[i] != 0; i = (i + 1) & (t->set_cap - 1))
    if (t->set[i] == pid) {
      t->set[i] = -1;
      return true;
    }
  return false;
}

/* --- set-up ---------------------------------------------------------------------- */

static void copy_field(char dst[65], const char *src)
{
  size_t n = strlen(src);
  memcpy(dst, src, n > 64 ? 64 : n);
  dst[n > 64 ? 64 : n] = '\0';
}

int sbx_tracer_new(const struct sbx_tracer_opts *o, const struct sbx_policy *p,
                   struct sbx_tracer **out, err_t **e)
{
  if (kernel_check(&o->kernel, e) < 0)
    return err_wrap(e, "sandbox tracer");
  struct sbx_tracer *t = xcalloc(1, sizeof(*t));
  t->cpu = -1;
  struct sbx_kernel k;
  char machine[65];
  kernel_resolve(&o->kernel, &k, machine);
  copy_field(t->release, k.release);
  copy_field(t->version, k.version);
  copy_field(t->machine, k.machine);
  t->tag = xstrdup(o->tag);
  for (size_t i = 0; i < p->n; i++)
    if (p->rules[i].action == SBX_TRACE ||
        (p->rules[i].action == SBX_REFUSE && !p->refuse_in_kernel))
      t->ntr++;
  t->tr = xcalloc(t->ntr ? t->ntr : 1, sizeof(*t->tr));
  for (size_t i = 0, j = 0; i < p->n; i++) {
    const struct sbx_rule *r = &p->rules[i];
    if (r->action == SBX_TRACE || (r->action == SBX_REFUSE && !p->refuse_in_kernel))
      t->tr[j++] = (struct trace_entry){.nr = r->nr,
                                        .handler = r->action == SBX_TRACE ? r->handler : 0,
                                        .name = policy_syscall_name(r->nr)};
  }
  if (kmsg_open(&t->kmsg, o->kmsg_path, &o->kernel, e) < 0) {
    sbx_tracer_free(t);
    return err_wrap(e, "sandbox tracer");
  }
  *out = t;
  return 0;
}

void sbx_tracer_free(struct sbx_tracer *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->ntr; i++)
    free(t->tr[i].name);
  free(t->tr);
  free(t->set);
  free(t->tag);
  kmsg_close(&t->kmsg);
  free(t);
}

/* CPU placement. A trapped syscall is a round trip tracee -> tracer -> tracee. On this
 * kind of VM an idle vCPU is halted in the host, so waking a task on the other vCPU
 * costs an IPI and a host wake-up: a trap costs 30-70 us when tracer and tracee sit on
 * different vCPUs and 5-6 us when they share one (a plain context switch, no IPI).
 * The scheduler splits them by itself: PTRACE_CONT wakes the tracee while the tracer
 * still runs on its CPU, so that CPU looks busy and the wake-up goes to the idle one;
 * the next trap then wakes the tracer across CPUs. Measured here (20,000 uname calls,
 * tracer pinned, tracee free): 25-70% of traps took ~65 us; with the steps below under
 * 1% did, the rest ~5 us.
 * 1. The tracer pins itself to the CPU it runs on at seize (next to the root it just
 *    forked), so a trap's wake-up of the tracer is always local to that CPU.
 * 2. resume_here narrows a stopped tracee's mask to that CPU around PTRACE_CONT only,
 *    so the wake-up queues it here, then restores the mask at once. Untrapped work
 *    (every allowed syscall, all computation) stays free: the load balancer moves the
 *    tracee as it likes, and the next stop pulls it back for one slow round trip.
 *    Every stop is resumed this way, not only seccomp ones: a fork+exec+wait makes four
 *    round trips (fork event, the child's first stop, exec event, the exit the tracer
 *    reaps before the parent may); fork+exec+wait of a static program measured here
 *    1.15-1.5x native when only seccomp stops were placed, 1.04-1.07x with every stop.
 * A tracee whose own mask excludes the tracer's CPU is left alone. */
static void pin_self(struct sbx_tracer *t, int cpu)
{
  if (cpu < 0 || cpu == t->cpu)
    return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) == 0)
    t->cpu = cpu;
}

int sbx_tracer_seize(struct sbx_tracer *t, pid_t root, err_t **e)
{
  long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE |
              PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC;
  if (ptrace(PTRACE_SEIZE, root, 0, opts) < 0)
    return err_sys(e, errno, "ptrace seize %d", (int)root);
  t->root = root;
  set_add(t, root);
  pin_self(t, sched_getcpu());
  return 0;
}

/* --- stops ----------------------------------------------------------------------- */

static const struct trace_entry *entry_of(const struct sbx_tracer *t, long nr)
{
  size_t lo = 0, hi = t->ntr;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (t->tr[mid].nr == nr)
      return &t->tr[mid];
    if (t->tr[mid].nr < nr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static void read_comm(pid_t pid, char comm[32])
{
  char path[40];
  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  comm[0] = '\0';
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, comm, 31) : -1;
  if (n <= 0) {
    memcpy(comm, "?", 2);
    return;
  }
  comm[n] = '\0';
  for (ssize_t i = 0; i < n; i++)   /* one token on the log line */
    if (comm[i] == '\n' || comm[i] == ' ' || (unsigned char)comm[i] < 0x20)
      comm[i] = comm[i] == '\n' ? '\0' : '_';
}

static long refuse(struct sbx_tracer *t, struct trace_entry *te, pid_t pid)
{
  char comm[32];
  te->count++;
  read_comm(pid, comm);
  kmsg_refusal(&t->kmsg, te->name, comm, pid, t->tag);
  return -EPERM;
}

/* Resumes a stopped tracee (delivering sig) on the tracer's CPU: see "CPU placement".
 * With its mask narrowed to that CPU the wake-up must queue it here; the old mask is
 * back before it runs anywhere else, and a queued task is not moved just because its
 * mask widened. A tracee that changes its own mask in the instant between the two calls
 * gets the old one back: it only affects itself, and only its placement. */
static void resume_here(struct sbx_tracer *t, pid_t pid, int sig)
{
  cpu_set_t old, one;
  if (t->cpu < 0 ||
      sched_getaffinity(pid, sizeof(old), &old) < 0 || !CPU_ISSET(t->cpu, &old) ||
      CPU_COUNT(&old) == 1) {
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
    return;
  }
  CPU_ZERO(&one);
  CPU_SET(t->cpu, &one);
  bool moved = sched_setaffinity(pid, sizeof(one), &one) == 0;
  ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
  if (moved)
    sched_setaffinity(pid, sizeof(old), &old);
}

static void on_seccomp(struct sbx_tracer *t, pid_t pid)
{
  struct user_regs_struct r;
  if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
    return;   /* killed meanwhile (ESRCH): its exit comes next */
  struct trace_entry *te = (struct trace_entry *)entry_of(t, (long)r.orig_rax);
  long ret = -ENOSYS;
  if (te && te->handler == SBX_H_UNAME)
    ret = emulate_uname(t, pid, &r);
  else if (te && te->handler == SBX_H_SYSLOG)
    ret = emulate_syslog(t, pid, &r);
  else if (te)
    ret = refuse(t, te, pid);
  /* nr -1 skips the syscall; rax is then its return value */
  r.orig_rax = (unsigned long long)-1;
  r.rax = (unsigned long long)ret;
  if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0)
    return;
  resume_here(t, pid, 0);
}

static bool is_stop_signal(int sig)
{
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void on_stop(struct sbx_tracer *t, pid_t pid, int status)
{
  int sig = WSTOPSIG(status), ev = (unsigned)status >> 16;
  unsigned long msg = 0;
  switch (ev) {
  case 0:   /* signal-delivery-stop: deliver it as if nobody watched */
    resume_here(t, pid, sig);
    return;
  case PTRACE_EVENT_SECCOMP:
    on_seccomp(t, pid);
    return;
  case PTRACE_EVENT_STOP:
    /* a group-stop stays a stop (LISTEN: stopped, yet SIGCONT and the real parent's
     * wait(WUNTRACED) see it as one); anything else is the new-tracee stop or the
     * notice that a listened stop ended */
    if (is_stop_signal(sig))
      ptrace(PTRACE_LISTEN, pid, 0, 0);
    else
      resume_here(t, pid, 0);
    return;
  case PTRACE_EVENT_FORK:
  case PTRACE_EVENT_VFORK:
  case PTRACE_EVENT_CLONE:
    if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) == 0 && msg)
      set_add(t, (pid_t)msg);
    break;
  case PTRACE_EVENT_EXEC:
    /* a non-leader thread exec'd: it took the leader's pid, its own tid is gone */
    if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) == 0 && (pid_t)msg != pid)
      set_del(t, (pid_t)msg);
    break;
  default:
    break;
  }
  resume_here(t, pid, 0);
}

enum sbx_event sbx_tracer_handle(struct sbx_tracer *t, pid_t pid, int status)
{
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    bool mine = set_del(t, pid);
    if (pid == t->root && t->root > 0)
      return SBX_EV_ROOT_EXIT;
    return mine ? SBX_EV_HANDLED : SBX_EV_NOT_MINE;
  }
  if (!WIFSTOPPED(status))
    return SBX_EV_NOT_MINE;
  /* a stop reaches us only from a tracee (the caller does not ask for WUNTRACED); a
   * new child may report before its parent's fork event */
  set_add(t, pid);
  on_stop(t, pid, status);
  return SBX_EV_HANDLED;
}

unsigned long sbx_tracer_counts(const struct sbx_tracer *t, sbx_count_fn fn, void *arg)
{
  unsigned long total = 0;
  for (size_t i = 0; i < t->ntr; i++)
    if (t->tr[i].count) {
      total += t->tr[i].count;
      if (fn)
        fn(arg, t->tr[i].name, t->tr[i].count);
    }
  return total;
}
