/* containers.c - container lifecycle: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer, and stopping/removing a pod's containers.
 *
 * Layout: <root>/containers/<id>.json (the record, objects.c), <root>/containers/<id>/
 * (upper and work dirs of the writable layer: persistent, so a crispd restart keeps
 * it) and <state>/containers/<id>/ (spec.json, the rootfs mount point, the monitor's
 * files: volatile). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/ctrspec.h"
#include "cri/internal.h"
#include "cri/trash.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"

/* exit polling: 1 ms first (a SIGKILLed container is usually reaped and its exit.json
 * written within a few ms), doubling up to STOP_POLL_MS */
#define STOP_POLL_MS 50
#define STOP_POLL_FIRST_US 1000
#define KILL_WAIT_MS 10000
#define MONITOR_GONE_MS 3000   /* a monitor left after its container exited */

char *cri_ctr_state_dir(struct cri *d, const char *id)
{
  return xasprintf("%s/containers/%s", d->cfg.state, id);
}

static char *ctr_root_dir(struct cri *d, const char *id)
{
  return xasprintf("%s/containers/%s", d->cfg.root, id);
}

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- create --------------------------------------------------------------------- */

struct create_ctx {
  struct cri *d;
  const struct pod_rec *pod;
  const Runtime__V1__CreateContainerRequest *in;
  struct image_record *img;
  struct image_config *img_cfg;
  char **layer_dirs;
  char id[65];
  char *state_dir, *root_dir;
  bool held;
};

static int load_image(struct create_ctx *x, err_t **e)
{
  const char *name = x->in->config->image ? x->in->config->image->image : "";
  if (cri_image_lookup(x->d, name, &x->img, e) < 0) {
    if ((*e)->code == ERR_NOT_FOUND) {
      err_free(e);
      return err_set(e, ERR_NOT_FOUND, 0, "image \"%s\" is not present: pull it first", name);
    }
    return -1;
  }
  cleanup_free char *cfg = NULL;
  size_t len;
  if (store_image_config(x->d->store, x->img->id, &cfg, &len, e) < 0 ||
      image_config_parse(cfg, len, &x->img_cfg, e) < 0)
    return err_wrap(e, "image %s", name);
  x->layer_dirs = xcalloc(x->img->n_layers + 1, sizeof(*x->layer_dirs));
  for (size_t i = 0; i < x->img->n_layers; i++)
    if (store_layer_path(x->d->store, x->img->chain_ids[i], &x->layer_dirs[i], e) < 0)
      return err_wrap(e, "image %s", name);
  return 0;
}

static int make_dirs(struct create_ctx *x, err_t **e)
{
  x->state_dir = cri_ctr_state_dir(x->d, x->id);
  x->root_dir = ctr_root_dir(x->d, x->id);
  cleanup_free char *rootfs = path_join(x->state_dir, "rootfs");
  cleanup_free char *upper = path_join(x->root_dir, "upper");
  cleanup_free char *work = path_join(x->root_dir, "work");
  if (mkdir_p(rootfs, 0755, e) < 0 || mkdir_p(upper, 0755, e) < 0 || mkdir_p(work, 0700, e) < 0)
    return -1;
  if (store_layers_hold(x->d->store, x->id, (const char *const *)x->img->chain_ids,
                        x->img->n_layers, e) < 0)
    return -1;
  x->held = true;
  return 0;
}

static int write_spec(struct create_ctx *x, char **log_path, err_t **e)
{
  struct ctrspec_pod pod;
  if (podenv_describe(x->d, x->pod, &pod, e) < 0)
    return -1;
  struct ctrspec_image img = {x->img->id, x->img_cfg, (const char *const *)x->layer_dirs,
                              x->img->n_layers};
  cleanup_free char *upper = path_join(x->root_dir, "upper");
  cleanup_free char *work = path_join(x->root_dir, "work");
  struct ctrspec_paths paths = {x->id, x->state_dir, upper, work};
  struct ctr_spec *spec = NULL;
  int rc = ctrspec_build(x->in->config, x->pod->config, &pod, &img, &paths, &spec, e);
  podenv_describe_clear(&pod);
  if (rc < 0)
    return -1;
  cleanup_free char *path = path_join(x->state_dir, "spec.json");
  rc = spec_write(spec, path, e);
  *log_path = xstrdup(spec->log_path ? spec->log_path : "");
  spec_free(spec);
  return rc;
}

