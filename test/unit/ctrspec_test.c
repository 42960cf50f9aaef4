/* Tests of cri/ctrspec: argv, env, cwd, users and groups from image layers, identity,
 * rootfs, namespaces, cgroup, resources and the log path. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cri/ctrspec_int.h"
#include "ctrspec_fixture.h"

/* ---- argv ------------------------------------------------------------------------- */

struct argv_case {
  const char *name;
  char *command[3];
  char *args[3];
  const char *want;    /* argv joined by ' ' */
};

static char *joined(char **v)
{
  size_t len = 1;
  for (char **p = v; *p; p++)
    len += strlen(*p) + 1;
  char *s = calloc(1, len);
  for (char **p = v; *p; p++) {
    if (p != v)
      strncat(s, " ", len - strlen(s) - 1);
    strncat(s, *p, len - strlen(s) - 1);
  }
  return s;
}

static size_t strv_len(char *const *v)
{
  size_t n = 0;
  while (v[n])
    n++;
  return n;
}

Test(ctrspec, argv_follows_kubernetes_command_and_args_rules)
{
  static char *ep[] = {"/bin/entry", NULL}, *cmd[] = {"serve", "--port=80", NULL};
  struct image_config ic = {.entrypoint = {ep, 1}, .cmd = {cmd, 2}};
  const struct argv_case cases[] = {
      {"neither: entrypoint + cmd", {NULL}, {NULL}, "/bin/entry serve --port=80"},
      {"command: drops the image cmd", {"/bin/sh", "-c", NULL}, {NULL}, "/bin/sh -c"},
      {"args: replace the cmd", {NULL}, {"run", NULL}, "/bin/entry run"},
      {"both: command + args", {"/bin/sh", NULL}, {"-c", "date", NULL}, "/bin/sh -c date"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct argv_case *c = &cases[i];
    char **argv = NULL;
    size_t argc = 0;
    err_t *e = NULL;
    cr_assert_eq(ctrspec_argv(c->command, strv_len(c->command), c->args, strv_len(c->args), &ic,
                              &argv, &argc, &e),
                 0, "%s", c->name);
    char *got = joined(argv);
    cr_expect_str_eq(got, c->want, "%s", c->name);
    cr_expect_eq(argc, strv_len(argv), "%s", c->name);
    free(got);
    ctrspec_strv_free(argv);
  }
}

Test(ctrspec, argv_empty_is_invalid)
{
  static char *blank[] = {"", NULL};
  struct image_config none = {0}, blank_ep = {.entrypoint = {blank, 1}};
  const struct image_config *images[] = {&none, &blank_ep, NULL};
  for (int i = 0; i < 3; i++) {
    char **argv = NULL;
    size_t argc = 0;
    err_t *e = NULL;
    cr_assert_eq(ctrspec_argv(NULL, 0, NULL, 0, images[i], &argv, &argc, &e), -1);
    cr_assert_eq(e->code, ERR_INVALID);
    cr_assert(strstr(e->msg, "no command"), "%s", e->msg);
    cr_assert_null(argv);
    err_free(&e);
  }
}

Test(ctrspec, argv_ignores_an_entrypoint_of_one_empty_string)
{
  static char *blank[] = {"", NULL}, *cmd[] = {"/bin/sh", NULL};
  struct image_config ic = {.entrypoint = {blank, 1}, .cmd = {cmd, 1}};
  char **argv = NULL;
  size_t argc = 0;
  err_t *e = NULL;
  cr_assert_eq(ctrspec_argv(NULL, 0, NULL, 0, &ic, &argv, &argc, &e), 0);
  cr_assert_eq(argc, 1);
  cr_assert_str_eq(argv[0], "/bin/sh");
  ctrspec_strv_free(argv);
}

/* ---- env and cwd ------------------------------------------------------------------- */

static const char *env_get(const struct ctr_spec *s, const char *key)
{
  size_t kl = strlen(key);
  for (size_t i = 0; i < s->n_env; i++)
    if (strncmp(s->env[i], key, kl) == 0 && s->env[i][kl] == '=')
      return s->env[i] + kl + 1;
  return NULL;
}

CS_TEST(ctrspec, env_merges_image_then_cri_later_wins)
{
  Runtime__V1__KeyValue a = RUNTIME__V1__KEY_VALUE__INIT, b = RUNTIME__V1__KEY_VALUE__INIT,
                        c = RUNTIME__V1__KEY_VALUE__INIT;
  a.key = "LANG", a.value = "en_US";
  b.key = "MODE", b.value = "one";
  c.key = "MODE", c.value = "two=2";
  Runtime__V1__KeyValue *envs[] = {&a, &b, &c};
  cs.cfg.envs = envs, cs.cfg.n_envs = 3;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err->msg);
  cr_assert_eq(s->n_env, 4);
  cr_assert_str_eq(s->env[0], "PATH=/image/bin", "the image's PATH replaces the default in place");
  cr_assert_str_eq(s->env[1], "HOSTNAME=web-0");
  cr_assert_str_eq(s->env[2], "LANG=en_US");
  cr_assert_str_eq(s->env[3], "MODE=two=2");
  cr_assert_null(s->env[4]);
}

