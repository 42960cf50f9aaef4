/* libFuzzer target: the streaming server's HTTP request head parser (the first bytes
 * any client sends it). A head either parses or is refused; the parsed pointers stay
 * inside the buffer and the header lookups never read past it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cri/stream_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *copy = malloc(size + 1);
  memcpy(copy, data, size);
  copy[size] = '\0';
  size_t n = http_head_len(copy, size);
  if (n > size)
    abort();
  if (n == 0) {
    free(copy);
    return 0;
  }
  struct http_req rq;
  if (http_req_parse(copy, n, &rq) == 0) {
    if (rq.n > HTTP_MAX_HEADERS)
      abort();
    http_req_get(&rq, "Upgrade");
    http_req_has_token(&rq, "Connection", "upgrade");
    static const char *const protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                         "channel.k8s.io", NULL};
    bool offered;
    http_req_negotiate(&rq, "X-Stream-Protocol-Version", protos, &offered);
    http_req_negotiate(&rq, "Sec-WebSocket-Protocol", protos, &offered);
  }
  free(copy);
  return 0;
}
