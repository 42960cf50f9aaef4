/* ns_dev.c - the container's /dev: a private tmpfs with only the nodes a container
 * needs (the devices cgroup enforces the same list), its own devpts instance, shm,
 * mqueue, the usual links and the spec's devices (child, before pivot_root: host device
 * nodes are still reachable to copy); then a tty container's console (after it). */
#include "runtimes/ns_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

static const struct {
  const char *name;
  unsigned maj, min;
} default_nodes[] = {
  {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static const struct {
  const char *name, *target;
} dev_links[] = {
  {"fd", "/proc/self/fd"},         {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
  {"stderr", "/proc/self/fd/2"},   {"ptmx", "pts/ptmx"},
};

/* mknod with an exact mode (no umask) and owner; an existing node is kept. */
static int make_node(int dir, const char *name, mode_t mode, dev_t rdev, uid_t uid, gid_t gid,
                     err_t **e)
{
  if (mknodat(dir, name, mode, rdev) < 0) {
    if (errno == EEXIST)
      return 0;
    return err_sys(e, errno, "mknod /dev/%s", name);
  }
  if (fchmodat(dir, name, mode & 07777, 0) < 0 || fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(e, errno, "chmod/chown /dev/%s", name);
  return 0;
}

/* Privileged containers get every host device (as containerd's privileged mode does),
 * minus the pieces that are per container anyway. */
static bool skipped_host_entry(const char *name)
{
  static const char *const skip[] = {"pts", "shm", "mqueue", "fd", "console", ".lxc", ".udev"};
  for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
    if (strcmp(name, skip[i]) == 0)
      return true;
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static int copy_host_devices(int hostfd, int outfd, int depth, err_t **e)
{
  cleanup_closedir DIR *d = fdopendir(hostfd);
  if (!d) {
    close(hostfd);
    return err_sys(e, errno, "read host /dev");
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    if (skipped_host_entry(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) &&
        make_node(outfd, de->d_name, st.st_mode, st.st_rdev, st.st_uid, st.st_gid, e) < 0)
      return -1;
    if (!S_ISDIR(st.st_mode) || depth > 4)
      continue;
    if (mkdirat(outfd, de->d_name, st.st_mode & 07777) < 0 && errno != EEXIST)
      return err_sys(e, errno, "mkdir /dev/%s", de->d_name);
    int sub_host = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    cleanup_close int sub = openat(outfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (sub_host < 0 || sub < 0) {
      if (sub_host >= 0)
        close(sub_host);
      continue;
    }
    if (copy_host_devices(sub_host, sub, depth + 1, e) < 0)
      return -1;
  }
  return 0;
}

static int make_nodes(const struct ctr_spec *s, int devfd, err_t **e)
{
  if (s->privileged) {
    int host = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (host < 0)
      return err_sys(e, errno, "open host /dev");
    return copy_host_devices(host, devfd, 0, e);
  }
  for (size_t i = 0; i < sizeof(default_nodes) / sizeof(default_nodes[0]); i++)
    if (make_node(devfd, default_nodes[i].name, S_IFCHR | 0666,
                  makedev(default_nodes[i].maj, default_nodes[i].min), 0, 0, e) < 0)
      return -1;
  return 0;
}

static int make_links(int devfd, err_t **e)
{
  for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
    if (symlinkat(dev_links[i].target, devfd, dev_links[i].name) < 0 && errno != EEXIST)
      return err_sys(e, errno, "symlink /dev/%s", dev_links[i].name);
  return 0;
}

/* After pivot_root, so the source is the container's own pty (its devpts), reached
 * through the open slave rather than a path the container could change. */
int dev_bind_console(int slave, err_t **e)
{
  int fd = open("/dev/console", O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
  if (fd < 0)
    return err_sys(e, errno, "create /dev/console");
  cleanup_free char *src = xasprintf("/proc/self/fd/%d", slave);
  cleanup_free char *target = xasprintf("/proc/self/fd/%d", fd);
  int rc = mount(src, target, NULL, MS_BIND, NULL);
  int saved = errno;
  close(fd);
  return rc < 0 ? err_sys(e, saved, "bind the container's pty on /dev/console") : 0;
}

static int spec_device(int rootfd, const struct device_spec *d, err_t **e)
{
  struct stat st;
  const char *path = d->container_path && *d->container_path ? d->container_path : d->host_path;
  if (stat(d->host_path, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
    return err_set(e, ERR_INVALID, errno, "device %s: not a device node on the host", d->host_path);
  cleanup_free char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (!slash || !slash[1])
    return err_set(e, ERR_INVALID, 0, "device %s: container path \"%s\" is not absolute",
                   d->host_path, path);
  *slash = '\0';
  cleanup_close int parent = -1;
  if (root_open(rootfd, *dir ? dir : "/", true, true, &parent, e) < 0)
    return err_wrap(e, "device %s", path);
  if (make_node(parent, slash + 1, st.st_mode, st.st_rdev, st.st_uid, st.st_gid, e) < 0)
    return err_wrap(e, "device %s", path);
  return 0;
}

static int dev_mounts(const struct ctr_spec *s, int rootfd, err_t **e)
{
  static const struct {
    const char *src, *dest, *type, *data;
    unsigned long flags;
  } m[] = {
    {"devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5", MS_NOSUID | MS_NOEXEC},
    {"shm", "/dev/shm", "tmpfs", "mode=1777,size=65536k", MS_NOSUID | MS_NODEV | MS_NOEXEC},
    {"mqueue", "/dev/mqueue", "mqueue", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
  };
  for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
    if (!spec_mounts_cover(s, m[i].dest) &&
        root_mount(rootfd, m[i].src, m[i].dest, m[i].type, m[i].flags, m[i].data, true, e) < 0)
      return -1;
  return 0;
}

int dev_setup(const struct ctr_spec *s, int rootfd, err_t **e)
{
  if (!spec_mounts_cover(s, "/dev") &&
      root_mount(rootfd, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                 "mode=755,size=65536k", true, e) < 0)
    return -1;
  cleanup_close int devfd = -1;
  if (root_open(rootfd, "/dev", true, true, &devfd, e) < 0)
    return -1;
  /* devfd is O_PATH; node creation needs a real directory fd */
  cleanup_free char *p = xasprintf("/proc/self/fd/%d", devfd);
  cleanup_close int dir = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return err_sys(e, errno, "open /dev");
  if (make_nodes(s, dir, e) < 0 || dev_mounts(s, rootfd, e) < 0 || make_links(dir, e) < 0)
    return err_wrap(e, "/dev");
  for (size_t i = 0; i < s->n_devices; i++)
    if (spec_device(rootfd, &s->devices[i], e) < 0)
      return -1;
  return 0;
}
