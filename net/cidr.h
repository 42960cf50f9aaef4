/* cidr.h - IP prefixes as kubelet hands them out (UpdateRuntimeConfig's pod CIDR). */
#ifndef CRISP_NET_CIDR_H
#define CRISP_NET_CIDR_H

#include <netinet/in.h>

#include "base/err.h"

struct cidr {
  int family;            /* AF_INET or AF_INET6 */
  unsigned char addr[16];
  int prefix;
};

/* Parses "10.88.0.0/16" or "fd00::/64". Host bits set is an error, as kubelet
 * never sends such a range and a typo is likelier than intent. */
int cidr_parse(const char *s, struct cidr *out, err_t **e);
/* Parses a comma-separated list ("10.244.1.0/24,fd00:1::/64", dual stack), at most
 * one range per family. Empty string = no ranges (n = 0). */
int cidr_parse_list(const char *s, struct cidr out[2], int *n, err_t **e);

#endif
