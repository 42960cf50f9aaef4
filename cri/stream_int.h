/* stream_int.h - internals shared by the stream_*.c files (not for back ends).
 *
 * One struct sconn per upgraded connection. Its reader thread parses frames (SPDY
 * or WebSocket, behind struct sproto_ops) and feeds channels; back-end threads
 * read channels and write through the protocol. Locking: conn->mu guards every
 * channel, session and pipe field and the protocol's flow-control state;
 * conn->wmu serialises socket writes. Never take mu while holding wmu, and never
 * write to the socket while holding mu.
 */
#ifndef CRISP_CRI_STREAM_INT_H
#define CRISP_CRI_STREAM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/buf.h"
#include "base/err.h"
#include "cri/stream_server.h"

/* Remote-command channels, numbered as kubelet's WebSocket channels. */
enum sch_role {
  SROLE_STDIN = 0, SROLE_STDOUT, SROLE_STDERR, SROLE_ERROR, SROLE_RESIZE,
  SROLE_PF_DATA, SROLE_PF_ERROR,
  SROLE_IGNORE,                       /* accepted, its data dropped */
};
#define SESSION_CHANNELS 5

/* Past this much unread input the reader thread waits for the back end (only a
 * client that ignores flow control gets there). */
#define SCHAN_IN_CAP (1024 * 1024)

struct sconn;
struct stream_pipe;

struct schan {
  struct sconn *conn;
  struct schan *next;
  enum sch_role role;
  uint32_t id;              /* SPDY stream id, or WebSocket channel number */
  bool readable;            /* the client's bytes reach a reader */
  bool writable;
  struct buf in;            /* client -> back end, from in_off */
  size_t in_off;
  bool in_eof;              /* the client closed its side */
  bool reset;               /* the stream was reset: reads and writes fail */
  bool out_closed;          /* we closed our side */
  bool replied;             /* SPDY: SYN_REPLY sent */
  int64_t send_window;      /* SPDY flow control toward the client */
  size_t unacked;           /* SPDY: consumed input not yet credited */
  struct stream_pipe *pipe; /* port-forward: the pipe this belongs to */
};

struct stream_session {
  struct sconn *conn;
  struct schan *ch[SESSION_CHANNELS];
  stream_resize_fn resize_fn;
  void *resize_arg;
  bool have_size;
  uint16_t width, height;
  void (*close_fn)(void *arg);
  void *close_arg;
  int cb_running;           /* resize or close callbacks in flight (finish waits) */
  bool started, finished;
  struct buf resize_acc;    /* partial resize JSON */
};

struct stream_pipe {
  struct sconn *conn;
  struct stream_pipe *next;
  struct schan *data, *err;
  uint16_t port;
  char *request_id;         /* SPDY pairing key */
  int64_t created_ms;
  bool started, done;
};

struct sproto_ops {
  /* Sends len bytes on ch (frames, flow control). Called without mu. */
  int (*write)(struct sconn *c, struct schan *ch, const void *p, size_t len, err_t **e);
  /* Half-closes ch toward the client. Called without mu, once per channel. */
  void (*close_write)(struct sconn *c, struct schan *ch);
  /* The back end consumed n input bytes of ch (flow-control credit). Without mu. */
  void (*consumed)(struct sconn *c, struct schan *ch, size_t n);
  /* The session is over: the protocol's goodbye (GOAWAY, Close frame). Without mu. */
  void (*goodbye)(struct sconn *c);
  /* The reader side: runs sconn_loop until the connection is done. */
  void (*serve)(struct sconn *c);
  void (*free)(void *proto);
};

struct stream_server;

struct sconn {
  struct stream_server *srv;
  const struct stream_handlers *h;
  struct sconn *srv_next;   /* the server's list of live connections */
  int fd;
  int wake_fd;              /* eventfd: wakes the reader (goodbye, reaping) */
  enum stream_kind kind;
  struct stream_opts opts;  /* ports owned */
  void *req;
  void (*req_free)(void *);
  int version;              /* remote command: 1..5 (v4+ reports JSON status) */
  const struct sproto_ops *ops;
  void *proto;
  struct buf pending;       /* bytes read past the HTTP head */
  bool tunnel;              /* SPDY inside WebSocket binary messages (stream_tunnel.c) */
  _Atomic bool tunnel_closed; /* its Close frame sent */

  pthread_mutex_t mu;
  pthread_cond_t cond;      /* any change: input, window, close */
  pthread_mutex_t wmu;
  bool dead;                /* socket gone or server stopping */
  bool finishing;           /* goodbye said: the reader lingers briefly */
  int refs;                 /* reader + session + running pipe threads */
  _Atomic int64_t last_io_ms;
  struct schan *chans;
  unsigned n_chans;
  struct stream_session sess;
  struct stream_pipe *pipes;
  unsigned pipes_running;
};

