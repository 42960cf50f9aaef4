#include "net/podfiles.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "net/mnt.h"

#define HOST_RESOLV_DEFAULT "/etc/resolv.conf"
#define HOST_RESOLV_MAX (64 * 1024)
#define HOSTNAME_MAX 64   /* the kernel's limit for a UTS namespace */
#define SHM_OPTIONS "mode=1777,size=67108864"
#define FILE_MODE 0644

/* --- checks ------------------------------------------------------------------------ */

int podfiles_check_hostname(const char *h, err_t **e)
{
  size_t n = h ? strlen(h) : 0;
  bool ok = n >= 1 && n <= HOSTNAME_MAX;
  for (size_t i = 0; ok && i < n; i++)
    ok = isalnum((unsigned char)h[i]) || h[i] == '-' || h[i] == '.' || h[i] == '_';
  if (ok)
    return 0;
  return err_set(e, ERR_INVALID, 0, "hostname \"%s\": want 1-%d letters, digits, '-', '.' or '_'",
                 h ? h : "", HOSTNAME_MAX);
}

/* One word of resolv.conf or hosts: a space would split it, a newline would add a
 * line of the caller's choosing, '#' and ';' would comment out the rest. */
static bool token_ok(const char *s)
{
  if (!s || !*s)
    return false;
  for (; *s; s++)
    if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '#' || *s == ';')
      return false;
  return true;
}

static int check_tokens(const char *what, char *const *v, size_t n, err_t **e)
{
  for (size_t i = 0; i < n; i++)
    if (!token_ok(v[i]))
      return err_set(e, ERR_INVALID, 0, "%s[%zu] \"%s\": empty, or holds whitespace, control characters or a comment",
                     what, i, v[i] ? v[i] : "");
  return 0;
}

static int check_ip(const char *what, const char *ip, err_t **e)
{
  struct in6_addr a;
  if (ip && (inet_pton(AF_INET, ip, &a) == 1 || inet_pton(AF_INET6, ip, &a) == 1))
    return 0;
  return err_set(e, ERR_INVALID, 0, "%s \"%s\" is not an IP address", what, ip ? ip : "");
}

static bool dns_empty(const struct dns_conf *d)
{
  return !d || (!d->n_servers && !d->n_searches && !d->n_options);
}

static int check(const struct pod_files *f, err_t **e)
{
  if (f->hostname && *f->hostname && podfiles_check_hostname(f->hostname, e) < 0)
    return -1;
  for (size_t i = 0; i < f->n_pod_ips; i++)
    if (check_ip("pod IP", f->pod_ips[i], e) < 0)
      return -1;
  for (size_t i = 0; i < f->n_extra_hosts; i++) {
    const struct host_entry *h = &f->extra_hosts[i];
    if (check_ip("host alias", h->ip, e) < 0)
      return -1;
    if (!h->n_names)
      return err_set(e, ERR_INVALID, 0, "host alias %s: no hostnames", h->ip);
    if (check_tokens("host alias names", h->names, h->n_names, e) < 0)
      return -1;
  }
  if (dns_empty(f->dns))
    return 0;
  if (check_tokens("dns servers", f->dns->servers, f->dns->n_servers, e) < 0 ||
      check_tokens("dns searches", f->dns->searches, f->dns->n_searches, e) < 0 ||
      check_tokens("dns options", f->dns->options, f->dns->n_options, e) < 0)
    return -1;
  return 0;
}

/* --- contents ---------------------------------------------------------------------- */

static char *pod_hostname(const struct pod_files *f)
{
  if (f->hostname && *f->hostname)
    return xstrdup(f->hostname);
  char name[HOST_NAME_MAX + 1] = "";
  if (gethostname(name, sizeof(name)) < 0)
    name[0] = '\0';
  name[HOST_NAME_MAX] = '\0';
  return xstrdup(name);
}

/* prefix, then the words separated by single spaces, then a newline */
static void put_words(struct buf *b, const char *prefix, char *const *v, size_t n)
{
  buf_puts(b, prefix);
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_putc(b, ' ');
    buf_puts(b, v[i]);
  }
  buf_putc(b, '\n');
}

static void hosts_build(struct buf *b, const char *hostname, const struct pod_files *f)
{
  buf_puts(b, "# Kubernetes-managed hosts file (crisp).\n"
              "127.0.0.1\tlocalhost\n"
              "::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\n"
              "fe00::0\tip6-mcastprefix\n"
              "fe00::1\tip6-allnodes\n"
              "fe00::2\tip6-allrouters\n");
  for (size_t i = 0; i < f->n_pod_ips && *hostname; i++)
    buf_printf(b, "%s\t%s\n", f->pod_ips[i], hostname);
  if (f->n_extra_hosts)
    buf_puts(b, "\n# Entries added by HostAliases.\n");
  for (size_t i = 0; i < f->n_extra_hosts; i++) {
    buf_puts(b, f->extra_hosts[i].ip);
    put_words(b, "\t", f->extra_hosts[i].names, f->extra_hosts[i].n_names);
  }
}

static void resolv_from_dns(struct buf *b, const struct dns_conf *d)
{
  if (d->n_searches)
    put_words(b, "search ", d->searches, d->n_searches);
  for (size_t i = 0; i < d->n_servers; i++)
    buf_printf(b, "nameserver %s\n", d->servers[i]);
  if (d->n_options)
    put_words(b, "options ", d->options, d->n_options);
}

