/* ns_int.h - the namespaces executor's pieces, shared inside runtimes/ only.
 *
 * Who runs what (see ns_start.c for the whole sequence):
 *   caller (crisp-monitor)  opens the pod's namespaces, compiles seccomp, makes the cgroup
 *   "middle" child          mounts the overlay on the host, joins a pid ns, clones the init
 *   container init          joins namespaces, builds the rootfs, drops privileges, execs
 * Functions marked (child) run in a forked process: they may chdir, mount and setns
 * freely, and report failure as an err_t that the caller receives over the sync pipe.
 */
#ifndef CRISP_RUNTIMES_NS_INT_H
#define CRISP_RUNTIMES_NS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/executor.h"
#include "runtimes/spec.h"

/* ---- sync pipe: child -> caller messages (ns_sync.c) ---- */
enum sync_kind { SYNC_PID = 1, SYNC_ERR = 2 };
struct sync_msg {
  enum sync_kind kind;
  pid_t pid;          /* SYNC_PID */
  err_t *err;         /* SYNC_ERR, owned by the receiver */
};
/* Writes one message; best effort (the reader may be gone). (child) */
void sync_send_pid(int fd, pid_t pid);
void sync_send_err(int fd, const err_t *err);
/* Reads one message: 1 with *m, 0 at EOF (every writer closed or exec'd), -1 on error. */
int sync_recv(int fd, struct sync_msg *m, err_t **e);
/* Reports err on fd and exits the child with status 1. (child) */
__attribute__((noreturn)) void sync_fail(int fd, err_t *err);

/* ---- seccomp (seccomp.c, seccomp_profile.c) ---- */
struct seccomp_filter;
/* Compiles the spec's filter (NULL: unconfined or privileged). A Localhost profile is read
 * from the host here, before the container's root replaces it. */
int seccomp_prepare(const struct ctr_spec *s, struct seccomp_filter **out, err_t **e);
int seccomp_install(struct seccomp_filter *f, err_t **e);
void seccomp_filter_free(struct seccomp_filter *f);

/* ---- rootfs (ns_rootfs.c, ns_mount.c, ns_dev.c) ---- */
/* Mounts the overlay at s->rootfs in the current mount namespace. (child: chdirs) */
int rootfs_mount_overlay(const struct ctr_spec *s, err_t **e);
/* Unmounts s->rootfs (every stacked mount); not mounted is fine. */
int rootfs_unmount(const struct ctr_spec *s, err_t **e);
/* In the container's new mount namespace: propagation, /proc, /dev, /sys, the spec's
 * mounts and devices, then pivot_root into s->rootfs. (child) */
int rootfs_setup(const struct ctr_spec *s, err_t **e);
/* After pivot_root: masked and read-only paths, cwd, read-only root. (child) */
int rootfs_finish(const struct ctr_spec *s, err_t **e);

/* Secure path resolution inside a root directory fd: the open O_PATH fd of path, with
 * symlinks resolved as if root were "/" (so an image cannot point a mount at the host).
 * create: missing components are made (directories; the last as a file if !dir). */
int root_open(int rootfd, const char *path, bool create, bool dir, int *out, err_t **e);
/* Mounts at path inside rootfd (via /proc/self/fd/N of the resolved target). */
int root_mount(int rootfd, const char *src, const char *path, const char *type,
               unsigned long flags, const char *data, bool dir, err_t **e);
/* Remount (readonly/nosuid/nodev/noexec) of the mount at fd's path, keeping flags. */
int mount_remount_flags(int fd, unsigned long flags, err_t **e);
/* MOUNT_ATTR_RDONLY on a whole mount tree; ERR_UNIMPLEMENTED before Linux 5.12. */
int mount_recursive_readonly(int fd, err_t **e);
/* The spec's mounts, in order (ns_mount.c). */
int mounts_apply(const struct ctr_spec *s, int rootfd, err_t **e);
/* A "cgroup" mount: the container's own cgroup, v1 or v2 (ns_cgmount.c). */
int mount_cgroupfs(const struct ctr_spec *s, int rootfd, const struct mount_spec *m, err_t **e);
/* /dev: tmpfs, nodes, pts, shm, mqueue, links, the spec's devices (ns_dev.c). */
int dev_setup(const struct ctr_spec *s, int rootfd, err_t **e);
/* A tty container's /dev/console becomes its terminal: slave bound over it, as runc
 * does. (child, after pivot_root) */
int dev_bind_console(int slave, err_t **e);
/* Is dest one of the spec's mount destinations (so a default mount there is skipped)? */
bool spec_mounts_cover(const struct ctr_spec *s, const char *dest);

/* ---- privileges (ns_priv.c) ---- */
/* Caps the spec asks for, limited to what this kernel and this process can give. */
struct caps priv_effective_caps(const struct ctr_spec *s);
/* Bounding set, user and groups, capability sets, ambient set. (child) */
int priv_apply(const struct ctr_spec *s, err_t **e);
/* PR_SET_NO_NEW_PRIVS. (child) */
int priv_no_new_privs(err_t **e);

/* ---- process (ns_init.c) ---- */
struct init_io {
  int in, out, err;   /* -1: /dev/null */
};
/* Puts io on 0, 1, 2 (and makes a tty the controlling terminal). (child) */
int init_stdio(const struct init_io *io, bool tty, err_t **e);
/* A pty of the container's own devpts instance (so the process's terminal has a name
 * in there, and the host's devpts stays out of the container), as runc's
 * --console-socket: opened through /dev/pts/ptmx of the current root, unlocked, its
 * master sent over the unix socket sock (fd_send) and closed here; the slave, opened
 * from the master (TIOCGPTPEER), in *slave. (child, after pivot_root or setns(mnt)) */
int init_console(int sock, int *slave, err_t **e);
/* argv[0] resolved against PATH from env ("PATH=..."), in the current root. A missing
 * executable is ERR_INVALID naming it. */
int init_find_exec(const char *argv0, char *const *env, char **out, err_t **e);
/* The last steps shared by start and exec: seccomp/caps/user/no_new_privs in runc's
 * order, chdir(cwd), execve. sandbox: the sandbox's filter (NULL: none), installed
 * right after the container's. Returns only on failure. (child) */
struct sock_fprog;
int init_exec(const struct ctr_spec *s, char *const *argv, struct seccomp_filter *f,
              const struct sock_fprog *sandbox, err_t **e);

#endif
