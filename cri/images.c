/* images.c - the read side of the ImageService: ListImages, ImageStatus, RemoveImage
 * and ImageFsInfo, answered from the image store. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "image/pull.h"
#include "image/ref.h"

static bool all_hex(const char *s)
{
  return *s && strspn(s, "0123456789abcdef") == strlen(s);
}

/* Finds the image a user named: an ID, a unique ID prefix (what crictl shows), or a
 * reference in any form people type, normalised as docker and containerd do.
 * ERR_NOT_FOUND when no image matches; ERR_INVALID when the name cannot be a reference. */
int cri_image_lookup(struct cri *d, const char *name, struct image_record **out, err_t **e)
{
  char id[IMAGE_ID_LEN + 1];
  if (!name || !*name)
    return err_set(e, ERR_INVALID, 0, "no image named: the image reference is empty");
  if (image_ref_is_id(name, id))
    return store_image_lookup(d->store, STORE_KEY_ID, id, out, e);
  const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
  if (strlen(hex) >= STORE_ID_PREFIX_MIN && all_hex(hex)) {
    if (store_image_lookup(d->store, STORE_KEY_PREFIX, name, out, e) == 0)
      return 0;
    if ((*e)->code != ERR_NOT_FOUND || hex != name)
      return -1;
    err_free(e);  /* a hex-looking name may still be a repository: try it as one */
  }
  struct image_ref r;
  if (image_ref_parse(name, &r, e) < 0)
    return -1;
  cleanup_free char *key = NULL;
  enum store_key kind = STORE_KEY_TAG;
  if (r.digest) {
    cleanup_free char *n = image_ref_name(&r);
    key = xasprintf("%s@%s", n, r.digest);
    kind = STORE_KEY_DIGEST;
  } else {
    key = image_ref_string(&r);
  }
  image_ref_clear(&r);
  return store_image_lookup(d->store, kind, key, out, e);
}

/* uid or username from the image config's User ("1000", "www-data", "1000:1000"), as
 * kubelet expects them for runAsNonRoot checks: both unset when the image names none. */
static void image_user(struct cri *d, const char *id, Runtime__V1__Image *img, struct arena *a)
{
  cleanup_free char *cfg = NULL;
  size_t len;
  err_t *e = NULL;
  if (store_image_config(d->store, id, &cfg, &len, &e) < 0) {
    err_free(&e);
    return;
  }
  cleanup_json json_t *j = NULL;
  if (json_parse(cfg, &j, &e) < 0) {
    err_free(&e);
    return;
  }
  const char *user = json_str(json_get(json_get(j, "config"), "User"));
  if (!user || !*user)
    return;
  size_t n = strcspn(user, ":");
  cleanup_free char *u = xstrndup(user, n);
  char *end = NULL;
  long long uid = strtoll(u, &end, 10);
  if (*u && !*end) {
    img->uid = arena_alloc(a, sizeof(*img->uid));
    runtime__v1__int64_value__init(img->uid);
    img->uid->value = uid;
  } else {
    img->username = arena_strdup(a, u);
  }
}

static char **arena_strv(struct arena *a, char *const *v, size_t n)
{
  char **out = arena_array(a, n ? n : 1, sizeof(*out));
  for (size_t i = 0; i < n; i++)
    out[i] = arena_strdup(a, v[i]);
  return out;
}

static Runtime__V1__Image *image_msg(struct cri *d, const struct image_record *r, struct arena *a)
{
  Runtime__V1__Image *img = arena_alloc(a, sizeof(*img));
  runtime__v1__image__init(img);
  img->id = arena_strdup(a, r->id);
  img->n_repo_tags = r->n_tags;
  img->repo_tags = arena_strv(a, r->repo_tags, r->n_tags);
  img->n_repo_digests = r->n_digests;
  img->repo_digests = arena_strv(a, r->repo_digests, r->n_digests);
  img->size = r->size;
  img->pinned = r->pinned;
  img->spec = arena_alloc(a, sizeof(*img->spec));
  runtime__v1__image_spec__init(img->spec);
  img->spec->image = arena_strdup(a, r->id);
  image_user(d, r->id, img, a);
  return img;
}

