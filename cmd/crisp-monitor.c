/* crisp-monitor - one per container; see runtimes/monitor_proc.h. Started by crispd,
 * not by hand. */
#include <stdlib.h>

#include "base/log.h"
#include "runtimes/monitor_proc.h"

int main(int argc, char **argv)
{
  const char *lvl = getenv("CRISP_LOG_LEVEL");
  enum log_level l;
  if (lvl && log_level_parse(lvl, &l) == 0)
    log_set_level(l);
  return monitor_main(argc, argv);
}
