/* registry_http.c - one HTTP exchange with libcurl. The only file that knows curl.
 *
 * Credentials are handed to curl as auth settings (CURLOPT_USERNAME/PASSWORD with
 * CURLAUTH_BASIC, CURLOPT_XOAUTH2_BEARER with CURLAUTH_BEARER), never as a custom
 * Authorization header: curl then drops them when a redirect leads to another host
 * (CURLOPT_UNRESTRICTED_AUTH off), so a registry's token never reaches the blob
 * storage it redirects to. test/unit/registry_test.c checks this. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "image/registry_internal.h"

#ifndef CRISP_VERSION
#define CRISP_VERSION "dev"
#endif

/* Error bodies are kept only far enough to quote the registry's reason. */
#define ERROR_BODY_MAX ((size_t)64 << 10)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int registry_global_init(err_t **e)
{
  pthread_once(&global_once, global_init_once);
  if (global_rc != CURLE_OK)
    return err_set(e, ERR_INTERNAL, 0, "libcurl init: %s", curl_easy_strerror(global_rc));
  return 0;
}

struct xfer {
  const struct http_request *rq;
  struct http_response *rs;
  CURL *c;
  err_t *sink_err;
  bool too_large;
};

void http_response_clear(struct http_response *rs)
{
  free(rs->content_type);
  free(rs->docker_digest);
  free(rs->www_authenticate);
  buf_free(&rs->body);
  memset(rs, 0, sizeof(*rs));
}

static void set_header(char **slot, const char *v, size_t n, bool keep_first)
{
  if (keep_first && *slot)
    return;
  free(*slot);
  *slot = xstrndup(v, n);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
  struct xfer *x = arg;
  size_t len = size * nmemb;
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    /* a new response of a redirect chain: forget the previous one's headers */
    struct http_response *rs = x->rs;
    free(rs->content_type);
    free(rs->docker_digest);
    free(rs->www_authenticate);
    rs->content_type = rs->docker_digest = rs->www_authenticate = NULL;
    return len;
  }
  const char *colon = memchr(p, ':', len);
  if (!colon)
    return len;
  size_t klen = (size_t)(colon - p);
  const char *v = colon + 1;
  size_t vlen = len - klen - 1;
  while (vlen && (*v == ' ' || *v == '\t'))
    v++, vlen--;
  while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
    vlen--;
  if (klen == 12 && strncasecmp(p, "Content-Type", klen) == 0)
    set_header(&x->rs->content_type, v, vlen, false);
  else if (klen == 21 && strncasecmp(p, "Docker-Content-Digest", klen) == 0)
    set_header(&x->rs->docker_digest, v, vlen, false);
  else if (klen == 16 && strncasecmp(p, "WWW-Authenticate", klen) == 0)
    set_header(&x->rs->www_authenticate, v, vlen, true);
  return len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
  struct xfer *x = arg;
  const struct http_request *rq = x->rq;
  size_t len = size * nmemb;
  long status = 0;
  curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 300 && status < 400)
    return len;
  bool ok = status >= 200 && status < 300;
  if (ok && rq->sink) {
    if (rq->sink(rq->sink_arg, p, len, &x->sink_err) < 0)
      return 0;
    x->rs->streamed += len;
    return len;
  }
  struct buf *b = &x->rs->body;
  if (!ok || rq->sink) {
    if (b->len < ERROR_BODY_MAX)
      buf_append(b, p, len < ERROR_BODY_MAX - b->len ? len : ERROR_BODY_MAX - b->len);
    return len;
  }
  if (len > rq->max_body || b->len > rq->max_body - len) {
    x->too_large = true;
    return 0;
  }
  buf_append(b, p, len);
  return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
  struct xfer *x = arg;
  const struct registry_io *io = x->rq->io;
  if (!io)
    return 0;
  if (io->cancelled && io->cancelled(io->arg))
    return 1;
  if (io->progress && x->rq->sink) {
    uint64_t total = x->rq->progress_total;
    if (!total && dltotal > 0)
      total = (uint64_t)dltotal;
    io->progress(io->arg, x->rs->streamed, total);
  }
  return 0;
}

