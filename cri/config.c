#include "cri/config.h"

#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"

#define CONFIG_MAX_BYTES (1 << 20)

static void strv_push(struct strv *s, const char *v)
{
  s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
  s->v[s->n++] = xstrdup(v);
}

static void strv_clear(struct strv *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

void config_set_str(char **field, const char *value)
{
  free(*field);
  *field = xstrdup(value);
}

const char *cgroup_driver_name(enum cgroup_driver d)
{
  return d == CGROUP_DRIVER_SYSTEMD ? "systemd" : "cgroupfs";
}

void config_init_defaults(struct crisp_config *c)
{
  memset(c, 0, sizeof(*c));
  c->root = xstrdup("/var/lib/crisp");
  c->state = xstrdup("/run/crisp");
  c->listen = xstrdup("/run/crisp/crisp.sock");
  c->stream_address = xstrdup("127.0.0.1:0");
  c->log_level = LOG_INFO;
  c->cni_conf_dir = xstrdup("/etc/cni/net.d");
  strv_push(&c->cni_bin_dirs, "/opt/cni/bin");
  strv_push(&c->cni_bin_dirs, "/usr/lib/cni");
  c->pull_parallelism = 3;
  runtimes_init_defaults(&c->runtimes);
  c->cgroup_driver = CGROUP_DRIVER_CGROUPFS;
}

static void mirrors_clear(struct crisp_config *c)
{
  for (size_t i = 0; i < c->n_mirrors; i++) {
    free(c->mirrors[i].host);
    strv_clear(&c->mirrors[i].endpoints);
  }
  free(c->mirrors);
  c->mirrors = NULL;
  c->n_mirrors = 0;
}

void config_clear(struct crisp_config *c)
{
  free(c->root);
  free(c->state);
  free(c->listen);
  free(c->stream_address);
  free(c->cni_conf_dir);
  strv_clear(&c->cni_bin_dirs);
  mirrors_clear(c);
  strv_clear(&c->insecure_registries);
  free(c->registry_auth_file);
  runtimes_clear(&c->runtimes);
  memset(c, 0, sizeof(*c));
}

/* ---- reading ---------------------------------------------------------------- */

/* Every error names the source and the key path ("config.json: registries.mirrors: ...") */
struct reader {
  const char *source;
  err_t **e;
};

__attribute__((format(printf, 3, 4)))
static int bad(struct reader *r, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *why = xvasprintf(fmt, ap);
  va_end(ap);
  return err_set(r->e, ERR_INVALID, 0, "%s: key \"%s\": %s", r->source, key, why);
}

static int want_type(struct reader *r, const char *key, const json_t *v, enum json_type t)
{
  if (json_type(v) != t)
    return bad(r, key, "must be %s, not %s", json_type_name(t), json_type_name(json_type(v)));
  return 0;
}

static int read_path(struct reader *r, const char *key, const json_t *v, char **field)
{
  if (want_type(r, key, v, JSON_STRING) < 0)
    return -1;
  const char *s = json_str(v);
  if (s[0] != '/')
    return bad(r, key, "must be an absolute path, not \"%s\"", s);
  config_set_str(field, s);
  return 0;
}

static int read_strv(struct reader *r, const char *key, const json_t *v, struct strv *out,
                     bool paths)
{
  if (want_type(r, key, v, JSON_ARRAY) < 0)
    return -1;
  strv_clear(out);
  for (size_t i = 0; i < json_len(v); i++) {
    const char *s = json_str(json_at(v, i));
    if (!s || !*s)
      return bad(r, key, "element %zu must be a non-empty string", i);
    if (paths && s[0] != '/')
      return bad(r, key, "element %zu must be an absolute path, not \"%s\"", i, s);
    strv_push(out, s);
  }
  return 0;
}

static int read_listen(struct reader *r, const char *key, const json_t *v, char **field)
{
  if (want_type(r, key, v, JSON_STRING) < 0)
    return -1;
  const char *s = json_str(v);
  if (strncmp(s, "unix://", 7) == 0)
    s += 7;
  if (s[0] != '/')
    return bad(r, key, "must be an absolute unix socket path, not \"%s\"", json_str(v));
  if (strlen(s) > 107)
    return bad(r, key, "socket path is longer than the 107 bytes a unix socket allows");
  config_set_str(field, s);
  return 0;
}

static int read_stream_address(struct reader *r, const char *key, const json_t *v, char **field)
{
  if (want_type(r, key, v, JSON_STRING) < 0)
    return -1;
  const char *s = json_str(v);
  const char *colon = strrchr(s, ':');
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || colon == s || !end || *end || end == colon + 1 || port < 0 || port > 65535)
    return bad(r, key, "must be \"host:port\" (port 0 picks a free one), not \"%s\"", s);
  config_set_str(field, s);
  return 0;
}