static void create_undo(struct create_ctx *x)
{
  err_t *e = NULL;
  if (x->held && store_layers_release(x->d->store, x->id, &e) < 0)
    err_free(&e);
  if (x->state_dir && rm_rf(x->state_dir, &e) < 0)
    err_free(&e);
  if (x->root_dir && rm_rf(x->root_dir, &e) < 0)
    err_free(&e);
  objects_ctr_remove(x->d->objects, x->id, &e);
  err_free(&e);
}

static void create_clear(struct create_ctx *x)
{
  image_record_free(x->img);
  image_config_free(x->img_cfg);
  if (x->layer_dirs)
    for (size_t i = 0; x->layer_dirs[i]; i++)
      free(x->layer_dirs[i]);
  free(x->layer_dirs);
  free(x->state_dir);
  free(x->root_dir);
}

static int create(struct create_ctx *x, err_t **e)
{
  const Runtime__V1__ContainerConfig *cfg = x->in->config;
  if (!cfg || !cfg->metadata || !*cfg->metadata->name)
    return err_set(e, ERR_INVALID, 0, "container config without a name");
  if (!x->pod->ready)
    return err_set(e, ERR_PRECONDITION, 0, "pod sandbox %s is not ready (stopped)", x->pod->id);
  if (load_image(x, e) < 0)
    return -1;
  objects_new_id(x->id);
  struct ctr_rec r = {.id = x->id, .pod_id = x->pod->id, .config = (Runtime__V1__ContainerConfig *)cfg,
                      .image_id = x->img->id, .image_name = cfg->image->image, .log_path = "",
                      .created_ns = now_ns(), .start_error = "", .creating = true};
  if (objects_ctr_add(x->d->objects, &r, e) < 0)
    return -1;
  cleanup_free char *log_path = NULL;
  if (make_dirs(x, e) < 0 || write_spec(x, &log_path, e) < 0) {
    create_undo(x);
    return -1;
  }
  r.log_path = log_path;
  r.creating = false;
  if (objects_ctr_update(x->d->objects, &r, e) < 0) {
    create_undo(x);
    return -1;
  }
  return 0;
}

int cri_create_container_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__CreateContainerRequest *in = (const Runtime__V1__CreateContainerRequest *)req;
  struct pod_rec *pod = NULL;
  if (objects_pod_get(d->objects, in->pod_sandbox_id, &pod, e) < 0)
    return -1;
  struct create_ctx x = {.d = d, .in = in};
  objects_lock(d->objects, pod->id);  /* a pod being stopped or removed waits */
  struct pod_rec *cur = NULL;         /* and is re-read: it may have stopped meanwhile */
  int rc = objects_pod_get(d->objects, pod->id, &cur, e);
  if (rc == 0) {
    x.pod = cur;
    rc = create(&x, e);
  }
  objects_unlock(d->objects, pod->id);
  pod_rec_free(cur);
  pod_rec_free(pod);
  if (rc < 0) {
    create_clear(&x);
    return err_wrap(e, "create container %s",
                    in->config && in->config->metadata ? in->config->metadata->name : "");
  }
  log_info("container created", "pod", in->pod_sandbox_id, "ctr", x.id, "image", x.img->id, NULL);
  cri_publish_event(d, x.id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
  Runtime__V1__CreateContainerResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__create_container_response__init(r);
  r->container_id = arena_strdup(&c->arena, x.id);
  create_clear(&x);
  *resp = &r->base;
  return 0;
}

/* ---- start ---------------------------------------------------------------------- */

