/* manifest.h - image manifests, indexes and image configs, parsed and validated.
 *
 * Everything here reads untrusted registry output: sizes are capped
 * (MANIFEST_MAX_SIZE), every descriptor digest must be "sha256:" + 64 lowercase
 * hex, sizes must be non-negative integers, and documents crisp cannot run are
 * refused with a message that says why (schema1 manifests, foreign or
 * non-distributable layers, layers fetched from external URLs, OCI artifacts
 * whose config is not an image config).
 *
 * Parsed structs are plain owned C data (no JSON tree kept): free them with the
 * matching _free (NULL is a no-op). Parsing functions are pure and thread-safe.
 * Errors are ERR_INVALID for a malformed or refused document, ERR_RESOURCE for
 * one over the size limit, ERR_NOT_FOUND when an index offers no wanted platform.
 */
#ifndef CRISP_IMAGE_MANIFEST_H
#define CRISP_IMAGE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cleanup.h"
#include "base/err.h"

/* Manifests and configs larger than this are refused before parsing. */
#define MANIFEST_MAX_SIZE ((size_t)4 << 20)

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* Accept header for manifest requests. Schema1 is listed last, so that a registry
 * holding only a schema1 manifest sends it and crisp can refuse it by name rather
 * than get a confusing 404. */
#define MANIFEST_ACCEPT                                                        \
  MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST \
  ", " MT_DOCKER_SCHEMA1_SIGNED ";q=0.1, " MT_DOCKER_SCHEMA1 ";q=0.1"

enum manifest_kind {
  MANIFEST_OCI_INDEX = 1,  /* indexes: a list of per-platform manifests */
  MANIFEST_DOCKER_LIST,
  MANIFEST_OCI,            /* image manifests: a config and layers */
  MANIFEST_DOCKER,
};

enum layer_compression { LAYER_TAR = 1, LAYER_GZIP, LAYER_ZSTD };

struct manifest_desc {
  char *media_type;   /* NULL when the document left it out (index entries only) */
  char *digest;       /* validated "sha256:<64 hex>" */
  int64_t size;       /* >= 0 */
};

struct manifest_platform {
  char *os;           /* NULL when absent */
  char *architecture;
  char *variant;
};

struct manifest_entry {   /* one manifest of an index */
  struct manifest_desc desc;
  struct manifest_platform platform;
  bool has_platform;
};

struct manifest_layer {
  struct manifest_desc desc;
  enum layer_compression compression;
};

struct manifest {
  enum manifest_kind kind;
  /* indexes (MANIFEST_OCI_INDEX, MANIFEST_DOCKER_LIST) */
  struct manifest_entry *entries;
  size_t n_entries;
  /* image manifests (MANIFEST_OCI, MANIFEST_DOCKER) */
  struct manifest_desc config;   /* media type is an OCI or Docker image config */
  struct manifest_layer *layers; /* base layer first */
  size_t n_layers;
};

/* Parses a manifest or index. The kind comes from content_type (parameters such
 * as "; charset=utf-8" ignored) when it names one of the four supported types,
 * else from the body's mediaType, else from its shape (OCI without mediaType:
 * "manifests" -> index, "config" + "layers" -> manifest). A Content-Type and a
 * body mediaType that disagree are refused. content_type may be NULL. */
int manifest_parse(const char *content_type, const char *body, size_t len,
                   struct manifest **out, err_t **e);
void manifest_free(struct manifest *m);
DEFINE_CLEANUP(manifest, struct manifest)

bool manifest_is_index(const struct manifest *m);
/* Canonical media type of a kind. */
const char *manifest_kind_media_type(enum manifest_kind k);
/* The compression of an accepted layer media type; -1 and ERR_INVALID with the
 * reason for a refused or unknown one. */
int manifest_layer_compression(const char *media_type, enum layer_compression *out, err_t **e);

/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
bool manifest_digest_valid(const char *digest);

/* The platform a pull wants. Fields are borrowed. variant may be NULL or "". */
struct platform_want {
  const char *os;
  const char *architecture;
  const char *variant;
};
/* linux and the architecture crisp was built for (amd64, arm64, ...), no variant. */
struct platform_want platform_want_host(void);

/* Picks the manifest of an index for a platform. os and architecture must match
 * (aliases normalised: x86_64 -> amd64, aarch64 -> arm64; arm64 "v8" and amd64
 * "v1" count as no variant). Among those, an entry whose variant equals the
 * wanted one is preferred, then an entry with no variant; an entry with another
 * variant never matches (it may need a newer CPU). Ties go to the first entry.
 * *out points into ix. No match is ERR_NOT_FOUND listing what the index offers. */
int manifest_select_platform(const struct manifest *ix, const struct platform_want *want,
                             const struct manifest_desc **out, err_t **e);

/* A NULL-terminated string vector; n excludes the NULL. Empty: items NULL, n 0. */
struct image_strv {
  char **items;
  size_t n;
};

struct image_label {
  char *key;
  char *value;
};

struct image_history {
  char *created;      /* NULL when absent */
  char *created_by;
  bool empty_layer;
};

/* The parts of an OCI / Docker image config that a runtime uses. */
struct image_config {
  char *os;                    /* NULL when absent */
  char *architecture;
  char *variant;
  char *created;
  char *user;                  /* config.User, NULL when unset */
  struct image_strv env;       /* "KEY=value" */
  struct image_strv entrypoint;
  struct image_strv cmd;
  char *working_dir;
  struct image_strv volumes;   /* keys of config.Volumes */
  struct image_strv exposed_ports; /* keys of config.ExposedPorts ("80/tcp") */
  struct image_label *labels;
  size_t n_labels;
  char *stop_signal;
  struct image_strv diff_ids;  /* validated digests, base layer first */
  struct image_history *history;
  size_t n_history;
};

/* Parses an image config. rootfs.type must be "layers" and every diff_id valid. */
int image_config_parse(const char *body, size_t len, struct image_config **out, err_t **e);
void image_config_free(struct image_config *c);
DEFINE_CLEANUP(image_config, struct image_config)

/* The config's diff_ids must pair one to one with the manifest's layers. */
int image_config_check_layers(const struct image_config *c, const struct manifest *m, err_t **e);

#endif