static int read_mirrors(struct reader *r, const json_t *v, struct crisp_config *c)
{
  if (want_type(r, "registries.mirrors", v, JSON_OBJECT) < 0)
    return -1;
  mirrors_clear(c);
  for (size_t i = 0; i < json_len(v); i++) {
    const char *host = json_key_at(v, i);
    cleanup_free char *key = xasprintf("registries.mirrors.%s", host);
    if (!*host || strchr(host, '/'))
      return bad(r, key, "a mirror is keyed by a registry host such as \"registry.k8s.io\"");
    c->mirrors = xreallocarray(c->mirrors, c->n_mirrors + 1, sizeof(*c->mirrors));
    struct registry_mirror *m = &c->mirrors[c->n_mirrors++];
    memset(m, 0, sizeof(*m));
    m->host = xstrdup(host);
    if (read_strv(r, key, json_at(v, i), &m->endpoints, false) < 0)
      return -1;
    for (size_t j = 0; j < m->endpoints.n; j++) {
      const char *ep = m->endpoints.v[j];
      if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
        return bad(r, key, "endpoint \"%s\" must start with http:// or https://", ep);
    }
  }
  return 0;
}

static int read_registries(struct reader *r, const json_t *v, struct crisp_config *c)
{
  if (want_type(r, "registries", v, JSON_OBJECT) < 0)
    return -1;
  for (size_t i = 0; i < json_len(v); i++) {
    const char *k = json_key_at(v, i);
    const json_t *val = json_at(v, i);
    if (strcmp(k, "mirrors") == 0) {
      if (read_mirrors(r, val, c) < 0)
        return -1;
    } else if (strcmp(k, "insecure") == 0) {
      if (read_strv(r, "registries.insecure", val, &c->insecure_registries, false) < 0)
        return -1;
    } else if (strcmp(k, "auth_file") == 0) {
      if (read_path(r, "registries.auth_file", val, &c->registry_auth_file) < 0)
        return -1;
    } else if (strcmp(k, "pull_parallelism") == 0) {
      long long n;
      if (json_int(val, &n) < 0 || n < 1 || n > 32)
        return bad(r, "registries.pull_parallelism", "must be an integer from 1 to 32");
      c->pull_parallelism = (int)n;
    } else {
      cleanup_free char *key = xasprintf("registries.%s", k);
      return bad(r, key, "unknown key (known: mirrors, insecure, auth_file, pull_parallelism)");
    }
  }
  return 0;
}

static int read_cni(struct reader *r, const json_t *v, struct crisp_config *c)
{
  if (want_type(r, "cni", v, JSON_OBJECT) < 0)
    return -1;
  for (size_t i = 0; i < json_len(v); i++) {
    const char *k = json_key_at(v, i);
    if (strcmp(k, "conf_dir") == 0) {
      if (read_path(r, "cni.conf_dir", json_at(v, i), &c->cni_conf_dir) < 0)
        return -1;
    } else if (strcmp(k, "bin_dirs") == 0) {
      if (read_strv(r, "cni.bin_dirs", json_at(v, i), &c->cni_bin_dirs, true) < 0)
        return -1;
    } else {
      cleanup_free char *key = xasprintf("cni.%s", k);
      return bad(r, key, "unknown key (known: conf_dir, bin_dirs)");
    }
  }
  return 0;
}

static int read_opt_str(struct reader *r, const char *key, const json_t *v, char **field)
{
  if (want_type(r, key, v, JSON_STRING) < 0)
    return -1;
  config_set_str(field, json_str(v));
  return 0;
}

