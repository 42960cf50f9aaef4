/* Pod namespaces: created, configured, pinned, inspected from inside with setns,
 * torn down without a trace. Needs root; skipped otherwise. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "net/podns.h"

/* --- fixtures ---------------------------------------------------------------------- */

static char *top;    /* mkdtemp'd; the pod dir is below it, so mkdir -p is exercised */
static char *pod;

static void setup(void)
{
  if (geteuid() != 0)
    cr_skip_test("needs root (namespaces, mounts)");
  top = xstrdup("/tmp/crisp-podns-XXXXXX");
  cr_assert_not_null(mkdtemp(top));
  pod = path_join(top, "pods/p1");
}

static void teardown(void)
{
  err_t *e = NULL;
  if (pod)
    podns_destroy(pod, &e);
  err_free(&e);
  if (top)
    rm_rf(top, &e);
  err_free(&e);
  free(pod);
  free(top);
  pod = top = NULL;
}

TestSuite(podns, .init = setup, .fini = teardown);

static char *mountinfo_of(const char *pid)
{
  cleanup_free char *path = xasprintf("/proc/%s/mountinfo", pid);
  char *mi = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(path, 1 << 22, &mi, NULL, &e), 0, "%s", path);
  return mi;
}

static bool mounted_under(const char *dir)
{
  cleanup_free char *mi = mountinfo_of("self");
  return strstr(mi, dir) != NULL;
}

static ino_t ino_of(const char *path)
{
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
  return st.st_ino;
}

static bool exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

/* --- looking inside: a forked child joins the pinned namespace and reports -------- */

typedef void (*probe_fn)(struct buf *out, const char *arg);

static void probe_file(struct buf *out, const char *path)
{
  cleanup_free char *s = NULL;
  err_t *e = NULL;
  if (file_read_all(path, 4096, &s, NULL, &e) == 0)
    buf_puts(out, s);
  err_free(&e);
}

static void probe_hostname(struct buf *out, const char *unused)
{
  char h[128] = "";
  gethostname(h, sizeof(h) - 1);
  buf_puts(out, h);
}

/* every interface as "name:up" or "name:down" */
static void probe_links(struct buf *out, const char *unused)
{
  struct if_nameindex *ifs = if_nameindex();
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
    struct ifreq r = {0};
    strncpy(r.ifr_name, i->if_name, IFNAMSIZ - 1);
    bool up = ioctl(s, SIOCGIFFLAGS, &r) == 0 && (r.ifr_flags & IFF_UP);
    buf_printf(out, "%s:%s\n", i->if_name, up ? "up" : "down");
  }
  close(s);
  if_freenameindex(ifs);
}

/* What probe saw from inside the namespace pinned at pin (caller frees). */
static char *in_ns(const char *pin, int nstype, probe_fn probe, const char *arg)
{
  int p[2];
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int fd = open(pin, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, nstype) < 0)
      _exit(1);
    struct buf b = BUF_INIT;
    probe(&b, arg);
    _exit(fd_write_all(p[1], buf_str(&b), b.len, NULL) == 0 ? 0 : 1);
  }
  close(p[1]);
  cleanup_free char *raw = NULL;
  size_t len = 0;
  err_t *e = NULL;
  cr_assert_eq(fd_read_all(p[0], 1 << 16, &raw, &len, &e), 0);
  close(p[0]);
  char *out = xstrndup(raw, len);   /* an empty read's text is not terminated */
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "could not join %s", pin);
  return out;
}

/* --- tests ------------------------------------------------------------------------- */

static const struct sysctl_kv pod_sysctls[] = {
  {"net.ipv4.ping_group_range", "0 4242"},
  {"net/ipv4/ip_unprivileged_port_start", "79"},
  {"kernel.shmmax", "123456789"},
  {"fs.mqueue.msg_max", "77"},
};

