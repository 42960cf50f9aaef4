/* The namespaces executor, end to end: real containers from a busybox rootfs (root only). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/fdpass.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "ns_fixture.h"
#include "runtimes/cgroup.h"

TestSuite(ns, .init = nsf_setup, .fini = nsf_teardown, .timeout = 60);

#define RUN_OK(cmd)                                                                        \
  do {                                                                                     \
    err_t *e_ = NULL;                                                                      \
    nsf_cmd(cmd);                                                                          \
    int rc_ = nsf_run(&e_);                                                                \
    cr_assert_eq(rc_, 0, "rc %d: %s / output: %s", rc_, e_ ? e_->msg : "", nsf.output);    \
  } while (0)

Test(ns, runs_as_pid_1_of_its_own_pid_namespace)
{
  RUN_OK("echo $$");
  cr_assert_str_eq(nsf.output, "1\n");
}

Test(ns, sets_the_hostname_in_its_own_uts_namespace)
{
  RUN_OK("hostname");
  cr_assert_str_eq(nsf.output, "crisp-box\n");
  char host[256];
  gethostname(host, sizeof(host));
  cr_assert_str_neq(host, "crisp-box", "the host's name must not change");
}

Test(ns, effective_capabilities_are_the_specs)
{
  RUN_OK("grep CapEff /proc/self/status");
  uint64_t got = 0;
  cr_assert_eq(sscanf(nsf.output, "CapEff: %" SCNx64, &got), 1, "%s", nsf.output);
  cr_assert_eq(got, nsf.s->caps.effective, "CapEff %" PRIx64 " want %" PRIx64, got,
               nsf.s->caps.effective);
}

Test(ns, runs_as_the_specs_user_and_groups)
{
  nsf.s->uid = 1000;
  nsf.s->gid = 1001;
  nsf.s->groups = xcalloc(2, sizeof(uint32_t));
  nsf.s->groups[0] = 10;
  nsf.s->groups[1] = 20;
  nsf.s->n_groups = 2;
  RUN_OK("id; grep CapEff /proc/self/status");
  cr_assert(strstr(nsf.output, "uid=1000 gid=1001 groups=10,20"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "CapEff:\t0000000000000000"), "non-root has no caps: %s", nsf.output);
}

Test(ns, ambient_capabilities_reach_a_non_root_process)
{
  nsf.s->uid = 1000;
  nsf.s->gid = 1000;
  nsf.s->caps.inheritable = nsf.s->caps.ambient = 1ull << 10;   /* CAP_NET_BIND_SERVICE */
  RUN_OK("grep CapEff /proc/self/status");
  cr_assert(strstr(nsf.output, "CapEff:\t0000000000000400"), "%s", nsf.output);
}

Test(ns, missing_executable_is_invalid_and_leaves_nothing_behind)
{
  err_t *e = NULL;
  free(nsf.s->argv[0]);
  nsf.s->argv[0] = xstrdup("no-such-program");
  cr_assert_eq(nsf_start(&e), -1);
  cr_assert_eq(e->code, ERR_INVALID, "%s", e->msg);
  cr_assert(strstr(e->msg, "no-such-program"), "%s", e->msg);
  err_free(&e);
  cr_assert_not(nsf_mounted_below(nsf.s->rootfs), "rootfs still mounted");
  cleanup_free char *dir = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, "memory", &dir, NULL, &e), 0);
  cr_assert_eq(access(dir, F_OK), -1, "%s still exists", dir);
}

Test(ns, readonly_rootfs_refuses_writes)
{
  nsf.s->readonly_rootfs = true;
  RUN_OK("touch /x 2>&1; echo rc=$?; echo ok > /dev/shm/y && cat /dev/shm/y");
  cr_assert(strstr(nsf.output, "Read-only file system"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "rc=1"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "ok\n"), "tmpfs mounts stay writable: %s", nsf.output);
}

Test(ns, masked_paths_read_empty)
{
  nsf_lower_file("/etc/secret", "topsecret\n");
  nsf_lower_file("/secretdir/file", "hidden\n");
  free(nsf.s->masked_paths[0]);
  nsf.s->masked_paths[0] = xstrdup("/etc/secret");
  free(nsf.s->masked_paths[1]);
  nsf.s->masked_paths[1] = xstrdup("/secretdir");
  RUN_OK("echo [$(cat /etc/secret)] [$(ls /secretdir)] [$(wc -c < /proc/keys)]");
  cr_assert_str_eq(nsf.output, "[] [] [0]\n");
}

