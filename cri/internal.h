/* internal.h - what the files of cri/ share; never included outside cri/. */
#ifndef CRISP_CRI_INTERNAL_H
#define CRISP_CRI_INTERNAL_H

#include <pthread.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

#include "cri/api.pb-c.h"
#include "cri/arena.h"
#include "cri/cri.h"
#include "cri/config.h"
#include "cri/events.h"
#include "cri/objects.h"
#include "cri/rpc.h"
#include "image/pull.h"
#include "image/store.h"

struct cri {
  struct crisp_config cfg;
  struct rpc_server *rpc;
  struct rpc_method *rpc_methods;
  struct method_binding *bindings;
  size_t n_methods;
  struct events *events;
  struct store *store;    /* images: records, layers, blobs under cfg.root */
  struct puller *puller;  /* runs crisp-pull helpers */
  struct objects *objects;   /* pods and containers */
  char *monitor_helper;      /* path of crisp-monitor */
  struct admin *admin;       /* <state>/admin.sock (admin.c) */
  struct stream_server *streams;   /* exec/attach/port-forward URLs (streaming.c) */
  struct trash *trash;       /* removed containers' dirs, deleted in the background */
  struct exitwatch *exitwatch;     /* CONTAINER_STOPPED on exits (exitwatch.c) */
  struct ctr_cache *ctr_cache;     /* containers' runtime state in memory (ctr_cache.c) */
  struct list_reply *ctr_list_reply, *pod_list_reply;   /* last unfiltered lists (list_memo.h) */
  struct timespec started;
  pthread_mutex_t mu;     /* guards the fields below */
  char *pod_cidr;         /* from UpdateRuntimeConfig, "" until kubelet sends one */
};

/* One call as a handler sees it: its context, an arena for the response, and records
 * the response points into (released after it is packed). A unary handler may write
 * the packed reply into resp itself and return NULL as its message (the list calls:
 * list_memo.h). */
#define CRI_CALL_KEEP 4
struct cri_call {
  struct rpc_ctx *ctx;
  struct buf *resp;
  struct arena arena;
  struct ctr_rec *kept[CRI_CALL_KEEP];
  int n_kept;
};

/* Keeps r (a reference the caller hands over) alive until the reply is packed. */
void cri_call_keep(struct cri_call *c, struct ctr_rec *r);

typedef int (*cri_unary_fn)(struct cri *d, struct cri_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e);
typedef int (*cri_stream_fn)(struct cri *d, struct cri_call *call, const ProtobufCMessage *req,
                             struct rpc_stream *st, err_t **e);

/* Builds the rpc method table for every CRI v1 method. */
void cri_methods_build(struct cri *d);
void cri_methods_free(struct cri *d);

/* runtime_info.c */
int cri_version_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                    ProtobufCMessage **resp, err_t **e);
int cri_status_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                   ProtobufCMessage **resp, err_t **e);
int cri_runtime_config_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, err_t **e);
int cri_update_runtime_config_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                                  ProtobufCMessage **resp, err_t **e);
int cri_load_runtime_config(struct cri *d, err_t **e);

/* events.c */
int cri_container_events_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             struct rpc_stream *st, err_t **e);

#define CRI_RPC(name) \
  int name(struct cri *d, struct cri_call *c, const ProtobufCMessage *req, ProtobufCMessage **resp, err_t **e)

/* pods.c */
CRI_RPC(cri_run_pod_sandbox_rpc);
CRI_RPC(cri_stop_pod_sandbox_rpc);
CRI_RPC(cri_remove_pod_sandbox_rpc);
CRI_RPC(cri_pod_sandbox_status_rpc);
CRI_RPC(cri_list_pod_sandbox_rpc);
void *cri_map_copy(struct arena *a, void *const *src, size_t n, void (*init)(void *));
bool cri_labels_match(void *const *labels, size_t n, void *const *selector, size_t n_sel);
Runtime__V1__PodSandboxMetadata *cri_pod_metadata(struct arena *a, const struct pod_rec *p);
Runtime__V1__PodSandboxStatus *cri_pod_status(struct cri *d, struct arena *a, const struct pod_rec *p);

/* containers.c */
CRI_RPC(cri_create_container_rpc);
CRI_RPC(cri_start_container_rpc);
CRI_RPC(cri_stop_container_rpc);
CRI_RPC(cri_remove_container_rpc);
char *cri_ctr_state_dir(struct cri *d, const char *id);
/* Kills what may still run in a container's cgroup and takes its mounts and cgroup down,
 * from its spec.json in state_dir; a missing or unreadable spec is nothing to do (the
 * latter with a log line). */
int cri_ctr_teardown(const char *state_dir, err_t **e);
int cri_ctr_stop_locked(struct cri *d, struct rpc_ctx *ctx, const char *id, int64_t timeout_s,
                        err_t **e);
int cri_pod_containers_stop(struct cri *d, struct rpc_ctx *ctx, const char *pod_id, err_t **e);
int cri_pod_containers_remove(struct cri *d, struct rpc_ctx *ctx, const char *pod_id, err_t **e);

