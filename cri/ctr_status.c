/* ctr_status.c - what kubelet reads about containers: ContainerStatus, ListContainers,
 * the GetContainerEvents messages; and ExecSync and ReopenContainerLog, which need a
 * running container. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "cri/list_memo.h"
#include "runtimes/monitor.h"
#include "runtimes/sandbox_info.h"

#define EXEC_MAX_OUTPUT (16u << 20)

/* A container's CRI state from its record and its monitor's files. */
struct ctr_view {
  Runtime__V1__ContainerState state;
  struct ctr_runtime_state rt;
  const char *reason, *message;
  int exit_code;
  bool from_files;   /* read from the monitor's files: may change with no version bump */
};

/* From the files; an exit is final and kept in memory from then on. */
static int monitor_state_cached(struct cri *d, const char *id, struct ctr_runtime_state *st,
                                err_t **e)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  if (monitor_state(dir, st, e) < 0)
    return -1;
  if (st->started && st->exited)
    ctr_cache_put(d->ctr_cache, id, st);
  return 0;
}

static void view(struct cri *d, const struct ctr_rec *r, struct ctr_view *v)
{
  memset(v, 0, sizeof(*v));
  v->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
  v->reason = v->message = "";
  if (!r->start_requested)
    return;
  if (*r->start_error) {  /* StartContainer failed: exited, as containerd reports it */
    v->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    v->exit_code = 128;
    v->reason = "StartError";
    v->message = r->start_error;
    return;
  }
  err_t *e = NULL;
  /* in the cache: final, or running under a watched monitor; else from the files */
  v->from_files = !ctr_cache_get(d->ctr_cache, r->id, &v->rt);
  if (v->from_files && (monitor_state_cached(d, r->id, &v->rt, &e) < 0 || !v->rt.started)) {
    /* state gone (a reboot emptied the state dir): it cannot be running */
    err_free(&e);
    v->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    v->exit_code = 255;
    v->reason = "Unknown";
    v->message = "the container's runtime state is gone (node rebooted?)";
    return;
  }
  if (!v->rt.exited) {
    v->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    return;
  }
  v->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
  v->exit_code = v->rt.exit.exit_code;
  v->reason = v->rt.exit.reason;
  v->message = v->rt.exit.message;
}

static Runtime__V1__ContainerMetadata *ctr_metadata(struct arena *a, const struct ctr_rec *r)
{
  Runtime__V1__ContainerMetadata *m = arena_alloc(a, sizeof(*m));
  runtime__v1__container_metadata__init(m);
  m->name = arena_strdup(a, r->config->metadata->name);
  m->attempt = r->config->metadata->attempt;
  return m;
}

static Runtime__V1__ImageSpec *image_spec(struct arena *a, const struct ctr_rec *r)
{
  Runtime__V1__ImageSpec *s = arena_alloc(a, sizeof(*s));
  runtime__v1__image_spec__init(s);
  s->image = arena_strdup(a, r->image_name);
  s->user_specified_image = arena_strdup(a, r->image_name);
  return s;
}

Runtime__V1__ContainerStatus *cri_ctr_status(struct cri *d, struct arena *a, const struct ctr_rec *r)
{
  struct ctr_view v;
  view(d, r, &v);
  Runtime__V1__ContainerStatus *s = arena_alloc(a, sizeof(*s));
  runtime__v1__container_status__init(s);
  s->id = arena_strdup(a, r->id);
  s->metadata = ctr_metadata(a, r);
  s->state = v.state;
  s->created_at = r->created_ns;
  s->started_at = v.rt.started ? v.rt.started_at_ns : 0;
  s->finished_at = v.rt.exited ? v.rt.exit.finished_at_ns : 0;
  s->exit_code = v.exit_code;
  s->image = image_spec(a, r);
  s->image_ref = arena_strdup(a, r->image_id);
  s->image_id = arena_strdup(a, r->image_id);
  s->reason = arena_strdup(a, v.reason);
  s->message = arena_strdup(a, v.message);
  s->n_labels = r->config->n_labels;
  s->labels = cri_map_copy(a, (void *const *)r->config->labels, s->n_labels,
                           (void (*)(void *))runtime__v1__container_status__labels_entry__init);
  s->n_annotations = r->config->n_annotations;
  s->annotations = cri_map_copy(a, (void *const *)r->config->annotations, s->n_annotations,
                                (void (*)(void *))runtime__v1__container_status__annotations_entry__init);
  s->n_mounts = r->config->n_mounts;
  s->mounts = r->config->mounts;  /* the config lives as long as r, which outlives the reply */
  s->log_path = arena_strdup(a, r->log_path);
  if (r->config->linux && r->config->linux->resources) {
    s->resources = arena_alloc(a, sizeof(*s->resources));
    runtime__v1__container_resources__init(s->resources);
    s->resources->linux = r->config->linux->resources;
  }
  return s;
}

