/* request_check.c - limits on CRI requests (see request_check.h). */
#include "cri/request_check.h"

#include <stdbool.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "cri/pb_wire.h"
#include "cri/stream_util.h"
#include "net/podfiles.h"

#define MAX_DEPTH 32

/* ---- wire: no NUL inside a string ------------------------------------------------ */

static const ProtobufCFieldDescriptor *field_by_id(const ProtobufCMessageDescriptor *d, uint32_t id)
{
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].id == id)
      return &d->fields[i];
  return NULL;
}

/* The message decoded already, so the framing is sound; this only looks inside. */
static int wire_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                     int depth, err_t **e)
{
  if (depth > MAX_DEPTH)
    return err_set(e, ERR_INVALID, 0, "the request nests deeper than %d messages", MAX_DEPTH);
  while (p < end) {
    struct pb_field w;
    enum pb_next r = pb_field_next(&p, end, &w);
    if (r == PB_GROUP)
      return err_set(e, ERR_INVALID, 0, "the request uses protobuf groups");
    if (r == PB_BAD)
      return err_set(e, ERR_INVALID, 0, "the request is not a valid protobuf message");
    if (w.wire_type != 2)
      continue;
    const ProtobufCFieldDescriptor *f = field_by_id(d, w.number);
    if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(w.val, 0, w.val_len))
      return err_set(e, ERR_INVALID, 0, "field %s of %s holds a NUL byte", f->name, d->short_name);
    /* proto3 strings are UTF-8; what is not would make crisp's own JSON records and
     * specs unreadable (and gRPC's other implementations refuse it too) */
    if (f && f->type == PROTOBUF_C_TYPE_STRING && !stream_utf8_valid(w.val, w.val_len))
      return err_set(e, ERR_INVALID, 0, "field %s of %s is not valid UTF-8", f->name,
                     d->short_name);
    if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
        wire_walk(f->descriptor, w.val, w.val + w.val_len, depth + 1, e) < 0)
      return -1;
  }
  return 0;
}

/* ---- the decoded message: sizes, enums, paths, IDs ------------------------------------ */

enum rule { R_NONE, R_ID, R_NAME, R_ABS_DIR, R_REL_PATH, R_ABS_PATH, R_ABS_OR_EMPTY, R_HOSTNAME,
             R_LINE, R_CGROUP };

struct field_rule {
  const char *msg;    /* short name, NULL: any message */
  const char *field;
  enum rule rule;
};

static const struct field_rule rules[] = {
    {NULL, "pod_sandbox_id", R_ID},
    {NULL, "container_id", R_ID},
    {"PodSandboxFilter", "id", R_ID},
    {"ContainerFilter", "id", R_ID},
    {"ContainerStatsFilter", "id", R_ID},
    {"PodSandboxStatsFilter", "id", R_ID},
    {"PodSandboxMetadata", "name", R_NAME},
    {"PodSandboxMetadata", "namespace", R_NAME},
    {"PodSandboxMetadata", "uid", R_NAME},
    {"ContainerMetadata", "name", R_NAME},
    {"PodSandboxConfig", "log_directory", R_ABS_DIR},
    {"ContainerConfig", "log_path", R_REL_PATH},
    {"Mount", "container_path", R_ABS_PATH},
    {"Mount", "host_path", R_ABS_PATH},
    {"Device", "container_path", R_ABS_OR_EMPTY},
    {"Device", "host_path", R_ABS_PATH},
    {"PodSandboxConfig", "hostname", R_HOSTNAME},
    {"DNSConfig", "servers", R_LINE},      /* lines of the pod's resolv.conf */
    {"DNSConfig", "searches", R_LINE},
    {"DNSConfig", "options", R_LINE},
    {"LinuxPodSandboxConfig", "cgroup_parent", R_CGROUP},
};

static enum rule rule_of(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
  for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
    if ((!rules[i].msg || !strcmp(rules[i].msg, d->short_name)) && !strcmp(rules[i].field, f->name))
      return rules[i].rule;
  return R_NONE;
}

