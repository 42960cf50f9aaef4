/* ctrspec.c - CreateContainer's translation: the process (argv, env, cwd), identity,
 * rootfs layers, namespaces, cgroup, resources and log path; ctrspec_user.c,
 * ctrspec_security.c and ctrspec_mounts.c fill the rest.
 *
 * The reference for every rule is containerd's CRI plugin (container_create*.go) and
 * kubelet, so a pod behaves here as it does on a containerd node.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/ctrspec_int.h"

/* containerd's oci.WithDefaultPathEnv (the same as Docker's). */
#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_STOP_SIGNAL "SIGTERM"

DEFINE_CLEANUP(spec, struct ctr_spec)

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

char **ctrspec_strv_dup(char *const *v, size_t n)
{
  char **out = xcalloc(n + 1, sizeof(*out));
  for (size_t i = 0; i < n; i++)
    out[i] = xstrdup(v[i]);
  return out;
}

void ctrspec_strv_free(char **v)
{
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

char *ctrspec_path_clean(const char *abs_path)
{
  size_t len = 0;
  char *out = xmalloc(strlen(abs_path) + 2);
  const char *p = abs_path;
  for (;;) {
    p += strspn(p, "/");
    size_t cl = strcspn(p, "/");
    if (cl == 0)
      break;
    if (cl == 2 && p[0] == '.' && p[1] == '.') {
      while (len > 0 && out[len - 1] != '/')
        len--;
      if (len > 0)
        len--;
    } else if (!(cl == 1 && p[0] == '.')) {
      out[len++] = '/';
      memcpy(out + len, p, cl);
      len += cl;
    }
    p += cl;
  }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  return out;
}

/* ---- argv ------------------------------------------------------------------------ */

static void strv_append(char ***v, size_t *n, char *const *add, size_t n_add)
{
  *v = xreallocarray(*v, *n + n_add + 1, sizeof(**v));
  for (size_t i = 0; i < n_add; i++)
    (*v)[(*n)++] = xstrdup(add[i]);
  (*v)[*n] = NULL;
}

/* Kubernetes' rule (as containerd's WithProcessArgs has it, after moby): a command
 * replaces the entrypoint and drops the image's cmd; args replace the cmd. An image
 * entrypoint of exactly [""] means "no entrypoint" (Docker's ENTRYPOINT []). */
int ctrspec_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                 const struct image_config *img, char ***argv, size_t *argc, err_t **e)
{
  char **v = NULL;
  size_t n = 0;
  if (n_command > 0) {
    strv_append(&v, &n, command, n_command);
  } else if (img) {
    const struct image_strv *ep = &img->entrypoint;
    if (!(ep->n == 1 && ep->items[0][0] == '\0'))
      strv_append(&v, &n, ep->items, ep->n);
  }
  if (n_args > 0)
    strv_append(&v, &n, args, n_args);
  else if (n_command == 0 && img)
    strv_append(&v, &n, img->cmd.items, img->cmd.n);
  if (n == 0) {
    ctrspec_strv_free(v);
    return err_set(e, ERR_INVALID, 0,
                   "no command: the image has no entrypoint or cmd and the container config "
                   "names none");
  }
  *argv = v;
  *argc = n;
  return 0;
}

/* ---- env ------------------------------------------------------------------------- */

struct env_list {
  char **v;
  size_t n;
};

