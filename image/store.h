/* store.h - crisp's on-disk image store: content blobs, unpacked layers, image records.
 *
 * Layout under the root (e.g. /var/lib/crisp); every name below is written by crisp only:
 *
 *   lock                               flock()ed while a store is open: one process per root
 *   content/blobs/sha256/<hex>         manifests, indexes, configs (verified against <hex>)
 *   layers/<chain-hex>/                an unpacked layer, used as an overlay lowerdir
 *   layers/<chain-hex>.json            its metadata (chain id, diff id, blob digest and size,
 *                                      parent); written before the directory is renamed into
 *                                      place, so a directory without metadata is garbage
 *   images/<id-hex>.json               one image record (struct image_record)
 *   holds/<holder>.json                the layers a holder (a container) keeps alive
 *   quarantine/                        corrupt files found on open, kept for inspection
 *
 * Anything named "*.tmp-*" is work in progress (file_write_atomic temps, layers being
 * unpacked, layers being deleted) and is removed by store_open. Every file is replaced
 * atomically (temp + fsync + rename + fsync of the directory), so a crash at any point
 * leaves either the old or the new state, never a partial one. Holds are the exception:
 * written atomically but not waited onto the disk (see store_layers_hold).
 *
 * store_open loads everything and repairs what a crash can leave behind:
 *   - "*.tmp-*" debris is removed;
 *   - a layer directory without metadata, or metadata without its directory, is removed;
 *   - a file that does not parse, misses fields, has a digest crisp does not know, or
 *     whose name disagrees with its content is moved to quarantine/ with a log_warn;
 *   - an image record whose layers or config blob are gone is quarantined the same way
 *     (kubelet then pulls the image again);
 *   - a tag or repo digest found on two records (a crash while moving it) stays on the
 *     record pulled last and is removed from the other;
 *   - layers and blobs that no record or holder references (a pull that failed or
 *     crashed) are deleted.
 *
 * Digests are "sha256:" followed by 64 lowercase hex digits; no other algorithm is
 * accepted. Image IDs are config digests.
 *
 * Thread-safety: every function may be called from any thread on one struct store,
 * except store_open and store_close. One mutex guards the in-memory index; small
 * record files are written under it, while layer unpacking, tree deletion and usage
 * walks run outside it.
 *
 * Errors follow base/err.h: ERR_INVALID for malformed arguments, ERR_NOT_FOUND for
 * missing objects, ERR_PRECONDITION for an operation the store's state refuses.
 */
#ifndef CRISP_IMAGE_STORE_H
#define CRISP_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cleanup.h"
#include "base/err.h"
#include "base/quarantine.h"

#define STORE_DIGEST_LEN 71                /* strlen("sha256:") + 64 */
#define STORE_DIGEST_BUF (STORE_DIGEST_LEN + 1)
#define STORE_ID_PREFIX_MIN 12             /* shortest image ID prefix looked up */

struct store;

/* Opens (creating if needed) the store under root and loads it. Fails with
 * ERR_PRECONDITION if another process has it open. *out is freed with store_close. */
int store_open(const char *root, struct store **out, err_t **e);
/* Frees the store. No other call on s may be running or follow. NULL is a no-op. */
void store_close(struct store *s);

/* Reads the store under root the way store_open does, filling *r (counts of blobs,
 * layers, holds and images; each problem). r->check_only: nothing on disk changes (no
 * quarantine, no clean-up); otherwise it repairs as store_open does, and the caller
 * must hold the root's lock (store_lock). */
int store_check(const char *root, struct store_report *r, err_t **e);
/* Takes root's lock as store_open does (ERR_PRECONDITION while a crispd serves root);
 * *fd holds it until closed. */
int store_lock(const char *root, int *fd, err_t **e);

/* ---- digests ------------------------------------------------------------------ */

/* True for "sha256:" + 64 lowercase hex digits. */
bool store_digest_valid(const char *digest);
/* The OCI chain ID of a layer: its diff ID for the base layer (parent NULL), else
 * "sha256:" + hex(sha256(parent + " " + diff_id)). ERR_INVALID for a malformed digest. */
int store_chain_id(const char *parent, const char *diff_id, char out[STORE_DIGEST_BUF],
                   err_t **e);

/* ---- content blobs ------------------------------------------------------------- */

