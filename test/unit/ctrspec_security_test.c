/* Tests of cri/ctrspec: capabilities, privileged, seccomp, masked and read-only paths,
 * mounts and devices. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/xalloc.h"
#include "cri/ctrspec_int.h"
#include "ctrspec_fixture.h"

#define CAP(n) (1ull << (n))
enum { C_CHOWN = 0, C_NET_BIND_SERVICE = 10, C_NET_ADMIN = 12, C_SYS_ADMIN = 21, C_SYS_TIME = 25 };

static uint64_t all_caps(void)
{
  unsigned last = 0;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  cr_assert_not_null(f);
  cr_assert_eq(fscanf(f, "%u", &last), 1);
  fclose(f);
  return last >= 63 ? ~0ull : CAP(last + 1) - 1;
}

static void set_caps(char **add, size_t n_add, char **drop, size_t n_drop)
{
  cs.caps.add_capabilities = add, cs.caps.n_add_capabilities = n_add;
  cs.caps.drop_capabilities = drop, cs.caps.n_drop_capabilities = n_drop;
  cs.sc.capabilities = &cs.caps;
}

static uint64_t built_caps(void)
{
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_eq(s->caps.effective, s->caps.bounding);
  cr_assert_eq(s->caps.permitted, s->caps.bounding);
  return s->caps.bounding;
}

/* ---- capabilities ------------------------------------------------------------------ */

Test(ctrspec, cap_names_parse_with_or_without_prefix)
{
  cr_assert_eq(ctrspec_cap_parse("CAP_NET_ADMIN"), 12);
  cr_assert_eq(ctrspec_cap_parse("net_admin"), 12);
  cr_assert_eq(ctrspec_cap_parse("cap_chown"), 0);
  cr_assert_eq(ctrspec_cap_parse("CHECKPOINT_RESTORE"), 40);
  cr_assert_eq(ctrspec_cap_parse("NET_ADMINX"), -1);
  cr_assert_eq(ctrspec_cap_parse("ALL"), -1);
  cr_assert_eq(ctrspec_cap_parse(""), -1);
}

CS_TEST(ctrspec, caps_default_set)
{
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  uint64_t want = 0;
  const char *names[] = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                         "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                         "AUDIT_WRITE"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    want |= CAP(ctrspec_cap_parse(names[i]));
  cr_assert_eq(__builtin_popcountll(want), 14);
  cr_assert_eq(s->caps.bounding, want);
  cr_assert_eq(s->caps.effective, want);
  cr_assert_eq(s->caps.permitted, want);
  cr_assert_eq(s->caps.inheritable, 0, "no inheritable caps (CVE-2022-24769)");
  cr_assert_eq(s->caps.ambient, 0);
  cr_assert_eq(ctrspec_cap_default(), want);
}

CS_TEST(ctrspec, caps_add_and_drop)
{
  char *add[] = {"NET_ADMIN", "cap_sys_time"}, *drop[] = {"CAP_CHOWN"};
  set_caps(add, 2, drop, 1);
  uint64_t c = built_caps();
  cr_assert_eq(c, (ctrspec_cap_default() | CAP(C_NET_ADMIN) | CAP(C_SYS_TIME)) & ~CAP(C_CHOWN));
}

CS_TEST(ctrspec, caps_all_add_then_drop)
{
  char *add[] = {"ALL"}, *drop[] = {"CHOWN"};
  set_caps(add, 1, NULL, 0);
  cr_assert_eq(built_caps(), all_caps());
  set_caps(add, 1, drop, 1);
  cr_assert_eq(built_caps(), all_caps() & ~CAP(C_CHOWN));
}

CS_TEST(ctrspec, caps_all_drop_then_add)
{
  char *drop[] = {"all"}, *add[] = {"NET_BIND_SERVICE"};
  set_caps(NULL, 0, drop, 1);
  cr_assert_eq(built_caps(), 0);
  set_caps(add, 1, drop, 1);
  cr_assert_eq(built_caps(), CAP(C_NET_BIND_SERVICE));
  char *add_all[] = {"ALL", "SYS_ADMIN"};
  set_caps(add_all, 2, drop, 1);
  cr_assert_eq(built_caps(), CAP(C_SYS_ADMIN), "drop ALL applies after add ALL");
}

