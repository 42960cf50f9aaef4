/* import_spool.h - the files of an image archive (OCI layout or `docker save` tar),
 * copied out of a stream so they can be read in any order.
 *
 * An archive read from a pipe cannot be rewound, and its manifest may come last
 * (`docker save` writes manifest.json at the end), so spool_read copies every regular
 * file into dir (numbered files, never the archive's names) and hashes it on the way.
 * Only the crisp-pull helper calls this: the archive is untrusted input.
 *
 * Paths are the archive's, cleaned: a leading "./" or "/" dropped, "a/./b" -> "a/b";
 * an entry with a ".." component is refused. Symbolic and hard links are kept as
 * links and followed by spool_find within the archive (docker writes a shared layer
 * once and links it from the other images). Directories and other entry types are
 * ignored. The archive may be gzip or zstd compressed.
 *
 * Errors: ERR_INVALID for a stream that is not a tar or has a refused entry,
 * ERR_RESOURCE over SPOOL_MAX_ENTRIES entries, errno codes for disk failures.
 * Not thread-safe; one struct spool per caller.
 */
#ifndef CRISP_IMAGE_IMPORT_SPOOL_H
#define CRISP_IMAGE_IMPORT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define SPOOL_MAX_ENTRIES 65536

struct spool_file {
  char *path;         /* in the archive, cleaned */
  char *file;         /* the copy under dir; NULL for a link */
  char *link;         /* a link's target, as an archive path; NULL for a file */
  uint64_t size;
  char digest[72];    /* "sha256:<hex>" of the content */
};

struct spool;

/* Reads the whole archive from fd into dir (an existing empty directory). */
int spool_read(int fd, const char *dir, struct spool **out, err_t **e);
void spool_free(struct spool *s);

/* The regular file at path, following links (ERR_NOT_FOUND if absent). */
int spool_find(const struct spool *s, const char *path, const struct spool_file **out, err_t **e);

/* Reads a file of at most max bytes (ERR_RESOURCE over it), NUL-terminated. */
int spool_slurp(const struct spool_file *f, size_t max, char **data, size_t *len, err_t **e);

/* "sha256:<hex>" of data. */
void spool_sha256(const void *data, size_t len, char out[72]);

#endif
