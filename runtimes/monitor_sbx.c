/* monitor_sbx.c - the sandbox executor inside crisp-monitor (monitor_sbx.h). */
#include "runtimes/monitor_sbx.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "runtimes/sandbox_info.h"
#include "sandbox/sandbox.h"

#define KMSG_OWN "kmsg"   /* a spec without the pod's log (tests): one in the state dir */

static int seize(void *arg, pid_t pid, err_t **e)
{
  struct mon_sbx *x = arg;
  return sbx_tracer_seize(x->tracer, pid, e);
}

static struct sbx_kernel kernel_of(const struct ctr_spec *s)
{
  return (struct sbx_kernel){
      .release = s->sandbox.kernel_release,
      .version = s->sandbox.kernel_version,
      .machine = s->sandbox.machine,
  };
}

/* The identity files the executor binds over /proc's (ns_rootfs.c). */
static int write_kernel_files(const struct ctr_spec *s, const char *dir, err_t **e)
{
  struct sbx_kernel k = kernel_of(s);
  cleanup_free char *version = NULL, *osrelease = NULL, *kversion = NULL;
  if (sbx_kernel_files(&k, &version, &osrelease, &kversion, e) < 0)
    return -1;
  if (mkdir(dir, 0755) < 0 && errno != EEXIST)
    return err_sys(e, errno, "mkdir %s", dir);
  const char *names[] = {SANDBOX_FILE_VERSION, SANDBOX_FILE_OSRELEASE, SANDBOX_FILE_KVERSION};
  const char *texts[] = {version, osrelease, kversion};
  for (size_t i = 0; i < 3; i++) {
    cleanup_free char *path = path_join(dir, names[i]);
    if (file_write_atomic(path, texts[i], strlen(texts[i]), 0444, e) < 0)
      return -1;
  }
  return 0;
}

int mon_sbx_prepare(struct ctr_spec *s, const char *state_dir, bool start, struct mon_sbx *x,
                    err_t **e)
{
  memset(x, 0, sizeof(*x));
  if (s->executor != EXECUTOR_SANDBOX)
    return 0;
  if (s->sandbox.policy_file ? sbx_policy_load(s->sandbox.policy_file, &x->policy, e) < 0
                             : sbx_policy_default(&x->policy, e) < 0)
    return err_wrap(e, "sandbox policy");
  /* crispd compiled it at start (sandbox_info.h); compiling here is the fallback */
  if (s->sandbox.prog_path ? sandbox_prog_read(s->sandbox.prog_path, &x->prog.insns, &x->prog.len, e) < 0
                           : sbx_prog_build(x->policy, &x->prog, e) < 0)
    return err_wrap(e, "sandbox filter");
  x->fprog = xmalloc(sizeof(*x->fprog));
  x->fprog->len = x->prog.len;
  x->fprog->filter = x->prog.insns;
  if (!s->sandbox.kmsg_path)
    s->sandbox.kmsg_path = path_join(state_dir, KMSG_OWN);
  /* refusal lines carry the container's short id, as crictl shows it */
  snprintf(x->tag, sizeof(x->tag), "%.12s", s->id ? s->id : "");
  struct sbx_tracer_opts o = {
      .kernel = kernel_of(s), .kmsg_path = s->sandbox.kmsg_path, .tag = x->tag,
  };
  if (sbx_tracer_new(&o, x->policy, &x->tracer, e) < 0)
    return err_wrap(e, "sandbox tracer");
  if (start) {
    free(s->sandbox.files_dir);
    s->sandbox.files_dir = path_join(state_dir, MON_SBX_FILES);
    if (write_kernel_files(s, s->sandbox.files_dir, e) < 0)
      return err_wrap(e, "sandbox kernel files");
  }
  x->trace = (struct ns_trace){.filter = x->fprog, .seize = seize, .arg = x};
  return 0;
}

const struct ns_trace *mon_sbx_trace(const struct mon_sbx *x)
{
  return x->tracer ? &x->trace : NULL;
}

/* The emulated uname takes its node and domain names from ours: we move into the UTS
 * namespace the process runs in (the pod's, or the host's), once it has exec'd there.
 * The monitor is single-threaded, so setns is allowed. */
int mon_sbx_follow_uts(const struct mon_sbx *x, pid_t pid, err_t **e)
{
  if (!x->tracer)
    return 0;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/ns/uts", (int)pid);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWUTS) < 0)
    return err_sys(e, errno, "join the sandbox's UTS namespace (%s)", path);
  return 0;
}

void mon_sbx_clear(struct mon_sbx *x)
{
  sbx_tracer_free(x->tracer);
  sbx_prog_free(&x->prog);
  sbx_policy_free(x->policy);
  free(x->fprog);
  memset(x, 0, sizeof(*x));
}
