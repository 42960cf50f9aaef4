/* store_disk.c - the on-disk formats of the image store: image records, layer metadata
 * and holder files. Every decoder is strict: a file that is not exactly what crisp
 * writes is reported (and then quarantined by the loader), never half-used. */
#include "image/store_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

#define STORE_FORMAT_VERSION 1
#define STORE_NAME_MAX 1024

/* ---- validation ---------------------------------------------------------------- */

static bool printable_name(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > STORE_NAME_MAX)
    return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= ' ' || *p == 0x7f)
      return false;
  return true;
}

bool store_tag_valid(const char *tag)
{
  if (!tag || !printable_name(tag) || strchr(tag, '@'))
    return false;
  const char *slash = strrchr(tag, '/');
  const char *colon = strrchr(tag, ':');
  return colon && colon > tag && (!slash || colon > slash) && colon[1];
}

bool store_repo_digest_valid(const char *rd)
{
  if (!rd || !printable_name(rd))
    return false;
  const char *at = strchr(rd, '@');
  return at && at > rd && store_digest_valid(at + 1);
}

bool store_holder_name_valid(const char *name)
{
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 128 || name[0] == '.' || strstr(name, ".tmp-"))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

static int check_list(char *const *v, size_t n, bool (*valid)(const char *), const char *what,
                      err_t **e)
{
  for (size_t i = 0; i < n; i++)
    if (!valid(v[i]))
      return err_set(e, ERR_INVALID, 0, "invalid %s \"%s\"", what, v[i] ? v[i] : "");
  return 0;
}

int store_record_check(const struct image_record *r, err_t **e)
{
  if (!store_digest_valid(r->id))
    return err_set(e, ERR_INVALID, 0, "invalid image ID \"%s\"", r->id ? r->id : "");
  if (r->config_digest && strcmp(r->config_digest, r->id) != 0)
    return err_set(e, ERR_INVALID, 0, "config digest %s is not the image ID %s",
                   r->config_digest, r->id);
  if (!store_digest_valid(r->manifest_digest))
    return err_set(e, ERR_INVALID, 0, "invalid manifest digest \"%s\"",
                   r->manifest_digest ? r->manifest_digest : "");
  if (check_list(r->repo_tags, r->n_tags, store_tag_valid, "repo tag", e) < 0 ||
      check_list(r->repo_digests, r->n_digests, store_repo_digest_valid, "repo digest", e) < 0 ||
      check_list(r->chain_ids, r->n_layers, store_digest_valid, "layer chain ID", e) < 0)
    return -1;
  if (r->pulled_at_ns < 0)
    return err_set(e, ERR_INVALID, 0, "negative pull time");
  return 0;
}

/* ---- encoding ------------------------------------------------------------------ */

static void put_str_array(struct buf *b, const char *key, char *const *v, size_t n)
{
  buf_printf(b, ",\"%s\":[", key);
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_putc(b, ',');
    buf_json_str(b, v[i]);
  }
  buf_putc(b, ']');
}

static void put_str(struct buf *b, const char *key, const char *val)
{
  buf_printf(b, ",\"%s\":", key);
  if (val)
    buf_json_str(b, val);
  else
    buf_puts(b, "null");
}

char *store_record_encode(const struct image_record *r)
{
  struct buf b = BUF_INIT;
  buf_printf(&b, "{\"version\":%d", STORE_FORMAT_VERSION);
  put_str(&b, "id", r->id);
  put_str(&b, "config_digest", r->config_digest ? r->config_digest : r->id);
  put_str(&b, "manifest_digest", r->manifest_digest);
  put_str_array(&b, "repo_tags", r->repo_tags, r->n_tags);
  put_str_array(&b, "repo_digests", r->repo_digests, r->n_digests);
  put_str_array(&b, "chain_ids", r->chain_ids, r->n_layers);
  buf_printf(&b, ",\"size\":%" PRIu64 ",\"pulled_at_ns\":%" PRId64 ",\"pinned\":%s}\n", r->size,
             r->pulled_at_ns, r->pinned ? "true" : "false");
  return buf_steal(&b);
}

