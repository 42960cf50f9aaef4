#include "net/cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

int cidr_parse(const char *s, struct cidr *out, err_t **e)
{
  const char *slash = strchr(s, '/');
  if (!slash)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a CIDR range: missing \"/prefix\"", s);
  cleanup_free char *ip = xstrndup(s, (size_t)(slash - s));
  memset(out, 0, sizeof(*out));
  int max;
  if (inet_pton(AF_INET, ip, out->addr) == 1) {
    out->family = AF_INET;
    max = 32;
  } else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
    out->family = AF_INET6;
    max = 128;
  } else {
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a CIDR range: \"%s\" is not an IP address", s, ip);
  }
  char *end = NULL;
  long p = strtol(slash + 1, &end, 10);
  if (end == slash + 1 || *end || p < 0 || p > max)
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a CIDR range: the prefix must be 0 to %d", s, max);
  out->prefix = (int)p;
  for (int bit = out->prefix; bit < max; bit++)
    if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
      return err_set(e, ERR_INVALID, 0, "\"%s\" has bits set past the /%d prefix", s, out->prefix);
  return 0;
}

int cidr_parse_list(const char *s, struct cidr out[2], int *n, err_t **e)
{
  *n = 0;
  if (!s || !*s)
    return 0;
  cleanup_free char *copy = xstrdup(s);
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ')
      tok++;
    struct cidr c;
    if (cidr_parse(tok, &c, e) < 0)
      return -1;
    for (int i = 0; i < *n; i++)
      if (out[i].family == c.family)
        return err_set(e, ERR_INVALID, 0, "\"%s\": more than one range of the same IP family", s);
    if (*n == 2)
      return err_set(e, ERR_INVALID, 0, "\"%s\": at most one IPv4 and one IPv6 range", s);
    out[(*n)++] = c;
  }
  if (*n == 0)
    return err_set(e, ERR_INVALID, 0, "\"%s\" holds no CIDR range", s);
  return 0;
}
