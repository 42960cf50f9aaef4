/* libFuzzer target: image reference parsing and formatting. Every accepted reference
 * must format to a string that parses back to the same reference. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "image/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s = xstrndup((const char *)data, size);
  struct image_ref r;
  err_t *e = NULL;
  char id[IMAGE_ID_LEN + 1];
  (void)image_ref_is_id(s, id);
  if (image_ref_parse(s, &r, &e) == 0) {
    char *full = image_ref_string(&r), *fam = image_ref_familiar(&r), *name = image_ref_name(&r);
    struct image_ref again;
    if (image_ref_parse(full, &again, &e) < 0)
      abort();  /* a normalised reference must parse */
    char *full2 = image_ref_string(&again);
    if (strcmp(full, full2) != 0)
      abort();  /* and normalising is idempotent */
    image_ref_clear(&again);
    free(full);
    free(full2);
    free(fam);
    free(name);
    image_ref_clear(&r);
  } else if (!e || e->code != ERR_INVALID) {
    abort();
  }
  err_free(&e);
  free(s);
  return 0;
}
