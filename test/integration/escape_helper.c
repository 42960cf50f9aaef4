/* escape_helper.c - tries, from inside a container, what a container must not do; the
 * security tests (test_security.py) build it static and bind-mount it in.
 *
 *   escape ids              "uid=<r> euid=<e> capeff=<hex> capprm=<hex>"
 *   escape capset           raises every permitted and effective capability:
 *                           "capset ok" or "capset <errno name>"
 *   escape setns <path>     open(path) + setns: "setns ok" or "open|setns <errno name>"
 *   escape connect <path>   connect to a unix socket: "connect ok" or "connect <errno>"
 * Exit status 0 when the attempt succeeded, 1 when it was refused, 2 on misuse. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int refused(const char *what)
{
  printf("%s %s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  return 1;
}

static int caps(struct __user_cap_data_struct d[2])
{
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capget, &h, d);
}

static int ids(void)
{
  struct __user_cap_data_struct d[2];
  if (caps(d) < 0)
    return refused("capget");
  printf("uid=%d euid=%d capeff=%08x%08x capprm=%08x%08x\n", (int)getuid(), (int)geteuid(),
         d[1].effective, d[0].effective, d[1].permitted, d[0].permitted);
  return 0;
}

static int raise_all(void)
{
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0xff, sizeof(d));
  if (syscall(SYS_capset, &h, d) < 0)
    return refused("capset");
  printf("capset ok\n");
  return 0;
}

static int join(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return refused("open");
  if (setns(fd, 0) < 0)
    return refused("setns");
  printf("setns ok\n");
  return 0;
}

static int dial(const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return 2;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return refused("socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    return refused("connect");
  printf("connect ok\n");
  return 0;
}

int main(int argc, char **argv)
{
  if (argc == 2 && !strcmp(argv[1], "ids"))
    return ids();
  if (argc == 2 && !strcmp(argv[1], "capset"))
    return raise_all();
  if (argc == 3 && !strcmp(argv[1], "setns"))
    return join(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "connect"))
    return dial(argv[2]);
  fprintf(stderr, "usage: escape ids | capset | setns PATH | connect PATH\n");
  return 2;
}
