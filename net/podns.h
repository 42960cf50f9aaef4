/* podns.h - a pod's namespaces, created and pinned without a long-lived process.
 *
 * podns_create clones one short-lived child into new network, IPC and UTS
 * namespaces (each only where the pod does not use the node's: a hostNetwork pod
 * shares the node's network and, as in Kubernetes, its UTS namespace). The child
 * sets the hostname, brings up lo and writes the pod's sysctls, then crispd
 * bind-mounts /proc/<child>/ns/{net,ipc,uts} onto files under <dir>/ns and the child
 * exits: the mounts keep the namespaces alive, and containers setns() into the paths.
 *
 * A pod whose containers share a PID namespace (CRI pid: POD) needs an init; then the
 * child is also cloned into a new PID (and mount) namespace, stays as its pid 1
 * ("crisp-pause": reaps orphans, exits on SIGTERM/SIGINT, ignores everything else)
 * and its pid namespace is pinned too. It is forked from crispd (no helper binary):
 * it closes every inherited descriptor, leaves crispd's session, pivots into an empty
 * read-only tmpfs in its own mount namespace (so /proc/1/root in the pod leads
 * nowhere), drops every capability and is not dumpable. Why no helper: nothing to
 * build, install and find, and no exec. The price: it keeps a copy-on-write snapshot
 * of crispd's memory (its private share grows, at most to crispd's anonymous memory
 * at clone time, as crispd's pages change; ~120 kB Pss measured from a small parent),
 * readable only with CAP_SYS_PTRACE; /proc/1/cmdline shows crispd's command line.
 *
 * Layout under dir (everything podns owns is below <dir>/ns):
 *   ns/              a private bind mount of itself (see podns.c)
 *   ns/net ns/ipc ns/uts ns/pid   the pins (nsfs bind mounts)
 *   ns/pause         "<pid> <start time>" of the pause process, to find it after a restart
 *
 * Errors: ERR_INVALID for bad options (a sysctl that is not namespaced, or belongs to a
 * namespace the pod shares with the node, is named); ERR_EXISTS if dir already has
 * pinned namespaces; otherwise the cause of the failed system call.
 * Thread-safety: functions are safe to call concurrently for different dirs; callers
 * serialise calls for one pod. crispd must reap children by pid, never with
 * waitpid(-1): podns waits for its own children. Requires root (CAP_SYS_ADMIN).
 */
#ifndef CRISP_NET_PODNS_H
#define CRISP_NET_PODNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"
#include "net/sysctl_ns.h"

/* Borrowed by podns_create for the duration of the call. */
struct pod_ns_opts {
  const char *dir;          /* the pod's state dir, <state>/pods/<id>; created if missing */
  const char *hostname;     /* for the pod's UTS namespace; NULL or "" keeps the node's name */
  bool host_net;            /* node's network namespace, hence also its UTS namespace */
  bool host_ipc;            /* node's IPC namespace */
  bool shared_pid;          /* containers share one PID namespace (CRI pid: POD) */
  const struct sysctl_kv *sysctls;
  size_t n_sysctls;
};

/* Owns its strings; podns_clear frees them. A NULL path: the pod uses the node's
 * namespace (or, for pid, each container gets its own). */
struct pod_ns {
  char *netns_path;         /* <dir>/ns/net: setns() target, CNI's CNI_NETNS */
  char *ipcns_path;
  char *utsns_path;
  char *pidns_path;
  pid_t infra_pid;          /* the pause process (node pid), 0 if none or it is gone */
};

/* Creates, configures and pins the pod's namespaces. On failure nothing it made is
 * left behind (no mount, no process, no <dir>/ns; dir itself may stay), and an
 * existing <dir>/ns (ERR_EXISTS) is not touched. *out is filled on success only.
 * Takes a few milliseconds (one clone, a handful of mounts). */
int podns_create(const struct pod_ns_opts *o, struct pod_ns *out, err_t **e);

/* Stops the pause process (SIGKILL, once its identity is checked against the
 * recorded start time, so a recycled pid is never hit), detaches the pins and the
 * ns/ mount, and removes <dir>/ns. Needs nothing but dir, so it works after a crispd
 * restart; a missing or half-built <dir>/ns is fine (idempotent). Leaves dir itself. */
int podns_destroy(const char *dir, err_t **e);

/* Reads back what podns_create pinned in dir (after a restart): the paths that are
 * live nsfs mounts, and the pause pid if that process still runs (0 if it died: the
 * pod's pid namespace then takes no new process). ERR_NOT_FOUND if podns_create never
 * ran for dir (or podns_destroy did); ERR_PRECONDITION if a pin file is not mounted
 * (a create cut short by a crash: destroy and create again). */
int podns_load(const char *dir, struct pod_ns *out, err_t **e);

/* Pins the network namespace open as nsfd on <dir>/ns/net again, when that pin is gone
 * (unmounted, or its file removed) while the namespace lives on in a process still in
 * it: 1 once pinned, 0 if the pin is there already. nsfd stays the caller's.
 * ERR_NOT_FOUND without <dir>/ns (podns_create never ran, or podns_destroy did);
 * ERR_PRECONDITION if nsfd is the caller's own network namespace (the node's), which
 * no pod's pin may name; ERR_INVALID if it is no network namespace. Same
 * thread-safety as the others. */
int podns_repin_net(const char *dir, int nsfd, err_t **e);

/* Frees the strings and zeroes *ns; safe on a zeroed struct. */
void podns_clear(struct pod_ns *ns);

#endif
