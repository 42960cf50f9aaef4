/* unpack_test.c - one-pass layer unpack (image/unpack.h): digests, streaming,
 * cancellation, and what gets extracted (metadata, links, devices, xattrs, overlay
 * whiteouts). Hostile layers are in unpack_escape_test.c. Layers are built with
 * libarchive's writer (unpack_layers.c); the tests run as root (devices, ownership and
 * trusted.* xattrs need it). */
#include <locale.h>
#include <pthread.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "image/unpack.h"
#include "image/unpack_fs.h"
#include "unpack_layers.h"

TestSuite(unpack, .init = tl_setup, .fini = tl_teardown);

/* --- digests and streaming ------------------------------------------------------ */
static const struct tl_ent small_layer[] = {
  {.path = "etc/", .type = AE_IFDIR},
  {.path = "etc/hostname", .data = "crisp\n"},
  {.path = "bin/sh", .data = "#!fake shell\n", .perm = 0755},
};

static void check_digests_with(int filter)
{
  struct buf tar = tl_make_tar(small_layer, TL_N(small_layer));
  struct buf blob = filter == ARCHIVE_FILTER_NONE ? tar : tl_compress(&tar, filter);
  char want_blob[UNPACK_DIGEST_LEN + 1], want_diff[UNPACK_DIGEST_LEN + 1];
  tl_sha256(blob.data, blob.len, want_blob);
  tl_sha256(tar.data, tar.len, want_diff);
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(blob.data, blob.len, NULL, &res, &e), 0, "%s", e ? e->msg : "");
  cr_expect_str_eq(res.blob_digest, want_blob);
  cr_expect_str_eq(res.diff_id, want_diff);
  cr_expect_eq(res.blob_size, blob.len);
  cr_expect_eq(res.tar_size, tar.len);
  cr_expect_eq(res.files, 3);
  char *s = tl_read("etc/hostname");
  cr_expect_str_eq(s, "crisp\n");
  free(s);
  if (filter != ARCHIVE_FILTER_NONE)
    buf_free(&blob);
  buf_free(&tar);
}

Test(unpack, reports_blob_digest_and_diff_id_of_gzip_layer)
{
  check_digests_with(ARCHIVE_FILTER_GZIP);
}

Test(unpack, reports_blob_digest_and_diff_id_of_zstd_layer)
{
  check_digests_with(ARCHIVE_FILTER_ZSTD);
}

Test(unpack, reports_equal_digests_for_uncompressed_layer)
{
  check_digests_with(ARCHIVE_FILTER_NONE);
}

Test(unpack, digests_cover_bytes_after_the_end_of_archive)
{
  struct buf tar = tl_make_tar(small_layer, TL_N(small_layer));
  buf_append(&tar, "trailing bytes after the tar end marker", 39);
  struct buf blob = tl_compress(&tar, ARCHIVE_FILTER_GZIP);
  char want_blob[UNPACK_DIGEST_LEN + 1], want_diff[UNPACK_DIGEST_LEN + 1];
  tl_sha256(blob.data, blob.len, want_blob);
  tl_sha256(tar.data, tar.len, want_diff);
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(blob.data, blob.len, NULL, &res, &e), 0, "%s", e ? e->msg : "");
  cr_expect_str_eq(res.blob_digest, want_blob);
  cr_expect_str_eq(res.diff_id, want_diff);
  cr_expect_eq(res.tar_size, tar.len);
  buf_free(&tar);
  buf_free(&blob);
}

