/* unpack.c - the streaming half of layer unpacking: fd -> blob sha256 -> decompress ->
 * diff sha256 -> tar entries, all in one pass, handed to unpack_fs.c to extract.
 *
 * Two libarchive readers are stacked. The outer one reads the fd (hashing every byte it
 * gets), detects the compression and yields the decompressed stream through the "raw"
 * format. The inner one parses tar from what the outer yields (hashing that too). This
 * keeps both digests exact without buffering the layer or reading it twice.
 *
 * Only gzip and zstd are registered (OCI layers are tar, tar+gzip or tar+zstd):
 * archive_read_support_filter_all would also let a hostile blob select decompressors
 * that libarchive runs as external programs (lrzip, lzop, grzip) and rarely used parsers.
 */
#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "image/unpack_fs.h"

#define CHUNK (128 * 1024)

static void md_free_fn(EVP_MD_CTX **m) { EVP_MD_CTX_free(*m); }
static void fs_free_fn(struct unpack_fs **fs) { unpack_fs_free(*fs); }
#define cleanup_md __attribute__((cleanup(md_free_fn)))
#define cleanup_fs __attribute__((cleanup(fs_free_fn)))

struct stream {
  int fd;
  const struct unpack_opts *o;
  EVP_MD_CTX *blob_md, *tar_md;
  uint64_t blob_size, tar_size;
  struct archive *outer, *inner;
  unsigned char blob_buf[CHUNK];
  unsigned char tar_buf[CHUNK];
  int read_errno;   /* the fd failed with this */
  bool cancelled;   /* o->cancelled said stop */
  uint64_t entry_end;  /* tar offset where the last header's data ends; UINT64_MAX: none yet */
  bool padded;      /* the missing tail was supplied, see inner_read_cb */
};

/* ARCHIVE_RETRY ("damaged tar header, you may skip it") is a failure here: a layer is
 * either intact or refused. */
static bool la_ok(int r) { return r == ARCHIVE_OK || r == ARCHIVE_WARN; }

static bool want_cancel(struct stream *s)
{
  if (!s->cancelled && s->o && s->o->cancelled && s->o->cancelled(s->o->arg))
    s->cancelled = true;
  return s->cancelled;
}

/* One read of the blob, hashed and reported: bytes read, 0 at the end, -1 on failure. */
static ssize_t read_blob(struct stream *s)
{
  if (want_cancel(s))
    return -1;
  ssize_t n;
  do
    n = read(s->fd, s->blob_buf, sizeof(s->blob_buf));
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    s->read_errno = errno;
    return -1;
  }
  EVP_DigestUpdate(s->blob_md, s->blob_buf, (size_t)n);
  s->blob_size += (uint64_t)n;
  if (n > 0 && s->o && s->o->progress)
    s->o->progress(s->o->arg, s->blob_size);
  return n;
}

static la_ssize_t outer_read_cb(struct archive *a, void *arg, const void **buf)
{
  struct stream *s = arg;
  ssize_t n = read_blob(s);
  if (n < 0) {
    archive_set_error(a, s->cancelled ? ECANCELED : s->read_errno, "read layer blob");
    return -1;
  }
  *buf = s->blob_buf;
  return n;
}

/* The inner (tar) reader's input: decompressed bytes from the outer reader, hashed. */
static la_ssize_t inner_read_cb(struct archive *a, void *arg, const void **buf)
{
  struct stream *s = arg;
  la_ssize_t n = archive_read_data(s->outer, s->tar_buf, sizeof(s->tar_buf));
  if (n < 0) {
    const char *why = archive_error_string(s->outer);
    archive_set_error(a, archive_errno(s->outer), "%s", why ? why : "corrupt or truncated data");
    return -1;
  }
  if (n == 0 && !s->padded && s->tar_size == s->entry_end) {
    /* Some writers (umoci insert) end the stream right after the last entry's data, with
     * neither its padding to a 512-byte block nor the end-of-archive blocks. Go's
     * archive/tar, and so containerd and docker, read such layers as complete, so the
     * zeros are supplied here, outside the diff_id: the digest still covers exactly the
     * bytes the image author published. A stream cut anywhere else stays an error. */
    size_t pad = (512 - s->tar_size % 512) % 512 + 1024;
    memset(s->tar_buf, 0, pad);
    s->padded = true;
    *buf = s->tar_buf;
    return (la_ssize_t)pad;
  }
  EVP_DigestUpdate(s->tar_md, s->tar_buf, (size_t)n);
  s->tar_size += (uint64_t)n;
  *buf = s->tar_buf;
  return n;
}

