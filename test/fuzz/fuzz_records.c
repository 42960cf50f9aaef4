/* libFuzzer target: crispd's records as it loads them at start-up: the input is
 * stored as a pod record and as a container record under a scratch root and the
 * store check reads them (check-only: nothing moves); then as an image record, a
 * layer record and a holder record through the image store's decoders. A corrupt
 * record is a reported problem, never a crash. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/quarantine.h"
#include "base/xalloc.h"
#include "cri/objects.h"
#include "image/store_int.h"
#include "test/fuzz/fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  bool made;
  const char *root = fuzz_scratch("records", &made);
  if (made) {
    log_set_level(LOG_ERROR);   /* every corrupt record is a warn line: too many to print */
    char *p = path_join(root, "pods"), *c = path_join(root, "containers");
    if (mkdir(p, 0700) < 0 || mkdir(c, 0700) < 0)
      abort();
    free(p);
    free(c);
  }
  fuzz_scratch_put("pods/" ID ".json", data, size);
  fuzz_scratch_put("containers/" ID ".json", data, size);
  struct store_report r = {.check_only = true};
  err_t *e = NULL;
  if (objects_check(root, &r, &e) < 0)
    abort();   /* a bad record is a problem in the report, not a failed check */
  if (r.n_problems == 0 && r.n_counts == 0)
    abort();   /* two records: each is counted or reported */
  store_report_clear(&r);

  char *text = xstrndup((const char *)data, size);
  struct image_record *ir = NULL;
  struct store_layer *l = NULL;
  struct store_holder *h = NULL;
  if (store_record_decode(text, &ir, &e) == 0)
    image_record_free(ir);
  err_free(&e);
  if (store_layer_decode(text, &l, &e) == 0)
    store_layer_free(l);
  err_free(&e);
  if (store_holder_decode(text, &h, &e) == 0)
    store_holder_free(h);
  err_free(&e);
  free(text);
  return 0;
}