CS_TEST(ctrspec, caps_unknown_name_is_invalid)
{
  char *add[] = {"NET_ADMIN", "CAP_FLY"};
  set_caps(add, 2, NULL, 0);
  cs_build_fails(ERR_INVALID, "unknown capability \"CAP_FLY\" in add_capabilities");
  char *drop[] = {"teleport"};
  set_caps(NULL, 0, drop, 1);
  cs_build_fails(ERR_INVALID, "unknown capability \"teleport\" in drop_capabilities");
}

CS_TEST(ctrspec, caps_ambient_join_every_set)
{
  char *amb[] = {"NET_BIND_SERVICE"}, *drop[] = {"ALL"};
  set_caps(NULL, 0, drop, 1);
  cs.caps.add_ambient_capabilities = amb, cs.caps.n_add_ambient_capabilities = 1;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  cr_assert_eq(s->caps.bounding, CAP(C_NET_BIND_SERVICE));
  cr_assert_eq(s->caps.permitted, CAP(C_NET_BIND_SERVICE));
  cr_assert_eq(s->caps.inheritable, CAP(C_NET_BIND_SERVICE));
  cr_assert_eq(s->caps.ambient, CAP(C_NET_BIND_SERVICE));
}

/* containerd and Docker (moby#45511) leave the sets to execve's transition, which
 * clears effective and permitted for a non-root uid unless ambient or file caps say
 * otherwise; keeping them lets file capabilities work under no_new_privs. */
CS_TEST(ctrspec, caps_non_root_keeps_sets_for_execve_to_transform)
{
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  uid.value = 1000;
  cs.sc.run_as_user = &uid;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  cr_assert_eq(s->uid, 1000);
  cr_assert_eq(s->caps.bounding, ctrspec_cap_default());
  cr_assert_eq(s->caps.effective, ctrspec_cap_default());
  cr_assert_eq(s->caps.ambient, 0, "nothing survives execve for uid 1000 but file caps");
}

/* ---- privileged, seccomp, masked paths ---------------------------------------------- */

static const char *const k8s_masked[] = {
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap"};
static const char *const k8s_readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                           "/proc/sysrq-trigger"};

CS_TEST(ctrspec, masked_and_readonly_defaults_unless_given)
{
  struct ctr_spec *s = cs_build();
  cr_assert_eq(s->n_masked, 11);
  for (size_t i = 0; i < 11; i++)
    cr_assert_str_eq(s->masked_paths[i], k8s_masked[i]);
  cr_assert_null(s->masked_paths[11]);
  cr_assert_eq(s->n_readonly, 5);
  for (size_t i = 0; i < 5; i++)
    cr_assert_str_eq(s->readonly_paths[i], k8s_readonly[i]);
  char *masked[] = {"/proc/kcore"};
  cs.sc.masked_paths = masked, cs.sc.n_masked_paths = 1;
  s = cs_build();
  cr_assert(s->n_masked == 1 && strcmp(s->masked_paths[0], "/proc/kcore") == 0);
  cr_assert_eq(s->n_readonly, 0, "a given masked list with an empty read-only list means none");
  char *rel[] = {"proc/kcore"};
  cs.sc.masked_paths = rel;
  cs_build_fails(ERR_INVALID, "\"proc/kcore\" is not absolute");
}

CS_TEST(ctrspec, privileged_gets_everything_and_no_confinement)
{
  cs.sc.privileged = true;
  cs.sc.no_new_privs = true;
  cs.sc.seccomp = &cs.seccomp;    /* RuntimeDefault */
  char *drop[] = {"ALL"};
  set_caps(NULL, 0, drop, 1);
  cs_build_fails(ERR_INVALID, "privileged container in a pod that is not privileged");
  cs.pod_sc.privileged = true;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert(s->privileged);
  cr_assert_not(s->no_new_privs);
  cr_assert_eq(s->caps.bounding, all_caps());
  cr_assert_eq(s->caps.effective, all_caps());
  cr_assert_eq(s->seccomp, SECCOMP_UNCONFINED);
  cr_assert_eq(s->n_masked, 0);
  cr_assert_eq(s->n_readonly, 0);
}

