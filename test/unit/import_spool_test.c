/* import_spool_test.c - the archive spool of `crispd images import`: files come out
 * under numbered names with their digests, links resolve inside the archive only. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/file.h"
#include "image/import_spool.h"
#include "unpack_layers.h"

TestSuite(import_spool, .init = tl_setup, .fini = tl_teardown);

static int spool_blob(const struct buf *b, struct spool **out, err_t **e)
{
  int fd = memfd_create("archive", MFD_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(fd_write_all(fd, b->data, b->len, e), 0);
  cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
  int rc = spool_read(fd, tl_root, out, e);
  close(fd);
  return rc;
}

static struct spool *spool_ents(const struct tl_ent *ents, size_t n)
{
  struct buf tar = tl_make_tar(ents, n);
  struct spool *s = NULL;
  err_t *e = NULL;
  cr_assert_eq(spool_blob(&tar, &s, &e), 0, "%s", e ? e->msg : "");
  buf_free(&tar);
  return s;
}

static char *content(const struct spool_file *f)
{
  char *data = NULL;
  size_t len;
  err_t *e = NULL;
  cr_assert_eq(spool_slurp(f, 1 << 20, &data, &len, &e), 0, "%s", e ? e->msg : "");
  return data;
}

static void expect_refused(const struct tl_ent *ents, size_t n, const char *why)
{
  struct buf tar = tl_make_tar(ents, n);
  struct spool *s = NULL;
  err_t *e = NULL;
  cr_assert_eq(spool_blob(&tar, &s, &e), -1);
  cr_expect_eq(e->code, ERR_INVALID);
  cr_expect(strstr(e->msg, why), "\"%s\" does not say \"%s\"", e->msg, why);
  err_free(&e);
  buf_free(&tar);
  tl_assert_outside_untouched();
}

Test(import_spool, finds_files_by_cleaned_path_with_their_digest)
{
  const struct tl_ent ents[] = {
      {.path = "./index.json", .data = "{}"},
      {.path = "blobs", .type = AE_IFDIR},
      {.path = "/blobs/sha256/./abc", .data = "hello"},
  };
  struct spool *s = spool_ents(ents, TL_N(ents));
  const struct spool_file *f;
  err_t *e = NULL;
  cr_assert_eq(spool_find(s, "blobs/sha256/abc", &f, &e), 0);
  cr_expect_eq(f->size, 5);
  char want[UNPACK_DIGEST_LEN + 1];
  tl_sha256("hello", 5, want);
  cr_expect_str_eq(f->digest, want);
  char *data = content(f);
  cr_expect_str_eq(data, "hello");
  free(data);
  cr_assert_eq(spool_find(s, "index.json", &f, &e), 0);
  cr_assert_eq(spool_find(s, "missing.json", &f, &e), -1);
  cr_expect_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
  spool_free(s);
}

Test(import_spool, copies_under_numbered_names_never_the_archives)
{
  const struct tl_ent ents[] = {{.path = "manifest.json", .data = "[]"},
                                {.path = "x/layer.tar", .data = "t"}};
  struct spool *s = spool_ents(ents, TL_N(ents));
  DIR *d = opendir(tl_root);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') {
      n++;
      cr_expect(strspn(de->d_name, "0123456789") == strlen(de->d_name), "%s", de->d_name);
    }
  closedir(d);
  cr_expect_eq(n, 2);
  spool_free(s);
}

Test(import_spool, follows_docker_layer_symlinks_and_hardlinks_inside_the_archive)
{
  const struct tl_ent ents[] = {
      {.path = "aaa.tar", .data = "LAYER"},
      {.path = "b/layer.tar", .type = AE_IFLNK, .link = "../aaa.tar"},
      {.path = "c/layer.tar", .type = AE_IFLNK, .link = "/b/layer.tar"},
      {.path = "d/layer.tar", .hardlink = "aaa.tar"},
  };
  struct spool *s = spool_ents(ents, TL_N(ents));
  const char *paths[] = {"b/layer.tar", "c/layer.tar", "d/layer.tar"};
  for (size_t i = 0; i < 3; i++) {
    const struct spool_file *f;
    err_t *e = NULL;
    cr_assert_eq(spool_find(s, paths[i], &f, &e), 0, "%s: %s", paths[i], e ? e->msg : "");
    cr_expect_str_eq(f->path, "aaa.tar");
    char *data = content(f);
    cr_expect_str_eq(data, "LAYER");
    free(data);
  }
  spool_free(s);
}

Test(import_spool, a_later_entry_replaces_an_earlier_one)
{
  const struct tl_ent ents[] = {{.path = "index.json", .data = "old"},
                                {.path = "index.json", .data = "new"}};
  struct spool *s = spool_ents(ents, TL_N(ents));
  const struct spool_file *f;
  err_t *e = NULL;
  cr_assert_eq(spool_find(s, "index.json", &f, &e), 0);
  char *data = content(f);
  cr_expect_str_eq(data, "new");
  free(data);
  spool_free(s);
}

Test(import_spool, link_loops_end)
{
  const struct tl_ent ents[] = {{.path = "a", .type = AE_IFLNK, .link = "b"},
                                {.path = "b", .type = AE_IFLNK, .link = "a"}};
  struct spool *s = spool_ents(ents, TL_N(ents));
  const struct spool_file *f;
  err_t *e = NULL;
  cr_assert_eq(spool_find(s, "a", &f, &e), -1);
  cr_expect(strstr(e->msg, "too many links"), "%s", e->msg);
  err_free(&e);
  spool_free(s);
}

Test(import_spool, refuses_entries_that_climb_out)
{
  const struct tl_ent ents[] = {{.path = "../../sentinel/keep", .data = "gotcha"}};
  expect_refused(ents, TL_N(ents), "not a plain relative path");
}

Test(import_spool, refuses_links_that_leave_the_archive)
{
  const struct tl_ent sym[] = {{.path = "a/layer.tar", .type = AE_IFLNK, .link = "../../etc/passwd"}};
  expect_refused(sym, TL_N(sym), "link leaves the archive");
  const struct tl_ent hard[] = {{.path = "x", .hardlink = "../sentinel/keep"}};
  expect_refused(hard, TL_N(hard), "link leaves the archive");
}

Test(import_spool, reads_gzip_and_zstd_archives)
{
  const struct tl_ent ents[] = {{.path = "manifest.json", .data = "[1]"}};
  struct buf tar = tl_make_tar(ents, TL_N(ents));
  int filters[] = {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD};
  for (size_t i = 0; i < 2; i++) {
    struct buf z = tl_compress(&tar, filters[i]);
    struct spool *s = NULL;
    err_t *e = NULL;
    err_t *re = NULL;
    cr_assert_eq(rm_rf(tl_root, &re), 0);
    cr_assert_eq(mkdir(tl_root, 0755), 0);
    cr_assert_eq(spool_blob(&z, &s, &e), 0, "%s", e ? e->msg : "");
    const struct spool_file *f;
    cr_assert_eq(spool_find(s, "manifest.json", &f, &e), 0);
    spool_free(s);
    buf_free(&z);
  }
  buf_free(&tar);
}

Test(import_spool, refuses_what_is_not_a_tar_and_empty_archives)
{
  struct buf junk = BUF_INIT;
  for (int i = 0; i < 100; i++)
    buf_puts(&junk, "not a tar archive at all ");
  struct spool *s = NULL;
  err_t *e = NULL;
  cr_assert_eq(spool_blob(&junk, &s, &e), -1);
  cr_expect_eq(e->code, ERR_INVALID);
  cr_expect(strstr(e->msg, "not a tar archive"), "%s", e->msg);
  err_free(&e);
  buf_free(&junk);
  const struct tl_ent dirs[] = {{.path = "only-a-dir", .type = AE_IFDIR}};
  expect_refused(dirs, TL_N(dirs), "holds no files");
}
