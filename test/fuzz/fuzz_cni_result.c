/* libFuzzer target: what a CNI plugin prints on ADD (any result version), as crispd
 * reads it from the plugin's stdout or its own cache. Any input either gives the pod's
 * addresses or an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/xalloc.h"
#include "net/cni_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s = xstrndup((const char *)data, size);
  json_t *j = NULL;
  err_t *e = NULL;
  if (json_parse(s, &j, &e) == 0) {
    struct cni_result r = {0};
    if (cni_result_parse(j, "eth0", &r, &e) == 0)
      cni_result_clear(&r);
    else if (!e)
      abort();
    json_free(j);
  }
  err_free(&e);
  free(s);
  return 0;
}
