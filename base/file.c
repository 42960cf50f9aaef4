#include "base/file.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

int fd_read_all(int fd, size_t max, char **out, size_t *len, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_puts(&b, "");  /* an empty input is still a NUL-terminated string */
  for (;;) {
    buf_reserve(&b, 65536);
    ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return err_sys(e, errno, "read");
    if (n == 0)
      break;
    b.len += (size_t)n;
    b.data[b.len] = '\0';
    if (b.len > max)
      return err_set(e, ERR_RESOURCE, 0, "more than %zu bytes", max);
  }
  if (len)
    *len = b.len;
  *out = buf_steal(&b);
  return 0;
}

int file_read_all(const char *path, size_t max, char **out, size_t *len, err_t **e)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return err_sys(e, errno, "open %s", path);
  if (fd_read_all(fd, max, out, len, e) < 0)
    return err_wrap(e, "%s", path);
  return 0;
}

int fd_write_all(int fd, const void *data, size_t len, err_t **e)
{
  const char *p = data;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return err_sys(e, errno, "write");
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int fsync_dir_of(const char *path)
{
  cleanup_free char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    dir[0] = '.', dir[1] = '\0';
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  return fsync(fd);
}

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        bool durable, err_t **e)
{
  cleanup_free char *tmp = xasprintf("%s.tmp-XXXXXX", path);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "create temp file for %s", path);
  int rc = -1;
  if (fchmod(fd, mode) < 0)
    err_sys(e, errno, "chmod %s", tmp);
  else if (fd_write_all(fd, data, len, e) < 0)
    err_wrap(e, "%s", tmp);
  else if (durable && fsync(fd) < 0)
    err_sys(e, errno, "fsync %s", tmp);
  else
    rc = 0;
  close(fd);
  if (rc == 0 && rename(tmp, path) < 0)
    rc = err_sys(e, errno, "rename %s to %s", tmp, path);
  if (rc < 0) {
    unlink(tmp);
    return -1;
  }
  if (durable && fsync_dir_of(path) < 0)
    return err_sys(e, errno, "fsync directory of %s", path);
  return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, err_t **e)
{
  return write_atomic(path, data, len, mode, true, e);
}

int file_write_atomic_nosync(const char *path, const void *data, size_t len, mode_t mode,
                             err_t **e)
{
  return write_atomic(path, data, len, mode, false, e);
}

int mkdir_p(const char *path, mode_t mode, err_t **e)
{
  if (!path || !*path)
    return err_set(e, ERR_INVALID, 0, "empty directory path");
  cleanup_free char *p = xstrdup(path);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char saved = *s;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return err_sys(e, errno, "mkdir %s", p);
    *s = saved;
    if (!saved)
      break;
  }
  struct stat st;
  if (stat(path, &st) < 0)
    return err_sys(e, errno, "stat %s", path);
  if (!S_ISDIR(st.st_mode))
    return err_set(e, ERR_INVALID, ENOTDIR, "%s exists and is not a directory", path);
  return 0;
}

char *path_join(const char *a, const char *b)
{
  size_t la = strlen(a);
  while (*b == '/')
    b++;
  if (la && a[la - 1] == '/')
    return xasprintf("%s%s", a, b);
  return xasprintf("%s/%s", a, b);
}

static int rm_at(int dirfd, const char *name, dev_t dev, err_t **e);

static int rm_children(int fd, dev_t dev, const char *what, err_t **e)
{
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err_sys(e, errno, "opendir %s", what);
  }
  cleanup_closedir DIR *dir = d;
  struct dirent *de;
  while ((de = readdir(dir))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    if (rm_at(dirfd(dir), de->d_name, dev, e) < 0)
      return err_wrap(e, "%s", what);
  }
  return 0;
}

static int rm_at(int dirfd, const char *name, dev_t dev, err_t **e)
{
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "stat %s", name);
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev)
      return err_set(e, ERR_PRECONDITION, EBUSY, "%s is a mount point", name);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return err_sys(e, errno, "open %s", name);
    if (rm_children(fd, dev, name, e) < 0)
      return -1;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
      return err_sys(e, errno, "rmdir %s", name);
    return 0;
  }
  if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
    return err_sys(e, errno, "unlink %s", name);
  return 0;
}

int rm_rf(const char *path, err_t **e)
{
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "stat %s", path);
  if (rm_at(AT_FDCWD, path, st.st_dev, e) < 0)
    return err_wrap(e, "remove %s", path);
  return 0;
}
