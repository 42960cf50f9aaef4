/* pods.c - the pod sandbox calls: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox. The host-side pieces of a pod (namespaces, files)
 * come from podenv.c; its containers from containers.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "cri/list_memo.h"

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* protobuf-c map entries share one layout, whatever message they belong to */
struct map_entry {
  ProtobufCMessage base;
  char *key;
  char *value;
};

void *cri_map_copy(struct arena *a, void *const *src, size_t n, void (*init)(void *))
{
  struct map_entry **out = arena_array(a, n ? n : 1, sizeof(*out));
  for (size_t i = 0; i < n; i++) {
    const struct map_entry *s = src[i];
    out[i] = arena_alloc(a, sizeof(**out));
    init(out[i]);
    out[i]->key = arena_strdup(a, s->key);
    out[i]->value = arena_strdup(a, s->value);
  }
  return out;
}

bool cri_labels_match(void *const *labels, size_t n, void *const *selector, size_t n_sel)
{
  for (size_t i = 0; i < n_sel; i++) {
    const struct map_entry *want = selector[i];
    bool ok = false;
    for (size_t k = 0; k < n && !ok; k++) {
      const struct map_entry *have = labels[k];
      ok = !strcmp(have->key, want->key) && !strcmp(have->value, want->value);
    }
    if (!ok)
      return false;
  }
  return true;
}

static int validate_config(const Runtime__V1__PodSandboxConfig *c, err_t **e)
{
  if (!c || !c->metadata)
    return err_set(e, ERR_INVALID, 0, "pod sandbox config without metadata");
  const Runtime__V1__PodSandboxMetadata *m = c->metadata;
  if (!*m->name || !*m->namespace_ || !*m->uid)
    return err_set(e, ERR_INVALID, 0, "pod sandbox metadata needs name, namespace and uid (got \"%s\", \"%s\", \"%s\")",
                   m->name, m->namespace_, m->uid);
  const Runtime__V1__LinuxSandboxSecurityContext *sc = c->linux ? c->linux->security_context : NULL;
  if (sc && sc->namespace_options && sc->namespace_options->userns_options &&
      sc->namespace_options->userns_options->mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
    return err_set(e, ERR_UNIMPLEMENTED, 0, "user namespaces are not supported by crisp yet");
  return 0;
}

int cri_run_pod_sandbox_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__RunPodSandboxRequest *in = (const Runtime__V1__RunPodSandboxRequest *)req;
  const struct rt_handler *h;
  if (validate_config(in->config, e) < 0 ||
      cgroup_parent_check(d->cfg.cgroup_driver,
                          in->config->linux ? in->config->linux->cgroup_parent : NULL, e) < 0 ||
      runtimes_resolve(&d->cfg.runtimes, in->runtime_handler, &h, e) < 0)
    return -1;
  char id[65];
  objects_new_id(id);
  struct pod_rec p = {.id = id, .config = in->config, .handler = h->name,
                      .created_ns = now_ns(), .ready = true, .ip = "", .ip6 = "",
                      .creating = true};
  objects_lock(d->objects, id);
  /* the record is reserved first (a duplicate name fails before touching the host),
   * then the host side is built; if that fails, both are undone */
  int rc = objects_pod_add(d->objects, &p, e);
  bool added = rc == 0;
  cleanup_free char *ip4 = NULL, *ip6 = NULL;
  if (rc == 0)
    rc = podenv_create(d, id, in->config, h, &ip4, &ip6, e);
  if (rc == 0) {
    p.ip = ip4;
    p.ip6 = ip6;
    p.creating = false;
    rc = objects_pod_update(d->objects, &p, e);
  }
  if (rc < 0 && added) {
    err_t *ue = NULL;
    podenv_destroy(d, id, &ue);
    err_free(&ue);
    objects_pod_remove(d->objects, id, &ue);
    err_free(&ue);
  }
  objects_unlock(d->objects, id);
  if (rc < 0)
    return err_wrap(e, "run pod sandbox %s/%s", in->config->metadata->namespace_,
                    in->config->metadata->name);
  log_info("pod started", "pod", id, "name", in->config->metadata->name, "handler", h->name,
           "ip", ip4 && *ip4 ? ip4 : NULL, NULL);
  Runtime__V1__RunPodSandboxResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__run_pod_sandbox_response__init(r);
  r->pod_sandbox_id = arena_strdup(&c->arena, id);
  *resp = &r->base;
  return 0;
}

