/* cni_stdin.c - the JSON a plugin reads: its config, prevResult, runtimeConfig. */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "net/cidr.h"
#include "net/cni_int.h"

static void emit_number(struct buf *b, const json_t *n)
{
  long long i;
  double d = 0;
  if (json_int(n, &i) == 0)
    buf_printf(b, "%lld", i);
  else if (json_double(n, &d) == 0)
    buf_printf(b, "%.17g", d);
  else
    buf_puts(b, "0");
}

void cni_json_emit(struct buf *b, const json_t *n)
{
  bool v = false;
  switch (json_type(n)) {
  case JSON_NONE:
  case JSON_NULL:
    buf_puts(b, "null");
    return;
  case JSON_BOOL:
    json_bool(n, &v);
    buf_puts(b, v ? "true" : "false");
    return;
  case JSON_NUMBER:
    emit_number(b, n);
    return;
  case JSON_STRING:
    buf_json_str(b, json_str(n));
    return;
  case JSON_ARRAY:
    buf_putc(b, '[');
    for (size_t i = 0; i < json_len(n); i++) {
      if (i)
        buf_putc(b, ',');
      cni_json_emit(b, json_at(n, i));
    }
    buf_putc(b, ']');
    return;
  case JSON_OBJECT:
    buf_putc(b, '{');
    for (size_t i = 0; i < json_len(n); i++) {
      if (i)
        buf_putc(b, ',');
      buf_json_str(b, json_key_at(n, i));
      buf_putc(b, ':');
      cni_json_emit(b, json_at(n, i));
    }
    buf_putc(b, '}');
    return;
  }
}

/* --- capability arguments ----------------------------------------------------------- */

static int port_json(struct buf *b, const struct cni_port *pt, err_t **e)
{
  const char *proto = pt->protocol && *pt->protocol ? pt->protocol : "tcp";
  if (strcasecmp(proto, "tcp") && strcasecmp(proto, "udp") && strcasecmp(proto, "sctp"))
    return err_set(e, ERR_INVALID, 0, "port mapping %d: protocol \"%s\" is not tcp, udp or sctp",
                   pt->host_port, proto);
  if (pt->host_port > 65535 || pt->container_port <= 0 || pt->container_port > 65535)
    return err_set(e, ERR_INVALID, 0, "port mapping %d -> %d: ports must be 1 to 65535", pt->host_port,
                   pt->container_port);
  buf_printf(b, "{\"hostPort\":%d,\"containerPort\":%d,\"protocol\":\"", pt->host_port,
             pt->container_port);
  for (const char *c = proto; *c; c++)
    buf_putc(b, (char)tolower((unsigned char)*c));
  buf_putc(b, '"');
  if (pt->host_ip && *pt->host_ip) {
    buf_puts(b, ",\"hostIP\":");
    buf_json_str(b, pt->host_ip);
  }
  buf_putc(b, '}');
  return 0;
}

/* kubelet publishes only ports with a host port; the others stay inside the pod */
static int ports_json(struct buf *b, const struct cni_pod *p, err_t **e)
{
  bool any = false;
  for (size_t i = 0; i < p->n_ports; i++) {
    if (p->ports[i].host_port <= 0)
      continue;
    buf_puts(b, any ? "," : "\"portMappings\":[");
    any = true;
    if (port_json(b, &p->ports[i], e) < 0)
      return -1;
  }
  if (any)
    buf_putc(b, ']');
  return any ? 1 : 0;
}

static void strv_json(struct buf *b, const char *key, char *const *v, size_t n, bool *first)
{
  if (!n)
    return;
  buf_printf(b, "%s\"%s\":[", *first ? "" : ",", key);
  *first = false;
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_putc(b, ',');
    buf_json_str(b, v[i]);
  }
  buf_putc(b, ']');
}

static bool dns_json(struct buf *b, const struct dns_conf *d)
{
  if (!d || !(d->n_servers || d->n_searches || d->n_options))
    return false;
  bool first = true;
  buf_puts(b, "\"dns\":{");
  strv_json(b, "servers", d->servers, d->n_servers, &first);
  strv_json(b, "searches", d->searches, d->n_searches, &first);
  strv_json(b, "options", d->options, d->n_options, &first);
  buf_putc(b, '}');
  return true;
}

/* One range set per family, as containerd hands kubelet's pod CIDR to host-local. */
static int ranges_json(struct buf *b, const char *pod_cidr, err_t **e)
{
  struct cidr c[2];
  int n = 0;
  if (cidr_parse_list(pod_cidr, c, &n, e) < 0)
    return err_wrap(e, "pod CIDR");
  if (n == 0)
    return 0;
  buf_puts(b, "\"ipRanges\":[");
  for (int i = 0; i < n; i++) {
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(c[i].family, c[i].addr, ip, sizeof(ip));
    buf_printf(b, "%s[{\"subnet\":\"%s/%d\"}]", i ? "," : "", ip, c[i].prefix);
  }
  buf_putc(b, ']');
  return 1;
}

