/* import_spool.c - copies an image archive's files out of a stream. See import_spool.h. */
#include "image/import_spool.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

#define SPOOL_PATH_MAX 4096
#define SPOOL_LINK_HOPS 8

struct spool {
  struct spool_file *v;
  size_t n, cap;
};

void spool_free(struct spool *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].path);
    free(s->v[i].file);
    free(s->v[i].link);
  }
  free(s->v);
  free(s);
}

/* Cleans an archive path against base (a directory path, "" for the root): "." and
 * empty components go, ".." pops one (allow_up) or is refused; climbing above the
 * root is refused. NULL when refused. */
static char *clean_path(const char *base, const char *p, bool allow_up)
{
  if (strlen(p) > SPOOL_PATH_MAX)
    return NULL;
  cleanup_free char *all = xasprintf("%s/%s", p[0] == '/' ? "" : base, p);
  char **parts = xcalloc(strlen(all) + 1, sizeof(*parts));
  size_t n = 0;
  bool ok = true;
  for (char *save = NULL, *c = strtok_r(all, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0) {
      if (!allow_up || n == 0) {
        ok = false;
        break;
      }
      n--;
      continue;
    }
    parts[n++] = c;
  }
  struct buf b = BUF_INIT;
  for (size_t i = 0; ok && i < n; i++) {
    if (i)
      buf_putc(&b, '/');
    buf_puts(&b, parts[i]);
  }
  free(parts);
  if (!ok || b.len == 0) {
    buf_free(&b);
    return NULL;
  }
  return buf_steal(&b);
}

static char *dir_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
}

static struct spool_file *spool_add(struct spool *s)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 32;
    s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
  }
  struct spool_file *f = &s->v[s->n++];
  memset(f, 0, sizeof(*f));
  return f;
}

static void hex_digest(EVP_MD_CTX *md, char out[72])
{
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md, sum, &len);
  memcpy(out, "sha256:", 7);
  for (unsigned int i = 0; i < len && i < 32; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", sum[i]);
}

void spool_sha256(const void *data, size_t len, char out[72])
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md)
    abort();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  EVP_DigestUpdate(md, data, len);
  hex_digest(md, out);
  EVP_MD_CTX_free(md);
}

/* Copies the current entry's data into f->file, hashing it. */
static int copy_data(struct archive *a, struct spool_file *f, err_t **e)
{
  cleanup_close int fd = open(f->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return err_sys(e, errno, "spool %s", f->path);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md)
    abort();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  static __thread char chunk[1 << 16];
  int rc = 0;
  for (;;) {
    la_ssize_t got = archive_read_data(a, chunk, sizeof(chunk));
    if (got == 0)
      break;
    if (got < 0) {
      rc = err_set(e, ERR_INVALID, 0, "archive entry %s: %s", f->path, archive_error_string(a));
      break;
    }
    EVP_DigestUpdate(md, chunk, (size_t)got);
    f->size += (uint64_t)got;
    if (fd_write_all(fd, chunk, (size_t)got, e) < 0) {
      rc = err_wrap(e, "spool %s", f->path);
      break;
    }
  }
  hex_digest(md, f->digest);
  EVP_MD_CTX_free(md);
  return rc;
}

static int add_entry(struct spool *s, struct archive *a, struct archive_entry *ent,
                     const char *dir, err_t **e)
{
  const char *name = archive_entry_pathname(ent);
  const char *hard = archive_entry_hardlink(ent);
  mode_t type = archive_entry_filetype(ent);
  if (!name)
    return err_set(e, ERR_INVALID, 0, "archive entry without a name");
  if (!hard && type != AE_IFREG && type != AE_IFLNK)
    return 0;   /* directories and the rest carry nothing an image needs */
  cleanup_free char *path = clean_path("", name, false);
  if (!path)
    return err_set(e, ERR_INVALID, 0, "archive entry \"%s\": not a plain relative path", name);
  if (s->n >= SPOOL_MAX_ENTRIES)
    return err_set(e, ERR_RESOURCE, 0, "archive has more than %d files", SPOOL_MAX_ENTRIES);
  cleanup_free char *link = NULL;
  if (hard) {
    link = clean_path("", hard, false);
  } else if (type == AE_IFLNK) {
    const char *target = archive_entry_symlink(ent);
    cleanup_free char *base = dir_of(path);
    link = target ? clean_path(base, target, true) : NULL;
  }
  if ((hard || type == AE_IFLNK) && !link)
    return err_set(e, ERR_INVALID, 0, "archive entry \"%s\": link leaves the archive", name);
  struct spool_file *f = spool_add(s);
  f->path = steal(&path);
  if (link) {
    f->link = steal(&link);
    return 0;
  }
  f->file = xasprintf("%s/%zu", dir, s->n);
  return copy_data(a, f, e);
}

int spool_read(int fd, const char *dir, struct spool **out, err_t **e)
{
  struct archive *a = archive_read_new();
  if (!a)
    abort();
  struct spool *s = xcalloc(1, sizeof(*s));
  int rc = 0;
  /* only the compressions image tooling writes, and tar only */
  if (archive_read_support_filter_gzip(a) < ARCHIVE_WARN ||
      archive_read_support_filter_zstd(a) < ARCHIVE_WARN ||
      archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
    rc = err_set(e, ERR_INVALID, 0, "not a tar archive: %s", archive_error_string(a));
  }
  while (rc == 0) {
    struct archive_entry *ent;
    int r = archive_read_next_header(a, &ent);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      rc = err_set(e, ERR_INVALID, 0, "%s: %s", s->n ? "archive is damaged" : "not a tar archive",
                   archive_error_string(a));
      break;
    }
    rc = add_entry(s, a, ent, dir, e);
  }
  if (rc == 0 && s->n == 0)
    rc = err_set(e, ERR_INVALID, 0, "the archive holds no files");
  archive_read_free(a);
  if (rc < 0) {
    spool_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

static const struct spool_file *lookup(const struct spool *s, const char *path)
{
  for (size_t i = s->n; i-- > 0;)   /* a later entry replaces an earlier one */
    if (strcmp(s->v[i].path, path) == 0)
      return &s->v[i];
  return NULL;
}

int spool_find(const struct spool *s, const char *path, const struct spool_file **out, err_t **e)
{
  cleanup_free char *p = clean_path("", path, false);
  if (!p)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a path inside the archive", path);
  const struct spool_file *f = lookup(s, p);
  for (int hop = 0; f && f->link; hop++) {
    if (hop == SPOOL_LINK_HOPS)
      return err_set(e, ERR_INVALID, 0, "%s: too many links", path);
    f = lookup(s, f->link);
  }
  if (!f)
    return err_set(e, ERR_NOT_FOUND, 0, "the archive has no file %s", p);
  *out = f;
  return 0;
}

int spool_slurp(const struct spool_file *f, size_t max, char **data, size_t *len, err_t **e)
{
  if (f->size > max)
    return err_set(e, ERR_RESOURCE, 0, "%s is over %zu bytes", f->path, max);
  if (file_read_all(f->file, max, data, len, e) < 0)
    return err_wrap(e, "read %s", f->path);
  return 0;
}