int cri_start_container_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__StartContainerRequest *in = (const Runtime__V1__StartContainerRequest *)req;
  struct ctr_rec *rec = NULL;
  if (objects_ctr_get(d->objects, in->container_id, &rec, e) < 0)
    return -1;
  /* the pod's lock first, in StopPodSandbox's order: a pod being stopped waits, and a
   * stopped pod starts nothing (its namespaces are gone, or they are the node's) */
  objects_lock(d->objects, rec->pod_id);
  objects_lock(d->objects, rec->id);
  struct ctr_rec *cur = NULL;
  struct pod_rec *pod = NULL;
  int rc = objects_ctr_get(d->objects, rec->id, &cur, e);  /* re-read under the lock */
  if (rc == 0 && cur->start_requested)
    rc = err_set(e, ERR_PRECONDITION, 0, "container %s was already started", cur->id);
  if (rc == 0)
    rc = objects_pod_get(d->objects, cur->pod_id, &pod, e);
  if (rc == 0 && !pod->ready)
    rc = err_set(e, ERR_PRECONDITION, 0, "pod sandbox %s is not ready (stopped)", pod->id);
  pid_t pid = 0;
  err_t *start_err = NULL;
  if (rc == 0) {
    cleanup_free char *dir = cri_ctr_state_dir(d, cur->id);
    monitor_start(d->monitor_helper, dir, &pid, &start_err);
    struct ctr_rec *n = ctr_rec_dup(cur);
    n->start_requested = true;
    free(n->start_error);
    n->start_error = xstrdup(start_err ? start_err->msg : "");
    rc = objects_ctr_update(d->objects, n, e);
    ctr_rec_free(n);
  }
  objects_unlock(d->objects, rec->id);
  objects_unlock(d->objects, rec->pod_id);
  pod_rec_free(pod);
  ctr_rec_free(cur);
  if (rc == 0 && start_err) {
    *e = start_err;
    rc = -1;
  } else {
    err_free(&start_err);
  }
  if (rc == 0) {
    char p[24];
    snprintf(p, sizeof(p), "%d", (int)pid);
    log_info("container started", "ctr", rec->id, "pid", p, NULL);
    cri_publish_event(d, rec->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
    cri_exitwatch_add(d, rec->id);
  }
  ctr_rec_free(rec);
  if (rc < 0)
    return err_wrap(e, "start container %s", in->container_id);
  Runtime__V1__StartContainerResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__start_container_response__init(r);
  *resp = &r->base;
  return 0;
}

/* ---- stop ----------------------------------------------------------------------- */

static int64_t mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Polls the container's state into *st until it exited (or has no state left: then *st
 * is zeroed); false if ms passed first. */
static bool wait_exit(const char *dir, int ms, struct rpc_ctx *ctx, struct ctr_runtime_state *st)
{
  int64_t deadline = mono_us() + (int64_t)ms * 1000;
  long step_us = STOP_POLL_FIRST_US;
  for (;;) {
    err_t *e = NULL;
    if (monitor_state(dir, st, &e) < 0) {
      err_free(&e);
      memset(st, 0, sizeof(*st));
      return true;  /* no state left: nothing runs */
    }
    if (!st->started || st->exited)
      return true;
    if (mono_us() >= deadline || (ctx && rpc_ctx_done(ctx)))
      return false;
    struct timespec ts = {0, step_us * 1000L};
    nanosleep(&ts, NULL);
    step_us = step_us * 2 > STOP_POLL_MS * 1000L ? STOP_POLL_MS * 1000L : step_us * 2;
  }
}

/* Stops one container (caller holds its object lock): its stop signal, then SIGKILL
 * after timeout_s. Idempotent: a container that is not running is fine. *st: its state
 * once stopped (zeroed if it has none). */
