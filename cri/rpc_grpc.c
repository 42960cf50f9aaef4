/* rpc_grpc.c - the grpc C core behind rpc.h. The only file that includes grpc.
 *
 * One completion queue, one poller thread. Every registered method keeps a few
 * call requests outstanding; a new call is handed to the worker pool with its
 * request bytes already read (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER). Each call
 * also has a RECV_CLOSE_ON_SERVER op outstanding from the start, whose completion
 * tells the handler that the client cancelled. Unregistered paths are taken by a
 * generic request and answered UNIMPLEMENTED on the poller thread.
 */
#include "cri/rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/pool.h"

#define SLOTS_PER_METHOD 2
#define MAX_STREAMS 32

struct tag {
  void (*done)(struct tag *t, bool ok);
};

#define container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

struct rpc_server;

/* An outstanding request for the next call of one method (m == NULL: any other path). */
struct slot {
  struct tag tag;
  struct rpc_server *srv;
  const struct rpc_method *m;
  void *handle;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_call_details details;
};

struct rpc_ctx {
  struct tag close_tag;    /* RECV_CLOSE_ON_SERVER done: the call ended or was cancelled */
  struct tag final_tag;    /* status sent */
  struct tag msg_tag;      /* one streamed message sent */
  struct rpc_server *srv;
  const struct rpc_method *m;
  char *path;
  grpc_call *call;
  int64_t deadline_ms;     /* CLOCK_MONOTONIC ms, INT64_MAX = none */
  grpc_byte_buffer *payload;
  grpc_byte_buffer *out;   /* response being sent */
  grpc_slice details;      /* status message being sent */
  int close_cancelled;
  atomic_bool cancelled;
  atomic_int refs;
  bool md_sent;
  pthread_mutex_t mu;      /* streaming sends */
  pthread_cond_t cv;
  bool msg_done, msg_ok;
};

struct rpc_stream {
  struct rpc_ctx *c;
};

#define MAX_POLLERS 8

struct rpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  pthread_t pollers[MAX_POLLERS];
  unsigned n_pollers;
  struct pool *pool;
  char *socket_path;
  struct slot *slots;
  size_t nslots;
  atomic_bool stopping;     /* no new calls; streams end */
  atomic_bool hard_stop;    /* grace period over: every call ends */
  atomic_int streams;
  struct tag shutdown_tag;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool shutdown_done;
};

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- errors to status: the one place ------------------------------------------ */

static grpc_status_code status_of(enum err_code c)
{
  switch (c) {
  case ERR_INVALID: return GRPC_STATUS_INVALID_ARGUMENT;
  case ERR_NOT_FOUND: return GRPC_STATUS_NOT_FOUND;
  case ERR_EXISTS: return GRPC_STATUS_ALREADY_EXISTS;
  case ERR_UNAVAILABLE: return GRPC_STATUS_UNAVAILABLE;
  case ERR_DEADLINE: return GRPC_STATUS_DEADLINE_EXCEEDED;
  case ERR_CANCELLED: return GRPC_STATUS_CANCELLED;
  case ERR_PRECONDITION: return GRPC_STATUS_FAILED_PRECONDITION;
  case ERR_RESOURCE: return GRPC_STATUS_RESOURCE_EXHAUSTED;
  case ERR_PERMISSION: return GRPC_STATUS_PERMISSION_DENIED;
  case ERR_UNIMPLEMENTED: return GRPC_STATUS_UNIMPLEMENTED;
  case ERR_INTERNAL: break;
  }
  return GRPC_STATUS_INTERNAL;
}

/* ---- call lifetime -------------------------------------------------------------- */

static void call_unref(struct rpc_ctx *c)
{
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  if (c->payload)
    grpc_byte_buffer_destroy(c->payload);
  if (c->out)
    grpc_byte_buffer_destroy(c->out);
  grpc_slice_unref(c->details);
  grpc_call_unref(c->call);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c->path);
  free(c);
}

