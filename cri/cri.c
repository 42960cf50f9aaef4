/* cri.c - the service's lifetime: directories, state, server. */
#include "cri/cri.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cri/admin.h"
#include "cri/internal.h"
#include "cri/list_memo.h"
#include "cri/trash.h"
#include "runtimes/sandbox_info.h"

#define EVENT_QUEUE_MAX 1024

/* crisp-pull lives next to crispd (build/bin, or /usr/local/bin after make install). */
static char *helper_path(const char *name)
{
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0)
    return xstrdup(name);
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash)
    *slash = '\0';
  return path_join(self, name);
}

static int start_puller(struct cri *d, err_t **e)
{
  const struct crisp_config *c = &d->cfg;
  struct pull_registry_conf *m = xcalloc(c->n_mirrors + 1, sizeof(*m));
  for (size_t i = 0; i < c->n_mirrors; i++)
    m[i] = (struct pull_registry_conf){c->mirrors[i].host,
                                       (const char *const *)c->mirrors[i].endpoints.v,
                                       c->mirrors[i].endpoints.n};
  char *helper = helper_path("crisp-pull");
  struct puller_opts o = {
      .store = d->store,
      .helper = helper,
      .mirrors = m,
      .n_mirrors = c->n_mirrors,
      .insecure = (const char *const *)c->insecure_registries.v,
      .n_insecure = c->insecure_registries.n,
      .auth_file = c->registry_auth_file,
      .parallel = c->pull_parallelism,
  };
  int rc = puller_new(&o, &d->puller, e);
  free(helper);
  free(m);
  return rc;
}

/* Every sandbox handler's policy, compiled once here: a bad one stops crispd now, and
 * monitors load the program instead of compiling it per start and exec. */
static int compile_sandboxes(struct cri *d, err_t **e)
{
  cleanup_free char *dir = path_join(d->cfg.state, "sandbox");
  if (mkdir_p(dir, 0700, e) < 0)
    return -1;
  for (size_t i = 0; i < d->cfg.runtimes.n; i++) {
    struct rt_handler *h = &d->cfg.runtimes.v[i];
    if (h->executor != EXECUTOR_SANDBOX)
      continue;
    if (strchr(h->name, '/') || h->name[0] == '.')
      return err_set(e, ERR_INVALID, 0, "runtime handler name \"%s\" cannot name a file", h->name);
    char *path = xasprintf("%s/%s.bpf", dir, h->name);
    if (sandbox_prog_write(&h->sandbox, path, e) < 0) {
      free(path);
      return err_wrap(e, "runtime handler %s", h->name);
    }
    free(h->sandbox.prog_path);
    h->sandbox.prog_path = path;
  }
  return 0;
}

static int open_trash(struct cri *d, err_t **e)
{
  const char *dirs[] = {d->cfg.root, d->cfg.state};
  return trash_open(dirs, 2, &d->trash, e);
}

int cri_new(struct crisp_config *cfg, struct cri **out, err_t **e)
{
  struct cri *d = xcalloc(1, sizeof(*d));
  d->cfg = *cfg;
  memset(cfg, 0, sizeof(*cfg));
  pthread_mutex_init(&d->mu, NULL);
  clock_gettime(CLOCK_REALTIME, &d->started);
  d->events = events_new(EVENT_QUEUE_MAX);
  d->ctr_cache = ctr_cache_new();
  d->ctr_list_reply = list_reply_new();
  d->pod_list_reply = list_reply_new();
  /* a second crispd learns first that the socket is taken, before touching any state */
  if (rpc_socket_claim(d->cfg.listen, e) < 0 || mkdir_p(d->cfg.root, 0711, e) < 0 ||
      mkdir_p(d->cfg.state, 0711, e) < 0 || compile_sandboxes(d, e) < 0 ||
      cri_load_runtime_config(d, e) < 0 ||
      store_open(d->cfg.root, &d->store, e) < 0 || start_puller(d, e) < 0 ||
      objects_open(d->cfg.root, &d->objects, e) < 0 || open_trash(d, e) < 0 ||
      cri_streaming_start(d, e) < 0 || cri_exitwatch_start(d, e) < 0) {
    cri_free(d);
    return -1;
  }
  d->monitor_helper = helper_path("crisp-monitor");
  cri_recover(d);
  cri_methods_build(d);
  *out = d;
  return 0;
}

int cri_check_store(const struct crisp_config *cfg, struct store_report *r, err_t **e)
{
  int lock = -1;
  if (!r->check_only && store_lock(cfg->root, &lock, e) < 0)
    return -1;
  int rc = store_check(cfg->root, r, e) < 0 || objects_check(cfg->root, r, e) < 0 ? -1 : 0;
  if (lock >= 0)
    close(lock);
  return rc;
}

int cri_serve(struct cri *d, err_t **e)
{
  struct rpc_server_opts o = {
      .socket_path = d->cfg.listen,
      .min_workers = 2,
      .max_workers = 64,
      .pollers = 1,
  };
  if (rpc_server_start(&o, d->rpc_methods, d->n_methods, &d->rpc, e) < 0 ||
      admin_start(d, &d->admin, e) < 0)
    return -1;
  log_info("serving CRI v1", "socket", d->cfg.listen, "version", cri_version(), NULL);
  return 0;
}

void cri_stop(struct cri *d, int grace_ms)
{
  admin_stop(d->admin);   /* first: an import under way is cancelled, not waited for */
  d->admin = NULL;
  if (!d->rpc)
    return;
  rpc_server_stop(d->rpc, grace_ms);
  d->rpc = NULL;
}

void cri_free(struct cri *d)
{
  if (!d)
    return;
  cri_stop(d, 0);
  cri_streaming_stop(d);   /* first: its sessions use the objects and the helper path */
  cri_exitwatch_stop(d);
  ctr_cache_free(d->ctr_cache);
  list_reply_free(d->ctr_list_reply);
  list_reply_free(d->pod_list_reply);
  cri_methods_free(d);
  events_free(d->events);
  objects_close(d->objects);
  trash_close(d->trash);
  free(d->monitor_helper);
  puller_free(d->puller);
  store_close(d->store);
  config_clear(&d->cfg);
  free(d->pod_cidr);
  pthread_mutex_destroy(&d->mu);
  free(d);
}