/* Turns a libarchive failure into the error that caused it. */
static int stream_error(struct stream *s, struct archive *a, err_t **e)
{
  if (s->cancelled)
    return err_set(e, ERR_CANCELLED, ECANCELED, "layer unpack cancelled");
  if (s->read_errno)
    return err_sys(e, s->read_errno, "read layer blob");
  /* libarchive fails some truncated gzip headers without a message */
  const char *why = archive_error_string(a);
  return err_set(e, ERR_INVALID, 0, "layer is not a valid tar stream: %s",
                 why ? why : "corrupt or truncated data");
}

static int open_outer(struct stream *s, err_t **e)
{
  struct archive_entry *ae;
  s->outer = archive_read_new();
  if (!s->outer)
    return err_set(e, ERR_RESOURCE, ENOMEM, "libarchive: out of memory");
  /* ARCHIVE_WARN: libarchive would use an external program; still acceptable */
  if (archive_read_support_filter_gzip(s->outer) < ARCHIVE_WARN ||
      archive_read_support_filter_zstd(s->outer) < ARCHIVE_WARN ||
      archive_read_support_format_raw(s->outer) != ARCHIVE_OK)
    return err_set(e, ERR_INTERNAL, 0, "libarchive: %s", archive_error_string(s->outer));
  if (archive_read_open(s->outer, s, NULL, outer_read_cb, NULL) != ARCHIVE_OK)
    return stream_error(s, s->outer, e);
  int r = archive_read_next_header(s->outer, &ae);
  if (r == ARCHIVE_EOF)
    return err_set(e, ERR_INVALID, 0, "layer blob is empty");
  if (!la_ok(r))
    return stream_error(s, s->outer, e);
  /* one compression filter plus the raw input at most */
  if (archive_filter_count(s->outer) > 2)
    return err_set(e, ERR_INVALID, 0, "layer is compressed more than once (%s)",
                   archive_filter_name(s->outer, 0));
  return 0;
}

static int open_inner(struct stream *s, err_t **e)
{
  s->inner = archive_read_new();
  if (!s->inner)
    return err_set(e, ERR_RESOURCE, ENOMEM, "libarchive: out of memory");
  /* format_tar reads ustar, pax and GNU tar */
  if (archive_read_support_format_tar(s->inner) != ARCHIVE_OK)
    return err_set(e, ERR_INTERNAL, 0, "libarchive: %s", archive_error_string(s->inner));
  if (archive_read_open(s->inner, s, NULL, inner_read_cb, NULL) != ARCHIVE_OK)
    return stream_error(s, s->inner, e);
  return 0;
}

static int entry_data_cb(void *arg, const void **buf, size_t *len, int64_t *off, err_t **e)
{
  struct stream *s = arg;
  la_int64_t o;
  int r = archive_read_data_block(s->inner, buf, len, &o);
  if (r == ARCHIVE_EOF)
    return 0;
  if (!la_ok(r))
    return stream_error(s, s->inner, e);
  *off = o;
  return 1;
}

/* libarchive offers a path in the locale's charset; a pax UTF-8 name the C locale cannot
 * represent is only available as UTF-8, which is also what the bytes on disk should be. */
static const char *entry_path(struct archive_entry *ae)
{
  const char *p = archive_entry_pathname(ae);
  return p ? p : archive_entry_pathname_utf8(ae);
}

static const char *entry_hardlink(struct archive_entry *ae)
{
  const char *p = archive_entry_hardlink(ae);
  return p ? p : archive_entry_hardlink_utf8(ae);
}

static const char *entry_symlink(struct archive_entry *ae)
{
  const char *p = archive_entry_symlink(ae);
  return p ? p : archive_entry_symlink_utf8(ae);
}

