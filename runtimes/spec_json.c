/* spec_json.c - struct ctr_spec <-> JSON (spec.json in the container's state dir).
 *
 * crispd writes it, crisp-monitor reads it: the two may be different builds after an
 * upgrade, so the reader is strict about types (a wrong type names the field) but
 * treats a missing or null field as "not set", and ignores keys it does not know. */
#include "runtimes/spec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"

#define SPEC_MAX_BYTES (4u << 20)

static const char *const ns_mode_names[] = {"pod", "container", "node", "target"};
static const char *const prop_names[] = {"private", "rslave", "rshared"};
static const char *const seccomp_names[] = {"unconfined", "runtime_default", "localhost"};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- writing ---------------------------------------------------------------- */

/* A tiny JSON writer: tracks whether the current object/array needs a comma. */
struct jw {
  struct buf b;
  int depth;
  bool comma[16];
};

static void jw_sep(struct jw *w, const char *key)
{
  if (w->comma[w->depth])
    buf_putc(&w->b, ',');
  w->comma[w->depth] = true;
  if (key) {
    buf_json_str(&w->b, key);
    buf_putc(&w->b, ':');
  }
}

static void jw_open(struct jw *w, const char *key, char c)
{
  jw_sep(w, key);
  buf_putc(&w->b, c);
  w->comma[++w->depth] = false;
}

static void jw_close(struct jw *w, char c)
{
  buf_putc(&w->b, c);
  w->depth--;
}

static void jw_str(struct jw *w, const char *key, const char *v)
{
  jw_sep(w, key);
  if (v)
    buf_json_str(&w->b, v);
  else
    buf_puts(&w->b, "null");
}

static void jw_i64(struct jw *w, const char *key, int64_t v)
{
  jw_sep(w, key);
  buf_printf(&w->b, "%" PRId64, v);
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
  jw_sep(w, key);
  buf_puts(&w->b, v ? "true" : "false");
}

static void jw_strv(struct jw *w, const char *key, char *const *v, size_t n)
{
  jw_open(w, key, '[');
  for (size_t i = 0; i < n; i++)
    jw_str(w, NULL, v[i]);
  jw_close(w, ']');
}

static void jw_kv(struct jw *w, const char *key, const struct kv *v, size_t n)
{
  jw_open(w, key, '[');
  for (size_t i = 0; i < n; i++) {
    jw_open(w, NULL, '{');
    jw_str(w, "key", v[i].key);
    jw_str(w, "value", v[i].value);
    jw_close(w, '}');
  }
  jw_close(w, ']');
}

static void write_mounts(struct jw *w, const struct ctr_spec *s)
{
  jw_open(w, "mounts", '[');
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct mount_spec *m = &s->mounts[i];
    jw_open(w, NULL, '{');
    jw_str(w, "source", m->source);
    jw_str(w, "destination", m->destination);
    jw_str(w, "type", m->type);
    jw_str(w, "options", m->options);
    jw_bool(w, "readonly", m->readonly);
    jw_bool(w, "recursive_readonly", m->recursive_readonly);
    jw_bool(w, "nosuid", m->nosuid);
    jw_bool(w, "nodev", m->nodev);
    jw_bool(w, "noexec", m->noexec);
    jw_str(w, "propagation", prop_names[m->propagation]);
    jw_close(w, '}');
  }
  jw_close(w, ']');
  jw_open(w, "devices", '[');
  for (size_t i = 0; i < s->n_devices; i++) {
    jw_open(w, NULL, '{');
    jw_str(w, "host_path", s->devices[i].host_path);
    jw_str(w, "container_path", s->devices[i].container_path);
    jw_str(w, "permissions", s->devices[i].permissions);
    jw_close(w, '}');
  }
  jw_close(w, ']');
}

static void write_resources(struct jw *w, const char *key, const struct resources *r)
{
  jw_open(w, key, '{');
  jw_i64(w, "cpu_period", r->cpu_period);
  jw_i64(w, "cpu_quota", r->cpu_quota);
  jw_i64(w, "cpu_shares", r->cpu_shares);
  jw_i64(w, "memory_limit", r->memory_limit);
  jw_i64(w, "memory_swap_limit", r->memory_swap_limit);
  jw_str(w, "cpuset_cpus", r->cpuset_cpus);
  jw_str(w, "cpuset_mems", r->cpuset_mems);
  jw_i64(w, "pids_limit", r->pids_limit);
  jw_i64(w, "oom_score_adj", r->oom_score_adj);
  jw_open(w, "hugepages", '[');
  for (size_t i = 0; i < r->n_hugepages; i++) {
    jw_open(w, NULL, '{');
    jw_str(w, "page_size", r->hugepages[i].page_size);
    jw_i64(w, "limit", (int64_t)r->hugepages[i].limit);
    jw_close(w, '}');
  }
  jw_close(w, ']');
  jw_kv(w, "unified", r->unified, r->n_unified);
  jw_close(w, '}');
}

