/* objects.c - pod and container records: index, persistence, name reservation. */
#include "cri/objects.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/quarantine.h"
#include "base/xalloc.h"

struct obj_lock {
  struct obj_lock *next;
  char id[65];
  int users;
  pthread_mutex_t mu;
};

struct objects {
  char *root;
  pthread_mutex_t mu;
  struct pod_rec **pods;
  size_t n_pods;
  struct ctr_rec **ctrs;
  size_t n_ctrs;
  struct obj_lock *locks;
  struct store_report *report;   /* while loading for objects_check */
  atomic_uint_fast64_t version;  /* bumped under mu by every change of the index */
};

void objects_new_id(char out[65])
{
  unsigned char r[32];
  size_t got = 0;
  while (got < sizeof(r)) {
    ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
    if (n > 0)
      got += (size_t)n;
    else if (errno != EINTR)
      abort();  /* no randomness: ids would collide */
  }
  for (size_t i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* ---- records: copy and free ------------------------------------------------------ */

void *objects_msg_copy(const ProtobufCMessage *m)
{
  if (!m)
    return NULL;
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = xmalloc(n ? n : 1);
  protobuf_c_message_pack(m, b);
  void *c = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
  free(b);
  if (!c)
    abort();  /* what we packed must unpack */
  return c;
}

struct pod_rec *pod_rec_dup(const struct pod_rec *p)
{
  struct pod_rec *d = xcalloc(1, sizeof(*d));
  d->id = xstrdup(p->id);
  d->config = objects_msg_copy(&p->config->base);
  d->handler = xstrdup(p->handler ? p->handler : "");
  d->created_ns = p->created_ns;
  d->ready = p->ready;
  d->ip = xstrdup(p->ip ? p->ip : "");
  d->ip6 = xstrdup(p->ip6 ? p->ip6 : "");
  d->creating = p->creating;
  atomic_init(&d->refs, 1);
  return d;
}

void pod_rec_free(struct pod_rec *p)
{
  if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
    return;
  free(p->id);
  if (p->config)
    protobuf_c_message_free_unpacked(&p->config->base, NULL);
  free(p->handler);
  free(p->ip);
  free(p->ip6);
  free(atomic_load(&p->list_memo));
  free(p);
}

void pod_rec_list_free(struct pod_rec **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    pod_rec_free(v[i]);
  free(v);
}

struct ctr_rec *ctr_rec_dup(const struct ctr_rec *c)
{
  struct ctr_rec *d = xcalloc(1, sizeof(*d));
  d->id = xstrdup(c->id);
  d->pod_id = xstrdup(c->pod_id);
  d->config = objects_msg_copy(&c->config->base);
  d->image_id = xstrdup(c->image_id ? c->image_id : "");
  d->image_name = xstrdup(c->image_name ? c->image_name : "");
  d->log_path = xstrdup(c->log_path ? c->log_path : "");
  d->created_ns = c->created_ns;
  d->start_requested = c->start_requested;
  d->start_error = xstrdup(c->start_error ? c->start_error : "");
  d->creating = c->creating;
  atomic_init(&d->refs, 1);
  return d;
}

void ctr_rec_free(struct ctr_rec *c)
{
  if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  free(c->id);
  free(c->pod_id);
  if (c->config)
    protobuf_c_message_free_unpacked(&c->config->base, NULL);
  free(c->image_id);
  free(c->image_name);
  free(c->log_path);
  free(c->start_error);
  free(atomic_load(&c->list_memo));
  free(c);
}

void ctr_rec_list_free(struct ctr_rec **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ctr_rec_free(v[i]);
  free(v);
}

/* ---- JSON on disk ---------------------------------------------------------------- */

static void put_hex(struct buf *b, const ProtobufCMessage *m)
{
  size_t n = protobuf_c_message_get_packed_size(m);
  cleanup_free uint8_t *raw = xmalloc(n ? n : 1);
  protobuf_c_message_pack(m, raw);
  buf_putc(b, '"');
  buf_reserve(b, 2 * n);
  for (size_t i = 0; i < n; i++)
    buf_printf(b, "%02x", raw[i]);
  buf_putc(b, '"');
}

static void *get_hex(const json_t *v, const ProtobufCMessageDescriptor *d)
{
  const char *h = json_str(v);
  size_t len = h ? strlen(h) : 0;
  if (!h || len % 2)
    return NULL;
  cleanup_free uint8_t *raw = xmalloc(len / 2 + 1);
  for (size_t i = 0; i < len / 2; i++) {
    unsigned x;
    if (sscanf(h + 2 * i, "%2x", &x) != 1)
      return NULL;
    raw[i] = (uint8_t)x;
  }
  return protobuf_c_message_unpack(d, NULL, len / 2, raw);
}

static void pod_json(const struct pod_rec *p, struct buf *b)
{
  buf_puts(b, "{\"id\":");
  buf_json_str(b, p->id);
  buf_puts(b, ",\"handler\":");
  buf_json_str(b, p->handler);
  buf_printf(b, ",\"created_ns\":%lld,\"ready\":%s,\"ip\":", (long long)p->created_ns,
             p->ready ? "true" : "false");
  buf_json_str(b, p->ip);
  buf_puts(b, ",\"ip6\":");
  buf_json_str(b, p->ip6);
  if (p->creating)
    buf_puts(b, ",\"creating\":true");
  buf_puts(b, ",\"config\":");
  put_hex(b, &p->config->base);
  buf_putc(b, '}');
}

static struct pod_rec *pod_parse(const json_t *j)
{
  struct pod_rec p = {0};
  long long created;
  p.id = (char *)json_str(json_get(j, "id"));
  p.handler = (char *)json_str(json_get(j, "handler"));
  p.ip = (char *)json_str(json_get(j, "ip"));
  p.ip6 = (char *)json_str(json_get(j, "ip6"));
  p.config = get_hex(json_get(j, "config"), &runtime__v1__pod_sandbox_config__descriptor);
  if (!p.id || strlen(p.id) != 64 || !p.handler || !p.config ||
      json_int(json_get(j, "created_ns"), &created) < 0 ||
      json_bool(json_get(j, "ready"), &p.ready) < 0) {
    if (p.config)
      protobuf_c_message_free_unpacked(&p.config->base, NULL);
    return NULL;
  }
  p.created_ns = created;
  if (json_bool(json_get(j, "creating"), &p.creating) < 0)
    p.creating = false;   /* optional: only a record written mid-create has it */
  struct pod_rec *d = pod_rec_dup(&p);
  protobuf_c_message_free_unpacked(&p.config->base, NULL);
  return d;
}

static void ctr_json(const struct ctr_rec *c, struct buf *b)
{
  const char *k[] = {"id", "pod_id", "image_id", "image_name", "log_path", "start_error"};
  const char *v[] = {c->id, c->pod_id, c->image_id, c->image_name, c->log_path, c->start_error};
  buf_putc(b, '{');
  for (size_t i = 0; i < 6; i++) {
    buf_printf(b, "\"%s\":", k[i]);
    buf_json_str(b, v[i]);
    buf_putc(b, ',');
  }
  buf_printf(b, "\"created_ns\":%lld,\"start_requested\":%s,%s\"config\":",
             (long long)c->created_ns, c->start_requested ? "true" : "false",
             c->creating ? "\"creating\":true," : "");
  put_hex(b, &c->config->base);
  buf_putc(b, '}');
}

static struct ctr_rec *ctr_parse(const json_t *j)
{
  struct ctr_rec c = {0};
  long long created;
  c.id = (char *)json_str(json_get(j, "id"));
  c.pod_id = (char *)json_str(json_get(j, "pod_id"));
  c.image_id = (char *)json_str(json_get(j, "image_id"));
  c.image_name = (char *)json_str(json_get(j, "image_name"));
  c.log_path = (char *)json_str(json_get(j, "log_path"));
  c.start_error = (char *)json_str(json_get(j, "start_error"));
  c.config = get_hex(json_get(j, "config"), &runtime__v1__container_config__descriptor);
  if (!c.id || strlen(c.id) != 64 || !c.pod_id || !c.config || !c.image_id || !c.log_path ||
      json_int(json_get(j, "created_ns"), &created) < 0 ||
      json_bool(json_get(j, "start_requested"), &c.start_requested) < 0) {
    if (c.config)
      protobuf_c_message_free_unpacked(&c.config->base, NULL);
    return NULL;
  }
  c.created_ns = created;
  if (json_bool(json_get(j, "creating"), &c.creating) < 0)
    c.creating = false;   /* optional: only a record written mid-create has it */
  struct ctr_rec *d = ctr_rec_dup(&c);
  protobuf_c_message_free_unpacked(&c.config->base, NULL);
  return d;
}

static char *rec_path(const struct objects *o, const char *kind, const char *id)
{
  return xasprintf("%s/%s/%s.json", o->root, kind, id);
}

/* A record of a create in progress need not survive a power loss: without it the
 * create never happened, and the start-up sweep (recover.c) removes what it left. The
 * final record is durable. */
static int write_rec(const struct objects *o, const char *kind, const char *id,
                     const struct buf *b, bool creating, err_t **e)
{
  cleanup_free char *p = rec_path(o, kind, id);
  return creating ? file_write_atomic_nosync(p, b->data, b->len, 0600, e)
                  : file_write_atomic(p, b->data, b->len, 0600, e);
}

static int remove_rec(const struct objects *o, const char *kind, const char *id, err_t **e)
{
  cleanup_free char *p = rec_path(o, kind, id);
  if (unlink(p) < 0 && errno != ENOENT)
    return err_sys(e, errno, "remove %s", p);
  return 0;
}

/* ---- loading ---------------------------------------------------------------------- */

/* kind: the directory ("pods", "containers"); the report and quarantine name the
 * record kind ("pod", "container"). */
static const char *kind_name(const char *dir)
{
  return strcmp(dir, "pods") == 0 ? "pod" : "container";
}

static void quarantine(const struct objects *o, const char *kind, const char *name, const char *why)
{
  cleanup_free char *from = xasprintf("%s/%s/%s", o->root, kind, name);
  cleanup_free char *dir = xasprintf("%s/quarantine", o->root);
  store_problem(o->report, dir, from, kind_name(kind), why);
}

/* A record must be stored under its own ID: "<id>.json". */
static bool name_matches(const char *name, const char *id)
{
  size_t n = strlen(id);
  return strncmp(name, id, n) == 0 && strcmp(name + n, ".json") == 0;
}

typedef void (*load_fn)(struct objects *o, const json_t *j, const char *name);

static void load_pod(struct objects *o, const json_t *j, const char *name)
{
  struct pod_rec *p = pod_parse(j);
  if (!p || !name_matches(name, p->id)) {
    quarantine(o, "pods", name, p ? "file name does not match the pod ID" : "missing or malformed fields");
    pod_rec_free(p);
    return;
  }
  store_report_count(o->report, "pod");
  o->pods = xreallocarray(o->pods, o->n_pods + 1, sizeof(*o->pods));
  o->pods[o->n_pods++] = p;
}

static void load_ctr(struct objects *o, const json_t *j, const char *name)
{
  struct ctr_rec *c = ctr_parse(j);
  if (!c || !name_matches(name, c->id)) {
    quarantine(o, "containers", name,
               c ? "file name does not match the container ID" : "missing or malformed fields");
    ctr_rec_free(c);
    return;
  }
  store_report_count(o->report, "container");
  o->ctrs = xreallocarray(o->ctrs, o->n_ctrs + 1, sizeof(*o->ctrs));
  o->ctrs[o->n_ctrs++] = c;
}

/* A container whose pod record is gone stays listed (its monitor may still run it):
 * kubelet's container garbage collection removes containers whose sandbox no longer
 * exists, and RemoveContainer works without the pod. CRI-O deletes such containers
 * on restore; crisp keeps them so nothing that may be running is forgotten. */
static void check_orphans(struct objects *o)
{
  for (size_t i = 0; i < o->n_ctrs; i++) {
    bool found = false;
    for (size_t k = 0; k < o->n_pods && !found; k++)
      found = strcmp(o->pods[k]->id, o->ctrs[i]->pod_id) == 0;
    if (found)
      continue;
    cleanup_free char *path = xasprintf("%s/containers/%s.json", o->root, o->ctrs[i]->id);
    cleanup_free char *why = xasprintf("its pod sandbox %s does not exist (kept: kubelet's "
                                       "garbage collection removes it)", o->ctrs[i]->pod_id);
    store_report_note(o->report, "container", path, why);
  }
}

static int load_dir(struct objects *o, const char *kind, load_fn fn, err_t **e)
{
  cleanup_free char *dir = xasprintf("%s/%s", o->root, kind);
  bool check_only = o->report && o->report->check_only;
  if (!check_only && mkdir_p(dir, 0700, e) < 0)
    return -1;
  cleanup_closedir DIR *d = opendir(dir);
  if (!d && check_only && errno == ENOENT)
    return 0;
  if (!d)
    return err_sys(e, errno, "open %s", dir);
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    size_t len = strlen(n);
    if (n[0] == '.')
      continue;
    cleanup_free char *path = path_join(dir, n);
    if (strstr(n, ".tmp-")) {  /* an atomic write a crash interrupted */
      if (!check_only)
        unlink(path);
      continue;
    }
    if (len < 6 || strcmp(n + len - 5, ".json") != 0)
      continue;   /* containers/<id>/ holds a container's writable layer */
    cleanup_free char *text = NULL;
    cleanup_json json_t *j = NULL;
    err_t *le = NULL;
    if (file_read_all(path, 1 << 24, &text, NULL, &le) < 0 || json_parse(text, &j, &le) < 0) {
      quarantine(o, kind, n, le->msg);
      err_free(&le);
      continue;
    }
    fn(o, j, n);
  }
  return 0;
}

static int objects_load(const char *root, struct store_report *r, struct objects **out, err_t **e)
{
  struct objects *o = xcalloc(1, sizeof(*o));
  o->root = xstrdup(root);
  o->report = r;
  pthread_mutex_init(&o->mu, NULL);
  if (load_dir(o, "pods", load_pod, e) < 0 || load_dir(o, "containers", load_ctr, e) < 0) {
    objects_close(o);
    return -1;
  }
  check_orphans(o);
  o->report = NULL;
  *out = o;
  return 0;
}

int objects_open(const char *root, struct objects **out, err_t **e)
{
  return objects_load(root, NULL, out, e);
}

int objects_check(const char *root, struct store_report *r, err_t **e)
{
  struct objects *o = NULL;
  if (objects_load(root, r, &o, e) < 0)
    return -1;
  objects_close(o);
  return 0;
}

void objects_close(struct objects *o)
{
  if (!o)
    return;
  for (size_t i = 0; i < o->n_pods; i++)
    pod_rec_free(o->pods[i]);
  for (size_t i = 0; i < o->n_ctrs; i++)
    ctr_rec_free(o->ctrs[i]);
  free(o->pods);
  free(o->ctrs);
  while (o->locks) {
    struct obj_lock *l = o->locks;
    o->locks = l->next;
    pthread_mutex_destroy(&l->mu);
    free(l);
  }
  pthread_mutex_destroy(&o->mu);
  free(o->root);
  free(o);
}

/* ---- lookups (with o->mu held) ---------------------------------------------------- */

/* Index of the one record whose id starts with prefix; -1 none, -2 ambiguous.
 * Works on both record arrays: struct pod_rec and struct ctr_rec begin with char *id. */
static ssize_t find_prefix(void *const *arr, size_t n, const char *prefix)
{
  ssize_t found = -1;
  size_t plen = strlen(prefix);
  for (size_t i = 0; i < n && plen; i++) {
    const char *id = *(char *const *)arr[i];
    if (strncmp(id, prefix, plen) != 0)
      continue;
    if (plen == 64)
      return (ssize_t)i;
    found = found == -1 ? (ssize_t)i : -2;
  }
  return found;
}
#define FIND_BY_PREFIX(arr, n, prefix) find_prefix((void *const *)(arr), (n), (prefix))

static int lookup_err(ssize_t i, const char *what, const char *id, err_t **e)
{
  if (i == -2)
    return err_set(e, ERR_INVALID, 0, "%s ID prefix \"%s\" is ambiguous", what, id);
  return err_set(e, ERR_NOT_FOUND, 0, "%s \"%s\" not found", what, id);
}

static bool pod_same_name(const Runtime__V1__PodSandboxMetadata *a,
                          const Runtime__V1__PodSandboxMetadata *b)
{
  return a && b && !strcmp(a->name, b->name) && !strcmp(a->namespace_, b->namespace_) &&
         !strcmp(a->uid, b->uid) && a->attempt == b->attempt;
}

/* Records are written outside the index lock, so status and list calls never wait
 * behind an fsync: add reserves the name in the index first and rolls back if the
 * write fails; lifecycle calls on one object are already serialised by objects_lock. */
static void pod_drop_at(struct objects *o, const struct pod_rec *r)
{
  for (size_t i = 0; i < o->n_pods; i++)
    if (o->pods[i] == r) {
      pod_rec_free(o->pods[i]);
      o->pods[i] = o->pods[--o->n_pods];
      atomic_fetch_add(&o->version, 1);
      return;
    }
}

int objects_pod_add(struct objects *o, const struct pod_rec *p, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  pod_json(p, &b);
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < o->n_pods; i++) {
    if (pod_same_name(o->pods[i]->config->metadata, p->config->metadata)) {
      const Runtime__V1__PodSandboxMetadata *m = p->config->metadata;
      err_set(e, ERR_EXISTS, 0, "pod sandbox %s/%s (uid %s, attempt %u) already exists as %s",
              m->namespace_, m->name, m->uid, m->attempt, o->pods[i]->id);
      pthread_mutex_unlock(&o->mu);
      return -1;
    }
  }
  struct pod_rec *r = pod_rec_dup(p);
  o->pods = xreallocarray(o->pods, o->n_pods + 1, sizeof(*o->pods));
  o->pods[o->n_pods++] = r;
  atomic_fetch_add(&o->version, 1);
  pthread_mutex_unlock(&o->mu);
  if (write_rec(o, "pods", p->id, &b, p->creating, e) == 0)
    return 0;
  pthread_mutex_lock(&o->mu);
  pod_drop_at(o, r);
  pthread_mutex_unlock(&o->mu);
  return -1;
}