/* 1 and *kind for a type crisp extracts, 0 for one it skips (sockets), -1 otherwise. */
static int entry_kind(struct archive_entry *ae, enum unpack_kind *kind)
{
  if (entry_hardlink(ae)) {
    *kind = UNPACK_HARDLINK;
    return 1;
  }
  switch (archive_entry_filetype(ae)) {
  case AE_IFREG: *kind = UNPACK_FILE; return 1;
  case AE_IFDIR: *kind = UNPACK_DIR; return 1;
  case AE_IFLNK: *kind = UNPACK_SYMLINK; return 1;
  case AE_IFCHR: *kind = UNPACK_CHAR; return 1;
  case AE_IFBLK: *kind = UNPACK_BLOCK; return 1;
  case AE_IFIFO: *kind = UNPACK_FIFO; return 1;
  case AE_IFSOCK: return 0;
  default: return -1;
  }
}

static struct timespec entry_mtime(struct archive_entry *ae)
{
  if (!archive_entry_mtime_is_set(ae))
    return (struct timespec){0, UTIME_OMIT};
  return (struct timespec){archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)};
}

static struct timespec entry_atime(struct archive_entry *ae)
{
  if (!archive_entry_atime_is_set(ae))
    return entry_mtime(ae);
  return (struct timespec){archive_entry_atime(ae), archive_entry_atime_nsec(ae)};
}

static bool valid_id(la_int64_t id) { return id >= 0 && id < (la_int64_t)UINT32_MAX; }

/* A pax header may carry an xattr twice (LIBARCHIVE.xattr and SCHILY.xattr); the last
 * value wins and the name is listed once. */
static void decode_xattrs(struct archive_entry *ae, struct unpack_entry *en,
                          struct unpack_xattr **xattrs)
{
  int n = archive_entry_xattr_reset(ae);
  *xattrs = n > 0 ? xcalloc((size_t)n, sizeof(**xattrs)) : NULL;
  for (int i = 0; i < n; i++) {
    struct unpack_xattr x;
    if (archive_entry_xattr_next(ae, &x.name, &x.value, &x.size) != ARCHIVE_OK)
      break;
    size_t j = 0;
    while (j < en->n_xattrs && strcmp((*xattrs)[j].name, x.name) != 0)
      j++;
    (*xattrs)[j] = x;
    if (j == en->n_xattrs)
      en->n_xattrs++;
  }
  en->xattrs = *xattrs;
}

/* Fills en from ae; xattrs points into ae and lives until the next header. */
static int decode_entry(struct stream *s, struct archive_entry *ae, struct unpack_entry *en,
                        struct unpack_xattr **xattrs, err_t **e)
{
  const char *path = entry_path(ae);
  if (!path)
    return err_set(e, ERR_INVALID, 0, "entry without a readable path name");
  *en = (struct unpack_entry){.path = path};
  int known = entry_kind(ae, &en->kind);
  if (known <= 0)
    return known < 0 ? err_set(e, ERR_INVALID, 0, "unsupported entry type 0%o",
                               (unsigned)archive_entry_filetype(ae))
                     : 0;
  if (!valid_id(archive_entry_uid(ae)) || !valid_id(archive_entry_gid(ae)))
    return err_set(e, ERR_INVALID, 0, "invalid uid or gid");
  en->perm = archive_entry_perm(ae) & 07777;
  en->uid = (uid_t)archive_entry_uid(ae);
  en->gid = (gid_t)archive_entry_gid(ae);
  en->mtime = entry_mtime(ae);
  en->atime = entry_atime(ae);
  en->rdev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));
  en->link = en->kind == UNPACK_HARDLINK ? entry_hardlink(ae) : entry_symlink(ae);
  en->size = archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0
                 ? (uint64_t)archive_entry_size(ae) : 0;
  if (en->kind == UNPACK_FILE && s->o && s->o->max_entry_size && en->size > s->o->max_entry_size)
    return err_set(e, ERR_RESOURCE, 0, "file of %llu bytes is over the %llu byte cap",
                   (unsigned long long)en->size, (unsigned long long)s->o->max_entry_size);
  decode_xattrs(ae, en, xattrs);
  return 1;
}

