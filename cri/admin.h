/* admin.h - crispd's admin socket: node operations that are not CRI calls.
 *
 * `<state>/admin.sock`, a unix stream socket created mode 0600 (root only; crispd also
 * checks the peer's uid with SO_PEERCRED), speaks a tiny line protocol, one request
 * per connection:
 *
 *   client -> crispd  "import\n" or "import <name>\n", sent with the archive's open
 *                     descriptor attached (SCM_RIGHTS), so the archive may be a pipe
 *                     (stdin) or a file crispd itself could not open by path
 *   crispd -> client  "image <id> [<name>...]\n" per image imported, then
 *                     "ok\n", or "error <one line>\n" (nothing was imported)
 *
 * The archive goes to a crisp-pull helper (image_import): crispd parses none of it.
 * A client that disconnects cancels its import. It is not gRPC on purpose: kubelet
 * never imports, and a root-only socket keeps `crispd images import` off the CRI
 * socket, whose permissions a node may loosen for monitoring tools.
 */
#ifndef CRISP_CRI_ADMIN_H
#define CRISP_CRI_ADMIN_H

#include <stdio.h>

#include "base/err.h"

#define ADMIN_SOCKET_NAME "admin.sock"
#define ADMIN_LINE_MAX 4096

struct admin;
struct cri;

/* Binds <state>/admin.sock and serves it on a thread of its own. */
int admin_start(struct cri *d, struct admin **out, err_t **e);
/* Stops accepting, cancels imports under way, waits for them, removes the socket.
 * NULL is a no-op. */
void admin_stop(struct admin *a);

/* The client side: imports the archive open on fd through the admin socket at path;
 * name may be NULL. Writes one line per image imported to out. ERR_UNAVAILABLE when
 * crispd is not there, ERR_PERMISSION when the socket refuses the caller, else the
 * error crispd reported. */
int admin_import(const char *socket_path, int fd, const char *name, FILE *out, err_t **e);

#endif
