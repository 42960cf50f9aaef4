/* unpack_fs.c - applying decoded tar entries to a layer directory without ever leaving it.
 *
 * The threat is a hostile layer: every name comes from the tar. So no path is ever handed
 * to the kernel whole. Each entry's parent directory is reached from a descriptor of the
 * layer root one component at a time with O_NOFOLLOW|O_DIRECTORY, and the entry itself is
 * created, replaced and changed only with *at() calls relative to that parent (and
 * AT_SYMLINK_NOFOLLOW / O_NOFOLLOW / O_EXCL), so a symlink planted by the layer is never
 * traversed, whatever it points at.
 */
#include "image/unpack_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "image/unpack.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"
#define QUOTE_MAX 200  /* how much of a hostile name an error message repeats */

/* Owner, mode and times of a directory, applied after everything was extracted. */
struct dir_meta {
  char *path;      /* cleaned */
  uint64_t seq;    /* event order, so the last entry for a path wins */
  mode_t perm;
  uid_t uid;
  gid_t gid;
  struct timespec times[2];
};

/* A directory tree a later entry replaced. */
struct removal {
  char *path;
  uint64_t seq;
};

struct unpack_fs {
  int root;
  char *cached_dir;  /* the parent directory whose descriptor is kept open */
  int cached_fd;
  struct dir_meta *dirs;
  size_t n_dirs, cap_dirs;
  struct removal *removed;
  size_t n_removed, cap_removed;
  uint64_t seq;
  uint64_t xattrs_skipped;
};

int unpack_fs_open(const char *dest_dir, struct unpack_fs **out, err_t **e)
{
  int root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return err_sys(e, errno, "open layer directory %s", dest_dir);
  struct unpack_fs *fs = xcalloc(1, sizeof(*fs));
  fs->root = root;
  fs->cached_fd = -1;
  fs->seq = 1;  /* 0 means "never removed" */
  *out = fs;
  return 0;
}

static void forget_cached_dir(struct unpack_fs *fs)
{
  if (fs->cached_fd >= 0)
    close(fs->cached_fd);
  fs->cached_fd = -1;
  free(fs->cached_dir);
  fs->cached_dir = NULL;
}

void unpack_fs_free(struct unpack_fs *fs)
{
  if (!fs)
    return;
  forget_cached_dir(fs);
  for (size_t i = 0; i < fs->n_dirs; i++)
    free(fs->dirs[i].path);
  free(fs->dirs);
  for (size_t i = 0; i < fs->n_removed; i++)
    free(fs->removed[i].path);
  free(fs->removed);
  close(fs->root);
  free(fs);
}

uint64_t unpack_fs_xattrs_skipped(const struct unpack_fs *fs) { return fs->xattrs_skipped; }

char *unpack_quote_name(const char *s)
{
  cleanup_buf struct buf b = BUF_INIT;
  cleanup_free char *cut = xstrndup(s, QUOTE_MAX);
  buf_json_str(&b, cut);
  if (strlen(s) > QUOTE_MAX)
    buf_puts(&b, "...");
  return buf_steal(&b);
}

int unpack_path_clean(const char *raw, char **out, err_t **e)
{
  if (strlen(raw) > UNPACK_PATH_MAX)
    return err_set(e, ERR_INVALID, 0, "path is longer than %d bytes", UNPACK_PATH_MAX);
  cleanup_buf struct buf b = BUF_INIT;
  buf_reserve(&b, strlen(raw) + 1);
  b.data[0] = '\0';
  for (const char *c = raw; *c;) {
    const char *end = strchrnul(c, '/');
    size_t n = (size_t)(end - c);
    if (n == 2 && c[0] == '.' && c[1] == '.') {
      if (b.len == 0)
        return err_set(e, ERR_INVALID, 0, "climbs out of the layer");
      char *slash = memrchr(b.data, '/', b.len);
      b.len = slash ? (size_t)(slash - b.data) : 0;
      b.data[b.len] = '\0';
    } else if (n > 0 && !(n == 1 && c[0] == '.')) {
      if (b.len)
        buf_putc(&b, '/');
      buf_append(&b, c, n);
    }
    c = *end ? end + 1 : end;
  }
  *out = buf_steal(&b);
  return 0;
}