CS_TEST(ctrspec, no_new_privs_and_readonly_rootfs_follow_the_context)
{
  struct ctr_spec *s = cs_build();
  cr_assert_not(s->no_new_privs);
  cr_assert_not(s->readonly_rootfs);
  cs.sc.no_new_privs = true;
  cs.sc.readonly_rootfs = true;
  s = cs_build();
  cr_assert(s->no_new_privs);
  cr_assert(s->readonly_rootfs);
}

static void expect_seccomp(enum seccomp_mode mode, const char *profile)
{
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_eq(s->seccomp, mode);
  if (profile)
    cr_assert_str_eq(s->seccomp_profile, profile);
  else
    cr_assert_null(s->seccomp_profile);
}

CS_TEST(ctrspec, seccomp_profiles_map)
{
  expect_seccomp(SECCOMP_UNCONFINED, NULL);
  cs.sc.seccomp = &cs.seccomp;
  expect_seccomp(SECCOMP_RUNTIME_DEFAULT, NULL);
  cs.seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
  expect_seccomp(SECCOMP_UNCONFINED, NULL);
  cs_put(0, "profile.json", "{}");
  char *prof = strdup(cs_path("L0/profile.json"));
  cs.seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
  cs.seccomp.localhost_ref = prof;
  expect_seccomp(SECCOMP_LOCALHOST, prof);
  cs.seccomp.localhost_ref = "profiles/x.json";
  cs_build_fails(ERR_INVALID, "\"profiles/x.json\" is not an absolute path");
  cs.seccomp.localhost_ref = "/nonexistent/x.json";
  cs_build_fails(ERR_INVALID, "/nonexistent/x.json");
  cs.sc.seccomp_profile_path = "unconfined";
  cs_build_fails(ERR_INVALID, "/nonexistent/x.json");   /* the profile message wins */
  free(prof);
}

CS_TEST(ctrspec, seccomp_deprecated_strings)
{
  cs_put(0, "p.json", "{}");
  char *local = xasprintf("localhost/%s", cs_path("L0/p.json"));
  const struct {
    const char *path;
    enum seccomp_mode mode;
  } cases[] = {
      {"", SECCOMP_UNCONFINED},
      {"unconfined", SECCOMP_UNCONFINED},
      {"runtime/default", SECCOMP_RUNTIME_DEFAULT},
      {"docker/default", SECCOMP_RUNTIME_DEFAULT},
      {local, SECCOMP_LOCALHOST},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cs.sc.seccomp_profile_path = (char *)cases[i].path;
    expect_seccomp(cases[i].mode, cases[i].mode == SECCOMP_LOCALHOST ? local + 10 : NULL);
  }
  cs.sc.seccomp_profile_path = "localhost/relative.json";
  cs_build_fails(ERR_INVALID, "not an absolute path");
  cs.sc.seccomp_profile_path = "strict";
  cs_build_fails(ERR_INVALID, "unknown seccomp_profile_path \"strict\"");
  free(local);
}

/* ---- mounts and devices ------------------------------------------------------------- */

static Runtime__V1__Mount mnt[4];
static Runtime__V1__Mount *mnts[4];

static void set_mount(int i, const char *cpath, const char *hpath)
{
  mnt[i] = (Runtime__V1__Mount)RUNTIME__V1__MOUNT__INIT;
  mnt[i].container_path = (char *)cpath;
  mnt[i].host_path = (char *)hpath;
  mnts[i] = &mnt[i];
  cs.cfg.mounts = mnts;
  cs.cfg.n_mounts = (size_t)i + 1;
}

static const struct mount_spec *find_mount(const struct ctr_spec *s, const char *dest)
{
  for (size_t i = 0; i < s->n_mounts; i++)
    if (strcmp(s->mounts[i].destination, dest) == 0)
      return &s->mounts[i];
  return NULL;
}

