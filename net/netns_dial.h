/* netns_dial.h - TCP connections to a pod's loopback, for port-forward.
 *
 * kubelet's port-forward reaches "localhost:PORT" as the pod sees it: 127.0.0.1, then
 * ::1 (as containerd does), inside the pod's network namespace. crispd is threaded, so
 * it never moves a thread it keeps into another namespace: a short-lived thread joins
 * the namespace (setns affects the calling thread only), creates the sockets there and
 * ends; a socket stays in the namespace it was created in wherever it is used, so the
 * connect happens back in the caller.
 *
 * Errors: ERR_NOT_FOUND if netns_path does not exist, ERR_UNAVAILABLE when nothing
 * listens on the port (the message names both addresses' errors), the failed call
 * otherwise. Thread-safe. Requires CAP_SYS_ADMIN for a namespace other than ours.
 */
#ifndef CRISP_NET_NETNS_DIAL_H
#define CRISP_NET_NETNS_DIAL_H

#include <stdint.h>

#include "base/err.h"

/* A connected, blocking, close-on-exec TCP socket to localhost:port in the network
 * namespace pinned at netns_path (NULL: crispd's own, for hostNetwork pods). */
int netns_dial_loopback(const char *netns_path, uint16_t port, int *fd, err_t **e);

#endif