/* A sandboxed pod's container: its refused syscalls (from the pod's kernel log). */
static void sandbox_info(struct cri *d, const struct ctr_rec *r, struct buf *b)
{
  struct pod_rec *p = NULL;
  const struct rt_handler *h;
  err_t *e = NULL;
  if (objects_pod_find(d->objects, r->pod_id, &p, &e) < 0 || !p ||
      runtimes_resolve(&d->cfg.runtimes, p->handler, &h, &e) < 0 || h->executor != EXECUTOR_SANDBOX) {
    err_free(&e);
    pod_rec_free(p);
    return;
  }
  cleanup_free char *dir = podenv_dir(d, p->id);
  cleanup_free char *kmsg = path_join(dir, PODENV_SANDBOX_KMSG);
  pod_rec_free(p);
  size_t mark = b->len;
  buf_puts(b, ",\"sandbox\":");
  if (sandbox_info_json(kmsg, r->id, b, &e) < 0) {
    b->len = mark;   /* the rest of the answer stands without it */
    b->data[mark] = '\0';
    log_warn("cannot read the sandbox kernel log", "ctr", r->id, "error", e->msg, NULL);
    err_free(&e);
  }
}

int cri_container_status_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__ContainerStatusRequest *in = (const Runtime__V1__ContainerStatusRequest *)req;
  struct ctr_rec *r = NULL;
  if (objects_ctr_get(d->objects, in->container_id, &r, e) < 0)
    return -1;
  cri_call_keep(c, r);
  Runtime__V1__ContainerStatusResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__container_status_response__init(out);
  out->status = cri_ctr_status(d, &c->arena, r);
  if (in->verbose) {
    cleanup_free char *dir = cri_ctr_state_dir(d, r->id);
    cleanup_buf struct buf b = BUF_INIT;
    buf_puts(&b, "{\"stateDir\":");
    buf_json_str(&b, dir);
    buf_printf(&b, ",\"podSandboxId\":\"%s\"", r->pod_id);
    struct ctr_runtime_state rt;
    err_t *se = NULL;
    if (monitor_state(dir, &rt, &se) < 0)
      err_free(&se);   /* rt is zeroed: no pid */
    else if (rt.started && !rt.exited)
      buf_printf(&b, ",\"pid\":%d", (int)rt.pid);
    sandbox_info(d, r, &b);
    buf_putc(&b, '}');
    out->n_info = 1;
    out->info = arena_array(&c->arena, 1, sizeof(*out->info));
    out->info[0] = arena_alloc(&c->arena, sizeof(*out->info[0]));
    runtime__v1__container_status_response__info_entry__init(out->info[0]);
    out->info[0]->key = arena_strdup(&c->arena, "info");
    out->info[0]->value = arena_strdup(&c->arena, buf_str(&b));
  }
  *resp = &out->base;
  return 0;
}

