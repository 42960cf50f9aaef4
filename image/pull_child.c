/* pull_child.c - the crisp-pull helper: fetch, verify and unpack for crispd.
 * See pull.h for the protocol. Everything here handles untrusted input (registry
 * responses, manifests, configs, tarballs) in a process of its own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "image/manifest.h"
#include "image/pull.h"
#include "image/pull_int.h"
#include "image/ref.h"
#include "image/registry.h"
#include "image/unpack.h"

#define LAYER_ATTEMPTS 3

struct job {
  struct job *next;
  size_t index;
  char *dir;
};

struct child {
  struct registry *reg;
  struct image_ref ref;
  char *familiar;
  struct registry_creds creds;
  struct manifest *m;
  struct image_config *cfg;
  int out_fd;
  pthread_mutex_t out_mu;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct job *head, *tail;
  bool end;
  atomic_bool failed;
};

static const char *jstr(const json_t *o, const char *k)
{
  const char *s = json_str(json_get(o, k));
  return s && *s ? s : NULL;
}

/* ---- job ------------------------------------------------------------------------ */

struct job_conf {
  struct registry_mirror_conf *mirrors;
  size_t n_mirrors;
  const char **insecure;
  size_t n_insecure;
};

static void job_conf_clear(struct job_conf *jc)
{
  for (size_t i = 0; i < jc->n_mirrors; i++)
    free((void *)jc->mirrors[i].endpoints);
  free(jc->mirrors);
  free(jc->insecure);
}

/* Borrowed pointers into the job's JSON tree, which outlives the registry's creation. */
static int read_job(struct child *c, const json_t *job, struct job_conf *jc, err_t **e)
{
  const char *ref = jstr(job, "ref");
  if (!ref || image_ref_parse(ref, &c->ref, e) < 0)
    return ref ? -1 : err_set(e, ERR_INVALID, 0, "pull job without a reference");
  c->familiar = image_ref_familiar(&c->ref);
  const json_t *cr = json_get(job, "creds");
  c->creds = (struct registry_creds){jstr(cr, "username"), jstr(cr, "password"), jstr(cr, "auth"),
                                     jstr(cr, "identity_token"), jstr(cr, "registry_token")};
  const json_t *regs = json_get(job, "registries");
  const json_t *mir = json_get(regs, "mirrors");
  jc->n_mirrors = json_len(mir);
  jc->mirrors = xcalloc(jc->n_mirrors + 1, sizeof(*jc->mirrors));
  for (size_t i = 0; i < jc->n_mirrors; i++) {
    const json_t *eps = json_at(mir, i);
    const char **v = xcalloc(json_len(eps) + 1, sizeof(*v));
    for (size_t k = 0; k < json_len(eps); k++)
      v[k] = json_str(json_at(eps, k)) ? json_str(json_at(eps, k)) : "";
    jc->mirrors[i] = (struct registry_mirror_conf){json_key_at(mir, i), v, json_len(eps)};
  }
  const json_t *ins = json_get(regs, "insecure");
  jc->n_insecure = json_len(ins);
  jc->insecure = xcalloc(jc->n_insecure + 1, sizeof(*jc->insecure));
  for (size_t i = 0; i < jc->n_insecure; i++)
    jc->insecure[i] = json_str(json_at(ins, i)) ? json_str(json_at(ins, i)) : "";
  struct registry_opts o = {.mirrors = jc->mirrors, .n_mirrors = jc->n_mirrors,
                            .insecure = jc->insecure, .n_insecure = jc->n_insecure,
                            .auth_file = jstr(regs, "auth_file")};
  return registry_new(&o, &c->reg, e);
}

/* ---- messages to crispd ------------------------------------------------------- */

static int send_msg(struct child *c, const struct buf *b, err_t **e)
{
  return line_write(c->out_fd, &c->out_mu, b, e);
}

static void send_error(struct child *c, const err_t *err)
{
  line_write_error(c->out_fd, &c->out_mu, err);
}

/* ---- manifest and config -------------------------------------------------------- */

static int sink_buf(void *arg, const void *p, size_t n, err_t **e)
{
  struct buf *b = arg;
  if (b->len + n > MANIFEST_MAX_SIZE)
    return err_set(e, ERR_INVALID, 0, "image config over %zu bytes", MANIFEST_MAX_SIZE);
  buf_append(b, p, n);
  return 0;
}

