/* store_usage.c - disk usage of the store (for ImageFsInfo) and the mount point under it. */
#include "image/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

#define MOUNTINFO_MAX (16u << 20)
#define WALK_MAX_DEPTH 1024

struct inode_key {
  dev_t dev;
  ino_t ino;
};

/* Counts like `du -x`: allocated blocks, each hard-linked inode once, no other mounts. */
struct walk {
  uint64_t bytes, inodes;
  void *seen;   /* tsearch tree of inode_key for files with more than one link */
  dev_t dev;
};

static int cmp_inode(const void *a, const void *b)
{
  const struct inode_key *x = a, *y = b;
  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return 0;
}

static void count(struct walk *w, const struct stat *st)
{
  if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
    struct inode_key *k = xmalloc(sizeof(*k));
    k->dev = st->st_dev;
    k->ino = st->st_ino;
    void *slot = tsearch(k, &w->seen, cmp_inode);
    if (!slot)
      abort();   /* out of memory, as xmalloc would */
    if (*(struct inode_key **)slot != k) {
      free(k);
      return;
    }
  }
  w->bytes += (uint64_t)st->st_blocks * 512;
  w->inodes++;
}

static int walk_dir(int fd, struct walk *w, unsigned depth, err_t **e);

/* Entries vanish while we walk (a layer deleted, a temp renamed): that is not an error. */
static int walk_entry(int dirfd, const char *name, struct walk *w, unsigned depth, err_t **e)
{
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "stat %s", name);
  count(w, &st);
  if (!S_ISDIR(st.st_mode) || st.st_dev != w->dev)
    return 0;
  if (depth >= WALK_MAX_DEPTH)
    return err_set(e, ERR_RESOURCE, 0, "directories nested deeper than %d", WALK_MAX_DEPTH);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "open %s", name);
  if (walk_dir(fd, w, depth + 1, e) < 0)
    return err_wrap(e, "%s", name);
  return 0;
}

static int walk_dir(int fd, struct walk *w, unsigned depth, err_t **e)
{
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err_sys(e, errno, "opendir");
  }
  cleanup_closedir DIR *dir = d;
  struct dirent *de;
  while ((de = readdir(dir))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    if (walk_entry(dirfd(dir), de->d_name, w, depth, e) < 0)
      return -1;
  }
  return 0;
}

static int walk_store(const struct store *s, uint64_t *bytes, uint64_t *inodes, err_t **e)
{
  static const char *const tops[] = {"content", "layers", "images", "holds", "quarantine"};
  struct stat st;
  if (stat(s->root, &st) < 0)
    return err_sys(e, errno, "stat %s", s->root);
  struct walk w = {.dev = st.st_dev};
  cleanup_close int rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return err_sys(e, errno, "open %s", s->root);
  int rc = 0;
  for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]) && rc == 0; i++)
    rc = walk_entry(rootfd, tops[i], &w, 0, e);
  tdestroy(w.seen, free);
  if (rc < 0)
    return err_wrap(e, "disk usage of %s", s->root);
  *bytes = w.bytes;
  *inodes = w.inodes;
  return 0;
}

int store_usage(struct store *s, uint64_t *bytes, uint64_t *inodes, char **mountpoint,
                err_t **e)
{
  pthread_mutex_lock(&s->mu);
  bool cached = s->usage_valid;
  uint64_t gen = s->generation, b = s->usage_bytes, n = s->usage_inodes;
  pthread_mutex_unlock(&s->mu);
  /* the walk runs unlocked: it can take seconds on a big store */
  if (!cached && walk_store(s, &b, &n, e) < 0)
    return -1;
  if (!cached) {
    pthread_mutex_lock(&s->mu);
    if (s->generation == gen) {  /* else a change raced the walk: do not cache it */
      s->usage_valid = true;
      s->usage_bytes = b;
      s->usage_inodes = n;
    }
    pthread_mutex_unlock(&s->mu);
  }
  if (mountpoint && store_mountpoint(s->root_real, mountpoint, e) < 0)
    return -1;
  *bytes = b;
  *inodes = n;
  return 0;
}

/* ---- mount point --------------------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape_octal(const char *s, size_t len)
{
  char *out = xmalloc(len + 1), *o = out;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      *o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

/* The fifth field of a mountinfo line, unescaped; NULL if the line is short. */
static char *mountinfo_target(const char *line, const char *end)
{
  const char *p = line;
  for (int field = 0; field < 4; field++) {
    p = memchr(p, ' ', (size_t)(end - p));
    if (!p)
      return NULL;
    p++;
  }
  const char *q = memchr(p, ' ', (size_t)(end - p));
  return unescape_octal(p, (size_t)((q ? q : end) - p));
}

static bool covers(const char *mnt, const char *path)
{
  size_t n = strlen(mnt);
  if (n == 1 && mnt[0] == '/')
    return true;
  return strncmp(path, mnt, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int store_mountpoint(const char *path, char **out, err_t **e)
{
  cleanup_free char *text = NULL;
  if (file_read_all("/proc/self/mountinfo", MOUNTINFO_MAX, &text, NULL, e) < 0)
    return err_wrap(e, "find the mount point of %s", path);
  char *best = NULL;
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    if (!end)
      end = line + strlen(line);
    char *mnt = mountinfo_target(line, end);
    /* later lines are mounted on top of earlier ones: ties go to the later line */
    if (mnt && covers(mnt, path) && (!best || strlen(mnt) >= strlen(best))) {
      free(best);
      best = mnt;
    } else {
      free(mnt);
    }
    line = *end ? end + 1 : end;
  }
  if (!best)
    return err_set(e, ERR_NOT_FOUND, 0, "no mount holds %s", path);
  *out = best;
  return 0;
}
