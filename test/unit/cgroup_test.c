/* cgroup paths, layout detection and the v2 file mapping, without touching the host's
 * cgroups (the v2 files are checked against a fake tree in /tmp). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/cgroup.h"

static void expect_path(const char *parent, const char *name, const char *want)
{
  cleanup_free char *got = NULL;
  err_t *e = NULL;
  cr_assert_eq(cg_rel_path(parent, name, &got, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(got, want);
}

Test(cgroup, cgroupfs_parents_are_plain_paths)
{
  expect_path("/kubepods/besteffort/pod123", "crisp-abc", "kubepods/besteffort/pod123/crisp-abc");
  expect_path("kubepods//burstable/", "c", "kubepods/burstable/c");
  expect_path(NULL, "c", "c");
  expect_path("/", "c", "c");
}

Test(cgroup, systemd_slices_become_nested_directories)
{
  expect_path("kubepods-besteffort-pod123.slice", "crisp-abc",
              "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice/crisp-abc");
  expect_path("kubepods.slice", "c", "kubepods.slice/c");
  expect_path("-.slice", "c", "c");
}

Test(cgroup, paths_that_climb_or_lack_a_name_are_refused)
{
  const char *bad[][2] = {{"/kubepods/../etc", "c"}, {"/k", ".."}, {"/k", "a/b"}, {"/k", ""},
                          {"/k", NULL}, {"a--b.slice", "c"}, {"..", "c"}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cleanup_free char *got = NULL;
    err_t *e = NULL;
    cr_assert_eq(cg_rel_path(bad[i][0], bad[i][1], &got, &e), -1, "%s + %s", bad[i][0], bad[i][1]);
    cr_assert_eq(e->code, ERR_INVALID);
    err_free(&e);
  }
}

static const char hybrid[] =
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
  "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:7 - cgroup cgroup rw,memory\n"
  "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
  "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
  "42 27 0:32 / /mnt/again\\040here rw,relatime - cgroup cgroup rw,memory\n"
  "43 27 0:29 /sub /mnt/sub rw,relatime - cgroup cgroup rw,cpu\n";

Test(cgroup, hybrid_layout_finds_each_v1_controller_and_the_unified_tree)
{
  struct cg_layout l;
  err_t *e = NULL;
  cr_assert_eq(cg_layout_parse(hybrid, &l, &e), 0);
  cr_assert_not(l.pure_v2);
  cr_assert_eq(l.n, 6, "bind mounts and subdirectory mounts are not hierarchies: %zu", l.n);
  cr_assert_str_eq(cg_find(&l, CG_CPU)->mount, "/sys/fs/cgroup/cpu");
  cr_assert_str_eq(cg_find(&l, CG_CPUACCT)->mount, "/sys/fs/cgroup/cpuacct");
  cr_assert_str_eq(cg_find(&l, CG_MEMORY)->mount, "/sys/fs/cgroup/memory");
  cr_assert_str_eq(cg_find(&l, CG_PIDS)->mount, "/sys/fs/cgroup/pids");
  cr_assert_null(cg_find(&l, CG_CPUSET));
  cr_assert_str_eq(cg_v2(&l)->mount, "/sys/fs/cgroup/unified");
  cg_layout_clear(&l);
}

Test(cgroup, pure_v2_layout_is_one_tree_for_everything)
{
  struct cg_layout l;
  err_t *e = NULL;
  cr_assert_eq(cg_layout_parse("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
                               &l, &e), 0);
  cr_assert(l.pure_v2);
  cr_assert_eq(l.n, 1);
  cr_assert_str_eq(cg_find(&l, CG_MEMORY)->mount, "/sys/fs/cgroup");
  cr_assert(cg_find(&l, CG_CPU)->v2);
  cg_layout_clear(&l);
  cr_assert_eq(cg_layout_parse("22 27 0:21 / /proc rw - proc proc rw\n", &l, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  err_free(&e);
}

Test(cgroup, shares_map_to_v2_weights_as_runc_does)
{
  cr_assert_eq(cg2_shares_to_weight(2), 1);
  cr_assert_eq(cg2_shares_to_weight(1024), 39);
  cr_assert_eq(cg2_shares_to_weight(262144), 10000);
  cr_assert_eq(cg2_shares_to_weight(0), 0);
}

/* A fake v2 leaf: the files cg2_apply writes, pre-created (cgroupfs makes them itself). */
static char *fake_leaf(void)
{
  char *dir = xstrdup("/tmp/crisp-cg2-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  const char *files[] = {"cpu.weight", "cpu.max", "cpuset.cpus", "memory.max", "memory.swap.max",
                         "pids.max", "hugetlb.2MB.max", "memory.high"};
  err_t *e = NULL;
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    cleanup_free char *p = path_join(dir, files[i]);
    cr_assert_eq(file_write_atomic(p, "", 0, 0644, &e), 0);
  }
  return dir;
}

