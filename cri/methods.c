/* methods.c - the CRI v1 method table and the glue from bytes to handlers.
 * Every method of both services is registered; a request that does not decode is
 * INVALID_ARGUMENT before any handler runs; a method crisp does not serve yet is
 * UNIMPLEMENTED naming it. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "cri/request_check.h"

struct cri_method {
  const char *path;
  const ProtobufCMessageDescriptor *req;
  cri_unary_fn unary;
  cri_stream_fn stream;
  bool quick;   /* never blocks: answered on the polling thread (see rpc.h) */
};

struct method_binding {
  struct cri *d;
  const struct cri_method *m;
};

#define RT(name, desc, fn) {"/runtime.v1.RuntimeService/" #name, &runtime__v1__##desc##__descriptor, fn, NULL, false}
#define RTQ(name, desc, fn) {"/runtime.v1.RuntimeService/" #name, &runtime__v1__##desc##__descriptor, fn, NULL, true}
#define IMG(name, desc, fn) {"/runtime.v1.ImageService/" #name, &runtime__v1__##desc##__descriptor, fn, NULL, false}

/* Quick methods (RTQ) read the in-memory index and small files on the state dir, a
 * tmpfs (/run) by default: nothing they do waits on a disk or the network. */
static const struct cri_method cri_methods[] = {
  RTQ(Version, version_request, cri_version_rpc),
  RT(RunPodSandbox, run_pod_sandbox_request, cri_run_pod_sandbox_rpc),
  RT(StopPodSandbox, stop_pod_sandbox_request, cri_stop_pod_sandbox_rpc),
  RT(RemovePodSandbox, remove_pod_sandbox_request, cri_remove_pod_sandbox_rpc),
  RTQ(PodSandboxStatus, pod_sandbox_status_request, cri_pod_sandbox_status_rpc),
  RTQ(ListPodSandbox, list_pod_sandbox_request, cri_list_pod_sandbox_rpc),
  RT(CreateContainer, create_container_request, cri_create_container_rpc),
  RT(StartContainer, start_container_request, cri_start_container_rpc),
  RT(StopContainer, stop_container_request, cri_stop_container_rpc),
  RT(RemoveContainer, remove_container_request, cri_remove_container_rpc),
  RTQ(ListContainers, list_containers_request, cri_list_containers_rpc),
  RTQ(ContainerStatus, container_status_request, cri_container_status_rpc),
  RT(UpdateContainerResources, update_container_resources_request, cri_update_container_resources_rpc),
  RT(ReopenContainerLog, reopen_container_log_request, cri_reopen_container_log_rpc),
  RT(ExecSync, exec_sync_request, cri_exec_sync_rpc),
  RTQ(Exec, exec_request, cri_exec_rpc),   /* these three check state and make a token */
  RTQ(Attach, attach_request, cri_attach_rpc),
  RTQ(PortForward, port_forward_request, cri_port_forward_rpc),
  RT(ContainerStats, container_stats_request, cri_container_stats_rpc),
  RT(ListContainerStats, list_container_stats_request, cri_list_container_stats_rpc),
  RT(PodSandboxStats, pod_sandbox_stats_request, cri_pod_sandbox_stats_rpc),
  RT(ListPodSandboxStats, list_pod_sandbox_stats_request, cri_list_pod_sandbox_stats_rpc),
  RT(UpdateRuntimeConfig, update_runtime_config_request, cri_update_runtime_config_rpc),
  RTQ(Status, status_request, cri_status_rpc),
  RT(CheckpointContainer, checkpoint_container_request, NULL),
  {"/runtime.v1.RuntimeService/GetContainerEvents", &runtime__v1__get_events_request__descriptor,
   NULL, cri_container_events_rpc, false},
  RT(ListMetricDescriptors, list_metric_descriptors_request, NULL),
  RT(ListPodSandboxMetrics, list_pod_sandbox_metrics_request, NULL),
  RTQ(RuntimeConfig, runtime_config_request, cri_runtime_config_rpc),
  IMG(ListImages, list_images_request, cri_list_images_rpc),
  IMG(ImageStatus, image_status_request, cri_image_status_rpc),
  IMG(PullImage, pull_image_request, cri_pull_image_rpc),
  IMG(RemoveImage, remove_image_request, cri_remove_image_rpc),
  IMG(ImageFsInfo, image_fs_info_request, cri_image_fs_info_rpc),
};

