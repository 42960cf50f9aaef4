/* unpack_escape_test.c - hostile layers (image/unpack.h): every attempt to reach outside
 * the layer directory fails with ERR_INVALID naming the entry and changes nothing
 * outside it; malformed and garbage input fails cleanly. Fixture: unpack_layers.c. */
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

static const struct tl_ent small_layer[] = {
  {.path = "etc/", .type = AE_IFDIR},
  {.path = "etc/hostname", .data = "crisp\n"},
  {.path = "bin/sh", .data = "#!fake shell\n", .perm = 0755},
};

Test(unpack, rejects_entry_that_climbs_out_of_rootfs)
{
  const char *paths[] = {"../x", "a/../../x", "/../x", "./../sentinel/keep",
                         "a/b/../../../sentinel/pwned", ".."};
  for (size_t i = 0; i < TL_N(paths); i++) {
    const struct tl_ent ents[] = {{.path = "a/b/ok", .data = "ok"},
                                  {.path = paths[i], .data = "x"}};
    tl_expect_refused(ents, TL_N(ents), paths[i], "climbs out of the layer");
  }
}

Test(unpack, rejects_directory_entry_that_climbs_out)
{
  const struct tl_ent ents[] = {{.path = "../../escaped", .type = AE_IFDIR}};
  tl_expect_refused(ents, TL_N(ents), "../../escaped/", "climbs out of the layer");
}

Test(unpack, never_writes_through_a_symlink_to_the_outside)
{
  const struct tl_ent to_sentinel[] = {
    {.path = "evil", .type = AE_IFLNK, .link = tl_sentinel},
    {.path = "evil/pwned", .data = "x"},
  };
  tl_expect_refused(to_sentinel, TL_N(to_sentinel), "evil/pwned", "is a symlink");
  const struct tl_ent to_root[] = {
    {.path = "evil", .type = AE_IFLNK, .link = "/"},
    {.path = "evil/tmp/crisp-unpack-pwned", .data = "x"},
  };
  tl_expect_refused(to_root, TL_N(to_root), "evil/tmp/crisp-unpack-pwned", "is a symlink");
  cr_expect_neq(access("/tmp/crisp-unpack-pwned", F_OK), 0);
  const struct tl_ent to_parent[] = {
    {.path = "d", .type = AE_IFLNK, .link = ".."},
    {.path = "d/pwned", .data = "x"},
  };
  tl_expect_refused(to_parent, TL_N(to_parent), "d/pwned", "is a symlink");
  const struct tl_ent dir_through_link[] = {
    {.path = "d", .type = AE_IFLNK, .link = ".."},
    {.path = "d/pwned/", .type = AE_IFDIR},
  };
  tl_expect_refused(dir_through_link, TL_N(dir_through_link), "d/pwned/", "is a symlink");
  const struct tl_ent deep[] = {
    {.path = "a/b", .type = AE_IFDIR},
    {.path = "a/b/c", .type = AE_IFLNK, .link = "../../.."},
    {.path = "a/b/c/pwned", .type = AE_IFLNK, .link = "x"},
  };
  tl_expect_refused(deep, TL_N(deep), "a/b/c/pwned", "is a symlink");
  const struct tl_ent whiteout_through[] = {
    {.path = "evil", .type = AE_IFLNK, .link = tl_sentinel},
    {.path = "evil/.wh.keep"},
  };
  tl_expect_refused(whiteout_through, TL_N(whiteout_through), "evil/.wh.keep", "is a symlink");
  const struct tl_ent opaque_through[] = {
    {.path = "evil", .type = AE_IFLNK, .link = tl_sentinel},
    {.path = "evil/.wh..wh..opq"},
  };
  tl_expect_refused(opaque_through, TL_N(opaque_through), "evil/.wh..wh..opq", "is a symlink");
  char v[8];
  cr_expect_eq(lgetxattr(tl_sentinel, "trusted.overlay.opaque", v, sizeof(v)), -1);
}

Test(unpack, replaces_a_symlink_instead_of_writing_through_it)
{
  char *keep = path_join(tl_sentinel, "keep");
  const struct tl_ent ents[] = {
    {.path = "f", .type = AE_IFLNK, .link = keep},
    {.path = "f", .data = "pwned"},
    {.path = "dev", .type = AE_IFLNK, .link = tl_sentinel},
    {.path = "dev", .type = AE_IFDIR},
    {.path = "dev/x", .data = "inside"},
  };
  TL_UNPACK_OK(ents);
  char *s = tl_read("f");
  cr_expect_str_eq(s, "pwned");
  free(s);
  cr_expect(S_ISDIR(tl_lstat("dev").st_mode));
  tl_assert_outside_untouched();
  free(keep);
}

