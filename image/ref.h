/* ref.h - image references ("busybox", "registry.k8s.io/pause:3.10", "x@sha256:...").
 *
 * image_ref_parse checks a reference against the distribution reference grammar and
 * normalises it the way docker and containerd do:
 *   - the first path component is a registry host only if it contains '.' or ':' or is
 *     "localhost"; otherwise the registry is "docker.io" ("index.docker.io" is mapped to
 *     "docker.io" too);
 *   - on docker.io a one-component repository gets "library/";
 *   - the tag defaults to "latest" only when neither tag nor digest is given.
 * Unlike docker, an uppercase first component ("Foo/bar") is not taken as a registry host:
 * it is a repository name and is refused for not being lowercase, so a typo never makes
 * crisp contact a host named after it.
 * Digests must be "sha256:" + 64 lowercase hex: crisp verifies only sha256, so any other
 * algorithm is refused rather than accepted unverifiable. A bare image ID (64 hex) is not
 * a reference; image_ref_is_id recognises those.
 *
 * Errors: ERR_INVALID, message `invalid reference "<input>": <what is wrong>`.
 * Ownership: a parsed struct image_ref owns its strings; image_ref_clear frees them.
 * The formatting functions return a new string the caller frees.
 * Thread-safety: no shared state; a struct may be read by many threads at once.
 */
#ifndef CRISP_IMAGE_REF_H
#define CRISP_IMAGE_REF_H

#include "base/err.h"

#define IMAGE_REF_NAME_MAX 255   /* domain + "/" + path, as in the reference grammar */
#define IMAGE_REF_TAG_MAX 128
#define IMAGE_ID_LEN 71          /* "sha256:" + 64 hex; buffers are IMAGE_ID_LEN + 1 */

struct image_ref {
  char *domain;  /* "docker.io", "localhost:5000", "[::1]:5000" */
  char *path;    /* "library/busybox" */
  char *tag;     /* "latest"; NULL when only a digest was given */
  char *digest;  /* "sha256:<64 hex>"; NULL when absent */
};

/* Parses and normalises s into *out (zeroed first; on failure it stays empty). */
int image_ref_parse(const char *s, struct image_ref *out, err_t **e);

/* "docker.io/library/busybox" */
char *image_ref_name(const struct image_ref *r);
/* Fully qualified: name, then ":tag" and/or "@digest" ("docker.io/library/busybox:latest").
 * When both are present both are kept; whoever pulls must pull by the digest. */
char *image_ref_string(const struct image_ref *r);
/* The short form people type, for logs: "busybox:latest", "foo/bar@sha256:...",
 * "registry.k8s.io/pause:3.10" (docker.io and library/ dropped). */
char *image_ref_familiar(const struct image_ref *r);

void image_ref_clear(struct image_ref *r);

/* 1 if s is an image ID, "sha256:<64 lowercase hex>" or the bare 64 hex, and then out
 * holds the "sha256:<hex>" form; 0 otherwise (out untouched). */
int image_ref_is_id(const char *s, char out[IMAGE_ID_LEN + 1]);

#endif