Test(unpack, blob_digest_covers_bytes_after_the_compressed_stream)
{
  struct buf tar = tl_make_tar(small_layer, TL_N(small_layer));
  struct buf blob = tl_compress(&tar, ARCHIVE_FILTER_GZIP);
  buf_append(&blob, "junk after the gzip member", 26);
  char want_blob[UNPACK_DIGEST_LEN + 1];
  tl_sha256(blob.data, blob.len, want_blob);
  struct unpack_result res;
  err_t *e = NULL;
  int rc = tl_unpack_blob(blob.data, blob.len, NULL, &res, &e);
  if (rc == 0) {
    cr_expect_str_eq(res.blob_digest, want_blob);
    cr_expect_eq(res.blob_size, blob.len);
  } else {
    cr_expect_eq(e->code, ERR_INVALID, "%s", e->msg);
  }
  err_free(&e);
  buf_free(&tar);
  buf_free(&blob);
}

struct pipe_job {
  int fd;
  struct buf *data;
};

static void *pipe_writer(void *arg)
{
  struct pipe_job *j = arg;
  err_t *e = NULL;
  if (fd_write_all(j->fd, j->data->data, j->data->len, &e) < 0)
    err_free(&e);
  close(j->fd);
  return NULL;
}

Test(unpack, streams_a_large_layer_from_a_pipe)
{
  char *big = xmalloc(3 << 20);
  for (size_t i = 0; i < (3u << 20); i++)
    big[i] = (char)('a' + (i * 7919) % 26);
  big[(3 << 20) - 1] = '\0';
  const struct tl_ent ents[] = {{.path = "big", .data = big}};
  struct buf tar = tl_make_tar(ents, 1);
  struct buf blob = tl_compress(&tar, ARCHIVE_FILTER_GZIP);
  int p[2];
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  struct pipe_job job = {p[1], &blob};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, pipe_writer, &job), 0);
  struct unpack_result res;
  err_t *e = NULL;
  int rc = unpack_layer(p[0], tl_root, NULL, &res, &e);
  pthread_join(t, NULL);
  close(p[0]);
  cr_assert_eq(rc, 0, "%s", e ? e->msg : "");
  char want[UNPACK_DIGEST_LEN + 1];
  tl_sha256(blob.data, blob.len, want);
  cr_expect_str_eq(res.blob_digest, want);
  cr_expect_eq(tl_lstat("big").st_size, (3 << 20) - 1);
  char *s = tl_read("big");
  cr_expect(memcmp(s, big, (3 << 20) - 1) == 0);
  free(s);
  free(big);
  buf_free(&tar);
  buf_free(&blob);
}

static void count_progress(void *arg, uint64_t bytes)
{
  uint64_t *last = arg;
  cr_expect_geq(bytes, *last, "progress went backwards");
  *last = bytes;
}

Test(unpack, reports_progress_up_to_the_blob_size)
{
  struct buf tar = tl_make_tar(small_layer, TL_N(small_layer));
  uint64_t last = 0;
  struct unpack_opts o = {.progress = count_progress, .arg = &last};
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(tar.data, tar.len, &o, &res, &e), 0);
  cr_expect_eq(last, tar.len);
  buf_free(&tar);
}

/* --- what gets extracted ---------------------------------------------------------- */
Test(unpack, keeps_modes_owners_and_mtimes)
{
  const struct tl_ent ents[] = {
    {.path = "d", .type = AE_IFDIR, .perm = 0750, .uid = 10, .gid = 20, .mtime = 1111},
    {.path = "d/f", .data = "x", .perm = 0640, .uid = 1234, .gid = 5678, .mtime = 2222},
    {.path = "suid", .data = "x", .perm = 04755, .uid = 1000},
    {.path = "sgid", .data = "x", .perm = 02711, .gid = 50},
    {.path = "tmp", .type = AE_IFDIR, .perm = 01777},
  };
  TL_UNPACK_OK(ents);
  struct stat st = tl_lstat("d");
  cr_expect(S_ISDIR(st.st_mode));
  cr_expect_eq(st.st_mode & 07777, 0750);
  cr_expect_eq(st.st_uid, 10);
  cr_expect_eq(st.st_gid, 20);
  cr_expect_eq(st.st_mtim.tv_sec, 1111, "directory mtime must survive its children");
  st = tl_lstat("d/f");
  cr_expect_eq(st.st_mode & 07777, 0640);
  cr_expect_eq(st.st_uid, 1234);
  cr_expect_eq(st.st_gid, 5678);
  cr_expect_eq(st.st_mtim.tv_sec, 2222);
  cr_expect_eq(tl_lstat("suid").st_mode & 07777, 04755, "chown must not eat setuid");
  cr_expect_eq(tl_lstat("suid").st_uid, 1000);
  cr_expect_eq(tl_lstat("sgid").st_mode & 07777, 02711);
  cr_expect_eq(tl_lstat("tmp").st_mode & 07777, 01777);
}

