/* runtime_info.c - Version, Status, RuntimeConfig and UpdateRuntimeConfig. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "net/cidr.h"
#include "net/cni.h"

#ifndef CRISP_VERSION
#define CRISP_VERSION "0.0.0-dev"
#endif

/* The kubelet runtime API version every CRI v1 runtime reports. */
#define KUBELET_API_VERSION "0.1.0"
#define POD_CIDR_FILE "pod-cidr"

const char *cri_version(void) { return CRISP_VERSION; }

int cri_version_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                    ProtobufCMessage **resp, err_t **e)
{
  (void)d;
  (void)req;
  (void)e;
  Runtime__V1__VersionResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__version_response__init(r);
  r->version = (char *)KUBELET_API_VERSION;
  r->runtime_name = (char *)"crisp";
  r->runtime_version = (char *)CRISP_VERSION;
  r->runtime_api_version = (char *)"v1";
  *resp = &r->base;
  return 0;
}

static Runtime__V1__RuntimeCondition *condition(struct arena *a, const char *type, bool ok,
                                                const char *reason, const char *msg)
{
  Runtime__V1__RuntimeCondition *cnd = arena_alloc(a, sizeof(*cnd));
  runtime__v1__runtime_condition__init(cnd);
  cnd->type = arena_strdup(a, type);
  cnd->status = ok;
  cnd->reason = arena_strdup(a, ok ? "" : reason);
  cnd->message = arena_strdup(a, ok ? "" : msg);
  return cnd;
}

/* The runtime is ready when its directories are there and writable. */
static Runtime__V1__RuntimeCondition *runtime_ready(struct cri *d, struct arena *a)
{
  const char *dirs[] = {d->cfg.root, d->cfg.state};
  for (size_t i = 0; i < 2; i++) {
    if (access(dirs[i], W_OK | X_OK) < 0) {
      cleanup_free char *m = xasprintf("directory %s is not usable: %s", dirs[i], strerror(errno));
      return condition(a, "RuntimeReady", false, "RuntimeDirectoryUnusable", m);
    }
  }
  return condition(a, "RuntimeReady", true, NULL, NULL);
}

/* The network is ready once a valid CNI network config exists and its plugins are
 * found (checked on every call, so adding a config makes the node ready without a
 * restart). */
static Runtime__V1__RuntimeCondition *network_ready(struct cri *d, struct arena *a)
{
  struct cni_opts o;
  podenv_cni_opts(d, &o);
  cleanup_free char *why = NULL;
  if (!cni_ready(&o, &why))
    return condition(a, "NetworkReady", false, "NetworkPluginNotReady",
                     why ? why : "CNI is not ready");
  return condition(a, "NetworkReady", true, NULL, NULL);
}

static Runtime__V1__RuntimeHandler *handler(struct arena *a, const char *name)
{
  Runtime__V1__RuntimeHandler *h = arena_alloc(a, sizeof(*h));
  runtime__v1__runtime_handler__init(h);
  h->name = arena_strdup(a, name);
  h->features = arena_alloc(a, sizeof(*h->features));
  runtime__v1__runtime_handler_features__init(h->features);
  /* neither recursive read-only mounts nor user namespaces are offered yet */
  h->features->recursive_read_only_mounts = false;
  h->features->user_namespaces = false;
  return h;
}

static Runtime__V1__StatusResponse__InfoEntry *info(struct arena *a, const char *k, const char *v)
{
  Runtime__V1__StatusResponse__InfoEntry *en = arena_alloc(a, sizeof(*en));
  runtime__v1__status_response__info_entry__init(en);
  en->key = arena_strdup(a, k);
  en->value = arena_strdup(a, v);
  return en;
}

static void verbose_info(struct cri *d, struct arena *a, Runtime__V1__StatusResponse *r)
{
  cleanup_buf struct buf cfg = BUF_INIT;
  config_to_json(&d->cfg, &cfg);
  pthread_mutex_lock(&d->mu);
  cleanup_free char *cidr = xstrdup(d->pod_cidr);
  pthread_mutex_unlock(&d->mu);
  cleanup_buf struct buf net = BUF_INIT;
  buf_puts(&net, "{\"podCIDR\":");
  buf_json_str(&net, cidr);
  buf_putc(&net, '}');
  cleanup_buf struct buf ver = BUF_INIT;
  buf_puts(&ver, "{\"runtimeName\":\"crisp\",\"runtimeVersion\":");
  buf_json_str(&ver, CRISP_VERSION);
  buf_puts(&ver, "}");
  r->n_info = 3;
  r->info = arena_array(a, r->n_info, sizeof(*r->info));
  r->info[0] = info(a, "config", buf_str(&cfg));
  r->info[1] = info(a, "network", buf_str(&net));
  r->info[2] = info(a, "version", buf_str(&ver));
}