CS_TEST(ctrspec, mounts_cri_then_pod_files)
{
  set_mount(0, "/data/", cs_dir);
  mnt[0].readonly = true;
  mnt[0].propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
  set_mount(1, "/cache", cs_dir);
  mnt[1].propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_eq(s->n_mounts, 6);
  const char *order[] = {"/data", "/cache", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
                         "/dev/shm"};
  for (int i = 0; i < 6; i++) {
    cr_assert_str_eq(s->mounts[i].destination, order[i]);
    cr_assert_str_eq(s->mounts[i].type, "bind");
  }
  cr_assert(s->mounts[0].readonly && s->mounts[0].propagation == PROP_RSLAVE);
  cr_assert_str_eq(s->mounts[0].source, cs_dir);
  cr_assert(!s->mounts[1].readonly && s->mounts[1].propagation == PROP_RSHARED);
  cr_assert_str_eq(s->mounts[3].source, "/run/crisp/pods/pod1/hosts");
  cr_assert_not(s->mounts[3].readonly, "pod files are writable unless the rootfs is read-only");
  cr_assert_str_eq(s->mounts[5].source, "/run/crisp/pods/pod1/shm");
  cs.sc.readonly_rootfs = true;
  s = cs_build();
  cr_assert(find_mount(s, "/etc/resolv.conf")->readonly);
  cr_assert_not(find_mount(s, "/dev/shm")->readonly);
}

CS_TEST(ctrspec, mounts_user_mount_wins_and_parents_go_first)
{
  set_mount(0, "/etc/hosts", cs_dir);
  set_mount(1, "/var/lib/x/y", cs_dir);
  set_mount(2, "/var", cs_dir);
  cs.nso.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_eq(s->n_mounts, 6);
  const char *order[] = {"/var", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm",
                         "/var/lib/x/y"};
  for (int i = 0; i < 6; i++)
    cr_assert_str_eq(s->mounts[i].destination, order[i], "mounts[%d]", i);
  cr_assert_str_eq(s->mounts[1].source, cs_dir, "the CRI /etc/hosts replaces the pod's");
  cr_assert_str_eq(s->mounts[4].source, "/dev/shm", "host IPC: the host's /dev/shm");
}

CS_TEST(ctrspec, mounts_no_shm_for_a_private_ipc)
{
  cs.nso.ipc = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  cr_assert_null(find_mount(cs_build(), "/dev/shm"), "the executor mounts its own tmpfs");
}

CS_TEST(ctrspec, mounts_refuse_bad_requests)
{
  set_mount(0, "/data", "/nonexistent/crisp-src");
  cs_build_fails(ERR_INVALID, "mount source /nonexistent/crisp-src does not exist");
  set_mount(0, "data", cs_dir);
  cs_build_fails(ERR_INVALID, "mount container_path \"data\" is not absolute");
  set_mount(0, "/data", cs_dir);
  mnt[0].recursive_read_only = true;
  cs_build_fails(ERR_INVALID, "recursive_read_only requires readonly");
  mnt[0].readonly = true;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  cr_assert(s->mounts[0].readonly && s->mounts[0].recursive_readonly);
  set_mount(0, "/..", cs_dir);
  cs_build_fails(ERR_INVALID, "would replace the container's root");
  set_mount(0, "/data", cs_dir);
  mnt[0].propagation = 7;
  cs_build_fails(ERR_INVALID, "unknown propagation 7");
  Runtime__V1__ImageSpec is = RUNTIME__V1__IMAGE_SPEC__INIT;
  is.image = "busybox";
  set_mount(0, "/img", "");
  mnt[0].image = &is;
  cs_build_fails(ERR_UNIMPLEMENTED, "image volumes");
}

CS_TEST(ctrspec, mounts_selinux_relabel_is_ignored)
{
  set_mount(0, "/data", cs_dir);
  mnt[0].selinux_relabel = true;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  cr_assert_str_eq(s->mounts[0].destination, "/data");
}

CS_TEST(ctrspec, devices_map_and_must_exist)
{
  Runtime__V1__Device d = RUNTIME__V1__DEVICE__INIT;
  Runtime__V1__Device *ds[] = {&d};
  d.host_path = "/dev/null";
  d.container_path = "/dev/mynull";
  cs.cfg.devices = ds, cs.cfg.n_devices = 1;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_eq(s->n_devices, 1);
  cr_assert_str_eq(s->devices[0].host_path, "/dev/null");
  cr_assert_str_eq(s->devices[0].container_path, "/dev/mynull");
  cr_assert_str_eq(s->devices[0].permissions, "rwm");
  d.permissions = "rx";
  cs_build_fails(ERR_INVALID, "permissions \"rx\"");
  d.permissions = "r";
  d.host_path = "/dev/crisp-nonexistent";
  cs_build_fails(ERR_INVALID, "device /dev/crisp-nonexistent does not exist");
  d.host_path = "/etc/hostname";
  cs_build_fails(ERR_INVALID, "is not a device node");
}
