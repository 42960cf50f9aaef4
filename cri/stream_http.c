#include "cri/stream_http.h"

#include <string.h>
#include <strings.h>

size_t http_head_len(const char *p, size_t n)
{
  for (size_t i = 0; i + 1 < n; i++) {
    if (p[i] != '\n')
      continue;
    if (p[i + 1] == '\n')
      return i + 2;
    if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

static bool is_tchar(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Cuts the next line off *p (LF or CRLF); NULL at the end of the head. */
static char *next_line(char **p, char *end)
{
  if (*p >= end)
    return NULL;
  char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
  if (!nl)
    return NULL;
  *p = nl + 1;
  if (nl > line && nl[-1] == '\r')
    nl--;
  *nl = '\0';
  return line;
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

static int parse_request_line(char *line, struct http_req *rq)
{
  char *sp1 = strchr(line, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || strchr(sp2 + 1, ' '))
    return -1;
  *sp1 = *sp2 = '\0';
  rq->method = line;
  rq->path = sp1 + 1;
  rq->version = sp2 + 1;
  if (!*rq->method || rq->path[0] != '/' || strncmp(rq->version, "HTTP/1.", 7) != 0)
    return -1;
  for (char *c = rq->method; *c; c++)
    if (!is_tchar(*c))
      return -1;
  for (char *c = rq->path; *c; c++)
    if ((unsigned char)*c <= ' ' || *c == 0x7f)
      return -1;
  char *q = strchr(rq->path, '?');
  if (q)
    *q = '\0';
  return 0;
}

static int parse_header(char *line, struct http_req *rq)
{
  char *colon = strchr(line, ':');
  if (!colon || colon == line || rq->n == HTTP_MAX_HEADERS)
    return -1;
  *colon = '\0';
  for (char *c = line; *c; c++)
    if (!is_tchar(*c))
      return -1;   /* also refuses "Name :" and folded lines that begin with a blank */
  char *v = trim(colon + 1);
  for (char *c = v; *c; c++)
    if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
      return -1;
  rq->h[rq->n].name = line;
  rq->h[rq->n].value = v;
  rq->n++;
  return 0;
}

int http_req_parse(char *head, size_t len, struct http_req *rq)
{
  memset(rq, 0, sizeof(*rq));
  if (memchr(head, '\0', len))
    return -1;
  char *p = head, *end = head + len;
  char *line = next_line(&p, end);
  if (!line || parse_request_line(line, rq) < 0)
    return -1;
  while ((line = next_line(&p, end)) && *line)
    if (parse_header(line, rq) < 0)
      return -1;
  return line ? 0 : -1;
}

const char *http_req_get(const struct http_req *rq, const char *name)
{
  for (size_t i = 0; i < rq->n; i++)
    if (strcasecmp(rq->h[i].name, name) == 0)
      return rq->h[i].value;
  return NULL;
}

/* Walks the trimmed, non-empty elements of every `name` line in order and returns
 * the first one fn accepts in *found (not NUL-terminated) and *found_len. */
static bool list_find(const struct http_req *rq, const char *name,
                      bool (*fn)(const char *elem, size_t len, const void *arg), const void *arg,
                      const char **found, size_t *found_len)
{
  for (size_t i = 0; i < rq->n; i++) {
    if (strcasecmp(rq->h[i].name, name) != 0)
      continue;
    const char *s = rq->h[i].value;
    while (*s) {
      size_t n = strcspn(s, ",");
      const char *a = s, *b = s + n;
      while (a < b && (*a == ' ' || *a == '\t'))
        a++;
      while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
      if (b > a && fn(a, (size_t)(b - a), arg)) {
        *found = a;
        *found_len = (size_t)(b - a);
        return true;
      }
      s += n + (s[n] == ',');
    }
  }
  return false;
}

static bool token_eq(const char *elem, size_t len, const void *arg)
{
  const char *tok = arg;
  return strlen(tok) == len && strncasecmp(elem, tok, len) == 0;
}

bool http_req_has_token(const struct http_req *rq, const char *name, const char *token)
{
  const char *f;
  size_t n;
  return list_find(rq, name, token_eq, token, &f, &n);
}

static bool token_exact(const char *elem, size_t len, const void *arg)
{
  const char *tok = arg;
  return strlen(tok) == len && strncmp(elem, tok, len) == 0;
}

static bool any(const char *elem, size_t len, const void *arg)
{
  (void)elem, (void)len, (void)arg;
  return true;
}

const char *http_req_negotiate(const struct http_req *rq, const char *name,
                               const char *const *supported, bool *offered)
{
  const char *f;
  size_t n;
  *offered = list_find(rq, name, any, NULL, &f, &n);
  for (const char *const *s = supported; *s; s++)
    if (list_find(rq, name, token_exact, *s, &f, &n))
      return *s;
  return NULL;
}

const char *http_reason(int status)
{
  switch (status) {
  case 101: return "Switching Protocols";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

void http_error_response(struct buf *out, int status, const char *extra, const char *body)
{
  buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
             status, http_reason(status), strlen(body), extra ? extra : "", body);
}
