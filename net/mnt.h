/* mnt.h - unmounting what net/ mounts under a pod's state dir.
 * Thread-safety: plain system calls. */
#ifndef CRISP_NET_MNT_H
#define CRISP_NET_MNT_H

#include "base/err.h"

/* Detaches (MNT_DETACH, not following a final symlink) every mount stacked on path.
 * A path that is no mount point, or does not exist, is success: teardown may run
 * again after a crash or a partial setup. */
int mnt_detach_all(const char *path, err_t **e);

#endif
