/* cni_cache.c - what a pod's ADD did, kept for DEL and CHECK; reading results. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/xalloc.h"
#include "net/cni_int.h"

#define CACHE_KIND "crispCNICacheV1"

static void kv(struct buf *b, const char *key, const char *val)
{
  buf_puts(b, ",");
  buf_json_str(b, key);
  buf_putc(b, ':');
  buf_json_str(b, val ? val : "");
}

int cni_cache_write(const char *dir, const struct cni_cache_rec *r, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_puts(&b, "{\"kind\":\"" CACHE_KIND "\"");
  kv(&b, "containerId", r->container_id);
  kv(&b, "ifName", r->ifname);
  kv(&b, "netns", r->netns);
  kv(&b, "cniArgs", r->args);
  kv(&b, "configSource", r->conf_source);
  kv(&b, "config", r->conf_text);
  buf_puts(&b, ",\"capabilityArgs\":");
  cni_json_emit(&b, r->caps);
  if (r->result) {
    buf_puts(&b, ",\"result\":");
    cni_json_emit(&b, r->result);
  }
  buf_puts(&b, "}\n");
  cleanup_free char *path = path_join(dir, CNI_CACHE_FILE);
  /* not waited onto the disk: a crispd that dies finds it in the page cache, and a node
   * that loses power has lost the pod's namespaces; the cache only has to outlive an
   * orderly reboot, for the DEL that gives the plugins' addresses back */
  if (mkdir_p(dir, 0700, e) < 0 || file_write_atomic_nosync(path, b.data, b.len, 0600, e) < 0)
    return err_wrap(e, "write CNI cache");
  return 0;
}

static int field(const json_t *doc, const char *key, const char **out, const char *path, err_t **e)
{
  *out = json_str(json_get(doc, key));
  if (!*out)
    return err_set(e, ERR_INVALID, 0, "%s: \"%s\" is missing or not a string", path, key);
  return 0;
}

int cni_cache_read(const char *dir, json_t **doc, struct cni_cache_rec *r, err_t **e)
{
  *doc = NULL;
  memset(r, 0, sizeof(*r));
  cleanup_free char *path = path_join(dir, CNI_CACHE_FILE);
  cleanup_free char *text = NULL;
  if (file_read_all(path, 4 * CNI_CONF_MAX, &text, NULL, e) < 0)
    return -1;
  cleanup_json json_t *d = NULL;
  if (json_parse(text, &d, e) < 0)
    return err_wrap(e, "%s", path);
  const char *kind = json_str(json_get(d, "kind"));
  if (!kind || strcmp(kind, CACHE_KIND) != 0)
    return err_set(e, ERR_INVALID, 0, "%s: not a crisp CNI cache (kind \"%s\")", path, kind ? kind : "");
  if (field(d, "containerId", &r->container_id, path, e) < 0 || field(d, "ifName", &r->ifname, path, e) < 0 ||
      field(d, "netns", &r->netns, path, e) < 0 || field(d, "cniArgs", &r->args, path, e) < 0 ||
      field(d, "configSource", &r->conf_source, path, e) < 0 || field(d, "config", &r->conf_text, path, e) < 0)
    return -1;
  r->caps = json_get(d, "capabilityArgs");
  if (json_type(r->caps) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s: \"capabilityArgs\" must be an object", path);
  r->result = json_get(d, "result");
  if (r->result && json_type(r->result) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s: \"result\" must be an object", path);
  *doc = steal(&d);
  return 0;
}

int cni_cache_remove(const char *dir, err_t **e)
{
  cleanup_free char *path = path_join(dir, CNI_CACHE_FILE);
  if (unlink(path) < 0 && errno != ENOENT)
    return err_sys(e, errno, "remove %s", path);
  return 0;
}

/* --- results --------------------------------------------------------------------------- */

/* An address belongs to the pod if it names no interface, or names ifname inside a
 * sandbox (bridge also reports the host's bridge and veth; portmap uses the same rule). */
static bool in_pod(const json_t *res, const json_t *ip, const char *ifname)
{
  long long idx;
  if (json_int(json_get(ip, "interface"), &idx) < 0)
    return true;
  const json_t *ifs = json_get(res, "interfaces");
  if (idx < 0 || (size_t)idx >= json_len(ifs))
    return true;
  const json_t *itf = json_at(ifs, (size_t)idx);
  const char *name = json_str(json_get(itf, "name"));
  const char *sandbox = json_str(json_get(itf, "sandbox"));
  return sandbox && *sandbox && (!name || strcmp(name, ifname) == 0);
}

static int take_ip(const char *addr, struct cni_result *out, err_t **e)
{
  const char *slash = strchr(addr, '/');
  cleanup_free char *ip = slash ? xstrndup(addr, (size_t)(slash - addr)) : xstrdup(addr);
  unsigned char raw[16];
  if (inet_pton(AF_INET, ip, raw) == 1) {
    if (!out->ip4)
      out->ip4 = steal(&ip);
  } else if (inet_pton(AF_INET6, ip, raw) == 1) {
    if (!out->ip6)
      out->ip6 = steal(&ip);
  } else {
    return err_set(e, ERR_UNAVAILABLE, 0, "CNI result: \"%s\" is not an IP address", addr);
  }
  return 0;
}

int cni_result_parse(const json_t *res, const char *ifname, struct cni_result *out, err_t **e)
{
  struct cni_result r = {0};
  if (json_type(res) != JSON_OBJECT)
    return err_set(e, ERR_UNAVAILABLE, 0, "CNI result is not a JSON object");
  const json_t *ips = json_get(res, "ips");
  for (size_t i = 0; i < json_len(ips); i++) {
    const json_t *ip = json_at(ips, i);
    const char *addr = json_str(json_get(ip, "address"));
    if (!addr || !in_pod(res, ip, ifname))
      continue;
    if (take_ip(addr, &r, e) < 0) {
      cni_result_clear(&r);
      return -1;
    }
  }
  r.iface = xstrdup(ifname);
  *out = r;
  return 0;
}

void cni_result_clear(struct cni_result *r)
{
  free(r->ip4);
  free(r->ip6);
  free(r->iface);
  memset(r, 0, sizeof(*r));
}