/* Stores data under digest after checking that sha256(data) matches it (ERR_INVALID
 * otherwise). Storing a blob that is already there succeeds. Blobs are kept while an
 * image record names them (manifest_digest, config_digest); any other blob (an index,
 * a failed pull's) lives until the next store_open. */
int store_put_blob(struct store *s, const char *digest, const void *data, size_t len,
                   err_t **e);
/* Reads a blob into *data (NUL-terminated, caller frees) and *len. ERR_NOT_FOUND if
 * absent; ERR_INTERNAL if its content no longer matches its digest. */
int store_get_blob(struct store *s, const char *digest, char **data, size_t *len, err_t **e);

/* ---- layers --------------------------------------------------------------------- */

enum store_layer_state {
  STORE_LAYER_PRESENT,   /* the layer is unpacked: use store_layer_path */
  STORE_LAYER_YOURS,     /* the caller unpacks it into *tmpdir, then commits or aborts */
};

/* What the unpacker learnt about a layer. */
struct store_layer_info {
  const char *parent;       /* chain ID of the layer below, NULL for the base layer */
  const char *diff_id;      /* digest of the uncompressed tar */
  const char *blob_digest;  /* digest of the blob as downloaded */
  uint64_t blob_size;       /* its size in bytes (counted in the image size) */
};

/* Claims a layer so that it is unpacked once however many pulls want it:
 *   PRESENT: it is already there (*tmpdir is NULL);
 *   YOURS:   the caller must unpack into *tmpdir (an empty directory it owns; free the
 *            string) and then call store_layer_commit or store_layer_abort, exactly once;
 *   otherwise another caller is unpacking it: this call blocks until that one commits
 *   (-> PRESENT) or aborts (-> the first waiter to wake gets YOURS).
 * deadline_ns is an absolute CLOCK_MONOTONIC time, 0 for none; passing it while still
 * waiting is ERR_DEADLINE. */
int store_layer_begin(struct store *s, const char *chain_id, int64_t deadline_ns,
                      enum store_layer_state *state, char **tmpdir, err_t **e);
/* Publishes the layer unpacked in tmpdir: checks that chain_id is the chain ID of
 * info->parent and info->diff_id (ERR_INVALID), syncs the filesystem, writes the metadata
 * and renames the directory into place, then wakes the waiters. On failure the caller
 * still owns the claim and must call store_layer_abort. */
int store_layer_commit(struct store *s, const char *chain_id, const char *tmpdir,
                       const struct store_layer_info *info, err_t **e);
/* Gives up a YOURS claim: removes tmpdir and lets a waiter take over. A call that
 * does not match a claim (wrong chain ID or tmpdir) is ignored. */
void store_layer_abort(struct store *s, const char *chain_id, const char *tmpdir);
/* The directory of a present layer in *out (caller frees); ERR_NOT_FOUND otherwise.
 * It is "<root>/layers/<chain hex>": overlay's mount options must fit in a page, so a
 * caller stacking many layers mounts from inside layers/ with the bare hex names. */
int store_layer_path(struct store *s, const char *chain_id, char **out, err_t **e);

/* Layer holds: the contract for containers. A layer is deleted only when no image record
 * and no holder names it. Before mounting a rootfs, a container calls
 * store_layers_hold(s, container_id, chain_ids, n) with its image's chain IDs; after
 * unmounting it for good, store_layers_release(s, container_id). Holds are persisted, so
 * they survive a daemon restart; after one, crispd compares store_layers_holders with the
 * containers it knows, releases the rest and holds again for a container without one.
 * A hold is not waited onto the disk when made (CreateContainer's hot path): deleting an
 * image record, or a hold whose layers no image record names, first fsyncs the pending
 * holds, so no layer loses its last reference on the disk to a power loss while it is
 * held. A power loss can still take a hold whose layers an image record names; the
 * caller holds again at start (cri/recover.c).
 *
 * holder is 1-128 of [A-Za-z0-9_.-], not starting with '.'. Holding replaces the holder's
 * previous set (so it is idempotent); every layer must be present (ERR_NOT_FOUND).
 * Releasing an unknown holder succeeds; releasing deletes the layers nothing else uses. */
int store_layers_hold(struct store *s, const char *holder, const char *const *chain_ids,
                      size_t n, err_t **e);