/* The filter's fields kept in the record (the state is checked apart: it costs more). */
static bool ctr_rec_matches(const struct ctr_rec *r, const Runtime__V1__ContainerFilter *f)
{
  if (!f)
    return true;
  if (*f->id && strncmp(r->id, f->id, strlen(f->id)) != 0)
    return false;
  if (*f->pod_sandbox_id && strncmp(r->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
    return false;
  return cri_labels_match((void *const *)r->config->labels, r->config->n_labels,
                          (void *const *)f->label_selector, f->n_label_selector);
}

#define CONTAINER_STATE_FIELD 6   /* Container.state in api.proto */

/* r's ListContainers entry without its state (list_memo.h). */
static struct list_memo *ctr_list_memo(const void *arg)
{
  const struct ctr_rec *rec = arg;
  struct arena a = ARENA_INIT;
  Runtime__V1__Container x = RUNTIME__V1__CONTAINER__INIT;
  x.id = rec->id;
  x.pod_sandbox_id = rec->pod_id;
  x.metadata = ctr_metadata(&a, rec);
  x.image = image_spec(&a, rec);
  x.image_ref = rec->image_id;
  x.image_id = rec->image_id;
  x.created_at = rec->created_ns;
  x.n_labels = rec->config->n_labels;
  x.labels = cri_map_copy(&a, (void *const *)rec->config->labels, x.n_labels,
                          (void (*)(void *))runtime__v1__container__labels_entry__init);
  x.n_annotations = rec->config->n_annotations;
  x.annotations = cri_map_copy(&a, (void *const *)rec->config->annotations, x.n_annotations,
                               (void (*)(void *))runtime__v1__container__annotations_entry__init);
  struct list_memo *m = list_memo_make(&x.base, CONTAINER_STATE_FIELD);
  arena_free(&a);
  return m;
}

/* Appends r's entry if it passes f; *from_files is set when its state came from files. */
static void list_ctr_put(struct cri *d, struct buf *b, struct ctr_rec *r,
                         const Runtime__V1__ContainerFilter *f, bool *from_files)
{
  if (!ctr_rec_matches(r, f))
    return;
  struct ctr_view cv;
  view(d, r, &cv);
  *from_files |= cv.from_files;
  if (f && f->state && cv.state != f->state->state)
    return;
  const struct list_memo *m = list_memo_get(&r->list_memo, ctr_list_memo, r);
  list_memo_put(b, 1, m, CONTAINER_STATE_FIELD, cv.state);   /* ListContainersResponse.containers */
}

/* kubelet's PLEG sends an empty filter, not none */
static bool ctr_filter_empty(const Runtime__V1__ContainerFilter *f)
{
  return !f || (!*f->id && !*f->pod_sandbox_id && !f->state && !f->n_label_selector);
}

int cri_list_containers_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e)
{
  (void)e;
  const Runtime__V1__ListContainersRequest *in = (const Runtime__V1__ListContainersRequest *)req;
  *resp = NULL;   /* the reply is packed into c->resp */
  bool all = ctr_filter_empty(in->filter);
  /* the versions first: a change after this point makes them differ next time */
  uint64_t ov = objects_version(d->objects), cv = ctr_cache_version(d->ctr_cache);
  if (all && list_reply_get(d->ctr_list_reply, ov, cv, c->resp))
    return 0;
  struct ctr_rec **v;
  size_t n;
  bool from_files = false;
  objects_ctr_list(d->objects, NULL, &v, &n);
  for (size_t i = 0; i < n; i++)
    list_ctr_put(d, c->resp, v[i], in->filter, &from_files);
  ctr_rec_list_free(v, n);
  if (all && !from_files)
    list_reply_put(d->ctr_list_reply, ov, cv, c->resp->data, c->resp->len);
  return 0;
}

/* ---- events ---------------------------------------------------------------------- */

static void publish(struct cri *d, const struct ctr_rec *r, Runtime__V1__ContainerEventType type)
{
  if (!events_subscribers(d->events))
    return;
  struct arena a = ARENA_INIT;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  Runtime__V1__ContainerEventResponse ev = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
  ev.container_id = r->id;
  ev.container_event_type = type;
  ev.created_at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  struct pod_rec *p = NULL;
  err_t *e = NULL;
  if (objects_pod_get(d->objects, r->pod_id, &p, &e) == 0)
    ev.pod_sandbox_status = cri_pod_status(d, &a, p);
  err_free(&e);
  Runtime__V1__ContainerStatus *st =
      type == RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT ? NULL : cri_ctr_status(d, &a, r);
  if (st) {
    ev.n_containers_statuses = 1;
    ev.containers_statuses = &st;
  }
  size_t n = protobuf_c_message_get_packed_size(&ev.base);
  uint8_t *buf = xmalloc(n ? n : 1);
  protobuf_c_message_pack(&ev.base, buf);
  events_publish(d->events, buf, n);
  free(buf);
  pod_rec_free(p);
  arena_free(&a);
}

void cri_publish_event(struct cri *d, const char *id, Runtime__V1__ContainerEventType type)
{
  struct ctr_rec *r = NULL;
  err_t *e = NULL;
  if (objects_ctr_get(d->objects, id, &r, &e) < 0) {
    err_free(&e);
    return;
  }
  publish(d, r, type);
  ctr_rec_free(r);
}

void cri_publish_removed(struct cri *d, const struct ctr_rec *r)
{
  publish(d, r, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
}

/* ---- exec and logs ----------------------------------------------------------------- */

static int running_dir(struct cri *d, const char *id, char **dir, err_t **e)
{
  struct ctr_rec *r = NULL;
  if (objects_ctr_get(d->objects, id, &r, e) < 0)
    return -1;
  struct ctr_view v;
  view(d, r, &v);
  *dir = cri_ctr_state_dir(d, r->id);
  bool running = v.state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
  ctr_rec_free(r);
  if (!running) {
    free(*dir);
    *dir = NULL;
    return err_set(e, ERR_PRECONDITION, 0, "container %s is not running", id);
  }
  return 0;
}

int cri_exec_sync_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                      ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__ExecSyncRequest *in = (const Runtime__V1__ExecSyncRequest *)req;
  if (in->n_cmd == 0 || !*in->cmd[0])
    return err_set(e, ERR_INVALID, 0, "exec needs a command");
  if (in->timeout < 0)
    return err_set(e, ERR_INVALID, 0, "exec timeout %lld is negative", (long long)in->timeout);
  cleanup_free char *dir = NULL;
  if (running_dir(d, in->container_id, &dir, e) < 0)
    return -1;
  char **argv = xcalloc(in->n_cmd + 1, sizeof(*argv));
  for (size_t i = 0; i < in->n_cmd; i++)
    argv[i] = in->cmd[i];
  struct exec_spec x = {.argv = argv, .argc = in->n_cmd};
  struct exec_result res = {0};
  int64_t timeout_ms = in->timeout > 0 ? in->timeout * 1000 : 0;
  int64_t left = rpc_ctx_remaining_ms(c->ctx);
  if (left != INT64_MAX && (timeout_ms == 0 || left < timeout_ms))
    timeout_ms = left > 0 ? left : 1;
  int rc = monitor_exec_sync(d->monitor_helper, dir, &x, timeout_ms, EXEC_MAX_OUTPUT, &res, e);
  free(argv);
  if (rc == 0 && res.timed_out)
    rc = err_set(e, ERR_DEADLINE, 0, "command %s timed out after %lld s", in->cmd[0],
                 (long long)in->timeout);
  if (rc < 0) {
    buf_free(&res.out);
    buf_free(&res.err);
    return err_wrap(e, "exec in container %s", in->container_id);
  }
  Runtime__V1__ExecSyncResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__exec_sync_response__init(r);
  r->stdout.len = res.out.len;
  r->stdout.data = arena_alloc(&c->arena, res.out.len + 1);
  memcpy(r->stdout.data, buf_str(&res.out), res.out.len);
  r->stderr.len = res.err.len;
  r->stderr.data = arena_alloc(&c->arena, res.err.len + 1);
  memcpy(r->stderr.data, buf_str(&res.err), res.err.len);
  r->exit_code = res.exit_code;
  buf_free(&res.out);
  buf_free(&res.err);
  *resp = &r->base;
  return 0;
}

#define REOPEN_EXIT_WAIT_MS 2000   /* a monitor's clean-up after it stops answering */

int cri_reopen_container_log_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__ReopenContainerLogRequest *in = (const Runtime__V1__ReopenContainerLogRequest *)req;
  cleanup_free char *dir = NULL;
  if (running_dir(d, in->container_id, &dir, e) < 0)
    return err_wrap(e, "reopen log of container %s", in->container_id);
  if (monitor_reopen_log(dir, e) < 0) {
    /* a monitor that exits with the container drops the connection it had not answered
     * yet, and records the exit a moment later (after its clean-up): kubelet must see
     * "not running" then, not a broken runtime */
    for (int waited = 0; waited <= REOPEN_EXIT_WAIT_MS; waited += 10) {
      cleanup_free char *again = NULL;
      err_t *re = NULL;
      if (running_dir(d, in->container_id, &again, &re) < 0) {
        err_free(e);
        *e = re;
        break;
      }
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    return err_wrap(e, "reopen log of container %s", in->container_id);
  }
  Runtime__V1__ReopenContainerLogResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__reopen_container_log_response__init(r);
  *resp = &r->base;
  return 0;
}