static void write_process(struct jw *w, const struct ctr_spec *s)
{
  jw_strv(w, "argv", s->argv, s->argc);
  jw_strv(w, "env", s->env, s->n_env);
  jw_str(w, "cwd", s->cwd);
  jw_i64(w, "uid", s->uid);
  jw_i64(w, "gid", s->gid);
  jw_open(w, "groups", '[');
  for (size_t i = 0; i < s->n_groups; i++)
    jw_i64(w, NULL, s->groups[i]);
  jw_close(w, ']');
  jw_bool(w, "tty", s->tty);
  jw_bool(w, "stdin_open", s->stdin_open);
  jw_bool(w, "stdin_once", s->stdin_once);
  jw_str(w, "hostname", s->hostname);
}

static void write_fs(struct jw *w, const struct ctr_spec *s)
{
  jw_strv(w, "lower_dirs", s->lower_dirs, s->n_lower);
  jw_str(w, "upper_dir", s->upper_dir);
  jw_str(w, "work_dir", s->work_dir);
  jw_str(w, "rootfs", s->rootfs);
  jw_bool(w, "readonly_rootfs", s->readonly_rootfs);
  write_mounts(w, s);
  jw_strv(w, "masked_paths", s->masked_paths, s->n_masked);
  jw_strv(w, "readonly_paths", s->readonly_paths, s->n_readonly);
}

static void write_privileges(struct jw *w, const struct ctr_spec *s)
{
  jw_bool(w, "privileged", s->privileged);
  jw_bool(w, "no_new_privs", s->no_new_privs);
  /* caps are bit masks below 2^63, exact in a JSON integer */
  jw_open(w, "caps", '{');
  jw_i64(w, "bounding", (int64_t)s->caps.bounding);
  jw_i64(w, "effective", (int64_t)s->caps.effective);
  jw_i64(w, "permitted", (int64_t)s->caps.permitted);
  jw_i64(w, "inheritable", (int64_t)s->caps.inheritable);
  jw_i64(w, "ambient", (int64_t)s->caps.ambient);
  jw_close(w, '}');
  jw_str(w, "seccomp", seccomp_names[s->seccomp]);
  jw_str(w, "seccomp_profile", s->seccomp_profile);
  jw_kv(w, "sysctls", s->sysctls, s->n_sysctls);
}

static void write_ns(struct jw *w, const struct ns_spec *ns)
{
  jw_open(w, "ns", '{');
  jw_str(w, "net", ns_mode_names[ns->net]);
  jw_str(w, "ipc", ns_mode_names[ns->ipc]);
  jw_str(w, "uts", ns_mode_names[ns->uts]);
  jw_str(w, "pid", ns_mode_names[ns->pid]);
  jw_str(w, "netns_path", ns->netns_path);
  jw_str(w, "ipcns_path", ns->ipcns_path);
  jw_str(w, "utsns_path", ns->utsns_path);
  jw_str(w, "pidns_path", ns->pidns_path);
  jw_i64(w, "target_pid", ns->target_pid);
  jw_close(w, '}');
}

/* Enum values outside their tables would index out of bounds while writing. */
static int check_enums(const struct ctr_spec *s, err_t **e)
{
  const struct ns_spec *ns = &s->ns;
  if ((unsigned)ns->net >= N_OF(ns_mode_names) || (unsigned)ns->ipc >= N_OF(ns_mode_names) ||
      (unsigned)ns->uts >= N_OF(ns_mode_names) || (unsigned)ns->pid >= N_OF(ns_mode_names))
    return err_set(e, ERR_INVALID, 0, "spec: bad namespace mode");
  if ((unsigned)s->seccomp >= N_OF(seccomp_names))
    return err_set(e, ERR_INVALID, 0, "spec: bad seccomp mode %d", (int)s->seccomp);
  for (size_t i = 0; i < s->n_mounts; i++)
    if ((unsigned)s->mounts[i].propagation >= N_OF(prop_names))
      return err_set(e, ERR_INVALID, 0, "spec: mounts[%zu]: bad propagation", i);
  return 0;
}

