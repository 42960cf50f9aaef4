/* sysctl_ns.h - which namespace a pod sysctl belongs to, and where it lives under /proc/sys.
 *
 * A pod may set a sysctl only if the kernel keeps it per namespace and the pod has
 * that namespace of its own: writing it anywhere else would change the node. The
 * table follows Kubernetes (both its "safe" and "unsafe" sysctls pass if namespaced):
 *   net.*                                   network namespace
 *   kernel.shm*, kernel.msg*, kernel.sem,   IPC namespace
 *   fs.mqueue.*
 *   kernel.domainname                       UTS namespace (which follows the network one)
 * Names come dotted ("net.ipv4.ip_forward") or slashed ("net/ipv4/conf/eth0.100/rp_filter");
 * as with sysctl(8), the first separator says which form it is, so an interface name
 * with a dot survives in either.
 *
 * Thread-safety: pure functions.
 */
#ifndef CRISP_NET_SYSCTL_NS_H
#define CRISP_NET_SYSCTL_NS_H

#include "base/err.h"

/* One sysctl to set; both strings are borrowed from the caller. */
struct sysctl_kv {
  const char *name;
  const char *value;
};

enum sysctl_ns { SYSCTL_NS_NET = 1, SYSCTL_NS_IPC, SYSCTL_NS_UTS };

/* Checks kv (name syntax: no empty, "." or ".." component; value: no control
 * characters) and classifies it. On success *ns is its namespace and *proc_path
 * the file to write ("/proc/sys/net/ipv4/ip_forward", caller frees). A malformed
 * or non-namespaced sysctl is ERR_INVALID naming it. */
int sysctl_ns_resolve(const struct sysctl_kv *kv, enum sysctl_ns *ns, char **proc_path, err_t **e);

/* "network", "IPC", "UTS": for messages. */
const char *sysctl_ns_name(enum sysctl_ns ns);

#endif
