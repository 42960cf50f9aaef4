/* stream_srv.h - the server object, shared by stream_server.c (listener, threads,
 * connections) and stream_upgrade.c (the HTTP request and protocol handshakes).
 * Internal to the stream_*.c files. */
#ifndef CRISP_CRI_STREAM_SRV_H
#define CRISP_CRI_STREAM_SRV_H

#include <pthread.h>
#include <stdbool.h>

#include "cri/stream_int.h"
#include "cri/stream_server.h"
#include "cri/stream_token.h"

struct stream_server {
  struct stream_config cfg;     /* defaults applied; address points at `address` */
  char *address;
  struct stream_handlers h;
  int listen_fd;
  int stop_fd;                  /* eventfd, readable once the server stops */
  char *url;
  struct stream_tokens *tokens;

  pthread_mutex_t mu;           /* conns, accepting, stopping, handshaking */
  struct sconn *conns;
  bool accepting, stopping;
  unsigned handshaking;

  pthread_mutex_t tmu;          /* a leaf lock: thread and connection counts */
  pthread_cond_t tcond;
  unsigned threads, live;
};

/* The token clock (injectable for tests). */
int64_t stream_srv_clock(const struct stream_server *s);
/* A detached thread counted by the server, so free can wait for it. */
int stream_srv_thread(struct stream_server *s, size_t stack, void (*fn)(void *), void *arg);
/* A connection for fd, owning the token's request (r is emptied). */
struct sconn *stream_srv_conn_new(struct stream_server *s, int fd, struct stream_token_req *r);
/* A freshly accepted socket: handshake and serve it on a thread of its own. */
void stream_srv_accepted(struct stream_server *s, int fd);
unsigned stream_srv_limit_conns(void);
unsigned stream_srv_limit_handshaking(void);

#endif