/* Explains why opening `comp` below dirfd as a directory failed. */
static int walk_error(int dirfd, const char *dir, size_t comp_end, int err, err_t **e)
{
  struct stat st;
  cleanup_free char *where = xstrndup(dir, comp_end);
  cleanup_free char *q = unpack_quote_name(where);
  const char *comp = strrchr(where, '/') ? strrchr(where, '/') + 1 : where;
  if ((err == ELOOP || err == ENOTDIR) &&
      fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return err_set(e, ERR_INVALID, 0, "parent %s is a symlink; nothing is written through "
                                        "a symlink", q);
    return err_set(e, ERR_INVALID, 0, "parent %s is not a directory", q);
  }
  return err_sys(e, err, "open parent directory %s", q);
}

/* A new descriptor of directory `dir` (cleaned, "" = root), reached without following
 * any symlink; missing components are created (0755, as tar does) when create is set. */
static int open_dir_beneath(struct unpack_fs *fs, const char *dir, bool create, err_t **e)
{
  int fd = openat(fs->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "open layer root");
  for (const char *c = dir; *c;) {
    const char *end = strchrnul(c, '/');
    cleanup_free char *comp = xstrndup(c, (size_t)(end - c));
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int next = openat(fd, comp, flags);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
        int err = errno;
        close(fd);
        cleanup_free char *where = xstrndup(dir, (size_t)(end - dir));
        cleanup_free char *q = unpack_quote_name(where);
        return err_sys(e, err, "create directory %s", q);
      }
      next = openat(fd, comp, flags);
    }
    if (next < 0) {
      walk_error(fd, dir, (size_t)(end - dir), errno, e);
      close(fd);
      return -1;
    }
    close(fd);
    fd = next;
    c = *end ? end + 1 : end;
  }
  return fd;
}

/* The parent directory of the current entry, borrowed: consecutive entries usually share
 * it, so its descriptor is kept until another is needed or a directory is removed. */
static int parent_fd(struct unpack_fs *fs, const char *dir, err_t **e)
{
  if (fs->cached_dir && strcmp(fs->cached_dir, dir) == 0)
    return fs->cached_fd;
  forget_cached_dir(fs);
  int fd = open_dir_beneath(fs, dir, true, e);
  if (fd < 0)
    return -1;
  fs->cached_fd = fd;
  fs->cached_dir = xstrdup(dir);
  return fd;
}

/* A directory tree removed because a later entry replaced it: deferred metadata recorded
 * before the removal for it or anything below it no longer applies. Looked up at the end
 * rather than purged now, so replacing many directories stays linear. */
static void note_removal(struct unpack_fs *fs, const char *path)
{
  if (fs->n_removed == fs->cap_removed) {
    fs->cap_removed = fs->cap_removed ? fs->cap_removed * 2 : 16;
    fs->removed = xreallocarray(fs->removed, fs->cap_removed, sizeof(*fs->removed));
  }
  fs->removed[fs->n_removed].path = xstrdup(path);
  fs->removed[fs->n_removed].seq = fs->seq++;
  fs->n_removed++;
}

static int remove_tree(int parent, const char *name, err_t **e);

static int remove_children(int dirfd, err_t **e)
{
  DIR *d = fdopendir(dirfd);
  if (!d) {
    close(dirfd);
    return err_sys(e, errno, "read directory");
  }
  cleanup_closedir DIR *dir = d;
  struct dirent *de;
  while ((errno = 0, de = readdir(dir))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd, de->d_name, 0) == 0)
      continue;
    if (errno != EISDIR) {
      int err = errno;
      cleanup_free char *q = unpack_quote_name(de->d_name);
      return err_sys(e, err, "remove %s", q);
    }
    if (remove_tree(dirfd, de->d_name, e) < 0)
      return -1;
  }
  if (errno)
    return err_sys(e, errno, "read directory");
  return 0;
}

/* rm -rf of parent/name, never following symlinks (they are unlinked, not entered). */
static int remove_tree(int parent, const char *name, err_t **e)
{
  cleanup_free char *q = unpack_quote_name(name);
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "open %s", q);
  if (remove_children(fd, e) < 0)
    return err_wrap(e, "remove %s", q);
  if (unlinkat(parent, name, AT_REMOVEDIR) < 0)
    return err_sys(e, errno, "remove directory %s", q);
  return 0;
}

/* Makes room for a new entry at parent/name: a later entry replaces an earlier one.
 * An existing directory stays when keep_dir is set (*kept tells); otherwise it goes. */