int cni_caps_build(const struct cni_pod *p, struct buf *out, err_t **e)
{
  cleanup_buf struct buf ports = BUF_INIT, dns = BUF_INIT, ranges = BUF_INIT;
  int has_ports = ports_json(&ports, p, e);
  if (has_ports < 0)
    return -1;
  bool has_dns = dns_json(&dns, p->dns);
  int has_ranges = ranges_json(&ranges, p->pod_cidr, e);
  if (has_ranges < 0)
    return -1;
  const struct buf *parts[] = {has_ports ? &ports : NULL, has_dns ? &dns : NULL,
                               has_ranges ? &ranges : NULL};
  bool first = true;
  buf_putc(out, '{');
  for (size_t i = 0; i < 3; i++) {
    if (!parts[i])
      continue;
    if (!first)
      buf_putc(out, ',');
    first = false;
    buf_puts(out, buf_str(parts[i]));
  }
  buf_putc(out, '}');
  return 0;
}

/* --- the plugin's stdin --------------------------------------------------------------- */

/* One ips[] entry in the list's result format: 0.3.x/0.4.0 carry "version" ("4"/"6"),
 * 1.0.0 dropped it (libcni converts the same way before handing a prevResult on). */
static void emit_ip(struct buf *b, const json_t *ip, bool v1)
{
  if (json_type(ip) != JSON_OBJECT) {
    cni_json_emit(b, ip);
    return;
  }
  bool first = true;
  buf_putc(b, '{');
  for (size_t i = 0; i < json_len(ip); i++) {
    const char *k = json_key_at(ip, i);
    if (strcmp(k, "version") == 0)
      continue;
    buf_printf(b, "%s", first ? "" : ",");
    first = false;
    buf_json_str(b, k);
    buf_putc(b, ':');
    cni_json_emit(b, json_at(ip, i));
  }
  const char *addr = json_str(json_get(ip, "address"));
  if (!v1 && addr)
    buf_printf(b, "%s\"version\":\"%s\"", first ? "" : ",", strchr(addr, ':') ? "6" : "4");
  buf_putc(b, '}');
}

static void emit_result(struct buf *b, const json_t *res, const char *version)
{
  bool v1 = cni_version_ge(version, "1.0.0");
  buf_puts(b, "{\"cniVersion\":");
  buf_json_str(b, version);
  for (size_t i = 0; i < json_len(res); i++) {
    const char *k = json_key_at(res, i);
    const json_t *v = json_at(res, i);
    if (strcmp(k, "cniVersion") == 0)
      continue;
    buf_putc(b, ',');
    buf_json_str(b, k);
    buf_putc(b, ':');
    if (strcmp(k, "ips") != 0 || json_type(v) != JSON_ARRAY) {
      cni_json_emit(b, v);
      continue;
    }
    buf_putc(b, '[');
    for (size_t j = 0; j < json_len(v); j++) {
      if (j)
        buf_putc(b, ',');
      emit_ip(b, json_at(v, j), v1);
    }
    buf_putc(b, ']');
  }
  buf_putc(b, '}');
}

/* libcni's rule: only the capabilities a plugin declares true, and only those the
 * runtime has a value for; the result replaces any runtimeConfig in the file. */
static bool runtime_config(const json_t *plugin, const json_t *caps, struct buf *rc)
{
  const json_t *decl = json_get(plugin, "capabilities");
  bool any = false;
  for (size_t i = 0; i < json_len(decl); i++) {
    bool on = false;
    const char *k = json_key_at(decl, i);
    const json_t *val = json_get(caps, k);
    if (json_bool(json_at(decl, i), &on) < 0 || !on || !val)
      continue;
    buf_puts(rc, any ? "," : "{");
    any = true;
    buf_json_str(rc, k);
    buf_putc(rc, ':');
    cni_json_emit(rc, val);
  }
  if (any)
    buf_putc(rc, '}');
  return any;
}

void cni_plugin_stdin(const struct cni_net *n, size_t i, const json_t *prev, const json_t *caps,
                      struct buf *out)
{
  const json_t *pl = n->plugins[i].conf;
  cleanup_buf struct buf rc = BUF_INIT;
  bool has_rc = runtime_config(pl, caps, &rc);
  buf_puts(out, "{\"cniVersion\":");
  buf_json_str(out, n->version);
  buf_puts(out, ",\"name\":");
  buf_json_str(out, n->name);
  for (size_t k = 0; k < json_len(pl); k++) {
    const char *key = json_key_at(pl, k);
    if (!strcmp(key, "cniVersion") || !strcmp(key, "name") || !strcmp(key, "prevResult") ||
        (has_rc && !strcmp(key, "runtimeConfig")))
      continue;
    buf_putc(out, ',');
    buf_json_str(out, key);
    buf_putc(out, ':');
    cni_json_emit(out, json_at(pl, k));
  }
  if (prev) {
    buf_puts(out, ",\"prevResult\":");
    emit_result(out, prev, n->version);
  }
  if (has_rc) {
    buf_puts(out, ",\"runtimeConfig\":");
    buf_puts(out, buf_str(&rc));
  }
  buf_putc(out, '}');
}
