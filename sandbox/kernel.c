/* kernel.c - the kernel the sandbox pretends to be: uname fields and the /proc files
 * that must agree with them (bind-mounted by the caller, so openat never stops). */
#include "sandbox/kernel_int.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>

#include "base/xalloc.h"

void kernel_resolve(const struct sbx_kernel *in, struct sbx_kernel *out, char machine[65])
{
  struct utsname u;
  if (uname(&u) < 0)
    memset(&u, 0, sizeof(u));
  memcpy(machine, u.machine, 65);
  machine[64] = '\0';
  out->release = in && in->release && *in->release ? in->release : SBX_DEFAULT_RELEASE;
  out->version = in && in->version && *in->version ? in->version : SBX_DEFAULT_VERSION;
  out->machine = in && in->machine && *in->machine ? in->machine : machine;
}

int kernel_check(const struct sbx_kernel *k, err_t **e)
{
  const char *f[3] = {k->release, k->version, k->machine};
  static const char *const names[3] = {"release", "version", "machine"};
  for (int i = 0; i < 3; i++)
    if (f[i] && (strlen(f[i]) > 64 || strchr(f[i], '\n')))
      return err_set(e, ERR_INVALID, 0, "kernel %s \"%.70s\": at most 64 bytes, one line",
                     names[i], f[i]);
  return 0;
}

int sbx_kernel_files(const struct sbx_kernel *k, char **proc_version, char **osrelease,
                     char **version, err_t **e)
{
  struct sbx_kernel r;
  char machine[65];
  if (k && kernel_check(k, e) < 0)
    return -1;
  kernel_resolve(k, &r, machine);
  if (proc_version)
    *proc_version = xasprintf("Linux version %s (crisp@sandbox) %s\n", r.release, r.version);
  if (osrelease)
    *osrelease = xasprintf("%s\n", r.release);
  if (version)
    *version = xasprintf("%s\n", r.version);
  return 0;
}