static int sink_buf_restart(void *arg, err_t **e)
{
  (void)e;
  buf_reset(arg);
  return 0;
}

static int fetch_manifest(struct child *c, const char *ref, struct registry_manifest *out,
                          struct manifest **m, err_t **e)
{
  if (registry_get_manifest(c->reg, c->ref.domain, c->ref.path, ref, &c->creds, NULL, out, e) < 0)
    return -1;
  if (manifest_parse(out->media_type, out->body, out->len, m, e) < 0)
    return err_wrap(e, "manifest %s of %s", out->digest, c->familiar);
  return 0;
}

/* The image manifest the reference means: itself, or the platform's from an index. */
static int pick_manifest(struct child *c, struct registry_manifest *top,
                         struct registry_manifest *plat, const struct registry_manifest **img,
                         err_t **e)
{
  *img = top;
  if (fetch_manifest(c, c->ref.digest ? c->ref.digest : c->ref.tag, top, &c->m, e) < 0)
    return -1;
  if (!manifest_is_index(c->m))
    return 0;
  struct platform_want want = platform_want_host();
  const struct manifest_desc *d;
  if (manifest_select_platform(c->m, &want, &d, e) < 0)
    return -1;
  cleanup_free char *digest = xstrdup(d->digest);
  manifest_free(c->m);
  c->m = NULL;
  if (fetch_manifest(c, digest, plat, &c->m, e) < 0)
    return -1;
  if (manifest_is_index(c->m))
    return err_set(e, ERR_INVALID, 0, "%s: an index points to another index", c->familiar);
  *img = plat;
  return 0;
}

static int fetch_config(struct child *c, struct buf *cfg, err_t **e)
{
  struct registry_sink sink = {sink_buf, sink_buf_restart, cfg};
  if (registry_get_blob(c->reg, c->ref.domain, c->ref.path, c->m->config.digest, c->m->config.size,
                        &c->creds, NULL, &sink, e) < 0 ||
      image_config_parse(buf_str(cfg), cfg->len, &c->cfg, e) < 0 ||
      image_config_check_layers(c->cfg, c->m, e) < 0)
    return err_wrap(e, "config of %s", c->familiar);
  return 0;
}

static void image_msg(const struct child *c, const struct registry_manifest *img,
                      const struct registry_manifest *index, const struct buf *cfg, struct buf *msg)
{
  buf_puts(msg, "{\"type\":\"image\",\"manifest\":");
  buf_json_str(msg, img->body);
  buf_puts(msg, ",\"manifest_digest\":");
  buf_json_str(msg, img->digest);
  if (index) {
    buf_puts(msg, ",\"index\":");
    buf_json_str(msg, index->body);
    buf_puts(msg, ",\"index_digest\":");
    buf_json_str(msg, index->digest);
  }
  buf_puts(msg, ",\"config\":");
  buf_json_str(msg, buf_str(cfg));
  buf_puts(msg, ",\"config_digest\":");
  buf_json_str(msg, c->m->config.digest);
  buf_puts(msg, ",\"layers\":[");
  for (size_t i = 0; i < c->m->n_layers; i++) {
    buf_printf(msg, "%s{\"digest\":", i ? "," : "");
    buf_json_str(msg, c->m->layers[i].desc.digest);
    buf_printf(msg, ",\"size\":%lld,\"diff_id\":", (long long)c->m->layers[i].desc.size);
    buf_json_str(msg, c->cfg->diff_ids.items[i]);
    buf_putc(msg, '}');
  }
  buf_puts(msg, "]}");
}

static int resolve(struct child *c, struct buf *msg, err_t **e)
{
  struct registry_manifest top = {0}, plat = {0};
  const struct registry_manifest *img;
  cleanup_buf struct buf cfg = BUF_INIT;
  int rc = -1;
  if (pick_manifest(c, &top, &plat, &img, e) == 0 && fetch_config(c, &cfg, e) == 0) {
    image_msg(c, img, img == &plat ? &top : NULL, &cfg, msg);
    rc = 0;
  }
  registry_manifest_clear(&top);
  registry_manifest_clear(&plat);
  return rc;
}

/* ---- layers --------------------------------------------------------------------- */

struct fetch {
  struct child *c;
  const struct manifest_layer *l;
  int fd;             /* write end of the pipe into the unpacker */
  err_t *err;
  uint64_t last_log_ns, done, total;
};

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int sink_pipe(void *arg, const void *p, size_t n, err_t **e)
{
  struct fetch *f = arg;
  return fd_write_all(f->fd, p, n, e);
}

