/* prog.c - compiling a policy to seccomp-BPF (libseccomp) and installing it.
 *
 * Built in the parent, where malloc is fine; the child only runs sbx_prog_install, which
 * is two syscalls. Actions: ALLOW -> ALLOW; ERRNO -> ERRNO(err); REFUSE -> TRACE (the
 * tracer counts, logs and answers EPERM) or ERRNO(EPERM) with refuseInKernel; TRACE ->
 * TRACE(handler). Unknown syscalls -> ERRNO(default, ENOSYS). Another architecture (a
 * 32-bit int 0x80 caller, x32) kills the process: its numbers mean other syscalls. */
#include "sandbox/policy_int.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
                  CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME)

static void ctx_release(scmp_filter_ctx *c)
{
  if (*c)
    seccomp_release(*c);
}

static uint32_t scmp_action(const struct sbx_policy *p, const struct sbx_rule *r)
{
  switch ((enum sbx_action)r->action) {
  case SBX_ALLOW: return SCMP_ACT_ALLOW;
  case SBX_ERRNO: return SCMP_ACT_ERRNO(r->err);
  case SBX_REFUSE: return p->refuse_in_kernel ? SCMP_ACT_ERRNO(EPERM) : SCMP_ACT_TRACE(0);
  case SBX_TRACE: return SCMP_ACT_TRACE(r->handler);
  }
  return SCMP_ACT_ERRNO(ENOSYS);
}

static int add(scmp_filter_ctx c, uint32_t act, int nr, unsigned n,
               const struct scmp_arg_cmp *cmp)
{
  int rc = seccomp_rule_add_exact_array(c, act, nr, n, cmp);
  return rc == -EEXIST ? 0 : rc;
}

/* An action for some argument values only: the harmless values are allowed. The filter
 * sees registers, not memory, so these checks cannot be raced. */
static int add_cond(scmp_filter_ctx c, int nr, uint32_t act, enum sbx_cond cond)
{
  int rc = 0;
  switch (cond) {
  case SBX_COND_NS_FLAGS: {
    struct scmp_arg_cmp none = SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0);
    rc = add(c, SCMP_ACT_ALLOW, nr, 1, &none);
    for (unsigned bit = 0; rc == 0 && bit < 32; bit++) {
      uint64_t f = 1ull << bit;
      if (!(NS_FLAGS & f))
        continue;
      struct scmp_arg_cmp has = SCMP_A0(SCMP_CMP_MASKED_EQ, f, f);
      rc = add(c, act, nr, 1, &has);
    }
    return rc;
  }
  case SBX_COND_PERSONA: {
    /* libseccomp tests the equalities before the inequality */
    struct scmp_arg_cmp linux_ = SCMP_A0(SCMP_CMP_EQ, 0), query = SCMP_A0(SCMP_CMP_EQ, 0xffffffff),
                        other = SCMP_A0(SCMP_CMP_NE, 0);
    if ((rc = add(c, SCMP_ACT_ALLOW, nr, 1, &linux_)) == 0 &&
        (rc = add(c, SCMP_ACT_ALLOW, nr, 1, &query)) == 0)
      rc = add(c, act, nr, 1, &other);
    return rc;
  }
  case SBX_COND_DEV_A1:
  case SBX_COND_DEV_A2: {
    static const unsigned types[] = {0, S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK};
    unsigned arg = cond == SBX_COND_DEV_A1 ? 1 : 2;
    for (size_t i = 0; rc == 0 && i < sizeof(types) / sizeof(types[0]); i++) {
      struct scmp_arg_cmp is = {arg, SCMP_CMP_MASKED_EQ, S_IFMT, types[i]};
      rc = add(c, types[i] == S_IFCHR || types[i] == S_IFBLK ? act : SCMP_ACT_ALLOW, nr, 1, &is);
    }
    return rc;
  }
  case SBX_COND_NONE:
    break;
  }
  return add(c, act, nr, 0, NULL);
}

static int export_bpf(scmp_filter_ctx c, struct sbx_prog *out, err_t **e)
{
  cleanup_close int fd = memfd_create("sbx-bpf", MFD_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "memfd_create");
  int rc = seccomp_export_bpf(c, fd);
  if (rc < 0)
    return err_sys(e, -rc, "export the filter");
  if (lseek(fd, 0, SEEK_SET) < 0)
    return err_sys(e, errno, "lseek");
  char *raw = NULL;
  size_t len = 0;
  if (fd_read_all(fd, BPF_MAXINSNS * sizeof(struct sock_filter), &raw, &len, e) < 0)
    return err_wrap(e, "read the filter back");
  if (len == 0 || len % sizeof(struct sock_filter)) {
    free(raw);
    return err_set(e, ERR_INTERNAL, 0, "filter of %zu bytes", len);
  }
  out->insns = (struct sock_filter *)raw;
  out->len = (unsigned short)(len / sizeof(struct sock_filter));
  return 0;
}

int sbx_prog_build(const struct sbx_policy *p, struct sbx_prog *out, err_t **e)
{
  memset(out, 0, sizeof(*out));
  __attribute__((cleanup(ctx_release))) scmp_filter_ctx c =
      seccomp_init(SCMP_ACT_ERRNO((uint32_t)p->default_errno));
  if (!c)
    return err_set(e, ERR_INTERNAL, 0, "seccomp_init failed");
  int rc = seccomp_attr_set(c, SCMP_FLTATR_CTL_NNP, 0);   /* the child sets it itself */
  if (rc == 0)
    rc = seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0)   /* a binary tree: fewer instructions per call and a faster install */
    rc = seccomp_attr_set(c, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  /* the tree is built by number, so an accidental "syscall -1" rule cannot appear */
  for (size_t i = 0; rc == 0 && i < p->n; i++) {
    const struct sbx_rule *r = &p->rules[i];
    uint32_t act = scmp_action(p, r);
    if (act == SCMP_ACT_ERRNO((uint32_t)p->default_errno) && r->cond == SBX_COND_NONE)
      continue;   /* same as the default: no rule needed */
    rc = r->action == SBX_ALLOW ? add(c, act, r->nr, 0, NULL)
                                : add_cond(c, r->nr, act, (enum sbx_cond)r->cond);
    if (rc < 0) {
      cleanup_free char *name = policy_syscall_name(r->nr);
      return err_set(e, ERR_INVALID, -rc, "sandbox filter: rule for %s: %s", name, strerror(-rc));
    }
  }
  if (rc < 0)
    return err_sys(e, -rc, "sandbox filter attributes");
  if (export_bpf(c, out, e) < 0)
    return err_wrap(e, "sandbox filter");
  return 0;
}

void sbx_prog_free(struct sbx_prog *prog)
{
  if (!prog)
    return;
  free(prog->insns);
  prog->insns = NULL;
  prog->len = 0;
}

int sbx_prog_install(const struct sbx_prog *prog)
{
  struct sock_fprog fp = {.len = prog->len, .filter = prog->insns};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -errno;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
    return -errno;
  return 0;
}
