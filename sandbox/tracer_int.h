/* tracer_int.h - the tracer's state, shared by tracer.c (ptrace mechanism) and
 * emulate.c (the handlers that answer traced syscalls). */
#ifndef CRISP_SANDBOX_TRACER_INT_H
#define CRISP_SANDBOX_TRACER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "sandbox/kmsg_int.h"
#include "sandbox/sandbox.h"

/* One syscall that stops: a refusal (handler NONE) or an emulation. */
struct trace_entry {
  int nr;
  uint8_t handler;          /* enum sbx_handler; SBX_H_NONE = refuse */
  char *name;
  unsigned long count;      /* refusals seen */
};

struct sbx_tracer {
  pid_t root;
  struct trace_entry *tr;   /* sorted by nr */
  size_t ntr;
  struct kmsg kmsg;
  char *tag;
  char release[65], version[65], machine[65];
  off_t syslog_clear;       /* SYSLOG_ACTION_CLEAR: where reads start (per tracer) */
  off_t syslog_read;        /* SYSLOG_ACTION_READ: bytes already consumed */
  pid_t *set;               /* tracees: open addressing, 0 empty, -1 deleted */
  size_t set_cap, set_used;
  int cpu;                  /* CPU the tracer is pinned to, -1 if none */
};

/* The value the traced syscall returns (a -errno for failure). */
long emulate_uname(struct sbx_tracer *t, pid_t pid, const struct user_regs_struct *r);
long emulate_syslog(struct sbx_tracer *t, pid_t pid, const struct user_regs_struct *r);

/* Copies len bytes to the tracee's address; 0 or -errno (EFAULT for a bad pointer). */
int tracee_write(pid_t pid, uint64_t addr, const void *data, size_t len);

#endif
