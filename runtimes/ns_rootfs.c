/* ns_rootfs.c - the container's root: the overlay (mounted on the host, so crispd and
 * ns_cleanup see it), the standard mounts, pivot_root, and what is hidden or read-only
 * afterwards. */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

/* The kernel copies at most one page of mount data. */
#define MOUNT_DATA_MAX 4096

/* ---- overlay ---------------------------------------------------------------- */

static void overlay_data(const struct ctr_spec *s, size_t skip, struct buf *b)
{
  buf_reset(b);
  buf_puts(b, "lowerdir=");
  for (size_t i = 0; i < s->n_lower; i++)
    buf_printf(b, "%s%s", i ? ":" : "", s->lower_dirs[i] + skip);
  if (s->upper_dir)
    buf_printf(b, ",upperdir=%s,workdir=%s", s->upper_dir + skip, s->work_dir + skip);
}

/* Length of the directory prefix (ending in '/') that every layer path shares. */
static size_t common_dir(const struct ctr_spec *s)
{
  const char *first = s->lower_dirs[0];
  size_t n = strlen(first);
  const char *others[2] = {s->upper_dir, s->work_dir};
  for (size_t i = 0; i < s->n_lower + 2; i++) {
    const char *p = i < s->n_lower ? s->lower_dirs[i] : others[i - s->n_lower];
    size_t k = 0;
    if (!p)
      continue;
    while (k < n && p[k] == first[k])
      k++;
    n = k;
  }
  while (n > 0 && first[n - 1] != '/')
    n--;
  return n;
}

static int check_layers(const struct ctr_spec *s, err_t **e)
{
  if (!s->rootfs || s->rootfs[0] != '/')
    return err_set(e, ERR_INVALID, 0, "rootfs must be an absolute path");
  if (s->n_lower == 0)
    return err_set(e, ERR_INVALID, 0, "no image layers (lower_dirs)");
  if (!s->upper_dir != !s->work_dir)
    return err_set(e, ERR_INVALID, 0, "upper_dir and work_dir go together");
  const char *dirs[2] = {s->upper_dir, s->work_dir};
  for (size_t i = 0; i < s->n_lower + 2; i++) {
    const char *p = i < s->n_lower ? s->lower_dirs[i] : dirs[i - s->n_lower];
    struct stat st;
    if (!p)
      continue;
    /* overlayfs splits its options on ',' and ':' */
    if (p[0] != '/' || strpbrk(p, ",:"))
      return err_set(e, ERR_INVALID, 0, "layer path \"%s\": must be absolute, without ',' or ':'", p);
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
      return err_set(e, ERR_INVALID, errno, "layer directory %s does not exist", p);
  }
  return 0;
}