static void expect_file(const char *dir, const char *file, const char *want)
{
  cleanup_free char *got = NULL;
  err_t *e = NULL;
  cr_assert_eq(cg_read(dir, file, &got, &e), 0);
  cr_assert_str_eq(got, want, "%s", file);
}

Test(cgroup, v2_files_get_the_v2_spelling_of_each_limit)
{
  cleanup_free char *dir = fake_leaf();
  struct kv unified = {"memory.high", "1G"};
  struct hugepage_limit huge = {"2MB", 4194304};
  struct resources r = {.cpu_period = 100000, .cpu_quota = 50000, .cpu_shares = 1024,
                        .memory_limit = 1 << 20, .memory_swap_limit = 3 << 20,
                        .cpuset_cpus = "0", .pids_limit = -1, .hugepages = &huge,
                        .n_hugepages = 1, .unified = &unified, .n_unified = 1};
  err_t *e = NULL;
  cr_assert_eq(cg2_apply(dir, &r, false, &e), 0, "%s", e ? e->msg : "");
  expect_file(dir, "cpu.max", "50000 100000");
  expect_file(dir, "cpu.weight", "39");
  expect_file(dir, "cpuset.cpus", "0");
  expect_file(dir, "memory.max", "1048576");
  expect_file(dir, "memory.swap.max", "2097152");
  expect_file(dir, "pids.max", "max");
  expect_file(dir, "hugetlb.2MB.max", "4194304");
  expect_file(dir, "memory.high", "1G");
  rm_rf(dir, &e);
}

Test(cgroup, v2_refuses_swap_without_memory_and_odd_unified_keys)
{
  cleanup_free char *dir = fake_leaf();
  err_t *e = NULL;
  struct resources r = {.memory_swap_limit = 1 << 20};
  cr_assert_eq(cg2_apply(dir, &r, false, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  struct kv bad = {"../../etc/passwd", "x"};
  struct resources r2 = {.unified = &bad, .n_unified = 1};
  cr_assert_eq(cg2_apply(dir, &r2, false, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  struct resources quota_only = {.cpu_period = 100000};
  cr_assert_eq(cg2_apply(dir, &quota_only, false, &e), 0);
  expect_file(dir, "cpu.max", "max 100000");
  rm_rf(dir, &e);
}

/* bits set for each check that went wrong */
static int probe_devices(void)
{
  int bad = 0, fd;
  if ((fd = open("/dev/null", O_RDWR)) < 0)
    bad |= 1;
  close(fd);
  if ((fd = open("/dev/zero", O_RDONLY)) < 0)
    bad |= 2;
  close(fd);
  if ((fd = open("/dev/zero", O_WRONLY)) >= 0 || errno != EPERM)
    bad |= 4;
  close(fd);
  if ((fd = open("/dev/full", O_RDONLY)) >= 0 || errno != EPERM)
    bad |= 8;
  close(fd);
  return bad;
}

Test(cgroup, v2_device_program_allows_only_the_listed_devices)
{
  struct cg_layout l;
  err_t *e = NULL;
  if (geteuid() != 0 || cg_layout_detect(&l, &e) < 0 || !cg_v2(&l))
    cr_skip_test("needs root and a cgroup v2 hierarchy");
  cleanup_free char *dir = xasprintf("%s/crisp-devtest-%d", cg_v2(&l)->mount, (int)getpid());
  cg_layout_clear(&l);
  cr_assert_eq(mkdir(dir, 0755), 0, "%s", strerror(errno));
  const char *rules[] = {"c 1:3 rwm", "c 1:5 r"};
  int rc = cg2_devices(dir, rules, 2, &e);
  int status = -1;
  if (rc == 0) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(cg_write(dir, "cgroup.procs", "0", NULL) < 0 ? 100 : probe_devices());
    waitpid(pid, &status, 0);
  }
  rmdir(dir);
  cr_assert_eq(rc, 0, "%s", e ? e->msg : "");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "failed checks: %d", WEXITSTATUS(status));
}

Test(cgroup, bad_device_rules_are_refused)
{
  const char *rules[] = {"x 1:3 rwm"};
  err_t *e = NULL;
  cr_assert_eq(cg2_devices("/nonexistent", rules, 1, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
}
