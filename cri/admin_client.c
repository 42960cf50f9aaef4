/* admin_client.c - `crispd images import`'s side of the admin socket. See admin.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/fdpass.h"
#include "cri/admin.h"

static int send_request(int sock, const char *line, int fd, err_t **e)
{
  if (fd_send_data(sock, fd, line, strlen(line), e) < 0)
    return err_wrap(e, "send the request to crispd");
  return 0;
}

static int connect_to(const char *path, int *out, err_t **e)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return err_set(e, ERR_INVALID, 0, "socket path %s is too long", path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return err_sys(e, errno, "socket");
  if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int err = errno;
    close(s);
    if (err == EACCES || err == EPERM)
      return err_set(e, ERR_PERMISSION, err, "%s: permission denied (the admin socket is root only)", path);
    if (err == ENOENT || err == ECONNREFUSED)
      return err_set(e, ERR_UNAVAILABLE, err, "crispd is not running (no admin socket at %s)", path);
    return err_sys(e, err, "connect to %s", path);
  }
  *out = s;
  return 0;
}

/* Relays crispd's "image" lines, until "ok" or "error". */
static int read_replies(int sock, FILE *out, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  size_t used = 0;
  for (;;) {
    char *nl;
    while (b.len > used && (nl = memchr(b.data + used, '\n', b.len - used))) {
      *nl = '\0';
      const char *line = b.data + used;
      used = (size_t)(nl - b.data) + 1;
      if (strcmp(line, "ok") == 0)
        return 0;
      if (strncmp(line, "error ", 6) == 0)
        return err_set(e, ERR_INTERNAL, 0, "%s", line + 6);
      if (strncmp(line, "image ", 6) == 0)
        fprintf(out, "imported %s\n", line + 6);
    }
    buf_reserve(&b, 4096);
    ssize_t n = read(sock, b.data + b.len, b.cap - b.len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return err_sys(e, errno, "read crispd's answer");
    if (n == 0)
      return err_set(e, ERR_UNAVAILABLE, 0, "crispd closed the connection without an answer");
    b.len += (size_t)n;
    b.data[b.len] = '\0';
  }
}

int admin_import(const char *socket_path, int fd, const char *name, FILE *out, err_t **e)
{
  if (name && (strchr(name, '\n') || strlen(name) > ADMIN_LINE_MAX - 16))
    return err_set(e, ERR_INVALID, 0, "the name is not a single short line");
  cleanup_close int sock = -1;
  if (connect_to(socket_path, &sock, e) < 0)
    return -1;
  cleanup_buf struct buf req = BUF_INIT;
  buf_puts(&req, "import");
  if (name)
    buf_printf(&req, " %s", name);
  buf_putc(&req, '\n');
  if (send_request(sock, buf_str(&req), fd, e) < 0)
    return -1;
  return read_replies(sock, out, e);
}
