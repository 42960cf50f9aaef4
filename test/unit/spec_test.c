/* spec.json: every field survives spec_write + spec_read; bad fields are named. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/spec.h"

static char **strv(size_t *n, size_t count, const char *const *v)
{
  char **out = xcalloc(count + 1, sizeof(*out));
  for (size_t i = 0; i < count; i++)
    out[i] = xstrdup(v[i]);
  *n = count;
  return out;
}
#define STRV(field, n, ...)                                                    \
  do {                                                                         \
    const char *const v_[] = {__VA_ARGS__};                                    \
    field = strv(&(n), sizeof(v_) / sizeof(v_[0]), v_);                        \
  } while (0)

static struct kv *kvs(size_t *n, const char *k1, const char *v1, const char *k2, const char *v2)
{
  struct kv *v = xcalloc(2, sizeof(*v));
  v[0] = (struct kv){xstrdup(k1), xstrdup(v1)};
  v[1] = (struct kv){xstrdup(k2), xstrdup(v2)};
  *n = 2;
  return v;
}

static struct ctr_spec *full_spec(void)
{
  struct ctr_spec *s = xcalloc(1, sizeof(*s));
  s->id = xstrdup("0123456789abcdef");
  s->pod_id = xstrdup("pod-1");
  s->name = xstrdup("web \"quoted\"\n");
  s->executor = EXECUTOR_SANDBOX;
  s->sandbox = (struct sandbox_opts){xstrdup("4.4.0"), xstrdup("#1 SMP"), xstrdup("x86_64"),
                                     xstrdup("/etc/policy.json"), xstrdup("/run/pod/sandbox.kmsg"),
                                     xstrdup("/run/sandbox/runsc.bpf"), xstrdup("/run/ctr/kernel")};
  STRV(s->argv, s->argc, "/bin/sh", "-c", "echo \"hi\" \\ there");
  STRV(s->env, s->n_env, "PATH=/bin", "UNICODE=\xc3\xa9t\xc3\xa9");
  s->cwd = xstrdup("/work");
  s->uid = 4294967294u;
  s->gid = 7;
  s->groups = xcalloc(3, sizeof(uint32_t));
  s->groups[0] = 1, s->groups[1] = 2, s->groups[2] = 4000000000u;
  s->n_groups = 3;
  s->tty = s->stdin_open = s->stdin_once = true;
  s->hostname = xstrdup("box");
  STRV(s->lower_dirs, s->n_lower, "/l/top", "/l/bottom");
  s->upper_dir = xstrdup("/u");
  s->work_dir = xstrdup("/w");
  s->rootfs = xstrdup("/r");
  s->readonly_rootfs = true;
  s->mounts = xcalloc(2, sizeof(*s->mounts));
  s->mounts[0] = (struct mount_spec){xstrdup("/host"), xstrdup("/ctr"), xstrdup("bind"), NULL,
                                     true, true, true, true, true, PROP_RSHARED};
  s->mounts[1] = (struct mount_spec){xstrdup("tmpfs"), xstrdup("/t"), xstrdup("tmpfs"),
                                     xstrdup("size=1m"), false, false, false, true, false, PROP_RSLAVE};
  s->n_mounts = 2;
  s->devices = xcalloc(1, sizeof(*s->devices));
  s->devices[0] = (struct device_spec){xstrdup("/dev/fuse"), xstrdup("/dev/f"), xstrdup("rw")};
  s->n_devices = 1;
  STRV(s->masked_paths, s->n_masked, "/proc/kcore", "/sys/firmware");
  STRV(s->readonly_paths, s->n_readonly, "/proc/sys");
  s->privileged = true;
  s->no_new_privs = true;
  s->caps = (struct caps){(1ull << 41) - 1, 1ull << 40, 3, 4, 5};
  s->seccomp = SECCOMP_LOCALHOST;
  s->seccomp_profile = xstrdup("/p.json");
  s->sysctls = kvs(&s->n_sysctls, "net.ipv4.ip_forward", "1", "kernel.shm_rmid_forced", "0");
  s->ns = (struct ns_spec){NS_MODE_NODE, NS_MODE_CONTAINER, NS_MODE_POD, NS_MODE_TARGET,
                           xstrdup("/n"), xstrdup("/i"), xstrdup("/u"), xstrdup("/p"), 4242};
  s->cgroup_parent = xstrdup("kubepods-besteffort-pod1.slice");
  s->cgroup_name = xstrdup("crisp-0123");
  s->res = (struct resources){100000, -1, 2, 1ll << 40, -1, xstrdup("0-1"), xstrdup("0"), 99, -997,
                              NULL, 0, NULL, 0};
  s->res.hugepages = xcalloc(1, sizeof(*s->res.hugepages));
  s->res.hugepages[0] = (struct hugepage_limit){xstrdup("2MB"), 1ull << 30};
  s->res.n_hugepages = 1;
  s->res.unified = kvs(&s->res.n_unified, "memory.high", "1G", "io.weight", "100");
  s->log_path = xstrdup("/var/log/pods/x/0.log");
  s->stop_signal = xstrdup("SIGQUIT");
  return s;
}

#define EQ_STR(f) cr_assert_str_eq(b->f ? b->f : "(null)", a->f ? a->f : "(null)", #f)
#define EQ(f) cr_assert_eq(b->f, a->f, #f)
static void eq_strv(char **x, char **y, size_t n, const char *what)
{
  for (size_t i = 0; i < n; i++)
    cr_assert_str_eq(x[i], y[i], "%s[%zu]", what, i);
  cr_assert_null(y[n], "%s is NULL-terminated", what);
}

static void compare_process(const struct ctr_spec *a, const struct ctr_spec *b)
{
  EQ_STR(id); EQ_STR(pod_id); EQ_STR(name); EQ(executor);
  EQ_STR(sandbox.kernel_release); EQ_STR(sandbox.kernel_version); EQ_STR(sandbox.machine);
  EQ_STR(sandbox.policy_file); EQ_STR(sandbox.kmsg_path); EQ_STR(sandbox.files_dir); EQ_STR(sandbox.prog_path);
  EQ(argc); eq_strv(a->argv, b->argv, a->argc, "argv");
  EQ(n_env); eq_strv(a->env, b->env, a->n_env, "env");
  EQ_STR(cwd); EQ(uid); EQ(gid); EQ(n_groups);
  for (size_t i = 0; i < a->n_groups; i++)
    cr_assert_eq(b->groups[i], a->groups[i]);
  EQ(tty); EQ(stdin_open); EQ(stdin_once); EQ_STR(hostname);
}

static void compare_fs(const struct ctr_spec *a, const struct ctr_spec *b)
{
  EQ(n_lower); eq_strv(a->lower_dirs, b->lower_dirs, a->n_lower, "lower_dirs");
  EQ_STR(upper_dir); EQ_STR(work_dir); EQ_STR(rootfs); EQ(readonly_rootfs); EQ(n_mounts);
  for (size_t i = 0; i < a->n_mounts; i++) {
    EQ_STR(mounts[i].source); EQ_STR(mounts[i].destination); EQ_STR(mounts[i].type);
    EQ_STR(mounts[i].options); EQ(mounts[i].readonly); EQ(mounts[i].recursive_readonly);
    EQ(mounts[i].nosuid); EQ(mounts[i].nodev); EQ(mounts[i].noexec); EQ(mounts[i].propagation);
  }
  EQ(n_devices);
  EQ_STR(devices[0].host_path); EQ_STR(devices[0].container_path); EQ_STR(devices[0].permissions);
  EQ(n_masked); eq_strv(a->masked_paths, b->masked_paths, a->n_masked, "masked");
  EQ(n_readonly); eq_strv(a->readonly_paths, b->readonly_paths, a->n_readonly, "readonly");
}

static void compare_rest(const struct ctr_spec *a, const struct ctr_spec *b)
{
  EQ(privileged); EQ(no_new_privs); EQ(caps.bounding); EQ(caps.effective); EQ(caps.permitted);
  EQ(caps.inheritable); EQ(caps.ambient); EQ(seccomp); EQ_STR(seccomp_profile); EQ(n_sysctls);
  for (size_t i = 0; i < a->n_sysctls; i++) {
    EQ_STR(sysctls[i].key); EQ_STR(sysctls[i].value);
  }
  EQ(ns.net); EQ(ns.ipc); EQ(ns.uts); EQ(ns.pid); EQ_STR(ns.netns_path); EQ_STR(ns.ipcns_path);
  EQ_STR(ns.utsns_path); EQ_STR(ns.pidns_path); EQ(ns.target_pid);
  EQ_STR(cgroup_parent); EQ_STR(cgroup_name);
  EQ(res.cpu_period); EQ(res.cpu_quota); EQ(res.cpu_shares); EQ(res.memory_limit);
  EQ(res.memory_swap_limit); EQ_STR(res.cpuset_cpus); EQ_STR(res.cpuset_mems); EQ(res.pids_limit);
  EQ(res.oom_score_adj); EQ(res.n_hugepages); EQ_STR(res.hugepages[0].page_size);
  EQ(res.hugepages[0].limit); EQ(res.n_unified);
  for (size_t i = 0; i < a->res.n_unified; i++) {
    EQ_STR(res.unified[i].key); EQ_STR(res.unified[i].value);
  }
  EQ_STR(log_path); EQ_STR(stop_signal);
}

static char *tmp_path(void)
{
  return xasprintf("/tmp/crisp-spec-%d.json", (int)getpid());
}

Test(spec, every_field_survives_write_and_read)
{
  struct ctr_spec *a = full_spec(), *b = NULL;
  cleanup_free char *path = tmp_path();
  err_t *e = NULL;
  cr_assert_eq(spec_write(a, path, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(spec_read(path, &b, &e), 0, "%s", e ? e->msg : "");
  compare_process(a, b);
  compare_fs(a, b);
  compare_rest(a, b);
  unlink(path);
  spec_free(a);
  spec_free(b);
}

Test(spec, an_empty_spec_survives_too)
{
  struct ctr_spec *a = xcalloc(1, sizeof(*a)), *b = NULL;
  STRV(a->argv, a->argc, "/pause");
  cleanup_free char *path = tmp_path();
  err_t *e = NULL;
  cr_assert_eq(spec_write(a, path, &e), 0);
  cr_assert_eq(spec_read(path, &b, &e), 0, "%s", e ? e->msg : "");
  compare_process(a, b);
  cr_assert_eq(b->n_mounts, 0);
  cr_assert_not_null(b->env, "env is an empty vector, not NULL");
  cr_assert_null(b->env[0]);
  cr_assert_null(b->hostname);
  unlink(path);
  spec_free(a);
  spec_free(b);
}

static void expect_bad(const char *json, const char *field)
{
  cleanup_free char *path = tmp_path();
  err_t *e = NULL;
  struct ctr_spec *s = NULL;
  cr_assert_eq(file_write_atomic(path, json, strlen(json), 0600, &e), 0);
  cr_assert_eq(spec_read(path, &s, &e), -1, "%s accepted", json);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, field), "%s does not name %s", e->msg, field);
  err_free(&e);
  unlink(path);
}

Test(spec, bad_fields_are_named)
{
  expect_bad("{\"argv\": [\"/x\"], \"uid\": \"root\"}", "uid");
  expect_bad("{\"argv\": [\"/x\"], \"ns\": {\"pid\": \"galaxy\"}}", "pid");
  expect_bad("{\"argv\": [\"/x\"], \"mounts\": [{\"destination\": \"rel\"}]}", "destination");
  expect_bad("{\"argv\": [\"/x\"], \"resources\": {\"memory_limit\": 1.5}}", "memory_limit");
  expect_bad("{\"argv\": [1]}", "argv");
  expect_bad("{\"argv\": []}", "argv");
  expect_bad("{\"argv\": [\"/x\"], \"seccomp\": \"maybe\"}", "seccomp");
  expect_bad("[1, 2]", "not a JSON object");
}

Test(spec, signal_names_and_numbers)
{
  cr_assert_eq(signal_parse("SIGTERM"), SIGTERM);
  cr_assert_eq(signal_parse("TERM"), SIGTERM);
  cr_assert_eq(signal_parse("15"), 15);
  cr_assert_eq(signal_parse("sigkill"), SIGKILL);
  cr_assert_eq(signal_parse("SIGRTMIN+2"), SIGRTMIN + 2);
  cr_assert_eq(signal_parse("RTMAX-1"), SIGRTMAX - 1);
  cr_assert_eq(signal_parse("SIGWINCH"), SIGWINCH);
  cr_assert_eq(signal_parse("SIGNOPE"), -1);
  cr_assert_eq(signal_parse("0"), -1);
  cr_assert_eq(signal_parse("99"), -1);
  cr_assert_eq(signal_parse(""), -1);
  cr_assert_eq(signal_parse(NULL), -1);
  cr_assert_eq(signal_parse("RTMIN+99"), -1);
}
