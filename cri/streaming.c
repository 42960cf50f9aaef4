/* streaming.c - Exec, Attach and PortForward: each checks its request and answers with a
 * single-use URL on crispd's streaming server, whose token carries what the back end
 * (streaming.h) needs once the client connects. Also the server's lifetime. */
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "cri/stream_server.h"
#include "cri/streaming.h"
#include "runtimes/monitor.h"

static const struct stream_handlers backends = {
  .exec = cri_stream_exec,
  .attach = cri_stream_attach,
  .port_forward = cri_stream_port_forward,
};

/* Binding here makes a taken port fail at start-up; the server starts no thread before
 * the first token, so an idle crispd pays for one listening socket. */
int cri_streaming_start(struct cri *d, err_t **e)
{
  struct stream_handlers h = backends;
  h.ctx = d;
  struct stream_config c = {.address = d->cfg.stream_address};
  /* tests only: a token lifetime short enough to see expire (default one minute) */
  const char *ttl = getenv("CRISP_STREAM_TOKEN_TTL_MS");
  if (ttl && *ttl) {
    char *end;
    unsigned long ms = strtoul(ttl, &end, 10);
    if (*end || ms == 0 || ms > 3600000)
      return err_set(e, ERR_INVALID, 0, "CRISP_STREAM_TOKEN_TTL_MS=%s: want 1..3600000 ms", ttl);
    c.token_ttl_ms = (unsigned)ms;
  }
  if (stream_server_new(&c, &h, &d->streams, e) < 0)
    return err_wrap(e, "streaming server on %s",
                    d->cfg.stream_address ? d->cfg.stream_address : "127.0.0.1:0");
  return 0;
}

void cri_streaming_stop(struct cri *d)
{
  stream_server_free(d->streams);
  d->streams = NULL;
}

void stream_req_free(void *req)
{
  struct stream_req *r = req;
  if (!r)
    return;
  free(r->id);
  free(r->dir);
  for (size_t i = 0; i < r->argc; i++)
    free(r->argv[i]);
  free(r->argv);
  free(r);
}

/* The container, running (as ContainerStatus would say), and its state dir. */
static int running_ctr(struct cri *d, const char *id, struct ctr_rec **out, char **dir, err_t **e)
{
  struct ctr_rec *r = NULL;
  if (objects_ctr_get(d->objects, id, &r, e) < 0)
    return -1;
  cleanup_free char *sd = cri_ctr_state_dir(d, r->id);
  struct ctr_runtime_state st;
  err_t *se = NULL;
  bool running = r->start_requested && !*r->start_error &&
                 monitor_state(sd, &st, &se) == 0 && st.started && !st.exited;
  err_free(&se);
  if (!running) {
    err_set(e, ERR_PRECONDITION, 0, "container %s is not running", r->id);
    ctr_rec_free(r);
    return -1;
  }
  *out = r;
  *dir = steal(&sd);
  return 0;
}

static int url_for(struct cri *d, enum stream_kind kind, const struct stream_opts *o,
                   struct stream_req *r, char **url, err_t **e)
{
  if (!d->streams)
    return err_set(e, ERR_UNAVAILABLE, 0, "the streaming server is not running");
  return stream_token_new(d->streams, kind, o, r, stream_req_free, url, e);
}

CRI_RPC(cri_exec_rpc)
{
  const Runtime__V1__ExecRequest *in = (const Runtime__V1__ExecRequest *)req;
  if (in->n_cmd == 0 || !*in->cmd[0])
    return err_set(e, ERR_INVALID, 0, "exec needs a command");
  struct ctr_rec *rec = NULL;
  cleanup_free char *dir = NULL;
  if (running_ctr(d, in->container_id, &rec, &dir, e) < 0)
    return err_wrap(e, "exec");
  struct stream_req *r = xcalloc(1, sizeof(*r));
  r->id = xstrdup(rec->id);
  r->dir = steal(&dir);
  ctr_rec_free(rec);
  r->argv = xcalloc(in->n_cmd + 1, sizeof(*r->argv));
  for (; r->argc < in->n_cmd; r->argc++)
    r->argv[r->argc] = xstrdup(in->cmd[r->argc]);
  struct stream_opts o = {.in = in->stdin, .out = in->stdout, .err = in->stderr, .tty = in->tty};
  Runtime__V1__ExecResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__exec_response__init(out);
  cleanup_free char *url = NULL;
  if (url_for(d, STREAM_EXEC, &o, r, &url, e) < 0)
    return err_wrap(e, "exec in container %s", in->container_id);
  out->url = arena_strdup(&c->arena, url);
  *resp = &out->base;
  return 0;
}

CRI_RPC(cri_attach_rpc)
{
  const Runtime__V1__AttachRequest *in = (const Runtime__V1__AttachRequest *)req;
  struct ctr_rec *rec = NULL;
  cleanup_free char *dir = NULL;
  if (running_ctr(d, in->container_id, &rec, &dir, e) < 0)
    return err_wrap(e, "attach");
  struct stream_req *r = xcalloc(1, sizeof(*r));
  r->id = xstrdup(rec->id);
  r->dir = steal(&dir);
  ctr_rec_free(rec);
  struct stream_opts o = {.in = in->stdin, .out = in->stdout, .err = in->stderr, .tty = in->tty};
  Runtime__V1__AttachResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__attach_response__init(out);
  cleanup_free char *url = NULL;
  if (url_for(d, STREAM_ATTACH, &o, r, &url, e) < 0)
    return err_wrap(e, "attach to container %s", in->container_id);
  out->url = arena_strdup(&c->arena, url);
  *resp = &out->base;
  return 0;
}

static bool pod_host_net(const struct pod_rec *p)
{
  const Runtime__V1__LinuxPodSandboxConfig *l = p->config->linux;
  const Runtime__V1__LinuxSandboxSecurityContext *sc = l ? l->security_context : NULL;
  const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
  return o && o->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

CRI_RPC(cri_port_forward_rpc)
{
  const Runtime__V1__PortForwardRequest *in = (const Runtime__V1__PortForwardRequest *)req;
  struct pod_rec *p = NULL;
  if (objects_pod_get(d->objects, in->pod_sandbox_id, &p, e) < 0)
    return err_wrap(e, "port-forward");
  if (!p->ready) {
    err_set(e, ERR_PRECONDITION, 0, "pod sandbox %s is not ready", p->id);
    pod_rec_free(p);
    return err_wrap(e, "port-forward");
  }
  struct stream_req *r = xcalloc(1, sizeof(*r));
  r->id = xstrdup(p->id);
  r->dir = podenv_dir(d, p->id);
  r->host_net = pod_host_net(p);
  pod_rec_free(p);
  struct stream_opts o = {.ports = in->port, .n_ports = in->n_port};
  Runtime__V1__PortForwardResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__port_forward_response__init(out);
  cleanup_free char *url = NULL;
  if (url_for(d, STREAM_PORT_FORWARD, &o, r, &url, e) < 0)
    return err_wrap(e, "port-forward to pod %s", in->pod_sandbox_id);
  out->url = arena_strdup(&c->arena, url);
  *resp = &out->base;
  return 0;
}