CS_TEST(ctrspec, env_gets_default_path_and_image_unsets)
{
  static char *env[] = {"HOSTNAME", "X=1", NULL};
  cs.ic.env = (struct image_strv){env, 2};
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  cr_assert_str_eq(env_get(s, "PATH"),
                   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  cr_assert_null(env_get(s, "HOSTNAME"), "a bare name in the image env unsets it");
  cr_assert_str_eq(env_get(s, "X"), "1");
}

CS_TEST(ctrspec, env_refuses_a_name_with_equals)
{
  Runtime__V1__KeyValue a = RUNTIME__V1__KEY_VALUE__INIT;
  a.key = "A=B", a.value = "x";
  Runtime__V1__KeyValue *envs[] = {&a};
  cs.cfg.envs = envs, cs.cfg.n_envs = 1;
  cs_build_fails(ERR_INVALID, "\"A=B\"");
}

CS_TEST(ctrspec, cwd_is_cri_then_image_then_root)
{
  cs.cfg.working_dir = "/srv//app/";
  cr_assert_str_eq(cs_build()->cwd, "/srv/app");
  cs.cfg.working_dir = "";
  cs.ic.working_dir = "data";
  cr_assert_str_eq(cs_build()->cwd, "/data", "a relative image WORKDIR is under /");
  cs.ic.working_dir = NULL;
  cr_assert_str_eq(cs_build()->cwd, "/");
  cs.cfg.working_dir = "rel";
  cs_build_fails(ERR_INVALID, "working_dir \"rel\"");
}

/* ---- users and groups -------------------------------------------------------------- */

#define PASSWD_BOTTOM "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
#define GROUP_BOTTOM "root:x:0:\napp:x:1000:\naudio:x:63:app,other\nvideo:x:44:app\nstaff:x:50:\n"

static void set_username(const char *name)
{
  cs.sc.run_as_username = (char *)name;
}

static void expect_ids(uint32_t uid, uint32_t gid)
{
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_eq(s->uid, uid, "uid %u, want %u", s->uid, uid);
  cr_assert_eq(s->gid, gid, "gid %u, want %u", s->gid, gid);
}

CS_TEST(ctrspec, user_from_passwd_in_the_bottom_layer)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  set_username("app");
  expect_ids(1000, 1000);
}

CS_TEST(ctrspec, user_from_a_higher_layer_overrides)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_put(1, "etc/passwd", "app:x:2000:2001::/:/bin/sh\n");
  set_username("app");
  expect_ids(2000, 2001);
}

CS_TEST(ctrspec, user_whited_out_by_a_higher_layer_is_gone)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_whiteout(2, "etc/passwd");
  set_username("app");
  cs_build_fails(ERR_INVALID, "run_as_username \"app\" is not in the image's /etc/passwd");
}

CS_TEST(ctrspec, user_under_an_opaque_etc_is_gone)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_opaque_dir(1, "etc");
  cs_put(1, "etc/hostname", "x\n");
  set_username("app");
  cs_build_fails(ERR_INVALID, "\"app\" is not in the image's /etc/passwd");
}

CS_TEST(ctrspec, passwd_symlink_is_never_followed)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_put(1, "host-passwd", "evil:x:0:0::/:/bin/sh\n");
  cs_symlink(2, "etc/passwd", cs_path("L1/host-passwd"));
  set_username("evil");
  cs_build_fails(ERR_INVALID, "\"evil\" is not in the image's /etc/passwd");
  char *out = NULL;
  err_t *e = NULL;
  cr_assert_eq(ctrspec_image_etc_file(&cs.img, "passwd", &out, &e), 0);
  cr_assert_null(out, "a symlinked etc/passwd hides the lower ones and is not read");
}