/* ctr_status.c */
CRI_RPC(cri_container_status_rpc);
CRI_RPC(cri_list_containers_rpc);
CRI_RPC(cri_exec_sync_rpc);
CRI_RPC(cri_reopen_container_log_rpc);
Runtime__V1__ContainerStatus *cri_ctr_status(struct cri *d, struct arena *a, const struct ctr_rec *r);
void cri_publish_event(struct cri *d, const char *id, Runtime__V1__ContainerEventType type);
void cri_publish_removed(struct cri *d, const struct ctr_rec *r);

/* exitwatch.c: one thread that publishes CONTAINER_STOPPED when a container's monitor
 * exits. add: a started container (publishes at once if it is already over);
 * cri_ctr_stopped: a lifecycle call stopped it (publishes unless that already happened).
 * Thread-safe. */
int cri_exitwatch_start(struct cri *d, err_t **e);
void cri_exitwatch_stop(struct cri *d);
void cri_exitwatch_add(struct cri *d, const char *id);
void cri_ctr_stopped(struct cri *d, const char *id);

/* ctr_cache.c: a container's runtime state kept in memory while it is final (exited)
 * or while the exit watcher watches its live monitor; see the file. get: true and *out
 * on a hit. NULL cache: always a miss. Thread-safe. */
struct ctr_runtime_state;
struct ctr_cache *ctr_cache_new(void);
void ctr_cache_free(struct ctr_cache *c);
bool ctr_cache_get(struct ctr_cache *c, const char *id, struct ctr_runtime_state *out);
void ctr_cache_put(struct ctr_cache *c, const char *id, const struct ctr_runtime_state *st);
void ctr_cache_drop(struct ctr_cache *c, const char *id);
/* Changes with every put and drop (read it before the lookups it vouches for). */
uint64_t ctr_cache_version(struct ctr_cache *c);

/* recover.c: at start, undoes creates a crash cut short and removes what no record names. */
void cri_recover(struct cri *d);

/* update.c */
CRI_RPC(cri_update_container_resources_rpc);

/* streaming.c: Exec, Attach, PortForward and the streaming server's lifetime */
CRI_RPC(cri_exec_rpc);
CRI_RPC(cri_attach_rpc);
CRI_RPC(cri_port_forward_rpc);
int cri_streaming_start(struct cri *d, err_t **e);
void cri_streaming_stop(struct cri *d);

/* stats.c */
/* Adds the blocks and inodes below path (not path itself) to *bytes and *inodes. */
void cri_dir_usage(const char *path, uint64_t *bytes, uint64_t *inodes);
CRI_RPC(cri_container_stats_rpc);
CRI_RPC(cri_list_container_stats_rpc);
CRI_RPC(cri_pod_sandbox_stats_rpc);
CRI_RPC(cri_list_pod_sandbox_stats_rpc);
/* Drops a removed container's CPU sample (the cache would otherwise only grow). */
void cri_stats_forget(const char *id);

/* podenv.c: a pod's host-side pieces (namespaces, files; networking later) */
struct rt_handler;
struct ctrspec_pod;
char *podenv_dir(struct cri *d, const char *id);
#define PODENV_SANDBOX_KMSG "sandbox.kmsg"   /* a sandboxed pod's kernel log, in podenv_dir */
int podenv_create(struct cri *d, const char *id, const Runtime__V1__PodSandboxConfig *cfg,
                  const struct rt_handler *h, char **ip4, char **ip6, err_t **e);
struct cni_opts;
void podenv_cni_opts(struct cri *d, struct cni_opts *o);
int podenv_stop(struct cri *d, const char *id, err_t **e);      /* idempotent */
int podenv_destroy(struct cri *d, const char *id, err_t **e);   /* idempotent */
int podenv_describe(struct cri *d, const struct pod_rec *p, struct ctrspec_pod *out, err_t **e);
void podenv_describe_clear(struct ctrspec_pod *p);
/* A pod not on the host's network whose network namespace pin is gone: what a stop or
 * remove cut short leaves; recovery marks such a ready pod not ready. */
bool podenv_netns_lost(struct cri *d, const struct pod_rec *p);
/* Pins a pod's lost network namespace again from a running container of the pod, so
 * that its CNI DEL still reaches the pod's interface; logs what it did or could not. */
void podenv_netns_repin(struct cri *d, const struct pod_rec *p);
/* Records a ready pod as not ready (before its namespaces go; pods.c). */
int cri_pod_mark_not_ready(struct cri *d, const struct pod_rec *p, err_t **e);

/* images.c */
struct image_record;
int cri_image_lookup(struct cri *d, const char *name, struct image_record **out, err_t **e);
int cri_list_images_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage **resp, err_t **e);
int cri_image_status_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, err_t **e);
int cri_remove_image_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, err_t **e);
int cri_pull_image_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                       ProtobufCMessage **resp, err_t **e);
int cri_image_fs_info_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, err_t **e);

#endif