Test(podns, pins_net_ipc_uts_with_lo_up_hostname_and_sysctls)
{
  struct pod_ns_opts o = {.dir = pod, .hostname = "web-0", .sysctls = pod_sysctls, .n_sysctls = 4};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *want_net = path_join(pod, "ns/net");
  cr_assert_str_eq(ns.netns_path, want_net);
  cr_assert_not_null(ns.ipcns_path);
  cr_assert_not_null(ns.utsns_path);
  cr_assert_null(ns.pidns_path);
  cr_assert_eq(ns.infra_pid, 0);
  cr_assert_neq(ino_of(ns.netns_path), ino_of("/proc/self/ns/net"), "a new network namespace");
  cr_assert_neq(ino_of(ns.ipcns_path), ino_of("/proc/self/ns/ipc"));

  cleanup_free char *links = in_ns(ns.netns_path, CLONE_NEWNET, probe_links, NULL);
  cr_assert_str_eq(links, "lo:up\n");
  cleanup_free char *host = in_ns(ns.utsns_path, CLONE_NEWUTS, probe_hostname, NULL);
  cr_assert_str_eq(host, "web-0");
  cleanup_free char *ping = in_ns(ns.netns_path, CLONE_NEWNET, probe_file, "/proc/sys/net/ipv4/ping_group_range");
  cr_assert_str_eq(ping, "0\t4242\n");
  cleanup_free char *port = in_ns(ns.netns_path, CLONE_NEWNET, probe_file, "/proc/sys/net/ipv4/ip_unprivileged_port_start");
  cr_assert_str_eq(port, "79\n");
  cleanup_free char *shm = in_ns(ns.ipcns_path, CLONE_NEWIPC, probe_file, "/proc/sys/kernel/shmmax");
  cr_assert_str_eq(shm, "123456789\n");
  cleanup_free char *mq = in_ns(ns.ipcns_path, CLONE_NEWIPC, probe_file, "/proc/sys/fs/mqueue/msg_max");
  cr_assert_str_eq(mq, "77\n");
  cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "the namespace child is reaped");
  cleanup_free char *mi = mountinfo_of("self");
  cleanup_free char *nsdir_mount = xasprintf(" %s/ns ", pod);
  const char *line = strstr(mi, nsdir_mount);
  cr_assert_not_null(line, "ns/ is a mount of its own");
  const char *dash = strstr(line, " - ");
  cr_assert_not_null(dash);
  cleanup_free char *fields = xstrndup(line, (size_t)(dash - line));
  cr_assert(!strstr(fields, "shared:") && !strstr(fields, "master:"), "private propagation: %s", fields);

  cr_assert_eq(podns_destroy(pod, &e), 0, "%s", e ? e->msg : "");
  cr_assert(!mounted_under(top), "no mount left under %s", top);
  cleanup_free char *nsdir = path_join(pod, "ns");
  cr_assert(!exists(nsdir));
  cr_assert_eq(podns_destroy(pod, &e), 0, "destroy twice");
  podns_clear(&ns);
}

Test(podns, host_network_pod_gets_no_net_or_uts_pin)
{
  struct pod_ns_opts o = {.dir = pod, .hostname = "node-a", .host_net = true};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  cr_assert_null(ns.netns_path);
  cr_assert_null(ns.utsns_path);
  cr_assert_not_null(ns.ipcns_path);
  cleanup_free char *net = path_join(pod, "ns/net");
  cleanup_free char *uts = path_join(pod, "ns/uts");
  cr_assert(!exists(net) && !exists(uts));
  char h[128] = "";
  gethostname(h, sizeof(h) - 1);
  cr_assert_str_neq(h, "node-a", "the node's hostname is untouched");
  podns_clear(&ns);
  cr_assert_eq(podns_destroy(pod, &e), 0);
  cr_assert(!mounted_under(top));
}

