/* recover.c - what a crispd that died mid-call left behind, settled at start.
 *
 * Records are written first and finished last (objects.h `creating`), so a
 * RunPodSandbox or CreateContainer cut short by a crash is recognised here and undone
 * (its namespaces, network, files, layer holds and record), never shown half made. A
 * StartContainer cut short after its monitor started is recorded as started, so the
 * container is reported by its monitor's files and never started twice. Directories,
 * layer holds and pod namespaces that no record names any more go. Running containers
 * are handed to the exit watcher. Nothing here ever touches a container that is
 * complete. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "net/cni.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"

static void warn(const char *what, const char *id, err_t **e)
{
  log_warn(what, "id", id, "error", *e ? (*e)->msg : "", NULL);
  err_free(e);
}

static int ctr_dirs_remove(struct cri *d, const char *id, err_t **e)
{
  cleanup_free char *state_dir = cri_ctr_state_dir(d, id);
  cleanup_free char *root_dir = xasprintf("%s/containers/%s", d->cfg.root, id);
  return cri_ctr_teardown(state_dir, e) < 0 || rm_rf(state_dir, e) < 0 || rm_rf(root_dir, e) < 0 ? -1 : 0;
}

static void undo_ctr(struct cri *d, const struct ctr_rec *r)
{
  err_t *e = NULL;
  if (ctr_dirs_remove(d, r->id, &e) < 0 || store_layers_release(d->store, r->id, &e) < 0 ||
      objects_ctr_remove(d->objects, r->id, &e) < 0)
    return warn("cannot undo an interrupted CreateContainer", r->id, &e);
  log_warn("undid a CreateContainer a restart interrupted", "ctr", r->id, NULL);
}

/* The monitor was started but the record was not updated: it is started now. */
static void finish_start(struct cri *d, const struct ctr_rec *r)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, r->id);
  cleanup_free char *pidfile = path_join(dir, "monitor.pid");
  if (access(pidfile, F_OK) < 0)
    return;
  struct ctr_rec *n = ctr_rec_dup(r);
  n->start_requested = true;
  err_t *e = NULL;
  if (objects_ctr_update(d->objects, n, &e) < 0)
    warn("cannot record an interrupted StartContainer", r->id, &e);
  else
    log_warn("recorded a StartContainer a restart interrupted", "ctr", r->id, NULL);
  ctr_rec_free(n);
}

/* A crispd killed inside cgroup_kill_all's freeze leaves the container frozen: it
 * would be reported running and never run (nor log) again. */
static void thaw(struct cri *d, const char *id)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  cleanup_free char *spec_path = path_join(dir, "spec.json");
  struct ctr_spec *spec = NULL;
  err_t *e = NULL;
  if (spec_read(spec_path, &spec, &e) == 0 && cgroup_thaw(spec, &e) < 0)
    warn("cannot thaw a container's cgroup", id, &e);
  err_free(&e);
  spec_free(spec);
}

static void recover_ctrs(struct cri *d)
{
  struct ctr_rec **v;
  size_t n;
  objects_ctr_list(d->objects, NULL, &v, &n);
  for (size_t i = 0; i < n; i++) {
    if (v[i]->creating) {
      undo_ctr(d, v[i]);
      continue;
    }
    if (!v[i]->start_requested)
      finish_start(d, v[i]);
  }
  ctr_rec_list_free(v, n);
  /* after the updates: every started container's monitor is watched */
  objects_ctr_list(d->objects, NULL, &v, &n);
  for (size_t i = 0; i < n; i++) {
    if (v[i]->start_requested && !*v[i]->start_error) {
      thaw(d, v[i]->id);
      cri_exitwatch_add(d, v[i]->id);
    }
  }
  ctr_rec_list_free(v, n);
}

/* A ready pod whose network namespace is gone cannot run containers: a StopPodSandbox
 * or RemovePodSandbox was cut short (pods.c records not-ready first, but a store
 * written before that order may hold one). Kubelet stops or removes it again. */
static void mark_not_ready(struct cri *d, const struct pod_rec *p)
{
  err_t *e = NULL;
  if (cri_pod_mark_not_ready(d, p, &e) < 0)
    warn("cannot record a pod without its network namespace as not ready", p->id, &e);
  else
    log_warn("a ready pod had lost its network namespace: now not ready", "pod", p->id, NULL);
}