static void on_close(struct tag *t, bool ok)
{
  struct rpc_ctx *c = container_of(t, struct rpc_ctx, close_tag);
  (void)ok;
  if (c->close_cancelled) {
    atomic_store(&c->cancelled, true);
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  call_unref(c);
}

static void on_final(struct tag *t, bool ok)
{
  (void)ok;
  call_unref(container_of(t, struct rpc_ctx, final_tag));
}

static void on_msg(struct tag *t, bool ok)
{
  struct rpc_ctx *c = container_of(t, struct rpc_ctx, msg_tag);
  pthread_mutex_lock(&c->mu);
  c->msg_done = true;
  c->msg_ok = ok;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static struct rpc_ctx *call_new(struct rpc_server *s, const struct rpc_method *m, grpc_call *gc,
                                gpr_timespec deadline, int refs)
{
  struct rpc_ctx *c = xcalloc(1, sizeof(*c));
  c->close_tag.done = on_close;
  c->final_tag.done = on_final;
  c->msg_tag.done = on_msg;
  c->srv = s;
  c->m = m;
  c->call = gc;
  c->details = grpc_empty_slice();
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  atomic_init(&c->refs, refs);  /* one per outstanding batch */
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) {
    c->deadline_ms = INT64_MAX;
  } else {
    gpr_timespec left = gpr_time_sub(deadline, gpr_now(deadline.clock_type));
    int64_t ms = gpr_time_to_millis(left);
    c->deadline_ms = now_ms() + (ms > 0 ? ms : 0);
  }
  return c;
}

#define STEAL_MIN 4096

/* Sends the final status (with the response on success, whose bytes it may take). Takes
 * the final ref.
 * with_close: the call has no close op yet (quick calls), so add it to this batch. */
static void call_finish(struct rpc_ctx *c, struct buf *resp, err_t *e, bool with_close)
{
  grpc_op ops[4];
  size_t n = 0;
  memset(ops, 0, sizeof(ops));
  if (with_close) {
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->close_cancelled;
    n++;
  }
  if (!c->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    c->md_sent = true;
  }
  grpc_status_code code = GRPC_STATUS_OK;
  if (e) {
    code = status_of(e->code);
    c->details = grpc_slice_from_copied_string(e->msg);
  } else if (resp) {
    /* a big reply (ListContainers of 400 containers: ~160 KiB) is handed over, not copied */
    size_t len = resp->len;
    grpc_slice sl = len >= STEAL_MIN ? grpc_slice_new(buf_steal(resp), len, free)
                                     : grpc_slice_from_copied_buffer(resp->data ? resp->data : "", len);
    c->out = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->out;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n].data.send_status_from_server.status_details = e ? &c->details : NULL;
  n++;
  if (grpc_call_start_batch(c->call, ops, n, &c->final_tag, NULL) != GRPC_CALL_OK)
    call_unref(c);
}

/* ---- handlers on the pool ------------------------------------------------------- */

static void log_failure(const struct rpc_ctx *c, const err_t *e)
{
  enum log_level lvl = (e->code == ERR_INTERNAL) ? LOG_ERROR : LOG_DEBUG;
  log_event(lvl, "call failed", "method", c->path, "code", err_code_name(e->code), "error",
            e->msg, NULL);
}

static void run_call_on(struct rpc_ctx *c, bool quick)
{
  cleanup_buf struct buf resp = BUF_INIT;
  err_t *e = NULL;
  grpc_slice req = grpc_empty_slice();
  if (!c->payload) {
    err_set(&e, ERR_INVALID, 0, "%s: the request carries no message", c->path);
  } else {
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, c->payload)) {
      err_set(&e, ERR_INVALID, 0, "%s: cannot read the request (bad compression?)", c->path);
    } else {
      req = grpc_byte_buffer_reader_readall(&r);
      grpc_byte_buffer_reader_destroy(&r);
    }
  }
  if (!e) {
    const uint8_t *p = GRPC_SLICE_START_PTR(req);
    size_t len = GRPC_SLICE_LENGTH(req);
    if (c->m->unary) {
      c->m->unary(c->m->svc, c, p, len, &resp, &e);
    } else if (atomic_fetch_add(&c->srv->streams, 1) >= MAX_STREAMS) {
      err_set(&e, ERR_RESOURCE, 0, "%s: more than %d streams are open", c->path, MAX_STREAMS);
      atomic_fetch_sub(&c->srv->streams, 1);
    } else {
      struct rpc_stream st = {c};
      c->m->stream(c->m->svc, c, p, len, &st, &e);
      atomic_fetch_sub(&c->srv->streams, 1);
    }
  }
  grpc_slice_unref(req);
  if (e)
    log_failure(c, e);
  call_finish(c, e ? NULL : &resp, e, quick);
  err_free(&e);
}

