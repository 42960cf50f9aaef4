/* pull.h - pulling an image into the store, with the network and unpacking in a child.
 *
 * crispd never parses registry responses or tarballs itself: image_pull starts the
 * crisp-pull helper (pull_child_main), which fetches and verifies the manifest and the
 * config, then downloads, verifies and unpacks the layers crispd assigns it, each into
 * a temp directory the store handed out, streaming (download -> sha256 of the blob ->
 * decompress -> sha256 of the diff -> untar) in one pass, several layers at once.
 * crispd owns the store: it stores the manifest and config blobs, claims each layer
 * (a layer another pull is unpacking is waited for, a present one is skipped), commits
 * what the child reports after checking the digests against the manifest and config,
 * and adds the image record last, so nothing partial is ever visible. The child dies
 * with the pulling thread (PDEATHSIG) and on any cancellation.
 *
 * The two sides talk in JSON lines over the child's stdin and stdout:
 *   crispd -> child  {"ref":..,"creds":{..},"registries":{..},"parallel":N}
 *   child -> crispd  {"type":"image","manifest":"<json>","manifest_digest":..,
 *                     "index":"<json>","index_digest":..,"config":"<json>",
 *                     "config_digest":..,"layers":[{"digest","size","diff_id"}..]}
 *   crispd -> child  {"unpack":i,"dir":"<tmpdir>"}   (per layer to fetch), then {"end":true}
 *   child -> crispd  {"type":"layer","index":i,"blob_digest","diff_id","blob_size"}
 *                    {"type":"error","code":"<err code>","message":".."}
 * Progress goes to the log (the child's stderr is crispd's), at most once a second.
 *
 * Thread-safety: image_pull may run on many threads at once on one struct puller.
 */
#ifndef CRISP_IMAGE_PULL_H
#define CRISP_IMAGE_PULL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "image/store.h"

struct pull_registry_conf {
  const char *host;
  const char *const *endpoints;
  size_t n;
};

struct puller_opts {
  struct store *store;
  const char *helper;         /* path of crisp-pull */
  const struct pull_registry_conf *mirrors;
  size_t n_mirrors;
  const char *const *insecure;
  size_t n_insecure;
  const char *auth_file;      /* NULL = none */
  int parallel;               /* layers fetched at once */
};

struct pull_creds {
  const char *username, *password, *auth, *identity_token, *registry_token;
};

struct pull_request {
  const char *image;          /* as the user wrote it */
  struct pull_creds creds;
  bool (*cancelled)(void *arg);  /* polled; true stops the pull (ERR_CANCELLED) */
  void *arg;
  long long deadline_ms;      /* CLOCK_MONOTONIC ms; 0 = none */
};

struct puller;

int puller_new(const struct puller_opts *o, struct puller **out, err_t **e);
void puller_free(struct puller *p);

/* Pulls req->image; *image_ref receives the image ID ("sha256:..", caller frees). */
int image_pull(struct puller *p, const struct pull_request *req, char **image_ref, err_t **e);

/* ---- import: images from an archive instead of a registry ---------------------------
 *
 * image_import hands archive_fd (an OCI image layout or `docker save` tar, possibly
 * gzip/zstd compressed) to a crisp-pull helper in import mode, which copies it into a
 * private directory under spool_parent, checks every blob against its digest and sends
 * each image as a pull would; crispd stores and commits it exactly as a pulled one and
 * adds the image records only once every image of the archive is complete, so a bad
 * archive (not a tar, a digest mismatch, a missing blob, an unsupported media type)
 * leaves nothing. Images are named from the archive (OCI org.opencontainers.image.ref.name
 * when it is a whole reference, containerd's io.containerd.image.name, docker RepoTags),
 * normalised like references; name, when given, replaces them (one image only). */
struct import_request {
  int archive_fd;             /* becomes the helper's fd 3; the caller keeps it */
  const char *name;           /* NULL: the archive's names */
  const char *spool_parent;   /* a directory on the store's filesystem */
  bool (*cancelled)(void *arg);
  void *arg;
};

struct import_result {
  char *id;                   /* "sha256:..", the config digest */
  char **names;               /* normalised tags */
  size_t n_names;
};

/* *out holds one entry per image (free with import_results_free). */
int image_import(struct puller *p, const struct import_request *r, struct import_result **out,
                 size_t *n, err_t **e);
void import_results_free(struct import_result *v, size_t n);

/* Removes spool directories a crispd that died mid-import left under spool_parent. */
void image_import_cleanup(const char *spool_parent);

/* The child: reads the job from in_fd, talks on out_fd; returns 0 or -1. */
int pull_child_main(int in_fd, int out_fd, err_t **e);

#endif