/* How a transport failure is reported; codes not listed are ERR_UNAVAILABLE. */
static const struct {
  CURLcode rc;
  enum err_code code;
  bool retryable;
  const char *what;
} curl_failures[] = {
  {CURLE_COULDNT_RESOLVE_HOST, ERR_UNAVAILABLE, false, "cannot resolve host"},
  {CURLE_COULDNT_RESOLVE_PROXY, ERR_UNAVAILABLE, false, "cannot resolve proxy"},
  {CURLE_COULDNT_CONNECT, ERR_UNAVAILABLE, false, "cannot connect"},
  {CURLE_OPERATION_TIMEDOUT, ERR_UNAVAILABLE, true, "timed out"},
  {CURLE_RECV_ERROR, ERR_UNAVAILABLE, true, "connection broken"},
  {CURLE_SEND_ERROR, ERR_UNAVAILABLE, true, "connection broken"},
  {CURLE_GOT_NOTHING, ERR_UNAVAILABLE, true, "empty reply"},
  {CURLE_PARTIAL_FILE, ERR_UNAVAILABLE, true, "transfer cut short"},
  {CURLE_HTTP2, ERR_UNAVAILABLE, true, "HTTP/2 error"},
  {CURLE_HTTP2_STREAM, ERR_UNAVAILABLE, true, "HTTP/2 stream error"},
  {CURLE_SSL_CONNECT_ERROR, ERR_UNAVAILABLE, false, "TLS handshake failed"},
  {CURLE_PEER_FAILED_VERIFICATION, ERR_UNAVAILABLE, false, "TLS certificate not trusted"},
  {CURLE_SSL_CERTPROBLEM, ERR_UNAVAILABLE, false, "TLS client certificate problem"},
  {CURLE_SSL_CIPHER, ERR_UNAVAILABLE, false, "TLS cipher problem"},
  {CURLE_SSL_CACERT_BADFILE, ERR_UNAVAILABLE, false, "TLS CA file problem"},
  {CURLE_SSL_ISSUER_ERROR, ERR_UNAVAILABLE, false, "TLS issuer check failed"},
  {CURLE_SSL_INVALIDCERTSTATUS, ERR_UNAVAILABLE, false, "TLS certificate status invalid"},
  {CURLE_TOO_MANY_REDIRECTS, ERR_UNAVAILABLE, false, "too many redirects"},
  {CURLE_UNSUPPORTED_PROTOCOL, ERR_INVALID, false, "unsupported protocol"},
  {CURLE_URL_MALFORMAT, ERR_INVALID, false, "malformed URL"},
};

static int transport_error(CURLcode rc, const char *errbuf, struct xfer *x, err_t **e)
{
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return err_set(e, ERR_CANCELLED, 0, "cancelled");
  if (rc == CURLE_WRITE_ERROR && x->sink_err) {
    x->rs->sink_failed = true;
    err_free(e);
    *e = steal(&x->sink_err);
    return -1;
  }
  if (rc == CURLE_WRITE_ERROR && x->too_large)
    return err_set(e, ERR_RESOURCE, 0, "response larger than %zu bytes", x->rq->max_body);
  const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  for (size_t i = 0; i < sizeof(curl_failures) / sizeof(curl_failures[0]); i++) {
    if (curl_failures[i].rc == rc) {
      x->rs->retryable = curl_failures[i].retryable;
      return err_set(e, curl_failures[i].code, 0, "%s: %s", curl_failures[i].what, detail);
    }
  }
  return err_set(e, ERR_UNAVAILABLE, 0, "%s", detail);
}

static void set_auth(CURL *c, const struct http_request *rq)
{
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  switch (rq->auth) {
  case HTTP_AUTH_BASIC:
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, rq->user ? rq->user : "");
    curl_easy_setopt(c, CURLOPT_PASSWORD, rq->password ? rq->password : "");
    break;
  case HTTP_AUTH_BEARER:
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, rq->token ? rq->token : "");
    break;
  case HTTP_AUTH_NONE:
    break;
  }
}

static void set_options(CURL *c, const struct http_request *rq, struct xfer *x, char *errbuf)
{
  curl_easy_setopt(c, CURLOPT_URL, rq->url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "crisp/" CRISP_VERSION);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  long connect_s = rq->connect_timeout_s > 0 ? rq->connect_timeout_s : 10L;
  long low_speed_s = rq->low_speed_time_s > 0 ? rq->low_speed_time_s : 30L;
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, low_speed_s);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  if (rq->post_form)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->post_form);
  set_auth(c, rq);
}

int http_do(const struct http_request *rq, struct http_response *rs, err_t **e)
{
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';
  http_response_clear(rs);
  if (registry_global_init(e) < 0)
    return -1;
  CURL *c = curl_easy_init();
  if (!c)
    return err_set(e, ERR_INTERNAL, 0, "curl_easy_init failed");
  struct xfer x = {.rq = rq, .rs = rs, .c = c};
  struct curl_slist *headers = NULL;
  cleanup_free char *accept = rq->accept ? xasprintf("Accept: %s", rq->accept) : NULL;
  if (accept)
    headers = curl_slist_append(headers, accept);
  if (headers)
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  set_options(c, rq, &x, errbuf);
  CURLcode rc = curl_easy_perform(c);
  int ret = 0;
  if (rc != CURLE_OK)
    ret = transport_error(rc, errbuf, &x, e);
  else
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
  err_free(&x.sink_err);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return ret;
}