static size_t env_key_len(const char *entry)
{
  const char *eq = strchr(entry, '=');
  return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* containerd's replaceOrAppendEnvValues: a key already present is replaced in place, a
 * new one appended; an entry without '=' unsets the key. */
static void env_set(struct env_list *l, const char *entry)
{
  size_t kl = env_key_len(entry);
  bool unset = entry[kl] != '=';
  for (size_t i = 0; i < l->n; i++) {
    if (env_key_len(l->v[i]) != kl || strncmp(l->v[i], entry, kl) != 0)
      continue;
    free(l->v[i]);
    if (unset) {
      memmove(&l->v[i], &l->v[i + 1], (l->n - i) * sizeof(*l->v));
      l->n--;
    } else {
      l->v[i] = xstrdup(entry);
    }
    return;
  }
  if (unset)
    return;
  l->v = xreallocarray(l->v, l->n + 2, sizeof(*l->v));
  l->v[l->n++] = xstrdup(entry);
  l->v[l->n] = NULL;
}

/* PATH default, HOSTNAME, the image's env, then the CRI envs (later wins), in
 * containerd's order. */
static int build_env(const Runtime__V1__ContainerConfig *cfg, const struct ctrspec_pod *pod,
                     const struct image_config *img, struct ctr_spec *s, err_t **e)
{
  struct env_list l = {xcalloc(1, sizeof(char *)), 0};
  env_set(&l, DEFAULT_PATH_ENV);
  char host[HOST_NAME_MAX + 1] = "";
  const char *hostname = nonempty(pod->hostname);
  if (!hostname && gethostname(host, sizeof(host) - 1) == 0)
    hostname = host;
  cleanup_free char *h = xasprintf("HOSTNAME=%s", hostname ? hostname : "");
  env_set(&l, h);
  for (size_t i = 0; img && i < img->env.n; i++)
    env_set(&l, img->env.items[i]);
  for (size_t i = 0; i < cfg->n_envs; i++) {
    const Runtime__V1__KeyValue *kv = cfg->envs[i];
    if (!kv->key[0] || strchr(kv->key, '=')) {
      ctrspec_strv_free(l.v);
      return err_set(e, ERR_INVALID, 0, "env name \"%s\" is empty or holds '='", kv->key);
    }
    cleanup_free char *entry = xasprintf("%s=%s", kv->key, kv->value);
    env_set(&l, entry);
  }
  s->env = l.v;
  s->n_env = l.n;
  return 0;
}

/* ---- process, identity, rootfs --------------------------------------------------- */

static int build_cwd(const Runtime__V1__ContainerConfig *cfg, const struct image_config *img,
                     struct ctr_spec *s, err_t **e)
{
  const char *wd = nonempty(cfg->working_dir);
  if (wd) {
    if (wd[0] != '/')
      return err_set(e, ERR_INVALID, 0, "working_dir \"%s\" is not absolute", wd);
    s->cwd = ctrspec_path_clean(wd);
    return 0;
  }
  wd = img ? nonempty(img->working_dir) : NULL;
  if (!wd) {
    s->cwd = xstrdup("/");
    return 0;
  }
  /* Docker resolves a relative WORKDIR against "/" */
  cleanup_free char *abs = xasprintf("/%s", wd);
  s->cwd = ctrspec_path_clean(abs);
  return 0;
}

static int build_process(const Runtime__V1__ContainerConfig *cfg, const struct ctrspec_pod *pod,
                         const struct image_config *img, struct ctr_spec *s, err_t **e)
{
  if (ctrspec_argv(cfg->command, cfg->n_command, cfg->args, cfg->n_args, img, &s->argv, &s->argc,
                   e) < 0)
    return -1;
  if (build_env(cfg, pod, img, s, e) < 0 || build_cwd(cfg, img, s, e) < 0)
    return -1;
  s->tty = cfg->tty;
  s->stdin_open = cfg->stdin;
  s->stdin_once = cfg->stdin_once;
  s->stop_signal = xstrdup(img && nonempty(img->stop_signal) ? img->stop_signal
                                                             : DEFAULT_STOP_SIGNAL);
  return 0;
}

static void sandbox_opts_copy(struct sandbox_opts *dst, const struct sandbox_opts *src)
{
  if (!src)
    return;
  dst->kernel_release = xstrdup(src->kernel_release);
  dst->kernel_version = xstrdup(src->kernel_version);
  dst->machine = xstrdup(src->machine);
  dst->policy_file = xstrdup(src->policy_file);
  dst->prog_path = xstrdup(src->prog_path);
}

static int build_identity(const Runtime__V1__ContainerConfig *cfg, const struct ctrspec_pod *pod,
                          const struct ctrspec_paths *paths, struct ctr_spec *s, err_t **e)
{
  if (!cfg->metadata || !nonempty(cfg->metadata->name))
    return err_set(e, ERR_INVALID, 0, "container config has no metadata.name");
  if (!nonempty(paths->id) || !nonempty(paths->state_dir) || !nonempty(pod->id))
    return err_set(e, ERR_INTERNAL, 0, "ctrspec: container id, state dir and pod id are required");
  s->id = xstrdup(paths->id);
  s->pod_id = xstrdup(pod->id);
  s->name = xstrdup(cfg->metadata->name);
  s->executor = pod->executor;
  if (pod->executor == EXECUTOR_SANDBOX) {
    sandbox_opts_copy(&s->sandbox, pod->sandbox);
    s->sandbox.kmsg_path = xstrdup(pod->sandbox_kmsg);
  }
  s->hostname = xstrdup(nonempty(pod->hostname));
  return 0;
}

/* The overlay: layers are stored bottom first, overlayfs wants the top one first. */
static void build_rootfs(const struct ctrspec_image *img, const struct ctrspec_paths *paths,
                         struct ctr_spec *s)
{
  s->lower_dirs = xcalloc(img->n_layers + 1, sizeof(char *));
  for (size_t i = 0; i < img->n_layers; i++)
    s->lower_dirs[i] = xstrdup(img->layer_dirs[img->n_layers - 1 - i]);
  s->n_lower = img->n_layers;
  s->upper_dir = xstrdup(nonempty(paths->upper_dir));
  s->work_dir = xstrdup(nonempty(paths->work_dir));
  s->rootfs = path_join(paths->state_dir, "rootfs");
}

/* ---- namespaces ------------------------------------------------------------------ */

static const char *ns_mode_name(Runtime__V1__NamespaceMode m)
{
  static const char *const names[] = {"POD", "CONTAINER", "NODE", "TARGET"};
  return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "unknown";
}

/* A POD mode joins the pod's pinned namespace, which must then exist; a pod on the
 * host's namespace makes POD mean the host's. */
static int ns_pod_or_node(const char *what, Runtime__V1__NamespaceMode m, bool pod_on_host,
                          const char *pin, bool container_ok, enum ns_mode *out, char **path,
                          err_t **e)
{
  bool pod = m == RUNTIME__V1__NAMESPACE_MODE__POD;
  if (m == RUNTIME__V1__NAMESPACE_MODE__NODE || (pod && pod_on_host)) {
    *out = NS_MODE_NODE;
    return 0;
  }
  if (m == RUNTIME__V1__NAMESPACE_MODE__CONTAINER && container_ok) {
    *out = NS_MODE_CONTAINER;
    return 0;
  }
  if (!pod)
    return err_set(e, ERR_INVALID, 0, "%s namespace mode %s is not supported", what,
                   ns_mode_name(m));
  if (!nonempty(pin))
    return err_set(e, ERR_INVALID, 0, "%s namespace mode POD but the pod has no %s namespace",
                   what, what);
  *out = NS_MODE_POD;
  *path = xstrdup(pin);
  return 0;
}

/* Missing namespace_options mean POD for all three (protobuf defaults), as containerd
 * reads them. UTS follows the network (CRI has no UTS mode): host network, host UTS.
 * pid TARGET leaves ns.target_pid 0: the caller looks up the target container's pid. */
static int build_namespaces(const ctrspec_sc_t *sc, const struct ctrspec_pod *pod,
                            struct ctr_spec *s, err_t **e)
{
  const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
  Runtime__V1__NamespaceMode net = o ? o->network : RUNTIME__V1__NAMESPACE_MODE__POD;
  Runtime__V1__NamespaceMode ipc = o ? o->ipc : RUNTIME__V1__NAMESPACE_MODE__POD;
  Runtime__V1__NamespaceMode pid = o ? o->pid : RUNTIME__V1__NAMESPACE_MODE__POD;
  struct ns_spec *ns = &s->ns;
  if (ns_pod_or_node("network", net, pod->host_network, pod->netns_path, false, &ns->net,
                     &ns->netns_path, e) < 0)
    return -1;
  if (ns_pod_or_node("ipc", ipc, pod->host_ipc, pod->ipcns_path, true, &ns->ipc, &ns->ipcns_path,
                     e) < 0)
    return -1;
  if (ns->net == NS_MODE_NODE)
    ns->uts = NS_MODE_NODE;
  else if (ns_pod_or_node("uts", RUNTIME__V1__NAMESPACE_MODE__POD, false, pod->utsns_path, false,
                          &ns->uts, &ns->utsns_path, e) < 0)
    return -1;
  if (pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
    if (!nonempty(o->target_id))
      return err_set(e, ERR_INVALID, 0, "pid namespace mode TARGET without a target_id");
    ns->pid = NS_MODE_TARGET;
    ns->target_pid = 0;
    return 0;
  }
  /* a pod that does not share its pid namespace (kubelet's default) has none to join:
   * POD then means the container's own, which is what kubelet asks for there anyway */
  if (pid == RUNTIME__V1__NAMESPACE_MODE__POD && !pod->host_pid && !nonempty(pod->pidns_path))
    pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  return ns_pod_or_node("pid", pid, pod->host_pid, pod->pidns_path, true, &ns->pid,
                        &ns->pidns_path, e);
}

/* ---- cgroup, resources, log ------------------------------------------------------ */

/* The pod's parent was checked against the driver at RunPodSandbox; checking again
 * catches a crispd restarted with the other driver (the pod's containers cannot go
 * where kubelet's pod cgroup is not). */
static int build_cgroup(const struct ctrspec_pod *pod, struct ctr_spec *s, err_t **e)
{
  return cgroup_place(pod->cgroup_driver, pod->cgroup_parent, pod->id, s->id, &s->cgroup_parent,
                      &s->cgroup_name, e);
}

int ctrspec_resources(const Runtime__V1__LinuxContainerResources *r, struct resources *o,
                      err_t **e)
{
  if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
    return err_set(e, ERR_INVALID, 0, "oom_score_adj %lld is outside [-1000, 1000]",
                   (long long)r->oom_score_adj);
  o->cpu_period = r->cpu_period;
  o->cpu_quota = r->cpu_quota;
  o->cpu_shares = r->cpu_shares;
  o->memory_limit = r->memory_limit_in_bytes;
  o->memory_swap_limit = r->memory_swap_limit_in_bytes;
  /* kept even when negative: without CAP_SYS_RESOURCE the executor degrades it */
  o->oom_score_adj = r->oom_score_adj;
  o->cpuset_cpus = xstrdup(nonempty(r->cpuset_cpus));
  o->cpuset_mems = xstrdup(nonempty(r->cpuset_mems));
  if (r->n_hugepage_limits > 0)
    o->hugepages = xcalloc(r->n_hugepage_limits, sizeof(*o->hugepages));
  for (size_t i = 0; i < r->n_hugepage_limits; i++) {
    o->hugepages[i].page_size = xstrdup(r->hugepage_limits[i]->page_size);
    o->hugepages[i].limit = r->hugepage_limits[i]->limit;
  }
  o->n_hugepages = r->n_hugepage_limits;
  if (r->n_unified > 0)
    o->unified = xcalloc(r->n_unified, sizeof(*o->unified));
  for (size_t i = 0; i < r->n_unified; i++) {
    o->unified[i].key = xstrdup(r->unified[i]->key);
    o->unified[i].value = xstrdup(r->unified[i]->value);
  }
  o->n_unified = r->n_unified;
  return 0;
}

static int build_resources(const Runtime__V1__ContainerConfig *cfg, struct ctr_spec *s, err_t **e)
{
  const Runtime__V1__LinuxContainerResources *r = cfg->linux ? cfg->linux->resources : NULL;
  return r ? ctrspec_resources(r, &s->res, e) : 0;
}

static bool path_climbs(const char *rel)
{
  for (const char *p = rel; *p;) {
    size_t cl = strcspn(p, "/");
    if (cl == 2 && p[0] == '.' && p[1] == '.')
      return true;
    p += cl;
    p += strspn(p, "/");
  }
  return false;
}

/* kubelet gives the pod's log_directory and a path relative to it; both empty or
 * either empty means no log (containerd discards the output then). */
static int build_log_path(const Runtime__V1__ContainerConfig *cfg, const struct ctrspec_pod *pod,
                          struct ctr_spec *s, err_t **e)
{
  const char *dir = nonempty(pod->log_directory), *rel = nonempty(cfg->log_path);
  if (!dir || !rel)
    return 0;
  if (rel[0] == '/' || path_climbs(rel))
    return err_set(e, ERR_INVALID, 0, "log path \"%s\" climbs out of the pod's log directory",
                   rel);
  s->log_path = path_join(dir, rel);
  return 0;
}

/* ---- the whole --------------------------------------------------------------------- */

int ctrspec_build(const Runtime__V1__ContainerConfig *cfg,
                  const Runtime__V1__PodSandboxConfig *pod_cfg, const struct ctrspec_pod *pod,
                  const struct ctrspec_image *img, const struct ctrspec_paths *paths,
                  struct ctr_spec **out, err_t **e)
{
  if (!cfg || !pod || !img || !paths)
    return err_set(e, ERR_INTERNAL, 0, "ctrspec_build: missing input");
  const ctrspec_sc_t *sc = cfg->linux ? cfg->linux->security_context : NULL;
  CLEANUP(spec) struct ctr_spec *s = xcalloc(1, sizeof(*s));
  if (build_identity(cfg, pod, paths, s, e) < 0 || build_process(cfg, pod, img->config, s, e) < 0)
    return -1;
  if (ctrspec_user(sc, img, s, e) < 0)
    return -1;
  build_rootfs(img, paths, s);
  if (ctrspec_security(sc, pod_cfg, s, e) < 0 || build_namespaces(sc, pod, s, e) < 0)
    return -1;
  if (ctrspec_mounts(cfg, pod, s, e) < 0 || ctrspec_devices(cfg, s, e) < 0)
    return -1;
  if (build_cgroup(pod, s, e) < 0 || build_resources(cfg, s, e) < 0 ||
      build_log_path(cfg, pod, s, e) < 0)
    return -1;
  if (img->config && img->config->volumes.n > 0)
    log_debug("image volumes ignored: kubelet mounts every volume explicitly", "container",
              s->id, "volumes", img->config->volumes.items[0], NULL);
  *out = steal(&s);
  return 0;
}
