/* The trash: a removed directory disappears at once and is deleted in the background,
 * leftovers of an earlier run are deleted at open, and paths outside are deleted now. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cri/trash.h"

static char *dir;

static void setup(void)
{
  dir = xstrdup("/tmp/crisp-trash-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
  err_t *e = NULL;
  rm_rf(dir, &e);
  err_free(&e);
  free(dir);
}

TestSuite(trash, .init = setup, .fini = teardown);

static char *make_tree(const char *parent, const char *name)
{
  char *p = path_join(parent, name);
  err_t *e = NULL;
  cleanup_free char *deep = xasprintf("%s/a/b/c", p);
  cr_assert_eq(mkdir_p(deep, 0755, &e), 0);
  for (int i = 0; i < 20; i++) {
    cleanup_free char *f = xasprintf("%s/f%d", deep, i);
    cr_assert_eq(file_write_atomic(f, "x", 1, 0644, &e), 0);
  }
  /* a directory without write permission, like overlayfs's work/work */
  cleanup_free char *ro = xasprintf("%s/ro", p);
  cr_assert_eq(mkdir(ro, 0), 0);
  return p;
}

static size_t entries(const char *path)
{
  cleanup_closedir DIR *d = opendir(path);
  size_t n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    n += de->d_name[0] != '.';
  return n;
}

Test(trash, put_hides_at_once_and_deletes_in_the_background)
{
  struct trash *t = NULL;
  err_t *e = NULL;
  const char *dirs[] = {dir};
  cr_assert_eq(trash_open(dirs, 1, &t, &e), 0);
  cleanup_free char *tree = make_tree(dir, "ctr1");
  cr_assert_eq(trash_put(t, tree, &e), 0);
  cr_assert_neq(access(tree, F_OK), 0);
  cr_assert_eq(trash_put(t, tree, &e), 0, "a missing path is fine");
  trash_flush(t);
  cleanup_free char *bin = path_join(dir, "trash");
  cr_assert_eq(entries(bin), 0);
  trash_close(t);
}

Test(trash, open_empties_what_an_earlier_run_left)
{
  cleanup_free char *bin = path_join(dir, "trash");
  cr_assert_eq(mkdir(bin, 0700), 0);
  cleanup_free char *old = make_tree(bin, "left-over-7");
  struct trash *t = NULL;
  err_t *e = NULL;
  const char *dirs[] = {dir};
  cr_assert_eq(trash_open(dirs, 1, &t, &e), 0);
  trash_flush(t);
  cr_assert_eq(entries(bin), 0);
  trash_close(t);
}

Test(trash, a_path_outside_its_dirs_is_deleted_now)
{
  cleanup_free char *a = path_join(dir, "a");
  cleanup_free char *b = path_join(dir, "b");
  cr_assert_eq(mkdir(a, 0755), 0);
  cr_assert_eq(mkdir(b, 0755), 0);
  struct trash *t = NULL;
  err_t *e = NULL;
  const char *dirs[] = {a};
  cr_assert_eq(trash_open(dirs, 1, &t, &e), 0);
  cleanup_free char *tree = make_tree(b, "x");
  cr_assert_eq(trash_put(t, tree, &e), 0);
  cr_assert_neq(access(tree, F_OK), 0);
  trash_close(t);
}
