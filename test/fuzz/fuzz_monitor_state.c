/* libFuzzer target: a container's monitor state files (started, exit) and the
 * monitor's one-line start report, as crispd reads them after a restart. A corrupt
 * file is an error, never a crash. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/monitor_int.h"
#include "test/fuzz/fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *dir = fuzz_scratch("monitor", NULL);
  err_t *e = NULL;
  fuzz_scratch_put(MON_EXIT, data, size);
  fuzz_scratch_put(MON_STARTED, data, size);
  struct ctr_exit x;
  if (mon_exit_read(dir, &x, &e) < 0 && !e)
    abort();
  err_free(&e);
  pid_t pid;
  int64_t t;
  if (mon_started_read(dir, &pid, &t, &e) == 0 && pid <= 0)
    abort();
  err_free(&e);
  char *line = xstrndup((const char *)data, size);
  if (mon_report_parse(line, &pid, &e) < 0 && !e)
    abort();
  err_free(&e);
  free(line);
  return 0;
}
