/* stream_client.h - minimal streaming clients for the stream server's tests: raw
 * HTTP, a SPDY/3 client (its own framing and zlib streams with the SPDY
 * dictionary) and a WebSocket client (masked frames), plus an echo back end.
 * Test-only code: aborts on setup errors. */
#ifndef CRISP_TEST_STREAM_CLIENT_H
#define CRISP_TEST_STREAM_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "base/buf.h"
#include "cri/stream_server.h"

/* --- HTTP ---------------------------------------------------------------------- */
int tc_connect(const char *url);
const char *tc_path(const char *url);   /* points into url */
/* Sends "METHOD path HTTP/1.1" with extra header lines (each "\r\n"-terminated)
 * and reads the response head into head; bytes after it go to rest. Returns the
 * status, -1 if the connection closed first. */
int tc_request(int fd, const char *method, const char *path, const char *headers, struct buf *head,
               struct buf *rest);
/* Whether the peer closed the connection within timeout_ms (reading and dropping). */
bool tc_closed_within(int fd, int timeout_ms);

/* --- SPDY ------------------------------------------------------------------------ */
struct wsc;
struct spdyc {
  int fd;
  struct wsc *tun;        /* SPDY tunnelled in WebSocket binary messages, or NULL */
  z_stream def, inf;
  struct buf in;
};

struct spdyc_frame {
  bool control;
  uint16_t type;
  uint32_t stream_id;     /* data frames, and control frames that carry one */
  uint8_t flags;
  struct buf payload;     /* data, or the control payload */
  char headers[512];      /* SYN_REPLY: "name=value;" pairs */
};

/* Upgrades to SPDY/3.1 offering protocols ("v4.channel.k8s.io, v3..."); NULL and
 * *status if the answer is not 101. *chosen (may be NULL) gets the negotiated one. */
struct spdyc *spdyc_open(const char *url, const char *protocols, int *status, char **chosen);
/* The same session inside a WebSocket asking for "SPDY/3.1+<protocol>" (client-go's
 * tunneling dialer): each write one binary message, reads unwrapped. */
struct spdyc *spdyc_open_tunnel(const char *url, const char *protocol, int *status, char **chosen);
void spdyc_close(struct spdyc *c);
/* SYN_STREAM with header pairs (name, value, ..., NULL). */
void spdyc_syn(struct spdyc *c, uint32_t id, const char *const *kv);
void spdyc_data(struct spdyc *c, uint32_t id, const void *p, size_t n, bool fin);
void spdyc_control(struct spdyc *c, uint16_t type, uint8_t flags, const void *p, size_t n);
void spdyc_raw(struct spdyc *c, const void *p, size_t n);
/* 1 frame, 0 EOF, -1 timeout. Header blocks are inflated (the zlib state stays in step). */
int spdyc_read(struct spdyc *c, struct spdyc_frame *f, int timeout_ms);
void spdyc_frame_free(struct spdyc_frame *f);

/* Reads until every stream in ids[] has seen FIN (or reset, or EOF), appending DATA
 * to outs[i]. Counts SYN_REPLYs, RSTs and GOAWAYs, and answers nothing. */
struct spdyc_stats {
  int replies, resets, goaways, window_updates, pings;
  uint32_t window_credit;   /* sum of WINDOW_UPDATE deltas */
  bool eof;
};
int spdyc_collect(struct spdyc *c, const uint32_t *ids, struct buf *outs, size_t n, int timeout_ms,
                  struct spdyc_stats *st);

/* --- WebSocket ------------------------------------------------------------------- */
struct wsc {
  int fd;
  struct buf in;
};
struct wsc *wsc_open(const char *url, const char *protocols, int *status, char **chosen);
void wsc_close(struct wsc *w);
void wsc_send(struct wsc *w, int op, bool fin, const void *p, size_t n);
/* Binary message: channel byte + data. */
void wsc_send_chan(struct wsc *w, uint8_t ch, const void *p, size_t n);
/* One frame: 1, 0 on EOF, -1 on timeout. */
int wsc_read(struct wsc *w, int *op, bool *fin, struct buf *payload, int timeout_ms);

/* --- echo back end --------------------------------------------------------------- */
struct echo_req {
  int exit_code;          /* what finish reports */
  const char *error;      /* or this internal error */
  bool stderr_note;       /* write "note\n" to stderr first */
  bool finish_early;      /* finish without reading stdin */
};
struct echo_state {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int sessions_done;      /* finish calls */
  int closed_cbs;         /* close callbacks */
  int stdin_errors;       /* reads that failed (client gone) */
  uint16_t sizes[16][2];
  int n_sizes;
  int pipes_done;
};
extern const struct stream_handlers echo_handlers;
extern struct echo_state echo;
void echo_reset(void);
/* Waits until echo.<field> reaches at least n (timeout ms); returns the value. */
int echo_wait(const int *field, int n, int timeout_ms);
struct echo_req *echo_req_new(int exit_code);

/* A server with the echo back end and test timeouts. */
struct stream_server *test_server(const struct stream_config *cfg);
char *test_token(struct stream_server *s, enum stream_kind kind, bool in, bool out, bool err, bool tty,
                 struct echo_req *r);

#endif
