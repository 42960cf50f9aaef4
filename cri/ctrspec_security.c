/* ctrspec_security.c - privileges: privileged, no_new_privs, capabilities, seccomp,
 * masked and read-only paths, read-only rootfs.
 *
 * Capabilities follow containerd's WithCapabilities: the default set, then "ALL" in
 * add (every capability the kernel knows), then "ALL" in drop (none), then each named
 * add, then each named drop. Names take an optional "CAP_" prefix, any case; an unknown
 * name is refused. The result goes to bounding, effective and permitted; inheritable
 * stays empty (CVE-2022-24769). add_ambient_capabilities are added to every set,
 * inheritable and ambient included, since the kernel only raises an ambient capability
 * that is permitted and inheritable. A non-root uid keeps effective and permitted as
 * containerd and Docker do (moby#45511 reverted the early drop): execve clears them
 * for a non-root process anyway unless ambient or file capabilities grant them, and
 * keeping them lets file capabilities work under no_new_privs.
 * Privileged: every capability, no seccomp, no masked or read-only paths, no
 * no_new_privs; a privileged container needs a privileged pod (containerd's rule).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "cri/ctrspec_int.h"

/* Linux's capability numbers (include/uapi/linux/capability.h), through 6.x. */
static const char *const cap_names[] = {
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};
#define N_CAPS (sizeof(cap_names) / sizeof(cap_names[0]))

/* containerd's defaultUnixCaps (oci/spec.go), Docker's default set. */
static const char *const default_caps[] = {
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
};

/* kubelet's defaultMaskedPaths / defaultReadonlyPaths (pkg/securitycontext), which
 * track moby's oci/defaults.go. */
static const char *const default_masked[] = {
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
};
static const char *const default_readonly[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

int ctrspec_cap_parse(const char *name)
{
  if (strncasecmp(name, "CAP_", 4) == 0)
    name += 4;
  for (size_t i = 0; i < N_CAPS; i++)
    if (strcasecmp(name, cap_names[i]) == 0)
      return (int)i;
  return -1;
}

unsigned ctrspec_cap_last(void)
{
  unsigned last = N_CAPS - 1;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (fscanf(f, "%u", &last) != 1 || last > 63)
      last = N_CAPS - 1;
    fclose(f);
  }
  return last;
}

static uint64_t cap_all(void)
{
  unsigned last = ctrspec_cap_last();
  return last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
}

uint64_t ctrspec_cap_default(void)
{
  uint64_t set = 0;
  for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
    set |= 1ull << ctrspec_cap_parse(default_caps[i]);
  return set;
}

static bool has_all(char *const *names, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(names[i], "ALL") == 0)
      return true;
  return false;
}

/* The bits of names, "ALL" skipped; an unknown name is ERR_INVALID naming the list. */
static int cap_bits(char *const *names, size_t n, const char *field, uint64_t *out, err_t **e)
{
  *out = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcasecmp(names[i], "ALL") == 0)
      continue;
    int c = ctrspec_cap_parse(names[i]);
    if (c < 0)
      return err_set(e, ERR_INVALID, 0, "unknown capability \"%s\" in %s", names[i], field);
    *out |= 1ull << c;
  }
  return 0;
}

static int build_caps(const Runtime__V1__Capability *c, bool privileged, struct caps *out,
                      err_t **e)
{
  uint64_t all = cap_all(), set = ctrspec_cap_default(), add = 0, drop = 0, amb = 0;
  if (privileged) {
    out->bounding = out->effective = out->permitted = all;
    return 0;
  }
  if (c) {
    if (has_all(c->add_capabilities, c->n_add_capabilities))
      set = all;
    if (has_all(c->drop_capabilities, c->n_drop_capabilities))
      set = 0;
    if (cap_bits(c->add_capabilities, c->n_add_capabilities, "add_capabilities", &add, e) < 0 ||
        cap_bits(c->drop_capabilities, c->n_drop_capabilities, "drop_capabilities", &drop, e) < 0 ||
        cap_bits(c->add_ambient_capabilities, c->n_add_ambient_capabilities,
                 "add_ambient_capabilities", &amb, e) < 0)
      return -1;
    set = ((set | add) & ~drop) | amb;
  }
  if ((set & ~all) != 0) {
    char mask[24];
    snprintf(mask, sizeof(mask), "%#llx", (unsigned long long)(set & ~all));
    log_warn("capabilities the kernel does not know are left out", "caps", mask, NULL);
    set &= all;
    amb &= all;
  }
  out->bounding = out->effective = out->permitted = set;
  out->inheritable = out->ambient = amb;
  return 0;
}

/* ---- seccomp ----------------------------------------------------------------------- */