/* A pod is recorded not ready before its namespaces and network go: a stop or remove
 * cut short by a crash then leaves a NOTREADY pod (kubelet stops or removes it again),
 * never a READY one without a network namespace. */
int cri_pod_mark_not_ready(struct cri *d, const struct pod_rec *p, err_t **e)
{
  if (!p->ready)
    return 0;
  struct pod_rec *n = pod_rec_dup(p);
  n->ready = false;
  int rc = objects_pod_update(d->objects, n, e);
  pod_rec_free(n);
  return rc;
}

/* Stopping a pod that is not there succeeds: kubelet retries stops and critest expects
 * it (containerd's NotFound here is a known conformance failure). */
int cri_stop_pod_sandbox_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__StopPodSandboxRequest *in = (const Runtime__V1__StopPodSandboxRequest *)req;
  Runtime__V1__StopPodSandboxResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__stop_pod_sandbox_response__init(r);
  *resp = &r->base;
  struct pod_rec *p = NULL;
  if (objects_pod_find(d->objects, in->pod_sandbox_id, &p, e) < 0)
    return -1;
  if (!p)
    return 0;  /* stopping or removing what is not there succeeds */
  objects_lock(d->objects, p->id);
  podenv_netns_repin(d, p);
  int rc = cri_pod_containers_stop(d, c->ctx, p->id, e);
  if (rc == 0)
    rc = cri_pod_mark_not_ready(d, p, e);
  if (rc == 0)
    rc = podenv_stop(d, p->id, e);
  objects_unlock(d->objects, p->id);
  if (rc == 0)
    log_info("pod stopped", "pod", p->id, NULL);
  pod_rec_free(p);
  return rc < 0 ? err_wrap(e, "stop pod sandbox %s", in->pod_sandbox_id) : 0;
}

int cri_remove_pod_sandbox_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                               ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__RemovePodSandboxRequest *in = (const Runtime__V1__RemovePodSandboxRequest *)req;
  Runtime__V1__RemovePodSandboxResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__remove_pod_sandbox_response__init(r);
  *resp = &r->base;
  struct pod_rec *p = NULL;
  if (objects_pod_find(d->objects, in->pod_sandbox_id, &p, e) < 0)
    return -1;
  if (!p)
    return 0;  /* stopping or removing what is not there succeeds */
  objects_lock(d->objects, p->id);
  podenv_netns_repin(d, p);
  int rc = cri_pod_containers_remove(d, c->ctx, p->id, e);
  if (rc == 0)
    rc = cri_pod_mark_not_ready(d, p, e);
  if (rc == 0)
    rc = podenv_destroy(d, p->id, e);
  if (rc == 0)
    rc = objects_pod_remove(d->objects, p->id, e);
  objects_unlock(d->objects, p->id);
  if (rc == 0)
    log_info("pod removed", "pod", p->id, NULL);
  pod_rec_free(p);
  return rc < 0 ? err_wrap(e, "remove pod sandbox %s", in->pod_sandbox_id) : 0;
}

