/* cni.h - a pod's network through CNI plugins, the way kubelet nodes run them.
 *
 * The network config is the lexically first *.conflist, *.conf or *.json in conf_dir
 * (net/cni_conf.h). A file with a "plugins" array is a list; any other file is one
 * plugin, wrapped into a list of one (the content decides, not the extension).
 * cniVersion must be 0.3.0, 0.3.1, 0.4.0 or 1.0.0; the network name and every plugin
 * type are checked before anything runs. Plugins are looked up in bin_dirs in order.
 *
 * Each plugin is executed as the CNI spec says: CNI_COMMAND, CNI_CONTAINERID,
 * CNI_NETNS, CNI_IFNAME, CNI_ARGS ("K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
 * K8S_POD_INFRA_CONTAINER_ID=..;K8S_POD_UID=..;IgnoreUnknown=1") and CNI_PATH (bin_dirs
 * joined by ':') on top of crispd's environment (plugins run iptables from PATH); on
 * stdin its config with the list's name and cniVersion, the previous plugin's result
 * as prevResult (chained plugins) and a runtimeConfig holding the capability
 * arguments it declares in "capabilities": portMappings (the pod's ports that have a
 * host port), dns (the pod's DNS config) and ipRanges ([[{"subnet": cidr}]] per
 * family of the pod CIDR from UpdateRuntimeConfig). Each plugin runs in its own
 * process group with a clean signal mask and no inherited descriptors; one that is
 * not done after timeout_s seconds is killed with its children.
 *
 * The cache (libcni keeps the same under /var/lib/cni/results): <pod dir>/cni-cache.json
 * holds the exact config text, CNI_ARGS and capability arguments of the ADD, and its
 * result once ADD succeeds. It is written before the first plugin runs, so a DEL after
 * a crispd crash or restart, or after the config directory changed, undoes exactly
 * what was set up (portmap only removes its rules when it is given the same
 * portMappings). DEL and CHECK use it; DEL removes it once every plugin succeeded.
 *
 * Errors: a plugin's error object {code, msg, details} becomes ERR_INVALID for the CNI
 * codes that mean a bad config (1 incompatible version, 2 unsupported field, 4 bad
 * environment, 6 undecodable input, 7 invalid config) and ERR_UNAVAILABLE otherwise,
 * with the plugin's msg and details; a plugin that exits non-zero without one gives
 * its exit status and the end of its stderr; a timeout says "killed after N s". A
 * missing config or plugin binary is ERR_UNAVAILABLE (the node is not ready); a bad
 * config or pod field is ERR_INVALID; messages name the network and plugin.
 *
 * Ownership: every input is borrowed for the duration of the call; a cni_result is
 * the caller's (cni_result_clear). Thread-safety: calls for different pods may run
 * concurrently (each plugin call is its own process; plugins lock what they share,
 * e.g. host-local's lease dir); callers serialise calls for one pod. Children are
 * reaped by pid only. Reads `environ`: nobody may setenv while a call runs.
 */
#ifndef CRISP_NET_CNI_H
#define CRISP_NET_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "net/podfiles.h"

#define CNI_TIMEOUT_DEFAULT 30  /* seconds per plugin call */
#define CNI_CACHE_FILE "cni-cache.json"

struct cni_opts {
  const char *conf_dir;               /* e.g. /etc/cni/net.d */
  char *const *bin_dirs;              /* searched in order (a config strv passes as is) */
  size_t n_bin_dirs;
  int timeout_s;                      /* per plugin call; <= 0: CNI_TIMEOUT_DEFAULT */
};

struct cni_port {
  int32_t host_port;                  /* 0: not published (skipped, as kubelet does) */
  int32_t container_port;
  const char *protocol;               /* "tcp", "udp", "sctp" (any case); NULL: tcp */
  const char *host_ip;                /* NULL or "": every host address */
};

struct cni_pod {
  const char *id;                     /* sandbox id: CNI_CONTAINERID, K8S_POD_INFRA_CONTAINER_ID */
  const char *name, *namespace_, *uid;/* K8S_POD_NAME, K8S_POD_NAMESPACE, K8S_POD_UID */
  const char *netns;                  /* pinned netns path (podns); DEL accepts NULL: the cached one */
  const char *ifname;                 /* NULL: "eth0" */
  const char *dir;                    /* pod state dir: holds the cache (created if missing) */
  const struct cni_port *ports;
  size_t n_ports;
  const struct dns_conf *dns;         /* NULL: no dns capability argument */
  const char *pod_cidr;               /* "a" or "a,b" (dual stack); NULL or "": no ipRanges */
};

/* Addresses of the pod's interface, from the last plugin's result. */
struct cni_result {
  char *ip4;                          /* "10.88.0.5" (no prefix), NULL if none */
  char *ip6;                          /* NULL if none */
  char *iface;                        /* the interface in the pod ("eth0") */
};

/* Runs ADD through the list and caches what it did. On a plugin's failure it runs
 * DEL for the whole list in reverse (no veth or IPAM lease is left; the cache goes
 * too) and returns the plugin's error; a failing rollback is added to the message and
 * the cache is kept for a later cni_del. *out is filled on success only. */
int cni_add(const struct cni_opts *o, const struct cni_pod *p, struct cni_result *out, err_t **e);

/* Runs DEL through the list in reverse with the cached config, arguments and result
 * (the current config and p's ports if there is no cache). Every plugin runs even if
 * one fails (so one broken plugin does not leak the others' state); the first error
 * is returned and the cache kept for a retry. Idempotent: nothing to undo (no cache
 * and no config, or a second call) is success. */
int cni_del(const struct cni_opts *o, const struct cni_pod *p, err_t **e);

/* Runs CHECK through the list with the cached config and result. ERR_NOT_FOUND
 * without a completed ADD; ERR_UNIMPLEMENTED for cniVersion < 0.4.0; a list with
 * "disableCheck": true passes. */
int cni_check(const struct cni_opts *o, const struct cni_pod *p, err_t **e);

/* Ends (SIGKILL, with their process groups) the plugins still running for sandbox
 * container_id that a crispd which died left behind, and waits for them; the number
 * found. Call before undoing a RunPodSandbox a crash cut short: an ADD left running
 * could otherwise finish after the undo's DEL. */
int cni_orphans_end(const char *container_id);

/* For Status's NetworkReady: true if a config exists, is valid and every plugin it
 * names (and each plugin's ipam.type) is found. Otherwise false and, if why is not
 * NULL, *why says why (caller frees). Cheap: reads one file, stats a few. */
bool cni_ready(const struct cni_opts *o, char **why);

/* Frees the strings and zeroes *r; safe on a zeroed struct. */
void cni_result_clear(struct cni_result *r);

#endif