/* Does a "/"-separated path have a "." or ".." component, or an empty one ("a//b")? */
static bool has_dot_or_empty_part(const char *p, bool leading_slash)
{
  if (leading_slash)
    p++;
  for (;;) {
    size_t n = strcspn(p, "/");
    if (n == 0 && *p)
      return true;
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return true;
    if (!p[n])
      return false;
    p += n + 1;
    if (!*p)   /* a trailing slash */
      return false;
  }
}

static bool has_dotdot_part(const char *p)
{
  for (;;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return true;
    if (!p[n])
      return false;
    p += n + 1;
  }
}

static bool id_char(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '-' || c == '_' || c == '.' || c == ':';
}

static bool has_control(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static int check_rule(enum rule r, const char *where, const char *s, err_t **e)
{
  size_t n = strlen(s);
  switch (r) {
  case R_HOSTNAME:   /* the same rule the pod's /etc/hostname is written with */
    return n ? podfiles_check_hostname(s, e) : 0;
  case R_LINE:
    if (has_control(s))
      return err_set(e, ERR_INVALID, 0, "%s \"%.64s\" holds a control character", where, s);
    return 0;
  case R_CGROUP:
    if (has_control(s) || has_dotdot_part(s))
      return err_set(e, ERR_INVALID, 0, "%s \"%.256s\" must not climb (\"..\") or hold control "
                     "characters", where, s);
    return 0;
  case R_NONE:
    return 0;
  case R_ID:
    if (n > REQ_ID_MAX)
      return err_set(e, ERR_INVALID, 0, "%s is %zu bytes long; IDs have at most %u", where, n,
                     REQ_ID_MAX);
    for (size_t i = 0; i < n; i++)
      if (!id_char(s[i]))
        return err_set(e, ERR_INVALID, 0, "%s \"%.64s\" is not an ID (letters, digits, '-', '_', "
                       "'.', ':' only)", where, s);
    if (strstr(s, ".."))
      return err_set(e, ERR_INVALID, 0, "%s \"%.64s\" is not an ID (no \"..\")", where, s);
    return 0;
  case R_NAME:
    if (n > REQ_NAME_MAX)
      return err_set(e, ERR_INVALID, 0, "%s is %zu bytes long; at most %u", where, n, REQ_NAME_MAX);
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || strchr("/;=\\ ", s[i]))
        return err_set(e, ERR_INVALID, 0, "%s \"%.64s\" holds '%c' (names take no '/', ';', '=', "
                       "'\\', spaces or control characters)", where, s,
                       (unsigned char)s[i] < 0x20 ? '?' : s[i]);
    if (!strcmp(s, ".") || !strcmp(s, ".."))
      return err_set(e, ERR_INVALID, 0, "%s cannot be \"%s\"", where, s);
    return 0;
  case R_ABS_DIR:
    if (n && (s[0] != '/' || has_dot_or_empty_part(s, true)))
      return err_set(e, ERR_INVALID, 0, "%s \"%.256s\" must be an absolute, clean path (no \".\", "
                     "\"..\" or empty parts)", where, s);
    return 0;
  case R_REL_PATH:
    if (n && (s[0] == '/' || has_dot_or_empty_part(s, false) || s[n - 1] == '/'))
      return err_set(e, ERR_INVALID, 0, "%s \"%.256s\" must be a clean path relative to the pod's "
                     "log directory (no leading '/', \".\", \"..\" or empty parts)", where, s);
    return 0;
  case R_ABS_OR_EMPTY:
    if (!n)
      return 0;
    /* fall through */
  case R_ABS_PATH:
    if (s[0] != '/')
      return err_set(e, ERR_INVALID, 0, "%s \"%.256s\" must be an absolute path", where, s);
    return 0;
  }
  return 0;
}

static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
  size_t n = strlen(d->short_name);
  return d->n_fields == 2 && n > 5 && !strcmp(d->short_name + n - 5, "Entry") &&
         !strcmp(d->fields[0].name, "key") && !strcmp(d->fields[1].name, "value") &&
         d->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

static int walk(const ProtobufCMessage *m, struct buf *path, int depth, err_t **e);

static void path_cut(struct buf *b, size_t at)
{
  b->len = at;
  if (b->data)
    b->data[at] = '\0';
}

