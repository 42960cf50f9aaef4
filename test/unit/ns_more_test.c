/* The executor, continued: cgroup mounts, recursive read-only binds, failures midway,
 * descriptors, oom_score_adj, hugetlb on this host's layout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "ns_fixture.h"
#include "runtimes/cgroup.h"

TestSuite(nsmore, .init = nsf_setup, .fini = nsf_teardown, .timeout = 60);

#define RUN_OK(cmd)                                                                        \
  do {                                                                                     \
    err_t *e_ = NULL;                                                                      \
    nsf_cmd(cmd);                                                                          \
    int rc_ = nsf_run(&e_);                                                                \
    cr_assert_eq(rc_, 0, "rc %d: %s / output: %s", rc_, e_ ? e_->msg : "", nsf.output);    \
  } while (0)

Test(nsmore, cgroup_mount_shows_the_containers_own_cgroup_read_only)
{
  nsf_add_mount("cgroup", "/sys/fs/cgroup", "cgroup", true);
  nsf.s->res.memory_limit = 48 << 20;
  bool v2 = false;
  cleanup_free char *dir = NULL;
  err_t *e = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, "memory", &dir, &v2, &e), 0);
  if (v2)
    RUN_OK("cat /sys/fs/cgroup/memory.max; mkdir /sys/fs/cgroup/x 2>&1 | grep -c Read-only");
  else
    RUN_OK("cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
           "mkdir /sys/fs/cgroup/memory/x 2>&1 | grep -c Read-only; ls /sys/fs/cgroup/pids/pids.max");
  cr_assert(strncmp(nsf.output, "50331648\n1\n", 11) == 0, "%s", nsf.output);
}

Test(nsmore, recursive_readonly_bind_covers_submounts)
{
  cleanup_free char *src = path_join(nsf.dir, "tree");
  cleanup_free char *sub = path_join(src, "sub");
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(sub, 0755, &e), 0);
  cr_assert_eq(mount("tmpfs", sub, "tmpfs", 0, "size=1m"), 0, "%s", strerror(errno));
  nsf_add_mount(src, "/tree", "bind", true);
  nsf.s->mounts[0].recursive_readonly = true;
  RUN_OK("touch /tree/sub/f 2>&1 | grep -c Read-only; touch /tree/f 2>&1 | grep -c Read-only");
  cr_assert_str_eq(nsf.output, "1\n1\n");
}

Test(nsmore, a_missing_bind_source_is_invalid_and_leaves_nothing_behind)
{
  nsf_add_mount("/nonexistent/crisp/src", "/data", "bind", false);
  err_t *e = NULL;
  cr_assert_eq(nsf_start(&e), -1);
  cr_assert_eq(e->code, ERR_INVALID, "%s", e->msg);
  cr_assert(strstr(e->msg, "/nonexistent/crisp/src"), "%s", e->msg);
  err_free(&e);
  cr_assert_not(nsf_mounted_below(nsf.s->rootfs));
  cleanup_free char *dir = NULL;
  cr_assert_eq(cgroup_dir(nsf.s, "pids", &dir, NULL, &e), 0);
  cr_assert_eq(access(dir, F_OK), -1, "%s remains", dir);
}

Test(nsmore, only_stdio_reaches_the_container)
{
  int leak = open("/dev/null", O_RDONLY);   /* no O_CLOEXEC on purpose */
  cr_assert_geq(leak, 3);
  RUN_OK("ls /proc/self/fd | wc -l");
  close(leak);
  cr_assert_str_eq(nsf.output, "4\n", "0, 1, 2 and ls's own directory: %s", nsf.output);
}

Test(nsmore, negative_oom_score_adj_becomes_zero_positive_is_applied)
{
  nsf.s->res.oom_score_adj = -997;
  RUN_OK("cat /proc/self/oom_score_adj");
  cr_assert_str_eq(nsf.output, "0\n");
  nsf.s->res.oom_score_adj = 500;
  RUN_OK("cat /proc/self/oom_score_adj");
  cr_assert_str_eq(nsf.output, "500\n");
}

Test(nsmore, hugepage_limit_lands_where_hugetlb_lives)
{
  if (access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) < 0)
    cr_skip_test("no 2MB huge pages on this kernel");
  struct cg_layout l;
  err_t *e = NULL;
  cr_assert_eq(cg_layout_detect(&l, &e), 0);
  const struct cg_hier *h = cg_find(&l, CG_HUGETLB);
  if (!h) {
    cg_layout_clear(&l);
    cr_skip_test("no hugetlb controller");
  }
  /* on a hybrid host hugetlb may sit on the v2 side: enabling it at the root is a host
   * change, so put back what was there */
  cleanup_free char *before = NULL;
  bool root_v2 = h->v2 && !l.pure_v2;
  if (root_v2)
    cr_assert_eq(cg_read(h->mount, "cgroup.subtree_control", &before, &e), 0);
  nsf.s->res.hugepages = xcalloc(1, sizeof(struct hugepage_limit));
  nsf.s->res.hugepages[0].page_size = xstrdup("2MB");
  nsf.s->res.hugepages[0].limit = 4 << 21;
  nsf.s->res.n_hugepages = 1;
  nsf_cmd("true");
  int rc = nsf_run(&e);
  cleanup_free char *dir = NULL, *got = NULL;
  bool v2 = false;
  if (rc == 0)
    cr_assert_eq(cgroup_dir(nsf.s, "hugetlb", &dir, &v2, &e), 0);
  if (rc == 0)
    cr_assert_eq(cg_read(dir, v2 ? "hugetlb.2MB.max" : "hugetlb.2MB.limit_in_bytes", &got, &e), 0);
  nsf_teardown();   /* the cgroups go, so the controller can be turned off again */
  if (root_v2 && !strstr(before, "hugetlb"))
    (void)cg_write(h->mount, "cgroup.subtree_control", "-hugetlb", NULL);
  cg_layout_clear(&l);
  cr_assert_eq(rc, 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(got, "8388608\n");
}

Test(nsmore, host_wide_sysctls_are_refused)
{
  nsf.s->sysctls = xcalloc(1, sizeof(struct kv));
  nsf.s->sysctls[0].key = xstrdup("vm.swappiness");
  nsf.s->sysctls[0].value = xstrdup("1");
  nsf.s->n_sysctls = 1;
  err_t *e = NULL;
  cr_assert_eq(nsf_start(&e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "vm.swappiness"), "%s", e->msg);
  err_free(&e);
  free(nsf.s->sysctls[0].key);
  nsf.s->sysctls[0].key = xstrdup("net.ipv4.ip_forward");
  nsf.s->ns.net = NS_MODE_NODE;
  cr_assert_eq(nsf_start(&e), -1, "the host's network namespace is the host's");
  err_free(&e);
}

Test(nsmore, the_callers_blocked_and_ignored_signals_do_not_reach_the_container)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGUSR1, SIG_IGN);
  struct ctr_spec *s = nsf.s;   /* no shell: busybox sh ignores SIGQUIT itself */
  for (size_t i = 0; i < s->argc; i++)
    free(s->argv[i]);
  free(s->argv);
  s->argv = nsf_strv(&s->argc, "/bin/grep", "-E", "SigBlk|SigIgn", "/proc/self/status", NULL);
  err_t *e = NULL;
  cr_assert_eq(nsf_run(&e), 0, "%s", e ? e->msg : nsf.output);
  cr_assert_str_eq(nsf.output, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}