static void recover_pods(struct cri *d)
{
  struct pod_rec **v;
  size_t n;
  objects_pod_list(d->objects, &v, &n);
  for (size_t i = 0; i < n; i++) {
    err_t *e = NULL;
    if (!v[i]->creating) {
      if (podenv_netns_lost(d, v[i])) {
        if (v[i]->ready)
          mark_not_ready(d, v[i]);
        podenv_netns_repin(d, v[i]);
      }
      continue;
    }
    cni_orphans_end(v[i]->id);   /* an ADD it left running must not outlast the undo */
    if (podenv_destroy(d, v[i]->id, &e) < 0 || objects_pod_remove(d->objects, v[i]->id, &e) < 0)
      warn("cannot undo an interrupted RunPodSandbox", v[i]->id, &e);
    else
      log_warn("undid a RunPodSandbox a restart interrupted", "pod", v[i]->id, NULL);
  }
  pod_rec_list_free(v, n);
}

static bool is_id(const char *n)
{
  if (strlen(n) != 64)
    return false;
  for (const char *p = n; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

/* Calls fn for every <dir>/<64 hex> directory no record of kind names. */
static void orphans(struct cri *d, const char *dir, bool pods,
                    int (*fn)(struct cri *d, const char *id, err_t **e))
{
  cleanup_closedir DIR *dh = opendir(dir);
  if (!dh)
    return;
  struct dirent *de;
  while ((de = readdir(dh))) {
    if (!is_id(de->d_name))
      continue;
    cleanup_free char *path = path_join(dir, de->d_name);
    struct stat sb;
    if (lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode))
      continue;
    err_t *e = NULL;
    struct pod_rec *p = NULL;
    struct ctr_rec *c = NULL;
    int found = pods ? objects_pod_find(d->objects, de->d_name, &p, &e)
                     : objects_ctr_find(d->objects, de->d_name, &c, &e);
    bool known = found < 0 || p || c;   /* on a lookup error, leave it */
    err_free(&e);
    pod_rec_free(p);
    ctr_rec_free(c);
    if (known)
      continue;
    if (fn(d, de->d_name, &e) < 0)
      warn("cannot remove what a removed object left", de->d_name, &e);
    else
      log_warn("removed what a removed object left", "dir", path, NULL);
  }
}

static int ctr_orphan_remove(struct cri *d, const char *id, err_t **e)
{
  if (ctr_dirs_remove(d, id, e) < 0)
    return -1;
  return store_layers_release(d->store, id, e);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A hold is written without waiting for the disk (image/store_holds.c), so a power
 * loss can take it while the container's record stays: such a container holds its
 * image's layers again. */
static void rehold(struct cri *d, char *const *held, size_t n_held)
{
  struct ctr_rec **v = NULL;
  size_t n = 0;
  objects_ctr_list(d->objects, NULL, &v, &n);
  for (size_t i = 0; i < n; i++) {
    const char *id = v[i]->id;
    if (bsearch(&id, held, n_held, sizeof(*held), cmp_str))   /* held is sorted */
      continue;
    err_t *e = NULL;
    struct image_record *img = NULL;
    if (store_image_lookup(d->store, STORE_KEY_ID, v[i]->image_id, &img, &e) < 0 ||
        store_layers_hold(d->store, v[i]->id, (const char *const *)img->chain_ids,
                          img->n_layers, &e) < 0)
      warn("a container's layer hold was lost and cannot be made again", v[i]->id, &e);
    else
      log_warn("held a container's layers again (its hold was lost)", "ctr", v[i]->id, NULL);
    image_record_free(img);
  }
  ctr_rec_list_free(v, n);
}

static void recover_holds(struct cri *d)
{
  char **h = NULL;
  size_t n = 0;
  err_t *e = NULL;
  if (store_layers_holders(d->store, &h, &n, &e) < 0) {
    warn("cannot list layer holders", "", &e);
    return;
  }
  rehold(d, h, n);
  for (size_t i = 0; i < n; i++) {
    struct ctr_rec *c = NULL;
    /* containers hold layers by their ID; any other holder is not ours to judge */
    if (is_id(h[i]) && objects_ctr_find(d->objects, h[i], &c, &e) == 0 && !c &&
        store_layers_release(d->store, h[i], &e) == 0)
      log_warn("released the layers of a container that is gone", "ctr", h[i], NULL);
    err_free(&e);
    ctr_rec_free(c);
    free(h[i]);
  }
  free(h);
}

void cri_recover(struct cri *d)
{
  recover_pods(d);
  recover_ctrs(d);
  cleanup_free char *state_ctrs = xasprintf("%s/containers", d->cfg.state);
  cleanup_free char *root_ctrs = xasprintf("%s/containers", d->cfg.root);
  cleanup_free char *state_pods = xasprintf("%s/pods", d->cfg.state);
  cleanup_free char *root_pods = xasprintf("%s/pods", d->cfg.root);
  orphans(d, state_ctrs, false, ctr_orphan_remove);
  orphans(d, root_ctrs, false, ctr_orphan_remove);
  orphans(d, state_pods, true, podenv_destroy);
  orphans(d, root_pods, true, podenv_destroy);   /* a CNI cache whose pod is gone */
  recover_holds(d);
}
