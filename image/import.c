/* import.c - crispd's side of an image import: the helper parses the archive, crispd
 * stores what it reports exactly as for a pull. See pull.h. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "image/pull.h"
#include "image/pull_int.h"
#include "image/ref.h"

#define IMPORT_MAX_IMAGES 256
#define SPOOL_PREFIX "import.tmp-"

struct import {
  struct puller *p;
  const struct import_request *r;
  struct pull_request pr;   /* cancellation for the helper reads */
  struct helper h;
  struct pull_state *imgs;
  size_t n;
  char *spool;
};

void import_results_free(struct import_result *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].id);
    for (size_t k = 0; k < v[i].n_names; k++)
      free(v[i].names[k]);
    free(v[i].names);
  }
  free(v);
}

void image_import_cleanup(const char *spool_parent)
{
  cleanup_closedir DIR *d = opendir(spool_parent);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strncmp(de->d_name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) != 0)
      continue;
    cleanup_free char *p = path_join(spool_parent, de->d_name);
    err_t *e = NULL;
    if (rm_rf(p, &e) < 0) {
      log_warn("cannot remove an old import spool", "path", p, "error", e->msg, NULL);
      err_free(&e);
    }
  }
}

static int send_job(struct import *im, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_puts(&b, "{\"import\":true,\"spool\":");
  buf_json_str(&b, im->spool);
  buf_putc(&b, '}');
  return line_write(im->h.to, NULL, &b, e);
}

/* One "image" message: store its blobs, claim its layers, commit what the helper
 * unpacks. The message is kept: its names and digests make the record later. */
static int take_image(struct import *im, json_t *msg, err_t **e)
{
  if (im->n == IMPORT_MAX_IMAGES) {
    json_free(msg);
    return err_set(e, ERR_RESOURCE, 0, "archive holds more than %d images", IMPORT_MAX_IMAGES);
  }
  struct pull_state *s = &im->imgs[im->n++];
  *s = (struct pull_state){.p = im->p, .r = &im->pr, .h = &im->h, .image = msg};
  if (pull_store_blobs(s, e) < 0 || pull_claim_layers(s, e) < 0)
    return -1;
  while (s->pending > 0) {
    cleanup_json json_t *m = NULL;
    if (pull_helper_read(&im->h, &im->pr, &m, e) < 0 || pull_commit_layer(s, m, e) < 0)
      return -1;
  }
  return 0;
}

static int run_helper(struct import *im, err_t **e)
{
  if (pull_helper_start(im->p, &im->h, im->r->archive_fd, e) < 0 || send_job(im, e) < 0)
    return -1;
  for (;;) {
    json_t *msg = NULL;
    if (pull_helper_read(&im->h, &im->pr, &msg, e) < 0)
      return -1;
    const char *type = json_str(json_get(msg, "type"));
    if (type && strcmp(type, "done") == 0) {
      json_free(msg);
      break;
    }
    if (!type || strcmp(type, "image") != 0) {
      json_free(msg);
      return err_set(e, ERR_INTERNAL, 0, "import helper sent an unexpected message");
    }
    if (take_image(im, msg, e) < 0)
      return -1;
  }
  if (pull_helper_stop(&im->h, false) < 0)
    return err_set(e, ERR_INTERNAL, 0, "import helper failed");
  return 0;
}

/* The canonical form of a name, refusing digests (a tag names an image here). */
static int canonical_name(const char *name, char **out, char **repo, err_t **e)
{
  struct image_ref ref;
  if (image_ref_parse(name, &ref, e) < 0)
    return -1;
  int rc = 0;
  if (ref.digest) {
    rc = err_set(e, ERR_INVALID, 0, "image name \"%s\": a digest cannot name an image", name);
  } else {
    *out = image_ref_string(&ref);
    *repo = image_ref_name(&ref);
  }
  image_ref_clear(&ref);
  return rc;
}

static int names_of(struct import *im, const struct pull_state *s, struct import_result *res,
                    char ***repos, err_t **e)
{
  const json_t *names = json_get(s->image, "names");
  size_t n = im->r->name ? 1 : json_len(names);
  res->names = xcalloc(n + 1, sizeof(char *));
  *repos = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    const char *nm = im->r->name ? im->r->name : json_str(json_at(names, i));
    if (!nm)
      return err_set(e, ERR_INTERNAL, 0, "import helper sent a bad name");
    if (canonical_name(nm, &res->names[i], &(*repos)[i], e) < 0)
      return -1;
    res->n_names++;
  }
  return 0;
}

