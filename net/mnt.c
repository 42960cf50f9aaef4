#include "net/mnt.h"

#include <errno.h>
#include <sys/mount.h>

/* More than a retried setup could ever stack; beyond it something keeps mounting. */
#define MNT_STACK_MAX 16

int mnt_detach_all(const char *path, err_t **e)
{
  for (int i = 0; i < MNT_STACK_MAX; i++)
    if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
      return errno == EINVAL || errno == ENOENT ? 0 : err_sys(e, errno, "unmount %s", path);
  return err_set(e, ERR_INTERNAL, 0, "unmount %s: more than %d mounts stacked there", path, MNT_STACK_MAX);
}
