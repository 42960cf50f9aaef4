/* registry_auth.c - the text side of registry auth: WWW-Authenticate challenges,
 * credentials (caller's or docker config.json), token server answers and registry
 * error bodies. No network here. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"
#include "image/registry_internal.h"

#define AUTH_FILE_MAX ((size_t)1 << 20)

/* ---- WWW-Authenticate --------------------------------------------------- */

static bool is_tchar(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* Reads a quoted string at p (on the opening quote) into *out; returns the
 * position after the closing quote, or NULL if unterminated. */
static const char *read_quoted(const char *p, char **out)
{
  struct buf b = BUF_INIT;
  for (p++; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1])
      p++;
    buf_putc(&b, *p);
  }
  if (*p != '"') {
    buf_free(&b);
    return NULL;
  }
  *out = buf_steal(&b);
  return p + 1;
}

static void set_param(struct auth_challenge *c, const char *key, size_t klen, char *val)
{
  char **slot = NULL;
  if (klen == 5 && strncasecmp(key, "realm", 5) == 0)
    slot = &c->realm;
  else if (klen == 7 && strncasecmp(key, "service", 7) == 0)
    slot = &c->service;
  else if (klen == 5 && strncasecmp(key, "scope", 5) == 0)
    slot = &c->scope;
  if (slot && !*slot) {
    *slot = val;
    return;
  }
  free(val);
}

/* key=value pairs after the scheme. Stops at the end or at a second challenge. */
static int parse_params(const char *p, struct auth_challenge *c, err_t **e)
{
  for (;;) {
    while (*p == ',' || *p == ' ' || *p == '\t')
      p++;
    if (!*p)
      return 0;
    const char *key = p;
    while (is_tchar(*p))
      p++;
    size_t klen = (size_t)(p - key);
    p = skip_ws(p);
    if (klen && *p != '=' && p != key + klen)
      return 0;   /* "Basic realm=x, Bearer realm=y": the next challenge starts */
    if (!klen || *p != '=')
      return err_set(e, ERR_INVALID, 0, "WWW-Authenticate: expected key=value near \"%.20s\"",
                     key);
    p = skip_ws(p + 1);
    char *val = NULL;
    if (*p == '"') {
      p = read_quoted(p, &val);
      if (!p)
        return err_set(e, ERR_INVALID, 0, "WWW-Authenticate: unterminated quoted string");
    } else {
      size_t vlen = strcspn(p, ", \t");
      val = xstrndup(p, vlen);
      p += vlen;
    }
    set_param(c, key, klen, val);
    p = skip_ws(p);
    if (*p && *p != ',')
      return err_set(e, ERR_INVALID, 0, "WWW-Authenticate: expected ',' near \"%.20s\"", p);
  }
}

int registry_parse_challenge(const char *h, struct auth_challenge *out, err_t **e)
{
  memset(out, 0, sizeof(*out));
  const char *p = skip_ws(h ? h : "");
  if (!*p)
    return 0;
  size_t n = 0;
  while (is_tchar(p[n]))
    n++;
  if (n == 6 && strncasecmp(p, "Bearer", 6) == 0)
    out->scheme = AUTH_BEARER;
  else if (n == 5 && strncasecmp(p, "Basic", 5) == 0)
    out->scheme = AUTH_BASIC;
  else
    return err_set(e, ERR_INVALID, 0, "unsupported auth scheme in WWW-Authenticate \"%.40s\"",
                   p);
  if (parse_params(p + n, out, e) < 0) {
    auth_challenge_clear(out);
    return -1;
  }
  if (out->scheme == AUTH_BEARER && (!out->realm || !*out->realm)) {
    auth_challenge_clear(out);
    return err_set(e, ERR_INVALID, 0, "WWW-Authenticate: Bearer challenge without realm");
  }
  return 0;
}

void auth_challenge_clear(struct auth_challenge *c)
{
  free(c->realm);
  free(c->service);
  free(c->scope);
  memset(c, 0, sizeof(*c));
}

/* ---- base64 and URLs ---------------------------------------------------- */

static int b64_value(char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int registry_base64_decode(const char *in, char **out, size_t *len, err_t **e)
{
  struct buf b = BUF_INIT;
  unsigned acc = 0;
  int bits = 0;
  const char *p = in;
  for (; *p && *p != '='; p++) {
    int v = b64_value(*p);
    if (v < 0) {
      buf_free(&b);
      return err_set(e, ERR_INVALID, 0, "invalid base64");
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf_putc(&b, (char)((acc >> bits) & 0xff));
    }
  }
  while (*p == '=')
    p++;
  if (*p || bits >= 6) {
    buf_free(&b);
    return err_set(e, ERR_INVALID, 0, "invalid base64");
  }
  if (len)
    *len = b.len;
  *out = buf_steal(&b);
  return 0;
}

char *registry_url_escape(const char *s)
{
  struct buf b = BUF_INIT;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p))
      buf_putc(&b, (char)*p);
    else
      buf_printf(&b, "%%%02X", *p);
  }
  return buf_steal(&b);
}

/* ---- credentials -------------------------------------------------------- */

static char *nonempty_dup(const char *s) { return s && *s ? xstrdup(s) : NULL; }

void registry_auth_clear(struct registry_auth *a)
{
  free(a->username);
  free(a->password);
  free(a->identity_token);
  free(a->registry_token);
  memset(a, 0, sizeof(*a));
}