Test(ns, readonly_paths_refuse_writes)
{
  free(nsf.s->readonly_paths[0]);
  nsf.s->readonly_paths[0] = xstrdup("/data");
  RUN_OK("touch /data/x 2>&1; touch /tmp/x && echo tmp-ok; "
         "echo 1 > /proc/sys/kernel/domainname 2>&1 || echo sys-refused");
  cr_assert(strstr(nsf.output, "Read-only file system"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "tmp-ok"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "sys-refused"), "%s", nsf.output);
}

Test(ns, bind_mounts_honour_readonly_and_write_through)
{
  cleanup_free char *ro = path_join(nsf.dir, "host-ro");
  cleanup_free char *rw = path_join(nsf.dir, "host-rw");
  cleanup_free char *f = path_join(ro, "file");
  err_t *e = NULL;
  cr_assert_eq(mkdir(ro, 0755), 0);
  cr_assert_eq(mkdir(rw, 0755), 0);
  cr_assert_eq(file_write_atomic(f, "hello\n", 6, 0644, &e), 0);
  nsf_add_mount(ro, "/mnt/ro", "bind", true);
  nsf_add_mount(rw, "/mnt/rw", "bind", false);
  RUN_OK("cat /mnt/ro/file; touch /mnt/ro/y 2>&1; echo hi > /mnt/rw/z");
  cr_assert(strstr(nsf.output, "hello\n"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "Read-only file system"), "%s", nsf.output);
  cleanup_free char *z = path_join(rw, "z");
  cleanup_free char *got = NULL;
  cr_assert_eq(file_read_all(z, 100, &got, NULL, &e), 0, "write reached the host");
  cr_assert_str_eq(got, "hi\n");
}

Test(ns, bind_mount_target_symlink_cannot_escape_the_rootfs)
{
  /* the image points /escape at the host's /tmp: the mount must land inside the rootfs */
  cleanup_free char *link = path_join(nsf.lower, "escape");
  cr_assert_eq(symlink(nsf.dir, link), 0);
  cleanup_free char *src = path_join(nsf.dir, "src");
  cr_assert_eq(mkdir(src, 0755), 0);
  cleanup_free char *target = xasprintf("%s/mnt-here", nsf.dir);
  cleanup_free char *dest = xasprintf("/escape/mnt-here");
  nsf_add_mount(src, dest, "bind", false);
  RUN_OK("echo inside > /escape/mnt-here/f; ls -d /escape/mnt-here");
  cr_assert_eq(access(target, F_OK), -1, "the mount point was created on the host: %s", target);
}

Test(ns, runtime_default_seccomp_refuses_namespaces_mount_and_adjtimex)
{
  RUN_OK("unshare -m true 2>&1; mount -t tmpfs t /tmp 2>&1; adjtimex >/dev/null 2>&1 || "
         "echo adjtimex-refused; grep Seccomp: /proc/self/status; echo still-running");
  cr_assert(strstr(nsf.output, "unshare: unshare(0x20000): Operation not permitted"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "mount: permission denied"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "adjtimex-refused"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "Seccomp:\t2"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "still-running"), "%s", nsf.output);
}

Test(ns, unconfined_container_may_read_the_clock_with_adjtimex)
{
  nsf.s->seccomp = SECCOMP_UNCONFINED;
  RUN_OK("adjtimex >/dev/null && echo adjtimex-ok; grep Seccomp: /proc/self/status");
  cr_assert(strstr(nsf.output, "adjtimex-ok"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "Seccomp:\t0"), "%s", nsf.output);
}

Test(ns, localhost_seccomp_profile_denies_mkdir)
{
  static const char profile[] =
    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\"],"
    " \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\","
    " \"errnoRet\": 1}]}";
  err_t *e = NULL;
  cleanup_free char *path = path_join(nsf.dir, "profile.json");
  cr_assert_eq(file_write_atomic(path, profile, strlen(profile), 0644, &e), 0);
  nsf.s->seccomp = SECCOMP_LOCALHOST;
  nsf.s->seccomp_profile = xstrdup(path);
  RUN_OK("mkdir /tmp/d 2>&1; ls -d /tmp && echo ls-ok");
  cr_assert(strstr(nsf.output, "Operation not permitted"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "ls-ok"), "%s", nsf.output);
}

