/* streaming_pf.c - the port-forward back end: each forwarded connection (a stream pipe,
 * on a thread of its own) gets a TCP connection to localhost:PORT in the pod's network
 * namespace (net/netns_dial.h; the node's for a hostNetwork pod) and bytes are copied
 * both ways: the pipe's thread pod -> client, a second thread client -> pod. The
 * client's EOF is passed on as shutdown(SHUT_WR), so a request/response exchange works
 * with half-close; the pod's EOF (or failure) ends the whole forward, as in containerd. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "cri/streaming.h"
#include "net/netns_dial.h"

#define PF_CHUNK 32768
#define PF_STACK (128 * 1024)

struct pf_conn {
  struct stream_pipe *p;
  int fd;
  char *to_pod_err;   /* the pod's side failed a write (set by client_to_pod) */
};

/* client -> pod, on a thread of its own: the client's EOF becomes shutdown(SHUT_WR)
 * toward the pod, its leaving (or the end of the forward) ends everything. */
static void *client_to_pod(void *arg)
{
  struct pf_conn *c = arg;
  char buf[PF_CHUNK];
  err_t *e = NULL;
  for (;;) {
    ssize_t n = stream_pipe_read(c->p, buf, sizeof(buf), &e);
    if (n == 0) {
      shutdown(c->fd, SHUT_WR);
      return NULL;
    }
    if (n < 0 || fd_write_all(c->fd, buf, (size_t)n, &e) < 0) {
      if (n >= 0)     /* the pod's side failed, not the client: the client hears of it */
        c->to_pod_err = xstrdup(e->msg);
      err_free(&e);   /* reset, gone, or the pod's side failed: the other copy ends too */
      shutdown(c->fd, SHUT_RDWR);
      return NULL;
    }
  }
}

/* pod -> client on the pipe's thread, until the pod's side ends or fails; the errno
 * of a failed read from the pod, 0 otherwise. */
static int pod_to_client(struct pf_conn *c)
{
  char buf[PF_CHUNK];
  err_t *e = NULL;
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? errno : 0;
    if (stream_pipe_write(c->p, buf, (size_t)n, &e) < 0) {
      err_free(&e);
      return 0;
    }
  }
}

/* The pod must still be ready: a stopped pod has no network namespace left. */
static int pod_netns(struct cri *d, const struct stream_req *r, char **path, err_t **e)
{
  struct pod_rec *p = NULL;
  if (objects_pod_get(d->objects, r->id, &p, e) < 0)
    return -1;
  bool ready = p->ready;
  pod_rec_free(p);
  if (!ready)
    return err_set(e, ERR_PRECONDITION, 0, "pod sandbox is not ready");
  *path = r->host_net ? NULL : path_join(r->dir, "ns/net");
  return 0;
}

static int forward(struct cri *d, struct stream_pipe *p, const struct stream_req *r, err_t **e)
{
  cleanup_free char *netns = NULL;
  if (pod_netns(d, r, &netns, e) < 0)
    return -1;
  struct pf_conn c = {.p = p, .fd = -1};
  if (netns_dial_loopback(netns, stream_pipe_port(p), &c.fd, e) < 0)
    return -1;
  cleanup_close int fd = c.fd;
  int one = 1;   /* as on the client's side: a forwarded request/response must not wait */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, PF_STACK);
  pthread_t t;
  int rc = pthread_create(&t, &attr, client_to_pod, &c);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return err_sys(e, rc, "start a port-forward thread");
  int read_err = pod_to_client(&c);
  /* the pod's side is done: so is the forward (kubelet's and containerd's rule; a client
   * that waits for EOF would otherwise wait for ever) */
  stream_pipe_close_write(p);
  stream_pipe_close_read(p);
  shutdown(fd, SHUT_RDWR);
  pthread_join(t, NULL);
  cleanup_free char *werr = c.to_pod_err;
  if (werr)   /* a reset by the pod reaches the client, as kubelet's copy error does */
    return err_set(e, ERR_UNAVAILABLE, 0, "%s", werr);
  if (read_err && read_err != EPIPE)
    return err_sys(e, read_err, "read from the pod");
  return 0;
}

/* kubelet's wording, so a client shows the familiar message. */
int cri_stream_port_forward(void *ctx, struct stream_pipe *p, void *req, err_t **e)
{
  const struct stream_req *r = req;
  if (forward(ctx, p, r, e) < 0)
    return err_wrap(e, "error forwarding port %u to pod %s, uid ", (unsigned)stream_pipe_port(p),
                    r->id);
  return 0;
}
