/* import_child.c - the crisp-pull helper's "import" mode: images from an archive.
 *
 * The archive (fd 3) is an OCI image layout (index.json + blobs/sha256/) or a
 * `docker save` archive (manifest.json + config and layer files), as a tar, possibly
 * compressed. It is spooled first (import_spool.h), then read like a registry: every
 * blob is checked against the digest and size that name it, manifests and configs go
 * through the same parsers as pulled ones, and crispd is sent one "image" message per
 * image (as for a pull, plus "names"), assigns the layers it lacks, and is sent a
 * "layer" message per layer unpacked; {"type":"done"} ends the import. A docker
 * archive has no manifest: one is written here (OCI, each layer's media type from
 * its first bytes), so the image is stored like any other. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/xalloc.h"
#include "image/import_spool.h"
#include "image/manifest.h"
#include "image/pull_int.h"
#include "image/ref.h"
#include "image/unpack.h"

#define ARCHIVE_FD 3
#define IMPORT_MAX_IMAGES 256
#define ANN_REF_NAME "org.opencontainers.image.ref.name"
#define ANN_CONTAINERD_NAME "io.containerd.image.name"

struct imp_image {
  char *index, *index_digest;        /* a per-image index the layout pointed to */
  char *manifest, *manifest_digest;
  char *config;
  struct manifest *m;
  struct image_config *cfg;
  const struct spool_file **layer_files;
  struct image_strv names;
};

struct ichild {
  int out_fd;
  struct line_reader *in;
  struct spool *sp;
  struct imp_image *imgs;
  size_t n;
};

static void imp_image_clear(struct imp_image *im)
{
  free(im->index), free(im->index_digest), free(im->manifest), free(im->manifest_digest);
  free(im->config);
  manifest_free(im->m);
  image_config_free(im->cfg);
  free(im->layer_files);
  for (size_t i = 0; i < im->names.n; i++)
    free(im->names.items[i]);
  free(im->names.items);
}

static struct imp_image *new_image(struct ichild *c, err_t **e)
{
  if (c->n == IMPORT_MAX_IMAGES) {
    err_set(e, ERR_RESOURCE, 0, "archive holds more than %d images", IMPORT_MAX_IMAGES);
    return NULL;
  }
  c->imgs = xreallocarray(c->imgs, c->n + 1, sizeof(*c->imgs));
  struct imp_image *im = &c->imgs[c->n++];
  memset(im, 0, sizeof(*im));
  return im;
}

/* Normalises a name the archive gives an image ("busybox:1" -> docker.io/library/...). */
static int add_name(struct imp_image *im, const char *name, err_t **e)
{
  struct image_ref r;
  if (image_ref_parse(name, &r, e) < 0)
    return err_wrap(e, "image name in the archive");
  if (r.digest) {
    image_ref_clear(&r);
    return err_set(e, ERR_INVALID, 0, "image name \"%s\" in the archive: a digest cannot name an image", name);
  }
  im->names.items = xreallocarray(im->names.items, im->names.n + 2, sizeof(char *));
  im->names.items[im->names.n++] = image_ref_string(&r);
  im->names.items[im->names.n] = NULL;
  image_ref_clear(&r);
  return 0;
}

/* ---- blobs ---------------------------------------------------------------------- */

static int blob_file(struct ichild *c, const char *digest, int64_t size,
                     const struct spool_file **out, err_t **e)
{
  if (!manifest_digest_valid(digest))
    return err_set(e, ERR_INVALID, 0, "blob digest \"%s\" is not sha256:<64 hex>", digest);
  cleanup_free char *path = xasprintf("blobs/sha256/%s", digest + 7);
  const struct spool_file *f;
  if (spool_find(c->sp, path, &f, e) < 0)
    return -1;
  if (strcmp(f->digest, digest) != 0)
    return err_set(e, ERR_INVALID, 0, "blob %s: content has digest %s", digest, f->digest);
  if (size >= 0 && f->size != (uint64_t)size)
    return err_set(e, ERR_INVALID, 0, "blob %s: %llu bytes, its descriptor says %lld", digest,
                   (unsigned long long)f->size, (long long)size);
  *out = f;
  return 0;
}