int spec_write(const struct ctr_spec *s, const char *path, err_t **e)
{
  if (check_enums(s, e) < 0)
    return -1;
  struct jw w = {BUF_INIT, 0, {false}};
  jw_open(&w, NULL, '{');
  jw_str(&w, "id", s->id);
  jw_str(&w, "pod_id", s->pod_id);
  jw_str(&w, "name", s->name);
  jw_str(&w, "executor", executor_kind_name(s->executor));
  jw_open(&w, "sandbox", '{');
  jw_str(&w, "kernel_release", s->sandbox.kernel_release);
  jw_str(&w, "kernel_version", s->sandbox.kernel_version);
  jw_str(&w, "machine", s->sandbox.machine);
  jw_str(&w, "policy_file", s->sandbox.policy_file);
  jw_str(&w, "kmsg_path", s->sandbox.kmsg_path);
  jw_str(&w, "files_dir", s->sandbox.files_dir);
  jw_str(&w, "prog_path", s->sandbox.prog_path);
  jw_close(&w, '}');
  write_process(&w, s);
  write_fs(&w, s);
  write_privileges(&w, s);
  write_ns(&w, &s->ns);
  jw_str(&w, "cgroup_parent", s->cgroup_parent);
  jw_str(&w, "cgroup_name", s->cgroup_name);
  write_resources(&w, "resources", &s->res);
  jw_str(&w, "log_path", s->log_path);
  jw_str(&w, "stop_signal", s->stop_signal);
  jw_close(&w, '}');
  buf_putc(&w.b, '\n');
  int rc = file_write_atomic(path, w.b.data, w.b.len, 0600, e);
  buf_free(&w.b);
  return rc < 0 ? err_wrap(e, "write spec") : 0;
}

/* ---- reading ---------------------------------------------------------------- */

/* Every reader takes the key path for its error message ("mounts[2].destination"). */
__attribute__((format(printf, 3, 4)))
static int bad(err_t **e, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *why = xvasprintf(fmt, ap);
  va_end(ap);
  return err_set(e, ERR_INVALID, 0, "spec: field \"%s\": %s", key, why);
}

static bool absent(const json_t *v)
{
  return json_type(v) == JSON_NONE || json_type(v) == JSON_NULL;
}

static int get_str(const json_t *o, const char *key, char **out, err_t **e)
{
  const json_t *v = json_get(o, key);
  if (absent(v))
    return 0;
  if (json_type(v) != JSON_STRING)
    return bad(e, key, "must be a string, not %s", json_type_name(json_type(v)));
  free(*out);
  *out = xstrdup(json_str(v));
  return 0;
}

static int get_i64(const json_t *o, const char *key, int64_t *out, err_t **e)
{
  const json_t *v = json_get(o, key);
  long long n;
  if (absent(v))
    return 0;
  if (json_int(v, &n) < 0)
    return bad(e, key, "must be an integer");
  *out = n;
  return 0;
}

static int get_u32(const json_t *o, const char *key, uint32_t *out, err_t **e)
{
  int64_t n = 0;
  if (get_i64(o, key, &n, e) < 0)
    return -1;
  if (n < 0 || n > UINT32_MAX)
    return bad(e, key, "out of range: %" PRId64, n);
  *out = (uint32_t)n;
  return 0;
}

static int get_u64(const json_t *o, const char *key, uint64_t *out, err_t **e)
{
  int64_t n = 0;
  if (get_i64(o, key, &n, e) < 0)
    return -1;
  if (n < 0)
    return bad(e, key, "must not be negative");
  *out = (uint64_t)n;
  return 0;
}

static int get_bool(const json_t *o, const char *key, bool *out, err_t **e)
{
  const json_t *v = json_get(o, key);
  if (absent(v))
    return 0;
  if (json_bool(v, out) < 0)
    return bad(e, key, "must be true or false");
  return 0;
}

static int get_enum(const json_t *o, const char *key, const char *const *names, size_t n,
                    int *out, err_t **e)
{
  cleanup_free char *s = NULL;
  if (get_str(o, key, &s, e) < 0)
    return -1;
  if (!s)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = (int)i;
      return 0;
    }
  return bad(e, key, "unknown value \"%s\"", s);
}

