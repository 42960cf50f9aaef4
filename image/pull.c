/* pull.c - crispd's side of a pull: the store's owner, the helper's supervisor.
 * See pull.h. */
#include "image/pull.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "image/pull_int.h"
#include "image/ref.h"

#define PULL_ATTEMPTS 3

/* A pull of one reference under way; a second pull of it waits for this one. */
struct inflight {
  struct inflight *next;
  char *key;
  bool done;
  char *id;          /* on success */
  int waiters;
  pthread_cond_t cv;
};


static void registries_json(const struct puller_opts *o, struct buf *b)
{
  buf_puts(b, "{\"mirrors\":{");
  for (size_t i = 0; i < o->n_mirrors; i++) {
    buf_printf(b, "%s", i ? "," : "");
    buf_json_str(b, o->mirrors[i].host);
    buf_puts(b, ":[");
    for (size_t k = 0; k < o->mirrors[i].n; k++) {
      buf_printf(b, "%s", k ? "," : "");
      buf_json_str(b, o->mirrors[i].endpoints[k]);
    }
    buf_putc(b, ']');
  }
  buf_puts(b, "},\"insecure\":[");
  for (size_t i = 0; i < o->n_insecure; i++) {
    buf_printf(b, "%s", i ? "," : "");
    buf_json_str(b, o->insecure[i]);
  }
  buf_putc(b, ']');
  if (o->auth_file) {
    buf_puts(b, ",\"auth_file\":");
    buf_json_str(b, o->auth_file);
  }
  buf_putc(b, '}');
}

int puller_new(const struct puller_opts *o, struct puller **out, err_t **e)
{
  if (access(o->helper, X_OK) < 0)
    return err_sys(e, errno, "pull helper %s", o->helper);
  struct puller *p = xcalloc(1, sizeof(*p));
  p->store = o->store;
  p->helper = xstrdup(o->helper);
  p->parallel = o->parallel > 0 ? o->parallel : 3;
  struct buf b = BUF_INIT;
  registries_json(o, &b);
  p->registries_json = buf_steal(&b);
  pthread_mutex_init(&p->mu, NULL);
  *out = p;
  return 0;
}

