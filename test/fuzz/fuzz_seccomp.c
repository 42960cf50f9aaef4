/* libFuzzer target: Localhost seccomp profiles (OCI / docker JSON), read from a file
 * as CreateContainer's seccomp.localhost_ref names it. Any input either compiles to a
 * filter (never loaded here) or fails with an error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/file.h"
#include "runtimes/seccomp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[] = "/tmp/crisp-fuzz-seccomp-XXXXXX";

static void remove_scratch(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int fd = -1;
  if (fd < 0) {
    if ((fd = mkstemp(path)) < 0)
      abort();
    atexit(remove_scratch);
  }
  if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
    abort();
  struct seccomp_filter *f = NULL;
  err_t *e = NULL;
  if (seccomp_profile_load(path, ~0ull, &f, &e) == 0)
    seccomp_filter_free(f);
  else if (!e)
    abort();
  err_free(&e);
  return 0;
}
