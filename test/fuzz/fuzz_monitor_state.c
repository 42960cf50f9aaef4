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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/crisp-fuzz-monitor-XXXXXX";

static void remove_scratch(void)
{
  err_t *e = NULL;
  rm_rf(dir, &e);
  err_free(&e);
}

static void put(const char *name, const uint8_t *data, size_t size)
{
  char *p = path_join(dir, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size)
    abort();
  close(fd);
  free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static bool made;
  if (!made) {
    if (!(made = mkdtemp(dir) != NULL))
      abort();
    atexit(remove_scratch);
  }
  err_t *e = NULL;
  put(MON_EXIT, data, size);
  put(MON_STARTED, data, size);
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