void puller_free(struct puller *p)
{
  if (!p)
    return;
  free(p->helper);
  free(p->registries_json);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* ---- the helper process ----------------------------------------------------------- */

int pull_helper_start(const struct puller *p, struct helper *h, int extra_fd, err_t **e)
{
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) < 0)
    return err_sys(e, errno, "pipe");
  if (pipe2(out, O_CLOEXEC) < 0) {
    close(in[0]);
    close(in[1]);
    return err_sys(e, errno, "pipe");
  }
  pid_t ppid = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return err_sys(e, err, "fork pull helper");
  }
  if (pid == 0) {
    /* the helper dies with the thread that supervises it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != ppid)
      _exit(127);
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
      _exit(127);
    if (extra_fd >= 0 && (extra_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(extra_fd, 3)) < 0)
      _exit(127);
    execl(p->helper, "crisp-pull", (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  h->pid = pid;
  h->to = in[1];
  h->from = (struct line_reader){.fd = out[0]};
  return 0;
}

int pull_helper_stop(struct helper *h, bool kill_it)
{
  if (h->pid <= 0)
    return 0;
  if (kill_it)
    kill(h->pid, SIGKILL);
  close(h->to);
  int st = 0;
  while (waitpid(h->pid, &st, 0) < 0 && errno == EINTR)
    ;
  close(h->from.fd);
  line_reader_clear(&h->from);
  h->pid = 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

long long pull_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pull_helper_read(struct helper *h, const struct pull_request *r, json_t **msg, err_t **e)
{
  for (;;) {
    if (r->cancelled && r->cancelled(r->arg))
      return err_set(e, ERR_CANCELLED, 0, "pull of %s cancelled", r->image);
    if (r->deadline_ms && pull_mono_ms() >= r->deadline_ms)
      return err_set(e, ERR_DEADLINE, 0, "pull of %s did not finish before the deadline", r->image);
    char *line;
    int rc = line_read(&h->from, 200, &line, e);
    if (rc < 0) {
      if ((*e)->code == ERR_UNAVAILABLE) {
        err_free(e);
        return err_set(e, ERR_INTERNAL, 0, "pull helper for %s exited unexpectedly", r->image);
      }
      return -1;
    }
    if (rc == 0)
      continue;
    if (json_parse(line, msg, e) < 0)
      return err_wrap(e, "pull helper message");
    const char *type = json_str(json_get(*msg, "type"));
    if (type && strcmp(type, "error") == 0) {
      const char *m = json_str(json_get(*msg, "message"));
      err_set(e, pull_code_parse(json_str(json_get(*msg, "code"))), 0, "%s", m ? m : "pull failed");
      json_free(*msg);
      *msg = NULL;
      return -1;
    }
    return 0;
  }
}

/* ---- one pull ---------------------------------------------------------------------- */


static int send_job(struct pull_state *s, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  const struct pull_creds *c = &s->r->creds;
  buf_puts(&b, "{\"ref\":");
  buf_json_str(&b, s->r->image);
  buf_puts(&b, ",\"creds\":{");
  const char *k[] = {"username", "password", "auth", "identity_token", "registry_token"};
  const char *v[] = {c->username, c->password, c->auth, c->identity_token, c->registry_token};
  for (size_t i = 0; i < 5; i++) {
    buf_printf(&b, "%s\"%s\":", i ? "," : "", k[i]);
    buf_json_str(&b, v[i] ? v[i] : "");
  }
  buf_printf(&b, "},\"registries\":%s,\"parallel\":%d}", s->p->registries_json, s->p->parallel);
  return line_write(s->h->to, NULL, &b, e);
}

int pull_store_blobs(struct pull_state *s, err_t **e)
{
  const char *pairs[][2] = {{"index", "index_digest"}, {"manifest", "manifest_digest"},
                            {"config", "config_digest"}};
  for (size_t i = 0; i < 3; i++) {
    const char *body = json_str(json_get(s->image, pairs[i][0]));
    const char *digest = json_str(json_get(s->image, pairs[i][1]));
    if (!body && i == 0)
      continue;  /* no index: the reference named a single manifest */
    if (!body || !digest)
      return err_set(e, ERR_INTERNAL, 0, "pull helper sent no %s", pairs[i][0]);
    if (store_put_blob(s->p->store, digest, body, strlen(body), e) < 0)
      return err_wrap(e, "%s of %s", pairs[i][0], s->r->image);
    s->blobs[s->n_blobs++] = (char *)digest;
  }
  return 0;
}

int pull_claim_layers(struct pull_state *s, err_t **e)
{
  const json_t *ls = json_get(s->image, "layers");
  s->n_layers = json_len(ls);
  s->layers = xcalloc(s->n_layers + 1, sizeof(*s->layers));
  for (size_t i = 0; i < s->n_layers; i++) {
    struct layer_claim *l = &s->layers[i];
    l->digest = json_str(json_get(json_at(ls, i), "digest"));
    l->diff_id = json_str(json_get(json_at(ls, i), "diff_id"));
    l->parent = i ? s->layers[i - 1].chain : NULL;
    if (!l->digest || !l->diff_id || store_chain_id(l->parent, l->diff_id, l->chain, e) < 0)
      return e && *e ? -1 : err_set(e, ERR_INTERNAL, 0, "pull helper sent a bad layer list");
    enum store_layer_state st;
    long long dl = s->r->deadline_ms ? s->r->deadline_ms * 1000000LL : 0;
    if (store_layer_begin(s->p->store, l->chain, dl, &st, &l->tmpdir, e) < 0)
      return err_wrap(e, "layer %s", l->digest);
    if (st == STORE_LAYER_PRESENT)
      continue;
    cleanup_buf struct buf b = BUF_INIT;
    buf_printf(&b, "{\"unpack\":%zu,\"dir\":", i);
    buf_json_str(&b, l->tmpdir);
    buf_putc(&b, '}');
    if (line_write(s->h->to, NULL, &b, e) < 0)
      return err_wrap(e, "pull helper");
    s->pending++;
  }
  cleanup_buf struct buf end = BUF_INIT;
  buf_puts(&end, "{\"end\":true}");
  return line_write(s->h->to, NULL, &end, e);
}

int pull_commit_layer(struct pull_state *s, const json_t *msg, err_t **e)
{
  long long i, size;
  const char *blob = json_str(json_get(msg, "blob_digest"));
  const char *diff = json_str(json_get(msg, "diff_id"));
  if (json_int(json_get(msg, "index"), &i) < 0 || i < 0 || (size_t)i >= s->n_layers ||
      json_int(json_get(msg, "blob_size"), &size) < 0 || !blob || !diff)
    return err_set(e, ERR_INTERNAL, 0, "pull helper sent a bad layer report");
  struct layer_claim *l = &s->layers[i];
  if (!l->tmpdir)
    return err_set(e, ERR_INTERNAL, 0, "pull helper reported a layer it was not given");
  /* the helper checked these; crispd checks again what it is about to publish */
  if (strcmp(blob, l->digest) != 0 || strcmp(diff, l->diff_id) != 0)
    return err_set(e, ERR_INVALID, 0, "layer %s: digests do not match the manifest", l->digest);
  struct store_layer_info info = {l->parent, l->diff_id, l->digest, (uint64_t)size};
  if (store_layer_commit(s->p->store, l->chain, l->tmpdir, &info, e) < 0)
    return err_wrap(e, "layer %s", l->digest);
  free(l->tmpdir);
  l->tmpdir = NULL;
  l->committed = true;
  s->pending--;
  return 0;
}

static int add_record(struct pull_state *s, char **id, err_t **e)
{
  const char *cfg = json_str(json_get(s->image, "config_digest"));
  const char *top = json_str(json_get(s->image, "index_digest"));
  if (!top)
    top = json_str(json_get(s->image, "manifest_digest"));
  cleanup_free char *name = image_ref_name(&s->ref);
  /* as containerd does: a reference with a digest records the digest, not its tag */
  cleanup_free char *tag = s->ref.digest ? NULL : image_ref_string(&s->ref);
  cleanup_free char *repo_digest = xasprintf("%s@%s", name, top);
  const char **chains = xcalloc(s->n_layers + 1, sizeof(*chains));
  for (size_t i = 0; i < s->n_layers; i++)
    chains[i] = s->layers[i].chain;
  struct image_record r = {
      .id = (char *)cfg,
      .repo_tags = tag ? &tag : NULL,
      .n_tags = tag ? 1 : 0,
      .repo_digests = &repo_digest,
      .n_digests = 1,
      .manifest_digest = (char *)json_str(json_get(s->image, "manifest_digest")),
      .config_digest = (char *)cfg,
      .chain_ids = (char **)chains,
      .n_layers = s->n_layers,
  };
  int rc = store_image_add(s->p->store, &r, e);
  free(chains);
  if (rc < 0)
    return err_wrap(e, "record image %s", s->r->image);
  *id = xstrdup(cfg);
  return 0;
}

static int run_pull(struct pull_state *s, char **id, err_t **e)
{
  if (pull_helper_start(s->p, s->h, -1, e) < 0 || send_job(s, e) < 0 ||
      pull_helper_read(s->h, s->r, &s->image, e) < 0 || pull_store_blobs(s, e) < 0 ||
      pull_claim_layers(s, e) < 0)
    return -1;
  while (s->pending > 0) {
    cleanup_json json_t *msg = NULL;
    if (pull_helper_read(s->h, s->r, &msg, e) < 0 || pull_commit_layer(s, msg, e) < 0)
      return -1;
  }
  if (pull_helper_stop(s->h, false) < 0)
    return err_set(e, ERR_INTERNAL, 0, "pull helper for %s failed", s->r->image);
  return add_record(s, id, e);
}

/* A failed pull takes back what it published: the layers it committed and the blobs it
 * stored, unless an image uses them by now (a pull that records them later retries). */
static void pull_take_back(struct pull_state *s)
{
  char **chains = xcalloc(s->n_layers + 1, sizeof(*chains));
  size_t n = 0;
  for (size_t i = 0; i < s->n_layers; i++)
    if (s->layers[i].committed)
      chains[n++] = s->layers[i].chain;
  store_collect(s->p->store, chains, n, s->blobs, s->n_blobs);
  free(chains);
}

void pull_state_release(struct pull_state *s, bool failed)
{
  for (size_t i = 0; i < s->n_layers; i++)
    if (s->layers[i].tmpdir) {
      store_layer_abort(s->p->store, s->layers[i].chain, s->layers[i].tmpdir);
      free(s->layers[i].tmpdir);
    }
  if (failed)
    pull_take_back(s);
  free(s->layers);
  s->layers = NULL;
  s->n_layers = 0;
  json_free(s->image);
  s->image = NULL;
}

/* ---- dedup of concurrent pulls of one reference ----------------------------------- */

static struct inflight *inflight_join(struct puller *p, const char *key, bool *owner)
{
  for (struct inflight *f = p->inflight; f; f = f->next) {
    if (strcmp(f->key, key) == 0) {
      f->waiters++;
      *owner = false;
      return f;
    }
  }
  struct inflight *f = xcalloc(1, sizeof(*f));
  f->key = xstrdup(key);
  pthread_cond_init(&f->cv, NULL);
  f->next = p->inflight;
  p->inflight = f;
  *owner = true;
  return f;
}

/* Called with p->mu held; frees f once nobody needs it. */
static void inflight_leave(struct puller *p, struct inflight *f)
{
  if (f->waiters-- > 0)
    return;
  for (struct inflight **pp = &p->inflight; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  pthread_cond_destroy(&f->cv);
  free(f->key);
  free(f->id);
  free(f);
}

/* One pull, started over when a layer or blob it found present was deleted before its
 * record named it (a removal or another pull's failure took it back: see store.h). */
static int pull_fresh(struct puller *p, const struct pull_request *r, char **id, err_t **e)
{
  for (int attempt = 1;; attempt++) {
    struct helper h = {0};
    struct pull_state s = {.p = p, .r = r, .h = &h};
    int rc = image_ref_parse(r->image, &s.ref, e) < 0 ? -1 : run_pull(&s, id, e);
    pull_helper_stop(&h, true);
    pull_state_release(&s, rc < 0);
    image_ref_clear(&s.ref);
    if (rc == 0 || attempt == PULL_ATTEMPTS || (*e)->code != ERR_PRECONDITION)
      return rc;
    log_info("pulling again: content went away meanwhile", "image", r->image, "error",
             (*e)->msg, NULL);
    err_free(e);
  }
}

/* 1 (with *e set) when the request was cancelled or its deadline passed. */
static int wait_stopped(const struct pull_request *r, err_t **e)
{
  if (r->cancelled && r->cancelled(r->arg)) {
    err_set(e, ERR_CANCELLED, 0, "pull of %s cancelled", r->image);
    return 1;
  }
  if (r->deadline_ms && pull_mono_ms() >= r->deadline_ms) {
    err_set(e, ERR_DEADLINE, 0, "pull of %s did not finish before the deadline", r->image);
    return 1;
  }
  return 0;
}

static void inflight_wait(struct inflight *f, pthread_mutex_t *mu, int ms)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += (long)ms * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&f->cv, mu, &until);
}

