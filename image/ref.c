/* ref.c - parsing and normalising image references (see ref.h for the rules). */
#include "image/ref.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DOMAIN "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DEFAULT_TAG "latest"
#define QUOTE_MAX 96   /* how much of a hostile input an error message repeats */
#define PART_MAX 64    /* and of the part of it that is wrong */

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
static bool is_word(char c) { return is_alnum(c) || c == '_'; }
static bool is_lower_hex(char c) { return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'); }

static bool is_hex64(const char *s)
{
  for (int i = 0; i < 64; i++)
    if (!is_lower_hex(s[i]))
      return false;
  return s[64] == '\0';
}

/* The error every refusal goes through; the input is quoted, escaped and cut short. */
__attribute__((format(printf, 3, 4)))
static int bad_ref(err_t **e, const char *input, const char *fmt, ...)
{
  cleanup_buf struct buf q = BUF_INIT;
  cleanup_free char *cut = xstrndup(input, QUOTE_MAX);
  buf_json_str(&q, cut);
  if (strlen(input) > QUOTE_MAX)
    buf_puts(&q, "...");
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *why = xvasprintf(fmt, ap);
  va_end(ap);
  return err_set(e, ERR_INVALID, 0, "invalid reference %s: %s", buf_str(&q), why);
}

/* [a-z0-9]+ joined by exactly one of ".", "_", "__" or a run of "-". */
static bool valid_path_component(const char *s, size_t n)
{
  size_t i = 0;
  for (;;) {
    size_t run = 0;
    while (i < n && is_lower_alnum(s[i]))
      i++, run++;
    if (run == 0)
      return false;
    if (i == n)
      return true;
    if (s[i] == '.' || (s[i] == '_' && (i + 1 >= n || s[i + 1] != '_')))
      i++;
    else if (s[i] == '_')
      i += 2;
    else if (s[i] == '-')
      while (i < n && s[i] == '-')
        i++;
    else
      return false;
  }
}

static int check_path(const char *input, const char *path, err_t **e)
{
  if (!*path)
    return bad_ref(e, input, "repository name is empty");
  for (const char *p = path; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      return bad_ref(e, input, "repository name must be lowercase");
  for (const char *c = path;;) {
    const char *end = strchrnul(c, '/');
    size_t n = (size_t)(end - c);
    if (n == 0)
      return bad_ref(e, input, "repository name has an empty component (leading, "
                               "trailing or doubled '/')");
    if (!valid_path_component(c, n))
      return bad_ref(e, input, "invalid repository name component \"%.*s\"",
                     (int)(n < PART_MAX ? n : PART_MAX), c);
    if (!*end)
      return 0;
    c = end + 1;
  }
}

/* A DNS label: alphanumerics, inner '-' allowed. */
static bool valid_host_label(const char *s, size_t n)
{
  if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum(s[i]) && s[i] != '-')
      return false;
  return true;
}

static bool valid_hostname(const char *s, size_t n)
{
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] != '.')
      continue;
    if (!valid_host_label(s + start, i - start))
      return false;
    start = i + 1;
  }
  return true;
}

static bool valid_port(const char *p)
{
  size_t n = strlen(p);
  if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
    return false;
  long v = strtol(p, NULL, 10);
  return v > 0 && v <= 65535;
}

/* host[:port] where host is a DNS name, an IPv4 address or a bracketed IPv6 address. */
static int check_domain(const char *input, const char *d, err_t **e)
{
  const char *port = NULL;
  if (d[0] == '[') {
    const char *close = strchr(d, ']');
    if (!close || close == d + 1 || (close[1] && close[1] != ':'))
      return bad_ref(e, input, "invalid registry host \"%.*s\"", PART_MAX, d);
    cleanup_free char *addr = xstrndup(d + 1, (size_t)(close - d - 1));
    unsigned char bin[16];
    if (inet_pton(AF_INET6, addr, bin) != 1)
      return bad_ref(e, input, "invalid IPv6 address \"%.*s\" in registry host", PART_MAX,
                     addr);
    port = close[1] ? close + 2 : NULL;
  } else {
    const char *colon = strchr(d, ':');
    size_t hn = colon ? (size_t)(colon - d) : strlen(d);
    if (!valid_hostname(d, hn))
      return bad_ref(e, input, "invalid registry host \"%.*s\"",
                     (int)(hn < PART_MAX ? hn : PART_MAX), d);
    port = colon ? colon + 1 : NULL;
  }
  if (port && !valid_port(port))
    return bad_ref(e, input, "invalid registry port \"%.*s\"", PART_MAX, port);
  return 0;
}

static int check_tag(const char *input, const char *tag, err_t **e)
{
  size_t n = strlen(tag);
  if (n == 0)
    return bad_ref(e, input, "tag is empty");
  if (n > IMAGE_REF_TAG_MAX)
    return bad_ref(e, input, "tag is longer than %d characters", IMAGE_REF_TAG_MAX);
  if (!is_word(tag[0]))
    return bad_ref(e, input, "invalid tag \"%s\": must start with a letter, digit or '_'", tag);
  for (size_t i = 1; i < n; i++)
    if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-')
      return bad_ref(e, input, "invalid tag \"%s\": only letters, digits, '_', '.' and '-' "
                               "are allowed", tag);
  return 0;
}

/* algorithm ":" hex, where algorithm is [a-z][a-z0-9]* joined by [+._-]. */
static bool digest_algorithm_ok(const char *a, size_t n)
{
  bool need_alpha = true;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (need_alpha) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return false;
      need_alpha = false;
    } else if (strchr("+._-", c)) {
      need_alpha = true;
    } else if (!is_alnum(c)) {
      return false;
    }
  }
  return n > 0 && !need_alpha;
}

