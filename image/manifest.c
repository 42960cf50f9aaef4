#include "image/manifest.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/xalloc.h"
#include "image/manifest_internal.h"

/* ---- JSON field readers ------------------------------------------------- */

int mj_parse_body(const char *body, size_t len, const char *what, json_t **out, err_t **e)
{
  if (len > MANIFEST_MAX_SIZE)
    return err_set(e, ERR_RESOURCE, 0, "%s is %zu bytes, over the %zu MiB limit", what, len,
                   MANIFEST_MAX_SIZE >> 20);
  if (!body || len == 0)
    return err_set(e, ERR_INVALID, 0, "%s is empty", what);
  if (memchr(body, '\0', len))
    return err_set(e, ERR_INVALID, 0, "%s holds a NUL byte", what);
  cleanup_free char *text = xstrndup(body, len);
  cleanup_json json_t *root = NULL;
  if (json_parse(text, &root, e) < 0)
    return err_wrap(e, "%s", what);
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s is %s, not a JSON object", what,
                   json_type_name(json_type(root)));
  *out = steal(&root);
  return 0;
}

static int wrong_type(const char *where, const json_t *n, const char *want, err_t **e)
{
  return err_set(e, ERR_INVALID, 0, "%s: expected %s, got %s", where, want,
                 json_type_name(json_type(n)));
}

int mj_opt_str(const json_t *obj, const char *key, const char *where, char **out, err_t **e)
{
  const json_t *n = json_get(obj, key);
  *out = NULL;
  if (!n || json_type(n) == JSON_NULL)
    return 0;
  if (json_type(n) != JSON_STRING)
    return wrong_type(where, n, "a string", e);
  *out = xstrdup(json_str(n));
  return 0;
}

int mj_req_str(const json_t *obj, const char *key, const char *where, char **out, err_t **e)
{
  if (mj_opt_str(obj, key, where, out, e) < 0)
    return -1;
  if (!*out)
    return err_set(e, ERR_INVALID, 0, "%s is missing", where);
  return 0;
}

int mj_opt_obj(const json_t *obj, const char *key, const char *where, const json_t **out,
               err_t **e)
{
  const json_t *n = json_get(obj, key);
  *out = NULL;
  if (!n || json_type(n) == JSON_NULL)
    return 0;
  if (json_type(n) != JSON_OBJECT)
    return wrong_type(where, n, "an object", e);
  *out = n;
  return 0;
}

void mj_strv_free(struct image_strv *v)
{
  for (size_t i = 0; i < v->n; i++)
    free(v->items[i]);
  free(v->items);
  v->items = NULL;
  v->n = 0;
}

int mj_strv(const json_t *obj, const char *key, const char *where, struct image_strv *out,
            err_t **e)
{
  const json_t *n = json_get(obj, key);
  out->items = NULL;
  out->n = 0;
  if (!n || json_type(n) == JSON_NULL)
    return 0;
  if (json_type(n) != JSON_ARRAY)
    return wrong_type(where, n, "an array of strings", e);
  size_t len = json_len(n);
  out->items = xcalloc(len + 1, sizeof(char *));
  for (size_t i = 0; i < len; i++) {
    const char *s = json_str(json_at(n, i));
    if (!s) {
      mj_strv_free(out);
      return err_set(e, ERR_INVALID, 0, "%s[%zu]: expected a string", where, i);
    }
    out->items[out->n++] = xstrdup(s);
  }
  return 0;
}

int mj_keys(const json_t *obj, const char *key, const char *where, struct image_strv *out,
            err_t **e)
{
  const json_t *n = NULL;
  out->items = NULL;
  out->n = 0;
  if (mj_opt_obj(obj, key, where, &n, e) < 0)
    return -1;
  if (!n)
    return 0;
  size_t len = json_len(n);
  out->items = xcalloc(len + 1, sizeof(char *));
  for (size_t i = 0; i < len; i++)
    out->items[out->n++] = xstrdup(json_key_at(n, i));
  return 0;
}

