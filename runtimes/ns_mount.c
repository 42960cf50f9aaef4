/* ns_mount.c - mounting inside the container's root without trusting the image.
 *
 * Before pivot_root every mount target is a path inside the rootfs, and the rootfs is
 * the image's: a symlink there ("/data -> /etc") must not send a bind mount to the host's
 * /etc. So every target is resolved with openat2(RESOLVE_IN_ROOT) relative to the rootfs
 * (symlinks resolve as if the rootfs were "/"), created component by component the same
 * way, and mounted on through the fd's /proc/self/fd/N link. (child) */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

static int open_in_root(int rootfd, const char *path)
{
  struct open_how how = {
    .flags = O_PATH | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  while (*path == '/')
    path++;
  return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

/* Makes one missing component inside the directory cur. */
static int make_component(int cur, const char *name, bool dir)
{
  if (dir)
    return mkdirat(cur, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
  int fd = openat(cur, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
}

/* Walks path from the root, making what is missing. A dangling symlink on the way is
 * followed by making its target, still inside the root (as the kernel would resolve it
 * there after pivot_root). */
static int create_path(int rootfd, const char *path, bool dir, int depth, int *out, err_t **e)
{
  cleanup_buf struct buf prefix = BUF_INIT;
  cleanup_close int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (depth > 40)
    return err_set(e, ERR_INVALID, ELOOP, "too many symlinks below %s", path);
  for (const char *p = path + strspn(path, "/"); *p; p += strspn(p, "/")) {
    size_t len = strcspn(p, "/"), parent_len = prefix.len;
    cleanup_free char *comp = xstrndup(p, len);
    const char *rest = p + len;
    buf_putc(&prefix, '/');
    buf_puts(&prefix, comp);
    int fd = open_in_root(rootfd, prefix.data);
    if (fd < 0 && errno == ENOENT) {
      char target[4096];
      ssize_t n = readlinkat(cur, comp, target, sizeof(target) - 1);
      if (n > 0) {
        target[n] = '\0';
        cleanup_free char *next = target[0] == '/'
                                      ? xasprintf("%s%s", target, rest)
                                      : xasprintf("%.*s/%s%s", (int)parent_len, prefix.data, target, rest);
        return create_path(rootfd, next, dir, depth + 1, out, e);
      }
      if (make_component(cur, comp, rest[strspn(rest, "/")] != '\0' || dir) < 0)
        return err_sys(e, errno, "create %s", prefix.data);
      fd = open_in_root(rootfd, prefix.data);
    }
    if (fd < 0)
      return err_sys(e, errno, "open %s", prefix.data);
    close(cur);
    cur = fd;
    p = rest;
  }
  *out = steal_fd(&cur);
  return 0;
}

int root_open(int rootfd, const char *path, bool create, bool dir, int *out, err_t **e)
{
  int fd = open_in_root(rootfd, path);
  if (fd >= 0) {
    *out = fd;
    return 0;
  }
  if (errno == ENOSYS)
    return err_set(e, ERR_UNIMPLEMENTED, ENOSYS, "resolve %s: openat2 needs Linux 5.6", path);
  if (errno != ENOENT || !create)
    return err_sys(e, errno, "open %s in the container's root", path);
  return create_path(rootfd, path, dir, 0, out, e);
}

static char *fd_path(int fd)
{
  return xasprintf("/proc/self/fd/%d", fd);
}

int root_mount(int rootfd, const char *src, const char *path, const char *type,
               unsigned long flags, const char *data, bool dir, err_t **e)
{
  cleanup_close int fd = -1;
  if (root_open(rootfd, path, true, dir, &fd, e) < 0)
    return err_wrap(e, "mount %s", path);
  cleanup_free char *target = fd_path(fd);
  if (mount(src, target, type, flags, data) < 0)
    return err_sys(e, errno, "mount %s (%s) on %s", src ? src : "", type ? type : "bind", path);
  return 0;
}

int mount_remount_flags(int fd, unsigned long flags, err_t **e)
{
  cleanup_free char *target = fd_path(fd);
  struct statvfs sv;
  unsigned long keep = 0;
  /* a remount sets every flag at once: keep the ones already there (and in a user
   * namespace the kernel refuses to clear locked ones) */
  if (statvfs(target, &sv) == 0) {
    if (sv.f_flag & ST_NOSUID)
      keep |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
      keep |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
      keep |= MS_NOEXEC;
    if (sv.f_flag & ST_RDONLY)
      keep |= MS_RDONLY;
  }
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags | keep, NULL) < 0)
    return err_sys(e, errno, "remount");
  return 0;
}

int mount_recursive_readonly(int fd, err_t **e)
{
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) == 0)
    return 0;
  if (errno == ENOSYS)
    return err_set(e, ERR_UNIMPLEMENTED, ENOSYS,
                   "recursive read-only mounts need mount_setattr (Linux 5.12)");
  return err_sys(e, errno, "mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE)");
}