bool registry_auth_empty(const struct registry_auth *a)
{
  return !a->username && !a->identity_token && !a->registry_token;
}

/* base64("user:pass") -> user, pass. */
static int decode_user_pass(const char *b64, struct registry_auth *a, err_t **e)
{
  cleanup_free char *plain = NULL;
  size_t len = 0;
  if (registry_base64_decode(b64, &plain, &len, e) < 0)
    return err_wrap(e, "auth");
  char *colon = memchr(plain, ':', len);
  if (!colon || strlen(plain) != len)
    return err_set(e, ERR_INVALID, 0, "auth: not base64 of \"user:password\"");
  *colon = '\0';
  free(a->username);
  free(a->password);
  a->username = xstrdup(plain);
  a->password = xstrdup(colon + 1);
  return 0;
}

int registry_auth_from_creds(const struct registry_creds *c, struct registry_auth *out,
                             err_t **e)
{
  memset(out, 0, sizeof(*out));
  if (!c)
    return 0;
  out->username = nonempty_dup(c->username);
  out->password = out->username ? xstrdup(c->password ? c->password : "") : NULL;
  out->identity_token = nonempty_dup(c->identity_token);
  out->registry_token = nonempty_dup(c->registry_token);
  if (c->auth && *c->auth && decode_user_pass(c->auth, out, e) < 0) {
    registry_auth_clear(out);
    return -1;
  }
  return 0;
}

/* "https://index.docker.io/v1/" -> matches "docker.io". */
static bool auth_key_matches(const char *key, const char *domain)
{
  const char *p = strstr(key, "://");
  p = p ? p + 3 : key;
  cleanup_free char *host = xstrndup(p, strcspn(p, "/"));
  return strcasecmp(registry_canonical_host(host), registry_canonical_host(domain)) == 0;
}

static int auth_entry(const json_t *ent, struct registry_auth *a, err_t **e)
{
  const char *auth = json_str(json_get(ent, "auth"));
  if (auth && *auth) {
    if (decode_user_pass(auth, a, e) < 0)
      return -1;
  } else if (json_str(json_get(ent, "username"))) {
    a->username = nonempty_dup(json_str(json_get(ent, "username")));
    a->password = xstrdup(json_str(json_get(ent, "password")) ? json_str(json_get(ent, "password"))
                                                              : "");
  }
  a->identity_token = nonempty_dup(json_str(json_get(ent, "identitytoken")));
  a->registry_token = nonempty_dup(json_str(json_get(ent, "registrytoken")));
  return 0;
}

int registry_auth_file_lookup(const char *file, const char *domain, struct registry_auth *out,
                              err_t **e)
{
  cleanup_free char *text = NULL;
  cleanup_json json_t *root = NULL;
  memset(out, 0, sizeof(*out));
  if (file_read_all(file, AUTH_FILE_MAX, &text, NULL, e) < 0)
    return -1;
  if (json_parse(text, &root, e) < 0)
    return err_wrap(e, "%s", file);
  const json_t *auths = json_get(root, "auths");
  for (size_t i = 0; i < json_len(auths); i++) {
    const char *key = json_key_at(auths, i);
    if (!key || !auth_key_matches(key, domain))
      continue;
    if (json_type(json_at(auths, i)) != JSON_OBJECT)
      return err_set(e, ERR_INVALID, 0, "%s: auths[\"%s\"] is not an object", file, key);
    if (auth_entry(json_at(auths, i), out, e) < 0) {
      registry_auth_clear(out);
      return err_wrap(e, "%s: auths[\"%s\"]", file, key);
    }
    if (!registry_auth_empty(out))
      return 0;
  }
  return err_set(e, ERR_NOT_FOUND, 0, "no credentials for %s in %s", domain, file);
}

/* ---- token and error bodies --------------------------------------------- */

static int body_json(const char *body, size_t len, json_t **out, err_t **e)
{
  if (!body || !len || memchr(body, '\0', len))
    return err_set(e, ERR_INVALID, 0, "empty or binary body");
  cleanup_free char *text = xstrndup(body, len);
  return json_parse(text, out, e);
}

int registry_parse_token_response(const char *body, size_t len, char **token,
                                  long *expires_in, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (body_json(body, len, &root, e) < 0)
    return err_wrap(e, "token server answer");
  const char *t = json_str(json_get(root, "token"));
  if (!t || !*t)
    t = json_str(json_get(root, "access_token"));
  if (!t || !*t)
    return err_set(e, ERR_INVALID, 0, "token server answer holds no token");
  long long exp = 60;
  if (json_int(json_get(root, "expires_in"), &exp) < 0 || exp < 60)
    exp = 60;
  *token = xstrdup(t);
  *expires_in = exp > 86400 ? 86400 : (long)exp;
  return 0;
}

char *registry_error_summary(const char *body, size_t len)
{
  cleanup_json json_t *root = NULL;
  err_t *e = NULL;
  if (body_json(body, len, &root, &e) < 0) {
    err_free(&e);
    return NULL;
  }
  const json_t *first = json_at(json_get(root, "errors"), 0);
  const char *code = json_str(json_get(first, "code"));
  const char *msg = json_str(json_get(first, "message"));
  if (!code && !msg)
    return NULL;
  if (code && msg)
    return xasprintf("%.60s: %.200s", code, msg);
  return xasprintf("%.200s", code ? code : msg);
}