Test(unpack, read_only_directory_does_not_block_its_children)
{
  const struct tl_ent ents[] = {
    {.path = "ro", .type = AE_IFDIR, .perm = 0555, .mtime = 3333},
    {.path = "ro/sub", .type = AE_IFDIR, .perm = 0500},
    {.path = "ro/sub/f", .data = "inside"},
  };
  TL_UNPACK_OK(ents);
  cr_expect_eq(tl_lstat("ro").st_mode & 07777, 0555);
  cr_expect_eq(tl_lstat("ro").st_mtim.tv_sec, 3333);
  cr_expect_eq(tl_lstat("ro/sub").st_mode & 07777, 0500);
  char *s = tl_read("ro/sub/f");
  cr_expect_str_eq(s, "inside");
  free(s);
}

Test(unpack, directory_metadata_does_not_outlive_a_replaced_directory)
{
  const struct tl_ent ents[] = {
    {.path = "a/b/", .type = AE_IFDIR, .perm = 0700, .uid = 99, .mtime = 1234},
    {.path = "a", .data = "a file now"},
    {.path = "a/", .type = AE_IFDIR, .perm = 0751},
    {.path = "a/b/c", .data = "c"},
  };
  TL_UNPACK_OK(ents);
  struct stat st = tl_lstat("a/b");
  cr_expect_eq(st.st_mode & 07777, 0755, "a/b is a new implicit directory");
  cr_expect_eq(st.st_uid, 0);
  cr_expect_neq(st.st_mtim.tv_sec, 1234);
  cr_expect_eq(tl_lstat("a").st_mode & 07777, 0751);
}

Test(unpack, applies_root_entry_to_the_layer_directory)
{
  const struct tl_ent ents[] = {
    {.path = "./", .type = AE_IFDIR, .perm = 0711, .mtime = 4444},
    {.path = "./a", .data = "a"},
  };
  TL_UNPACK_OK(ents);
  struct stat st;
  cr_assert_eq(stat(tl_root, &st), 0);
  cr_expect_eq(st.st_mode & 07777, 0711);
  cr_expect_eq(st.st_mtim.tv_sec, 4444);
}

Test(unpack, creates_missing_parent_directories)
{
  const struct tl_ent ents[] = {{.path = "usr/share/doc/x", .data = "doc"}};
  TL_UNPACK_OK(ents);
  cr_expect(S_ISDIR(tl_lstat("usr/share/doc").st_mode));
  cr_expect_eq(tl_lstat("usr/share/doc").st_mode & 07777, 0755);
}

Test(unpack, stores_symlinks_without_following_them)
{
  char *outside = path_join(tl_sentinel, "keep");
  const struct tl_ent ents[] = {
    {.path = "abs", .type = AE_IFLNK, .link = outside, .uid = 7, .gid = 8, .mtime = 5555},
    {.path = "rel", .type = AE_IFLNK, .link = "../../../etc/shadow"},
    {.path = "dangling", .type = AE_IFLNK, .link = "nowhere"},
  };
  TL_UNPACK_OK(ents);
  char buf[256];
  char *p = tl_path("abs");
  ssize_t n = readlink(p, buf, sizeof(buf) - 1);
  cr_assert_gt(n, 0);
  buf[n] = '\0';
  cr_expect_str_eq(buf, outside);
  free(p);
  struct stat st = tl_lstat("abs");
  cr_expect(S_ISLNK(st.st_mode));
  cr_expect_eq(st.st_uid, 7);
  cr_expect_eq(st.st_gid, 8);
  cr_expect_eq(st.st_mtim.tv_sec, 5555);
  cr_expect(S_ISLNK(tl_lstat("rel").st_mode));
  cr_expect(S_ISLNK(tl_lstat("dangling").st_mode));
  tl_assert_outside_untouched();
  free(outside);
}