int cri_list_images_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                        ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__ListImagesRequest *in = (const Runtime__V1__ListImagesRequest *)req;
  Runtime__V1__ListImagesResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__list_images_response__init(r);
  *resp = &r->base;
  const char *want = in->filter && in->filter->image ? in->filter->image->image : "";
  if (*want) {
    CLEANUP(image_record) struct image_record *one = NULL;
    if (cri_image_lookup(d, want, &one, e) < 0) {
      if ((*e)->code != ERR_NOT_FOUND)
        return -1;
      err_free(e);  /* a filter that matches nothing is an empty list */
      return 0;
    }
    r->n_images = 1;
    r->images = arena_array(&c->arena, 1, sizeof(*r->images));
    r->images[0] = image_msg(d, one, &c->arena);
    return 0;
  }
  struct image_record **all = NULL;
  size_t n = 0;
  if (store_image_list(d->store, &all, &n, e) < 0)
    return -1;
  r->n_images = n;
  r->images = arena_array(&c->arena, n ? n : 1, sizeof(*r->images));
  for (size_t i = 0; i < n; i++)
    r->images[i] = image_msg(d, all[i], &c->arena);
  image_record_list_free(all, n);
  return 0;
}

static void verbose_image_info(struct cri *d, const struct image_record *rec,
                               Runtime__V1__ImageStatusResponse *r, struct arena *a)
{
  cleanup_free char *cfg = NULL;
  size_t len;
  err_t *e = NULL;
  cleanup_buf struct buf b = BUF_INIT;
  buf_puts(&b, "{\"id\":");
  buf_json_str(&b, rec->id);
  buf_puts(&b, ",\"manifestDigest\":");
  buf_json_str(&b, rec->manifest_digest);
  buf_puts(&b, ",\"chainIDs\":[");
  for (size_t i = 0; i < rec->n_layers; i++) {
    if (i)
      buf_putc(&b, ',');
    buf_json_str(&b, rec->chain_ids[i]);
  }
  buf_putc(&b, ']');
  if (store_image_config(d->store, rec->id, &cfg, &len, &e) == 0) {
    buf_puts(&b, ",\"imageSpec\":");  /* the config blob is JSON the store verified */
    buf_append(&b, cfg, len);
  } else {
    err_free(&e);
  }
  buf_putc(&b, '}');
  r->n_info = 1;
  r->info = arena_array(a, 1, sizeof(*r->info));
  r->info[0] = arena_alloc(a, sizeof(*r->info[0]));
  runtime__v1__image_status_response__info_entry__init(r->info[0]);
  r->info[0]->key = arena_strdup(a, "info");
  r->info[0]->value = arena_strdup(a, buf_str(&b));
}

int cri_image_status_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__ImageStatusRequest *in = (const Runtime__V1__ImageStatusRequest *)req;
  const char *name = in->image ? in->image->image : "";
  CLEANUP(image_record) struct image_record *rec = NULL;
  if (cri_image_lookup(d, name, &rec, e) < 0) {
    if ((*e)->code != ERR_NOT_FOUND)
      return -1;
    err_free(e);  /* CRI: an absent image is an empty answer, not an error */
  }
  Runtime__V1__ImageStatusResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__image_status_response__init(r);
  if (rec) {
    r->image = image_msg(d, rec, &c->arena);
    if (in->verbose)
      verbose_image_info(d, rec, r, &c->arena);
  }
  *resp = &r->base;
  return 0;
}

int cri_remove_image_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__RemoveImageRequest *in = (const Runtime__V1__RemoveImageRequest *)req;
  const char *name = in->image ? in->image->image : "";
  CLEANUP(image_record) struct image_record *rec = NULL;
  if (cri_image_lookup(d, name, &rec, e) < 0) {
    if ((*e)->code != ERR_NOT_FOUND)
      return -1;
    err_free(e);  /* removing what is not there succeeds */
  } else if (store_image_remove(d->store, rec->id, e) < 0) {
    return err_wrap(e, "remove image %s", name);
  } else {
    log_info("image removed", "image", name, "id", rec->id, NULL);
  }
  Runtime__V1__RemoveImageResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__remove_image_response__init(r);
  *resp = &r->base;
  return 0;
}

