/* netns_dial.c - sockets made in a pod's network namespace (netns_dial.h). */
#include "net/netns_dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"

#define MAKER_STACK (64 * 1024)

struct maker {
  int ns_fd;                /* -1: our own namespace */
  int fd[2];                /* IPv4, IPv6 sockets; -1 when they could not be made */
  int err[2];               /* their errno */
  int setns_err;
};

static void make_sockets(struct maker *m)
{
  static const int family[2] = {AF_INET, AF_INET6};
  for (int i = 0; i < 2; i++) {
    m->fd[i] = socket(family[i], SOCK_STREAM | SOCK_CLOEXEC, 0);
    m->err[i] = m->fd[i] < 0 ? errno : 0;
  }
}

/* The thread ends right after: its namespace dies with it, nothing else runs there. */
static void *maker_main(void *p)
{
  struct maker *m = p;
  if (setns(m->ns_fd, CLONE_NEWNET) < 0) {
    m->setns_err = errno;
    return NULL;
  }
  make_sockets(m);
  return NULL;
}

static int sockets_in(const char *netns_path, struct maker *m, err_t **e)
{
  if (!netns_path) {
    make_sockets(m);
    return 0;
  }
  cleanup_close int ns = open(netns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0)
    return err_sys(e, errno, "open network namespace %s", netns_path);
  m->ns_fd = ns;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, MAKER_STACK);
  pthread_t t;
  int rc = pthread_create(&t, &attr, maker_main, m);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return err_sys(e, rc, "start a thread for the network namespace");
  pthread_join(t, NULL);
  if (m->setns_err)
    return err_sys(e, m->setns_err, "join network namespace %s", netns_path);
  return 0;
}

static int connect_to(int fd, int family, uint16_t port)
{
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(port),
                            .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int rc;
  do
    rc = family == AF_INET ? connect(fd, (struct sockaddr *)&v4, sizeof(v4))
                           : connect(fd, (struct sockaddr *)&v6, sizeof(v6));
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? errno : 0;
}

int netns_dial_loopback(const char *netns_path, uint16_t port, int *fd, err_t **e)
{
  struct maker m = {.ns_fd = -1, .fd = {-1, -1}};
  if (sockets_in(netns_path, &m, e) < 0)
    return -1;
  cleanup_close int v4 = m.fd[0];
  cleanup_close int v6 = m.fd[1];
  if (v4 >= 0 && (m.err[0] = connect_to(v4, AF_INET, port)) == 0) {
    *fd = steal_fd(&v4);
    return 0;
  }
  if (v6 >= 0 && (m.err[1] = connect_to(v6, AF_INET6, port)) == 0) {
    *fd = steal_fd(&v6);
    return 0;
  }
  enum err_code code = m.err[0] == ECONNREFUSED || m.err[0] == ETIMEDOUT ? ERR_UNAVAILABLE
                                                                          : ERR_INTERNAL;
  return err_set(e, code, m.err[0], "connect to localhost:%u: IPv4: %s, IPv6: %s",
                 (unsigned)port, strerror(m.err[0]), strerror(m.err[1]));
}