static Runtime__V1__NamespaceOption *ns_options(struct arena *a, const struct pod_rec *p)
{
  Runtime__V1__NamespaceOption *o = arena_alloc(a, sizeof(*o));
  runtime__v1__namespace_option__init(o);
  const Runtime__V1__LinuxSandboxSecurityContext *sc =
      p->config->linux ? p->config->linux->security_context : NULL;
  if (sc && sc->namespace_options) {
    o->network = sc->namespace_options->network;
    o->pid = sc->namespace_options->pid;
    o->ipc = sc->namespace_options->ipc;
    o->target_id = arena_strdup(a, sc->namespace_options->target_id);
  }
  return o;
}

Runtime__V1__PodSandboxMetadata *cri_pod_metadata(struct arena *a, const struct pod_rec *p)
{
  Runtime__V1__PodSandboxMetadata *m = arena_alloc(a, sizeof(*m));
  runtime__v1__pod_sandbox_metadata__init(m);
  m->name = arena_strdup(a, p->config->metadata->name);
  m->uid = arena_strdup(a, p->config->metadata->uid);
  m->namespace_ = arena_strdup(a, p->config->metadata->namespace_);
  m->attempt = p->config->metadata->attempt;
  return m;
}

Runtime__V1__PodSandboxStatus *cri_pod_status(struct cri *d, struct arena *a, const struct pod_rec *p)
{
  (void)d;
  Runtime__V1__PodSandboxStatus *s = arena_alloc(a, sizeof(*s));
  runtime__v1__pod_sandbox_status__init(s);
  s->id = arena_strdup(a, p->id);
  s->metadata = cri_pod_metadata(a, p);
  s->state = p->ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                      : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  s->created_at = p->created_ns;
  s->network = arena_alloc(a, sizeof(*s->network));
  runtime__v1__pod_sandbox_network_status__init(s->network);
  s->network->ip = arena_strdup(a, p->ip);
  if (p->ip6 && *p->ip6) {
    s->network->n_additional_ips = 1;
    s->network->additional_ips = arena_array(a, 1, sizeof(*s->network->additional_ips));
    s->network->additional_ips[0] = arena_alloc(a, sizeof(Runtime__V1__PodIP));
    runtime__v1__pod_ip__init(s->network->additional_ips[0]);
    s->network->additional_ips[0]->ip = arena_strdup(a, p->ip6);
  }
  s->linux = arena_alloc(a, sizeof(*s->linux));
  runtime__v1__linux_pod_sandbox_status__init(s->linux);
  s->linux->namespaces = arena_alloc(a, sizeof(*s->linux->namespaces));
  runtime__v1__namespace__init(s->linux->namespaces);
  s->linux->namespaces->options = ns_options(a, p);
  s->n_labels = p->config->n_labels;
  s->labels = cri_map_copy(a, (void *const *)p->config->labels, s->n_labels,
                           (void (*)(void *))runtime__v1__pod_sandbox_status__labels_entry__init);
  s->n_annotations = p->config->n_annotations;
  s->annotations = cri_map_copy(a, (void *const *)p->config->annotations, s->n_annotations,
                                (void (*)(void *))runtime__v1__pod_sandbox_status__annotations_entry__init);
  s->runtime_handler = arena_strdup(a, p->handler);
  return s;
}

static void pod_verbose_info(struct cri *d, struct arena *a, const struct pod_rec *p,
                             Runtime__V1__PodSandboxStatusResponse *r)
{
  cleanup_buf struct buf b = BUF_INIT;
  cleanup_free char *dir = podenv_dir(d, p->id);
  buf_puts(&b, "{\"id\":");
  buf_json_str(&b, p->id);
  buf_puts(&b, ",\"runtimeHandler\":");
  buf_json_str(&b, p->handler);
  buf_puts(&b, ",\"stateDir\":");
  buf_json_str(&b, dir);
  buf_puts(&b, ",\"hostname\":");
  buf_json_str(&b, p->config->hostname);
  buf_puts(&b, ",\"logDirectory\":");
  buf_json_str(&b, p->config->log_directory);
  buf_putc(&b, '}');
  r->n_info = 1;
  r->info = arena_array(a, 1, sizeof(*r->info));
  r->info[0] = arena_alloc(a, sizeof(*r->info[0]));
  runtime__v1__pod_sandbox_status_response__info_entry__init(r->info[0]);
  r->info[0]->key = arena_strdup(a, "info");
  r->info[0]->value = arena_strdup(a, buf_str(&b));
}