/* An array field: absent is empty; anything else must be an array. */
static int get_array(const json_t *o, const char *key, const json_t **out, size_t *n, err_t **e)
{
  const json_t *v = json_get(o, key);
  *out = NULL;
  *n = 0;
  if (absent(v))
    return 0;
  if (json_type(v) != JSON_ARRAY)
    return bad(e, key, "must be an array, not %s", json_type_name(json_type(v)));
  *out = v;
  *n = json_len(v);
  return 0;
}

/* A NULL-terminated string vector (argv, env), so callers can pass it to execve. */
static int get_strv(const json_t *o, const char *key, char ***out, size_t *count, err_t **e)
{
  const json_t *a;
  size_t n;
  if (get_array(o, key, &a, &n, e) < 0)
    return -1;
  char **v = xcalloc(n + 1, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    const char *s = json_str(json_at(a, i));
    if (!s) {
      for (size_t j = 0; j < i; j++)
        free(v[j]);
      free(v);
      return bad(e, key, "element %zu must be a string", i);
    }
    v[i] = xstrdup(s);
  }
  *out = v;
  *count = n;
  return 0;
}

/* The array of objects under key; each element must be an object. */
static int get_objects(const json_t *o, const char *key, const json_t **a, size_t *n, err_t **e)
{
  if (get_array(o, key, a, n, e) < 0)
    return -1;
  for (size_t i = 0; i < *n; i++)
    if (json_type(json_at(*a, i)) != JSON_OBJECT)
      return bad(e, key, "element %zu must be an object", i);
  return 0;
}

static int get_kv(const json_t *o, const char *key, struct kv **out, size_t *count, err_t **e)
{
  const json_t *a;
  size_t n;
  if (get_objects(o, key, &a, &n, e) < 0)
    return -1;
  *out = xcalloc(n ? n : 1, sizeof(**out));
  *count = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *el = json_at(a, i);
    if (get_str(el, "key", &(*out)[i].key, e) < 0 || get_str(el, "value", &(*out)[i].value, e) < 0)
      return err_wrap(e, "%s[%zu]", key, i);
    if (!(*out)[i].key)
      return bad(e, key, "element %zu has no key", i);
  }
  return 0;
}

static int read_mount(const json_t *m, struct mount_spec *out, err_t **e)
{
  int prop = PROP_PRIVATE;
  if (get_str(m, "source", &out->source, e) < 0 ||
      get_str(m, "destination", &out->destination, e) < 0 ||
      get_str(m, "type", &out->type, e) < 0 || get_str(m, "options", &out->options, e) < 0 ||
      get_bool(m, "readonly", &out->readonly, e) < 0 ||
      get_bool(m, "recursive_readonly", &out->recursive_readonly, e) < 0 ||
      get_bool(m, "nosuid", &out->nosuid, e) < 0 || get_bool(m, "nodev", &out->nodev, e) < 0 ||
      get_bool(m, "noexec", &out->noexec, e) < 0 ||
      get_enum(m, "propagation", prop_names, N_OF(prop_names), &prop, e) < 0)
    return -1;
  out->propagation = (enum mount_propagation)prop;
  if (!out->destination || out->destination[0] != '/')
    return bad(e, "destination", "must be an absolute path");
  return 0;
}

static int read_mounts(const json_t *root, struct ctr_spec *s, err_t **e)
{
  const json_t *a;
  size_t n;
  if (get_objects(root, "mounts", &a, &n, e) < 0)
    return -1;
  s->mounts = xcalloc(n ? n : 1, sizeof(*s->mounts));
  s->n_mounts = n;
  for (size_t i = 0; i < n; i++)
    if (read_mount(json_at(a, i), &s->mounts[i], e) < 0)
      return err_wrap(e, "mounts[%zu]", i);
  if (get_objects(root, "devices", &a, &n, e) < 0)
    return -1;
  s->devices = xcalloc(n ? n : 1, sizeof(*s->devices));
  s->n_devices = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *d = json_at(a, i);
    struct device_spec *out = &s->devices[i];
    if (get_str(d, "host_path", &out->host_path, e) < 0 ||
        get_str(d, "container_path", &out->container_path, e) < 0 ||
        get_str(d, "permissions", &out->permissions, e) < 0)
      return err_wrap(e, "devices[%zu]", i);
    if (!out->host_path)
      return bad(e, "devices", "element %zu has no host_path", i);
  }
  return 0;
}

