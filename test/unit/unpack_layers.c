/* unpack_layers.c - layer builders and checks shared by the unpack tests. */
#include "unpack_layers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/file.h"
#include "base/xalloc.h"

/* --- fixture: T/root is the layer, T/tl_sentinel must never change ------------------ */
char tl_dir[64];
char *tl_root, *tl_sentinel;

void tl_setup(void)
{
  snprintf(tl_dir, sizeof(tl_dir), "/tmp/crisp-unpack-XXXXXX");
  cr_assert_not_null(mkdtemp(tl_dir));
  tl_root = path_join(tl_dir, "root");
  tl_sentinel = path_join(tl_dir, "sentinel");
  cr_assert_eq(mkdir(tl_root, 0755), 0);
  cr_assert_eq(mkdir(tl_sentinel, 0755), 0);
  char *keep = path_join(tl_sentinel, "keep");
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(keep, "keep", 4, 0644, &e), 0);
  free(keep);
}

void tl_teardown(void)
{
  err_t *e = NULL;
  if (tl_dir[0] && rm_rf(tl_dir, &e) < 0)
    err_free(&e);
  free(tl_root);
  free(tl_sentinel);
}

char *tl_path(const char *rel) { return path_join(tl_root, rel); }

/* Nothing but root/ and tl_sentinel/keep ("keep") exists in T. */
void tl_assert_outside_untouched(void)
{
  DIR *d = opendir(tl_dir);
  cr_assert_not_null(d);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    n++;
    cr_expect(strcmp(de->d_name, "root") == 0 || strcmp(de->d_name, "sentinel") == 0,
              "unexpected %s/%s", tl_dir, de->d_name);
  }
  closedir(d);
  cr_expect_eq(n, 2);
  d = opendir(tl_sentinel);
  n = 0;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') {
      n++;
      cr_expect_str_eq(de->d_name, "keep");
    }
  closedir(d);
  cr_expect_eq(n, 1);
  char *keep = path_join(tl_sentinel, "keep"), *data = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(keep, 100, &data, NULL, &e), 0);
  cr_expect_str_eq(data, "keep");
  free(keep);
  free(data);
}

/* --- building layers ---------------------------------------------------------- */
static la_ssize_t to_buf(struct archive *a, void *arg, const void *p, size_t n)
{
  buf_append(arg, p, n);
  return (la_ssize_t)n;
}

static void write_ent(struct archive *a, const struct tl_ent *x)
{
  struct archive_entry *ae = archive_entry_new();
  mode_t type = x->type ? x->type : AE_IFREG;
  archive_entry_set_pathname_utf8(ae, x->path);
  archive_entry_set_filetype(ae, type);
  archive_entry_set_perm(ae, x->perm ? x->perm : type == AE_IFDIR ? 0755 : 0644);
  archive_entry_set_uid(ae, x->uid);
  archive_entry_set_gid(ae, x->gid);
  archive_entry_set_mtime(ae, x->mtime ? x->mtime : TL_MTIME, 0);
  size_t len = x->data ? strlen(x->data) : 0;
  archive_entry_set_size(ae, (la_int64_t)len);
  if (x->link)
    archive_entry_set_symlink(ae, x->link);
  if (x->hardlink)
    archive_entry_set_hardlink(ae, x->hardlink);
  archive_entry_set_rdevmajor(ae, x->major);
  archive_entry_set_rdevminor(ae, x->minor);
  if (x->xname)
    archive_entry_xattr_add_entry(ae, x->xname, x->xval, x->xlen);
  cr_assert_eq(archive_write_header(a, ae), ARCHIVE_OK, "%s", archive_error_string(a));
  if (len)
    cr_assert_eq(archive_write_data(a, x->data, len), (la_ssize_t)len);
  archive_entry_free(ae);
}

