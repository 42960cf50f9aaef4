/* libFuzzer target: the configuration file reader. Any input either loads or fails
 * with ERR_INVALID; a loaded config writes JSON that loads again to the same config. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cri/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s = xstrndup((const char *)data, size);
  struct crisp_config c;
  err_t *e = NULL;
  config_init_defaults(&c);
  if (config_load_string(&c, s, "fuzz.json", &e) == 0) {
    struct buf b = BUF_INIT, b2 = BUF_INIT;
    config_to_json(&c, &b);
    struct crisp_config c2;
    config_init_defaults(&c2);
    if (config_load_string(&c2, buf_str(&b), "again.json", &e) < 0)
      abort();
    config_to_json(&c2, &b2);
    if (strcmp(buf_str(&b), buf_str(&b2)) != 0)
      abort();
    config_clear(&c2);
    buf_free(&b);
    buf_free(&b2);
  } else if (!e || e->code != ERR_INVALID) {
    abort();
  }
  err_free(&e);
  config_clear(&c);
  free(s);
  return 0;
}
