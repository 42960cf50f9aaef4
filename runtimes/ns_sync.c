/* ns_sync.c - the child -> caller sync pipe.
 *
 * The pipe is O_CLOEXEC in every child, so the caller reading EOF means every child
 * either exited or exec'd; a child that fails writes its err_t first. One message is one
 * write(2) below PIPE_BUF, so it arrives whole even if two children share the pipe. */
#include "runtimes/ns_int.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"

struct wire {
  uint32_t kind;
  int32_t pid;
  int32_t code;
  int32_t sys_errno;
  uint32_t len;
};

#define MSG_MAX (PIPE_BUF - sizeof(struct wire))

static void send_raw(int fd, const struct wire *w, const char *msg)
{
  char frame[PIPE_BUF];
  memcpy(frame, w, sizeof(*w));
  if (w->len)
    memcpy(frame + sizeof(*w), msg, w->len);
  ssize_t n;
  do
    n = write(fd, frame, sizeof(*w) + w->len);
  while (n < 0 && errno == EINTR);
}

void sync_send_pid(int fd, pid_t pid)
{
  struct wire w = {SYNC_PID, pid, 0, 0, 0};
  send_raw(fd, &w, NULL);
}

void sync_send_err(int fd, const err_t *err)
{
  const char *msg = err && err->msg ? err->msg : "unknown failure";
  size_t len = strlen(msg);
  struct wire w = {SYNC_ERR, 0, err ? (int32_t)err->code : ERR_INTERNAL,
                   err ? err->sys_errno : 0, (uint32_t)(len < MSG_MAX ? len : MSG_MAX)};
  send_raw(fd, &w, msg);
}

void sync_fail(int fd, err_t *err)
{
  sync_send_err(fd, err);
  _exit(1);
}

static ssize_t read_full(int fd, void *p, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)p + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

int sync_recv(int fd, struct sync_msg *m, err_t **e)
{
  struct wire w;
  memset(m, 0, sizeof(*m));
  ssize_t n = read_full(fd, &w, sizeof(w));
  if (n < 0)
    return err_sys(e, errno, "read sync pipe");
  if (n == 0)
    return 0;
  if ((size_t)n < sizeof(w) || w.len > MSG_MAX || (w.kind != SYNC_PID && w.kind != SYNC_ERR))
    return err_set(e, ERR_INTERNAL, 0, "sync pipe: truncated or garbled message");
  char msg[PIPE_BUF];
  if (read_full(fd, msg, w.len) != (ssize_t)w.len)
    return err_set(e, ERR_INTERNAL, 0, "sync pipe: truncated message");
  msg[w.len] = '\0';
  m->kind = (enum sync_kind)w.kind;
  m->pid = w.pid;
  if (w.kind == SYNC_ERR) {
    enum err_code code = w.code >= ERR_INTERNAL && w.code <= ERR_UNIMPLEMENTED
                             ? (enum err_code)w.code : ERR_INTERNAL;
    err_set(&m->err, code, w.sys_errno, "%s", msg);
  }
  return 1;
}