Test(podns, node_namespaces_only_pins_nothing_but_loads)
{
  struct pod_ns_opts o = {.dir = pod, .host_net = true, .host_ipc = true};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  cr_assert(!ns.netns_path && !ns.ipcns_path && !ns.utsns_path && !ns.pidns_path);
  cr_assert_eq(podns_load(pod, &ns, &e), 0, "created with nothing to pin is still created");
  cr_assert_null(ns.ipcns_path);
  cr_assert_eq(podns_destroy(pod, &e), 0);
  cr_assert_eq(podns_load(pod, &ns, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
}

Test(podns, refuses_sysctls_that_are_not_the_pods_naming_them)
{
  static const struct {
    struct sysctl_kv kv;
    bool host_net, host_ipc;
  } bad[] = {
    {{"kernel.pid_max", "4194304"}, false, false},          /* not namespaced */
    {{"kernel.hostname", "x"}, false, false},               /* the pod's hostname is ours */
    {{"vm.swappiness", "1"}, false, false},
    {{"net.ipv4.ip_forward", "1"}, true, false},            /* host network */
    {{"kernel.domainname", "x"}, true, false},              /* UTS follows the network */
    {{"kernel.shmmax", "1"}, false, true},                  /* host IPC */
    {{"net/../kernel/pid_max", "1"}, false, false},         /* climbs out */
    {{"net.ipv4..ip_forward", "1"}, false, false},
    {{"net.ipv4.ip_forward", "1\n2"}, false, false},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct pod_ns_opts o = {.dir = pod, .host_net = bad[i].host_net, .host_ipc = bad[i].host_ipc,
                            .sysctls = &bad[i].kv, .n_sysctls = 1};
    struct pod_ns ns = {0};
    err_t *e = NULL;
    cr_assert_eq(podns_create(&o, &ns, &e), -1, "%s accepted", bad[i].kv.name);
    cr_assert_eq(e->code, ERR_INVALID, "%s: %s", bad[i].kv.name, e->msg);
    cr_assert(strstr(e->msg, bad[i].kv.name), "%s", e->msg);
    err_free(&e);
    cr_assert(!exists(pod), "refused before anything was made");
  }
}

Test(podns, sysctl_the_kernel_rejects_undoes_everything)
{
  static const struct sysctl_kv kv = {"net.ipv4.no_such_knob", "1"};
  struct pod_ns_opts o = {.dir = pod, .sysctls = &kv, .n_sysctls = 1};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "net.ipv4.no_such_knob"), "%s", e->msg);
  err_free(&e);
  cleanup_free char *nsdir = path_join(pod, "ns");
  cr_assert(!exists(nsdir));
  cr_assert(!mounted_under(top));
  cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "no child left");
}

