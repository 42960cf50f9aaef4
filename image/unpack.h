/* unpack.h - streams one image layer blob into an overlay lower directory, in one pass.
 *
 * unpack_layer reads the blob from fd exactly as the registry serves it (uncompressed,
 * gzip or zstd tar; the compression is detected), and in the same pass hashes the raw
 * bytes (the blob digest), decompresses, hashes the tar stream (the diff_id) and extracts
 * it into dest_dir. Bytes after the tar end-of-archive marker are read and hashed too, so
 * both digests cover the whole stream. A stream that ends right after its last entry's
 * data, without the padding to 512 bytes and the end-of-archive blocks (umoci writes
 * such layers; Go's archive/tar, so containerd, reads them), is complete; one cut
 * anywhere else is not. unpack only reports the digests: the caller
 * compares them with the manifest and the image config before trusting dest_dir.
 *
 * dest_dir must be an existing, empty directory private to the caller. The result is an
 * overlayfs lower directory: OCI whiteouts become what overlayfs reads natively:
 *   dir/.wh.name       -> dir/name, a 0:0 character device
 *   dir/.wh..wh..opq   -> xattr trusted.overlay.opaque="y" on dir
 * ".wh." entries are never extracted as files, and a path using a ".wh." name as a
 * directory is refused. Within the layer a later entry replaces an earlier one with the
 * same path, whatever the types.
 *
 * Safety: nothing is ever created, changed or followed outside dest_dir. Leading "/" is
 * dropped (paths are relative to the layer root, as containerd does) and "a/../b" is
 * cleaned lexically, but an entry or hardlink target whose ".." climbs above the root,
 * or whose parent directory is a symlink (even one the layer itself made), fails the
 * layer with ERR_INVALID naming the entry. Every parent is opened component by component
 * with O_NOFOLLOW from a descriptor of dest_dir. Symlink targets are stored as given and
 * never followed. Hardlinks must name an entry already extracted and not a directory;
 * data a hardlink entry carries is ignored (it would be written through the link), and so
 * are its owner, mode and times (they belong to the inode the target already has).
 * Metadata: modes including setuid/setgid/sticky, numeric uid/gid (names are ignored),
 * mtimes, devices, fifos and xattrs. Directory modes and times are applied after all
 * contents so a read-only directory cannot block its children. Xattrs: "trusted.*" from
 * the layer is skipped (a layer must not forge overlayfs metadata such as opaque or
 * redirect); "security.*" failing with EPERM/EINVAL/ENOTSUP (no privilege, a label the
 * host's LSM does not know, no support), "user.*" failing with ENOTSUP/EPERM (the kernel
 * allows user xattrs only on files and directories) and any xattr failing with ENOTSUP
 * are skipped; every skip is counted in xattrs_skipped and nothing is logged; any other
 * xattr failure fails the layer. Sockets in a tar are skipped.
 *
 * Errors: ERR_INVALID for a hostile or malformed layer (escape attempt, path over
 * UNPACK_PATH_MAX, unsupported entry type, not a tar, doubly compressed); ERR_RESOURCE
 * for an entry over max_entry_size; ERR_CANCELLED when opts->cancelled said stop; errno
 * based codes for failing system calls. On failure dest_dir holds a partial layer the
 * caller must delete; fd is left wherever reading stopped.
 *
 * Thread-safety: unpack_layer keeps no global state; run as many at once as you like,
 * each on its own fd and dest_dir. The callbacks run on the calling thread.
 * Requires /proc (xattrs on symlinks and devices are set through /proc/self/fd) and,
 * for devices, ownership and trusted.* xattrs, CAP_MKNOD/CAP_CHOWN/CAP_SYS_ADMIN.
 */
#ifndef CRISP_IMAGE_UNPACK_H
#define CRISP_IMAGE_UNPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

#define UNPACK_PATH_MAX 4096   /* longest entry path or link target accepted */
#define UNPACK_DIGEST_LEN 71   /* "sha256:" + 64 hex */

struct unpack_opts {
  /* Returns true to stop; asked before every entry and every read of the blob. */
  bool (*cancelled)(void *arg);
  /* Told the blob bytes read so far, after every read. */
  void (*progress)(void *arg, uint64_t blob_bytes);
  void *arg;
  uint64_t max_entry_size;   /* 0: no cap; otherwise a larger file fails with ERR_RESOURCE */
};

struct unpack_result {
  char blob_digest[UNPACK_DIGEST_LEN + 1];  /* "sha256:<hex>" of the bytes read from fd */
  char diff_id[UNPACK_DIGEST_LEN + 1];      /* "sha256:<hex>" of the uncompressed tar */
  uint64_t blob_size;       /* bytes read from fd */
  uint64_t tar_size;        /* bytes of the uncompressed stream */
  uint64_t files;           /* tar entries applied (files, dirs, links, devices, whiteouts) */
  uint64_t xattrs_skipped;  /* xattrs not set, see above */
};

/* o may be NULL. *out is filled only on success. */
int unpack_layer(int fd, const char *dest_dir, const struct unpack_opts *o,
                 struct unpack_result *out, err_t **e);

#endif