bool manifest_digest_valid(const char *d)
{
  static const char prefix[] = "sha256:";
  if (!d || strncmp(d, prefix, sizeof(prefix) - 1) != 0)
    return false;
  d += sizeof(prefix) - 1;
  size_t i = 0;
  for (; d[i]; i++)
    if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
      return false;
  return i == 64;
}

int mj_digest(const json_t *obj, const char *where, char **out, err_t **e)
{
  cleanup_free char *d = NULL;
  if (mj_req_str(obj, "digest", where, &d, e) < 0)
    return -1;
  if (!manifest_digest_valid(d))
    return err_set(e, ERR_INVALID, 0, "%s: invalid digest \"%.80s\" (want sha256:<64 hex>)",
                   where, d);
  *out = steal(&d);
  return 0;
}

/* ---- media types -------------------------------------------------------- */

enum mt_class { MT_UNKNOWN, MT_SCHEMA1, MT_KNOWN };

static enum mt_class classify(const char *mt, enum manifest_kind *kind)
{
  static const struct {
    const char *mt;
    enum manifest_kind kind;
  } known[] = {
    {MT_OCI_INDEX, MANIFEST_OCI_INDEX},
    {MT_DOCKER_LIST, MANIFEST_DOCKER_LIST},
    {MT_OCI_MANIFEST, MANIFEST_OCI},
    {MT_DOCKER_MANIFEST, MANIFEST_DOCKER},
  };
  if (!mt)
    return MT_UNKNOWN;
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
    if (strcasecmp(mt, known[i].mt) == 0) {
      *kind = known[i].kind;
      return MT_KNOWN;
    }
  }
  if (strcasecmp(mt, MT_DOCKER_SCHEMA1) == 0 || strcasecmp(mt, MT_DOCKER_SCHEMA1_SIGNED) == 0)
    return MT_SCHEMA1;
  return MT_UNKNOWN;
}

const char *manifest_kind_media_type(enum manifest_kind k)
{
  switch (k) {
  case MANIFEST_OCI_INDEX: return MT_OCI_INDEX;
  case MANIFEST_DOCKER_LIST: return MT_DOCKER_LIST;
  case MANIFEST_OCI: return MT_OCI_MANIFEST;
  case MANIFEST_DOCKER: return MT_DOCKER_MANIFEST;
  }
  return "unknown";
}

bool manifest_is_index(const struct manifest *m)
{
  return m && (m->kind == MANIFEST_OCI_INDEX || m->kind == MANIFEST_DOCKER_LIST);
}

/* "application/x; charset=utf-8 " -> "application/x" */
static char *bare_media_type(const char *ct)
{
  if (!ct)
    return NULL;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  return n ? xstrndup(ct, n) : NULL;
}

static int schema1_refused(err_t **e)
{
  return err_set(e, ERR_INVALID, 0,
                 "schema1 manifests are not supported; push the image with a newer client");
}

int manifest_layer_compression(const char *mt, enum layer_compression *out, err_t **e)
{
  if (!mt)
    return err_set(e, ERR_INVALID, 0, "layer has no media type");
  if (strcmp(mt, MT_OCI_LAYER) == 0)
    *out = LAYER_TAR;
  else if (strcmp(mt, MT_OCI_LAYER_GZIP) == 0 || strcmp(mt, MT_DOCKER_LAYER_GZIP) == 0)
    *out = LAYER_GZIP;
  else if (strcmp(mt, MT_OCI_LAYER_ZSTD) == 0)
    *out = LAYER_ZSTD;
  else if (strstr(mt, ".foreign.") || strstr(mt, ".nondistributable."))
    return err_set(e, ERR_INVALID, 0,
                   "foreign (non-distributable) layer %s is not supported: such layers "
                   "(e.g. Windows base layers) are not served by the registry",
                   mt);
  else
    return err_set(e, ERR_INVALID, 0, "unsupported layer media type %s", mt);
  return 0;
}

/* ---- descriptors -------------------------------------------------------- */

