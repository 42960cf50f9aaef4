/* fakereg.h - a scripted fake registry on 127.0.0.1 (over fakehttp) for the registry
 * client tests: repository "test/app", a token endpoint, and knobs to inject auth
 * schemes, 5xx/429, cut or stalled transfers, corruption and redirects. */
#ifndef CRISP_TEST_FAKEREG_H
#define CRISP_TEST_FAKEREG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "fakehttp.h"
#include "image/registry.h"

enum fake_auth { FA_OPEN, FA_BASIC, FA_BEARER };

/* The fake registry: serves repository "test/app" and a token endpoint. */
struct freg {
  pthread_mutex_t mu;
  struct fakehttp *srv;
  int port;
  enum fake_auth auth;
  const char *user, *pass;        /* required credentials, NULL: any */
  char *manifest;
  const char *manifest_ct;
  const char *dcd;                /* Docker-Content-Digest override */
  char *blob;
  size_t blob_len;
  char blob_digest[72];
  int fail_500, fail_429, cut, stall_ms;
  bool stall_at_start;            /* stall before any body byte (else halfway) */
  int redirect_port;              /* blob requests redirect to localhost:<port> */
  bool corrupt;
  /* what happened */
  int n_ping, n_token, n_manifest, n_blob;
  char *last_auth, *token_query, *token_auth;
};

/* A blob consumer that keeps everything and counts restarts. */
struct collect {
  struct buf b;
  int restarts;
  bool fail_write;
};

/* The OCI manifest served for every tag. */
extern const char fakereg_manifest[];

struct freg *fakereg_start(enum fake_auth auth);
void fakereg_stop(struct freg *f);
void fakereg_sha256(const void *p, size_t n, char out[72]);
/* "127.0.0.1:<port>" (caller frees). */
char *fakereg_domain(int port);
/* A client with fast retries (5 ms backoff) unless o says otherwise. */
struct registry *fakereg_registry(struct registry_opts *o);
int fakereg_collect_write(void *arg, const void *p, size_t n, err_t **e);
int fakereg_collect_restart(void *arg, err_t **e);
/* Blob f->blob_digest of test/app into c. */
int fakereg_get_blob(struct registry *r, struct freg *f, struct collect *c, bool restartable,
                     const struct registry_creds *cr, const struct registry_io *io, err_t **e);
int fakereg_get_manifest(struct registry *r, int port, const char *ref,
                         const struct registry_creds *cr, struct registry_manifest *m,
                         err_t **e);

#endif
