/* libFuzzer target: what crispd reads of CNI: a plugin's ADD result (any result
 * version, from the plugin's stdout), a network config (conf or conflist), and the
 * per-pod cache crispd keeps for DEL and CHECK after a restart (whose cached config
 * and result are parsed again). Any input gives a result or an error. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"
#include "net/cni_int.h"
#include "test/fuzz/fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void result(const json_t *j)
{
  struct cni_result r = {0};
  err_t *e = NULL;
  if (cni_result_parse(j, "eth0", &r, &e) == 0)
    cni_result_clear(&r);
  else if (!e)
    abort();
  err_free(&e);
}

static void net(const char *text)
{
  struct cni_net *n = NULL;
  err_t *e = NULL;
  if (cni_net_parse(text, "fuzz.conflist", &n, &e) == 0)
    cni_net_free(n);
  else if (!e)
    abort();
  err_free(&e);
}

static void cache(const uint8_t *data, size_t size)
{
  const char *dir = fuzz_scratch("cni", NULL);
  fuzz_scratch_put(CNI_CACHE_FILE, data, size);
  json_t *doc = NULL;
  struct cni_cache_rec r;
  err_t *e = NULL;
  if (cni_cache_read(dir, &doc, &r, &e) == 0) {
    net(r.conf_text);
    if (r.result)
      result(r.result);
    json_free(doc);
  }
  err_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s = xstrndup((const char *)data, size);
  json_t *j = NULL;
  err_t *e = NULL;
  if (json_parse(s, &j, &e) == 0) {
    result(j);
    json_free(j);
  }
  err_free(&e);
  net(s);
  cache(data, size);
  free(s);
  return 0;
}
