/* registry_internal.h - the pieces of the registry client, for image/registry*.c
 * and their unit tests only.
 *
 *   registry_endpoint.c  which base URLs serve a registry host
 *   registry_auth.c      WWW-Authenticate, credentials, token and error bodies
 *   registry_cache.c     a small TTL cache behind a mutex (pings, tokens)
 *   registry_http.c      one HTTP exchange with libcurl (the only file that knows curl)
 *   registry.c           the distribution protocol: ping, auth, retries, fallback
 */
#ifndef CRISP_IMAGE_REGISTRY_INTERNAL_H
#define CRISP_IMAGE_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "image/registry.h"

/* ---- endpoints ---------------------------------------------------------- */

struct registry_endpoint {
  char *base;        /* "https://registry-1.docker.io", "http://m:5000/prefix"; no trailing '/' */
  bool mirror;
};

struct registry_endpoints {
  struct registry_endpoint *v;
  size_t n;
};

/* "index.docker.io", "registry-1.docker.io" -> "docker.io"; others unchanged. */
const char *registry_canonical_host(const char *domain);
/* Whether domain is reached over plain http (see registry.h). */
bool registry_host_insecure(const struct registry_opts *o, const char *domain);
/* The endpoints for domain, mirrors first. ERR_INVALID for a malformed mirror URL. */
int registry_resolve_endpoints(const struct registry_opts *o, const char *domain,
                               struct registry_endpoints *out, err_t **e);
void registry_endpoints_clear(struct registry_endpoints *eps);

/* ---- auth --------------------------------------------------------------- */

enum auth_scheme { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER };

struct auth_challenge {
  enum auth_scheme scheme;
  char *realm;       /* Bearer: the token server URL; Basic: informative */
  char *service;     /* NULL if absent */
  char *scope;
};

/* Parses a WWW-Authenticate value ("Bearer realm=\"https://a\",service=\"b\"").
 * Quoted strings with backslash escapes, optional spaces around '=' and ',',
 * case-insensitive scheme and keys; unknown parameters ignored; a second
 * challenge in the same value is ignored. NULL or "" -> AUTH_NONE. A Bearer
 * challenge without realm, an unknown scheme or bad syntax is ERR_INVALID. */
int registry_parse_challenge(const char *header, struct auth_challenge *out, err_t **e);
void auth_challenge_clear(struct auth_challenge *c);

/* Decoded credentials (owned strings, NULL when unset). */
struct registry_auth {
  char *username;
  char *password;
  char *identity_token;
  char *registry_token;
};

/* From the caller's creds; `auth` is decoded. Nothing set -> all NULL, 0. */
int registry_auth_from_creds(const struct registry_creds *c, struct registry_auth *out,
                             err_t **e);
/* The entry for domain in a docker config.json ("auths": keys may be a host,
 * "https://host", "https://host/v1/"; docker.io also matches index.docker.io).
 * A missing file or entry is ERR_NOT_FOUND. */
int registry_auth_file_lookup(const char *file, const char *domain, struct registry_auth *out,
                              err_t **e);
bool registry_auth_empty(const struct registry_auth *a);
void registry_auth_clear(struct registry_auth *a);

/* Standard base64 (padding optional) -> bytes, NUL-terminated. ERR_INVALID if bad. */
int registry_base64_decode(const char *in, char **out, size_t *len, err_t **e);
/* Percent-encodes everything but RFC 3986 unreserved characters. */
char *registry_url_escape(const char *s);

/* A token server's JSON answer: "token", else "access_token"; expires_in
 * defaults to 60 s and is raised to 60 s if lower. */
int registry_parse_token_response(const char *body, size_t len, char **token,
                                  long *expires_in, err_t **e);
/* "CODE: message" of the first entry of a registry error body, or NULL. */
char *registry_error_summary(const char *body, size_t len);

/* ---- TTL cache ---------------------------------------------------------- */

struct regcache;
struct regcache *regcache_new(size_t max_entries);
void regcache_free(struct regcache *c);
/* A copy of the live value for key (caller frees), NULL if absent or expired. */
char *regcache_get(struct regcache *c, const char *key);
/* Stores a copy for ttl_s seconds; when full, the entry closest to expiry goes. */
void regcache_put(struct regcache *c, const char *key, const char *val, double ttl_s);
void regcache_drop(struct regcache *c, const char *key);

/* ---- one HTTP exchange (registry_http.c) -------------------------------- */

enum http_auth { HTTP_AUTH_NONE = 0, HTTP_AUTH_BASIC, HTTP_AUTH_BEARER };

struct http_request {
  const char *url;
  const char *post_form;          /* non-NULL: POST this urlencoded form; else GET */
  const char *accept;             /* Accept header, or NULL */
  enum http_auth auth;
  const char *user, *password;    /* HTTP_AUTH_BASIC */
  const char *token;              /* HTTP_AUTH_BEARER */
  size_t max_body;                /* cap of a buffered 2xx body; larger is ERR_RESOURCE */
  /* When set, a 2xx body streams here instead of into http_response.body. */
  int (*sink)(void *arg, const void *p, size_t n, err_t **e);
  void *sink_arg;
  uint64_t progress_total;        /* reported with streamed progress; 0: from the response */
  const struct registry_io *io;
  long connect_timeout_s;
  long low_speed_time_s;
};

struct http_response {
  long status;                    /* of the last response after redirects */
  char *content_type;
  char *docker_digest;            /* Docker-Content-Digest */
  char *www_authenticate;
  struct buf body;                /* buffered body, or the start of an error body */
  uint64_t streamed;              /* bytes handed to the sink */
  bool retryable;                 /* set with a -1: a transient transport failure */
  bool sink_failed;               /* set with a -1: the sink's own error */
};

/* One exchange, following redirects without carrying credentials to another
 * host. Returns 0 with any HTTP status in rs, -1 on a transport failure. */
int http_do(const struct http_request *rq, struct http_response *rs, err_t **e);
void http_response_clear(struct http_response *rs);

#endif