struct buf tl_make_tar(const struct tl_ent *ents, size_t n)
{
  struct buf out = BUF_INIT;
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  cr_assert_eq(archive_write_open(a, &out, NULL, to_buf, NULL), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++)
    write_ent(a, &ents[i]);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

/* data compressed with filter (ARCHIVE_FILTER_GZIP or _ZSTD) */
struct buf tl_compress(const struct buf *data, int filter)
{
  struct buf out = BUF_INIT;
  struct archive *a = archive_write_new();
  archive_write_set_format_raw(a);
  cr_assert_eq(archive_write_add_filter(a, filter), ARCHIVE_OK, "%s", archive_error_string(a));
  archive_write_set_bytes_in_last_block(a, 1);
  cr_assert_eq(archive_write_open(a, &out, NULL, to_buf, NULL), ARCHIVE_OK);
  struct archive_entry *ae = archive_entry_new();
  archive_entry_set_pathname(ae, "data");
  archive_entry_set_filetype(ae, AE_IFREG);
  cr_assert_eq(archive_write_header(a, ae), ARCHIVE_OK);
  cr_assert_eq(archive_write_data(a, data->data, data->len), (la_ssize_t)data->len);
  archive_entry_free(ae);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

static int blob_fd(const void *p, size_t n)
{
  int fd = memfd_create("layer", MFD_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, p, n), (ssize_t)n);
  cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
  return fd;
}

void tl_sha256(const void *p, size_t n, char out[UNPACK_DIGEST_LEN + 1])
{
  unsigned char sum[32];
  unsigned int len = 0;
  EVP_Digest(p, n, sum, &len, EVP_sha256(), NULL);
  memcpy(out, "sha256:", 7);
  for (int i = 0; i < 32; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", sum[i]);
}

int tl_unpack_blob(const void *p, size_t n, const struct unpack_opts *o,
                       struct unpack_result *res, err_t **e)
{
  int fd = blob_fd(p, n);
  int rc = unpack_layer(fd, tl_root, o, res, e);
  close(fd);
  return rc;
}

int tl_unpack_ents(const struct tl_ent *ents, size_t n, struct unpack_result *res, err_t **e)
{
  struct buf tar = tl_make_tar(ents, n);
  int rc = tl_unpack_blob(tar.data, tar.len, NULL, res, e);
  buf_free(&tar);
  return rc;
}


/* The layer fails with ERR_INVALID, the message names `entry` and says `why`, and
 * nothing outside the layer changed. */
void tl_expect_refused(const struct tl_ent *ents, size_t n, const char *entry, const char *why)
{
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_ents(ents, n, &res, &e), -1, "layer with %s was accepted", entry);
  cr_assert_not_null(e);
  cr_expect_eq(e->code, ERR_INVALID, "code %d: %s", e->code, e->msg);
  char *quoted = xasprintf("layer entry \"%s\"", entry);
  cr_expect(strstr(e->msg, quoted), "message \"%s\" does not name %s", e->msg, quoted);
  cr_expect(strstr(e->msg, why), "message \"%s\" does not say \"%s\"", e->msg, why);
  free(quoted);
  err_free(&e);
  tl_assert_outside_untouched();
}

struct stat tl_lstat(const char *rel)
{
  struct stat st;
  char *p = tl_path(rel);
  cr_assert_eq(lstat(p, &st), 0, "lstat %s: %s", p, strerror(errno));
  free(p);
  return st;
}

bool tl_exists(const char *rel)
{
  struct stat st;
  char *p = tl_path(rel);
  int rc = lstat(p, &st);
  free(p);
  return rc == 0;
}

char *tl_read(const char *rel)
{
  char *p = tl_path(rel), *data = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(p, 16 << 20, &data, NULL, &e), 0, "%s", e ? e->msg : "");
  free(p);
  return data;
}
/* A raw ustar header block: libarchive's writer will not put data in a hardlink entry. */
void tl_ustar_block(struct buf *b, const char *name, char type, const char *link,
                        const char *data)
{
  char h[512] = {0};
  size_t len = data ? strlen(data) : 0;
  memcpy(h, name, strlen(name));
  memcpy(h + 100, "0000644", 7);
  memcpy(h + 108, "0000000", 7);
  memcpy(h + 116, "0000000", 7);
  snprintf(h + 124, 12, "%011o", (unsigned)len & 0777);
  memcpy(h + 136, "14000000000", 11);
  memset(h + 148, ' ', 8);
  h[156] = type;
  if (link)
    memcpy(h + 157, link, strlen(link));
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++)
    sum += (unsigned char)h[i];
  snprintf(h + 148, 8, "%06o", sum);
  buf_append(b, h, 512);
  if (len) {
    char pad[512] = {0};
    memcpy(pad, data, len);
    buf_append(b, pad, 512);
  }
}
