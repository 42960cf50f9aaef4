/* ctrspec_mounts.c - the container's bind mounts and devices.
 *
 * Order and defaults follow containerd (containerMounts, WithMounts, WithDevices):
 * - the CRI mounts: container_path absolute (cleaned lexically), host_path existing
 *   (containerd would create a missing one as a directory; kubelet creates what it
 *   wants mounted, so a missing source here is a caller error), propagation
 *   PRIVATE / HOST_TO_CONTAINER (rslave) / BIDIRECTIONAL (rshared),
 *   recursive_read_only only with readonly, selinux_relabel ignored (crisp does not
 *   label), image volume and ID-mapped mounts refused as unimplemented;
 * - then, unless a CRI mount has the same container path, the pod's /etc/hostname,
 *   /etc/hosts and /etc/resolv.conf (read-only exactly when the rootfs is) and
 *   /dev/shm: the host's /dev/shm for a host IPC namespace, the pod's shm when the
 *   container joins the pod's IPC namespace, else nothing (the executor mounts its
 *   own tmpfs);
 * - all sorted, stably, by depth, so /a is mounted before /a/b whatever the order
 *   kubelet sent (containerd's orderedMounts).
 * The image's config.Volumes are not mounted: kubelet mounts every volume explicitly
 * (containerd only creates empty directories for them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/ctrspec_int.h"

static struct mount_spec *mount_push(struct ctr_spec *s, const char *source, char *dest)
{
  s->mounts = xreallocarray(s->mounts, s->n_mounts + 1, sizeof(*s->mounts));
  struct mount_spec *m = &s->mounts[s->n_mounts++];
  memset(m, 0, sizeof(*m));
  m->source = xstrdup(source);
  m->destination = dest;
  m->type = xstrdup("bind");
  return m;
}

static int mount_propagation(const Runtime__V1__Mount *m, enum mount_propagation *out, err_t **e)
{
  if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
    *out = PROP_PRIVATE;
  else if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER)
    *out = PROP_RSLAVE;
  else if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
    *out = PROP_RSHARED;
  else
    return err_set(e, ERR_INVALID, 0, "mount %s: unknown propagation %d", m->container_path,
                   (int)m->propagation);
  return 0;
}

static int check_cri_mount(const Runtime__V1__Mount *m, err_t **e)
{
  const char *dest = m->container_path;
  if (m->image && m->image->image[0])
    return err_set(e, ERR_UNIMPLEMENTED, 0, "mount %s: image volumes are not supported", dest);
  if (m->n_uidmappings > 0 || m->n_gidmappings > 0)
    return err_set(e, ERR_UNIMPLEMENTED, 0, "mount %s: ID-mapped mounts are not supported", dest);
  if (dest[0] != '/')
    return err_set(e, ERR_INVALID, 0, "mount container_path \"%s\" is not absolute", dest);
  if (!m->host_path[0])
    return err_set(e, ERR_INVALID, 0, "mount %s has no host_path", dest);
  struct stat st;
  if (stat(m->host_path, &st) < 0)
    return err_set(e, ERR_INVALID, errno, "mount source %s %s", m->host_path,
                   errno == ENOENT ? "does not exist" : strerror(errno));
  if (m->recursive_read_only && !m->readonly)
    return err_set(e, ERR_INVALID, 0, "mount %s: recursive_read_only requires readonly", dest);
  return 0;
}

static int cri_mount(const Runtime__V1__Mount *m, struct ctr_spec *s, err_t **e)
{
  enum mount_propagation prop = PROP_PRIVATE;
  if (check_cri_mount(m, e) < 0 || mount_propagation(m, &prop, e) < 0)
    return -1;
  char *dest = ctrspec_path_clean(m->container_path);
  if (strcmp(dest, "/") == 0) {
    free(dest);
    return err_set(e, ERR_INVALID, 0, "mount %s would replace the container's root",
                   m->container_path);
  }
  struct mount_spec *ms = mount_push(s, m->host_path, dest);
  ms->readonly = m->readonly;
  ms->recursive_readonly = m->recursive_read_only;
  ms->propagation = prop;
  return 0;
}

static bool covered(const struct ctr_spec *s, size_t n_cri, const char *dest)
{
  for (size_t i = 0; i < n_cri; i++)
    if (strcmp(s->mounts[i].destination, dest) == 0)
      return true;
  return false;
}

static void pod_file(struct ctr_spec *s, size_t n_cri, const char *dest, const char *source)
{
  if (!source || !source[0] || covered(s, n_cri, dest))
    return;
  mount_push(s, source, xstrdup(dest))->readonly = s->readonly_rootfs;
}

static void pod_shm(struct ctr_spec *s, size_t n_cri, const struct ctrspec_pod *pod)
{
  const char *source = NULL;
  if (s->ns.ipc == NS_MODE_NODE)
    source = "/dev/shm";
  else if (s->ns.ipc == NS_MODE_POD && pod->shm_path && pod->shm_path[0])
    source = pod->shm_path;
  if (source && !covered(s, n_cri, "/dev/shm"))
    mount_push(s, source, xstrdup("/dev/shm"));
}

static size_t depth(const char *path)
{
  size_t d = 0;
  for (const char *p = path; *p; p++)
    d += *p == '/';
  return d;
}

/* Insertion sort: stable, and mount lists are short. */
static void sort_by_depth(struct mount_spec *v, size_t n)
{
  for (size_t i = 1; i < n; i++) {
    struct mount_spec m = v[i];
    size_t d = depth(m.destination), j = i;
    for (; j > 0 && depth(v[j - 1].destination) > d; j--)
      v[j] = v[j - 1];
    v[j] = m;
  }
}

