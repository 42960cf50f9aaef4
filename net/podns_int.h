/* podns_int.h - between podns.c (crispd's side) and podns_child.c (the cloned child).
 *
 * The child is cloned from a multi-threaded crispd, so it may only make plain system
 * calls: no malloc, no stdio, no locks. Everything it needs is prepared here by the
 * parent; it answers with one fixed-size report over a socketpair.
 */
#ifndef CRISP_NET_PODNS_INT_H
#define CRISP_NET_PODNS_INT_H

#include <stdbool.h>
#include <stddef.h>

struct podns_child_sysctl {
  const char *path;          /* /proc/sys/... */
  const char *value;
  size_t value_len;
};

struct podns_child_args {
  int sock;                  /* the child's end of the socketpair */
  const char *hostname;      /* NULL: keep */
  size_t hostname_len;
  bool new_net;              /* bring up lo */
  const struct podns_child_sysctl *sysctls;
  size_t n_sysctls;
  bool pause;                /* stay as the pod's pid 1 */
  const char *pause_root;    /* an existing directory to mount the pause's empty root on */
};

/* What failed in the child; PODNS_OK when nothing did. */
enum podns_step {
  PODNS_OK = 0,
  PODNS_STEP_HOSTNAME,
  PODNS_STEP_LO,
  PODNS_STEP_SYSCTL,         /* index = which sysctl */
  PODNS_STEP_PAUSE_SIGNALS,
  PODNS_STEP_PAUSE_ROOT,
  PODNS_STEP_PAUSE_PRIVS,
};

struct podns_report {
  int step;                  /* enum podns_step */
  int sys_errno;
  int index;
};

/* The clone() entry point; arg is a struct podns_child_args. Sends one report,
 * then waits for one byte from the parent (sent once the namespaces are pinned) and
 * exits, or with pause set becomes the pod's init and never returns. */
int podns_child_main(void *arg);

#endif