static int extract_entries(struct stream *s, struct unpack_fs *fs, uint64_t *files, err_t **e)
{
  for (;;) {
    if (want_cancel(s))
      return stream_error(s, s->inner, e);
    struct archive_entry *ae;
    int r = archive_read_next_header(s->inner, &ae);
    if (r == ARCHIVE_EOF)
      return 0;
    if (!la_ok(r))
      return stream_error(s, s->inner, e);
    /* the header blocks are consumed: the entry's data starts here */
    la_int64_t data = archive_filter_bytes(s->inner, 0);
    la_int64_t size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
    s->entry_end = data >= 0 && size >= 0 ? (uint64_t)data + (uint64_t)size : UINT64_MAX;
    struct unpack_entry en;
    cleanup_free struct unpack_xattr *xattrs = NULL;
    int known = decode_entry(s, ae, &en, &xattrs, e);
    if (known < 0) {
      cleanup_free char *q = unpack_quote_name(entry_path(ae) ? entry_path(ae) : "?");
      return err_wrap(e, "layer entry %s", q);
    }
    if (known == 0)
      continue;
    if (unpack_fs_apply(fs, &en, entry_data_cb, s, e) < 0)
      return -1;
    (*files)++;
  }
}

/* Reads what follows the tar end-of-archive marker, so the digests cover every byte. */
static int drain(struct stream *s, err_t **e)
{
  for (;;) {
    la_ssize_t n = archive_read_data(s->outer, s->tar_buf, sizeof(s->tar_buf));
    if (n < 0)
      return stream_error(s, s->outer, e);
    if (n == 0)
      break;
    EVP_DigestUpdate(s->tar_md, s->tar_buf, (size_t)n);
    s->tar_size += (uint64_t)n;
  }
  for (;;) {
    ssize_t n = read_blob(s);
    if (n < 0)
      return stream_error(s, s->outer, e);
    if (n == 0)
      return 0;
  }
}

static void finish_digest(EVP_MD_CTX *md, char out[UNPACK_DIGEST_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(md, sum, &n);
  memcpy(out, "sha256:", 7);
  for (unsigned int i = 0; i < n && i < 32; i++) {
    out[7 + 2 * i] = hex[sum[i] >> 4];
    out[8 + 2 * i] = hex[sum[i] & 15];
  }
  out[UNPACK_DIGEST_LEN] = '\0';
}

static int new_sha256(EVP_MD_CTX **md, err_t **e)
{
  *md = EVP_MD_CTX_new();
  if (!*md || EVP_DigestInit_ex(*md, EVP_sha256(), NULL) != 1)
    return err_set(e, ERR_INTERNAL, 0, "openssl: cannot start sha256");
  return 0;
}

static int run(struct stream *s, const char *dest_dir, struct unpack_result *out, err_t **e)
{
  cleanup_fs struct unpack_fs *fs = NULL;
  uint64_t files = 0;
  if (unpack_fs_open(dest_dir, &fs, e) < 0 || open_outer(s, e) < 0 || open_inner(s, e) < 0 ||
      extract_entries(s, fs, &files, e) < 0 || drain(s, e) < 0 || unpack_fs_finish(fs, e) < 0)
    return -1;
  memset(out, 0, sizeof(*out));
  finish_digest(s->blob_md, out->blob_digest);
  finish_digest(s->tar_md, out->diff_id);
  out->blob_size = s->blob_size;
  out->tar_size = s->tar_size;
  out->files = files;
  out->xattrs_skipped = unpack_fs_xattrs_skipped(fs);
  return 0;
}

int unpack_layer(int fd, const char *dest_dir, const struct unpack_opts *o,
                 struct unpack_result *out, err_t **e)
{
  cleanup_free struct stream *s = xcalloc(1, sizeof(*s));
  s->fd = fd;
  s->o = o;
  s->entry_end = UINT64_MAX;
  cleanup_md EVP_MD_CTX *blob_md = NULL;
  cleanup_md EVP_MD_CTX *tar_md = NULL;
  if (new_sha256(&blob_md, e) < 0 || new_sha256(&tar_md, e) < 0)
    return -1;
  s->blob_md = blob_md;
  s->tar_md = tar_md;
  int rc = run(s, dest_dir, out, e);
  /* the inner reader pulls from the outer one, so it goes first */
  if (s->inner)
    archive_read_free(s->inner);
  if (s->outer)
    archive_read_free(s->outer);
  return rc;
}