bool spec_mounts_cover(const struct ctr_spec *s, const char *dest)
{
  for (size_t i = 0; i < s->n_mounts; i++) {
    const char *d = s->mounts[i].destination;
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/')
      n--;
    if (strlen(dest) == n && strncmp(d, dest, n) == 0)
      return true;
  }
  return false;
}

static unsigned long extra_flags(const struct mount_spec *m)
{
  return (m->readonly ? MS_RDONLY : 0) | (m->nosuid ? MS_NOSUID : 0) | (m->nodev ? MS_NODEV : 0) |
         (m->noexec ? MS_NOEXEC : 0);
}

static bool is_bind(const struct mount_spec *m)
{
  return !m->type || strcmp(m->type, "bind") == 0 || strcmp(m->type, "rbind") == 0 ||
         (m->options && strstr(m->options, "bind"));
}

/* Flags and propagation of a bind mount, applied to the new mount (re-resolved: the
 * fd used for mounting still points at what the mount now covers). */
static int bind_finish(int rootfd, const struct mount_spec *m, err_t **e)
{
  static const unsigned long prop[] = {
    [PROP_PRIVATE] = MS_PRIVATE, [PROP_RSLAVE] = MS_SLAVE, [PROP_RSHARED] = MS_SHARED,
  };
  cleanup_close int fd = -1;
  if (root_open(rootfd, m->destination, false, false, &fd, e) < 0)
    return -1;
  cleanup_free char *target = fd_path(fd);
  if (mount(NULL, target, NULL, MS_REC | prop[m->propagation], NULL) < 0)
    return err_sys(e, errno, "set propagation");
  if (extra_flags(m) && mount_remount_flags(fd, extra_flags(m), e) < 0)
    return -1;
  if (m->recursive_readonly && mount_recursive_readonly(fd, e) < 0)
    return -1;
  return 0;
}

static int bind_one(int rootfd, const struct mount_spec *m, err_t **e)
{
  struct stat st;
  if (!m->source || stat(m->source, &st) < 0)
    return err_set(e, ERR_INVALID, errno, "bind source \"%s\" does not exist on the host",
                   m->source ? m->source : "");
  if (root_mount(rootfd, m->source, m->destination, NULL, MS_BIND | MS_REC, NULL,
                 S_ISDIR(st.st_mode), e) < 0)
    return -1;
  return bind_finish(rootfd, m, e);
}

static int mount_one(const struct ctr_spec *s, int rootfd, const struct mount_spec *m, err_t **e)
{
  if (is_bind(m))
    return bind_one(rootfd, m, e);
  if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0)
    return mount_cgroupfs(s, rootfd, m, e);
  unsigned long flags = extra_flags(m);
  const char *src = m->source && *m->source ? m->source : m->type;
  if (root_mount(rootfd, src, m->destination, m->type, flags, m->options, true, e) < 0)
    return -1;
  if (!m->recursive_readonly)
    return 0;
  cleanup_close int fd = -1;
  if (root_open(rootfd, m->destination, false, true, &fd, e) < 0)
    return -1;
  return mount_recursive_readonly(fd, e);
}

int mounts_apply(const struct ctr_spec *s, int rootfd, err_t **e)
{
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct mount_spec *m = &s->mounts[i];
    if (mount_one(s, rootfd, m, e) < 0)
      return err_wrap(e, "mount %s", m->destination);
  }
  return 0;
}