int cri_status_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                   ProtobufCMessage **resp, err_t **e)
{
  (void)e;
  const Runtime__V1__StatusRequest *in = (const Runtime__V1__StatusRequest *)req;
  struct arena *a = &c->arena;
  Runtime__V1__StatusResponse *r = arena_alloc(a, sizeof(*r));
  runtime__v1__status_response__init(r);
  r->status = arena_alloc(a, sizeof(*r->status));
  runtime__v1__runtime_status__init(r->status);
  r->status->n_conditions = 2;
  r->status->conditions = arena_array(a, 2, sizeof(*r->status->conditions));
  r->status->conditions[0] = runtime_ready(d, a);
  r->status->conditions[1] = network_ready(d, a);
  /* the default handler is listed under "" as well, as kubelet looks it up by that name */
  const struct runtimes *rt = &d->cfg.runtimes;
  r->n_runtime_handlers = rt->n + 1;
  r->runtime_handlers = arena_array(a, r->n_runtime_handlers, sizeof(*r->runtime_handlers));
  r->runtime_handlers[0] = handler(a, "");
  for (size_t i = 0; i < rt->n; i++)
    r->runtime_handlers[i + 1] = handler(a, rt->v[i].name);
  r->features = arena_alloc(a, sizeof(*r->features));
  runtime__v1__runtime_features__init(r->features);
  r->features->supplemental_groups_policy = false;
  if (in->verbose)
    verbose_info(d, a, r);
  *resp = &r->base;
  return 0;
}

int cri_runtime_config_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, err_t **e)
{
  (void)req;
  (void)e;
  Runtime__V1__RuntimeConfigResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__runtime_config_response__init(r);
  r->linux = arena_alloc(&c->arena, sizeof(*r->linux));
  runtime__v1__linux_runtime_configuration__init(r->linux);
  r->linux->cgroup_driver = d->cfg.cgroup_driver == CGROUP_DRIVER_SYSTEMD
                                ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                                : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
  *resp = &r->base;
  return 0;
}

int cri_update_runtime_config_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                                  ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__UpdateRuntimeConfigRequest *in =
      (const Runtime__V1__UpdateRuntimeConfigRequest *)req;
  const char *cidr = "";
  if (in->runtime_config && in->runtime_config->network_config)
    cidr = in->runtime_config->network_config->pod_cidr;
  struct cidr ranges[2];
  int n;
  if (cidr_parse_list(cidr, ranges, &n, e) < 0)
    return err_wrap(e, "pod CIDR");
  /* kubelet sends an empty config on some paths: it must not wipe the stored range */
  if (n > 0) {
    pthread_mutex_lock(&d->mu);
    bool changed = strcmp(d->pod_cidr, cidr) != 0;
    if (changed) {
      cleanup_free char *path = path_join(d->cfg.state, POD_CIDR_FILE);
      if (file_write_atomic(path, cidr, strlen(cidr), 0644, e) < 0) {
        pthread_mutex_unlock(&d->mu);
        return err_wrap(e, "store pod CIDR");
      }
      config_set_str(&d->pod_cidr, cidr);
    }
    pthread_mutex_unlock(&d->mu);
    if (changed)
      log_info("pod CIDR updated", "cidr", cidr, NULL);
  }
  Runtime__V1__UpdateRuntimeConfigResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__update_runtime_config_response__init(r);
  *resp = &r->base;
  return 0;
}

/* The pod CIDR survives a crispd restart (kubelet sends it again only when it
 * restarts itself). A stored value that no longer parses is dropped with a log line. */
int cri_load_runtime_config(struct cri *d, err_t **e)
{
  cleanup_free char *path = path_join(d->cfg.state, POD_CIDR_FILE);
  cleanup_free char *text = NULL;
  err_t *le = NULL;
  d->pod_cidr = xstrdup("");
  if (file_read_all(path, 4096, &text, NULL, &le) < 0) {
    if (le->code == ERR_NOT_FOUND) {
      err_free(&le);
      return 0;
    }
    *e = le;
    return err_wrap(e, "load pod CIDR");
  }
  struct cidr ranges[2];
  int n;
  if (cidr_parse_list(text, ranges, &n, &le) < 0) {
    log_warn("ignoring stored pod CIDR", "path", path, "error", le->msg, NULL);
    err_free(&le);
    return 0;
  }
  config_set_str(&d->pod_cidr, text);
  return 0;
}
