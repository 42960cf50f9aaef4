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
  struct timespec started;
  pthread_mutex_t mu;     /* guards the fields below */
  char *pod_cidr;         /* from UpdateRuntimeConfig, "" until kubelet sends one */
};

/* One call as a handler sees it: its context and an arena for the response. */
struct cri_call {
  struct rpc_ctx *ctx;
  struct arena arena;
};

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

/* list.c */
int cri_list_containers_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e);
int cri_list_pod_sandbox_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e);

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