char *store_layer_encode(const struct store_layer *l)
{
  struct buf b = BUF_INIT;
  buf_printf(&b, "{\"version\":%d", STORE_FORMAT_VERSION);
  put_str(&b, "chain_id", l->chain_id);
  put_str(&b, "parent", l->parent);
  put_str(&b, "diff_id", l->diff_id);
  put_str(&b, "blob_digest", l->blob_digest);
  buf_printf(&b, ",\"blob_size\":%" PRIu64 "}\n", l->blob_size);
  return buf_steal(&b);
}

char *store_holder_encode(const struct store_holder *h)
{
  struct buf b = BUF_INIT;
  buf_printf(&b, "{\"version\":%d", STORE_FORMAT_VERSION);
  put_str(&b, "holder", h->name);
  put_str_array(&b, "chain_ids", h->chain_ids, h->n);
  buf_puts(&b, "}\n");
  return buf_steal(&b);
}

/* ---- decoding ------------------------------------------------------------------ */

static int get_version(const json_t *root, err_t **e)
{
  long long v = 0;
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "not a JSON object");
  if (json_int(json_get(root, "version"), &v) < 0)
    return err_set(e, ERR_INVALID, 0, "missing \"version\"");
  if (v != STORE_FORMAT_VERSION)
    return err_set(e, ERR_INVALID, 0, "unknown format version %lld", v);
  return 0;
}

/* A required string (or, with nullable, a string or null -> NULL) that passes valid. */
static int get_str(const json_t *root, const char *key, bool (*valid)(const char *),
                   bool nullable, char **out, err_t **e)
{
  const json_t *n = json_get(root, key);
  if (nullable && json_type(n) == JSON_NULL) {
    *out = NULL;
    return 0;
  }
  const char *s = json_str(n);
  if (!s)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is %s, not a string", key,
                   json_type_name(json_type(n)));
  if (valid && !valid(s))
    return err_set(e, ERR_INVALID, 0, "invalid \"%s\": \"%s\"", key, s);
  *out = xstrdup(s);
  return 0;
}

static int get_str_array(const json_t *root, const char *key, bool (*valid)(const char *),
                         char ***out, size_t *n, err_t **e)
{
  const json_t *a = json_get(root, key);
  if (json_type(a) != JSON_ARRAY)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is %s, not an array", key,
                   json_type_name(json_type(a)));
  size_t len = json_len(a);
  char **v = xcalloc(len ? len : 1, sizeof(*v));
  for (size_t i = 0; i < len; i++) {
    const char *s = json_str(json_at(a, i));
    if (!s || !valid(s)) {
      store_strv_free_array(v, i);
      return err_set(e, ERR_INVALID, 0, "invalid element %zu of \"%s\"", i, key);
    }
    v[i] = xstrdup(s);
  }
  *out = v;
  *n = len;
  return 0;
}

static int get_u64(const json_t *root, const char *key, uint64_t *out, err_t **e)
{
  long long v = 0;
  if (json_int(json_get(root, key), &v) < 0 || v < 0)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a non-negative integer", key);
  *out = (uint64_t)v;
  return 0;
}

static int record_fields(const json_t *root, struct image_record *r, err_t **e)
{
  uint64_t pulled = 0;
  if (get_str(root, "id", store_digest_valid, false, &r->id, e) < 0 ||
      get_str(root, "config_digest", store_digest_valid, false, &r->config_digest, e) < 0 ||
      get_str(root, "manifest_digest", store_digest_valid, false, &r->manifest_digest, e) < 0 ||
      get_str_array(root, "repo_tags", store_tag_valid, &r->repo_tags, &r->n_tags, e) < 0 ||
      get_str_array(root, "repo_digests", store_repo_digest_valid, &r->repo_digests,
                    &r->n_digests, e) < 0 ||
      get_str_array(root, "chain_ids", store_digest_valid, &r->chain_ids, &r->n_layers, e) < 0 ||
      get_u64(root, "size", &r->size, e) < 0 || get_u64(root, "pulled_at_ns", &pulled, e) < 0)
    return -1;
  if (pulled > INT64_MAX)
    return err_set(e, ERR_INVALID, 0, "\"pulled_at_ns\" out of range");
  r->pulled_at_ns = (int64_t)pulled;
  if (json_bool(json_get(root, "pinned"), &r->pinned) < 0)
    return err_set(e, ERR_INVALID, 0, "\"pinned\" is not a boolean");
  return store_record_check(r, e);
}

