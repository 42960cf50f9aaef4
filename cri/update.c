/* update.c - UpdateContainerResources: new cgroup limits for a running container,
 * remembered in its spec and record so ContainerStatus and a later restart see them. */
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/ctrspec.h"
#include "cri/internal.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"

static int remember(struct cri *d, const struct ctr_rec *rec,
                    const Runtime__V1__LinuxContainerResources *r, err_t **e)
{
  struct ctr_rec *n = ctr_rec_dup(rec);
  Runtime__V1__ContainerConfig *cfg = n->config;
  if (!cfg->linux) {
    cfg->linux = xmalloc(sizeof(*cfg->linux));
    runtime__v1__linux_container_config__init(cfg->linux);
  }
  if (cfg->linux->resources)
    protobuf_c_message_free_unpacked(&cfg->linux->resources->base, NULL);
  cfg->linux->resources = objects_msg_copy(&r->base);
  int rc = objects_ctr_update(d->objects, n, e);
  ctr_rec_free(n);
  return rc;
}

static int update_locked(struct cri *d, const struct ctr_rec *rec,
                         const Runtime__V1__LinuxContainerResources *r, err_t **e)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, rec->id);
  cleanup_free char *spec_path = path_join(dir, "spec.json");
  struct ctr_spec *spec = NULL;
  if (spec_read(spec_path, &spec, e) < 0)
    return -1;
  struct resources res;
  memset(&res, 0, sizeof(res));
  int rc = ctrspec_resources(r, &res, e);
  struct ctr_runtime_state st;
  err_t *se = NULL;
  bool running = monitor_state(dir, &st, &se) == 0 && st.started && !st.exited;
  err_free(&se);
  if (rc == 0 && running)
    rc = cgroup_update(spec, &res, e);
  if (rc == 0) {  /* a container started later gets the new limits from its spec */
    resources_clear(&spec->res);
    spec->res = res;
    memset(&res, 0, sizeof(res));
    rc = spec_write(spec, spec_path, e);
  }
  resources_clear(&res);
  spec_free(spec);
  if (rc == 0)
    rc = remember(d, rec, r, e);
  return rc;
}

int cri_update_container_resources_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__UpdateContainerResourcesRequest *in =
      (const Runtime__V1__UpdateContainerResourcesRequest *)req;
  if (!in->linux)
    return err_set(e, ERR_INVALID, 0, "no linux resources given");
  struct ctr_rec *rec = NULL;
  if (objects_ctr_get(d->objects, in->container_id, &rec, e) < 0)
    return -1;
  objects_lock(d->objects, rec->id);
  int rc = update_locked(d, rec, in->linux, e);
  objects_unlock(d->objects, rec->id);
  if (rc == 0)
    log_info("container resources updated", "ctr", rec->id, NULL);
  ctr_rec_free(rec);
  if (rc < 0)
    return err_wrap(e, "update resources of container %s", in->container_id);
  Runtime__V1__UpdateContainerResourcesResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__update_container_resources_response__init(r);
  *resp = &r->base;
  return 0;
}