Test(ns, no_new_privs_is_set_when_asked)
{
  nsf.s->no_new_privs = true;
  RUN_OK("grep NoNewPrivs /proc/self/status");
  cr_assert_str_eq(nsf.output, "NoNewPrivs:\t1\n");
}

Test(ns, sysctls_are_written_in_the_containers_namespaces)
{
  nsf.s->sysctls = xcalloc(1, sizeof(struct kv));
  nsf.s->sysctls[0].key = xstrdup("kernel.shm_rmid_forced");
  nsf.s->sysctls[0].value = xstrdup("1");
  nsf.s->n_sysctls = 1;
  RUN_OK("cat /proc/sys/kernel/shm_rmid_forced");
  cr_assert_str_eq(nsf.output, "1\n");
  cleanup_free char *host = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all("/proc/sys/kernel/shm_rmid_forced", 100, &host, NULL, &e), 0);
  cr_assert_str_eq(host, "0\n", "the host's value must not change");
}

Test(ns, dev_has_the_standard_nodes_links_and_mounts)
{
  RUN_OK("echo x > /dev/null && head -c 3 /dev/zero | wc -c && ls /dev/pts/ptmx && "
         "readlink /dev/stdout && readlink /dev/fd && readlink /dev/ptmx && echo s > /dev/shm/s && "
         "grep -c -E ' /dev/(pts|shm|mqueue) ' /proc/self/mountinfo && "
         "ls /dev/sda 2>/dev/null || echo no-disk");
  cr_assert(strstr(nsf.output, "3\n/dev/pts/ptmx\n/proc/self/fd/1\n/proc/self/fd\npts/ptmx\n3\nno-disk"),
            "%s", nsf.output);
}

Test(ns, spec_devices_appear_and_are_usable)
{
  nsf.s->devices = xcalloc(1, sizeof(struct device_spec));
  nsf.s->devices[0].host_path = xstrdup("/dev/zero");
  nsf.s->devices[0].container_path = xstrdup("/dev/extra/myzero");
  nsf.s->devices[0].permissions = xstrdup("rwm");
  nsf.s->n_devices = 1;
  RUN_OK("head -c 5 /dev/extra/myzero | wc -c");
  cr_assert_str_eq(nsf.output, "5\n");
}

Test(ns, privileged_container_has_all_caps_no_seccomp_and_host_devices)
{
  nsf.s->privileged = true;
  RUN_OK("grep -E 'Seccomp:|CapBnd' /proc/self/status; ls /dev/vda >/dev/null && echo disk; "
         "cat /proc/keys >/dev/null && echo keys-readable");
  cr_assert(strstr(nsf.output, "Seccomp:\t0"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "disk"), "%s", nsf.output);
  cr_assert(strstr(nsf.output, "keys-readable"), "%s", nsf.output);
  uint64_t bnd = 0;
  const char *p = strstr(nsf.output, "CapBnd:");
  cr_assert(p && sscanf(p, "CapBnd: %" SCNx64, &bnd) == 1);
  cr_assert(bnd & (1ull << 21), "CAP_SYS_ADMIN: %s", nsf.output);
}

Test(ns, working_directory_is_created_for_the_user)
{
  free(nsf.s->cwd);
  nsf.s->cwd = xstrdup("/home/app/work");
  nsf.s->uid = 1234;
  nsf.s->gid = 1234;
  RUN_OK("pwd; touch f && stat -c '%u %g' /home/app/work");
  cr_assert_str_eq(nsf.output, "/home/app/work\n1234 1234\n");
}

Test(ns, path_lookup_uses_the_containers_env)
{
  nsf_lower_file("/opt/tools/hello", "#!/bin/sh\necho hello-from-tools\n");
  cleanup_free char *p = path_join(nsf.lower, "opt/tools/hello");
  chmod(p, 0755);
  nsf_cmd("unused");
  free(nsf.s->argv[0]);
  nsf.s->argv[0] = xstrdup("hello");
  nsf.s->argv[1][0] = '\0';
  free(nsf.s->argv[1]);
  free(nsf.s->argv[2]);
  nsf.s->argv[1] = NULL;
  nsf.s->argc = 1;
  free(nsf.s->env[0]);
  nsf.s->env[0] = xstrdup("PATH=/opt/tools:/bin");
  err_t *e = NULL;
  cr_assert_eq(nsf_run(&e), 0, "%s", e ? e->msg : nsf.output);
  cr_assert_str_eq(nsf.output, "hello-from-tools\n");
}