static bool is_loopback(const char *addr)
{
  cleanup_free char *a = xstrndup(addr, strcspn(addr, "%"));   /* fe80::1%eth0 */
  struct in6_addr in6;
  struct in_addr in4;
  if (inet_pton(AF_INET, a, &in4) == 1)
    return (ntohl(in4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, a, &in6) != 1)
    return false;
  return IN6_IS_ADDR_LOOPBACK(&in6) || (IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127);
}

/* The address of a "nameserver" line, NULL for any other line (caller frees). */
static char *nameserver_of(const char *line, size_t len)
{
  static const char kw[] = "nameserver";
  const char *p = line, *end = line + len;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  if ((size_t)(end - p) <= strlen(kw) || strncmp(p, kw, strlen(kw)) != 0)
    return NULL;
  p += strlen(kw);
  if (*p != ' ' && *p != '\t')
    return NULL;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  const char *q = p;
  while (q < end && !isspace((unsigned char)*q) && *q != '#' && *q != ';')
    q++;
  return q > p ? xstrndup(p, (size_t)(q - p)) : NULL;
}

/* The node's resolv.conf minus loopback nameservers: a resolver on the node's
 * 127.0.0.53 (systemd-resolved) or ::1 is not reachable from the pod's network. */
static int resolv_from_host(struct buf *b, const char *path, err_t **e)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (file_read_all(path, HOST_RESOLV_MAX, &text, &len, e) < 0) {
    if ((*e)->code != ERR_NOT_FOUND)
      return err_wrap(e, "node resolv.conf");
    err_free(e);
    log_warn("node resolv.conf missing: pods get an empty one", "path", path, NULL);
    return 0;
  }
  for (size_t off = 0; off < len;) {   /* by length: an empty file's text is not terminated */
    const char *line = text + off;
    const char *nl = memchr(line, '\n', len - off);
    size_t n = nl ? (size_t)(nl - line) : len - off;
    cleanup_free char *server = nameserver_of(line, n);
    if (server && is_loopback(server)) {
      log_warn("dropped a loopback nameserver of the node's resolv.conf: pods cannot reach it",
               "nameserver", server, "path", path, NULL);
    } else {
      buf_append(b, line, n);
      buf_putc(b, '\n');
    }
    off += n + (nl != NULL);
  }
  return 0;
}

/* --- files and mounts ------------------------------------------------------------ */

static int put_file(const char *dir, const char *name, const struct buf *b, err_t **e)
{
  cleanup_free char *path = path_join(dir, name);
  return file_write_atomic(path, buf_str(b), b->len, FILE_MODE, e);
}

static int shm_mount(const char *dir, err_t **e)
{
  cleanup_free char *path = path_join(dir, PODFILES_SHM);
  if (mkdir(path, 0755) < 0 && errno != EEXIST)
    return err_sys(e, errno, "mkdir %s", path);
  struct stat sd, sp;
  if (stat(dir, &sd) < 0 || lstat(path, &sp) < 0)
    return err_sys(e, errno, "stat %s", path);
  if (sd.st_dev != sp.st_dev)
    return 0;   /* mounted by an earlier call */
  if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, SHM_OPTIONS) < 0)
    return err_sys(e, errno, "mount the pod's shm tmpfs on %s", path);
  return 0;
}

int podfiles_write(const char *dir, const struct pod_files *f, err_t **e)
{
  if (check(f, e) < 0)
    return -1;
  cleanup_free char *host = pod_hostname(f);
  cleanup_buf struct buf hostname = BUF_INIT;
  cleanup_buf struct buf hosts = BUF_INIT;
  cleanup_buf struct buf resolv = BUF_INIT;
  buf_printf(&hostname, "%s\n", host);
  hosts_build(&hosts, host, f);
  if (!dns_empty(f->dns))
    resolv_from_dns(&resolv, f->dns);
  else if (resolv_from_host(&resolv, f->host_resolv ? f->host_resolv : HOST_RESOLV_DEFAULT, e) < 0)
    return -1;
  if (mkdir_p(dir, 0700, e) < 0 || put_file(dir, PODFILES_HOSTNAME, &hostname, e) < 0 ||
      put_file(dir, PODFILES_HOSTS, &hosts, e) < 0 || put_file(dir, PODFILES_RESOLV, &resolv, e) < 0)
    return -1;
  return f->shm ? shm_mount(dir, e) : 0;
}

int podfiles_write_hosts(const char *dir, const struct pod_files *f, err_t **e)
{
  if (check(f, e) < 0)
    return -1;
  cleanup_free char *host = pod_hostname(f);
  cleanup_buf struct buf hosts = BUF_INIT;
  hosts_build(&hosts, host, f);
  return put_file(dir, PODFILES_HOSTS, &hosts, e);
}

int podfiles_remove(const char *dir, err_t **e)
{
  cleanup_free char *shm = path_join(dir, PODFILES_SHM);
  if (mnt_detach_all(shm, e) < 0)
    return -1;
  if (rmdir(shm) < 0 && errno != ENOENT)
    return err_sys(e, errno, "remove %s", shm);
  static const char *const files[] = {PODFILES_HOSTNAME, PODFILES_HOSTS, PODFILES_RESOLV};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    cleanup_free char *path = path_join(dir, files[i]);
    if (unlink(path) < 0 && errno != ENOENT)
      return err_sys(e, errno, "remove %s", path);
  }
  return 0;
}
