/* ns_cgmount.c - a "cgroup" mount in the spec (containerd puts one at /sys/fs/cgroup):
 * the container sees its own cgroup, never the host's tree. (child, before pivot_root)
 *
 * Pure v2: the container has its own cgroup namespace (see ns_start.c), so a fresh
 * cgroup2 mount is rooted at the container's cgroup. v1 and hybrid: a cgroup namespace
 * does not hide v1 hierarchies from a new mount as neatly, and mounting a v1 hierarchy
 * again with other options fails, so, as runc does, a tmpfs holds one bind mount per
 * hierarchy, each of the container's own directory in it. */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/cgroup.h"

static unsigned long flags_of(const struct mount_spec *m)
{
  return MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->readonly ? MS_RDONLY : 0);
}

/* cpu,cpuacct -> links "cpu" and "cpuacct" next to it, as hosts have them. */
static int comount_links(int rootfd, const char *dest, const char *base, err_t **e)
{
  if (!strchr(base, ','))
    return 0;
  cleanup_close int dir = -1;
  if (root_open(rootfd, dest, false, true, &dir, e) < 0)
    return -1;
  cleanup_free char *copy = xstrdup(base);
  char *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
    if (symlinkat(base, dir, t) < 0 && errno != EEXIST)
      return err_sys(e, errno, "link %s/%s", dest, t);
  return 0;
}

static int bind_hierarchy(int rootfd, const struct mount_spec *m, const struct cg_hier *h,
                          const char *rel, err_t **e)
{
  const char *base = strrchr(h->mount, '/') ? strrchr(h->mount, '/') + 1 : h->mount;
  cleanup_free char *src = path_join(h->mount, rel);
  cleanup_free char *dest = path_join(m->destination, base);
  if (root_mount(rootfd, src, dest, NULL, MS_BIND | MS_REC, NULL, true, e) < 0)
    return -1;
  cleanup_close int fd = -1;
  if (root_open(rootfd, dest, false, true, &fd, e) < 0 || mount_remount_flags(fd, flags_of(m), e) < 0)
    return err_wrap(e, "%s", dest);
  return comount_links(rootfd, m->destination, base, e);
}

static int mount_v1(int rootfd, const struct mount_spec *m, const struct cg_layout *l,
                    const char *rel, err_t **e)
{
  if (root_mount(rootfd, "tmpfs", m->destination, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=755", true, e) < 0)
    return -1;
  for (size_t i = 0; i < l->n; i++)
    if (bind_hierarchy(rootfd, m, &l->h[i], rel, e) < 0)
      return -1;
  if (!m->readonly)
    return 0;
  cleanup_close int fd = -1;
  if (root_open(rootfd, m->destination, false, true, &fd, e) < 0)
    return -1;
  return mount_remount_flags(fd, MS_RDONLY, e);
}

int mount_cgroupfs(const struct ctr_spec *s, int rootfd, const struct mount_spec *m, err_t **e)
{
  struct cg_layout l;
  cleanup_free char *rel = NULL;
  if (cg_rel_path(s->cgroup_parent, s->cgroup_name, &rel, e) < 0 || cg_layout_detect(&l, e) < 0)
    return -1;
  int rc = l.pure_v2
               ? root_mount(rootfd, "cgroup", m->destination, "cgroup2", flags_of(m), NULL, true, e)
               : mount_v1(rootfd, m, &l, rel, e);
  cg_layout_clear(&l);
  return rc;
}
