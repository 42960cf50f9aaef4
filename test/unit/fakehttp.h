/* fakehttp.h - a tiny HTTP/1.1 server on 127.0.0.1 for unit tests of HTTP clients.
 *
 * One thread serves one connection at a time and closes each connection after
 * one response. The handler fills a response or asks for a misbehaviour (drop the
 * connection, cut the body short, stall). Test-only code: aborts on setup errors.
 */
#ifndef CRISP_TEST_FAKEHTTP_H
#define CRISP_TEST_FAKEHTTP_H

#include <stddef.h>

#include "base/buf.h"

struct fake_req {
  char method[16];
  char path[1024];
  char *headers;        /* raw header lines, "\r\n"-separated */
  char *body;
  size_t body_len;
};

enum fake_action {
  FAKE_RESPOND = 0,     /* send status, headers, body */
  FAKE_DROP,            /* close without answering */
  FAKE_CUT,             /* send headers (full Content-Length) and cut_at body bytes, then close */
  FAKE_STALL,           /* send headers and cut_at body bytes, then go quiet for stall_ms */
};

struct fake_resp {
  int status;
  struct buf headers;   /* extra header lines, each ending "\r\n" */
  struct buf body;
  enum fake_action action;
  size_t cut_at;
  int stall_ms;
};

typedef void (*fake_handler)(void *arg, const struct fake_req *rq, struct fake_resp *rs);

struct fakehttp;

struct fakehttp *fakehttp_start(fake_handler h, void *arg);
int fakehttp_port(const struct fakehttp *s);
void fakehttp_stop(struct fakehttp *s);

/* Value of header name in rq (case-insensitive), copied into a static-free buffer
 * the caller frees; NULL if absent. */
char *fake_req_header(const struct fake_req *rq, const char *name);

/* Standard base64 of s (for Basic auth headers and docker config files); caller frees. */
char *fakehttp_base64(const char *s);

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
int fakehttp_dead_port(void);

#endif