static int clear_slot(struct unpack_fs *fs, int parent, const char *path, const char *name,
                      bool keep_dir, bool *kept, err_t **e)
{
  struct stat st;
  if (kept)
    *kept = false;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return 0;
    return err_sys(e, errno, "stat existing entry");
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent, name, 0) < 0)
      return err_sys(e, errno, "replace existing entry");
    return 0;
  }
  if (keep_dir) {
    *kept = true;
    return 0;
  }
  /* the cached parent may lie inside the tree about to go */
  bool cached_is_parent = fs->cached_fd == parent;
  if (!cached_is_parent)
    forget_cached_dir(fs);
  if (remove_tree(parent, name, e) < 0)
    return err_wrap(e, "replace existing directory");
  note_removal(fs, path);
  return 0;
}

static bool xattr_skippable(const char *name, int err)
{
  if (err == ENOTSUP || err == EOPNOTSUPP)
    return true;
  if (strncmp(name, "security.", 9) == 0)
    return err == EPERM || err == EINVAL;
  /* the kernel refuses user.* on symlinks and devices with EPERM */
  if (strncmp(name, "user.", 5) == 0)
    return err == EPERM;
  return false;
}

/* Sets the entry's xattrs on fd, or on parent/name when fd < 0 (symlinks and devices,
 * which must not be opened: they are reached through the parent's /proc/self/fd link). */
static int set_xattrs(struct unpack_fs *fs, int fd, int parent, const char *name,
                      const struct unpack_entry *en, err_t **e)
{
  cleanup_free char *proc = NULL;
  for (size_t i = 0; i < en->n_xattrs; i++) {
    const struct unpack_xattr *x = &en->xattrs[i];
    if (strncmp(x->name, "trusted.", 8) == 0) {
      fs->xattrs_skipped++;
      continue;
    }
    if (fd < 0 && !proc)
      proc = xasprintf("/proc/self/fd/%d/%s", parent, name);
    int rc = fd >= 0 ? fsetxattr(fd, x->name, x->value, x->size, 0)
                     : lsetxattr(proc, x->name, x->value, x->size, 0);
    if (rc == 0)
      continue;
    if (!xattr_skippable(x->name, errno)) {
      int err = errno;
      cleanup_free char *q = unpack_quote_name(x->name);
      return err_sys(e, err, "set xattr %s", q);
    }
    fs->xattrs_skipped++;
  }
  return 0;
}

static void entry_times(const struct unpack_entry *en, struct timespec ts[2])
{
  ts[0] = en->atime;
  ts[1] = en->mtime;
}

/* Owner first (chown clears setuid bits and file capabilities), then mode, xattrs, times. */
static int set_meta_fd(struct unpack_fs *fs, int fd, const struct unpack_entry *en, err_t **e)
{
  struct timespec ts[2];
  entry_times(en, ts);
  if (fchown(fd, en->uid, en->gid) < 0)
    return err_sys(e, errno, "chown %u:%u", (unsigned)en->uid, (unsigned)en->gid);
  if (fchmod(fd, en->perm) < 0)
    return err_sys(e, errno, "chmod %o", (unsigned)en->perm);
  if (set_xattrs(fs, fd, -1, NULL, en, e) < 0)
    return -1;
  if (futimens(fd, ts) < 0)
    return err_sys(e, errno, "set times");
  return 0;
}

