/* registry.h - OCI distribution client: manifests and blobs from registries.
 *
 * One `struct registry` serves every pulling thread of the process. Each request
 * uses its own transfer; the shared caches (per-endpoint /v2/ ping result and auth
 * challenge, bearer tokens per endpoint, scope and credentials) sit behind a
 * mutex. Call registry_global_init() once from main() before starting threads
 * (registry_new calls it too; it is idempotent).
 *
 * Endpoints. For a registry host the client tries, in order: the configured
 * mirrors of that host, then the host itself. "docker.io" (also "index.docker.io")
 * is served by https://registry-1.docker.io. The host is reached over https,
 * or plain http when it is in the insecure list or is localhost, 127.0.0.1 or
 * [::1] (any port). A mirror is a base URL ("http://localhost:5000",
 * "https://mirror.example/prefix"); one without a scheme gets https (http when
 * insecure by the same rule). The next endpoint is tried after a connection
 * error, a 5xx, a 404, an auth failure or a digest mismatch; never after a
 * cancellation or a failure of the caller's own write callback. The error of an
 * operation that fails everywhere carries the code of the last endpoint (the host
 * itself) and names every endpoint tried and why.
 *
 * Auth. Anonymous, Basic (username/password or a base64 "user:pass" `auth`) and
 * Bearer tokens (WWW-Authenticate: Bearer realm=..,service=..; pull scope;
 * Basic credentials sent to the realm; an identity token exchanged as an OAuth2
 * refresh token; a registry token used as the Bearer token as is). Credentials
 * come from the caller, else from the docker config.json named in the options.
 * Credentials are never sent to another host on a redirect (blob storage).
 *
 * Errors: ERR_PERMISSION (401/403), ERR_NOT_FOUND (404), ERR_UNAVAILABLE
 * (connection refused, DNS, TLS, timeouts, 5xx, 429), ERR_INVALID (digest or
 * size mismatch, malformed input), ERR_CANCELLED (registry_io.cancelled said so),
 * ERR_RESOURCE (a manifest over MANIFEST_MAX_SIZE). Transient failures (5xx, 429,
 * resets, timeouts) are retried with exponential backoff first.
 */
#ifndef CRISP_IMAGE_REGISTRY_H
#define CRISP_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cleanup.h"
#include "base/err.h"

/* Mirrors of one registry host ("docker.io", "quay.io", "localhost:5000"). */
struct registry_mirror_conf {
  const char *host;
  const char *const *endpoints;   /* base URLs, tried in order */
  size_t n;
};

/* Everything is copied by registry_new; zero values mean the defaults. */
struct registry_opts {
  const struct registry_mirror_conf *mirrors;
  size_t n_mirrors;
  const char *const *insecure;    /* "host:port" exact, or "host" for any port */
  size_t n_insecure;
  const char *auth_file;          /* docker config.json; NULL: none */
  long connect_timeout_s;         /* default 10 */
  long low_speed_time_s;          /* abort below 1 byte/s for this long; default 30 */
  int retries;                    /* retries after the first try; default 3, < 0: none */
  long retry_delay_ms;            /* first backoff, doubled per retry; default 500 */
};

/* From CRI AuthConfig. Borrowed; NULL or "" means unset. If all are unset the
 * auth file is consulted. */
struct registry_creds {
  const char *username;
  const char *password;
  const char *auth;               /* base64("user:pass") */
  const char *identity_token;     /* OAuth2 refresh token for the token server */
  const char *registry_token;     /* used directly as the Bearer token */
};

/* Hooks for one operation; any member may be NULL. Both are called from the
 * transfer (often: keep them cheap) on the calling thread. */
struct registry_io {
  bool (*cancelled)(void *arg);   /* true aborts the operation with ERR_CANCELLED */
  void (*progress)(void *arg, uint64_t done, uint64_t total); /* blob bytes; total 0 if unknown */
  void *arg;
};

struct registry_manifest {
  char *body;                     /* NUL-terminated for convenience; len excludes it */
  size_t len;
  char *media_type;               /* Content-Type without parameters; NULL if none sent */
  char *digest;                   /* "sha256:<hex>" of body, computed and verified here */
};

struct registry;

/* Initialises libcurl once per process. Safe to call more than once. */
int registry_global_init(err_t **e);

int registry_new(const struct registry_opts *o, struct registry **out, err_t **e);
void registry_free(struct registry *r);
DEFINE_CLEANUP(registry, struct registry)

/* Fetches the manifest (or index) `ref` (a tag or "sha256:<hex>") of repository
 * `path` ("library/busybox") on registry `domain` ("docker.io"). The body's sha256
 * must equal ref when ref is a digest, and the Docker-Content-Digest header when
 * one is sent; the body is not parsed (see manifest.h). *out is filled on success
 * and owned by the caller (registry_manifest_clear). */
int registry_get_manifest(struct registry *r, const char *domain, const char *path,
                          const char *ref, const struct registry_creds *c,
                          const struct registry_io *io, struct registry_manifest *out,
                          err_t **e);
void registry_manifest_clear(struct registry_manifest *m);

/* Consumer of a blob's bytes. write gets the bytes in order; a -1 from it ends
 * the operation with its error (no retry, no other endpoint). Before any new
 * attempt (a retry or the next endpoint) after bytes were delivered, restart is
 * called: the consumer must drop everything received so far (truncate its file,
 * reset its hash) because the next bytes are the blob from offset 0 again. With
 * restart NULL an attempt that delivered bytes is never retried. */
struct registry_sink {
  int (*write)(void *arg, const void *p, size_t n, err_t **e);
  int (*restart)(void *arg, err_t **e);
  void *arg;
};

/* Streams blob `digest` of `path` on `domain` into sink, following redirects.
 * The sha256 of the bytes must equal digest and their count must equal size
 * (size < 0: unknown); otherwise ERR_INVALID "blob sha256:... digest mismatch:
 * got sha256:..." and the consumer must discard what it got. */
int registry_get_blob(struct registry *r, const char *domain, const char *path,
                      const char *digest, int64_t size, const struct registry_creds *c,
                      const struct registry_io *io, const struct registry_sink *sink,
                      err_t **e);

#endif