static void run_call(void *arg) { run_call_on(arg, false); }

bool rpc_ctx_done(const struct rpc_ctx *c)
{
  if (atomic_load(&c->cancelled) || atomic_load(&c->srv->hard_stop))
    return true;
  /* a stream never ends by itself, so it ends when the server stops accepting */
  if (c->m && c->m->stream && atomic_load(&c->srv->stopping))
    return true;
  return now_ms() >= c->deadline_ms;
}

bool rpc_ctx_cancelled(const struct rpc_ctx *c)
{
  if (now_ms() >= c->deadline_ms)
    return false;
  if (atomic_load(&c->cancelled) || atomic_load(&c->srv->hard_stop))
    return true;
  return c->m && c->m->stream && atomic_load(&c->srv->stopping);
}

int64_t rpc_ctx_remaining_ms(const struct rpc_ctx *c)
{
  if (c->deadline_ms == INT64_MAX)
    return INT64_MAX;
  int64_t left = c->deadline_ms - now_ms();
  return left > 0 ? left : 0;
}

const char *rpc_ctx_method(const struct rpc_ctx *c) { return c->path; }

bool rpc_ctx_sleep(struct rpc_ctx *c, int ms)
{
  int64_t until = now_ms() + ms;
  while (!rpc_ctx_done(c)) {
    int64_t left = until - now_ms();
    if (left <= 0)
      break;
    struct timespec ts = {0, (left > 50 ? 50 : left) * 1000000L};
    nanosleep(&ts, NULL);
  }
  return rpc_ctx_done(c);
}

int rpc_stream_send(struct rpc_stream *st, const void *msg, size_t len, err_t **e)
{
  struct rpc_ctx *c = st->c;
  if (rpc_ctx_done(c))
    return err_set(e, ERR_CANCELLED, 0, "the client closed the stream");
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof(ops));
  if (!c->md_sent) {
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->md_sent = true;
  }
  grpc_slice sl = grpc_slice_from_copied_buffer(msg, len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = bb;
  pthread_mutex_lock(&c->mu);
  c->msg_done = false;
  if (grpc_call_start_batch(c->call, ops, n, &c->msg_tag, NULL) != GRPC_CALL_OK) {
    pthread_mutex_unlock(&c->mu);
    grpc_byte_buffer_destroy(bb);
    return err_set(e, ERR_INTERNAL, 0, "cannot send a stream message");
  }
  while (!c->msg_done)
    pthread_cond_wait(&c->cv, &c->mu);
  bool ok = c->msg_ok;
  pthread_mutex_unlock(&c->mu);
  grpc_byte_buffer_destroy(bb);
  if (!ok)
    return err_set(e, ERR_CANCELLED, 0, "the client closed the stream");
  return 0;
}

/* ---- new calls (poller thread) -------------------------------------------------- */

static void slot_request(struct slot *sl);

static void start_close_op(struct rpc_ctx *c)
{
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK)
    call_unref(c);
}