int objects_pod_update(struct objects *o, const struct pod_rec *p, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  pod_json(p, &b);
  struct pod_rec *have = NULL;
  if (objects_pod_get(o, p->id, &have, e) < 0)
    return -1;
  pod_rec_free(have);
  if (write_rec(o, "pods", p->id, &b, p->creating, e) < 0)
    return -1;
  pthread_mutex_lock(&o->mu);
  ssize_t i = FIND_BY_PREFIX(o->pods, o->n_pods, p->id);
  if (i >= 0) {
    pod_rec_free(o->pods[i]);
    o->pods[i] = pod_rec_dup(p);
    atomic_fetch_add(&o->version, 1);
  }
  pthread_mutex_unlock(&o->mu);
  return 0;
}

int objects_pod_remove(struct objects *o, const char *id, err_t **e)
{
  struct pod_rec *p = NULL;
  if (objects_pod_get(o, id, &p, e) < 0) {
    if ((*e)->code != ERR_NOT_FOUND)
      return -1;
    err_free(e);
    return 0;
  }
  int rc = remove_rec(o, "pods", p->id, e);
  if (rc == 0) {
    pthread_mutex_lock(&o->mu);
    pod_drop_at(o, p);
    pthread_mutex_unlock(&o->mu);
  }
  pod_rec_free(p);
  return rc;
}

