/* ns_priv.c - the container process's identity: groups, gid, uid and the five
 * capability sets, set with the raw syscalls (no libcap). (child)
 *
 * Order matters: PR_CAPBSET_DROP needs CAP_SETPCAP, so the bounding set is cut first,
 * while still root with every capability; setuid away from 0 would clear the permitted
 * set, so PR_SET_KEEPCAPS holds it across; then capset() sets effective, permitted and
 * inheritable to exactly the spec's; the ambient set last (it must be a subset of
 * permitted and inheritable). */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int last_cap(void)
{
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  int n = -1;
  if (f) {
    if (fscanf(f, "%d", &n) != 1)
      n = -1;
    fclose(f);
  }
  return n > 0 && n < 64 ? n : CAP_LAST_CAP;
}

static int cap_get(struct __user_cap_data_struct d[2])
{
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capget, &h, d);
}

static uint64_t join32(uint32_t lo, uint32_t hi)
{
  return (uint64_t)lo | ((uint64_t)hi << 32);
}

struct caps priv_effective_caps(const struct ctr_spec *s)
{
  uint64_t known = (last_cap() >= 63) ? ~0ull : ((1ull << (last_cap() + 1)) - 1);
  struct caps c = s->caps;
  if (s->privileged)
    c.bounding = c.effective = c.permitted = c.inheritable = known;
  /* a capability this process lacks cannot be given (this VM, for one, runs without
   * CAP_SYS_RESOURCE): capset would fail, so ask only for what can be had */
  struct __user_cap_data_struct d[2] = {{0}};
  uint64_t have = known;
  if (cap_get(d) == 0)
    have &= join32(d[0].permitted, d[1].permitted);
  c.bounding &= have;
  c.effective &= have;
  c.permitted &= have;
  c.inheritable &= have;
  c.effective &= c.permitted;   /* capset refuses an effective cap outside permitted */
  c.ambient &= have & c.permitted & c.inheritable;
  return c;
}

static int drop_bounding(uint64_t keep, err_t **e)
{
  int last = last_cap();
  for (int cap = 0; cap <= last; cap++) {
    if (keep & (1ull << cap))
      continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return err_sys(e, errno, "drop capability %d from the bounding set", cap);
  }
  return 0;
}

static int set_user(const struct ctr_spec *s, err_t **e)
{
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return err_sys(e, errno, "PR_SET_KEEPCAPS");
  /* an empty list must still be set: the caller's groups would otherwise leak in */
  if (setgroups(s->n_groups, (const gid_t *)s->groups) < 0)
    return err_sys(e, errno, "setgroups (%zu groups)", s->n_groups);
  if (setresgid(s->gid, s->gid, s->gid) < 0)
    return err_sys(e, errno, "setgid %u", s->gid);
  if (setresuid(s->uid, s->uid, s->uid) < 0)
    return err_sys(e, errno, "setuid %u", s->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return err_sys(e, errno, "PR_SET_KEEPCAPS");
  return 0;
}

static int set_caps(const struct caps *c, err_t **e)
{
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  for (int i = 0; i < 2; i++) {
    d[i].effective = (uint32_t)(c->effective >> (32 * i));
    d[i].permitted = (uint32_t)(c->permitted >> (32 * i));
    d[i].inheritable = (uint32_t)(c->inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &h, d) < 0)
    return err_sys(e, errno, "capset (effective %#llx, permitted %#llx)",
                   (unsigned long long)c->effective, (unsigned long long)c->permitted);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return err_sys(e, errno, "clear the ambient set");
  for (int cap = 0; cap < 64; cap++)
    if ((c->ambient & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      return err_sys(e, errno, "raise ambient capability %d", cap);
  return 0;
}

int priv_apply(const struct ctr_spec *s, err_t **e)
{
  struct caps c = priv_effective_caps(s);
  if (drop_bounding(c.bounding, e) < 0 || set_user(s, e) < 0 || set_caps(&c, e) < 0)
    return err_wrap(e, "privileges");
  return 0;
}

int priv_no_new_privs(err_t **e)
{
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return err_sys(e, errno, "PR_SET_NO_NEW_PRIVS");
  return 0;
}
