/* trash.h - directories deleted off the caller's path.
 *
 * RemoveContainer must forget a container at once, but deleting its writable layer
 * file by file can take longer than everything else the call does. So a directory is
 * renamed into a trash directory on the same filesystem (one atomic rename: from then
 * on it is gone for every reader and for a crispd restart) and a background thread
 * deletes it. What a crash leaves in the trash is deleted at the next start.
 * Thread-safe.
 */
#ifndef CRISP_CRI_TRASH_H
#define CRISP_CRI_TRASH_H

#include <stddef.h>

#include "base/err.h"

struct trash;

/* Trash dirs <dir>/trash for each of dirs[0..n) (created), and the thread that empties
 * them, starting with what an earlier crispd left there. */
int trash_open(const char *const *dirs, size_t n, struct trash **out, err_t **e);
/* Empties the trash still queued (bounded by nothing: deletion is local) and stops. */
void trash_close(struct trash *t);

/* Moves path (which must be under one of the trash's dirs) into that dir's trash and
 * queues its deletion. A missing path is fine. Where the rename cannot be done (another
 * filesystem below), path is deleted here and now. */
int trash_put(struct trash *t, const char *path, err_t **e);

/* Waits until everything queued so far is deleted (tests). */
void trash_flush(struct trash *t);

#endif
