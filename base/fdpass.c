/* fdpass.c - one descriptor over a unix socket. See fdpass.h. */
#include "base/fdpass.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

union fd_cmsg {
  char buf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
};

int fd_send_data(int sock, int fd, const void *data, size_t len, err_t **e)
{
  struct iovec iov = {(void *)data, len};
  union fd_cmsg ctl;
  memset(&ctl, 0, sizeof(ctl));
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                     .msg_controllen = sizeof(ctl.buf)};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  ssize_t n;
  do
    n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return err_sys(e, errno, "send a descriptor");
  if ((size_t)n != len)
    return err_set(e, ERR_INTERNAL, 0, "a descriptor's message was cut short (%zd of %zu bytes)",
                   n, len);
  return 0;
}

int fd_send(int sock, int fd, err_t **e)
{
  return fd_send_data(sock, fd, "f", 1, e);
}

/* Closes every descriptor a message brought (a peer may send more than one). */
static void close_passed(struct msghdr *m)
{
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      close(fd);
    }
  }
}

int fd_recv(int sock, int timeout_ms, int *fd, err_t **e)
{
  struct pollfd p = {.fd = sock, .events = POLLIN};
  int r;
  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return err_sys(e, errno, "wait for a descriptor");
  if (r == 0)
    return err_set(e, ERR_INTERNAL, 0, "no descriptor arrived within %d ms", timeout_ms);
  char byte;
  struct iovec iov = {&byte, 1};
  union fd_cmsg ctl;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                     .msg_controllen = sizeof(ctl.buf)};
  ssize_t n;
  do
    n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return err_sys(e, errno, "receive a descriptor");
  if (n == 0)
    return err_set(e, ERR_INTERNAL, 0, "the peer closed without sending a descriptor");
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  if ((m.msg_flags & MSG_CTRUNC) || !cm || cm->cmsg_level != SOL_SOCKET ||
      cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int))) {
    close_passed(&m);
    return err_set(e, ERR_INTERNAL, 0, "a message without exactly one descriptor");
  }
  memcpy(fd, CMSG_DATA(cm), sizeof(int));
  return 0;
}