static int blob_read(struct ichild *c, const char *digest, int64_t size, char **data, err_t **e)
{
  const struct spool_file *f;
  size_t len;
  if (blob_file(c, digest, size, &f, e) < 0 || spool_slurp(f, MANIFEST_MAX_SIZE, data, &len, e) < 0)
    return -1;
  return 0;
}

/* ---- one image from its manifest ------------------------------------------------- */

static int check_config(struct imp_image *im, const char *what, err_t **e)
{
  if (image_config_parse(im->config, strlen(im->config), &im->cfg, e) < 0 ||
      image_config_check_layers(im->cfg, im->m, e) < 0)
    return err_wrap(e, "config of %s", what);
  return 0;
}

/* An image manifest of an OCI layout: its config and layers must all be in blobs/. */
static int oci_image(struct ichild *c, struct imp_image *im, const char *media_type, err_t **e)
{
  if (manifest_parse(media_type, im->manifest, strlen(im->manifest), &im->m, e) < 0)
    return err_wrap(e, "manifest %s", im->manifest_digest);
  if (manifest_is_index(im->m))
    return err_set(e, ERR_INVALID, 0, "manifest %s: an index points to another index",
                   im->manifest_digest);
  if (blob_read(c, im->m->config.digest, im->m->config.size, &im->config, e) < 0 ||
      check_config(im, im->manifest_digest, e) < 0)
    return -1;
  im->layer_files = xcalloc(im->m->n_layers + 1, sizeof(*im->layer_files));
  for (size_t i = 0; i < im->m->n_layers; i++)
    if (blob_file(c, im->m->layers[i].desc.digest, im->m->layers[i].desc.size,
                  &im->layer_files[i], e) < 0)
      return err_wrap(e, "layer %zu of %s", i + 1, im->manifest_digest);
  return 0;
}