CS_TEST(ctrspec, symlinked_etc_dir_is_never_followed)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_symlink(1, "etc", "/etc");
  set_username("root");
  cs_build_fails(ERR_INVALID, "\"root\" is not in the image's /etc/passwd");
}

CS_TEST(ctrspec, unknown_username_is_invalid_and_named)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  set_username("nobody2");
  cs_build_fails(ERR_INVALID, "run_as_username \"nobody2\" is not in the image's /etc/passwd");
}

CS_TEST(ctrspec, numeric_uid_takes_primary_gid_or_zero)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
  uid.value = 1000;
  cs.sc.run_as_user = &uid;
  expect_ids(1000, 1000);
  uid.value = 4242;
  expect_ids(4242, 0);
  Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
  gid.value = 7;
  cs.sc.run_as_group = &gid;
  expect_ids(4242, 7);
  cs.sc.run_as_user = NULL;
  cs_build_fails(ERR_INVALID, "run_as_group is set without run_as_user");
}

CS_TEST(ctrspec, image_user_forms)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_put(0, "etc/group", GROUP_BOTTOM);
  const struct {
    const char *user;
    uint32_t uid, gid;
  } ok[] = {
      {"app", 1000, 1000},   {"1000", 1000, 1000}, {"app:staff", 1000, 50},
      {"1000:44", 1000, 44}, {"55:66", 55, 66},    {"app:12", 1000, 12},
      {"77", 77, 0},         {NULL, 0, 0},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    cs.ic.user = (char *)ok[i].user;
    expect_ids(ok[i].uid, ok[i].gid);
  }
  cs.ic.user = "app:nogroup";
  cs_build_fails(ERR_INVALID, "image user group \"nogroup\" is not in the image's /etc/group");
  cs.ic.user = "ghost";
  cs_build_fails(ERR_INVALID, "image user \"ghost\"");
  cs.ic.user = "a:b:c";
  cs_build_fails(ERR_INVALID, "not user[:group]");
}

CS_TEST(ctrspec, groups_merge_primary_image_and_supplemental)
{
  cs_put(0, "etc/passwd", PASSWD_BOTTOM);
  cs_put(0, "etc/group", GROUP_BOTTOM);
  set_username("app");
  int64_t extra[] = {1234, 44};
  cs.sc.supplemental_groups = extra, cs.sc.n_supplemental_groups = 2;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  uint32_t want[] = {1000, 63, 44, 1234};
  cr_assert_eq(s->n_groups, 4, "got %zu groups", s->n_groups);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(s->groups[i], want[i], "groups[%d] = %u", i, s->groups[i]);
  cs.sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  s = cs_build();
  cr_assert_eq(s->n_groups, 3, "Strict leaves the image's groups out");
  cr_assert_eq(s->groups[1], 1234);
}

CS_TEST(ctrspec, root_without_passwd_is_zero_zero)
{
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  cr_assert_eq(s->uid, 0);
  cr_assert_eq(s->gid, 0);
  cr_assert_eq(s->n_groups, 1);
  cr_assert_eq(s->groups[0], 0);
}

/* ---- identity, rootfs, namespaces, cgroup ------------------------------------------ */