/* --- stream_server.c: threads, time, socket writes ---------------------------- */
int64_t sconn_now(const struct sconn *c);
unsigned sconn_idle_ms(const struct sconn *c);
unsigned sconn_creation_ms(const struct sconn *c);
/* Writes all iov (n <= 4) to the socket under wmu, MSG_NOSIGNAL, as one WebSocket
 * binary message when the connection is a tunnel; a failure kills the conn. */
int sconn_send(struct sconn *c, const struct iovec *iov, int n, err_t **e);
/* The same, never wrapped (the tunnel's own control frames). */
int sconn_send_unwrapped(struct sconn *c, const struct iovec *iov, int n, err_t **e);
/* Marks the connection dead, wakes every waiter, shuts the socket down. Takes mu. */
void sconn_kill(struct sconn *c);
/* The reader loop both protocols run: feeds input() what arrives (it reports how
 * much it used, -1 ends the connection), calls tick() for the protocol's timers
 * (*next_ms: ms to its next deadline, or -1; -1 ends), and ends on EOF, the idle
 * timeout, or a short linger after goodbye. */
void sconn_loop(struct sconn *c, int (*input)(struct sconn *c, uint8_t *p, size_t n, size_t *used),
                int (*tick)(struct sconn *c, int64_t now, int64_t *next_ms));
/* Runs fn(arg) on a new detached thread holding a conn reference (with mu). */
int sconn_spawn(struct sconn *c, void (*fn)(struct sconn *c, void *arg), void *arg);
void sconn_unref(struct sconn *c);   /* without mu */
void sconn_wake(struct sconn *c);

/* --- stream_session.c: channels, sessions, pipes ----------------------------- */
struct schan *schan_new(struct sconn *c, enum sch_role role, uint32_t id);  /* with mu */
struct schan *schan_find(struct sconn *c, uint32_t id);                     /* with mu */
/* Client bytes for ch (without mu): queued for its reader (waiting while the
 * queue is full), fed to the resize parser, or dropped. false when dropped, so
 * the protocol credits them at once. */
bool schan_deliver(struct schan *ch, const void *p, size_t len);
/* Our side of ch is done: marks it and calls ops->close_write once (without mu). */
void schan_close_output(struct schan *ch);
/* Input for ch is over (with mu): eof or reset. */
void schan_input_end(struct schan *ch, bool reset);
/* The back end's read on a channel (without mu). */
ssize_t schan_read(struct schan *ch, void *buf, size_t cap, err_t **e);
/* Starts the exec/attach back end (with mu; spawns). */
void session_start(struct sconn *c);
/* Starts a pipe's back end (with mu). */
void pipe_start(struct sconn *c, struct stream_pipe *p);
struct stream_pipe *pipe_new(struct sconn *c, uint16_t port, const char *request_id); /* with mu */
/* Fails a pipe that never started (with mu held; unlocks around writes). */
void pipe_fail_unstarted(struct sconn *c, struct stream_pipe *p, const char *msg);
/* The connection ended: wakes everyone, calls the close callback (without mu). */
void sconn_closed(struct sconn *c);
/* Drops channels and pipes that are over (with mu). */
void sconn_reap(struct sconn *c);
void sconn_free_state(struct sconn *c);

/* The Kubernetes status JSON (v4+) or text (v1-v3) finish writes; NULL for none. */
char *stream_status_message(enum stream_kind kind, int version, int exit_code, const char *error);

/* --- stream_ws.c: WebSocket framing (RFC 6455), also under the SPDY tunnel ---- */
enum ws_op { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };
enum ws_code { WS_NORMAL = 1000, WS_PROTOCOL = 1002, WS_UNSUPPORTED = 1003, WS_BAD_DATA = 1007,
               WS_TOO_BIG = 1009 };
/* A FIN frame header with opcode op for len bytes (server frames: no mask); its size. */
size_t stream_ws_header(uint8_t h[10], int op, size_t len);
/* The length fields of a WebSocket frame header at p[0..n): 0 while incomplete, else 1
 * with *len the payload length and *hl the header's size before the mask key. */
int stream_ws_head_len(const uint8_t *p, size_t n, uint64_t *len, size_t *hl);

/* --- stream_tunnel.c: SPDY inside WebSocket ("SPDY/3.1+<protocol>") -------- */
/* Moves the payload of every complete client frame in raw to out (answers pings,
 * Close). -1 once the tunnel is over (Close, protocol error: Close sent). */
int stream_tunnel_unwrap(struct sconn *c, struct buf *raw, struct buf *out);
/* Sends a Close frame with code. */
void stream_tunnel_close(struct sconn *c, uint16_t code);

/* --- protocols ------------------------------------------------------------- */
extern const struct sproto_ops stream_spdy_ops;
extern const struct sproto_ops stream_ws_ops;
/* Sets up the protocol state once the 101 went out (with the conn not yet shared). */
int stream_spdy_attach(struct sconn *c, err_t **e);
int stream_ws_attach(struct sconn *c, bool base64, bool v5, err_t **e);

#endif