static int check_digest(const char *input, const char *d, err_t **e)
{
  const char *colon = strchr(d, ':');
  if (!colon || !digest_algorithm_ok(d, (size_t)(colon - d)) || !colon[1])
    return bad_ref(e, input, "invalid digest \"%.*s\": expected algorithm:hex", PART_MAX, d);
  if ((size_t)(colon - d) != 6 || strncmp(d, "sha256", 6) != 0)
    return bad_ref(e, input, "unsupported digest algorithm \"%.*s\": crisp verifies only sha256",
                   (int)(colon - d < PART_MAX ? colon - d : PART_MAX), d);
  if (!is_hex64(colon + 1))
    return bad_ref(e, input, "invalid sha256 digest: need exactly 64 lowercase hex characters");
  return 0;
}

static bool has_space_or_control(const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= ' ' || *p == 0x7f)
      return true;
  return false;
}

/* Splits name into registry host and repository path, applying docker's defaults. */
static void split_domain(const char *name, struct image_ref *r)
{
  const char *slash = strchr(name, '/');
  bool has_domain = false;
  if (slash) {
    size_t n = (size_t)(slash - name);
    has_domain = memchr(name, '.', n) || memchr(name, ':', n) ||
                 (n == 9 && strncmp(name, "localhost", 9) == 0);
  }
  if (has_domain) {
    r->domain = xstrndup(name, (size_t)(slash - name));
    r->path = xstrdup(slash + 1);
  } else {
    r->domain = xstrdup(DEFAULT_DOMAIN);
    r->path = xstrdup(name);
  }
  if (strcmp(r->domain, LEGACY_DOMAIN) == 0) {
    free(r->domain);
    r->domain = xstrdup(DEFAULT_DOMAIN);
  }
}

static int parse_into(const char *s, struct image_ref *r, err_t **e)
{
  if (!*s)
    return bad_ref(e, s, "reference is empty");
  if (has_space_or_control(s))
    return bad_ref(e, s, "contains whitespace or control characters");
  if (is_hex64(s))
    return bad_ref(e, s, "a 64-hex image ID is not a repository name");
  cleanup_free char *name = xstrdup(s);
  char *at = strchr(name, '@');
  if (at) {
    *at = '\0';
    if (check_digest(s, at + 1, e) < 0)
      return -1;
    r->digest = xstrdup(at + 1);
  }
  char *colon = strrchr(name, ':');
  if (colon && !strchr(colon, '/')) {
    *colon = '\0';
    if (check_tag(s, colon + 1, e) < 0)
      return -1;
    r->tag = xstrdup(colon + 1);
  }
  if (!*name)
    return bad_ref(e, s, "repository name is empty");
  split_domain(name, r);
  if (strcmp(r->domain, DEFAULT_DOMAIN) != 0 && check_domain(s, r->domain, e) < 0)
    return -1;
  if (check_path(s, r->path, e) < 0)
    return -1;
  if (strcmp(r->domain, DEFAULT_DOMAIN) == 0 && !strchr(r->path, '/')) {
    char *full = xasprintf(OFFICIAL_PREFIX "%s", r->path);
    free(r->path);
    r->path = full;
  }
  if (strlen(r->domain) + 1 + strlen(r->path) > IMAGE_REF_NAME_MAX)
    return bad_ref(e, s, "repository name is longer than %d characters", IMAGE_REF_NAME_MAX);
  if (!r->tag && !r->digest)
    r->tag = xstrdup(DEFAULT_TAG);
  return 0;
}

int image_ref_parse(const char *s, struct image_ref *out, err_t **e)
{
  memset(out, 0, sizeof(*out));
  if (parse_into(s ? s : "", out, e) < 0) {
    image_ref_clear(out);
    return -1;
  }
  return 0;
}

char *image_ref_name(const struct image_ref *r)
{
  return xasprintf("%s/%s", r->domain, r->path);
}

static void append_tag_digest(struct buf *b, const struct image_ref *r)
{
  if (r->tag)
    buf_printf(b, ":%s", r->tag);
  if (r->digest)
    buf_printf(b, "@%s", r->digest);
}

char *image_ref_string(const struct image_ref *r)
{
  struct buf b = BUF_INIT;
  buf_printf(&b, "%s/%s", r->domain, r->path);
  append_tag_digest(&b, r);
  return buf_steal(&b);
}

char *image_ref_familiar(const struct image_ref *r)
{
  struct buf b = BUF_INIT;
  size_t lib = strlen(OFFICIAL_PREFIX);
  if (strcmp(r->domain, DEFAULT_DOMAIN) != 0)
    buf_printf(&b, "%s/%s", r->domain, r->path);
  else if (strncmp(r->path, OFFICIAL_PREFIX, lib) == 0 && !strchr(r->path + lib, '/'))
    buf_puts(&b, r->path + lib);
  else
    buf_puts(&b, r->path);
  append_tag_digest(&b, r);
  return buf_steal(&b);
}

void image_ref_clear(struct image_ref *r)
{
  if (!r)
    return;
  free(r->domain);
  free(r->path);
  free(r->tag);
  free(r->digest);
  memset(r, 0, sizeof(*r));
}

int image_ref_is_id(const char *s, char out[IMAGE_ID_LEN + 1])
{
  if (!s)
    return 0;
  if (strncmp(s, "sha256:", 7) == 0)
    s += 7;
  if (!is_hex64(s))
    return 0;
  memcpy(out, "sha256:", 7);
  memcpy(out + 7, s, 65);
  return 1;
}