CS_TEST(ctrspec, identity_rootfs_and_cgroup)
{
  cs.ic.stop_signal = "SIGQUIT";
  cs.cfg.tty = true, cs.cfg.stdin = true;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_str_eq(s->id, "c0ffee");
  cr_assert_str_eq(s->pod_id, "pod1");
  cr_assert_str_eq(s->name, "app");
  cr_assert_str_eq(s->hostname, "web-0");
  cr_assert(s->tty && s->stdin_open && !s->stdin_once);
  cr_assert_eq(s->n_lower, CS_LAYERS);
  for (int i = 0; i < CS_LAYERS; i++)
    cr_assert_str_eq(s->lower_dirs[i], cs.layer_dirs[CS_LAYERS - 1 - i], "lower dirs top first");
  cr_assert_null(s->lower_dirs[CS_LAYERS]);
  cr_assert_str_eq(s->rootfs, "/run/crisp/containers/c0ffee/rootfs");
  cr_assert_str_eq(s->upper_dir, "/var/lib/crisp/containers/c0ffee/upper");
  cr_assert_str_eq(s->work_dir, "/var/lib/crisp/containers/c0ffee/work");
  cr_assert_str_eq(s->cgroup_parent, "/kubepods/besteffort/poduid");
  cr_assert_str_eq(s->cgroup_name, "crisp-c0ffee");
  cr_assert_str_eq(s->stop_signal, "SIGQUIT");
  cr_assert_eq(s->executor, EXECUTOR_NAMESPACES);
  cs.pod.cgroup_parent = "";
  cs.ic.stop_signal = NULL;
  s = cs_build();
  cr_assert_str_eq(s->cgroup_parent, "/crisp/pod1");
  cr_assert_str_eq(s->stop_signal, "SIGTERM");
}

CS_TEST(ctrspec, systemd_driver_places_the_container_in_a_scope_of_the_pod_slice)
{
  cs.pod.cgroup_driver = CGROUP_DRIVER_SYSTEMD;
  cs.pod.cgroup_parent = "kubepods-besteffort-poduid.slice";
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s, "%s", cs_err ? cs_err->msg : "");
  cr_assert_str_eq(s->cgroup_parent, "kubepods-besteffort-poduid.slice");
  cr_assert_str_eq(s->cgroup_name, "crisp-c0ffee.scope");
  cs.pod.cgroup_parent = "";
  s = cs_build();
  cr_assert_str_eq(s->cgroup_parent, "crisp-pod1.slice");
  /* a pod run under cgroupfs whose crispd now runs systemd: refused, not misplaced */
  cs.pod.cgroup_parent = "/kubepods/besteffort/poduid";
  cs_build_fails(ERR_INVALID, "driver is systemd");
}

CS_TEST(ctrspec, sandbox_executor_options_are_copied)
{
  struct sandbox_opts o = {.kernel_release = "4.4.0", .machine = "x86_64"};
  cs.pod.executor = EXECUTOR_SANDBOX;
  cs.pod.sandbox = &o;
  struct ctr_spec *s = cs_build();
  cr_assert_eq(s->executor, EXECUTOR_SANDBOX);
  cr_assert_str_eq(s->sandbox.kernel_release, "4.4.0");
  cr_assert_str_eq(s->sandbox.machine, "x86_64");
  cr_assert_null(s->sandbox.policy_file);
}

CS_TEST(ctrspec, missing_metadata_is_invalid)
{
  cs.cfg.metadata = NULL;
  cs_build_fails(ERR_INVALID, "metadata.name");
}

CS_TEST(ctrspec, namespaces_join_the_pod_or_the_host)
{
  struct ctr_spec *s = cs_build();
  cr_assert_eq(s->ns.net, NS_MODE_POD);
  cr_assert_str_eq(s->ns.netns_path, "/run/crisp/pods/pod1/ns/net");
  cr_assert_eq(s->ns.ipc, NS_MODE_POD);
  cr_assert_str_eq(s->ns.ipcns_path, "/run/crisp/pods/pod1/ns/ipc");
  cr_assert_eq(s->ns.uts, NS_MODE_POD);
  cr_assert_str_eq(s->ns.utsns_path, "/run/crisp/pods/pod1/ns/uts");
  cr_assert_eq(s->ns.pid, NS_MODE_CONTAINER);
  cs.nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
  cs.nso.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
  cs.nso.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
  s = cs_build();
  cr_assert(s->ns.net == NS_MODE_NODE && s->ns.uts == NS_MODE_NODE, "host network: host UTS");
  cr_assert(s->ns.ipc == NS_MODE_NODE && s->ns.pid == NS_MODE_NODE);
  cr_assert_null(s->ns.netns_path);
}

