/* fuzz_scratch.h - a scratch directory for the fuzz targets that read files (records,
 * monitor state, the CNI cache): made under /tmp on first use, removed at exit. */
#ifndef CRISP_FUZZ_SCRATCH_H
#define CRISP_FUZZ_SCRATCH_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/xalloc.h"

static char fuzz_scratch_dir[64];

static void fuzz_scratch_remove(void)
{
  err_t *e = NULL;
  rm_rf(fuzz_scratch_dir, &e);
  err_free(&e);
}

/* The directory, /tmp/crisp-fuzz-<name>-XXXXXX; *made (when not NULL) says whether this
 * call made it. */
static const char *fuzz_scratch(const char *name, bool *made)
{
  bool first = !fuzz_scratch_dir[0];
  if (made)
    *made = first;
  if (first) {
    snprintf(fuzz_scratch_dir, sizeof(fuzz_scratch_dir), "/tmp/crisp-fuzz-%s-XXXXXX", name);
    if (!mkdtemp(fuzz_scratch_dir))
      abort();
    atexit(fuzz_scratch_remove);
  }
  return fuzz_scratch_dir;
}

/* Writes the input as the scratch directory's file rel (replacing it). */
static void fuzz_scratch_put(const char *rel, const uint8_t *data, size_t size)
{
  char *p = path_join(fuzz_scratch_dir, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size)
    abort();
  close(fd);
  free(p);
}

#endif