Test(ns, many_layers_mount_past_the_one_page_option_limit)
{
  /* 100 layers of 54-byte absolute paths: 5.4 KiB of lowerdir, more than a page; named
   * relative to their common parent they fit */
  struct ctr_spec *s = nsf.s;
  for (size_t i = 0; i < s->n_lower; i++)
    free(s->lower_dirs[i]);
  free(s->lower_dirs);
  s->n_lower = 101;
  s->lower_dirs = xcalloc(s->n_lower + 1, sizeof(char *));
  for (size_t i = 0; i < 100; i++) {
    s->lower_dirs[i] = xasprintf("%s/l/layer-%03zu-xxxxxxxxxxxxxxxxxxxxxxx", nsf.dir, i);
    cleanup_free char *f = xasprintf("%s/which", s->lower_dirs[i]);
    err_t *e = NULL;
    cr_assert_eq(mkdir_p(s->lower_dirs[i], 0755, &e), 0);
    cleanup_free char *content = xasprintf("layer %zu\n", i);
    cr_assert_eq(file_write_atomic(f, content, strlen(content), 0644, &e), 0);
  }
  s->lower_dirs[100] = xstrdup(nsf.lower);   /* busybox at the bottom */
  RUN_OK("cat /which; ls /bin/sh");
  cr_assert_str_eq(nsf.output, "layer 0\n/bin/sh\n", "the top layer wins");
}

/* Pins new net, uts and ipc namespaces (as net/ does for a pod) under nsf.dir. */
static void pin_pod_namespaces(const char *hostname)
{
  int go[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) < 0 ||
        sethostname(hostname, strlen(hostname)) < 0)
      _exit(1);
    close(go[0]);
    (void)write(go[1], "x", 1);
    (void)read(go[1], &c, 1);
    _exit(0);
  }
  char c;
  cr_assert_eq(read(go[0], &c, 1), 1);
  const char *kinds[] = {"net", "uts", "ipc"};
  char **paths[] = {&nsf.s->ns.netns_path, &nsf.s->ns.utsns_path, &nsf.s->ns.ipcns_path};
  for (int i = 0; i < 3; i++) {
    *paths[i] = xasprintf("%s/pinned-%s", nsf.dir, kinds[i]);
    cleanup_free char *src = xasprintf("/proc/%d/ns/%s", (int)pid, kinds[i]);
    err_t *e = NULL;
    cr_assert_eq(file_write_atomic(*paths[i], "", 0, 0644, &e), 0);
    cr_assert_eq(mount(src, *paths[i], NULL, MS_BIND, NULL), 0, "pin %s: %s", kinds[i], strerror(errno));
  }
  close(go[1]);
  close(go[0]);
  waitpid(pid, NULL, 0);
}

Test(ns, pod_mode_joins_the_pods_pinned_namespaces)
{
  pin_pod_namespaces("the-pod");
  nsf.s->ns.net = nsf.s->ns.uts = nsf.s->ns.ipc = NS_MODE_POD;
  RUN_OK("hostname; stat -L -c %i /proc/self/ns/net");
  struct stat st;
  cr_assert_eq(stat(nsf.s->ns.netns_path, &st), 0);
  cleanup_free char *want = xasprintf("the-pod\n%lu\n", (unsigned long)st.st_ino);
  cr_assert_str_eq(nsf.output, want);
}

Test(ns, node_mode_shares_the_hosts_network_and_sees_a_read_only_sysfs)
{
  nsf.s->ns.net = NS_MODE_NODE;
  RUN_OK("stat -L -c %i /proc/self/ns/net; touch /sys/x 2>&1 | grep -c Read-only");
  struct stat st;
  cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
  cleanup_free char *want = xasprintf("%lu\n1\n", (unsigned long)st.st_ino);
  cr_assert_str_eq(nsf.output, want);
}

/* The pty is made by the container's init in the container's own devpts and its master
 * handed over the console socket: the terminal has a name in there, /dev/console is it. */