static char *slice_str(grpc_slice s)
{
  return xstrndup((const char *)GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
}

static void on_new_call(struct tag *t, bool ok)
{
  struct slot *sl = container_of(t, struct slot, tag);
  struct rpc_server *s = sl->srv;
  if (!ok) {  /* the server is shutting down */
    grpc_metadata_array_destroy(&sl->md);
    if (!sl->m)
      grpc_call_details_destroy(&sl->details);
    return;
  }
  gpr_timespec deadline = sl->m ? sl->deadline : sl->details.deadline;
  /* quick and unknown methods are answered at once: one batch, which also holds the
   * close op; the others get a close op now so cancellation reaches their handler */
  bool quick = !sl->m || sl->m->quick;
  struct rpc_ctx *c = call_new(s, sl->m, sl->call, deadline, quick ? 1 : 2);
  if (sl->m) {
    c->path = xstrdup(sl->m->path);
    c->payload = sl->payload;
  } else {
    c->path = slice_str(sl->details.method);
    grpc_call_details_destroy(&sl->details);
  }
  grpc_metadata_array_destroy(&sl->md);
  const struct rpc_method *m = sl->m;
  /* ask for the next call first, so another poller can take it while this one works */
  if (!atomic_load(&s->stopping))
    slot_request(sl);
  if (!m) {
    err_t *e = NULL;
    err_set(&e, ERR_UNIMPLEMENTED, 0, "method %s is not part of the CRI v1 API that crisp serves",
            c->path);
    call_finish(c, NULL, e, true);
    err_free(&e);
  } else if (quick) {
    run_call_on(c, true);
  } else {
    start_close_op(c);
    pool_submit(s->pool, run_call, c);
  }
}

static void slot_request(struct slot *sl)
{
  struct rpc_server *s = sl->srv;
  grpc_call_error rc;
  sl->call = NULL;
  sl->payload = NULL;
  grpc_metadata_array_init(&sl->md);
  if (sl->m) {
    rc = grpc_server_request_registered_call(s->server, sl->handle, &sl->call, &sl->deadline,
                                             &sl->md, &sl->payload, s->cq, s->cq, &sl->tag);
  } else {
    grpc_call_details_init(&sl->details);
    rc = grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->md, s->cq, s->cq,
                                  &sl->tag);
  }
  if (rc != GRPC_CALL_OK)
    log_error("cannot request calls", "method", sl->m ? sl->m->path : "*", NULL);
}

static void *poll_loop(void *arg)
{
  struct rpc_server *s = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_OP_COMPLETE)
      ((struct tag *)ev.tag)->done(ev.tag, ev.success != 0);
  }
  return NULL;
}