int image_pull(struct puller *p, const struct pull_request *r, char **id, err_t **e)
{
  struct image_ref ref;
  if (image_ref_parse(r->image, &ref, e) < 0)
    return -1;
  cleanup_free char *key = image_ref_string(&ref);
  image_ref_clear(&ref);
  bool owner;
  pthread_mutex_lock(&p->mu);
  struct inflight *f = inflight_join(p, key, &owner);
  if (!owner) {
    /* the same image is being pulled: wait for that pull instead of downloading twice,
     * but give up when this caller's own deadline passes or it goes away */
    int stop = 0;
    while (!f->done && !(stop = wait_stopped(r, e)))
      inflight_wait(f, &p->mu, 200);
    char *got = f->done ? xstrdup(f->id) : NULL;
    inflight_leave(p, f);
    pthread_mutex_unlock(&p->mu);
    if (stop) {
      free(got);
      return -1;
    }
    if (got) {
      *id = got;
      return 0;
    }
    return image_pull(p, r, id, e);  /* that pull failed: try on our own */
  }
  pthread_mutex_unlock(&p->mu);
  long long t0 = pull_mono_ms();
  log_info("pulling image", "image", r->image, NULL);
  int rc = pull_fresh(p, r, id, e);
  pthread_mutex_lock(&p->mu);
  f->done = true;
  f->id = rc == 0 ? xstrdup(*id) : NULL;
  pthread_cond_broadcast(&f->cv);
  inflight_leave(p, f);
  pthread_mutex_unlock(&p->mu);
  if (rc == 0) {
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", pull_mono_ms() - t0);
    log_info("image pulled", "image", r->image, "id", *id, "ms", ms, NULL);
  }
  return rc;
}
