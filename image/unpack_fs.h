/* unpack_fs.h - the filesystem half of layer unpacking (internal to image/, used by
 * unpack.c and the tests; other code calls unpack_layer in unpack.h).
 *
 * It applies tar entries, already decoded into plain structs, to a layer directory with
 * the safety rules and overlayfs whiteout conversion described in unpack.h. It knows
 * nothing of tar or compression; unpack.c knows nothing of the filesystem.
 *
 * Ownership: struct unpack_fs is owned by the caller (unpack_fs_free); an entry and its
 * strings are only borrowed during unpack_fs_apply.
 * Errors: see unpack.h; messages name the entry: `layer entry "<path>": <reason>`.
 * Thread-safety: one struct unpack_fs per thread.
 */
#ifndef CRISP_IMAGE_UNPACK_FS_H
#define CRISP_IMAGE_UNPACK_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base/err.h"

enum unpack_kind {
  UNPACK_FILE = 1,
  UNPACK_DIR,
  UNPACK_SYMLINK,
  UNPACK_HARDLINK,
  UNPACK_CHAR,
  UNPACK_BLOCK,
  UNPACK_FIFO,
};

struct unpack_xattr {
  const char *name;
  const void *value;
  size_t size;
};

struct unpack_entry {
  const char *path;         /* as written in the tar */
  enum unpack_kind kind;
  mode_t perm;              /* 07777 bits */
  uid_t uid;
  gid_t gid;
  struct timespec mtime;    /* tv_nsec = UTIME_OMIT when the tar has none */
  struct timespec atime;
  dev_t rdev;               /* devices */
  const char *link;         /* symlink target (stored as is) or hardlink target (a layer path) */
  uint64_t size;            /* regular files */
  const struct unpack_xattr *xattrs;
  size_t n_xattrs;
};

/* Supplies a regular file's data: 1 with the next block (*off is its offset in the file),
 * 0 at the end, -1 with *e set on failure. */
typedef int (*unpack_data_fn)(void *arg, const void **buf, size_t *len, int64_t *off,
                              err_t **e);

struct unpack_fs;

/* Opens dest_dir (an existing directory) as the layer root. */
int unpack_fs_open(const char *dest_dir, struct unpack_fs **out, err_t **e);
void unpack_fs_free(struct unpack_fs *fs);

/* Applies one entry. data is called only for UNPACK_FILE. */
int unpack_fs_apply(struct unpack_fs *fs, const struct unpack_entry *en, unpack_data_fn data,
                    void *arg, err_t **e);

/* Applies the deferred directory owners, modes and times; call once, after the last entry. */
int unpack_fs_finish(struct unpack_fs *fs, err_t **e);

uint64_t unpack_fs_xattrs_skipped(const struct unpack_fs *fs);

/* A tar name quoted and escaped for an error message, cut short if huge (caller frees). */
char *unpack_quote_name(const char *name);

/* Cleans a layer path: leading '/', empty and "." components dropped, ".." applied
 * lexically. *out is "" for the root (caller frees). ERR_INVALID if ".." climbs above the
 * root or raw is longer than UNPACK_PATH_MAX. */
int unpack_path_clean(const char *raw, char **out, err_t **e);

#endif