static bool is_index_type(const char *mt)
{
  return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

static bool is_manifest_type(const char *mt)
{
  return mt && (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0);
}

/* The names an index.json entry gives its image: containerd's full name, else the OCI
 * ref.name when it is a whole reference (an OCI layout often holds a bare tag there,
 * "latest", which names no repository: such an image is imported without a name). */
static int oci_names(struct imp_image *im, const json_t *ann, err_t **e)
{
  const char *full = json_str(json_get(ann, ANN_CONTAINERD_NAME));
  const char *ref = json_str(json_get(ann, ANN_REF_NAME));
  if (full && *full)
    return add_name(im, full, e);
  if (ref && strpbrk(ref, ":/"))
    return add_name(im, ref, e);
  return 0;
}

static int oci_entry(struct ichild *c, const json_t *d, err_t **e)
{
  const char *mt = json_str(json_get(d, "mediaType"));
  const char *digest = json_str(json_get(d, "digest"));
  long long size = -1;
  if (!digest || json_int(json_get(d, "size"), &size) < 0 || size < 0)
    return err_set(e, ERR_INVALID, 0, "index.json: an entry without a digest or size");
  if (!is_index_type(mt) && !is_manifest_type(mt))
    return err_set(e, ERR_INVALID, 0, "index.json: entry %s has unsupported media type \"%s\"",
                   digest, mt ? mt : "");
  struct imp_image *im = new_image(c, e);
  if (!im || oci_names(im, json_get(d, "annotations"), e) < 0)
    return -1;
  cleanup_free char *body = NULL;
  if (blob_read(c, digest, size, &body, e) < 0)
    return -1;
  if (!is_index_type(mt)) {
    im->manifest = steal(&body);
    im->manifest_digest = xstrdup(digest);
    return oci_image(c, im, mt, e);
  }
  CLEANUP(manifest) struct manifest *ix = NULL;
  if (manifest_parse(mt, body, strlen(body), &ix, e) < 0)
    return err_wrap(e, "index %s", digest);
  struct platform_want want = platform_want_host();
  const struct manifest_desc *pick;
  if (manifest_select_platform(ix, &want, &pick, e) < 0)
    return err_wrap(e, "index %s", digest);
  if (pick->media_type && !is_manifest_type(pick->media_type))
    return err_set(e, ERR_INVALID, 0, "index %s: manifest %s has unsupported media type \"%s\"",
                   digest, pick->digest, pick->media_type);
  im->index = steal(&body);
  im->index_digest = xstrdup(digest);
  im->manifest_digest = xstrdup(pick->digest);
  if (blob_read(c, pick->digest, pick->size, &im->manifest, e) < 0)
    return -1;
  return oci_image(c, im, pick->media_type, e);
}

static int oci_layout(struct ichild *c, const struct spool_file *idx, err_t **e)
{
  cleanup_free char *raw = NULL;
  size_t len;
  cleanup_json json_t *j = NULL;
  if (spool_slurp(idx, MANIFEST_MAX_SIZE, &raw, &len, e) < 0 || json_parse(raw, &j, e) < 0)
    return err_wrap(e, "index.json");
  const json_t *ms = json_get(j, "manifests");
  if (json_type(ms) != JSON_ARRAY || json_len(ms) == 0)
    return err_set(e, ERR_INVALID, 0, "index.json lists no images");
  for (size_t i = 0; i < json_len(ms); i++)
    if (oci_entry(c, json_at(ms, i), e) < 0)
      return -1;
  return 0;
}

/* ---- docker save ----------------------------------------------------------------- */

static const char *layer_media_type(const struct spool_file *f, err_t **e)
{
  unsigned char head[4] = {0};
  cleanup_close int fd = open(f->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err_sys(e, errno, "open %s", f->path);
    return NULL;
  }
  ssize_t n = read(fd, head, sizeof(head));
  if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b)
    return MT_OCI_LAYER_GZIP;
  if (n == 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
    return MT_OCI_LAYER_ZSTD;
  return MT_OCI_LAYER;
}

static void desc_json(struct buf *b, const char *mt, const char *digest, uint64_t size)
{
  buf_puts(b, "{\"mediaType\":");
  buf_json_str(b, mt);
  buf_puts(b, ",\"digest\":");
  buf_json_str(b, digest);
  buf_printf(b, ",\"size\":%llu}", (unsigned long long)size);
}

static int docker_entry(struct ichild *c, const json_t *d, err_t **e)
{
  const char *cfg_path = json_str(json_get(d, "Config"));
  const json_t *layers = json_get(d, "Layers"), *tags = json_get(d, "RepoTags");
  if (!cfg_path || json_type(layers) != JSON_ARRAY)
    return err_set(e, ERR_INVALID, 0, "manifest.json: an entry without Config or Layers");
  struct imp_image *im = new_image(c, e);
  if (!im)
    return -1;
  for (size_t i = 0; i < json_len(tags); i++)
    if (!json_str(json_at(tags, i)) || add_name(im, json_str(json_at(tags, i)), e) < 0)
      return e && *e ? -1 : err_set(e, ERR_INVALID, 0, "manifest.json: RepoTags holds a non-string");
  const struct spool_file *cf;
  size_t len;
  if (spool_find(c->sp, cfg_path, &cf, e) < 0 || spool_slurp(cf, MANIFEST_MAX_SIZE, &im->config, &len, e) < 0)
    return err_wrap(e, "manifest.json");
  cleanup_buf struct buf m = BUF_INIT;
  buf_printf(&m, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":", MT_OCI_MANIFEST);
  desc_json(&m, MT_OCI_CONFIG, cf->digest, cf->size);
  buf_puts(&m, ",\"layers\":[");
  im->layer_files = xcalloc(json_len(layers) + 1, sizeof(*im->layer_files));
  for (size_t i = 0; i < json_len(layers); i++) {
    const char *p = json_str(json_at(layers, i));
    const struct spool_file *lf;
    if (!p || spool_find(c->sp, p, &lf, e) < 0)
      return e && *e ? err_wrap(e, "manifest.json") : err_set(e, ERR_INVALID, 0, "manifest.json: a layer path is not a string");
    const char *mt = layer_media_type(lf, e);
    if (!mt)
      return -1;
    im->layer_files[i] = lf;
    buf_puts(&m, i ? "," : "");
    desc_json(&m, mt, lf->digest, lf->size);
  }
  buf_puts(&m, "]}");
  char digest[72];
  spool_sha256(m.data, m.len, digest);
  im->manifest_digest = xstrdup(digest);
  im->manifest = buf_steal(&m);
  if (manifest_parse(MT_OCI_MANIFEST, im->manifest, strlen(im->manifest), &im->m, e) < 0)
    return err_wrap(e, "manifest.json entry %s", cfg_path);
  return check_config(im, cfg_path, e);
}

static int docker_archive(struct ichild *c, const struct spool_file *mf, err_t **e)
{
  cleanup_free char *raw = NULL;
  size_t len;
  cleanup_json json_t *j = NULL;
  if (spool_slurp(mf, MANIFEST_MAX_SIZE, &raw, &len, e) < 0 || json_parse(raw, &j, e) < 0)
    return err_wrap(e, "manifest.json");
  if (json_type(j) != JSON_ARRAY || json_len(j) == 0)
    return err_set(e, ERR_INVALID, 0, "manifest.json lists no images");
  for (size_t i = 0; i < json_len(j); i++)
    if (docker_entry(c, json_at(j, i), e) < 0)
      return -1;
  return 0;
}

/* OCI layout first: docker 25 and later write both, and index.json is the richer. */
static int read_images(struct ichild *c, err_t **e)
{
  const struct spool_file *f;
  if (spool_find(c->sp, "index.json", &f, e) == 0)
    return oci_layout(c, f, e);
  if ((*e)->code != ERR_NOT_FOUND)
    return -1;
  err_free(e);
  if (spool_find(c->sp, "manifest.json", &f, e) == 0)
    return docker_archive(c, f, e);
  if ((*e)->code != ERR_NOT_FOUND)
    return -1;
  err_free(e);
  return err_set(e, ERR_INVALID, 0,
                 "not an image archive: no index.json (OCI layout) or manifest.json (docker save)");
}

/* ---- talking to crispd ------------------------------------------------------------ */

static void json_strv(struct buf *b, const struct image_strv *v)
{
  buf_putc(b, '[');
  for (size_t i = 0; i < v->n; i++) {
    buf_puts(b, i ? "," : "");
    buf_json_str(b, v->items[i]);
  }
  buf_putc(b, ']');
}

static int send_image(struct ichild *c, const struct imp_image *im, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_puts(&b, "{\"type\":\"image\",\"manifest\":");
  buf_json_str(&b, im->manifest);
  buf_puts(&b, ",\"manifest_digest\":");
  buf_json_str(&b, im->manifest_digest);
  if (im->index) {
    buf_puts(&b, ",\"index\":");
    buf_json_str(&b, im->index);
    buf_puts(&b, ",\"index_digest\":");
    buf_json_str(&b, im->index_digest);
  }
  buf_puts(&b, ",\"config\":");
  buf_json_str(&b, im->config);
  buf_puts(&b, ",\"config_digest\":");
  buf_json_str(&b, im->m->config.digest);
  buf_puts(&b, ",\"names\":");
  json_strv(&b, &im->names);
  buf_puts(&b, ",\"layers\":[");
  for (size_t i = 0; i < im->m->n_layers; i++) {
    buf_puts(&b, i ? "," : "");
    buf_puts(&b, "{\"digest\":");
    buf_json_str(&b, im->m->layers[i].desc.digest);
    buf_printf(&b, ",\"size\":%lld,\"diff_id\":", (long long)im->m->layers[i].desc.size);
    buf_json_str(&b, im->cfg->diff_ids.items[i]);
    buf_putc(&b, '}');
  }
  buf_puts(&b, "]}");
  return line_write(c->out_fd, NULL, &b, e);
}

static int unpack_one(struct ichild *c, const struct imp_image *im, size_t i, const char *dir,
                      err_t **e)
{
  cleanup_close int fd = open(im->layer_files[i]->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "open layer %s", im->layer_files[i]->path);
  struct unpack_result res;
  const char *digest = im->m->layers[i].desc.digest;
  if (unpack_layer(fd, dir, NULL, &res, e) < 0)
    return err_wrap(e, "layer %s", digest);
  if (strcmp(res.blob_digest, digest) != 0)
    return err_set(e, ERR_INVALID, 0, "layer %s: content has digest %s", digest, res.blob_digest);
  if (strcmp(res.diff_id, im->cfg->diff_ids.items[i]) != 0)
    return err_set(e, ERR_INVALID, 0, "layer %s: uncompressed digest %s differs from the config's diff_id %s",
                   digest, res.diff_id, im->cfg->diff_ids.items[i]);
  cleanup_buf struct buf b = BUF_INIT;
  buf_printf(&b, "{\"type\":\"layer\",\"index\":%zu,\"blob_digest\":\"%s\",\"diff_id\":\"%s\","
                 "\"blob_size\":%llu}",
             i, res.blob_digest, res.diff_id, (unsigned long long)res.blob_size);
  return line_write(c->out_fd, NULL, &b, e);
}

/* crispd answers an image with the layers it lacks, then {"end":true}. */
static int import_one(struct ichild *c, const struct imp_image *im, err_t **e)
{
  if (send_image(c, im, e) < 0)
    return -1;
  for (;;) {
    char *line;
    cleanup_json json_t *msg = NULL;
    if (line_read(c->in, -1, &line, e) < 0 || json_parse(line, &msg, e) < 0)
      return -1;
    bool end = false;
    if (json_bool(json_get(msg, "end"), &end) == 0 && end)
      return 0;
    long long idx;
    const char *dir = json_str(json_get(msg, "dir"));
    if (json_int(json_get(msg, "unpack"), &idx) < 0 || idx < 0 ||
        (size_t)idx >= im->m->n_layers || !dir)
      return err_set(e, ERR_INVALID, 0, "bad layer assignment from crispd");
    if (unpack_one(c, im, (size_t)idx, dir, e) < 0)
      return -1;
  }
}

static void send_error(int fd, const err_t *err)
{
  line_write_error(fd, NULL, err);
}

int import_child_main(const json_t *job, struct line_reader *in, int out_fd, err_t **e)
{
  const char *dir = json_str(json_get(job, "spool"));
  struct ichild c = {.out_fd = out_fd, .in = in};
  int rc = -1;
  if (!dir) {
    err_set(e, ERR_INVALID, 0, "import job without a spool directory");
  } else if (spool_read(ARCHIVE_FD, dir, &c.sp, e) == 0 && read_images(&c, e) == 0) {
    rc = 0;
    for (size_t i = 0; i < c.n && rc == 0; i++)
      rc = import_one(&c, &c.imgs[i], e);
  }
  close(ARCHIVE_FD);
  if (rc < 0) {
    send_error(out_fd, *e);
  } else {
    struct buf done = BUF_INIT;
    buf_puts(&done, "{\"type\":\"done\"}");
    rc = line_write(out_fd, NULL, &done, e);
    buf_free(&done);
  }
  for (size_t i = 0; i < c.n; i++)
    imp_image_clear(&c.imgs[i]);
  free(c.imgs);
  spool_free(c.sp);
  return rc;
}