static char *run_tty(const char *cmd)
{
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  nsf.s->tty = true;
  nsf_cmd(cmd);
  struct ctr_stdio io = {sv[1], -1, -1};
  err_t *e = NULL;
  cr_assert_eq(ns_start(nsf.s, &io, &nsf.pid, &e), 0, "%s", e ? e->msg : "");
  close(sv[1]);
  int master = -1;
  cr_assert_eq(fd_recv(sv[0], 0, &master, &e), 0, "%s", e ? e->msg : "");
  close(sv[0]);
  struct buf out = {0};
  char chunk[512];
  ssize_t n;
  while ((n = read(master, chunk, sizeof(chunk))) > 0)
    buf_append(&out, chunk, (size_t)n);   /* EIO once the last slave user is gone */
  close(master);
  return buf_steal(&out);
}

Test(ns, a_tty_container_gets_a_pty_of_its_own_devpts_as_terminal_and_console)
{
  cleanup_free char *out = run_tty("tty; ls -1 /dev/pts; [ -t 1 ] && echo is-a-tty; "
                                   "stty size >/dev/null && echo has-ctty; "
                                   "[ \"$(stat -c %t:%T /dev/console)\" = \"$(stat -c %t:%T $(tty))\" ] "
                                   "&& echo console-is-it");
  cr_assert(strncmp(out, "/dev/pts/0\r\n0\r\nptmx\r\n", 21) == 0, "%s", out);
  cr_assert(strstr(out, "is-a-tty\r\n"), "%s", out);
  cr_assert(strstr(out, "has-ctty\r\n"), "%s", out);
  cr_assert(strstr(out, "console-is-it\r\n"), "%s", out);
}

Test(ns, a_tty_container_without_a_console_socket_is_refused)
{
  nsf.s->tty = true;
  nsf_cmd("true");
  struct ctr_stdio io = {-1, -1, -1};
  err_t *e = NULL;
  cr_assert_eq(ns_start(nsf.s, &io, &nsf.pid, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "console socket"), "%s", e->msg);
  err_free(&e);
  nsf.pid = 0;
}

Test(ns, a_console_socket_that_is_gone_fails_the_start_naming_the_pty)
{
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  close(sv[0]);
  nsf.s->tty = true;
  nsf_cmd("true");
  struct ctr_stdio io = {sv[1], -1, -1};
  err_t *e = NULL;
  cr_assert_eq(ns_start(nsf.s, &io, &nsf.pid, &e), -1);
  close(sv[1]);
  cr_assert(strstr(e->msg, "terminal") && strstr(e->msg, "master"), "%s", e->msg);
  err_free(&e);
  nsf.pid = 0;
}

Test(ns, target_mode_shares_another_containers_pid_namespace)
{
  err_t *e = NULL;
  nsf_cmd("echo up; sleep 30");
  cr_assert_eq(nsf_start(&e), 0, "%s", e ? e->msg : "");
  char c;
  cr_assert_eq(read(nsf.out, &c, 1), 1);
  /* a second container, same image, own rootfs and cgroup, in the first one's pid ns */
  cleanup_free char *path = path_join(nsf.dir, "spec-b.json");
  struct ctr_spec *b = NULL;
  cr_assert_eq(spec_write(nsf.s, path, &e), 0);
  cr_assert_eq(spec_read(path, &b, &e), 0);
  const char *sub[] = {"upper-b", "work-b", "rootfs-b"};
  char **fields[] = {&b->upper_dir, &b->work_dir, &b->rootfs};
  for (int i = 0; i < 3; i++) {
    free(*fields[i]);
    *fields[i] = path_join(nsf.dir, sub[i]);
    cr_assert_eq(mkdir(*fields[i], 0755), 0);
  }
  free(b->cgroup_name);
  b->cgroup_name = xstrdup("ctr-b");
  b->ns.pid = NS_MODE_TARGET;
  b->ns.target_pid = nsf.pid;
  free(b->argv[2]);
  b->argv[2] = xstrdup("cat /proc/1/cmdline | tr '\\0' ' '");
  int p[2];
  cr_assert_eq(pipe(p), 0);
  struct ctr_stdio io = {-1, p[1], p[1]};
  pid_t pid = 0;
  int rc = ns_start(b, &io, &pid, &e);
  close(p[1]);
  char out[256] = "";
  if (rc == 0) {
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    waitpid(pid, NULL, 0);
  }
  close(p[0]);
  err_t *e2 = NULL;
  (void)ns_cleanup(b, &e2);
  err_free(&e2);
  spec_free(b);
  cr_assert_eq(rc, 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(out, "sleep 30 ", "pid 1 is the first container's: %s", out);
}