int store_layers_release(struct store *s, const char *holder, err_t **e);
/* The current holders, sorted (caller frees each string and the array). */
int store_layers_holders(struct store *s, char ***out, size_t *n, err_t **e);

/* ---- images ---------------------------------------------------------------------- */

struct image_record {
  char *id;               /* "sha256:<hex>", the config digest */
  char **repo_tags;       /* normalised: "docker.io/library/busybox:latest" */
  size_t n_tags;
  char **repo_digests;    /* "docker.io/library/busybox@sha256:<hex>" */
  size_t n_digests;
  uint64_t size;          /* layer blob sizes + config size; computed by the store */
  char *manifest_digest;  /* the platform manifest the image was pulled from */
  char *config_digest;    /* equal to id (NULL on add means id) */
  char **chain_ids;       /* bottom layer first */
  size_t n_layers;
  int64_t pulled_at_ns;   /* CLOCK_REALTIME; 0 on add means now */
  bool pinned;            /* kubelet's GC leaves pinned images alone */
};

/* Adds an image, or merges into the record with the same id: tags and digests are
 * united, pinned is or-ed, manifest, layers and pull time come from r. Each of r's tags
 * and digests is taken off any other image that has it (an image left with none stays,
 * listed without names). The layers and the config and manifest blobs must be in the
 * store already (ERR_PRECONDITION). r->size is ignored. The caller keeps r.
 *
 * A pull that races with the removal of the last image sharing its layers can find
 * them gone here (ERR_PRECONDITION): the caller retries the pull. */
int store_image_add(struct store *s, const struct image_record *r, err_t **e);

enum store_key {
  STORE_KEY_ANY,     /* any of the forms below, told apart by shape */
  STORE_KEY_ID,      /* "sha256:<hex>" or bare "<hex>" (64 digits) */
  STORE_KEY_PREFIX,  /* a unique ID prefix of >= 12 hex digits, with or without "sha256:" */
  STORE_KEY_TAG,     /* "docker.io/library/busybox:latest" */
  STORE_KEY_DIGEST,  /* "docker.io/library/busybox@sha256:<hex>" */
};
/* Finds an image and hands out a copy (free with image_record_free). ERR_NOT_FOUND if
 * none matches, ERR_INVALID for an ambiguous prefix or a key of the wrong shape. */
int store_image_lookup(struct store *s, enum store_key kind, const char *key,
                       struct image_record **out, err_t **e);
/* store_image_lookup(s, STORE_KEY_ANY, key, out, e) */
int store_image_find(struct store *s, const char *key, struct image_record **out, err_t **e);
/* Copies of every record, oldest pull first (free with image_record_list_free). */
int store_image_list(struct store *s, struct image_record ***out, size_t *n, err_t **e);
/* Removes the image with this ID (full or bare 64 hex) with all its tags, then deletes
 * the layers and blobs nothing else references. A missing image is success. */
int store_image_remove(struct store *s, const char *id, err_t **e);
/* The config blob of an image found by any key (caller frees *data). */
int store_image_config(struct store *s, const char *key, char **data, size_t *len, err_t **e);
/* What a failed pull leaves: deletes those of the listed layers (chain IDs) and blobs
 * that no image record and no holder references; a layer still being unpacked stays.
 * A pull that found one of them present then gets ERR_PRECONDITION from store_image_add
 * and retries, as after a removal. */
void store_collect(struct store *s, char *const *chain_ids, size_t n_chains,
                   char *const *digests, size_t n_digests);

struct image_record *image_record_dup(const struct image_record *r);
void image_record_free(struct image_record *r);
void image_record_list_free(struct image_record **v, size_t n);
DEFINE_CLEANUP(image_record, struct image_record)

/* ---- usage ------------------------------------------------------------------------ */

/* Bytes (allocated blocks, as `du -x` counts them) and inodes used by the store's
 * directories (content, layers, images, holds, quarantine), each hard-linked inode once,
 * and, unless mountpoint is NULL, the mount point of the filesystem that holds the root
 * (longest matching entry of /proc/self/mountinfo; caller frees). The walk runs outside
 * the lock and is cached until the store next changes, so polling it is cheap. */
int store_usage(struct store *s, uint64_t *bytes, uint64_t *inodes, char **mountpoint,
                err_t **e);

#endif