Test(unpack, hardlinks_share_the_inode_of_an_earlier_entry)
{
  const struct tl_ent ents[] = {
    {.path = "bin/busybox", .data = "bb", .perm = 0755},
    {.path = "bin/ls", .hardlink = "bin/busybox"},
    {.path = "/sbin/init", .hardlink = "/bin/busybox"},
  };
  TL_UNPACK_OK(ents);
  struct stat a = tl_lstat("bin/busybox"), b = tl_lstat("bin/ls"), c = tl_lstat("sbin/init");
  cr_expect_eq(a.st_ino, b.st_ino);
  cr_expect_eq(a.st_ino, c.st_ino);
  cr_expect_eq(a.st_nlink, 3);
}

Test(unpack, creates_devices_and_fifos)
{
  const struct tl_ent ents[] = {
    {.path = "dev/null", .type = AE_IFCHR, .perm = 0666, .major = 1, .minor = 3},
    {.path = "dev/loop0", .type = AE_IFBLK, .perm = 0660, .major = 7, .minor = 0, .gid = 6},
    {.path = "run/fifo", .type = AE_IFIFO, .perm = 0620},
  };
  TL_UNPACK_OK(ents);
  struct stat st = tl_lstat("dev/null");
  cr_expect(S_ISCHR(st.st_mode));
  cr_expect_eq(st.st_rdev, makedev(1, 3));
  cr_expect_eq(st.st_mode & 07777, 0666);
  st = tl_lstat("dev/loop0");
  cr_expect(S_ISBLK(st.st_mode));
  cr_expect_eq(st.st_rdev, makedev(7, 0));
  cr_expect_eq(st.st_gid, 6);
  st = tl_lstat("run/fifo");
  cr_expect(S_ISFIFO(st.st_mode));
  cr_expect_eq(st.st_mode & 07777, 0620);
}

Test(unpack, sets_xattrs_and_keeps_file_capabilities_after_chown)
{
  /* VFS_CAP_REVISION_2, permitted = CAP_NET_RAW */
  static const unsigned char cap[20] = {0, 0, 0, 2, 0, 0x20, 0, 0};
  const struct tl_ent ents[] = {
    {.path = "f", .data = "x", .xname = "user.note", .xval = "hello", .xlen = 5},
    {.path = "ping", .data = "x", .perm = 0755, .uid = 1000,
     .xname = "security.capability", .xval = cap, .xlen = sizeof(cap)},
    {.path = "d", .type = AE_IFDIR, .xname = "user.dir", .xval = "d", .xlen = 1},
  };
  TL_UNPACK_OK(ents);
  char v[64];
  char *p = tl_path("f");
  cr_expect_eq(lgetxattr(p, "user.note", v, sizeof(v)), 5);
  cr_expect(memcmp(v, "hello", 5) == 0);
  free(p);
  p = tl_path("ping");
  cr_expect_gt(lgetxattr(p, "security.capability", v, sizeof(v)), 0,
               "file capability lost: %s", strerror(errno));
  free(p);
  p = tl_path("d");
  cr_expect_eq(lgetxattr(p, "user.dir", v, sizeof(v)), 1);
  free(p);
}

