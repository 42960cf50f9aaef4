/* rpc.h - crisp's view of a gRPC server: methods in, bytes and errors out.
 *
 * This header carries no gRPC type; rpc_grpc.c is the one file that knows the grpc
 * C core, so a gRPC upgrade touches one file. Handlers get the request's bytes and
 * fill a response buffer (protobuf decoding lives with the handlers). A handler
 * returns 0, or -1 with *e set; the err_code becomes the gRPC status here, once:
 * ERR_INVALID -> INVALID_ARGUMENT, ERR_NOT_FOUND -> NOT_FOUND, and so on.
 *
 * Handlers run on a worker pool, never on the thread that polls gRPC, so a slow call
 * never blocks another. The call's deadline and cancellation reach the handler
 * through struct rpc_ctx.
 */
#ifndef CRISP_CRI_RPC_H
#define CRISP_CRI_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define RPC_MAX_MESSAGE (16 * 1024 * 1024)  /* what kubelet allows */

struct rpc_ctx;     /* one call, valid while its handler runs */
struct rpc_stream;  /* the send side of a server-streaming call */

typedef int (*rpc_unary_fn)(void *svc, struct rpc_ctx *ctx, const uint8_t *req, size_t len,
                            struct buf *resp, err_t **e);
typedef int (*rpc_stream_fn)(void *svc, struct rpc_ctx *ctx, const uint8_t *req, size_t len,
                             struct rpc_stream *st, err_t **e);

struct rpc_method {
  const char *path;        /* "/runtime.v1.RuntimeService/Version" */
  rpc_unary_fn unary;      /* exactly one of unary / stream */
  rpc_stream_fn stream;
  void *svc;
  /* A quick handler runs on the thread that polls gRPC instead of the pool: it must
   * never block (no network, no fsync, no lock held across I/O). Reads of in-memory
   * state (Version, Status, List*) qualify and skip two thread hand-offs. */
  bool quick;
};

/* True once the client cancelled, the deadline passed or the server is stopping. */
bool rpc_ctx_done(const struct rpc_ctx *ctx);
/* True once the client cancelled or the server is stopping, but not for a passed
 * deadline (grpc cancels the call then too): callers that report a deadline as
 * DEADLINE_EXCEEDED check it themselves. */
bool rpc_ctx_cancelled(const struct rpc_ctx *ctx);
/* Milliseconds left before the deadline (INT64_MAX if none, 0 if passed). */
int64_t rpc_ctx_remaining_ms(const struct rpc_ctx *ctx);
const char *rpc_ctx_method(const struct rpc_ctx *ctx);
/* Sleeps up to ms, waking early when the call is done. Returns rpc_ctx_done(). */
bool rpc_ctx_sleep(struct rpc_ctx *ctx, int ms);

/* Sends one message on a streaming call; blocks until gRPC took it. Fails with
 * ERR_CANCELLED when the client is gone. */
int rpc_stream_send(struct rpc_stream *st, const void *msg, size_t len, err_t **e);

struct rpc_server_opts {
  const char *socket_path;
  unsigned min_workers, max_workers;
  unsigned pollers;        /* threads polling gRPC (and running quick handlers) */
};

struct rpc_server;

/* Makes sure socket_path is free to bind: ERR_EXISTS when a server answers on it or a
 * non-socket file is there; a stale socket (nobody listening) is removed. Called by
 * rpc_server_start; callable earlier to fail fast before taking other resources. */
int rpc_socket_claim(const char *socket_path, err_t **e);

/* Binds the unix socket (creating its directory; replacing a stale socket; refusing
 * with ERR_EXISTS when another server answers on it), mode 0660, and starts serving
 * the methods. Any other path answers UNIMPLEMENTED naming it. The method table
 * must outlive the server. */
int rpc_server_start(const struct rpc_server_opts *o, const struct rpc_method *m, size_t n,
                     struct rpc_server **out, err_t **e);
/* Stops accepting, lets in-flight calls finish for up to grace_ms, cancels the rest,
 * removes the socket and frees the server. */
void rpc_server_stop(struct rpc_server *s, int grace_ms);

#endif