int ctrspec_mounts(const Runtime__V1__ContainerConfig *cfg, const struct ctrspec_pod *pod,
                   struct ctr_spec *s, err_t **e)
{
  bool relabel = false;
  for (size_t i = 0; i < cfg->n_mounts; i++) {
    if (cri_mount(cfg->mounts[i], s, e) < 0)
      return -1;
    relabel |= cfg->mounts[i]->selinux_relabel;
  }
  if (relabel)
    log_info("selinux_relabel ignored: crisp does not label mounts", "container", s->id, NULL);
  size_t n_cri = s->n_mounts;
  pod_file(s, n_cri, "/etc/hostname", pod->hostname_path);
  pod_file(s, n_cri, "/etc/hosts", pod->hosts_path);
  pod_file(s, n_cri, "/etc/resolv.conf", pod->resolv_path);
  pod_shm(s, n_cri, pod);
  sort_by_depth(s->mounts, s->n_mounts);
  return 0;
}

/* ---- devices ----------------------------------------------------------------------- */

static int device(const Runtime__V1__Device *d, struct device_spec *out, err_t **e)
{
  const char *perms = d->permissions[0] ? d->permissions : "rwm";
  const char *cpath = d->container_path[0] ? d->container_path : d->host_path;
  if (!d->host_path[0])
    return err_set(e, ERR_INVALID, 0, "device %s has no host_path", d->container_path);
  if (cpath[0] != '/')
    return err_set(e, ERR_INVALID, 0, "device container_path \"%s\" is not absolute", cpath);
  if (strspn(perms, "rwm") != strlen(perms))
    return err_set(e, ERR_INVALID, 0, "device %s: permissions \"%s\" are not a subset of rwm",
                   d->host_path, perms);
  /* a host path like /dev/disk/by-id/x is a symlink: containerd resolves it */
  cleanup_free char *real = realpath(d->host_path, NULL);
  struct stat st;
  if (!real || stat(real, &st) < 0)
    return err_set(e, ERR_INVALID, errno, "device %s %s", d->host_path,
                   errno == ENOENT ? "does not exist" : strerror(errno));
  if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
    return err_set(e, ERR_INVALID, 0, "device %s is not a device node", d->host_path);
  out->host_path = steal(&real);
  out->container_path = ctrspec_path_clean(cpath);
  out->permissions = xstrdup(perms);
  return 0;
}

int ctrspec_devices(const Runtime__V1__ContainerConfig *cfg, struct ctr_spec *s, err_t **e)
{
  if (cfg->n_devices == 0)
    return 0;
  s->devices = xcalloc(cfg->n_devices, sizeof(*s->devices));
  for (size_t i = 0; i < cfg->n_devices; i++) {
    if (device(cfg->devices[i], &s->devices[s->n_devices], e) < 0)
      return -1;
    s->n_devices++;
  }
  return 0;
}