uint64_t objects_version(struct objects *o)
{
  return atomic_load(&o->version);
}

int objects_pod_get(struct objects *o, const char *id, struct pod_rec **out, err_t **e)
{
  if (!id || !*id)
    return err_set(e, ERR_INVALID, 0, "no pod sandbox ID given");
  pthread_mutex_lock(&o->mu);
  ssize_t i = FIND_BY_PREFIX(o->pods, o->n_pods, id);
  if (i >= 0) {
    *out = o->pods[i];
    atomic_fetch_add(&(*out)->refs, 1);
  }
  pthread_mutex_unlock(&o->mu);
  return i >= 0 ? 0 : lookup_err(i, "pod sandbox", id, e);
}

int objects_pod_list(struct objects *o, struct pod_rec ***out, size_t *n)
{
  pthread_mutex_lock(&o->mu);
  *n = o->n_pods;
  *out = xcalloc(o->n_pods + 1, sizeof(**out));
  for (size_t i = 0; i < o->n_pods; i++) {
    (*out)[i] = o->pods[i];
    atomic_fetch_add(&o->pods[i]->refs, 1);
  }
  pthread_mutex_unlock(&o->mu);
  return 0;
}

static bool ctr_same_name(const struct ctr_rec *a, const struct ctr_rec *b)
{
  const Runtime__V1__ContainerMetadata *x = a->config->metadata, *y = b->config->metadata;
  return x && y && !strcmp(a->pod_id, b->pod_id) && !strcmp(x->name, y->name) &&
         x->attempt == y->attempt;
}