Test(unpack, rejects_hardlink_that_leaves_the_layer)
{
  const struct tl_ent climb[] = {{.path = "pw", .hardlink = "../../etc/passwd"}};
  tl_expect_refused(climb, TL_N(climb), "pw", "climbs out of the layer");
  const struct tl_ent missing[] = {{.path = "pw", .hardlink = "etc/passwd"}};
  tl_expect_refused(missing, TL_N(missing), "pw", "not in the layer");
  const struct tl_ent via_symlink_parent[] = {
    {.path = "s", .type = AE_IFLNK, .link = tl_sentinel},
    {.path = "pw", .hardlink = "s/keep"},
  };
  tl_expect_refused(via_symlink_parent, TL_N(via_symlink_parent), "pw", "is a symlink");
  const struct tl_ent to_dir[] = {{.path = "d", .type = AE_IFDIR}, {.path = "h", .hardlink = "d"}};
  tl_expect_refused(to_dir, TL_N(to_dir), "h", "hardlink to a directory");
}


Test(unpack, hardlink_to_an_outside_symlink_is_never_written_through)
{
  char *keep = path_join(tl_sentinel, "keep");
  /* h becomes a second link to the symlink itself; the data it carries must not reach
   * keep: it is ignored, or the layer is refused */
  struct buf raw = BUF_INIT;
  tl_ustar_block(&raw, "s", '2', keep, NULL);
  tl_ustar_block(&raw, "h", '1', "s", "pwned");
  char zeros[1024] = {0};
  buf_append(&raw, zeros, sizeof(zeros));
  struct unpack_result res;
  err_t *e = NULL;
  if (tl_unpack_blob(raw.data, raw.len, NULL, &res, &e) == 0)
    cr_expect(S_ISLNK(tl_lstat("h").st_mode));
  else
    cr_expect_eq(e->code, ERR_INVALID, "%s", e->msg);
  err_free(&e);
  buf_free(&raw);
  tl_assert_outside_untouched();
  const struct tl_ent as_parent[] = {
    {.path = "s2", .type = AE_IFLNK, .link = tl_sentinel},
    {.path = "h2", .hardlink = "s2"},
    {.path = "h2/pwned", .data = "x"},
  };
  tl_expect_refused(as_parent, TL_N(as_parent), "h2/pwned", "is a symlink");
  free(keep);
}

Test(unpack, refuses_paths_longer_than_4096_bytes)
{
  char *name = xmalloc(UNPACK_PATH_MAX + 2);
  for (int i = 0; i <= UNPACK_PATH_MAX; i++)
    name[i] = i % 100 == 99 ? '/' : 'a';
  name[UNPACK_PATH_MAX + 1] = '\0';
  const struct tl_ent ents[] = {{.path = name, .data = "x"}};
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_ents(ents, TL_N(ents), &res, &e), -1);
  cr_expect_eq(e->code, ERR_INVALID);
  cr_expect(strstr(e->msg, "longer than 4096"), "%s", e->msg);
  cr_expect_lt(strlen(e->msg), 400, "the name is cut short in the message");
  err_free(&e);
  free(name);
}

Test(unpack, refuses_whiteout_names_used_as_directories)
{
  const struct tl_ent ents[] = {{.path = "a/.wh.b/c", .data = "x"}};
  tl_expect_refused(ents, TL_N(ents), "a/.wh.b/c", "whiteout");
  const struct tl_ent bare[] = {{.path = "a/.wh."}};
  tl_expect_refused(bare, TL_N(bare), "a/.wh.", "malformed whiteout");
  const struct tl_ent dots[] = {{.path = "a/.wh..."}};
  tl_expect_refused(dots, TL_N(dots), "a/.wh...", "malformed whiteout");
}

Test(unpack, refuses_a_file_in_place_of_the_layer_root)
{
  const struct tl_ent ents[] = {{.path = ".", .data = "x"}};
  tl_expect_refused(ents, TL_N(ents), ".", "layer root");
}

static void expect_garbage_refused(const void *p, size_t n, const char *why)
{
  struct unpack_result res;
  err_t *e = NULL;
  cr_assert_eq(tl_unpack_blob(p, n, NULL, &res, &e), -1, "accepted %s", why);
  cr_expect_eq(e->code, ERR_INVALID, "%s: %s", why, e->msg);
  err_free(&e);
  tl_assert_outside_untouched();
}

Test(unpack, fails_cleanly_on_garbage)
{
  char junk[20000];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (char)(i * 2654435761u >> 13);
  expect_garbage_refused(junk, sizeof(junk), "random bytes");
  expect_garbage_refused("", 0, "an empty blob");
  expect_garbage_refused("\x1f\x8b\x08\x00garbage after a gzip magic", 30, "a broken gzip");

  struct buf tar = tl_make_tar(small_layer, TL_N(small_layer));
  struct buf gz = tl_compress(&tar, ARCHIVE_FILTER_GZIP);
  expect_garbage_refused(gz.data, gz.len / 2, "a truncated gzip");
  expect_garbage_refused(tar.data, 700, "a truncated tar");
  tar.data[512 + 1] ^= 0x20; /* the second header's checksum no longer matches */
  expect_garbage_refused(tar.data, tar.len, "a damaged header");
  cr_expect_not(tl_exists("bin/sh"), "nothing after a damaged header is extracted");
  struct buf gzgz = tl_compress(&gz, ARCHIVE_FILTER_GZIP);
  expect_garbage_refused(gzgz.data, gzgz.len, "a doubly compressed layer");
  buf_free(&tar);
  buf_free(&gz);
  buf_free(&gzgz);
}