static int stop_locked(struct cri *d, struct rpc_ctx *ctx, const char *id, int64_t timeout_s,
                       struct ctr_runtime_state *st, err_t **e)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  if (monitor_state(dir, st, e) < 0) {
    err_free(e);
    memset(st, 0, sizeof(*st));
    return 0;
  }
  if (!st->started || st->exited)
    return 0;
  cleanup_free char *spec_path = path_join(dir, "spec.json");
  struct ctr_spec *spec = NULL;
  if (spec_read(spec_path, &spec, e) < 0)
    return err_wrap(e, "container %s", id);
  int sig = signal_parse(spec->stop_signal ? spec->stop_signal : "SIGTERM");
  pid_t pid = st->pid;
  if (timeout_s > 0 && kill(pid, sig > 0 ? sig : SIGTERM) == 0 &&
      wait_exit(dir, (int)(timeout_s > 3600 ? 3600000 : timeout_s * 1000), ctx, st)) {
    spec_free(spec);
    return 0;
  }
  err_t *ke = NULL;
  if (cgroup_kill_all(spec, SIGKILL, &ke) < 0)
    err_free(&ke);
  kill(pid, SIGKILL);
  spec_free(spec);
  if (!wait_exit(dir, KILL_WAIT_MS, NULL, st))
    return err_set(e, ERR_INTERNAL, 0, "container %s did not exit after SIGKILL", id);
  return 0;
}

int cri_ctr_stop_locked(struct cri *d, struct rpc_ctx *ctx, const char *id, int64_t timeout_s,
                        err_t **e)
{
  struct ctr_runtime_state st;
  return stop_locked(d, ctx, id, timeout_s, &st, e);
}

/* Stopping a container that is not there succeeds, as kubelet and critest expect. */
int cri_stop_container_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__StopContainerRequest *in = (const Runtime__V1__StopContainerRequest *)req;
  Runtime__V1__StopContainerResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__stop_container_response__init(r);
  *resp = &r->base;
  struct ctr_rec *rec = NULL;
  /* containerd kills at once for a timeout <= 0; a negative one is a client bug, and
   * turning it into a SIGKILL of the workload would hide it */
  if (in->timeout < 0)
    return err_set(e, ERR_INVALID, 0, "stop timeout %lld is negative (0 kills at once)",
                   (long long)in->timeout);
  if (objects_ctr_find(d->objects, in->container_id, &rec, e) < 0)
    return -1;
  if (!rec)
    return 0;  /* stopping or removing what is not there succeeds */
  objects_lock(d->objects, rec->id);
  int rc = cri_ctr_stop_locked(d, c->ctx, rec->id, in->timeout, e);
  if (rc == 0)
    cri_ctr_stopped(d, rec->id);   /* the event, unless the exit watcher sent it */
  objects_unlock(d->objects, rec->id);
  if (rc == 0)
    log_info("container stopped", "ctr", rec->id, NULL);
  ctr_rec_free(rec);
  return rc < 0 ? err_wrap(e, "stop container %s", in->container_id) : 0;
}

/* ---- remove --------------------------------------------------------------------- */

int cri_ctr_teardown(const char *state_dir, err_t **e)
{
  cleanup_free char *spec_path = path_join(state_dir, "spec.json");
  struct ctr_spec *spec = NULL;
  err_t *se = NULL;
  if (spec_read(spec_path, &spec, &se) < 0) {
    if (se->code != ERR_NOT_FOUND)
      log_warn("cannot read a container's spec to clean up after it", "path", spec_path,
               "error", se->msg, NULL);
    err_free(&se);
    return 0;
  }
  err_t *ke = NULL;
  if (cgroup_kill_all(spec, SIGKILL, &ke) < 0)
    err_free(&ke);
  int rc = ns_cleanup(spec, e);
  spec_free(spec);
  return rc;
}

/* The monitor cleans up after its container and says so in exit.json (st, read once
 * it exited); this covers a monitor that died, whose container (reported exited
 * since) may still have processes running, or one whose cleanup failed. */