static bool fetch_cancelled(void *arg)
{
  struct fetch *f = arg;
  return atomic_load(&f->c->failed);
}

static void fetch_progress(void *arg, uint64_t done, uint64_t total)
{
  struct fetch *f = arg;
  uint64_t now = mono_ns();
  bool finished = total && done == total;
  /* at most once a second, plus the line that says it is complete (once) */
  if (done == f->done || (now - f->last_log_ns < 1000000000ull && !finished))
    return;
  f->last_log_ns = now;
  f->done = done;
  char d[32], t[32];
  snprintf(d, sizeof(d), "%.1fMB", (double)done / 1e6);
  snprintf(t, sizeof(t), "%.1fMB", (double)total / 1e6);
  log_info("pulling layer", "image", f->c->familiar, "layer", f->l->desc.digest, "done", d,
           "total", t, NULL);
}

static void *fetch_thread(void *arg)
{
  struct fetch *f = arg;
  struct registry_sink sink = {sink_pipe, NULL, f};  /* no restart: a pipe cannot rewind */
  struct registry_io io = {fetch_cancelled, fetch_progress, f};
  registry_get_blob(f->c->reg, f->c->ref.domain, f->c->ref.path, f->l->desc.digest,
                    f->l->desc.size, &f->c->creds, &io, &sink, &f->err);
  close(f->fd);
  return NULL;
}

/* One attempt: download into a pipe on one thread, unpack from it on this one. */
static int layer_once(struct child *c, size_t i, const char *dir, struct unpack_result *res,
                      err_t **e)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return err_sys(e, errno, "pipe");
  struct fetch f = {.c = c, .l = &c->m->layers[i], .fd = p[1]};
  pthread_t t;
  if (pthread_create(&t, NULL, fetch_thread, &f) != 0) {
    close(p[0]);
    close(p[1]);
    return err_set(e, ERR_RESOURCE, 0, "cannot start a download thread");
  }
  err_t *ue = NULL;
  int urc = unpack_layer(p[0], dir, NULL, res, &ue);
  close(p[0]);  /* an unpacker that stopped early makes the download fail with EPIPE */
  pthread_join(t, NULL);
  /* Whoever stopped first knows why. An unpacker that gave up (a hostile or broken
   * layer) closed the pipe, so the download then failed with EPIPE; a download that
   * failed (digest mismatch, truncation, registry error) left the unpacker a short
   * stream, so its complaint is only the consequence. */
  bool download_first = f.err && f.err->sys_errno != EPIPE;
  if (urc < 0 && !download_first) {
    err_free(&f.err);
    *e = ue;
    return err_wrap(e, "layer %s", c->m->layers[i].desc.digest);
  }
  err_free(&ue);
  if (f.err) {
    *e = f.err;
    return -1;
  }
  if (strcmp(res->diff_id, c->cfg->diff_ids.items[i]) != 0)
    return err_set(e, ERR_INVALID, 0, "layer %s: uncompressed digest %s differs from the config's diff_id %s",
                   c->m->layers[i].desc.digest, res->diff_id, c->cfg->diff_ids.items[i]);
  return 0;
}

static int empty_dir(const char *dir, err_t **e)
{
  if (rm_rf(dir, e) < 0 || mkdir_p(dir, 0755, e) < 0)
    return -1;
  return 0;
}

static void do_layer(struct child *c, const struct job *j)
{
  struct unpack_result res;
  err_t *e = NULL;
  int rc = -1;
  for (int attempt = 1; attempt <= LAYER_ATTEMPTS && !atomic_load(&c->failed); attempt++) {
    if (attempt > 1 && empty_dir(j->dir, &e) < 0)
      break;
    rc = layer_once(c, j->index, j->dir, &res, &e);
    /* only a transfer that broke is worth another try; a bad layer stays bad; the last
     * try's error is the one to report */
    if (rc == 0 || attempt == LAYER_ATTEMPTS ||
        (e->code != ERR_UNAVAILABLE && e->code != ERR_DEADLINE))
      break;
    log_warn("retrying layer", "image", c->familiar, "layer", c->m->layers[j->index].desc.digest,
             "error", e->msg, NULL);
    err_free(&e);
  }
  if (rc < 0) {
    /* only the first failure reports: the others are its consequence (setting failed
     * cancels their downloads), and crispd keeps the first error it reads */
    if (!atomic_exchange(&c->failed, true)) {
      if (!e)
        err_set(&e, ERR_CANCELLED, 0, "pull stopped");
      send_error(c, e);
    }
    err_free(&e);
    return;
  }
  cleanup_buf struct buf b = BUF_INIT;
  buf_printf(&b, "{\"type\":\"layer\",\"index\":%zu,\"blob_digest\":\"%s\",\"diff_id\":\"%s\","
                 "\"blob_size\":%llu}",
             j->index, res.blob_digest, res.diff_id, (unsigned long long)res.blob_size);
  if (send_msg(c, &b, &e) < 0) {
    atomic_store(&c->failed, true);
    err_free(&e);
  }
}

