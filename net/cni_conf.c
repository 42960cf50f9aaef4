#include "net/cni_conf.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

static int has_suffix(const char *s, const char *suf)
{
  size_t n = strlen(s), m = strlen(suf);
  return n > m && strcmp(s + n - m, suf) == 0;
}

int cni_conf_find(const char *dir, char **path, err_t **e)
{
  *path = NULL;
  cleanup_closedir DIR *d = opendir(dir);
  if (!d)
    return (errno == ENOENT || errno == ENOTDIR) ? 0 : err_sys(e, errno, "open CNI config dir %s", dir);
  cleanup_free char *best = NULL;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    if (n[0] == '.' || !(has_suffix(n, ".conflist") || has_suffix(n, ".conf") || has_suffix(n, ".json")))
      continue;
    cleanup_free char *full = path_join(dir, n);
    struct stat st;
    if (stat(full, &st) < 0 || !S_ISREG(st.st_mode))
      continue;
    if (!best || strcmp(n, best) < 0) {
      free(best);
      best = xstrdup(n);
    }
  }
  if (best)
    *path = path_join(dir, best);
  return 0;
}
