/* libFuzzer target: the layer unpacker on arbitrary (possibly compressed) tar bytes.
 * Runs as root in a scratch directory; whatever the input, nothing may appear outside
 * the destination (a sentinel directory beside it must stay empty). */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "image/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[] = "/tmp/crisp-fuzz-unpack-XXXXXX";

static void check_sentinel_empty(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    abort();
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)))
    n += de->d_name[0] != '.' || (de->d_name[1] && (de->d_name[1] != '.' || de->d_name[2]));
  closedir(d);
  if (n)
    abort();  /* the layer wrote outside its directory */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int ready;
  if (!ready) {
    if (!mkdtemp(scratch))
      abort();
    ready = 1;
  }
  char dest[128], sentinel[128];
  snprintf(dest, sizeof(dest), "%s/layer/root", scratch);
  snprintf(sentinel, sizeof(sentinel), "%s/layer/sentinel", scratch);
  err_t *e = NULL;
  char *layer = path_join(scratch, "layer");
  rm_rf(layer, &e);
  err_free(&e);
  if (mkdir_p(dest, 0755, &e) < 0 || mkdir_p(sentinel, 0755, &e) < 0)
    abort();
  int fd = memfd_create("layer", MFD_CLOEXEC);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
    abort();
  struct unpack_result r;
  if (unpack_layer(fd, dest, NULL, &r, &e) < 0)
    err_free(&e);
  close(fd);
  check_sentinel_empty(sentinel);
  if (rm_rf(layer, &e) < 0)
    err_free(&e);
  free(layer);
  return 0;
}