static int seccomp_localhost(const char *ref, struct ctr_spec *s, err_t **e)
{
  /* containerd trims a "localhost/" prefix kubelet may leave on the reference */
  if (strncmp(ref, "localhost/", 10) == 0)
    ref += 10;
  if (ref[0] != '/')
    return err_set(e, ERR_INVALID, 0, "seccomp localhost profile \"%s\" is not an absolute path",
                   ref);
  struct stat st;
  if (stat(ref, &st) < 0)
    return err_set(e, ERR_INVALID, errno, "seccomp localhost profile %s: %s", ref,
                   strerror(errno));
  if (!S_ISREG(st.st_mode))
    return err_set(e, ERR_INVALID, 0, "seccomp localhost profile %s is not a file", ref);
  s->seccomp = SECCOMP_LOCALHOST;
  s->seccomp_profile = xstrdup(ref);
  return 0;
}

/* The deprecated string form: "runtime/default", "docker/default", "unconfined",
 * "localhost/<absolute path>"; "" is unconfined. */
static int seccomp_from_path(const char *p, struct ctr_spec *s, err_t **e)
{
  if (!p[0] || strcmp(p, "unconfined") == 0) {
    s->seccomp = SECCOMP_UNCONFINED;
    return 0;
  }
  if (strcmp(p, "runtime/default") == 0 || strcmp(p, "docker/default") == 0) {
    s->seccomp = SECCOMP_RUNTIME_DEFAULT;
    return 0;
  }
  if (strncmp(p, "localhost/", 10) == 0)
    return seccomp_localhost(p, s, e);
  return err_set(e, ERR_INVALID, 0, "unknown seccomp_profile_path \"%s\"", p);
}

/* The SecurityProfile wins over the deprecated string; neither set is unconfined
 * (kubelet always sends one; an empty CRI field means no filter). */
static int build_seccomp(const ctrspec_sc_t *sc, struct ctr_spec *s, err_t **e)
{
  s->seccomp = SECCOMP_UNCONFINED;
  if (!sc)
    return 0;
  const Runtime__V1__SecurityProfile *p = sc->seccomp;
  if (!p)
    return seccomp_from_path(sc->seccomp_profile_path, s, e);
  if (p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault)
    s->seccomp = SECCOMP_RUNTIME_DEFAULT;
  else if (p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost)
    return seccomp_localhost(p->localhost_ref, s, e);
  else if (p->profile_type != RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined)
    return err_set(e, ERR_INVALID, 0, "unknown seccomp profile type %d", (int)p->profile_type);
  return 0;
}

/* ---- masked and read-only paths ---------------------------------------------------- */

static char **paths_copy(const char *const *v, size_t n, size_t *n_out)
{
  *n_out = n;
  return ctrspec_strv_dup((char *const *)v, n);
}

/* kubelet always sends both lists (empty for an Unmasked procMount); protobuf cannot
 * tell empty from unset, so both empty means the defaults, as containerd reads it. */
static int build_paths(const ctrspec_sc_t *sc, struct ctr_spec *s, err_t **e)
{
  if (!sc || (sc->n_masked_paths == 0 && sc->n_readonly_paths == 0)) {
    s->masked_paths = paths_copy(default_masked, sizeof(default_masked) / sizeof(char *),
                                 &s->n_masked);
    s->readonly_paths = paths_copy(default_readonly, sizeof(default_readonly) / sizeof(char *),
                                   &s->n_readonly);
    return 0;
  }
  for (size_t i = 0; i < sc->n_masked_paths + sc->n_readonly_paths; i++) {
    const char *p = i < sc->n_masked_paths ? sc->masked_paths[i]
                                           : sc->readonly_paths[i - sc->n_masked_paths];
    if (p[0] != '/')
      return err_set(e, ERR_INVALID, 0, "masked or read-only path \"%s\" is not absolute", p);
  }
  s->masked_paths = paths_copy((const char *const *)sc->masked_paths, sc->n_masked_paths,
                               &s->n_masked);
  s->readonly_paths = paths_copy((const char *const *)sc->readonly_paths, sc->n_readonly_paths,
                                 &s->n_readonly);
  return 0;
}

int ctrspec_security(const ctrspec_sc_t *sc, const Runtime__V1__PodSandboxConfig *pod_cfg,
                     struct ctr_spec *s, err_t **e)
{
  bool privileged = sc && sc->privileged;
  if (privileged && pod_cfg) {
    const Runtime__V1__LinuxPodSandboxConfig *pl = pod_cfg->linux;
    if (!pl || !pl->security_context || !pl->security_context->privileged)
      return err_set(e, ERR_INVALID, 0, "privileged container in a pod that is not privileged");
  }
  s->privileged = privileged;
  s->no_new_privs = !privileged && sc && sc->no_new_privs;
  s->readonly_rootfs = sc && sc->readonly_rootfs;
  if (build_caps(sc ? sc->capabilities : NULL, privileged, &s->caps, e) < 0)
    return -1;
  if (privileged) {
    s->seccomp = SECCOMP_UNCONFINED;
    s->masked_paths = ctrspec_strv_dup(NULL, 0);
    s->readonly_paths = ctrspec_strv_dup(NULL, 0);
    return 0;
  }
  if (build_seccomp(sc, s, e) < 0)
    return -1;
  return build_paths(sc, s, e);
}
