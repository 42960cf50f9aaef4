/* unpack_layers.h - building layer blobs and checking their extraction, for the unpack
 * tests (unpack_test.c, unpack_escape_test.c). Each test gets a fresh temporary directory
 * tl_dir holding tl_root (where layers are unpacked) and tl_sentinel (a directory holding
 * one file, "keep", that no layer may ever change). Failures abort the test (cr_assert). */
#ifndef CRISP_TEST_UNPACK_LAYERS_H
#define CRISP_TEST_UNPACK_LAYERS_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/err.h"
#include "image/unpack.h"

#define TL_MTIME 1700000000

/* One tar entry to write. Zero fields take defaults: a regular file, 0644 (dirs 0755),
 * owner 0:0, mtime TL_MTIME. */
struct tl_ent {
  const char *path;
  mode_t type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFBLK, AE_IFIFO */
  mode_t perm;
  const char *data;     /* file contents */
  const char *link;     /* symlink target */
  const char *hardlink; /* hardlink target */
  int uid, gid;
  time_t mtime;
  unsigned major, minor;
  const char *xname;    /* one xattr */
  const void *xval;
  size_t xlen;
};

#define TL_N(a) (sizeof(a) / sizeof((a)[0]))

extern char tl_dir[64];
extern char *tl_root, *tl_sentinel;

/* Criterion .init/.fini of the unpack suite. */
void tl_setup(void);
void tl_teardown(void);

/* A tar (pax) of ents, and data compressed with an ARCHIVE_FILTER_* (caller frees both). */
struct buf tl_make_tar(const struct tl_ent *ents, size_t n);
struct buf tl_compress(const struct buf *data, int filter);
/* A raw ustar header block (and data), for entries libarchive's writer will not make. */
void tl_ustar_block(struct buf *b, const char *name, char type, const char *link,
                    const char *data);
void tl_sha256(const void *p, size_t n, char out[UNPACK_DIGEST_LEN + 1]);

/* unpack_layer of a blob in memory (through a memfd) into tl_root. */
int tl_unpack_blob(const void *p, size_t n, const struct unpack_opts *o,
                   struct unpack_result *res, err_t **e);
/* The same for the uncompressed tar of ents. */
int tl_unpack_ents(const struct tl_ent *ents, size_t n, struct unpack_result *res, err_t **e);
#define TL_UNPACK_OK(ents)                                                   \
  do {                                                                    \
    struct unpack_result r_;                                              \
    err_t *e_ = NULL;                                                     \
    int rc_ = tl_unpack_ents(ents, TL_N(ents), &r_, &e_);                       \
    cr_assert_eq(rc_, 0, "unpack failed: %s", e_ ? e_->msg : "");         \
  } while (0)

/* The layer fails with ERR_INVALID, the message names `entry` and says `why`, and
 * nothing outside tl_root changed. */
void tl_expect_refused(const struct tl_ent *ents, size_t n, const char *entry, const char *why);
/* Nothing but root/ and sentinel/keep ("keep") exists in tl_dir. */
void tl_assert_outside_untouched(void);

/* Paths relative to tl_root: a new string, lstat (must exist), exists, contents. */
char *tl_path(const char *rel);
struct stat tl_lstat(const char *rel);
bool tl_exists(const char *rel);
char *tl_read(const char *rel);

#endif