#define N_METHODS (sizeof(cri_methods) / sizeof(cri_methods[0]))

static int decode(const struct cri_method *m, const uint8_t *req, size_t len,
                  ProtobufCMessage **out, err_t **e)
{
  *out = protobuf_c_message_unpack(m->req, NULL, len, req);
  if (!*out)
    return err_set(e, ERR_INVALID, 0, "%s: the request is not a valid %s message", m->path,
                   m->req->name);
  if (request_check(*out, req, len, e) < 0) {
    protobuf_c_message_free_unpacked(*out, NULL);
    *out = NULL;
    return err_wrap(e, "%s", m->path);
  }
  return 0;
}

static int unimplemented(const struct cri_method *m, err_t **e)
{
  return err_set(e, ERR_UNIMPLEMENTED, 0, "%s is not implemented in crisp %s yet", m->path,
                 cri_version());
}

static int unary_glue(void *svc, struct rpc_ctx *ctx, const uint8_t *req, size_t len,
                      struct buf *resp, err_t **e)
{
  const struct method_binding *b = svc;
  ProtobufCMessage *in = NULL;
  if (decode(b->m, req, len, &in, e) < 0)
    return -1;
  int rc;
  if (!b->m->unary) {
    rc = unimplemented(b->m, e);
  } else {
    struct cri_call call = {.ctx = ctx, .resp = resp};
    ProtobufCMessage *out = NULL;
    rc = b->m->unary(b->d, &call, in, &out, e);
    if (rc == 0 && out) {   /* no message: the handler packed the reply into resp */
      size_t n = protobuf_c_message_get_packed_size(out);
      buf_reserve(resp, n);
      resp->len = protobuf_c_message_pack(out, (uint8_t *)resp->data);
    }
    arena_free(&call.arena);
    for (int i = 0; i < call.n_kept; i++)
      ctr_rec_free(call.kept[i]);
  }
  protobuf_c_message_free_unpacked(in, NULL);
  return rc;
}

static int stream_glue(void *svc, struct rpc_ctx *ctx, const uint8_t *req, size_t len,
                       struct rpc_stream *st, err_t **e)
{
  const struct method_binding *b = svc;
  ProtobufCMessage *in = NULL;
  if (decode(b->m, req, len, &in, e) < 0)
    return -1;
  struct cri_call call = {.ctx = ctx};
  int rc = b->m->stream(b->d, &call, in, st, e);
  arena_free(&call.arena);
  protobuf_c_message_free_unpacked(in, NULL);
  return rc;
}

void cri_methods_build(struct cri *d)
{
  d->n_methods = N_METHODS;
  d->bindings = xcalloc(N_METHODS, sizeof(*d->bindings));
  d->rpc_methods = xcalloc(N_METHODS, sizeof(*d->rpc_methods));
  for (size_t i = 0; i < N_METHODS; i++) {
    d->bindings[i].d = d;
    d->bindings[i].m = &cri_methods[i];
    d->rpc_methods[i].path = cri_methods[i].path;
    d->rpc_methods[i].svc = &d->bindings[i];
    /* a method with no handler yet only decodes and answers UNIMPLEMENTED: quick too */
    d->rpc_methods[i].quick = cri_methods[i].quick || (!cri_methods[i].unary && !cri_methods[i].stream);
    if (cri_methods[i].stream)
      d->rpc_methods[i].stream = stream_glue;
    else
      d->rpc_methods[i].unary = unary_glue;
  }
}

void cri_methods_free(struct cri *d)
{
  free(d->bindings);
  free(d->rpc_methods);
  d->bindings = NULL;
  d->rpc_methods = NULL;
}

void cri_call_keep(struct cri_call *c, struct ctr_rec *r)
{
  if (c->n_kept == CRI_CALL_KEEP)
    abort();  /* a handler keeping more records than this is a bug */
  c->kept[c->n_kept++] = r;
}