static void ctr_drop_at(struct objects *o, const struct ctr_rec *r)
{
  for (size_t i = 0; i < o->n_ctrs; i++)
    if (o->ctrs[i] == r) {
      ctr_rec_free(o->ctrs[i]);
      o->ctrs[i] = o->ctrs[--o->n_ctrs];
      atomic_fetch_add(&o->version, 1);
      return;
    }
}

int objects_ctr_add(struct objects *o, const struct ctr_rec *c, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  ctr_json(c, &b);
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < o->n_ctrs; i++) {
    if (ctr_same_name(o->ctrs[i], c)) {
      err_set(e, ERR_EXISTS, 0, "container \"%s\" (attempt %u) already exists in pod %s as %s",
              c->config->metadata->name, c->config->metadata->attempt, c->pod_id, o->ctrs[i]->id);
      pthread_mutex_unlock(&o->mu);
      return -1;
    }
  }
  struct ctr_rec *r = ctr_rec_dup(c);
  o->ctrs = xreallocarray(o->ctrs, o->n_ctrs + 1, sizeof(*o->ctrs));
  o->ctrs[o->n_ctrs++] = r;
  atomic_fetch_add(&o->version, 1);
  pthread_mutex_unlock(&o->mu);
  if (write_rec(o, "containers", c->id, &b, c->creating, e) == 0)
    return 0;
  pthread_mutex_lock(&o->mu);
  ctr_drop_at(o, r);
  pthread_mutex_unlock(&o->mu);
  return -1;
}

