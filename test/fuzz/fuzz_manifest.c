/* libFuzzer target: manifest, index and image config parsing. The first byte picks
 * the Content-Type the registry claims; the rest is the body. */
#include <stdint.h>
#include <stdlib.h>

#include "image/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    NULL,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json; charset=utf-8",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const char *ct = types[data[0] % (sizeof(types) / sizeof(types[0]))];
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  err_t *e = NULL;
  struct manifest *m = NULL;
  if (manifest_parse(ct, body, len, &m, &e) == 0) {
    if (manifest_is_index(m)) {
      struct platform_want w = platform_want_host();
      const struct manifest_desc *d;
      if (manifest_select_platform(m, &w, &d, &e) < 0)
        err_free(&e);
    }
  } else {
    err_free(&e);
  }
  struct image_config *c = NULL;
  if (image_config_parse(body, len, &c, &e) == 0) {
    if (m && !manifest_is_index(m) && image_config_check_layers(c, m, &e) < 0)
      err_free(&e);
    image_config_free(c);
  } else {
    err_free(&e);
  }
  manifest_free(m);
  return 0;
}