/* The image's record: its tags, a repo digest per tag, its layers. */
static int add_record(struct import *im, const struct pull_state *s, struct import_result *res,
                      char **repos, err_t **e)
{
  const char *cfg = json_str(json_get(s->image, "config_digest"));
  const char *top = json_str(json_get(s->image, "index_digest"));
  if (!top)
    top = json_str(json_get(s->image, "manifest_digest"));
  char **digests = xcalloc(res->n_names + 1, sizeof(char *));
  for (size_t i = 0; i < res->n_names; i++)
    digests[i] = xasprintf("%s@%s", repos[i], top);
  const char **chains = xcalloc(s->n_layers + 1, sizeof(*chains));
  for (size_t i = 0; i < s->n_layers; i++)
    chains[i] = s->layers[i].chain;
  struct image_record rec = {
      .id = (char *)cfg,
      .repo_tags = res->names,
      .n_tags = res->n_names,
      .repo_digests = digests,
      .n_digests = res->n_names,
      .manifest_digest = (char *)json_str(json_get(s->image, "manifest_digest")),
      .config_digest = (char *)cfg,
      .chain_ids = (char **)chains,
      .n_layers = s->n_layers,
  };
  int rc = store_image_add(im->p->store, &rec, e);
  if (rc < 0)
    err_wrap(e, "record imported image %s", cfg);
  else
    res->id = xstrdup(cfg);
  for (size_t i = 0; i < res->n_names; i++)
    free(digests[i]);
  free(digests);
  free(chains);
  return rc;
}

static void repos_free(char ***repos, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; repos[i] && repos[i][k]; k++)
      free(repos[i][k]);
    free(repos[i]);
  }
  free(repos);
}

/* Every name of every image is checked before the first record is written, so a bad
 * name leaves no image of the archive behind. */
static int add_records(struct import *im, struct import_result **out, size_t *n, err_t **e)
{
  if (im->n == 0)
    return err_set(e, ERR_INVALID, 0, "the archive holds no image");
  if (im->r->name && im->n != 1)
    return err_set(e, ERR_INVALID, 0, "a name can be given to an archive of one image; this one holds %zu",
                   im->n);
  struct import_result *res = xcalloc(im->n, sizeof(*res));
  char ***repos = xcalloc(im->n, sizeof(*repos));
  int rc = 0;
  for (size_t i = 0; i < im->n && rc == 0; i++)
    rc = names_of(im, &im->imgs[i], &res[i], &repos[i], e);
  for (size_t i = 0; i < im->n && rc == 0; i++)
    rc = add_record(im, &im->imgs[i], &res[i], repos[i], e);
  repos_free(repos, im->n);
  if (rc < 0) {
    import_results_free(res, im->n);
    return -1;
  }
  *out = res;
  *n = im->n;
  return 0;
}

int image_import(struct puller *p, const struct import_request *r, struct import_result **out,
                 size_t *n, err_t **e)
{
  struct import im = {
      .p = p,
      .r = r,
      .pr = {.image = "the archive", .cancelled = r->cancelled, .arg = r->arg},
      .imgs = xcalloc(IMPORT_MAX_IMAGES, sizeof(struct pull_state)),
      .spool = xasprintf("%s/" SPOOL_PREFIX "XXXXXX", r->spool_parent),
  };
  int rc = -1;
  if (!mkdtemp(im.spool)) {
    rc = err_sys(e, errno, "import spool under %s", r->spool_parent);
    free(im.spool);
    im.spool = NULL;
  } else if (run_helper(&im, e) == 0) {
    rc = add_records(&im, out, n, e);
  }
  pull_helper_stop(&im.h, true);
  for (size_t i = 0; i < im.n; i++)
    pull_state_release(&im.imgs[i], rc < 0);
  free(im.imgs);
  err_t *re = NULL;
  if (im.spool && rm_rf(im.spool, &re) < 0) {
    log_warn("cannot remove the import spool", "path", im.spool, "error", re->msg, NULL);
    err_free(&re);
  }
  free(im.spool);
  return rc;
}