static void on_shutdown(struct tag *t, bool ok)
{
  struct rpc_server *s = container_of(t, struct rpc_server, shutdown_tag);
  (void)ok;
  pthread_mutex_lock(&s->mu);
  s->shutdown_done = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* ---- socket --------------------------------------------------------------------- */

/* A live server on the path is an error; a dead one's socket file is removed. */
int rpc_socket_claim(const char *path, err_t **e)
{
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : err_sys(e, errno, "stat %s", path);
  if (!S_ISSOCK(st.st_mode))
    return err_set(e, ERR_EXISTS, 0, "%s exists and is not a socket; remove it or pick another --listen path", path);
  cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return err_sys(e, errno, "socket");
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (len >= sizeof(sa.sun_path))
    return err_set(e, ERR_INVALID, 0, "socket path %s is too long", path);
  memcpy(sa.sun_path, path, len + 1);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
    return err_set(e, ERR_EXISTS, 0, "another server is already listening on %s; stop it first or pick another --listen path", path);
  if (errno != ECONNREFUSED)
    return err_sys(e, errno, "probe %s", path);
  log_info("removing stale socket", "path", path, NULL);
  if (unlink(path) < 0 && errno != ENOENT)
    return err_sys(e, errno, "remove stale socket %s", path);
  return 0;
}

/* ---- server --------------------------------------------------------------------- */

static void server_free(struct rpc_server *s)
{
  free(s->slots);
  free(s->socket_path);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

int rpc_server_start(const struct rpc_server_opts *o, const struct rpc_method *m, size_t n,
                     struct rpc_server **out, err_t **e)
{
  cleanup_free char *dir = xstrdup(o->socket_path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (mkdir_p(dir, 0711, e) < 0)
      return err_wrap(e, "socket directory");
  }
  if (rpc_socket_claim(o->socket_path, e) < 0)
    return -1;

  grpc_init();
  struct rpc_server *s = xcalloc(1, sizeof(*s));
  s->socket_path = xstrdup(o->socket_path);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->shutdown_tag.done = on_shutdown;

  grpc_arg args[2];
  memset(args, 0, sizeof(args));
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = RPC_MAX_MESSAGE;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = RPC_MAX_MESSAGE;
  grpc_channel_args cargs = {2, args};
  s->server = grpc_server_create(&cargs, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);

  s->nslots = n * SLOTS_PER_METHOD + 1;
  s->slots = xcalloc(s->nslots, sizeof(*s->slots));
  for (size_t i = 0; i < n; i++) {
    void *h = grpc_server_register_method(s->server, m[i].path, NULL,
                                          GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    for (size_t k = 0; k < SLOTS_PER_METHOD; k++) {
      struct slot *sl = &s->slots[i * SLOTS_PER_METHOD + k];
      sl->m = &m[i];
      sl->handle = h;
    }
  }
  cleanup_free char *addr = xasprintf("unix:%s", o->socket_path);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, addr, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    grpc_server_destroy(s->server);
    grpc_completion_queue_shutdown(s->cq);
    grpc_completion_queue_destroy(s->cq);
    server_free(s);
    grpc_shutdown();
    return err_set(e, ERR_UNAVAILABLE, 0, "cannot listen on %s", o->socket_path);
  }
  grpc_server_start(s->server);
  if (chmod(o->socket_path, 0660) < 0)
    log_warn("cannot set socket mode", "path", o->socket_path, "error", strerror(errno), NULL);
  s->pool = pool_new(o->min_workers, o->max_workers);
  for (size_t i = 0; i < s->nslots; i++) {
    s->slots[i].tag.done = on_new_call;
    s->slots[i].srv = s;
    slot_request(&s->slots[i]);
  }
  s->n_pollers = o->pollers < 1 ? 1 : o->pollers > MAX_POLLERS ? MAX_POLLERS : o->pollers;
  for (unsigned i = 0; i < s->n_pollers; i++)
    if (pthread_create(&s->pollers[i], NULL, poll_loop, s) != 0)
      abort();
  *out = s;
  return 0;
}

static bool wait_shutdown(struct rpc_server *s, int ms)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (!s->shutdown_done)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
      break;
  bool done = s->shutdown_done;
  pthread_mutex_unlock(&s->mu);
  return done;
}

void rpc_server_stop(struct rpc_server *s, int grace_ms)
{
  if (!s)
    return;
  /* new calls are refused now; in-flight unary calls get grace_ms to finish, while
   * streams (which never finish by themselves) see rpc_ctx_done at once */
  atomic_store(&s->stopping, true);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  bool clean = wait_shutdown(s, grace_ms);
  if (!clean) {
    log_warn("cancelling calls still running after the grace period", NULL);
    atomic_store(&s->hard_stop, true);
    grpc_server_cancel_all_calls(s->server);
    clean = wait_shutdown(s, 5000);
  }
  pool_free(s->pool);
  if (clean)
    grpc_server_destroy(s->server);
  grpc_completion_queue_shutdown(s->cq);
  for (unsigned i = 0; i < s->n_pollers; i++)
    pthread_join(s->pollers[i], NULL);
  if (clean)
    grpc_completion_queue_destroy(s->cq);
  unlink(s->socket_path);
  server_free(s);
  if (clean)
    grpc_shutdown();
}