static void *worker(void *arg)
{
  struct child *c = arg;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    while (!c->head && !c->end)
      pthread_cond_wait(&c->cv, &c->mu);
    struct job *j = c->head;
    if (j) {
      c->head = j->next;
      if (!c->head)
        c->tail = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (!j)
      return NULL;
    if (!atomic_load(&c->failed))
      do_layer(c, j);
    free(j->dir);
    free(j);
  }
}

/* Reads crispd's layer assignments until {"end":true}. */
static int read_assignments(struct child *c, struct line_reader *in, err_t **e)
{
  for (;;) {
    char *line;
    if (line_read(in, -1, &line, e) < 0)
      return -1;
    cleanup_json json_t *msg = NULL;
    if (json_parse(line, &msg, e) < 0)
      return -1;
    bool end = false;
    if (json_bool(json_get(msg, "end"), &end) == 0 && end)
      return 0;
    long long idx;
    const char *dir = jstr(msg, "dir");
    if (json_int(json_get(msg, "unpack"), &idx) < 0 || idx < 0 || (size_t)idx >= c->m->n_layers || !dir)
      return err_set(e, ERR_INVALID, 0, "bad layer assignment from crispd");
    struct job *j = xcalloc(1, sizeof(*j));
    j->index = (size_t)idx;
    j->dir = xstrdup(dir);
    pthread_mutex_lock(&c->mu);
    if (c->tail)
      c->tail->next = j;
    else
      c->head = j;
    c->tail = j;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
}

static int run_layers(struct child *c, struct line_reader *in, int parallel, err_t **e)
{
  pthread_t t[32];
  int n = parallel < 1 ? 1 : parallel > 32 ? 32 : parallel;
  int started = 0;
  for (; started < n; started++)
    if (pthread_create(&t[started], NULL, worker, c) != 0)
      break;
  if (started == 0)
    return err_set(e, ERR_RESOURCE, 0, "cannot start unpack threads");
  int rc = read_assignments(c, in, e);
  if (rc < 0)  /* crispd is gone or confused: stop everything now */
    atomic_store(&c->failed, true);
  pthread_mutex_lock(&c->mu);
  c->end = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  for (int i = 0; i < started; i++)
    pthread_join(t[i], NULL);
  return rc;
}

int pull_child_main(int in_fd, int out_fd, err_t **e)
{
  signal(SIGPIPE, SIG_IGN);
  struct child c = {.out_fd = out_fd};
  pthread_mutex_init(&c.out_mu, NULL);
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  struct line_reader in = {.fd = in_fd};
  struct job_conf jc = {0};
  cleanup_json json_t *job = NULL;
  cleanup_buf struct buf msg = BUF_INIT;
  char *line;
  long long parallel = 3;
  int rc = -1;
  bool import = false;
  if (line_read(&in, -1, &line, e) < 0 || json_parse(line, &job, e) < 0)
    goto out;
  if (json_bool(json_get(job, "import"), &import) == 0 && import) {
    rc = import_child_main(job, &in, out_fd, e);
    goto out;
  }
  json_int(json_get(job, "parallel"), &parallel);
  if (read_job(&c, job, &jc, e) < 0 || resolve(&c, &msg, e) < 0) {
    send_error(&c, *e);
    goto out;
  }
  if (send_msg(&c, &msg, e) < 0)
    goto out;
  rc = run_layers(&c, &in, (int)parallel, e);
out:
  line_reader_clear(&in);
  registry_free(c.reg);
  manifest_free(c.m);
  image_config_free(c.cfg);
  image_ref_clear(&c.ref);
  free(c.familiar);
  job_conf_clear(&jc);
  return rc;
}