Test(unpack, skips_trusted_xattrs_from_the_layer)
{
  const struct tl_ent ents[] = {
    {.path = "d", .type = AE_IFDIR, .xname = "trusted.overlay.opaque", .xval = "y", .xlen = 1},
    {.path = "l", .type = AE_IFLNK, .link = "x", .xname = "user.x", .xval = "1", .xlen = 1},
  };
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_ents(ents, TL_N(ents), &res, &e), 0, "%s", e ? e->msg : "");
  char *p = tl_path("d");
  char v[8];
  cr_expect_eq(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), -1);
  free(p);
  cr_expect_eq(res.xattrs_skipped, 2, "trusted.* and user.* on a symlink are skipped, not %llu",
               (unsigned long long)res.xattrs_skipped);
}

Test(unpack, turns_whiteout_into_a_0_0_char_device)
{
  const struct tl_ent ents[] = {
    {.path = "etc/.wh.motd", .uid = 5},
    {.path = ".wh.tmp"},
  };
  TL_UNPACK_OK(ents);
  struct stat st = tl_lstat("etc/motd");
  cr_expect(S_ISCHR(st.st_mode));
  cr_expect_eq(st.st_rdev, makedev(0, 0));
  cr_expect(S_ISCHR(tl_lstat("tmp").st_mode));
  cr_expect_not(tl_exists("etc/.wh.motd"));
  cr_expect_not(tl_exists(".wh.tmp"));
}

Test(unpack, marks_opaque_directory_with_overlay_xattr)
{
  const struct tl_ent ents[] = {
    {.path = "var/", .type = AE_IFDIR},
    {.path = "var/.wh..wh..opq"},
    {.path = "opt/app/.wh..wh..opq"},
  };
  TL_UNPACK_OK(ents);
  char v[8];
  char *p = tl_path("var");
  cr_expect_eq(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
  cr_expect_eq(v[0], 'y');
  free(p);
  p = tl_path("opt/app");
  cr_expect_eq(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
  free(p);
  cr_expect_not(tl_exists("var/.wh..wh..opq"));
}

Test(unpack, later_entry_replaces_earlier_one_whatever_the_types)
{
  const struct tl_ent ents[] = {
    {.path = "f2d", .data = "file"},
    {.path = "f2d", .type = AE_IFDIR},
    {.path = "d2f/sub/deep", .data = "x"},
    {.path = "d2f", .data = "now a file"},
    {.path = "twice", .data = "first"},
    {.path = "twice", .data = "second"},
    {.path = "orig", .data = "original"},
    {.path = "link", .hardlink = "orig"},
    {.path = "link", .data = "replaced"},
    {.path = "wh", .data = "x"},
    {.path = ".wh.wh"},
    {.path = "d2l", .type = AE_IFDIR},
    {.path = "d2l", .type = AE_IFLNK, .link = "/"},
  };
  TL_UNPACK_OK(ents);
  cr_expect(S_ISDIR(tl_lstat("f2d").st_mode));
  char *s = tl_read("d2f");
  cr_expect_str_eq(s, "now a file");
  free(s);
  s = tl_read("twice");
  cr_expect_str_eq(s, "second");
  free(s);
  s = tl_read("orig");
  cr_expect_str_eq(s, "original", "replacing a hardlink must not write into its inode");
  free(s);
  cr_expect(S_ISCHR(tl_lstat("wh").st_mode));
  cr_expect(S_ISLNK(tl_lstat("d2l").st_mode));
}

Test(unpack, drops_leading_slash_and_cleans_dot_components)
{
  const struct tl_ent ents[] = {
    {.path = "/etc/passwd", .data = "root:x:0:0::/root:/bin/sh\n"},
    {.path = "./a/./b/../c", .data = "c"},
    {.path = "//x//y", .data = "y"},
  };
  TL_UNPACK_OK(ents);
  cr_expect(tl_exists("etc/passwd"));
  cr_expect(tl_exists("a/c"));
  cr_expect(tl_exists("x/y"));
  tl_assert_outside_untouched();
}

Test(unpack, keeps_non_ascii_names_as_utf8_bytes)
{
  /* written as pax UTF-8, read back in the C locale crispd runs in */
  cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"));
  const struct tl_ent ents[] = {{.path = "caf\xc3\xa9", .data = "x"},
                             {.path = "\xe6\x97\xa5\xe6\x9c\xac/\xc3\xbc", .data = "y"}};
  struct buf tar = tl_make_tar(ents, TL_N(ents));
  setlocale(LC_ALL, "C");
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(tar.data, tar.len, NULL, &res, &e), 0, "%s", e ? e->msg : "");
  cr_expect(tl_exists("caf\xc3\xa9"));
  cr_expect(tl_exists("\xe6\x97\xa5\xe6\x9c\xac/\xc3\xbc"));
  buf_free(&tar);
}

Test(unpack, refuses_files_over_the_size_cap)
{
  const struct tl_ent ents[] = {{.path = "small", .data = "ok"},
                                {.path = "big", .data = "0123456789"}};
  struct buf tar = tl_make_tar(ents, TL_N(ents));
  struct unpack_opts o = {.max_entry_size = 5};
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(tar.data, tar.len, &o, &res, &e), -1);
  cr_expect_eq(e->code, ERR_RESOURCE);
  cr_expect(strstr(e->msg, "\"big\""), "%s", e->msg);
  err_free(&e);
  buf_free(&tar);
}