CS_TEST(ctrspec, namespaces_pid_pod_target_and_missing_pins)
{
  cs.nso.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
  struct ctr_spec *s = cs_build();
  cr_assert_eq(s->ns.pid, NS_MODE_CONTAINER, "a pod sharing no pid namespace: the container's own");
  cr_assert_null(s->ns.pidns_path);
  cs.pod.pidns_path = "/run/crisp/pods/pod1/ns/pid";
  s = cs_build();
  cr_assert_eq(s->ns.pid, NS_MODE_POD);
  cr_assert_str_eq(s->ns.pidns_path, "/run/crisp/pods/pod1/ns/pid");
  cs.nso.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
  cs.nso.target_id = "abc";
  s = cs_build();
  cr_assert_eq(s->ns.pid, NS_MODE_TARGET);
  cr_assert_eq(s->ns.target_pid, 0, "cri fills the target's pid");
  cs.nso.network = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  cs_build_fails(ERR_INVALID, "network namespace mode CONTAINER is not supported");
  cs.nso.network = RUNTIME__V1__NAMESPACE_MODE__POD;
  cs.pod.host_network = true;
  cs.pod.netns_path = NULL;
  cr_assert_eq(cs_build()->ns.net, NS_MODE_NODE, "POD on a host-network pod is the host's");
}

/* ---- resources and log path -------------------------------------------------------- */

CS_TEST(ctrspec, resources_are_mapped)
{
  Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__HugepageLimit hp = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
  Runtime__V1__LinuxContainerResources__UnifiedEntry u =
      RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
  hp.page_size = "2MB", hp.limit = 4 << 20;
  u.key = "memory.high", u.value = "1G";
  Runtime__V1__HugepageLimit *hps[] = {&hp};
  Runtime__V1__LinuxContainerResources__UnifiedEntry *us[] = {&u};
  r.cpu_period = 100000, r.cpu_quota = 50000, r.cpu_shares = 512;
  r.memory_limit_in_bytes = 64 << 20, r.memory_swap_limit_in_bytes = 128 << 20;
  r.oom_score_adj = -997, r.cpuset_cpus = "0-1", r.cpuset_mems = "";
  r.hugepage_limits = hps, r.n_hugepage_limits = 1, r.unified = us, r.n_unified = 1;
  cs.linux.resources = &r;
  struct ctr_spec *s = cs_build();
  cr_assert_not_null(s);
  const struct resources *o = &s->res;
  cr_assert(o->cpu_period == 100000 && o->cpu_quota == 50000 && o->cpu_shares == 512);
  cr_assert(o->memory_limit == 64 << 20 && o->memory_swap_limit == 128 << 20);
  cr_assert_eq(o->oom_score_adj, -997, "kept: the executor degrades it");
  cr_assert_str_eq(o->cpuset_cpus, "0-1");
  cr_assert_null(o->cpuset_mems);
  cr_assert(o->n_hugepages == 1 && strcmp(o->hugepages[0].page_size, "2MB") == 0 &&
            o->hugepages[0].limit == 4 << 20);
  cr_assert(o->n_unified == 1 && strcmp(o->unified[0].key, "memory.high") == 0 &&
            strcmp(o->unified[0].value, "1G") == 0);
  cr_assert_eq(o->pids_limit, 0);
  r.oom_score_adj = 1001;
  cs_build_fails(ERR_INVALID, "oom_score_adj 1001");
}

CS_TEST(ctrspec, log_path_joins_and_refuses_traversal)
{
  cr_assert_str_eq(cs_build()->log_path, "/var/log/pods/ns_web-0_uid/app/0.log");
  const char *bad[] = {"../x.log", "app/../../x.log", "/etc/shadow", "a/.."};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cs.cfg.log_path = (char *)bad[i];
    cs_build_fails(ERR_INVALID, "climbs out of the pod's log directory");
  }
  cs.cfg.log_path = "a..b/..c.log";
  cr_assert_str_eq(cs_build()->log_path, "/var/log/pods/ns_web-0_uid/a..b/..c.log");
  cs.cfg.log_path = "";
  cr_assert_null(cs_build()->log_path);
  cs.cfg.log_path = "x.log";
  cs.pod.log_directory = "";
  cr_assert_null(cs_build()->log_path);
}

Test(ctrspec, path_clean_is_lexical)
{
  const char *cases[][2] = {{"/", "/"},         {"//a//b/", "/a/b"}, {"/a/./b/../c", "/a/c"},
                            {"/../..", "/"},    {"/a/..", "/"},      {"/a/b/../../..", "/"},
                            {"/.a/..b", "/.a/..b"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *c = ctrspec_path_clean(cases[i][0]);
    cr_expect_str_eq(c, cases[i][1], "clean(%s)", cases[i][0]);
    free(c);
  }
}