int objects_ctr_update(struct objects *o, const struct ctr_rec *c, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  ctr_json(c, &b);
  struct ctr_rec *have = NULL;
  if (objects_ctr_get(o, c->id, &have, e) < 0)
    return -1;
  ctr_rec_free(have);
  if (write_rec(o, "containers", c->id, &b, c->creating, e) < 0)
    return -1;
  pthread_mutex_lock(&o->mu);
  ssize_t i = FIND_BY_PREFIX(o->ctrs, o->n_ctrs, c->id);
  if (i >= 0) {
    ctr_rec_free(o->ctrs[i]);
    o->ctrs[i] = ctr_rec_dup(c);
    atomic_fetch_add(&o->version, 1);
  }
  pthread_mutex_unlock(&o->mu);
  return 0;
}

int objects_ctr_remove(struct objects *o, const char *id, err_t **e)
{
  struct ctr_rec *c = NULL;
  if (objects_ctr_get(o, id, &c, e) < 0) {
    if ((*e)->code != ERR_NOT_FOUND)
      return -1;
    err_free(e);
    return 0;
  }
  int rc = remove_rec(o, "containers", c->id, e);
  if (rc == 0) {
    pthread_mutex_lock(&o->mu);
    ctr_drop_at(o, c);
    pthread_mutex_unlock(&o->mu);
  }
  ctr_rec_free(c);
  return rc;
}

