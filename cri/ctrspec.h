/* ctrspec.h - CreateContainer's translation: CRI config + image config + pod -> ctr_spec.
 *
 * Everything Kubernetes defines about how a container runs is decided here, once:
 * argv from the image's entrypoint/cmd and the CRI command/args (Kubernetes' rules),
 * env (image then CRI, later wins), working dir, user and groups (run_as_user,
 * run_as_username and run_as_group resolved against the image's /etc/passwd and
 * /etc/group read from its layers; supplemental groups plus the image's groups for the
 * uid), mounts (CRI mounts with propagation and read-only flags; SELinux relabel
 * ignored with a log line; /etc/hostname, /etc/hosts, /etc/resolv.conf and /dev/shm
 * from the pod), devices, masked and read-only paths (Kubernetes' defaults unless the
 * CRI lists are given), capabilities (the default set, add, drop, ALL), privileged,
 * no_new_privs, seccomp (RuntimeDefault / Unconfined / Localhost), namespace modes,
 * cgroup parent and limits, and the log path (pod log_directory + config log_path).
 * The result is complete: the executor needs nothing else.
 *
 * Errors: ERR_INVALID naming the field ("run_as_username \"nobody2\" is not in the
 * image's /etc/passwd", "mount source /x does not exist", "log path climbs out of the
 * pod's log directory"). Thread-safety: pure functions over their inputs.
 */
#ifndef CRISP_CRI_CTRSPEC_H
#define CRISP_CRI_CTRSPEC_H

#include <stdbool.h>

#include "base/err.h"
#include "cri/api.pb-c.h"
#include "image/manifest.h"
#include "runtimes/executor.h"
#include "runtimes/spec.h"

/* What the pod contributes (from its record). */
struct ctrspec_pod {
  const char *id;
  const char *hostname;
  const char *log_directory;      /* may be "" */
  const char *cgroup_parent;      /* CRI linux.cgroup_parent of the sandbox; "" = none: a
                                   * per-pod one crisp makes (cgroup_place) with its first
                                   * container and removes with the pod (podenv_destroy) */
  enum cgroup_driver cgroup_driver;
  const char *hostname_path;      /* files written by the pod (net/podfiles) */
  const char *hosts_path;
  const char *resolv_path;
  const char *shm_path;           /* the pod's /dev/shm tmpfs, NULL when IPC is the host's */
  const char *netns_path, *ipcns_path, *utsns_path, *pidns_path;  /* pins; NULL: host's */
  bool host_network, host_ipc, host_pid;
  enum executor_kind executor;
  const struct sandbox_opts *sandbox;
  const char *sandbox_kmsg;       /* executor == EXECUTOR_SANDBOX: the pod's kernel log file */
};

/* What the image contributes. */
struct ctrspec_image {
  const char *id;                 /* image ID */
  const struct image_config *config;
  const char *const *layer_dirs;  /* unpacked layers, BOTTOM first (as stored) */
  size_t n_layers;
};

/* Where the container's own files go. */
struct ctrspec_paths {
  const char *id;                 /* the new container's id */
  const char *state_dir;          /* <state>/containers/<id>: rootfs mount point inside */
  const char *upper_dir;          /* writable layer (persistent, <root>/containers/<id>/upper) */
  const char *work_dir;
};

/* Builds the spec; *out is the caller's (spec_free). What the caller must know:
 * - pid namespace TARGET leaves ns.target_pid 0: cri looks up the target container's
 *   pid (namespace_options.target_id) and fills it in before starting;
 * - a namespace in POD mode needs the pod's pin (netns_path, ipcns_path, utsns_path,
 *   pidns_path), else ERR_INVALID; on a host-network/IPC/PID pod POD means the host's;
 * - pod_cfg may be NULL: then a privileged container is not checked against the pod
 *   (containerd refuses one in a pod that is not privileged);
 * - mount and device sources, and a Localhost seccomp profile, must exist now;
 * - ERR_UNIMPLEMENTED for image volume mounts and ID-mapped mounts.
 * Every rule and default, with its reference, is in the ctrspec*.c file comments. */
int ctrspec_build(const Runtime__V1__ContainerConfig *cfg, const Runtime__V1__PodSandboxConfig *pod_cfg,
                  const struct ctrspec_pod *pod, const struct ctrspec_image *img,
                  const struct ctrspec_paths *paths, struct ctr_spec **out, err_t **e);

/* CRI resources -> struct resources (o zeroed by the caller; free with resources_clear). */
int ctrspec_resources(const Runtime__V1__LinuxContainerResources *r, struct resources *o,
                      err_t **e);

/* Kubernetes' argv rule: command replaces the entrypoint (and drops the image's cmd),
 * args replace the cmd. NULL-terminated result, caller frees with strv_free-style loop;
 * ERR_INVALID when the result is empty ("no command: the image has no entrypoint or
 * cmd and the container config names none"). */
int ctrspec_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                 const struct image_config *img, char ***argv, size_t *argc, err_t **e);

#endif