static bool cancel_after(void *arg)
{
  int *left = arg;
  return (*left)-- <= 0;
}

Test(unpack, stops_when_cancelled_before_the_first_entry)
{
  struct buf tar = tl_make_tar(small_layer, TL_N(small_layer));
  int left = 0;
  struct unpack_opts o = {.cancelled = cancel_after, .arg = &left};
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(tar.data, tar.len, &o, &res, &e), -1);
  cr_expect_eq(e->code, ERR_CANCELLED, "%s", e->msg);
  cr_expect_not(tl_exists("etc"));
  err_free(&e);
  buf_free(&tar);
}

Test(unpack, stops_when_cancelled_in_the_middle_of_a_file)
{
  size_t n = 4 << 20;
  char *big = xmalloc(n + 1);
  memset(big, 'z', n);
  big[n] = '\0';
  const struct tl_ent ents[] = {{.path = "big", .data = big}, {.path = "after", .data = "x"}};
  struct buf tar = tl_make_tar(ents, TL_N(ents));
  int left = 10;
  struct unpack_opts o = {.cancelled = cancel_after, .arg = &left};
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(tar.data, tar.len, &o, &res, &e), -1);
  cr_expect_eq(e->code, ERR_CANCELLED, "%s", e->msg);
  cr_expect_not(tl_exists("after"));
  err_free(&e);
  buf_free(&tar);
  free(big);
}

Test(unpack, path_clean_resolves_dots_lexically)
{
  static const struct { const char *in, *out; } cases[] = {
    {"a/b", "a/b"}, {"/a//b/", "a/b"}, {"./a/./b", "a/b"}, {"a/../b", "b"},
    {"a/b/..", "a"}, {".", ""}, {"/", ""}, {"", ""}, {"a/..", ""},
  };
  for (size_t i = 0; i < TL_N(cases); i++) {
    char *out = NULL;
    err_t *e = NULL;
    cr_assert_eq(unpack_path_clean(cases[i].in, &out, &e), 0, "%s", cases[i].in);
    cr_expect_str_eq(out, cases[i].out, "input \"%s\"", cases[i].in);
    free(out);
  }
  static const char *bad[] = {"..", "../a", "a/../..", "/../a", "a/./../../b"};
  for (size_t i = 0; i < TL_N(bad); i++) {
    char *out = NULL;
    err_t *e = NULL;
    cr_assert_eq(unpack_path_clean(bad[i], &out, &e), -1, "%s", bad[i]);
    cr_expect_eq(e->code, ERR_INVALID);
    err_free(&e);
  }
}