static int read_handler(struct reader *r, const char *name, const json_t *v, struct runtimes *rt)
{
  cleanup_free char *key = xasprintf("runtimes.%s", name);
  if (want_type(r, key, v, JSON_OBJECT) < 0)
    return -1;
  if (!*name || strlen(name) > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != strlen(name))
    return bad(r, key, "a handler name is a DNS label (lowercase letters, digits, '-', '.')");
  for (size_t i = 0; i < rt->n; i++)
    if (strcmp(rt->v[i].name, name) == 0)
      return bad(r, key, "handler defined twice");
  const char *ex = json_str(json_get(v, "executor"));
  enum executor_kind kind;
  cleanup_free char *exkey = xasprintf("%s.executor", key);
  if (!ex)
    return bad(r, exkey, "missing: say \"namespaces\" or \"sandbox\"");
  if (executor_kind_parse(ex, &kind) < 0)
    return bad(r, exkey, "must be \"namespaces\" or \"sandbox\", not \"%s\"", ex);
  struct rt_handler *h = runtimes_add(rt, name, kind);
  for (size_t i = 0; i < json_len(v); i++) {
    const char *k = json_key_at(v, i);
    const json_t *val = json_at(v, i);
    cleanup_free char *sub = xasprintf("%s.%s", key, k);
    if (strcmp(k, "executor") == 0)
      continue;
    if (kind != EXECUTOR_SANDBOX)
      return bad(r, sub, "unknown key (the namespaces executor takes no options)");
    int rc;
    if (strcmp(k, "kernel_release") == 0)
      rc = read_opt_str(r, sub, val, &h->sandbox.kernel_release);
    else if (strcmp(k, "kernel_version") == 0)
      rc = read_opt_str(r, sub, val, &h->sandbox.kernel_version);
    else if (strcmp(k, "machine") == 0)
      rc = read_opt_str(r, sub, val, &h->sandbox.machine);
    else if (strcmp(k, "policy") == 0)
      rc = read_path(r, sub, val, &h->sandbox.policy_file);
    else
      rc = bad(r, sub, "unknown key (known: executor, kernel_release, kernel_version, machine, policy)");
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int read_runtimes(struct reader *r, const json_t *v, struct crisp_config *c)
{
  if (want_type(r, "runtimes", v, JSON_OBJECT) < 0)
    return -1;
  if (json_len(v) == 0)
    return bad(r, "runtimes", "at least one handler is needed");
  /* a "runtimes" object replaces the built-in table; the default name survives */
  cleanup_free char *def = xstrdup(c->runtimes.default_name);
  runtimes_clear(&c->runtimes);
  c->runtimes.default_name = steal(&def);
  for (size_t i = 0; i < json_len(v); i++)
    if (read_handler(r, json_key_at(v, i), json_at(v, i), &c->runtimes) < 0)
      return -1;
  return 0;
}

static int read_top(struct reader *r, const char *k, const json_t *val, struct crisp_config *c)
{
  if (strcmp(k, "root") == 0)
    return read_path(r, k, val, &c->root);
  if (strcmp(k, "state") == 0)
    return read_path(r, k, val, &c->state);
  if (strcmp(k, "listen") == 0)
    return read_listen(r, k, val, &c->listen);
  if (strcmp(k, "stream_address") == 0)
    return read_stream_address(r, k, val, &c->stream_address);
  if (strcmp(k, "log_level") == 0) {
    const char *s = json_str(val);
    if (!s || log_level_parse(s, &c->log_level) < 0)
      return bad(r, k, "must be one of debug, info, warn, error");
    return 0;
  }
  if (strcmp(k, "cni") == 0)
    return read_cni(r, val, c);
  if (strcmp(k, "registries") == 0)
    return read_registries(r, val, c);
  if (strcmp(k, "runtimes") == 0)
    return read_runtimes(r, val, c);
  if (strcmp(k, "default_runtime") == 0)
    return read_opt_str(r, k, val, &c->runtimes.default_name);
  if (strcmp(k, "cgroup_driver") == 0) {
    const char *s = json_str(val);
    if (s && strcmp(s, "cgroupfs") == 0)
      c->cgroup_driver = CGROUP_DRIVER_CGROUPFS;
    else if (s && strcmp(s, "systemd") == 0)
      c->cgroup_driver = CGROUP_DRIVER_SYSTEMD;
    else
      return bad(r, k, "must be \"cgroupfs\" or \"systemd\"");
    return 0;
  }
  return bad(r, k, "unknown key (known: root, state, listen, stream_address, log_level, cni, "
                   "registries, runtimes, default_runtime, cgroup_driver)");
}

int config_load_string(struct crisp_config *c, const char *text, const char *source, err_t **e)
{
  struct reader r = {source, e};
  cleanup_json json_t *root = NULL;
  if (json_parse(text, &root, e) < 0)
    return err_wrap(e, "%s", source);
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s: the configuration must be a JSON object", source);
  for (size_t i = 0; i < json_len(root); i++)
    if (read_top(&r, json_key_at(root, i), json_at(root, i), c) < 0)
      return -1;
  const struct rt_handler *h;
  if (runtimes_resolve(&c->runtimes, "", &h, e) < 0) {
    err_free(e);
    return bad(&r, "default_runtime", "\"%s\" is not one of the configured runtimes",
               c->runtimes.default_name);
  }
  return 0;
}

int config_load_file(struct crisp_config *c, const char *path, bool *found, err_t **e)
{
  cleanup_free char *text = NULL;
  err_t *rerr = NULL;
  *found = false;
  if (file_read_all(path, CONFIG_MAX_BYTES, &text, NULL, &rerr) < 0) {
    if (rerr->code == ERR_NOT_FOUND) {
      err_free(&rerr);
      return 0;
    }
    *e = rerr;
    return err_wrap(e, "read configuration");
  }
  *found = true;
  return config_load_string(c, text, path, e);
}

/* ---- writing ---------------------------------------------------------------- */

static void json_strv(struct buf *b, const struct strv *s)
{
  buf_putc(b, '[');
  for (size_t i = 0; i < s->n; i++) {
    if (i)
      buf_putc(b, ',');
    buf_json_str(b, s->v[i]);
  }
  buf_putc(b, ']');
}

static void json_kv(struct buf *b, const char *k, const char *v, bool comma)
{
  buf_json_str(b, k);
  buf_putc(b, ':');
  buf_json_str(b, v);
  if (comma)
    buf_putc(b, ',');
}

static void json_handler(struct buf *b, const struct rt_handler *h)
{
  buf_json_str(b, h->name);
  buf_puts(b, ":{");
  json_kv(b, "executor", executor_kind_name(h->executor), h->executor == EXECUTOR_SANDBOX);
  if (h->executor == EXECUTOR_SANDBOX) {
    json_kv(b, "kernel_release", h->sandbox.kernel_release ? h->sandbox.kernel_release : "", true);
    json_kv(b, "kernel_version", h->sandbox.kernel_version ? h->sandbox.kernel_version : "",
            h->sandbox.machine || h->sandbox.policy_file);
    if (h->sandbox.machine)
      json_kv(b, "machine", h->sandbox.machine, h->sandbox.policy_file != NULL);
    if (h->sandbox.policy_file)
      json_kv(b, "policy", h->sandbox.policy_file, false);
  }
  buf_putc(b, '}');
}

void config_to_json(const struct crisp_config *c, struct buf *b)
{
  buf_putc(b, '{');
  json_kv(b, "root", c->root, true);
  json_kv(b, "state", c->state, true);
  json_kv(b, "listen", c->listen, true);
  json_kv(b, "stream_address", c->stream_address, true);
  json_kv(b, "log_level", log_level_name(c->log_level), true);
  buf_puts(b, "\"cni\":{");
  json_kv(b, "conf_dir", c->cni_conf_dir, true);
  buf_puts(b, "\"bin_dirs\":");
  json_strv(b, &c->cni_bin_dirs);
  buf_puts(b, "},\"registries\":{\"mirrors\":{");
  for (size_t i = 0; i < c->n_mirrors; i++) {
    if (i)
      buf_putc(b, ',');
    buf_json_str(b, c->mirrors[i].host);
    buf_putc(b, ':');
    json_strv(b, &c->mirrors[i].endpoints);
  }
  buf_puts(b, "},\"insecure\":");
  json_strv(b, &c->insecure_registries);
  if (c->registry_auth_file) {
    buf_putc(b, ',');
    json_kv(b, "auth_file", c->registry_auth_file, false);
  }
  buf_printf(b, ",\"pull_parallelism\":%d},\"runtimes\":{", c->pull_parallelism);
  for (size_t i = 0; i < c->runtimes.n; i++) {
    if (i)
      buf_putc(b, ',');
    json_handler(b, &c->runtimes.v[i]);
  }
  buf_puts(b, "},");
  json_kv(b, "default_runtime", c->runtimes.default_name, true);
  json_kv(b, "cgroup_driver", cgroup_driver_name(c->cgroup_driver), false);
  buf_putc(b, '}');
}
