/* stream_http.h - the one HTTP/1.1 request the streaming server reads per
 * connection (an upgrade request) and the short answers it writes.
 *
 * The head is parsed in place from a buffer the caller owns; pointers in struct
 * http_req point into it. Strict: CRLF or LF line ends, no obsolete line folding,
 * no control characters, at most HTTP_MAX_HEADERS headers. Pure functions. */
#ifndef CRISP_CRI_STREAM_HTTP_H
#define CRISP_CRI_STREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define HTTP_MAX_HEAD (16 * 1024)
#define HTTP_MAX_HEADERS 64

struct http_req {
  char *method;
  char *path;     /* target without the query string */
  char *version;  /* "HTTP/1.1" */
  struct {
    char *name;
    char *value;  /* leading and trailing blanks trimmed */
  } h[HTTP_MAX_HEADERS];
  size_t n;
};

/* Length of the head in p[0..n) including its blank line, 0 if not complete yet. */
size_t http_head_len(const char *p, size_t n);
/* Parses head[0..len) in place (it is modified). -1 for a malformed request. */
int http_req_parse(char *head, size_t len, struct http_req *rq);
/* First value of a header (case-insensitive name), NULL if absent. */
const char *http_req_get(const struct http_req *rq, const char *name);
/* Whether any line of the header holds token in its comma-separated list
 * (case-insensitive), as "Connection: keep-alive, Upgrade". */
bool http_req_has_token(const struct http_req *rq, const char *name, const char *token);
/* The first entry of supported[] (NULL-terminated, best first) that the client
 * lists in the header (exact match, any line); NULL if none. *offered says
 * whether the client listed anything at all. */
const char *http_req_negotiate(const struct http_req *rq, const char *name,
                               const char *const *supported, bool *offered);

/* A complete non-upgrade answer: status line, extra header lines (each ending
 * "\r\n", may be NULL), text body, Connection: close. */
void http_error_response(struct buf *out, int status, const char *extra, const char *body);
const char *http_reason(int status);

#endif