static void desc_clear(struct manifest_desc *d)
{
  free(d->media_type);
  free(d->digest);
  memset(d, 0, sizeof(*d));
}

static int parse_size(const json_t *obj, const char *where, int64_t *out, err_t **e)
{
  long long v;
  const json_t *n = json_get(obj, "size");
  if (!n)
    return err_set(e, ERR_INVALID, 0, "%s.size is missing", where);
  if (json_int(n, &v) < 0)
    return wrong_type(where, n, "an integer size", e);
  if (v < 0)
    return err_set(e, ERR_INVALID, 0, "%s.size is negative (%lld)", where, v);
  *out = v;
  return 0;
}

/* urls_out: whether the descriptor lists external URLs to fetch it from. */
static int parse_desc(const json_t *n, const char *where, struct manifest_desc *d,
                      bool *urls_out, err_t **e)
{
  memset(d, 0, sizeof(*d));
  if (json_type(n) != JSON_OBJECT)
    return wrong_type(where, n, "an object", e);
  cleanup_free char *w_mt = xasprintf("%s.mediaType", where);
  cleanup_free char *w_d = xasprintf("%s.digest", where);
  if (mj_opt_str(n, "mediaType", w_mt, &d->media_type, e) < 0 ||
      mj_digest(n, w_d, &d->digest, e) < 0 || parse_size(n, where, &d->size, e) < 0) {
    desc_clear(d);
    return -1;
  }
  const json_t *urls = json_get(n, "urls");
  if (urls_out)
    *urls_out = json_type(urls) == JSON_ARRAY && json_len(urls) > 0;
  return 0;
}

/* ---- manifests and indexes ---------------------------------------------- */

void manifest_free(struct manifest *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->n_entries; i++) {
    desc_clear(&m->entries[i].desc);
    free(m->entries[i].platform.os);
    free(m->entries[i].platform.architecture);
    free(m->entries[i].platform.variant);
  }
  free(m->entries);
  desc_clear(&m->config);
  for (size_t i = 0; i < m->n_layers; i++)
    desc_clear(&m->layers[i].desc);
  free(m->layers);
  free(m);
}

static int parse_platform(const json_t *entry, const char *where, struct manifest_entry *en,
                          err_t **e)
{
  const json_t *p = NULL;
  if (mj_opt_obj(entry, "platform", where, &p, e) < 0)
    return -1;
  if (!p)
    return 0;
  en->has_platform = true;
  if (mj_opt_str(p, "os", where, &en->platform.os, e) < 0 ||
      mj_opt_str(p, "architecture", where, &en->platform.architecture, e) < 0 ||
      mj_opt_str(p, "variant", where, &en->platform.variant, e) < 0)
    return -1;
  return 0;
}

static int parse_index(const json_t *root, struct manifest *m, err_t **e)
{
  const json_t *list = json_get(root, "manifests");
  if (json_type(list) != JSON_ARRAY)
    return wrong_type("index.manifests", list, "an array", e);
  size_t n = json_len(list);
  m->entries = xcalloc(n ? n : 1, sizeof(*m->entries));
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *where = xasprintf("manifests[%zu]", i);
    struct manifest_entry *en = &m->entries[i];
    if (parse_desc(json_at(list, i), where, &en->desc, NULL, e) < 0)
      return -1;
    m->n_entries++;
    if (parse_platform(json_at(list, i), where, en, e) < 0)
      return -1;
  }
  return 0;
}

static int parse_layer(const json_t *n, size_t i, struct manifest_layer *l, err_t **e)
{
  cleanup_free char *where = xasprintf("layers[%zu]", i);
  bool urls = false;
  if (parse_desc(n, where, &l->desc, &urls, e) < 0)
    return -1;
  if (manifest_layer_compression(l->desc.media_type, &l->compression, e) < 0)
    return err_wrap(e, "layer %s", l->desc.digest);
  if (urls)
    return err_set(e, ERR_INVALID, 0,
                   "layer %s must be fetched from external URLs, which crisp does not do",
                   l->desc.digest);
  return 0;
}