static Runtime__V1__FilesystemUsage *fs_usage(struct arena *a, const char *mountpoint,
                                              uint64_t bytes, uint64_t inodes)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  Runtime__V1__FilesystemUsage *u = arena_alloc(a, sizeof(*u));
  runtime__v1__filesystem_usage__init(u);
  u->timestamp = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  u->fs_id = arena_alloc(a, sizeof(*u->fs_id));
  runtime__v1__filesystem_identifier__init(u->fs_id);
  u->fs_id->mountpoint = arena_strdup(a, mountpoint);
  u->used_bytes = arena_alloc(a, sizeof(*u->used_bytes));
  runtime__v1__uint64_value__init(u->used_bytes);
  u->used_bytes->value = bytes;
  u->inodes_used = arena_alloc(a, sizeof(*u->inodes_used));
  runtime__v1__uint64_value__init(u->inodes_used);
  u->inodes_used->value = inodes;
  return u;
}

/* Image and container filesystems are the same one (root holds both), reported once
 * under each name as kubelet's eviction manager reads them. Its use is everything crisp
 * keeps there: the image store (cached until it changes) and, walked on every call as
 * they change all the time, the containers' writable layers and the pod and container
 * records, as containerd counts its active snapshots with the image ones. */
int cri_image_fs_info_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, err_t **e)
{
  uint64_t bytes, inodes;
  cleanup_free char *mnt = NULL;
  if (store_usage(d->store, &bytes, &inodes, &mnt, e) < 0)
    return err_wrap(e, "image filesystem usage");
  cleanup_free char *ctrs = path_join(d->cfg.root, "containers");
  cleanup_free char *pods = path_join(d->cfg.root, "pods");
  cri_dir_usage(ctrs, &bytes, &inodes);
  cri_dir_usage(pods, &bytes, &inodes);
  Runtime__V1__ImageFsInfoResponse *r = arena_alloc(&c->arena, sizeof(*r));
  runtime__v1__image_fs_info_response__init(r);
  r->n_image_filesystems = 1;
  r->image_filesystems = arena_array(&c->arena, 1, sizeof(*r->image_filesystems));
  r->image_filesystems[0] = fs_usage(&c->arena, mnt, bytes, inodes);
  r->n_container_filesystems = 1;
  r->container_filesystems = arena_array(&c->arena, 1, sizeof(*r->container_filesystems));
  r->container_filesystems[0] = fs_usage(&c->arena, mnt, bytes, inodes);
  *resp = &r->base;
  return 0;
}

/* a passed deadline is not a cancellation: image_pull reports it as DEADLINE_EXCEEDED */
static bool pull_cancelled(void *arg) { return rpc_ctx_cancelled(arg); }

static const char *opt(const char *s) { return s && *s ? s : NULL; }

int cri_pull_image_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                       ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__PullImageRequest *in = (const Runtime__V1__PullImageRequest *)req;
  const char *name = in->image ? in->image->image : "";
  if (!*name)
    return err_set(e, ERR_INVALID, 0, "no image named: the image reference is empty");
  struct pull_request r = {.image = name, .cancelled = pull_cancelled, .arg = c->ctx};
  if (in->auth) {
    const Runtime__V1__AuthConfig *a = in->auth;
    r.creds = (struct pull_creds){opt(a->username), opt(a->password), opt(a->auth),
                                  opt(a->identity_token), opt(a->registry_token)};
  }
  int64_t left = rpc_ctx_remaining_ms(c->ctx);
  if (left != INT64_MAX) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r.deadline_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + left;
  }
  char *id = NULL;
  if (image_pull(d->puller, &r, &id, e) < 0)
    return err_wrap(e, "pull %s", name);
  Runtime__V1__PullImageResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__pull_image_response__init(out);
  out->image_ref = arena_strdup(&c->arena, id);
  free(id);
  *resp = &out->base;
  return 0;
}
