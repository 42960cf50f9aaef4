#include "cni_fixture.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

char *cnit_tmpdir(const char *tag)
{
  char *d = xasprintf("/tmp/crisp-%s-XXXXXX", tag);
  cr_assert_not_null(mkdtemp(d));
  return d;
}

void cnit_write(const char *dir, const char *name, const char *text, int mode)
{
  err_t *e = NULL;
  cleanup_free char *p = path_join(dir, name);
  cr_assert_eq(file_write_atomic(p, text, strlen(text), (mode_t)mode, &e), 0, "%s", e ? e->msg : "");
}

char *cnit_read(const char *dir, const char *name)
{
  err_t *e = NULL;
  cleanup_free char *p = path_join(dir, name);
  char *s = NULL;
  if (file_read_all(p, 1 << 20, &s, NULL, &e) < 0) {
    err_free(&e);
    return NULL;
  }
  return s;
}

json_t *cnit_read_json(const char *dir, const char *name)
{
  cleanup_free char *s = cnit_read(dir, name);
  cr_assert_not_null(s, "%s/%s missing", dir, name);
  json_t *j = NULL;
  err_t *e = NULL;
  cr_assert_eq(json_parse(s, &j, &e), 0, "%s/%s: %s", dir, name, e ? e->msg : "");
  return j;
}

bool cnit_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

char *cnit_sh(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *cmd = xvasprintf(fmt, ap);
  va_end(ap);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f, "%s", cmd);
  err_t *e = NULL;
  char *out = NULL;
  cr_assert_eq(fd_read_all(fileno(f), 1 << 22, &out, NULL, &e), 0);
  pclose(f);
  return out;
}