int cri_pod_sandbox_status_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                               ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__PodSandboxStatusRequest *in = (const Runtime__V1__PodSandboxStatusRequest *)req;
  struct pod_rec *p = NULL;
  if (objects_pod_get(d->objects, in->pod_sandbox_id, &p, e) < 0)
    return -1;
  Runtime__V1__PodSandboxStatusResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__pod_sandbox_status_response__init(r);
  r->status = cri_pod_status(d, &c->arena, p);
  r->timestamp = now_ns();
  if (in->verbose)
    pod_verbose_info(d, &c->arena, p, r);
  pod_rec_free(p);
  *resp = &r->base;
  return 0;
}

static bool pod_matches(const struct pod_rec *p, const Runtime__V1__PodSandboxFilter *f)
{
  if (!f)
    return true;
  if (*f->id && strncmp(p->id, f->id, strlen(f->id)) != 0)
    return false;
  if (f->state && f->state->state != (p->ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                               : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY))
    return false;
  return cri_labels_match((void *const *)p->config->labels, p->config->n_labels,
                          (void *const *)f->label_selector, f->n_label_selector);
}

#define POD_STATE_FIELD 3   /* PodSandbox.state in api.proto */

/* p's ListPodSandbox entry without its state (list_memo.h). */
static struct list_memo *pod_list_memo(const void *arg)
{
  const struct pod_rec *p = arg;
  struct arena a = ARENA_INIT;
  Runtime__V1__PodSandbox s = RUNTIME__V1__POD_SANDBOX__INIT;
  s.id = p->id;
  s.metadata = cri_pod_metadata(&a, p);
  s.created_at = p->created_ns;
  s.n_labels = p->config->n_labels;
  s.labels = cri_map_copy(&a, (void *const *)p->config->labels, s.n_labels,
                          (void (*)(void *))runtime__v1__pod_sandbox__labels_entry__init);
  s.n_annotations = p->config->n_annotations;
  s.annotations = cri_map_copy(&a, (void *const *)p->config->annotations, s.n_annotations,
                               (void (*)(void *))runtime__v1__pod_sandbox__annotations_entry__init);
  s.runtime_handler = p->handler;
  struct list_memo *m = list_memo_make(&s.base, POD_STATE_FIELD);
  arena_free(&a);
  return m;
}

int cri_list_pod_sandbox_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e)
{
  (void)e;
  const Runtime__V1__ListPodSandboxRequest *in = (const Runtime__V1__ListPodSandboxRequest *)req;
  *resp = NULL;   /* the reply is packed into c->resp */
  const Runtime__V1__PodSandboxFilter *f = in->filter;
  bool all = !f || (!*f->id && !f->state && !f->n_label_selector);
  /* the version first: a change after this point makes it differ next time */
  uint64_t ov = objects_version(d->objects);
  if (all && list_reply_get(d->pod_list_reply, ov, 0, c->resp))
    return 0;
  struct pod_rec **pods;
  size_t n;
  objects_pod_list(d->objects, &pods, &n);
  for (size_t i = 0; i < n; i++) {
    struct pod_rec *p = pods[i];
    if (!pod_matches(p, f))
      continue;
    const struct list_memo *m = list_memo_get(&p->list_memo, pod_list_memo, p);
    list_memo_put(c->resp, 1, m, POD_STATE_FIELD,   /* ListPodSandboxResponse.items */
                  p->ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                           : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY);
  }
  pod_rec_list_free(pods, n);
  if (all)
    list_reply_put(d->pod_list_reply, ov, 0, c->resp->data, c->resp->len);
  return 0;
}