/* The same for a node that is not opened (symlink, device, fifo). */
static int set_meta_at(struct unpack_fs *fs, int parent, const char *name,
                       const struct unpack_entry *en, err_t **e)
{
  struct timespec ts[2];
  entry_times(en, ts);
  if (fchownat(parent, name, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(e, errno, "chown %u:%u", (unsigned)en->uid, (unsigned)en->gid);
  /* symlinks have no mode; the others were just made by mknodat, so this follows nothing */
  if (en->kind != UNPACK_SYMLINK && fchmodat(parent, name, en->perm, 0) < 0)
    return err_sys(e, errno, "chmod %o", (unsigned)en->perm);
  if (set_xattrs(fs, -1, parent, name, en, e) < 0)
    return -1;
  if (utimensat(parent, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(e, errno, "set times");
  return 0;
}

static int write_data(int fd, const struct unpack_entry *en, unpack_data_fn data, void *arg,
                      err_t **e)
{
  for (;;) {
    const void *buf;
    size_t len;
    int64_t off;
    int r = data(arg, &buf, &len, &off, e);
    if (r <= 0)
      return r;
    if (off < 0 || (uint64_t)off > en->size || len > en->size - (uint64_t)off)
      return err_set(e, ERR_INVALID, 0, "data block outside the file's size");
    for (const char *p = buf; len;) {
      ssize_t n = pwrite(fd, p, len, (off_t)off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return err_sys(e, errno, "write");
      p += n, off += n, len -= (size_t)n;
    }
  }
}

static int make_file(struct unpack_fs *fs, int parent, const char *name,
                     const struct unpack_entry *en, unpack_data_fn data, void *arg, err_t **e)
{
  cleanup_close int fd =
      openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return err_sys(e, errno, "create file");
  if (write_data(fd, en, data, arg, e) < 0)
    return -1;
  /* a sparse file ends in a hole the data blocks did not cover */
  if (ftruncate(fd, (off_t)en->size) < 0)
    return err_sys(e, errno, "set size");
  return set_meta_fd(fs, fd, en, e);
}

static int make_node(struct unpack_fs *fs, int parent, const char *name,
                     const struct unpack_entry *en, err_t **e)
{
  mode_t type = en->kind == UNPACK_CHAR ? S_IFCHR : en->kind == UNPACK_BLOCK ? S_IFBLK : S_IFIFO;
  dev_t dev = type == S_IFIFO ? 0 : en->rdev;
  if (mknodat(parent, name, type | 0600, dev) < 0)
    return err_sys(e, errno, "mknod");
  return set_meta_at(fs, parent, name, en, e);
}

static int make_symlink(struct unpack_fs *fs, int parent, const char *name,
                        const struct unpack_entry *en, err_t **e)
{
  if (!en->link || !*en->link)
    return err_set(e, ERR_INVALID, 0, "symlink has an empty target");
  if (strlen(en->link) > UNPACK_PATH_MAX)
    return err_set(e, ERR_INVALID, 0, "symlink target is longer than %d bytes",
                   UNPACK_PATH_MAX);
  if (symlinkat(en->link, parent, name) < 0)
    return err_sys(e, errno, "symlink");
  return set_meta_at(fs, parent, name, en, e);
}

static void defer_dir_meta(struct unpack_fs *fs, const char *path, const struct unpack_entry *en)
{
  if (fs->n_dirs == fs->cap_dirs) {
    fs->cap_dirs = fs->cap_dirs ? fs->cap_dirs * 2 : 64;
    fs->dirs = xreallocarray(fs->dirs, fs->cap_dirs, sizeof(*fs->dirs));
  }
  struct dir_meta *m = &fs->dirs[fs->n_dirs++];
  m->path = xstrdup(path);
  m->seq = fs->seq++;
  m->perm = en->perm;
  m->uid = en->uid;
  m->gid = en->gid;
  entry_times(en, m->times);
}

/* A directory is created 0700 now; its owner, mode and times wait for unpack_fs_finish. */
static int make_dir(struct unpack_fs *fs, int parent, const char *path, const char *name,
                    const struct unpack_entry *en, err_t **e)
{
  cleanup_close int fd = -1;
  if (!*path) {
    fd = openat(fs->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    bool kept;
    if (clear_slot(fs, parent, path, name, true, &kept, e) < 0)
      return -1;
    if (!kept && mkdirat(parent, name, 0700) < 0)
      return err_sys(e, errno, "mkdir");
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0)
    return err_sys(e, errno, "open directory");
  if (set_xattrs(fs, fd, -1, NULL, en, e) < 0)
    return -1;
  defer_dir_meta(fs, path, en);
  return 0;
}

static int make_hardlink(struct unpack_fs *fs, int parent, const char *path, const char *name,
                         const struct unpack_entry *en, err_t **e)
{
  cleanup_free char *target = NULL;
  if (unpack_path_clean(en->link ? en->link : "", &target, e) < 0)
    return err_wrap(e, "hardlink target");
  if (!*target)
    return err_set(e, ERR_INVALID, 0, "hardlink to the layer root");
  if (strcmp(target, path) == 0)
    return err_set(e, ERR_INVALID, 0, "hardlink to itself");
  char *slash = strrchr(target, '/');
  const char *tname = slash ? slash + 1 : target;
  if (slash)
    *slash = '\0';
  cleanup_close int tparent = open_dir_beneath(fs, slash ? target : "", false, e);
  if (tparent < 0 && (*e)->code == ERR_NOT_FOUND)
    return err_set(e, ERR_INVALID, 0, "hardlink target is not in the layer (yet)");
  if (tparent < 0)
    return err_wrap(e, "hardlink target");
  struct stat st;
  if (fstatat(tparent, tname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return err_set(e, ERR_INVALID, 0, "hardlink target is not in the layer (yet)");
    return err_sys(e, errno, "stat hardlink target");
  }
  if (S_ISDIR(st.st_mode))
    return err_set(e, ERR_INVALID, 0, "hardlink to a directory");
  if (clear_slot(fs, parent, path, name, false, NULL, e) < 0)
    return -1;
  /* flags 0: a symlink target is linked itself, never followed */
  if (linkat(tparent, tname, parent, name, 0) < 0)
    return err_sys(e, errno, "hardlink");
  return 0;
}

static bool is_whiteout(const char *name)
{
  return strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0;
}

/* dir/.wh..wh..opq marks dir opaque; dir/.wh.name hides name with a 0:0 char device. */
static int make_whiteout(struct unpack_fs *fs, int parent, const char *path, const char *name,
                         err_t **e)
{
  if (strcmp(name, WH_OPAQUE) == 0) {
    if (fsetxattr(parent, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
      return err_sys(e, errno, "set " OVERLAY_OPAQUE_XATTR);
    return 0;
  }
  const char *hidden = name + strlen(WH_PREFIX);
  if (!*hidden || strcmp(hidden, ".") == 0 || strcmp(hidden, "..") == 0 || is_whiteout(hidden))
    return err_set(e, ERR_INVALID, 0, "malformed whiteout");
  cleanup_free char *hidden_path = xstrdup(path);
  char *slash = strrchr(hidden_path, '/');
  cleanup_free char *full = slash ? xasprintf("%.*s/%s", (int)(slash - hidden_path),
                                              hidden_path, hidden)
                                  : xstrdup(hidden);
  if (clear_slot(fs, parent, full, hidden, false, NULL, e) < 0)
    return -1;
  if (mknodat(parent, hidden, S_IFCHR, makedev(0, 0)) < 0)
    return err_sys(e, errno, "create whiteout device");
  return 0;
}

static int apply_kind(struct unpack_fs *fs, int parent, const char *path, const char *name,
                      const struct unpack_entry *en, unpack_data_fn data, void *arg, err_t **e)
{
  switch (en->kind) {
  case UNPACK_DIR:
    return make_dir(fs, parent, path, name, en, e);
  case UNPACK_HARDLINK:
    return make_hardlink(fs, parent, path, name, en, e);
  case UNPACK_FILE:
  case UNPACK_SYMLINK:
  case UNPACK_CHAR:
  case UNPACK_BLOCK:
  case UNPACK_FIFO:
    break;
  }
  if (clear_slot(fs, parent, path, name, false, NULL, e) < 0)
    return -1;
  switch (en->kind) {
  case UNPACK_FILE:
    return make_file(fs, parent, name, en, data, arg, e);
  case UNPACK_SYMLINK:
    return make_symlink(fs, parent, name, en, e);
  case UNPACK_CHAR:
  case UNPACK_BLOCK:
  case UNPACK_FIFO:
    return make_node(fs, parent, name, en, e);
  case UNPACK_DIR:
  case UNPACK_HARDLINK:
    break;
  }
  return err_set(e, ERR_INTERNAL, 0, "unhandled entry kind %d", (int)en->kind);
}

/* Points *name at the last component of a cleaned path; a ".wh." name anywhere before it
 * is refused, as it could only be extracted as an ordinary directory. */
static int check_components(const char *path, const char **name, err_t **e)
{
  const char *slash = strrchr(path, '/');
  *name = slash ? slash + 1 : path;
  for (const char *c = path; c < *name;) {
    if (is_whiteout(c))
      return err_set(e, ERR_INVALID, 0, "a whiteout name is used as a directory");
    c = strchr(c, '/') + 1;
  }
  return 0;
}

static int apply(struct unpack_fs *fs, const char *path, const struct unpack_entry *en,
                 unpack_data_fn data, void *arg, err_t **e)
{
  const char *name;
  if (check_components(path, &name, e) < 0)
    return -1;
  if (!*path && en->kind != UNPACK_DIR)
    return err_set(e, ERR_INVALID, 0, "replaces the layer root with a non-directory");
  cleanup_free char *dir = xstrndup(path, name > path ? (size_t)(name - path - 1) : 0);
  int parent = *path ? parent_fd(fs, dir, e) : fs->root;
  if (parent < 0)
    return -1;
  if (is_whiteout(name))
    return make_whiteout(fs, parent, path, name, e);
  return apply_kind(fs, parent, path, name, en, data, arg, e);
}

int unpack_fs_apply(struct unpack_fs *fs, const struct unpack_entry *en, unpack_data_fn data,
                    void *arg, err_t **e)
{
  cleanup_free char *path = NULL;
  if (unpack_path_clean(en->path, &path, e) < 0 || apply(fs, path, en, data, arg, e) < 0) {
    cleanup_free char *q = unpack_quote_name(en->path);
    return err_wrap(e, "layer entry %s", q);
  }
  return 0;
}

/* Deepest paths first (a child sorts after its parent, so descending order puts it
 * before), and for one path the latest entry first. */
static int dir_meta_cmp(const void *a, const void *b)
{
  const struct dir_meta *x = a, *y = b;
  int c = strcmp(y->path, x->path);
  if (c)
    return c;
  return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static int removal_cmp(const void *a, const void *b)
{
  const struct removal *x = a, *y = b;
  int c = strcmp(x->path, y->path);
  if (c)
    return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the removals by path and keeps the latest per path. */
static void index_removals(struct unpack_fs *fs)
{
  if (!fs->n_removed)
    return;
  qsort(fs->removed, fs->n_removed, sizeof(*fs->removed), removal_cmp);
  size_t out = 0;
  for (size_t i = 0; i < fs->n_removed; i++) {
    if (out && strcmp(fs->removed[out - 1].path, fs->removed[i].path) == 0) {
      free(fs->removed[out - 1].path);
      fs->removed[out - 1] = fs->removed[i];
    } else {
      fs->removed[out++] = fs->removed[i];
    }
  }
  fs->n_removed = out;
}

/* When the tree at the first len bytes of path was last removed (0: never). */
static uint64_t removed_at(const struct unpack_fs *fs, const char *path, size_t len)
{
  size_t lo = 0, hi = fs->n_removed;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *r = fs->removed[mid].path;
    int c = strncmp(r, path, len);
    if (c == 0 && r[len])
      c = 1;
    if (c == 0)
      return fs->removed[mid].seq;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* The directory m describes, or one of its parents, was replaced after m was recorded. */
static bool dir_meta_stale(const struct unpack_fs *fs, const struct dir_meta *m)
{
  if (!fs->n_removed || !*m->path)
    return false;
  for (const char *c = m->path;; c++) {
    if ((*c == '/' || !*c) && removed_at(fs, m->path, (size_t)(c - m->path)) > m->seq)
      return true;
    if (!*c)
      return false;
  }
}

static int apply_dir_meta(struct unpack_fs *fs, const struct dir_meta *m, err_t **e)
{
  err_t *walk_err = NULL;
  cleanup_close int fd = open_dir_beneath(fs, m->path, false, &walk_err);
  if (fd < 0) {
    /* replaced later in the layer by something that is not a directory */
    err_free(&walk_err);
    return 0;
  }
  if (fchown(fd, m->uid, m->gid) < 0)
    return err_sys(e, errno, "chown directory");
  if (fchmod(fd, m->perm) < 0)
    return err_sys(e, errno, "chmod directory");
  if (futimens(fd, m->times) < 0)
    return err_sys(e, errno, "set directory times");
  return 0;
}

int unpack_fs_finish(struct unpack_fs *fs, err_t **e)
{
  forget_cached_dir(fs);
  index_removals(fs);
  if (fs->n_dirs)
    qsort(fs->dirs, fs->n_dirs, sizeof(*fs->dirs), dir_meta_cmp);
  const char *last = NULL;
  for (size_t i = 0; i < fs->n_dirs; i++) {
    const struct dir_meta *m = &fs->dirs[i];
    if (last && strcmp(last, m->path) == 0)
      continue;
    last = m->path;
    if (dir_meta_stale(fs, m))
      continue;
    if (apply_dir_meta(fs, m, e) < 0) {
      cleanup_free char *q = unpack_quote_name(*m->path ? m->path : ".");
      return err_wrap(e, "layer directory %s", q);
    }
  }
  return 0;
}
