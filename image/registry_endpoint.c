/* registry_endpoint.c - which base URLs serve a registry host, in which order. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "image/registry_internal.h"

const char *registry_canonical_host(const char *domain)
{
  if (strcasecmp(domain, "index.docker.io") == 0 ||
      strcasecmp(domain, "registry-1.docker.io") == 0)
    return "docker.io";
  return domain;
}

/* "host:port" -> length of "host"; "[::1]:5000" -> length of "[::1]". */
static size_t host_len(const char *hp)
{
  if (hp[0] == '[') {
    const char *end = strchr(hp, ']');
    return end ? (size_t)(end - hp) + 1 : strlen(hp);
  }
  const char *colon = strchr(hp, ':');
  return colon ? (size_t)(colon - hp) : strlen(hp);
}

static bool host_is_loopback(const char *hp)
{
  static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
  size_t n = host_len(hp);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strlen(names[i]) == n && strncasecmp(hp, names[i], n) == 0)
      return true;
  return false;
}

bool registry_host_insecure(const struct registry_opts *o, const char *domain)
{
  if (host_is_loopback(domain))
    return true;
  for (size_t i = 0; o && i < o->n_insecure; i++) {
    const char *ent = o->insecure[i];
    if (strcasecmp(ent, domain) == 0)
      return true;
    /* an entry without a port covers every port of that host */
    bool ent_has_port = host_len(ent) != strlen(ent);
    size_t hl = host_len(domain);
    if (!ent_has_port && strlen(ent) == hl && strncasecmp(ent, domain, hl) == 0)
      return true;
  }
  return false;
}

static bool has_scheme(const char *u, const char *scheme)
{
  size_t n = strlen(scheme);
  return strncasecmp(u, scheme, n) == 0 && strncmp(u + n, "://", 3) == 0;
}

/* A mirror URL -> base: scheme added if missing, trailing '/' and "/v2" dropped. */
static int mirror_base(const struct registry_opts *o, const char *url, char **out, err_t **e)
{
  char *b;
  if (has_scheme(url, "http") || has_scheme(url, "https")) {
    b = xstrdup(url);
  } else if (strstr(url, "://")) {
    return err_set(e, ERR_INVALID, 0, "mirror %s: only http and https are supported", url);
  } else {
    size_t hp = strcspn(url, "/");
    cleanup_free char *host = xstrndup(url, hp);
    b = xasprintf("%s://%s", registry_host_insecure(o, host) ? "http" : "https", url);
  }
  size_t n = strlen(b);
  while (n && b[n - 1] == '/')
    b[--n] = '\0';
  if (n >= 3 && strcmp(b + n - 3, "/v2") == 0)
    b[n -= 3] = '\0';
  const char *host = strstr(b, "://") + 3;
  if (!*host || *host == '/' || strpbrk(b, " \t\r\n?#")) {
    free(b);
    return err_set(e, ERR_INVALID, 0, "mirror \"%s\" is not a valid base URL", url);
  }
  *out = b;
  return 0;
}

static void push(struct registry_endpoints *eps, char *base, bool mirror)
{
  eps->v = xreallocarray(eps->v, eps->n + 1, sizeof(*eps->v));
  eps->v[eps->n++] = (struct registry_endpoint){.base = base, .mirror = mirror};
}

int registry_resolve_endpoints(const struct registry_opts *o, const char *domain,
                               struct registry_endpoints *out, err_t **e)
{
  struct registry_endpoints eps = {NULL, 0};
  if (!domain || !*domain || strpbrk(domain, "/ \t\r\n?#@"))
    return err_set(e, ERR_INVALID, 0, "invalid registry host \"%s\"", domain ? domain : "");
  const char *host = registry_canonical_host(domain);
  for (size_t i = 0; o && i < o->n_mirrors; i++) {
    const struct registry_mirror_conf *m = &o->mirrors[i];
    if (!m->host || strcasecmp(registry_canonical_host(m->host), host) != 0)
      continue;
    for (size_t j = 0; j < m->n; j++) {
      char *b = NULL;
      if (mirror_base(o, m->endpoints[j], &b, e) < 0) {
        registry_endpoints_clear(&eps);
        return err_wrap(e, "mirrors of %s", m->host);
      }
      push(&eps, b, true);
    }
  }
  if (strcmp(host, "docker.io") == 0)
    push(&eps, xstrdup("https://registry-1.docker.io"), false);
  else
    push(&eps, xasprintf("%s://%s", registry_host_insecure(o, host) ? "http" : "https", host),
         false);
  *out = eps;
  return 0;
}

void registry_endpoints_clear(struct registry_endpoints *eps)
{
  for (size_t i = 0; i < eps->n; i++)
    free(eps->v[i].base);
  free(eps->v);
  eps->v = NULL;
  eps->n = 0;
}
