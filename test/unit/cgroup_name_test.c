/* Where each cgroup driver puts a container's cgroup, and which pod cgroup parents it
 * takes (cgroup_name.c). No file system access. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "runtimes/cgroup.h"
#include "runtimes/executor.h"

#define POD "0123abcd"
#define CTR "c0ffee"

static void expect_place(enum cgroup_driver d, const char *pod_parent, const char *want_parent,
                         const char *want_name, const char *want_rel)
{
  cleanup_free char *parent = NULL, *name = NULL, *rel = NULL;
  err_t *e = NULL;
  cr_assert_eq(cgroup_place(d, pod_parent, POD, CTR, &parent, &name, &e), 0, "%s",
               e ? e->msg : "");
  cr_assert_str_eq(parent, want_parent);
  cr_assert_str_eq(name, want_name);
  cr_assert_eq(cg_rel_path(parent, name, &rel, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(rel, want_rel);
}

static void expect_refused(enum cgroup_driver d, const char *pod_parent, const char *const *words)
{
  err_t *e = NULL;
  char *parent = NULL, *name = NULL;
  cr_assert_eq(cgroup_parent_check(d, pod_parent, &e), -1, "%s accepted", pod_parent);
  cr_assert_eq(e->code, ERR_INVALID);
  for (size_t i = 0; words[i]; i++)
    cr_assert(strstr(e->msg, words[i]), "\"%s\" not in: %s", words[i], e->msg);
  err_free(&e);
  cr_assert_eq(cgroup_place(d, pod_parent, POD, CTR, &parent, &name, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert_null(parent);
  cr_assert_null(name);
  err_free(&e);
}

Test(cgroup_name, systemd_containers_are_scopes_under_the_expanded_pod_slice)
{
  expect_place(CGROUP_DRIVER_SYSTEMD, "kubepods-besteffort-pod12_34.slice",
               "kubepods-besteffort-pod12_34.slice", "crisp-" CTR ".scope",
               "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_34.slice/"
               "crisp-" CTR ".scope");
  expect_place(CGROUP_DRIVER_SYSTEMD, "kubepods-pod9.slice", "kubepods-pod9.slice",
               "crisp-" CTR ".scope", "kubepods.slice/kubepods-pod9.slice/crisp-" CTR ".scope");
  expect_place(CGROUP_DRIVER_SYSTEMD, "-.slice", "-.slice", "crisp-" CTR ".scope",
               "crisp-" CTR ".scope");
}

Test(cgroup_name, systemd_pod_without_parent_gets_its_own_slice_under_crisp_slice)
{
  expect_place(CGROUP_DRIVER_SYSTEMD, "", "crisp-" POD ".slice", "crisp-" CTR ".scope",
               "crisp.slice/crisp-" POD ".slice/crisp-" CTR ".scope");
  expect_place(CGROUP_DRIVER_SYSTEMD, NULL, "crisp-" POD ".slice", "crisp-" CTR ".scope",
               "crisp.slice/crisp-" POD ".slice/crisp-" CTR ".scope");
}

Test(cgroup_name, cgroupfs_keeps_paths_and_plain_leaf_names)
{
  expect_place(CGROUP_DRIVER_CGROUPFS, "/kubepods/burstable/pod1", "/kubepods/burstable/pod1",
               "crisp-" CTR, "kubepods/burstable/pod1/crisp-" CTR);
  expect_place(CGROUP_DRIVER_CGROUPFS, "", "/crisp/" POD, "crisp-" CTR, "crisp/" POD "/crisp-" CTR);
  /* a path whose last part happens to end in .slice is still a path */
  expect_place(CGROUP_DRIVER_CGROUPFS, "/system.slice/x.slice", "/system.slice/x.slice",
               "crisp-" CTR, "system.slice/x.slice/crisp-" CTR);
}

Test(cgroup_name, systemd_refuses_a_cgroupfs_path_naming_driver_and_form)
{
  const char *const words[] = {"/kubepods/burstable/podX", "driver is systemd", ".slice",
                               "--cgroup-driver=systemd", NULL};
  expect_refused(CGROUP_DRIVER_SYSTEMD, "/kubepods/burstable/podX", words);
  const char *const plain[] = {"driver is systemd", NULL};
  expect_refused(CGROUP_DRIVER_SYSTEMD, "kubepods", plain);
  expect_refused(CGROUP_DRIVER_SYSTEMD, "kubepods.scope", plain);
  expect_refused(CGROUP_DRIVER_SYSTEMD, "/kubepods.slice", plain);
}

Test(cgroup_name, systemd_refuses_slice_names_systemd_would_refuse)
{
  const char *const words[] = {"slice", NULL};
  const char *bad[] = {"-kubepods.slice", "kubepods-.slice", "kube--pods.slice",
                       "kube pods.slice", "kube@pods.slice", ".slice"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_refused(CGROUP_DRIVER_SYSTEMD, bad[i], words);
  char long_name[300];
  memset(long_name, 'a', sizeof(long_name));
  memcpy(long_name + sizeof(long_name) - 7, ".slice", 7);
  expect_refused(CGROUP_DRIVER_SYSTEMD, long_name, words);
}

Test(cgroup_name, cgroupfs_refuses_a_bare_slice_name_naming_driver_and_form)
{
  const char *const words[] = {"kubepods-besteffort-pod1.slice", "driver is cgroupfs",
                               "/kubepods/burstable/pod<uid>", "--cgroup-driver=cgroupfs", NULL};
  expect_refused(CGROUP_DRIVER_CGROUPFS, "kubepods-besteffort-pod1.slice", words);
}

Test(cgroup_name, parents_that_climb_are_refused_under_both_drivers)
{
  const char *const words[] = {"..", NULL};
  expect_refused(CGROUP_DRIVER_CGROUPFS, "/kubepods/../../etc", words);
  expect_refused(CGROUP_DRIVER_SYSTEMD, "..", words);
  err_t *e = NULL;
  cr_assert_eq(cgroup_parent_check(CGROUP_DRIVER_SYSTEMD, "", &e), 0);
  cr_assert_eq(cgroup_parent_check(CGROUP_DRIVER_CGROUPFS, NULL, &e), 0);
}

Test(cgroup_name, a_stored_slice_parent_resolves_whatever_the_driver)
{
  /* a spec written under systemd keeps its slice parent; cg_rel_path (used by stats,
   * update and removal) expands it even if crispd now runs cgroupfs */
  cleanup_free char *rel = NULL;
  err_t *e = NULL;
  cr_assert_eq(cg_rel_path("a-b.slice", "crisp-1.scope", &rel, &e), 0);
  cr_assert_str_eq(rel, "a.slice/a-b.slice/crisp-1.scope");
}
