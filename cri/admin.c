/* admin.c - the admin socket's server. See admin.h. */
#include "cri/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"

#define ADMIN_REQUEST_TIMEOUT_S 10
#define ADMIN_MAX_CONNS 16

struct admin {
  struct cri *d;
  char *path;
  int listen_fd;
  int wake[2];              /* a byte on wake[1] stops the accept loop */
  pthread_t thread;
  atomic_bool stopping;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int active;               /* connections being served */
  int conns[ADMIN_MAX_CONNS];   /* their sockets, -1 for a free slot */
};

struct conn {
  struct admin *a;
  int fd;
  int slot;
};

static void reply(int fd, const char *kind, const char *text)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_puts(&b, kind);
  if (text) {
    buf_putc(&b, ' ');
    for (const char *p = text; *p; p++)   /* one line, whatever the message holds */
      buf_putc(&b, *p == '\n' || *p == '\r' ? ' ' : *p);
  }
  buf_putc(&b, '\n');
  err_t *e = NULL;
  if (fd_write_all(fd, b.data, b.len, &e) < 0)
    err_free(&e);
}

/* The request line and the descriptor that came with it (-1 if none). */
static int read_request(int fd, char *line, size_t cap, int *passed, err_t **e)
{
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {line, cap - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                      .msg_controllen = sizeof(ctl.buf)};
  *passed = -1;
  ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0)
    return err_sys(e, errno, "read request");
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(passed, CMSG_DATA(c), sizeof(int));
  if (mh.msg_flags & MSG_CTRUNC)
    return err_set(e, ERR_INVALID, 0, "send exactly one descriptor");
  line[n] = '\0';
  char *nl = memchr(line, '\n', (size_t)n);
  if (!nl)
    return err_set(e, ERR_INVALID, 0, "the request must be one line sent at once");
  *nl = '\0';
  return 0;
}

