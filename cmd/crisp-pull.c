/* crisp-pull - crispd's pull helper: one image pull, driven over stdin/stdout.
 * Not meant to be run by hand; see image/pull.h for the protocol. */
#include <stdlib.h>

#include "base/log.h"
#include "image/pull.h"

int main(void)
{
  const char *lvl = getenv("CRISP_LOG_LEVEL");
  enum log_level l;
  if (lvl && log_level_parse(lvl, &l) == 0)
    log_set_level(l);
  err_t *e = NULL;
  if (pull_child_main(0, 1, &e) < 0) {
    if (e)
      log_debug("pull helper stopped", "error", e->msg, NULL);
    err_free(&e);
    return 1;
  }
  return 0;
}