static int parse_image_manifest(const json_t *root, struct manifest *m, err_t **e)
{
  const json_t *cfg = json_get(root, "config");
  if (!cfg)
    return err_set(e, ERR_INVALID, 0, "manifest has no config");
  if (parse_desc(cfg, "config", &m->config, NULL, e) < 0)
    return -1;
  const char *cmt = m->config.media_type;
  if (!cmt)
    return err_set(e, ERR_INVALID, 0, "config.mediaType is missing");
  if (strcmp(cmt, MT_OCI_CONFIG) != 0 && strcmp(cmt, MT_DOCKER_CONFIG) != 0)
    return err_set(e, ERR_INVALID, 0,
                   "not a container image: config media type is %s (an OCI artifact?)", cmt);
  const json_t *layers = json_get(root, "layers");
  if (json_type(layers) != JSON_ARRAY)
    return wrong_type("layers", layers, "an array", e);
  size_t n = json_len(layers);
  m->layers = xcalloc(n ? n : 1, sizeof(*m->layers));
  for (size_t i = 0; i < n; i++) {
    m->n_layers++;
    if (parse_layer(json_at(layers, i), i, &m->layers[i], e) < 0)
      return -1;
  }
  return 0;
}

static int check_schema_version(const json_t *root, err_t **e)
{
  long long v;
  const json_t *n = json_get(root, "schemaVersion");
  if (!n)
    return err_set(e, ERR_INVALID, 0, "schemaVersion is missing");
  if (json_int(n, &v) < 0)
    return wrong_type("schemaVersion", n, "an integer", e);
  if (v == 1)
    return schema1_refused(e);
  if (v != 2)
    return err_set(e, ERR_INVALID, 0, "unsupported schemaVersion %lld", v);
  return 0;
}

/* Kind from the Content-Type, else the body's mediaType, else the document's shape. */
static int detect_kind(const char *content_type, const json_t *root, enum manifest_kind *out,
                       err_t **e)
{
  cleanup_free char *ct = bare_media_type(content_type);
  cleanup_free char *body_mt = NULL;
  enum manifest_kind ct_kind = 0, body_kind = 0;
  enum mt_class ct_class = classify(ct, &ct_kind);
  if (ct_class == MT_SCHEMA1)
    return schema1_refused(e);
  if (mj_opt_str(root, "mediaType", "mediaType", &body_mt, e) < 0)
    return -1;
  enum mt_class body_class = classify(body_mt, &body_kind);
  if (body_class == MT_SCHEMA1)
    return schema1_refused(e);
  if (check_schema_version(root, e) < 0)
    return -1;
  if (ct_class == MT_KNOWN && body_mt && (body_class != MT_KNOWN || ct_kind != body_kind))
    return err_set(e, ERR_INVALID, 0, "Content-Type is %s but the document says it is %s", ct,
                   body_mt);
  if (ct_class == MT_KNOWN) {
    *out = ct_kind;
  } else if (body_class == MT_KNOWN) {
    *out = body_kind;
  } else if (body_mt) {
    return err_set(e, ERR_INVALID, 0, "unsupported manifest media type %s", body_mt);
  } else if (json_get(root, "manifests")) {
    *out = MANIFEST_OCI_INDEX;
  } else if (json_get(root, "config") && json_get(root, "layers")) {
    *out = MANIFEST_OCI;
  } else {
    return err_set(e, ERR_INVALID, 0, "unsupported manifest (Content-Type %s, no mediaType)",
                   ct ? ct : "none");
  }
  return 0;
}

int manifest_parse(const char *content_type, const char *body, size_t len,
                   struct manifest **out, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (mj_parse_body(body, len, "manifest", &root, e) < 0)
    return -1;
  CLEANUP(manifest) struct manifest *m = xcalloc(1, sizeof(*m));
  if (detect_kind(content_type, root, &m->kind, e) < 0)
    return err_wrap(e, "manifest");
  int r = manifest_is_index(m) ? parse_index(root, m, e) : parse_image_manifest(root, m, e);
  if (r < 0)
    return err_wrap(e, "%s", manifest_is_index(m) ? "index" : "manifest");
  *out = steal(&m);
  return 0;
}