/* The import stops when crispd stops or the client goes away. */
static bool import_cancelled(void *arg)
{
  struct conn *c = arg;
  if (atomic_load(&c->a->stopping))
    return true;
  struct pollfd p = {c->fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int do_import(struct conn *c, const char *name, int archive, err_t **e)
{
  if (archive < 0)
    return err_set(e, ERR_INVALID, 0, "import needs the archive's descriptor (SCM_RIGHTS)");
  struct import_request r = {.archive_fd = archive, .name = name && *name ? name : NULL,
                             .spool_parent = c->a->d->cfg.root,
                             .cancelled = import_cancelled, .arg = c};
  struct import_result *res = NULL;
  size_t n = 0;
  if (image_import(c->a->d->puller, &r, &res, &n, e) < 0)
    return err_wrap(e, "import");
  for (size_t i = 0; i < n; i++) {
    cleanup_buf struct buf b = BUF_INIT;
    buf_puts(&b, res[i].id);
    for (size_t k = 0; k < res[i].n_names; k++)
      buf_printf(&b, " %s", res[i].names[k]);
    const char *names = buf_str(&b) + strlen(res[i].id);
    log_info("image imported", "id", res[i].id, "names", *names ? names + 1 : "", NULL);
    reply(c->fd, "image", buf_str(&b));
  }
  import_results_free(res, n);
  return 0;
}

/* The request is read before the caller is judged: closing a connection with its
 * request unread would reset it, and the caller would never see why. */
static int serve_request(struct conn *c, err_t **e)
{
  char line[ADMIN_LINE_MAX];
  cleanup_close int archive = -1;
  struct timeval tv = {.tv_sec = ADMIN_REQUEST_TIMEOUT_S};   /* a silent client goes */
  if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
    return err_sys(e, errno, "admin connection");
  if (read_request(c->fd, line, sizeof(line), &archive, e) < 0)
    return -1;
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return err_sys(e, errno, "peer credentials");
  if (cred.uid != 0)
    return err_set(e, ERR_PERMISSION, 0, "the admin socket is for root only (uid %u)", cred.uid);
  if (strcmp(line, "import") == 0 || strncmp(line, "import ", 7) == 0)
    return do_import(c, line[6] ? line + 7 : NULL, archive, e);
  return err_set(e, ERR_INVALID, 0, "unknown request \"%.64s\"", line);
}

static void *conn_thread(void *arg)
{
  struct conn *c = arg;
  err_t *e = NULL;
  if (serve_request(c, &e) < 0) {
    log_warn("admin request failed", "error", e->msg, NULL);
    reply(c->fd, "error", e->msg);
    err_free(&e);
  } else {
    reply(c->fd, "ok", NULL);
  }
  struct admin *a = c->a;
  pthread_mutex_lock(&a->mu);
  a->conns[c->slot] = -1;   /* before the close: admin_stop must not shut a reused fd */
  a->active--;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  close(c->fd);
  free(c);
  return NULL;
}

static void start_conn(struct admin *a, int fd)
{
  int slot = -1;
  pthread_mutex_lock(&a->mu);
  for (int i = 0; i < ADMIN_MAX_CONNS && slot < 0; i++)
    if (a->conns[i] < 0)
      slot = i;
  if (slot >= 0) {
    a->conns[slot] = fd;
    a->active++;
  }
  pthread_mutex_unlock(&a->mu);
  if (slot < 0) {
    reply(fd, "error", "crispd is busy with other admin requests; try again");
    close(fd);
    return;
  }
  struct conn *c = xcalloc(1, sizeof(*c));
  c->a = a;
  c->fd = fd;
  c->slot = slot;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  if (pthread_create(&t, &at, conn_thread, c) != 0) {
    reply(fd, "error", "crispd cannot start a thread for this request");
    pthread_mutex_lock(&a->mu);
    a->conns[slot] = -1;
    a->active--;
    pthread_mutex_unlock(&a->mu);
    close(fd);
    free(c);
  }
  pthread_attr_destroy(&at);
}

static void *accept_loop(void *arg)
{
  struct admin *a = arg;
  for (;;) {
    struct pollfd p[2] = {{a->listen_fd, POLLIN, 0}, {a->wake[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      return NULL;
    if (p[1].revents || atomic_load(&a->stopping))
      return NULL;
    if (!(p[0].revents & POLLIN))
      continue;
    int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
      start_conn(a, fd);
  }
}

/* Bound, made root-only, then listening: nobody can connect before the chmod. */
static int admin_bind(struct admin *a, err_t **e)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(a->path) >= sizeof(sa.sun_path))
    return err_set(e, ERR_INVALID, 0, "admin socket path %s is too long", a->path);
  memcpy(sa.sun_path, a->path, strlen(a->path) + 1);
  if (rpc_socket_claim(a->path, e) < 0)
    return err_wrap(e, "admin socket");
  a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (a->listen_fd < 0)
    return err_sys(e, errno, "socket");
  if (bind(a->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    return err_sys(e, errno, "bind %s", a->path);
  if (chmod(a->path, 0600) < 0 || listen(a->listen_fd, 16) < 0)
    return err_sys(e, errno, "admin socket %s", a->path);
  return 0;
}

int admin_start(struct cri *d, struct admin **out, err_t **e)
{
  struct admin *a = xcalloc(1, sizeof(*a));
  a->d = d;
  a->path = path_join(d->cfg.state, ADMIN_SOCKET_NAME);
  a->listen_fd = -1;
  a->wake[0] = a->wake[1] = -1;
  for (int i = 0; i < ADMIN_MAX_CONNS; i++)
    a->conns[i] = -1;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  image_import_cleanup(d->cfg.root);
  if (admin_bind(a, e) < 0 || pipe2(a->wake, O_CLOEXEC) < 0 ||
      pthread_create(&a->thread, NULL, accept_loop, a) != 0) {
    if (!*e)
      err_sys(e, errno, "admin socket");
    if (a->listen_fd >= 0)
      unlink(a->path);
    a->stopping = true;
    admin_stop(a);
    return -1;
  }
  *out = a;
  return 0;
}

void admin_stop(struct admin *a)
{
  if (!a)
    return;
  bool running = !atomic_exchange(&a->stopping, true);
  if (running) {
    if (write(a->wake[1], "x", 1) < 0)
      log_warn("cannot wake the admin socket's thread", NULL);
    pthread_join(a->thread, NULL);
    unlink(a->path);
  }
  pthread_mutex_lock(&a->mu);
  /* a client still sending its request is cut short; imports see stopping (or this)
   * and end within their next poll */
  for (int i = 0; i < ADMIN_MAX_CONNS; i++)
    if (a->conns[i] >= 0)
      shutdown(a->conns[i], SHUT_RD);
  while (a->active > 0)
    pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  if (a->listen_fd >= 0)
    close(a->listen_fd);
  if (a->wake[0] >= 0)
    close(a->wake[0]), close(a->wake[1]);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  free(a->path);
  free(a);
}