int objects_ctr_get(struct objects *o, const char *id, struct ctr_rec **out, err_t **e)
{
  if (!id || !*id)
    return err_set(e, ERR_INVALID, 0, "no container ID given");
  pthread_mutex_lock(&o->mu);
  ssize_t i = FIND_BY_PREFIX(o->ctrs, o->n_ctrs, id);
  if (i >= 0) {
    *out = o->ctrs[i];
    atomic_fetch_add(&(*out)->refs, 1);
  }
  pthread_mutex_unlock(&o->mu);
  return i >= 0 ? 0 : lookup_err(i, "container", id, e);
}

int objects_ctr_list(struct objects *o, const char *pod_id, struct ctr_rec ***out, size_t *n)
{
  pthread_mutex_lock(&o->mu);
  *out = xcalloc(o->n_ctrs + 1, sizeof(**out));
  *n = 0;
  for (size_t i = 0; i < o->n_ctrs; i++) {
    if (pod_id && strcmp(o->ctrs[i]->pod_id, pod_id) != 0)
      continue;
    (*out)[(*n)++] = o->ctrs[i];
    atomic_fetch_add(&o->ctrs[i]->refs, 1);
  }
  pthread_mutex_unlock(&o->mu);
  return 0;
}

/* ---- per-object locks ------------------------------------------------------------- */

