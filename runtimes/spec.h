/* spec.h - a container as the executors see it: plain data, no CRI, no gRPC.
 *
 * cri/ turns a CreateContainer request plus the image config into a struct ctr_spec
 * (argv merged with the image's entrypoint/cmd, users resolved to numbers, mounts,
 * capabilities, seccomp, cgroup limits, the pod's namespaces to join). crispd writes it
 * as JSON into the container's state directory (spec_write); crisp-monitor reads it back
 * (spec_read) and hands it to the executor, which builds the container from it and
 * nothing else. So everything the executor needs is here, already validated and
 * resolved: the executor never looks at an image, a registry or a CRI message.
 *
 * Ownership: a struct ctr_spec owns every string and array in it; spec_free frees them.
 * Thread-safety: plain data.
 */
#ifndef CRISP_RUNTIMES_SPEC_H
#define CRISP_RUNTIMES_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/handlers.h"

enum mount_propagation { PROP_PRIVATE = 0, PROP_RSLAVE, PROP_RSHARED };

struct mount_spec {
  char *source;          /* host path (bind) or fs name ("proc", "tmpfs") */
  char *destination;     /* absolute path inside the container */
  char *type;            /* "bind", "proc", "tmpfs", "sysfs", "devpts", "mqueue", ... */
  char *options;         /* fs data string for non-bind mounts ("mode=755,size=65536k"), or NULL */
  bool readonly;
  bool recursive_readonly;   /* MOUNT_ATTR_RDONLY with AT_RECURSIVE (kernel >= 5.12) */
  bool nosuid, nodev, noexec;
  enum mount_propagation propagation;
};

struct device_spec {
  char *host_path;       /* /dev/fuse */
  char *container_path;  /* where it appears */
  char *permissions;     /* "rwm" subset, for the devices cgroup */
};

/* Namespace modes, as CRI has them. */
enum ns_mode {
  NS_MODE_POD = 0,       /* join the pod's (the default for net, ipc, uts; pid if shared) */
  NS_MODE_CONTAINER,     /* a new one for this container (pid default) */
  NS_MODE_NODE,          /* the host's */
  NS_MODE_TARGET,        /* pid only: another container's (target_pid) */
};

struct ns_spec {
  enum ns_mode net, ipc, uts, pid;
  char *netns_path;      /* pinned pod namespaces to setns() into (NS_MODE_POD) */
  char *ipcns_path;
  char *utsns_path;
  char *pidns_path;      /* the pod's shared pid namespace (pid == NS_MODE_POD) */
  pid_t target_pid;      /* pid == NS_MODE_TARGET: join /proc/<target_pid>/ns/pid */
};

struct hugepage_limit {
  char *page_size;       /* "2MB", "1GB" */
  uint64_t limit;        /* bytes */
};

struct kv {
  char *key;
  char *value;
};

/* Zero means "not set" for every number (CRI's convention). */
struct resources {
  int64_t cpu_period;    /* us */
  int64_t cpu_quota;     /* us, 0 = none */
  int64_t cpu_shares;    /* cgroup v1 shares; converted to v2 weight */
  int64_t memory_limit;  /* bytes */
  int64_t memory_swap_limit;
  char *cpuset_cpus;
  char *cpuset_mems;
  int64_t pids_limit;
  int64_t oom_score_adj; /* applied to the container's first process */
  struct hugepage_limit *hugepages;
  size_t n_hugepages;
  struct kv *unified;    /* raw cgroup v2 files ("memory.high" -> "1G") */
  size_t n_unified;
};

enum seccomp_mode { SECCOMP_UNCONFINED = 0, SECCOMP_RUNTIME_DEFAULT, SECCOMP_LOCALHOST };

/* Linux capabilities as bit masks (1ull << CAP_xxx). */
struct caps {
  uint64_t bounding, effective, permitted, inheritable, ambient;
};

struct ctr_spec {
  char *id;              /* container id (64 hex) */
  char *pod_id;
  char *name;            /* for logs */
  enum executor_kind executor;
  struct sandbox_opts sandbox;   /* executor == EXECUTOR_SANDBOX */

  /* process */
  char **argv;           /* NULL-terminated, argv[0] resolved against PATH by the executor */
  size_t argc;
  char **env;            /* "K=V", NULL-terminated */
  size_t n_env;
  char *cwd;             /* absolute; created if missing */
  uint32_t uid, gid;
  uint32_t *groups;      /* supplemental, already resolved */
  size_t n_groups;
  bool tty, stdin_open, stdin_once;
  char *hostname;        /* NULL: keep the pod's */

  /* filesystem */
  char **lower_dirs;     /* image layers, TOP first (overlayfs lowerdir order) */
  size_t n_lower;
  char *upper_dir;       /* container's writable layer */
  char *work_dir;        /* overlayfs workdir, same filesystem as upper_dir */
  char *rootfs;          /* where the overlay is mounted (in the container's state dir) */
  bool readonly_rootfs;
  struct mount_spec *mounts;     /* in order; the executor adds /proc, /dev, /sys... first */
  size_t n_mounts;
  struct device_spec *devices;
  size_t n_devices;
  char **masked_paths;
  size_t n_masked;
  char **readonly_paths;
  size_t n_readonly;

  /* privileges */
  bool privileged;
  bool no_new_privs;
  struct caps caps;
  enum seccomp_mode seccomp;
  char *seccomp_profile; /* SECCOMP_LOCALHOST: path of an OCI seccomp JSON profile */
  struct kv *sysctls;    /* namespaced sysctls for the container ("net.ipv4.ip_forward") */
  size_t n_sysctls;

  /* namespaces and cgroup */
  struct ns_spec ns;
  char *cgroup_parent;   /* e.g. "/kubepods/besteffort/pod<uid>" (cgroupfs) */
  char *cgroup_name;     /* leaf, e.g. "crisp-<id>" */
  struct resources res;

  /* io */
  char *log_path;        /* CRI log file; NULL: discard */
  char *stop_signal;     /* "SIGTERM" (from the image) */
};

/* An ExecSync / Exec process inside a running container. */
struct exec_spec {
  char **argv;           /* NULL-terminated */
  size_t argc;
  bool tty;
  bool stdin_open;
  /* tty: the pty is made inside the container (its /dev/pts/ptmx) and its master
   * sent over stdin, a unix socket, as runc's --console-socket (SCM_RIGHTS) */
  bool console_socket;
};

void spec_free(struct ctr_spec *s);
/* Frees what r owns and zeroes it (r itself is the caller's). */
void resources_clear(struct resources *r);
void exec_spec_free(struct exec_spec *x);

/* Serialises s as JSON (every field) into path, atomically. */
int spec_write(const struct ctr_spec *s, const char *path, err_t **e);
/* Reads a spec written by spec_write; ERR_INVALID names the bad field. */
int spec_read(const char *path, struct ctr_spec **out, err_t **e);

/* "SIGTERM", "TERM", "15" -> 15; -1 if unknown. */
int signal_parse(const char *name);

#endif
