/* list.c - ListPodSandbox and ListContainers.
 * crisp cannot create pods or containers yet (the pod lifecycle lands with the
 * namespaces executor), so the store these list is always empty for now; the
 * filters are applied once records exist. */
#include "cri/internal.h"

int cri_list_containers_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e)
{
  (void)d;
  (void)req;
  (void)e;
  Runtime__V1__ListContainersResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__list_containers_response__init(r);
  *resp = &r->base;
  return 0;
}

int cri_list_pod_sandbox_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, err_t **e)
{
  (void)d;
  (void)req;
  (void)e;
  Runtime__V1__ListPodSandboxResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__list_pod_sandbox_response__init(r);
  *resp = &r->base;
  return 0;
}