static int read_hugepages(const json_t *r, struct resources *out, err_t **e)
{
  const json_t *a;
  size_t n;
  if (get_objects(r, "hugepages", &a, &n, e) < 0)
    return -1;
  out->hugepages = xcalloc(n ? n : 1, sizeof(*out->hugepages));
  out->n_hugepages = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *h = json_at(a, i);
    if (get_str(h, "page_size", &out->hugepages[i].page_size, e) < 0 ||
        get_u64(h, "limit", &out->hugepages[i].limit, e) < 0)
      return err_wrap(e, "hugepages[%zu]", i);
    if (!out->hugepages[i].page_size)
      return bad(e, "hugepages", "element %zu has no page_size", i);
  }
  return 0;
}

static int read_resources(const json_t *r, struct resources *out, err_t **e)
{
  if (absent(r))
    return 0;
  if (json_type(r) != JSON_OBJECT)
    return bad(e, "resources", "must be an object");
  if (get_i64(r, "cpu_period", &out->cpu_period, e) < 0 ||
      get_i64(r, "cpu_quota", &out->cpu_quota, e) < 0 ||
      get_i64(r, "cpu_shares", &out->cpu_shares, e) < 0 ||
      get_i64(r, "memory_limit", &out->memory_limit, e) < 0 ||
      get_i64(r, "memory_swap_limit", &out->memory_swap_limit, e) < 0 ||
      get_str(r, "cpuset_cpus", &out->cpuset_cpus, e) < 0 ||
      get_str(r, "cpuset_mems", &out->cpuset_mems, e) < 0 ||
      get_i64(r, "pids_limit", &out->pids_limit, e) < 0 ||
      get_i64(r, "oom_score_adj", &out->oom_score_adj, e) < 0 || read_hugepages(r, out, e) < 0 ||
      get_kv(r, "unified", &out->unified, &out->n_unified, e) < 0)
    return err_wrap(e, "resources");
  return 0;
}

static int read_process(const json_t *o, struct ctr_spec *s, err_t **e)
{
  if (get_strv(o, "argv", &s->argv, &s->argc, e) < 0 ||
      get_strv(o, "env", &s->env, &s->n_env, e) < 0 || get_str(o, "cwd", &s->cwd, e) < 0 ||
      get_u32(o, "uid", &s->uid, e) < 0 || get_u32(o, "gid", &s->gid, e) < 0 ||
      get_bool(o, "tty", &s->tty, e) < 0 || get_bool(o, "stdin_open", &s->stdin_open, e) < 0 ||
      get_bool(o, "stdin_once", &s->stdin_once, e) < 0 ||
      get_str(o, "hostname", &s->hostname, e) < 0)
    return -1;
  const json_t *a;
  size_t n;
  if (get_array(o, "groups", &a, &n, e) < 0)
    return -1;
  s->groups = xcalloc(n ? n : 1, sizeof(*s->groups));
  s->n_groups = n;
  for (size_t i = 0; i < n; i++) {
    long long g;
    if (json_int(json_at(a, i), &g) < 0 || g < 0 || g > UINT32_MAX)
      return bad(e, "groups", "element %zu must be a gid", i);
    s->groups[i] = (uint32_t)g;
  }
  return 0;
}

static int read_fs(const json_t *o, struct ctr_spec *s, err_t **e)
{
  if (get_strv(o, "lower_dirs", &s->lower_dirs, &s->n_lower, e) < 0 ||
      get_str(o, "upper_dir", &s->upper_dir, e) < 0 ||
      get_str(o, "work_dir", &s->work_dir, e) < 0 || get_str(o, "rootfs", &s->rootfs, e) < 0 ||
      get_bool(o, "readonly_rootfs", &s->readonly_rootfs, e) < 0 || read_mounts(o, s, e) < 0 ||
      get_strv(o, "masked_paths", &s->masked_paths, &s->n_masked, e) < 0 ||
      get_strv(o, "readonly_paths", &s->readonly_paths, &s->n_readonly, e) < 0)
    return -1;
  return 0;
}

static int read_privileges(const json_t *o, struct ctr_spec *s, err_t **e)
{
  int mode = SECCOMP_UNCONFINED;
  const json_t *c = json_get(o, "caps");
  if (get_bool(o, "privileged", &s->privileged, e) < 0 ||
      get_bool(o, "no_new_privs", &s->no_new_privs, e) < 0 ||
      get_u64(c, "bounding", &s->caps.bounding, e) < 0 ||
      get_u64(c, "effective", &s->caps.effective, e) < 0 ||
      get_u64(c, "permitted", &s->caps.permitted, e) < 0 ||
      get_u64(c, "inheritable", &s->caps.inheritable, e) < 0 ||
      get_u64(c, "ambient", &s->caps.ambient, e) < 0 ||
      get_enum(o, "seccomp", seccomp_names, N_OF(seccomp_names), &mode, e) < 0 ||
      get_str(o, "seccomp_profile", &s->seccomp_profile, e) < 0 ||
      get_kv(o, "sysctls", &s->sysctls, &s->n_sysctls, e) < 0)
    return -1;
  s->seccomp = (enum seccomp_mode)mode;
  return 0;
}