void objects_lock(struct objects *o, const char *id)
{
  pthread_mutex_lock(&o->mu);
  struct obj_lock *l = o->locks;
  while (l && strcmp(l->id, id) != 0)
    l = l->next;
  if (!l) {
    l = xcalloc(1, sizeof(*l));
    snprintf(l->id, sizeof(l->id), "%s", id);
    pthread_mutex_init(&l->mu, NULL);
    l->next = o->locks;
    o->locks = l;
  }
  l->users++;
  pthread_mutex_unlock(&o->mu);
  pthread_mutex_lock(&l->mu);
}

void objects_unlock(struct objects *o, const char *id)
{
  pthread_mutex_lock(&o->mu);
  struct obj_lock **pp = &o->locks;
  while (*pp && strcmp((*pp)->id, id) != 0)
    pp = &(*pp)->next;
  struct obj_lock *l = *pp;
  if (l) {
    pthread_mutex_unlock(&l->mu);
    if (--l->users == 0) {
      *pp = l->next;
      pthread_mutex_destroy(&l->mu);
      free(l);
    }
  }
  pthread_mutex_unlock(&o->mu);
}

int objects_pod_find(struct objects *o, const char *id, struct pod_rec **out, err_t **e)
{
  *out = NULL;
  if (objects_pod_get(o, id, out, e) == 0 || (*e)->code != ERR_NOT_FOUND)
    return *out ? 0 : -1;
  err_free(e);
  return 0;
}

int objects_ctr_find(struct objects *o, const char *id, struct ctr_rec **out, err_t **e)
{
  *out = NULL;
  if (objects_ctr_get(o, id, out, e) == 0 || (*e)->code != ERR_NOT_FOUND)
    return *out ? 0 : -1;
  err_free(e);
  return 0;
}