static int cleanup_left(const char *state_dir, const char *id, const struct ctr_runtime_state *st,
                        err_t **e)
{
  if ((st->exited && st->exit.cleaned) || cri_ctr_teardown(state_dir, e) == 0)
    return 0;
  return err_wrap(e, "clean up container %s", id);
}

static int remove_locked(struct cri *d, struct rpc_ctx *ctx, const char *id, err_t **e)
{
  struct ctr_runtime_state st;   /* once exited, exit.json is final */
  if (stop_locked(d, ctx, id, 0, &st, e) < 0)
    return -1;
  cri_ctr_stopped(d, id);   /* STOPPED goes out before DELETED */
  cleanup_free char *state_dir = cri_ctr_state_dir(d, id);
  /* the monitor outlives its container's exit while it cleans up: the container's
   * files go only once it is gone, so nothing of it is left running after the call */
  if (monitor_wait_gone(state_dir, MONITOR_GONE_MS, e) < 0)
    return err_wrap(e, "container %s", id);
  if (cleanup_left(state_dir, id, &st, e) < 0)
    return -1;
  /* the record goes first: a crash from here on leaves only directories and a layer
   * hold that no record names, which the next start removes (recover.c), never a
   * listed container without its files */
  if (objects_ctr_remove(d->objects, id, e) < 0)
    return -1;
  cri_stats_forget(id);
  ctr_cache_drop(d->ctr_cache, id);
  cleanup_free char *root_dir = ctr_root_dir(d, id);
  err_t *re = NULL;
  /* the writable layer goes into the trash: one rename here, the deletion off the call */
  if (trash_put(d->trash, state_dir, &re) < 0 || trash_put(d->trash, root_dir, &re) < 0 ||
      store_layers_release(d->store, id, &re) < 0) {
    log_warn("a removed container's files stay until the next start", "ctr", id, "error",
             re->msg, NULL);
    err_free(&re);
  }
  return 0;
}

int cri_remove_container_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__RemoveContainerRequest *in = (const Runtime__V1__RemoveContainerRequest *)req;
  Runtime__V1__RemoveContainerResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__remove_container_response__init(r);
  *resp = &r->base;
  struct ctr_rec *rec = NULL;
  if (objects_ctr_find(d->objects, in->container_id, &rec, e) < 0)
    return -1;
  if (!rec)
    return 0;  /* stopping or removing what is not there succeeds */
  objects_lock(d->objects, rec->id);
  int rc = remove_locked(d, c->ctx, rec->id, e);
  objects_unlock(d->objects, rec->id);
  if (rc == 0) {
    log_info("container removed", "ctr", rec->id, NULL);
    cri_publish_removed(d, rec);
  }
  ctr_rec_free(rec);
  return rc < 0 ? err_wrap(e, "remove container %s", in->container_id) : 0;
}

/* ---- a pod's containers --------------------------------------------------------- */

int cri_pod_containers_stop(struct cri *d, struct rpc_ctx *ctx, const char *pod_id, err_t **e)
{
  struct ctr_rec **v;
  size_t n;
  objects_ctr_list(d->objects, pod_id, &v, &n);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    objects_lock(d->objects, v[i]->id);
    rc = cri_ctr_stop_locked(d, ctx, v[i]->id, 0, e);
    if (rc == 0)
      cri_ctr_stopped(d, v[i]->id);
    objects_unlock(d->objects, v[i]->id);
  }
  ctr_rec_list_free(v, n);
  return rc;
}

int cri_pod_containers_remove(struct cri *d, struct rpc_ctx *ctx, const char *pod_id, err_t **e)
{
  struct ctr_rec **v;
  size_t n;
  objects_ctr_list(d->objects, pod_id, &v, &n);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    objects_lock(d->objects, v[i]->id);
    rc = remove_locked(d, ctx, v[i]->id, e);
    objects_unlock(d->objects, v[i]->id);
    if (rc == 0)
      cri_publish_removed(d, v[i]);
  }
  ctr_rec_list_free(v, n);
  return rc;
}
