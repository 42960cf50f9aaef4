/* stream_server.h - the streaming server for Exec, Attach and PortForward.
 *
 * kubelet (and crictl) get a URL from the Exec/Attach/PortForward RPC and open it
 * with an HTTP upgrade, speaking either SPDY/3.1 (the default of every Go client)
 * or WebSocket (the channel.k8s.io family). This module owns the HTTP listener,
 * the single-use tokens behind those URLs and both wire protocols; a back end
 * (exec into a container, attach to it, forward a port) sees only a protocol-
 * independent session:
 *
 *   exec/attach   a struct stream_session: stdin to read, stdout/stderr to write,
 *                 terminal resizes, and one final status (exit code or error)
 *   port-forward  one struct stream_pipe per forwarded connection: a byte pipe to
 *                 read and write, for a port; many at once on one connection
 *
 * Threads: the server starts its accept thread on the first token (an idle crispd
 * pays for a listening socket only). Each connection has a reader thread; each
 * exec/attach session and each port-forward pipe runs its back-end callback on a
 * thread of its own, so callbacks may block. All functions are thread-safe.
 */
#ifndef CRISP_CRI_STREAM_SERVER_H
#define CRISP_CRI_STREAM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

enum stream_kind { STREAM_EXEC = 0, STREAM_ATTACH, STREAM_PORT_FORWARD };

/* What the client asked for in the RPC; copied into the token. */
struct stream_opts {
  bool in, out, err, tty;   /* exec/attach: stdin, stdout, stderr requested; a terminal */
  const int32_t *ports;     /* port-forward: the request's ports (WebSocket clients need */
  size_t n_ports;           /* them up front; SPDY clients name a port per stream) */
};

struct stream_session;
struct stream_pipe;

/* The back end. Each callback runs on a new thread; `req` is the pointer given to
 * stream_token_new, valid until the session (or the last pipe of the connection)
 * ends, then released with its free function. */
struct stream_handlers {
  void *ctx;
  /* exec and attach: must call stream_session_finish exactly once, from any thread,
   * before or after returning; the session lives until then. */
  void (*exec)(void *ctx, struct stream_session *s, void *req);
  void (*attach)(void *ctx, struct stream_session *s, void *req);
  /* one forwarded connection: copy both ways until done, then return. -1 sends
   * e->msg to the client on the pipe's error stream (kubelet words it "error
   * forwarding port P to pod ID, uid : cause"). The pipe is closed on return. */
  int (*port_forward)(void *ctx, struct stream_pipe *p, void *req, err_t **e);
};

struct stream_config {
  const char *address;          /* "host:port" (numeric host, [v6] or localhost); NULL = 127.0.0.1:0 */
  unsigned token_ttl_ms;        /* 0 = 60000 */
  unsigned max_tokens;          /* outstanding tokens; 0 = 1000 */
  unsigned creation_timeout_ms; /* SPDY: client creates its streams within; 0 = 30000 */
  unsigned idle_timeout_ms;     /* no frame either way for this long closes; 0 = 4 h */
  unsigned header_timeout_ms;   /* the HTTP request head must arrive within; 0 = 10000 */
  /* Monotonic milliseconds for token expiry (tests); NULL = CLOCK_MONOTONIC. */
  int64_t (*clock_ms)(void *arg);
  void *clock_arg;
};

struct stream_server;

/* Binds and listens (so a taken port fails here, at start-up); serves nothing until
 * the first token. ERR_INVALID for a bad address, the bind error otherwise. */
int stream_server_new(const struct stream_config *cfg, const struct stream_handlers *h,
                      struct stream_server **out, err_t **e);
/* "http://127.0.0.1:43817": the real port when the configured one was 0. */
const char *stream_server_url(const struct stream_server *s);
/* Stops accepting, closes every connection (back ends see their reads fail and
 * writes cancelled), waits for every callback to return and every session to be
 * finished, and frees. NULL is a no-op. */
void stream_server_free(struct stream_server *s);

/* Registers a request and returns its URL (caller frees), e.g.
 * "http://127.0.0.1:43817/exec/<token>". Takes ownership of req in every case
 * (req_free(req) on failure, may be NULL). ERR_INVALID for options kubelet also
 * refuses (tty with stderr, no stream at all, a port outside 1..65535);
 * ERR_RESOURCE when max_tokens are outstanding. Single use, expires after ttl. */
int stream_token_new(struct stream_server *s, enum stream_kind kind, const struct stream_opts *o,
                     void *req, void (*req_free)(void *), char **url, err_t **e);

/* --- exec / attach --------------------------------------------------------- */

enum stream_out { STREAM_STDOUT = 1, STREAM_STDERR = 2 };

const struct stream_opts *stream_session_opts(const struct stream_session *s);
enum stream_kind stream_session_kind(const struct stream_session *s);

/* Blocks for stdin. Returns bytes read, 0 at end of input (the client closed stdin,
 * or asked for none), -1 with ERR_CANCELLED when the client is gone. */
ssize_t stream_session_read_stdin(struct stream_session *s, void *buf, size_t cap, err_t **e);
/* Writes all of buf to stdout or stderr, blocking while the client's flow-control
 * window is shut. A stream the client did not ask for swallows the bytes. -1 with
 * ERR_CANCELLED when the client is gone or reset the stream. */
int stream_session_write(struct stream_session *s, enum stream_out which, const void *buf,
                         size_t len, err_t **e);
/* Ends stdout or stderr early (the client sees EOF); finish does it anyway. */
void stream_session_close_output(struct stream_session *s, enum stream_out which);

/* Terminal size changes, called on the connection's reader thread (keep it short).
 * A size that arrived before the callback was set is delivered at once. */
typedef void (*stream_resize_fn)(void *arg, uint16_t width, uint16_t height);
void stream_session_set_resize_cb(struct stream_session *s, stream_resize_fn fn, void *arg);
/* Called once, on some server thread, if the client goes away before finish (so an
 * asynchronous back end can stop the process). Not called after finish. */
/* Both callbacks: stream_session_finish waits for one in flight, and neither runs
 * once it returned, so the back end may then free what they use. Never call finish
 * from inside one of them. */
void stream_session_set_close_cb(struct stream_session *s, void (*fn)(void *arg), void *arg);

/* The end: error == NULL reports exit_code (0 success, else the v4 NonZeroExitCode
 * status with the code); error != NULL reports an internal error with that message.
 * Closes stdout and stderr, writes the status on the error stream and closes the
 * connection. The session must not be used afterwards. */
void stream_session_finish(struct stream_session *s, int exit_code, const char *error);

/* --- port-forward ---------------------------------------------------------- */

uint16_t stream_pipe_port(const struct stream_pipe *p);
/* Bytes from the client: >0, 0 when the client closed its side, -1 with
 * ERR_CANCELLED when it reset the stream or left. */
ssize_t stream_pipe_read(struct stream_pipe *p, void *buf, size_t cap, err_t **e);
/* All of buf to the client; -1 with ERR_CANCELLED when it is gone. */
int stream_pipe_write(struct stream_pipe *p, const void *buf, size_t len, err_t **e);
/* Half-close toward the client (it reads EOF); writes afterwards fail. */
void stream_pipe_close_write(struct stream_pipe *p);
/* Stops taking the client's bytes: a read blocked now or made later returns 0, what
 * is queued or still arrives is dropped (and credited to the client's window). For a
 * forward that ends once the pod's side is done, as kubelet's does, while another
 * thread still reads. */
void stream_pipe_close_read(struct stream_pipe *p);

#endif