static int read_ns(const json_t *o, struct ns_spec *ns, err_t **e)
{
  int m[4] = {NS_MODE_POD, NS_MODE_POD, NS_MODE_POD, NS_MODE_POD};
  static const char *const keys[4] = {"net", "ipc", "uts", "pid"};
  for (int i = 0; i < 4; i++)
    if (get_enum(o, keys[i], ns_mode_names, N_OF(ns_mode_names), &m[i], e) < 0)
      return err_wrap(e, "ns");
  ns->net = (enum ns_mode)m[0];
  ns->ipc = (enum ns_mode)m[1];
  ns->uts = (enum ns_mode)m[2];
  ns->pid = (enum ns_mode)m[3];
  int64_t target = 0;
  if (get_str(o, "netns_path", &ns->netns_path, e) < 0 ||
      get_str(o, "ipcns_path", &ns->ipcns_path, e) < 0 ||
      get_str(o, "utsns_path", &ns->utsns_path, e) < 0 ||
      get_str(o, "pidns_path", &ns->pidns_path, e) < 0 || get_i64(o, "target_pid", &target, e) < 0)
    return err_wrap(e, "ns");
  ns->target_pid = (pid_t)target;
  return 0;
}

static int read_spec(const json_t *root, struct ctr_spec *s, err_t **e)
{
  int kind = EXECUTOR_NAMESPACES;
  cleanup_free char *exe = NULL;
  const json_t *sb = json_get(root, "sandbox");
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "spec: not a JSON object");
  if (get_str(root, "id", &s->id, e) < 0 || get_str(root, "pod_id", &s->pod_id, e) < 0 ||
      get_str(root, "name", &s->name, e) < 0 || get_str(root, "executor", &exe, e) < 0 ||
      get_str(sb, "kernel_release", &s->sandbox.kernel_release, e) < 0 ||
      get_str(sb, "kernel_version", &s->sandbox.kernel_version, e) < 0 ||
      get_str(sb, "machine", &s->sandbox.machine, e) < 0 ||
      get_str(sb, "policy_file", &s->sandbox.policy_file, e) < 0 ||
      get_str(sb, "kmsg_path", &s->sandbox.kmsg_path, e) < 0 ||
      get_str(sb, "files_dir", &s->sandbox.files_dir, e) < 0 ||
      get_str(sb, "prog_path", &s->sandbox.prog_path, e) < 0)
    return -1;
  if (exe && executor_kind_parse(exe, (enum executor_kind *)&kind) < 0)
    return bad(e, "executor", "unknown executor \"%s\"", exe);
  s->executor = (enum executor_kind)kind;
  if (read_process(root, s, e) < 0 || read_fs(root, s, e) < 0 || read_privileges(root, s, e) < 0 ||
      read_ns(json_get(root, "ns"), &s->ns, e) < 0 ||
      get_str(root, "cgroup_parent", &s->cgroup_parent, e) < 0 ||
      get_str(root, "cgroup_name", &s->cgroup_name, e) < 0 ||
      read_resources(json_get(root, "resources"), &s->res, e) < 0 ||
      get_str(root, "log_path", &s->log_path, e) < 0 ||
      get_str(root, "stop_signal", &s->stop_signal, e) < 0)
    return -1;
  if (s->argc == 0)
    return bad(e, "argv", "must name a program");
  return 0;
}

int spec_read(const char *path, struct ctr_spec **out, err_t **e)
{
  cleanup_free char *text = NULL;
  cleanup_json json_t *root = NULL;
  if (file_read_all(path, SPEC_MAX_BYTES, &text, NULL, e) < 0)
    return -1;
  if (json_parse(text, &root, e) < 0)
    return err_wrap(e, "%s", path);
  struct ctr_spec *s = xcalloc(1, sizeof(*s));
  if (read_spec(root, s, e) < 0) {
    spec_free(s);
    return err_wrap(e, "%s", path);
  }
  *out = s;
  return 0;
}
