/* podfiles.h - the files a pod's containers bind-mount: hostname, hosts, resolv.conf,
 * and the pod's shared /dev/shm.
 *
 * All of them live in the pod's state dir (<state>/pods/<id>), named below. Files are
 * replaced atomically (base/file.h), so a container starting meanwhile sees the old
 * content or the new, never half. `shm` is a tmpfs (64 MiB, mode 1777, nosuid, nodev,
 * noexec) that the containers of a pod sharing its IPC namespace (the CRI default)
 * mount as /dev/shm.
 *
 * Ownership: every input is borrowed for the duration of the call.
 * Errors: ERR_INVALID names the offending value (a hostname, a DNS field, an IP, an
 * alias); otherwise the cause of the failed file or mount operation.
 * Thread-safety: safe for different dirs; callers serialise calls for one pod.
 */
#ifndef CRISP_NET_PODFILES_H
#define CRISP_NET_PODFILES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define PODFILES_HOSTNAME "hostname"
#define PODFILES_HOSTS "hosts"
#define PODFILES_RESOLV "resolv.conf"
#define PODFILES_SHM "shm"

/* CRI DNSConfig. Each value is one whitespace-free token. */
struct dns_conf {
  char *const *servers;     /* -> one "nameserver" line each */
  size_t n_servers;
  char *const *searches;    /* -> one "search" line */
  size_t n_searches;
  char *const *options;     /* -> one "options" line */
  size_t n_options;
};

/* One extra hosts line: "ip<TAB>name name..." (Kubernetes' hostAliases). */
struct host_entry {
  const char *ip;
  char *const *names;
  size_t n_names;
};

struct pod_files {
  const char *hostname;          /* NULL or "": the node's name (a hostNetwork pod's) */
  char *const *pod_ips;          /* "10.88.0.4", "fd00::4": one hosts line each; none until CNI ran */
  size_t n_pod_ips;
  const struct dns_conf *dns;    /* NULL or all empty: the node's resolv.conf, minus loopback servers */
  const struct host_entry *extra_hosts;
  size_t n_extra_hosts;
  const char *host_resolv;       /* the node's resolv.conf; NULL: /etc/resolv.conf */
  bool shm;                      /* mount <dir>/shm (the pod shares its IPC namespace) */
};

/* Writes hostname, hosts and resolv.conf into dir (created if missing) and, with
 * f->shm, mounts the shm tmpfs (already mounted: kept). Everything is checked before
 * anything is written; a failure after that may leave some files, which
 * podfiles_remove takes away. A node resolv.conf that is missing gives an empty one
 * (logged); its 127.x and ::1 nameservers are dropped (logged): the node's loopback is
 * not the pod's. */
int podfiles_write(const char *dir, const struct pod_files *f, err_t **e);

/* Rewrites only hosts, e.g. once CNI gave the pod its IPs. */
int podfiles_write_hosts(const char *dir, const struct pod_files *f, err_t **e);

/* Unmounts shm (MNT_DETACH) and removes what podfiles_write made. Missing pieces
 * are fine (idempotent). Leaves dir itself. */
int podfiles_remove(const char *dir, err_t **e);

/* A pod hostname: 1-64 characters, letters, digits, '-', '.' and '_'. ERR_INVALID
 * naming it otherwise. (podns uses it too: the same name goes into the UTS namespace.) */
int podfiles_check_hostname(const char *hostname, err_t **e);

#endif
