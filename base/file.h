/* file.h - safe file helpers. Every descriptor is O_CLOEXEC. */
#ifndef CRISP_BASE_FILE_H
#define CRISP_BASE_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"

/* Reads all of fd into a NUL-terminated *out (caller frees). More than max bytes is
 * ERR_RESOURCE, so a hostile file cannot exhaust memory. */
int fd_read_all(int fd, size_t max, char **out, size_t *len, err_t **e);
/* Same for a path; a missing file is ERR_NOT_FOUND. */
int file_read_all(const char *path, size_t max, char **out, size_t *len, err_t **e);
/* Writes all of data to fd, retrying short writes and EINTR. */
int fd_write_all(int fd, const void *data, size_t len, err_t **e);

/* Replaces path atomically: a temp file in the same directory, written, fsynced,
 * renamed over path, then the directory fsynced. A reader sees the old content or
 * the new, never a mix; a crash leaves at most a stray "<name>.tmp-*" file. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, err_t **e);
/* The same without the fsyncs: atomic for every reader and across a crash of the
 * process, not across a power loss (the rename may then be lost, the old content
 * stays). For what recovery can do without: a record of work in progress. */
int file_write_atomic_nosync(const char *path, const void *data, size_t len, mode_t mode,
                             err_t **e);

/* mkdir -p with mode for the directories it creates. */
int mkdir_p(const char *path, mode_t mode, err_t **e);

/* "a" + "/" + "b" (xalloc; caller frees). */
char *path_join(const char *a, const char *b);

/* Removes path and, for a directory, everything below it without crossing into
 * other mounts. A missing path is success. */
int rm_rf(const char *path, err_t **e);

#endif
