/* emulate.c - the syscalls the tracer answers itself: uname and syslog.
 *
 * Both write into the tracee's memory with process_vm_writev, which honours the tracee's
 * page protections: a read-only or unmapped buffer fails with EFAULT, as in the kernel.
 * Neither reads tracee memory, so a tracee racing its own arguments changes nothing. */
#include "sandbox/tracer_int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#define SYSLOG_CHUNK 4096

int tracee_write(pid_t pid, uint64_t addr, const void *data, size_t len)
{
  struct iovec local = {(void *)data, len}, remote = {(void *)(uintptr_t)addr, len};
  ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
  if (n < 0)
    return errno == ESRCH ? -ESRCH : -EFAULT;
  return (size_t)n == len ? 0 : -EFAULT;
}

long emulate_uname(struct sbx_tracer *t, pid_t pid, const struct user_regs_struct *r)
{
  struct utsname host, u;
  /* nodename and domainname are the tracer's: it lives in the sandbox's UTS namespace,
   * so sethostname inside the sandbox shows here and never on the host */
  if (uname(&host) < 0)
    return -EFAULT;
  memset(&u, 0, sizeof(u));
  memcpy(u.sysname, "Linux", 6);
  memcpy(u.nodename, host.nodename, sizeof(u.nodename));
  memcpy(u.release, t->release, sizeof(u.release));
  memcpy(u.version, t->version, sizeof(u.version));
  memcpy(u.machine, t->machine, sizeof(u.machine));
  memcpy(u.domainname, host.domainname, sizeof(u.domainname));
  return tracee_write(pid, r->rdi, &u, sizeof(u));
}

static off_t log_size(struct sbx_tracer *t)
{
  struct stat st;
  if (t->kmsg.fd < 0 || fstat(t->kmsg.fd, &st) < 0)
    return 0;
  return st.st_size;
}

/* Copies the log's bytes [from, to) to the tracee at addr, starting at the first whole
 * line when skip_partial; returns the bytes copied or -errno. */
static long copy_log(struct sbx_tracer *t, pid_t pid, uint64_t addr, off_t from, off_t to,
                     bool skip_partial)
{
  char chunk[SYSLOG_CHUNK];
  long done = 0;
  while (from < to) {
    size_t want = (size_t)(to - from) < sizeof(chunk) ? (size_t)(to - from) : sizeof(chunk);
    ssize_t n = pread(t->kmsg.fd, chunk, want, from);
    if (n <= 0)
      break;
    size_t off = 0;
    if (skip_partial) {
      char *nl = memchr(chunk, '\n', (size_t)n);
      off = nl ? (size_t)(nl - chunk) + 1 : (size_t)n;
      skip_partial = nl == NULL;
    }
    if ((size_t)n > off) {
      int rc = tracee_write(pid, addr + (uint64_t)done, chunk + off, (size_t)n - off);
      if (rc < 0)
        return rc;
      done += (long)((size_t)n - off);
    }
    from += n;
  }
  return done;
}

enum {
  SYSLOG_CLOSE, SYSLOG_OPEN, SYSLOG_READ, SYSLOG_READ_ALL, SYSLOG_READ_CLEAR, SYSLOG_CLEAR,
  SYSLOG_CONSOLE_OFF, SYSLOG_CONSOLE_ON, SYSLOG_CONSOLE_LEVEL, SYSLOG_SIZE_UNREAD,
  SYSLOG_SIZE_BUFFER,
};

long emulate_syslog(struct sbx_tracer *t, pid_t pid, const struct user_regs_struct *r)
{
  int type = (int)r->rdi;
  uint64_t buf = r->rsi;
  long len = (long)(int)r->rdx;
  off_t size = log_size(t);
  off_t start = t->syslog_clear > size ? size : t->syslog_clear;
  switch (type) {
  case SYSLOG_CLOSE:
  case SYSLOG_OPEN:
    return 0;
  case SYSLOG_READ: {
    if (!buf || len < 0)
      return -EINVAL;
    off_t from = t->syslog_read > start ? t->syslog_read : start;
    off_t to = size - from > len ? from + len : size;
    /* the kernel would block on an empty log; a tracer must never block, so: 0 bytes */
    long n = copy_log(t, pid, buf, from, to, false);
    if (n > 0)
      t->syslog_read = from + n;
    return n;
  }
  case SYSLOG_READ_ALL:
  case SYSLOG_READ_CLEAR: {
    if (!buf || len < 0)
      return -EINVAL;
    off_t from = size - start > len ? size - len : start;
    long n = copy_log(t, pid, buf, from, size, from > start);
    if (n >= 0 && type == SYSLOG_READ_CLEAR)
      t->syslog_clear = size;
    return n;
  }
  case SYSLOG_CLEAR:
    t->syslog_clear = size;
    return 0;
  case SYSLOG_CONSOLE_OFF:
  case SYSLOG_CONSOLE_ON:
  case SYSLOG_CONSOLE_LEVEL:
    return -EPERM;   /* the console is the host's */
  case SYSLOG_SIZE_UNREAD: {
    off_t from = t->syslog_read > start ? t->syslog_read : start;
    return (long)(size - from);
  }
  case SYSLOG_SIZE_BUFFER:
    return KMSG_MAX_BYTES + 64 * 1024;
  default:
    return -EINVAL;
  }
}
