/* policy_int.h - the policy table shared by policy.c, prog.c and the tracer set-up.
 * Not a public header: sandbox.h is the API. */
#ifndef CRISP_SANDBOX_POLICY_INT_H
#define CRISP_SANDBOX_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/* When an entry's action applies to some argument values only; the other values are
 * allowed. Arguments are registers, so the filter can check them; no pointer is read. */
enum sbx_cond {
  SBX_COND_NONE = 0,
  SBX_COND_NS_FLAGS,  /* a0 has a CLONE_NEW* bit (clone, unshare) */
  SBX_COND_PERSONA,   /* a0 is neither PER_LINUX (0) nor the 0xffffffff query */
  SBX_COND_DEV_A1,    /* (a1 & S_IFMT) is S_IFCHR or S_IFBLK (mknod) */
  SBX_COND_DEV_A2,    /* (a2 & S_IFMT) is S_IFCHR or S_IFBLK (mknodat) */
};

struct sbx_rule {
  int nr;             /* native syscall number */
  uint8_t action;     /* enum sbx_action */
  uint8_t handler;    /* enum sbx_handler, SBX_TRACE only */
  uint8_t cond;       /* enum sbx_cond */
  uint16_t err;       /* SBX_ERRNO only */
};

struct sbx_policy {
  struct sbx_rule *rules;   /* sorted by nr, unique */
  size_t n, cap;
  int default_errno;        /* for syscalls not in the table (ENOSYS) */
  bool refuse_in_kernel;
};

/* The rule for nr, or NULL. */
const struct sbx_rule *policy_find(const struct sbx_policy *p, int nr);
/* Syscall name of a native number ("nr<N>" if unknown); the caller frees it. */
char *policy_syscall_name(int nr);
/* Sets (adds or replaces) the entry for name; 0, or -1 if no such native syscall. */
int policy_set(struct sbx_policy *p, const char *name, enum sbx_action a, int err,
               enum sbx_handler h);
/* A table with no entries (everything fails with default_errno, ENOSYS). */
struct sbx_policy *policy_empty(void);
const char *policy_cond_note(enum sbx_cond c);

#endif