int store_record_decode(const char *text, struct image_record **out, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (json_parse(text, &root, e) < 0 || get_version(root, e) < 0)
    return -1;
  CLEANUP(image_record) struct image_record *r = xcalloc(1, sizeof(*r));
  if (record_fields(root, r, e) < 0)
    return -1;
  *out = steal(&r);
  return 0;
}

DEFINE_CLEANUP(store_layer, struct store_layer)

int store_layer_decode(const char *text, struct store_layer **out, err_t **e)
{
  cleanup_json json_t *root = NULL;
  cleanup_free char *chain = NULL;
  if (json_parse(text, &root, e) < 0 || get_version(root, e) < 0)
    return -1;
  CLEANUP(store_layer) struct store_layer *l = xcalloc(1, sizeof(*l));
  if (get_str(root, "chain_id", store_digest_valid, false, &chain, e) < 0 ||
      get_str(root, "parent", store_digest_valid, true, &l->parent, e) < 0 ||
      get_str(root, "diff_id", store_digest_valid, false, &l->diff_id, e) < 0 ||
      get_str(root, "blob_digest", store_digest_valid, false, &l->blob_digest, e) < 0 ||
      get_u64(root, "blob_size", &l->blob_size, e) < 0)
    return -1;
  char expect[STORE_DIGEST_BUF];
  if (store_chain_id(l->parent, l->diff_id, expect, e) < 0)
    return -1;
  if (strcmp(expect, chain) != 0)
    return err_set(e, ERR_INVALID, 0, "chain ID %s does not follow from its parent and diff ID",
                   chain);
  memcpy(l->chain_id, chain, STORE_DIGEST_BUF);
  l->phase = LAYER_READY;
  *out = steal(&l);
  return 0;
}

DEFINE_CLEANUP(store_holder, struct store_holder)

int store_holder_decode(const char *text, struct store_holder **out, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (json_parse(text, &root, e) < 0 || get_version(root, e) < 0)
    return -1;
  CLEANUP(store_holder) struct store_holder *h = xcalloc(1, sizeof(*h));
  if (get_str(root, "holder", store_holder_name_valid, false, &h->name, e) < 0 ||
      get_str_array(root, "chain_ids", store_digest_valid, &h->chain_ids, &h->n, e) < 0)
    return -1;
  *out = steal(&h);
  return 0;
}

void store_layer_free(struct store_layer *l)
{
  if (!l)
    return;
  free(l->tmpdir);
  free(l->parent);
  free(l->diff_id);
  free(l->blob_digest);
  free(l);
}

void store_holder_free(struct store_holder *h)
{
  if (!h)
    return;
  free(h->name);
  store_strv_free_array(h->chain_ids, h->n);
  free(h);
}

/* ---- image_record ownership ------------------------------------------------------- */

struct image_record *image_record_dup(const struct image_record *r)
{
  struct image_record *c = xcalloc(1, sizeof(*c));
  *c = *r;
  c->id = xstrdup(r->id);
  c->manifest_digest = xstrdup(r->manifest_digest);
  c->config_digest = xstrdup(r->config_digest ? r->config_digest : r->id);
  c->repo_tags = store_strv_dup_array(r->repo_tags, r->n_tags);
  c->repo_digests = store_strv_dup_array(r->repo_digests, r->n_digests);
  c->chain_ids = store_strv_dup_array(r->chain_ids, r->n_layers);
  return c;
}

void image_record_free(struct image_record *r)
{
  if (!r)
    return;
  free(r->id);
  free(r->manifest_digest);
  free(r->config_digest);
  store_strv_free_array(r->repo_tags, r->n_tags);
  store_strv_free_array(r->repo_digests, r->n_digests);
  store_strv_free_array(r->chain_ids, r->n_layers);
  free(r);
}

void image_record_list_free(struct image_record **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    image_record_free(v[i]);
  free(v);
}