Test(podns, second_create_is_refused_and_keeps_the_first)
{
  struct pod_ns_opts o = {.dir = pod};
  struct pod_ns ns = {0}, again = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(podns_create(&o, &again, &e), -1);
  cr_assert_eq(e->code, ERR_EXISTS);
  err_free(&e);
  cr_assert_eq(podns_load(pod, &again, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(again.netns_path, ns.netns_path);
  podns_clear(&ns);
  podns_clear(&again);
}

/* A mount namespace made while the pod lives (a systemd service, a container before
 * its pivot_root) copies the pins; destroy must reach those private copies too (by
 * unlinking the pin files), or they keep the pod's network namespace alive. */
Test(podns, destroy_unpins_copies_in_other_mount_namespaces)
{
  struct pod_ns_opts o = {.dir = pod};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  int p[2];
  cr_assert_eq(pipe(p), 0);
  pid_t other = fork();
  if (other == 0) {   /* what systemd does for a service with PrivateTmp= */
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
      _exit(1);
    (void)!write(p[1], "r", 1);
    pause();
    _exit(0);
  }
  close(p[1]);
  char c;
  cr_assert_eq(read(p[0], &c, 1), 1);
  close(p[0]);
  cleanup_free char *pid = xasprintf("%d", (int)other);
  cleanup_free char *before = mountinfo_of(pid);
  cr_assert(strstr(before, ns.netns_path), "the copy holds the pin");
  cr_assert_eq(podns_destroy(pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *after = mountinfo_of(pid);
  kill(other, SIGKILL);
  waitpid(other, NULL, 0);
  cr_assert_null(strstr(after, top), "the other namespace lost the pins too");
  podns_clear(&ns);
}

/* --- shared PID namespace: the pause process ---------------------------------------- */

static bool running(pid_t pid)
{
  cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_free char *s = NULL;
  err_t *e = NULL;
  if (file_read_all(path, 4096, &s, NULL, &e) < 0) {
    err_free(&e);
    return false;
  }
  const char *p = strrchr(s, ')');
  return p && p[2] != 'Z';
}

static bool gone_within(pid_t pid, int ms)
{
  for (int i = 0; i < ms / 10; i++) {
    if (!running(pid))
      return true;
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  return !running(pid);
}

static char *proc_field(pid_t pid, const char *file, const char *key)
{
  cleanup_free char *path = xasprintf("/proc/%d/%s", (int)pid, file);
  cleanup_free char *s = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(path, 1 << 16, &s, NULL, &e), 0);
  if (!key)
    return xstrndup(s, strcspn(s, "\n"));
  const char *l = strstr(s, key);
  cr_assert_not_null(l, "%s in %s", key, path);
  l += strlen(key);
  return xstrndup(l, strcspn(l, "\n"));
}

/* A process that joins the pod's pid namespace leaves an orphan there; returns the
 * orphan's node pid. Its parent is gone at once, so the pause must reap it. */
static pid_t leave_orphan_in(const char *pidns)
{
  int p[2];
  cr_assert_eq(pipe(p), 0);
  pid_t helper = fork();
  if (helper == 0) {
    int fd = open(pidns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWPID) < 0)
      _exit(1);
    if (fork() == 0) {          /* first process in the pod's namespace */
      if (fork() == 0) {        /* the orphan-to-be */
        char self[32] = "";
        ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);   /* node pid */
        if (n > 0)
          (void)!write(p[1], self, (size_t)n);
        close(p[1]);
        nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
        _exit(0);
      }
      _exit(0);
    }
    _exit(0);
  }
  close(p[1]);
  char buf[32] = "";
  cr_assert_gt(read(p[0], buf, sizeof(buf) - 1), 0);
  close(p[0]);
  int st;
  waitpid(helper, &st, 0);
  return (pid_t)atoi(buf);
}

Test(podns, shared_pid_runs_a_pause_as_pid1_that_reaps_and_dies_on_destroy)
{
  struct pod_ns_opts o = {.dir = pod, .hostname = "shared", .shared_pid = true};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  pid_t pause = ns.infra_pid;
  cr_assert_gt(pause, 0);
  cr_assert_not_null(ns.pidns_path);
  cleanup_free char *nspid = proc_field(pause, "status", "NSpid:\t");
  cleanup_free char *want = xasprintf("%d\t1", (int)pause);
  cr_assert_str_eq(nspid, want, "pid 1 in its own namespace");
  cleanup_free char *comm = proc_field(pause, "comm", NULL);
  cr_assert_str_eq(comm, "crisp-pause");
  cleanup_free char *caps = proc_field(pause, "status", "CapEff:\t");
  cr_assert_str_eq(caps, "0000000000000000");
  cleanup_free char *pidns = xasprintf("/proc/%d/ns/pid", (int)pause);
  cleanup_free char *netns = xasprintf("/proc/%d/ns/net", (int)pause);
  cr_assert_eq(ino_of(pidns), ino_of(ns.pidns_path));
  cr_assert_eq(ino_of(netns), ino_of(ns.netns_path), "the pause lives in the pod's network namespace");
  cleanup_free char *pause_pid = xasprintf("%d", (int)pause);
  cleanup_free char *pause_mi = mountinfo_of(pause_pid);
  cr_assert_eq(strchr(pause_mi, '\n') + 1, pause_mi + strlen(pause_mi), "one mount: %s", pause_mi);
  cr_assert(strstr(pause_mi, " / / ro,"), "an empty read-only root: %s", pause_mi);
  cleanup_free char *root = xasprintf("/proc/%d/root", (int)pause);
  cleanup_closedir DIR *d = opendir(root);
  cr_assert_not_null(d);
  for (struct dirent *de; (de = readdir(d));)
    cr_assert(!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."), "root holds %s", de->d_name);

  kill(pause, SIGHUP);
  kill(pause, SIGUSR1);
  nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
  cr_assert(running(pause), "signals other than TERM/INT/KILL are ignored");
  pid_t orphan = leave_orphan_in(ns.pidns_path);
  cr_assert_gt(orphan, 0);
  cr_assert(gone_within(orphan, 3000), "orphan %d reaped by the pause", (int)orphan);

  cr_assert_eq(podns_destroy(pod, &e), 0, "%s", e ? e->msg : "");
  cr_assert(!exists(root), "pause process gone and reaped");
  cr_assert(!mounted_under(top));
  cr_assert_eq(podns_destroy(pod, &e), 0);
  podns_clear(&ns);
}

Test(podns, pause_exits_on_sigterm_and_destroy_reaps_it)
{
  struct pod_ns_opts o = {.dir = pod, .shared_pid = true};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(kill(ns.infra_pid, SIGTERM), 0);
  cr_assert(gone_within(ns.infra_pid, 3000), "SIGTERM ends the pause");
  siginfo_t si = {0};
  cr_assert_eq(waitid(P_PID, (id_t)ns.infra_pid, &si, WEXITED | WNOHANG | WNOWAIT), 0);
  cr_assert_eq(si.si_pid, ns.infra_pid, "a zombie until someone reaps it");
  struct pod_ns loaded = {0};
  cr_assert_eq(podns_load(pod, &loaded, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(loaded.infra_pid, 0, "a dead pause is reported as gone");
  cr_assert_not_null(loaded.pidns_path);
  cr_assert_eq(podns_destroy(pod, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(waitpid(ns.infra_pid, NULL, WNOHANG), -1, "destroy reaped it");
  cr_assert_eq(errno, ECHILD);
  podns_clear(&ns);
  podns_clear(&loaded);
}

/* A crispd restart: the process that created the pod is gone, the pause was
 * re-parented, and another process loads and destroys from the paths alone. */
Test(podns, load_and_destroy_work_from_disk_alone)
{
  cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);   /* so we can reap the pause at the end */
  int p[2];
  cr_assert_eq(pipe(p), 0);
  pid_t creator = fork();
  if (creator == 0) {
    struct pod_ns_opts o = {.dir = pod, .shared_pid = true};
    struct pod_ns ns = {0};
    err_t *e = NULL;
    if (podns_create(&o, &ns, &e) < 0)
      _exit(1);
    (void)!write(p[1], &ns.infra_pid, sizeof(ns.infra_pid));
    _exit(0);
  }
  close(p[1]);
  pid_t pause = 0;
  cr_assert_eq(read(p[0], &pause, sizeof(pause)), (ssize_t)sizeof(pause));
  close(p[0]);
  int st;
  waitpid(creator, &st, 0);

  pid_t restarted = fork();
  if (restarted == 0) {
    struct pod_ns ns = {0};
    err_t *e = NULL;
    if (podns_load(pod, &ns, &e) < 0 || ns.infra_pid != pause || !ns.netns_path || !ns.pidns_path)
      _exit(2);
    _exit(podns_destroy(pod, &e) == 0 ? 0 : 3);
  }
  cr_assert_eq(waitpid(restarted, &st, 0), restarted);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "load/destroy after restart: %d", WEXITSTATUS(st));
  cr_assert(!running(pause), "pause killed by a process that is not its parent");
  cr_assert_eq(waitpid(pause, &st, 0), pause);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  cr_assert(!mounted_under(top));
}

Test(podns, a_lost_net_pin_is_made_again_from_a_descriptor_never_from_the_nodes)
{
  struct pod_ns_opts o = {.dir = pod, .hostname = "web-0"};
  struct pod_ns ns = {0};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&o, &ns, &e), 0, "%s", e ? e->msg : "");
  ino_t net = ino_of(ns.netns_path);
  int held = open(ns.netns_path, O_RDONLY | O_CLOEXEC);   /* as a container in it would */
  cr_assert_geq(held, 0);
  cr_assert_eq(podns_repin_net(pod, held, &e), 0, "still pinned: nothing to do");
  cr_assert_eq(umount2(ns.netns_path, MNT_DETACH), 0);
  cr_assert_eq(unlink(ns.netns_path), 0);
  podns_clear(&ns);
  cr_assert_eq(podns_load(pod, &ns, &e), 0, "%s", e ? e->msg : "");
  cr_assert_null(ns.netns_path, "the pin is gone");

  int node = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  cr_assert_eq(podns_repin_net(pod, node, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION, "%s", e->msg);
  err_free(&e);
  close(node);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cr_assert_eq(podns_repin_net(pod, null, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID, "%s", e->msg);
  err_free(&e);
  close(null);

  cr_assert_eq(podns_repin_net(pod, held, &e), 1, "%s", e ? e->msg : "");
  close(held);
  cr_assert_eq(podns_load(pod, &ns, &e), 0, "%s", e ? e->msg : "");
  cr_assert_not_null(ns.netns_path);
  cr_assert_eq(ino_of(ns.netns_path), net, "the same namespace, pinned again");
  cleanup_free char *links = in_ns(ns.netns_path, CLONE_NEWNET, probe_links, NULL);
  cr_assert_str_eq(links, "lo:up\n");
  podns_clear(&ns);
  cr_assert_eq(podns_destroy(pod, &e), 0, "%s", e ? e->msg : "");
  cr_assert(!mounted_under(top));
  cr_assert_eq(podns_repin_net(pod, 0, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  err_free(&e);
}

Test(podns, destroy_of_a_missing_pod_is_success)
{
  err_t *e = NULL;
  cr_assert_eq(podns_destroy(pod, &e), 0);
  cr_assert_eq(podns_destroy("/nonexistent/crisp/pod", &e), 0);
}

/* --- sysctl names: no root needed ----------------------------------------------------- */

Test(sysctl_ns, maps_both_name_forms_to_the_proc_file_and_namespace)
{
  static const struct {
    const char *name;
    enum sysctl_ns ns;
    const char *path;
  } ok[] = {
    {"net.ipv4.ip_forward", SYSCTL_NS_NET, "/proc/sys/net/ipv4/ip_forward"},
    {"net.ipv4.conf.eth0/100.rp_filter", SYSCTL_NS_NET, "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"},
    {"net/ipv4/conf/eth0.100/rp_filter", SYSCTL_NS_NET, "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"},
    {"kernel.shm_rmid_forced", SYSCTL_NS_IPC, "/proc/sys/kernel/shm_rmid_forced"},
    {"kernel.msgmnb", SYSCTL_NS_IPC, "/proc/sys/kernel/msgmnb"},
    {"kernel.sem", SYSCTL_NS_IPC, "/proc/sys/kernel/sem"},
    {"fs.mqueue.queues_max", SYSCTL_NS_IPC, "/proc/sys/fs/mqueue/queues_max"},
    {"kernel.domainname", SYSCTL_NS_UTS, "/proc/sys/kernel/domainname"},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    struct sysctl_kv kv = {ok[i].name, "1"};
    enum sysctl_ns ns;
    cleanup_free char *path = NULL;
    err_t *e = NULL;
    cr_assert_eq(sysctl_ns_resolve(&kv, &ns, &path, &e), 0, "%s: %s", ok[i].name, e ? e->msg : "");
    cr_assert_eq(ns, ok[i].ns, "%s", ok[i].name);
    cr_assert_str_eq(path, ok[i].path);
  }
}

Test(sysctl_ns, refuses_lookalikes_of_namespaced_names)
{
  const char *bad[] = {"net", "kernel.semmni", "kernel.shm/../../vm/swappiness", "fs.mqueue", "kernel.sem.", "/net/x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sysctl_kv kv = {bad[i], "1"};
    enum sysctl_ns ns;
    char *path = NULL;
    err_t *e = NULL;
    cr_assert_eq(sysctl_ns_resolve(&kv, &ns, &path, &e), -1, "%s accepted as %s", bad[i], path);
    cr_assert_eq(e->code, ERR_INVALID);
    err_free(&e);
  }
}