/* A lone read-only layer cannot be an overlay (it needs two lowers or an upper). */
static int bind_single_layer(const struct ctr_spec *s, err_t **e)
{
  if (mount(s->lower_dirs[0], s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return err_sys(e, errno, "bind %s on %s", s->lower_dirs[0], s->rootfs);
  if (mount(NULL, s->rootfs, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
    int saved = errno;
    umount2(s->rootfs, MNT_DETACH);
    return err_sys(e, saved, "remount %s read-only", s->rootfs);
  }
  return 0;
}

int rootfs_mount_overlay(const struct ctr_spec *s, err_t **e)
{
  if (check_layers(s, e) < 0 || mkdir_p(s->rootfs, 0755, e) < 0)
    return err_wrap(e, "rootfs");
  if (!s->upper_dir && s->n_lower == 1)
    return bind_single_layer(s, e) < 0 ? err_wrap(e, "rootfs") : 0;
  cleanup_buf struct buf data = BUF_INIT;
  overlay_data(s, 0, &data);
  if (data.len >= MOUNT_DATA_MAX) {
    /* too long for one page: name the layers relative to their common parent, which
     * we chdir into (this process is a throwaway child, its cwd is its own) */
    size_t skip = common_dir(s);
    cleanup_free char *parent = xstrndup(s->lower_dirs[0], skip);
    if (skip == 0 || chdir(parent) < 0)
      return err_set(e, ERR_INVALID, 0, "rootfs: %zu layers do not fit in overlayfs's %d-byte "
                     "mount options", s->n_lower, MOUNT_DATA_MAX);
    overlay_data(s, skip, &data);
    if (data.len >= MOUNT_DATA_MAX)
      return err_set(e, ERR_INVALID, 0, "rootfs: %zu layers do not fit in overlayfs's %d-byte "
                     "mount options", s->n_lower, MOUNT_DATA_MAX);
  }
  if (mount("overlay", s->rootfs, "overlay", 0, data.data) < 0)
    return err_sys(e, errno, "rootfs: mount overlay on %s", s->rootfs);
  return 0;
}

int rootfs_unmount(const struct ctr_spec *s, err_t **e)
{
  if (!s->rootfs)
    return 0;
  for (int i = 0; i < 16; i++)   /* a retried start may have stacked mounts */
    if (umount2(s->rootfs, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
      if (errno == EINVAL || errno == ENOENT)
        return 0;
      return err_sys(e, errno, "unmount %s", s->rootfs);
    }
  return 0;
}

/* ---- inside the new mount namespace ------------------------------------------- */

static enum mount_propagation root_propagation(const struct ctr_spec *s)
{
  enum mount_propagation p = PROP_PRIVATE;
  for (size_t i = 0; i < s->n_mounts; i++)
    if (s->mounts[i].propagation == PROP_RSHARED)
      return PROP_RSHARED;
    else if (s->mounts[i].propagation == PROP_RSLAVE)
      p = PROP_RSLAVE;
  return p;
}

/* The sandbox's kernel identity: its own files over the kernel's, read-only, so reading
 * them (openat) never has to stop for the tracer and agrees with the emulated uname. */
static int kernel_files(const struct ctr_spec *s, int rootfd, err_t **e)
{
  static const char *const files[][2] = {
      {SANDBOX_FILE_VERSION, "/proc/version"},
      {SANDBOX_FILE_OSRELEASE, "/proc/sys/kernel/osrelease"},
      {SANDBOX_FILE_KVERSION, "/proc/sys/kernel/version"},
  };
  if (s->executor != EXECUTOR_SANDBOX || !s->sandbox.files_dir)
    return 0;
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    cleanup_free char *src = path_join(s->sandbox.files_dir, files[i][0]);
    cleanup_close int fd = -1;
    if (root_mount(rootfd, src, files[i][1], NULL, MS_BIND, NULL, false, e) < 0 ||
        root_open(rootfd, files[i][1], false, false, &fd, e) < 0 ||
        mount_remount_flags(fd, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, e) < 0)
      return err_wrap(e, "sandbox kernel file %s", files[i][1]);
  }
  return 0;
}

/* /proc and /sys. A container in the host's network namespace gets the host's sysfs
 * bound read-only (a new sysfs instance would show the same thing, and runc does the
 * same); a privileged one gets /sys writable. */
static int proc_sys(const struct ctr_spec *s, int rootfd, err_t **e)
{
  const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (!spec_mounts_cover(s, "/proc") &&
      (root_mount(rootfd, "proc", "/proc", "proc", nse, NULL, true, e) < 0 ||
       kernel_files(s, rootfd, e) < 0))
    return -1;
  if (spec_mounts_cover(s, "/sys"))
    return 0;
  if (s->ns.net != NS_MODE_NODE)
    return root_mount(rootfd, "sysfs", "/sys", "sysfs", nse | (s->privileged ? 0 : MS_RDONLY),
                      NULL, true, e);
  if (root_mount(rootfd, "/sys", "/sys", NULL, MS_BIND | MS_REC, NULL, true, e) < 0)
    return -1;
  if (s->privileged)
    return 0;
  cleanup_close int fd = -1;
  if (root_open(rootfd, "/sys", false, true, &fd, e) < 0 || mount_recursive_readonly(fd, e) < 0)
    return err_wrap(e, "/sys");
  return 0;
}

static int pivot(int rootfd, err_t **e)
{
  /* pivot_root(".", ".") stacks the old root on the new one; unmounting "." then drops
   * the old root without needing a directory for it inside the container */
  if (fchdir(rootfd) < 0)
    return err_sys(e, errno, "chdir into rootfs");
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    return err_sys(e, errno, "pivot_root");
  if (umount2(".", MNT_DETACH) < 0)
    return err_sys(e, errno, "unmount the old root");
  if (chdir("/") < 0)
    return err_sys(e, errno, "chdir /");
  return 0;
}

/* The mount point path that holds path: the longest mountinfo entry above it. */
static char *mount_point_of(const char *path)
{
  cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
  char *best = xstrdup("/");
  char line[4096];
  while (f && fgets(line, sizeof(line), f)) {
    char mp[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
      continue;
    size_t n = strlen(mp);
    bool above = strncmp(path, mp, n) == 0 && (path[n] == '/' || path[n] == '\0' || n == 1);
    if (above && n > strlen(best)) {
      free(best);
      best = xstrdup(mp);
    }
  }
  return best;
}

/* pivot_root refuses a shared root, or a shared parent mount of the new root, and the
 * rootfs's own mount must not be a peer of the host's copy: make those three private,
 * each alone (not recursively), so shared submounts keep their peers. */
static int unshare_root_path(const char *rootfs, err_t **e)
{
  cleanup_free char *parent_dir = xstrdup(rootfs);
  char *slash = strrchr(parent_dir, '/');
  if (slash && slash != parent_dir)
    *slash = '\0';
  cleanup_free char *parent = mount_point_of(parent_dir);
  const char *paths[] = {"/", parent, rootfs};
  for (size_t i = 0; i < 3; i++)
    if (mount(NULL, paths[i], NULL, MS_PRIVATE, NULL) < 0)
      return err_sys(e, errno, "make %s private", paths[i]);
  return 0;
}

int rootfs_setup(const struct ctr_spec *s, err_t **e)
{
  /* Nothing the container mounts may reach the host: private from the root down, or
   * slave if a mount asks to receive the host's mounts. A bidirectional (rshared) mount
   * needs the host's peer groups kept, so / goes rshared instead, and the rootfs mount
   * itself is made private: what the container mounts under it (/proc, /dev, binds)
   * stays in here, while mounts made inside a shared bind still reach the host. */
  enum mount_propagation rp = root_propagation(s);
  unsigned long prop = rp == PROP_PRIVATE ? MS_PRIVATE : rp == PROP_RSLAVE ? MS_SLAVE : MS_SHARED;
  if (mount(NULL, "/", NULL, MS_REC | prop, NULL) < 0)
    return err_sys(e, errno, "make / %s", rp == PROP_PRIVATE ? "rprivate" : rp == PROP_RSLAVE ? "rslave" : "rshared");
  if (rp == PROP_RSHARED && unshare_root_path(s->rootfs, e) < 0)
    return -1;
  cleanup_close int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return err_sys(e, errno, "open rootfs %s", s->rootfs);
  if (proc_sys(s, rootfd, e) < 0 || dev_setup(s, rootfd, e) < 0 || mounts_apply(s, rootfd, e) < 0)
    return -1;
  return pivot(rootfd, e);
}

/* ---- after pivot_root ----------------------------------------------------------- */

static int mask_path(const char *path, err_t **e)
{
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "masked path %s", path);
  int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
                               : mount("/dev/null", path, NULL, MS_BIND, NULL);
  if (rc < 0 && errno != ENOENT)
    return err_sys(e, errno, "mask %s", path);
  return 0;
}

static int readonly_path(const char *path, err_t **e)
{
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "bind %s", path);
  cleanup_close int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0 || mount_remount_flags(fd, MS_RDONLY, e) < 0)
    return fd < 0 ? err_sys(e, errno, "open %s", path) : err_wrap(e, "read-only %s", path);
  return 0;
}

/* cwd may not exist in the image: make it, owned by the container's user so a non-root
 * process can work in it (as runc does). */
static int make_cwd(const struct ctr_spec *s, err_t **e)
{
  if (!s->cwd || !*s->cwd || strcmp(s->cwd, "/") == 0)
    return 0;
  struct stat st;
  if (stat(s->cwd, &st) == 0)
    return 0;
  if (mkdir_p(s->cwd, 0755, e) < 0)
    return err_wrap(e, "working directory");
  if (chown(s->cwd, s->uid, s->gid) < 0)
    return err_sys(e, errno, "chown working directory %s", s->cwd);
  return 0;
}

int rootfs_finish(const struct ctr_spec *s, err_t **e)
{
  if (root_propagation(s) == PROP_RSHARED && mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0)
    return err_sys(e, errno, "make / rshared");
  if (!s->privileged) {
    for (size_t i = 0; i < s->n_readonly; i++)
      if (readonly_path(s->readonly_paths[i], e) < 0)
        return -1;
    for (size_t i = 0; i < s->n_masked; i++)
      if (mask_path(s->masked_paths[i], e) < 0)
        return -1;
  }
  if (make_cwd(s, e) < 0)
    return -1;
  if (s->readonly_rootfs && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
    return err_sys(e, errno, "remount / read-only");
  return 0;
}