/* ---- platform choice ---------------------------------------------------- */

struct platform_want platform_want_host(void)
{
#if defined(__x86_64__)
  const char *arch = "amd64";
#elif defined(__aarch64__)
  const char *arch = "arm64";
#elif defined(__arm__)
  const char *arch = "arm";
#elif defined(__i386__)
  const char *arch = "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const char *arch = "ppc64le";
#elif defined(__s390x__)
  const char *arch = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  const char *arch = "riscv64";
#else
  const char *arch = "unknown";
#endif
  return (struct platform_want){.os = "linux", .architecture = arch, .variant = NULL};
}

static const char *norm_arch(const char *a)
{
  if (!a)
    return "";
  if (strcasecmp(a, "x86_64") == 0 || strcasecmp(a, "x86-64") == 0)
    return "amd64";
  if (strcasecmp(a, "aarch64") == 0)
    return "arm64";
  return a;
}

/* The variants that mean "the baseline" of an architecture read as none. */
static const char *norm_variant(const char *arch, const char *v)
{
  if (!v || !*v)
    return "";
  if (strcmp(arch, "arm64") == 0 && strcasecmp(v, "v8") == 0)
    return "";
  if (strcmp(arch, "amd64") == 0 && strcasecmp(v, "v1") == 0)
    return "";
  return v;
}

/* 2: variant matches exactly, 1: entry has no variant, 0: no match. */
static int platform_score(const struct manifest_entry *en, const struct platform_want *w)
{
  const struct manifest_platform *p = &en->platform;
  if (!en->has_platform || !p->os || strcasecmp(p->os, w->os ? w->os : "linux") != 0)
    return 0;
  const char *arch = norm_arch(p->architecture);
  const char *want_arch = norm_arch(w->architecture);
  if (strcasecmp(arch, want_arch) != 0)
    return 0;
  const char *v = norm_variant(arch, p->variant);
  const char *want_v = norm_variant(want_arch, w->variant);
  if (strcasecmp(v, want_v) == 0)
    return 2;
  return *v ? 0 : 1;
}

static void list_platforms(const struct manifest *ix, struct buf *b)
{
  size_t shown = 0;
  for (size_t i = 0; i < ix->n_entries; i++) {
    const struct manifest_platform *p = &ix->entries[i].platform;
    if (!ix->entries[i].has_platform)
      continue;
    buf_printf(b, "%s%s/%s", shown++ ? ", " : "", p->os ? p->os : "?",
               p->architecture ? p->architecture : "?");
    if (p->variant && *p->variant)
      buf_printf(b, "/%s", p->variant);
  }
  if (!shown)
    buf_puts(b, "no platforms");
}

int manifest_select_platform(const struct manifest *ix, const struct platform_want *want,
                             const struct manifest_desc **out, err_t **e)
{
  if (!manifest_is_index(ix))
    return err_set(e, ERR_INVALID, 0, "not an index");
  int best = 0;
  const struct manifest_desc *pick = NULL;
  for (size_t i = 0; i < ix->n_entries; i++) {
    int s = platform_score(&ix->entries[i], want);
    if (s > best) {
      best = s;
      pick = &ix->entries[i].desc;
    }
  }
  if (pick) {
    *out = pick;
    return 0;
  }
  cleanup_buf struct buf offers = BUF_INIT;
  list_platforms(ix, &offers);
  const char *v = want->variant && *want->variant ? want->variant : NULL;
  return err_set(e, ERR_NOT_FOUND, 0, "no image for %s/%s%s%s in the index; it offers: %s",
                 want->os ? want->os : "linux", want->architecture, v ? "/" : "", v ? v : "",
                 buf_str(&offers));
}