/* A map<string, string> (or <string, message>): its size and keys. */
static int check_map(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *entries, size_t n,
                     struct buf *path, int depth, err_t **e)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const char *k = *(char *const *)((const char *)entries[i] + ed->fields[0].offset);
    const ProtobufCFieldDescriptor *vf = &ed->fields[1];
    size_t kl = k ? strlen(k) : 0;
    if (kl == 0 || kl > REQ_MAP_KEY_MAX)
      return err_set(e, ERR_INVALID, 0, "%s has a key of %zu bytes (keys have 1 to %u)",
                     buf_str(path), kl, REQ_MAP_KEY_MAX);
    total += kl;
    if (vf->type == PROTOBUF_C_TYPE_STRING) {
      const char *v = *(char *const *)((const char *)entries[i] + vf->offset);
      total += v ? strlen(v) : 0;
    }
    if (total > REQ_MAP_TOTAL_MAX)
      return err_set(e, ERR_INVALID, 0, "%s holds more than %u bytes of keys and values",
                     buf_str(path), REQ_MAP_TOTAL_MAX);
    if (vf->type == PROTOBUF_C_TYPE_MESSAGE) {
      size_t at = path->len;
      buf_printf(path, "[\"%.64s\"]", k);
      int rc = walk(entries[i], path, depth + 1, e);
      path_cut(path, at);
      if (rc < 0)
        return -1;
    }
  }
  return 0;
}

static int check_value(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                       const void *v, struct buf *path, int depth, err_t **e)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)v;
    if (!s)
      return 0;
    size_t n = strlen(s);
    if (n > REQ_STRING_MAX)
      return err_set(e, ERR_INVALID, 0, "%s is %zu bytes long; strings have at most %u", buf_str(path),
                     n, REQ_STRING_MAX);
    return check_rule(rule_of(d, f), buf_str(path), s, e);
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = v;
    if (b->len > REQ_STRING_MAX)
      return err_set(e, ERR_INVALID, 0, "%s is %zu bytes long; at most %u", buf_str(path), b->len,
                     REQ_STRING_MAX);
    return 0;
  }
  case PROTOBUF_C_TYPE_ENUM: {
    int x = *(const int *)v;
    if (!protobuf_c_enum_descriptor_get_value(f->descriptor, x))
      return err_set(e, ERR_INVALID, 0, "%s: %d is not a known %s value", buf_str(path), x,
                     ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name);
    return 0;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
    return sub ? walk(sub, path, depth + 1, e) : 0;
  }
  case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_BOOL:
    break;   /* numbers are the handlers' to judge */
  }
  return 0;
}

static size_t elem_size(ProtobufCType t)
{
  switch (t) {
  case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_ENUM:
    return 4;
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  }
  return 0;
}

static int check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                       struct buf *path, int depth, err_t **e)
{
  const char *base = (const char *)m;
  const void *member = base + f->offset;
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
      return 0;
    return check_value(m->descriptor, f, member, path, depth, e);
  }
  size_t n = *(const size_t *)(base + f->quantifier_offset);
  if (n > REQ_REPEATED_MAX)
    return err_set(e, ERR_INVALID, 0, "%s has %zu entries; at most %u", buf_str(path), n,
                   REQ_REPEATED_MAX);
  const char *arr = *(const char *const *)member;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor))
    return check_map(f, (ProtobufCMessage *const *)arr, n, path, depth, e);
  size_t at = path->len;
  for (size_t i = 0; i < n; i++) {
    buf_printf(path, "[%zu]", i);
    int rc = check_value(m->descriptor, f, arr + i * elem_size(f->type), path, depth, e);
    path_cut(path, at);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int walk(const ProtobufCMessage *m, struct buf *path, int depth, err_t **e)
{
  if (depth > MAX_DEPTH)
    return err_set(e, ERR_INVALID, 0, "the request nests deeper than %d messages", MAX_DEPTH);
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    size_t at = path->len;
    buf_printf(path, "%s%s", at ? "." : "", f->name);
    int rc = check_field(m, f, path, depth, e);
    path_cut(path, at);
    if (rc < 0)
      return -1;
  }
  return 0;
}

int request_check(const ProtobufCMessage *m, const uint8_t *wire, size_t len, err_t **e)
{
  if (wire_walk(m->descriptor, wire, wire + len, 0, e) < 0)
    return -1;
  cleanup_buf struct buf path = BUF_INIT;
  return walk(m, &path, 0, e);
}
