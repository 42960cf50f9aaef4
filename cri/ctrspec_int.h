/* ctrspec_int.h - the pieces of ctrspec_build, shared by ctrspec*.c and their tests.
 *
 * Each function fills its part of a struct ctr_spec under construction (which owns what
 * they store) or returns ERR_INVALID naming the field. sc, the container's
 * LinuxContainerSecurityContext, may be NULL (every field at its CRI default).
 */
#ifndef CRISP_CRI_CTRSPEC_INT_H
#define CRISP_CRI_CTRSPEC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cri/ctrspec.h"

typedef Runtime__V1__LinuxContainerSecurityContext ctrspec_sc_t;

/* ctrspec.c: a NULL-terminated copy of v[0..n) (xalloc). */
char **ctrspec_strv_dup(char *const *v, size_t n);
void ctrspec_strv_free(char **v);
/* Lexically cleaned absolute path ("//a/./b/../c/" -> "/a/c"; ".." stops at "/"). */
char *ctrspec_path_clean(const char *abs_path);

/* ctrspec_user.c: s->uid, s->gid, s->groups from sc and the image (its config User and
 * the /etc/passwd and /etc/group of its layers). */
int ctrspec_user(const ctrspec_sc_t *sc, const struct ctrspec_image *img, struct ctr_spec *s,
                 err_t **e);
/* Reads etc/<name> as the image's merged layers show it: *out NULL when no layer has
 * it, it is whited out, or the topmost entry is not a regular file (a symlink is never
 * followed). Exposed for tests. */
int ctrspec_image_etc_file(const struct ctrspec_image *img, const char *name, char **out,
                           err_t **e);

/* ctrspec_security.c: privileged, no_new_privs, readonly_rootfs, caps, seccomp,
 * masked and read-only paths. pod_cfg may be NULL (then a privileged container is not
 * checked against the pod). */
int ctrspec_security(const ctrspec_sc_t *sc, const Runtime__V1__PodSandboxConfig *pod_cfg,
                     struct ctr_spec *s, err_t **e);
/* "CAP_NET_ADMIN", "net_admin" -> 12; -1 for a name crisp does not know. */
int ctrspec_cap_parse(const char *name);
/* The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap). */
unsigned ctrspec_cap_last(void);
/* Bits of the default set (containerd's defaultUnixCaps). */
uint64_t ctrspec_cap_default(void);

/* ctrspec_mounts.c: s->mounts (CRI mounts, then the pod's files and /dev/shm, sorted
 * so a parent is mounted before what lies below it) and s->devices. Needs
 * s->readonly_rootfs and s->ns.ipc. */
int ctrspec_mounts(const Runtime__V1__ContainerConfig *cfg, const struct ctrspec_pod *pod,
                   struct ctr_spec *s, err_t **e);
int ctrspec_devices(const Runtime__V1__ContainerConfig *cfg, struct ctr_spec *s, err_t **e);

#endif
