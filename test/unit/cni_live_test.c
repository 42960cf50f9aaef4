/* CNI with Debian's real plugins (bridge, host-local, portmap from
 * containernetworking-plugins): a pod namespace from podns_create gets an address,
 * the host reaches a listener inside it directly and through a host port, and DEL
 * leaves no veth, lease or iptables rule. Needs root and /usr/lib/cni; skipped
 * otherwise. Each test uses its own bridge and network (crisp-t<pid>) and a 10.234.x.0/24
 * no host address or route uses; the tests take a lock so that the shared portmap
 * chains they may remove at the end are never in use by another of them. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cni_fixture.h"
#include "net/cni.h"
#include "net/podns.h"

#define DEBIAN_CNI "/usr/lib/cni"
#define POD_PORT 8080

static char *top, *conf, *bin, *pod_dir, *net_name, *pod_id, *subnet_prefix;
static char *lease_dir;
static struct pod_ns ns;
static int lock_fd = -1;
static char ip_forward_was[8];
static bool hostport_chains_existed, var_lib_cni_existed, nat_existed[2];
static char *bins[3];
static struct cni_opts opts;
static struct cni_pod pod;

/* --- the host, before and after -------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static bool sh_ok(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *cmd = xvasprintf(fmt, ap);
  va_end(ap);
  return system(cmd) == 0;
}

/* A 10.234.x.0/24 that no address or route on the host mentions. */
static char *free_subnet(void)
{
  cleanup_free char *used = cnit_sh("ip -o addr; ip route; ip -o link");
  for (int i = 0; i < 250; i++) {
    int x = (int)((getpid() + i) % 250) + 1;
    char *p = xasprintf("10.234.%d.", x);
    if (!strstr(used, p))
      return p;
    free(p);
  }
  cr_assert_fail("no free 10.234.x.0/24");
  return NULL;
}

static void write_conflist(const char *plugins)
{
  cleanup_free char *text = xasprintf("{\"cniVersion\":\"1.0.0\",\"name\":\"%s\",\"plugins\":[%s]}", net_name,
                                      plugins);
  cnit_write(conf, "10-live.conflist", text, 0644);
}

/* bridge + host-local, as deploy/cni/10-crisp.conflist but on this test's own bridge */
static char *bridge_plugin(const char *ipam_extra)
{
  return xasprintf("{\"type\":\"bridge\",\"bridge\":\"%s\",\"isGateway\":true,\"ipMasq\":true,"
                   "\"hairpinMode\":true,\"capabilities\":{\"ipRanges\":true},"
                   "\"ipam\":{\"type\":\"host-local\",\"routes\":[{\"dst\":\"0.0.0.0/0\"}]%s}}",
                   net_name, ipam_extra);
}

static char *static_range(void)
{
  return xasprintf(",\"ranges\":[[{\"subnet\":\"%s0/24\"}]]", subnet_prefix);
}

/* deploy/cni/10-crisp.conflist with this test's network name, bridge and subnet. */
static char *replace_once(const char *s, const char *from, const char *to)
{
  const char *at = strstr(s, from);
  cr_assert(at && !strstr(at + 1, from), "deploy config: expected one %s", from);
  return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

static void write_deploy_conflist(void)
{
  cleanup_free char *text = cnit_read("deploy/cni", "10-crisp.conflist");
  if (!text)
    cr_skip_test("deploy/cni/10-crisp.conflist not found (run from the repository root)");
  cleanup_free char *name = xasprintf("\"name\": \"%s\"", net_name);
  cleanup_free char *bridge = xasprintf("\"bridge\": \"%s\"", net_name);
  cleanup_free char *subnet = xasprintf("%s0/24", subnet_prefix);
  cleanup_free char *a = replace_once(text, "\"name\": \"crisp\"", name);
  cleanup_free char *b = replace_once(a, "\"bridge\": \"crisp0\"", bridge);
  cleanup_free char *c = replace_once(b, "10.88.0.0/16", subnet);
  cnit_write(conf, "10-live.conflist", c, 0644);
}

static void setup(void)
{
  if (geteuid() != 0 || access(DEBIAN_CNI "/bridge", X_OK) != 0 || system("iptables -V >/dev/null 2>&1") != 0)
    cr_skip_test("needs root, Debian's containernetworking-plugins and iptables");
  lock_fd = open(DEBIAN_CNI, O_RDONLY | O_DIRECTORY | O_CLOEXEC);   /* a lock that leaves no file */
  cr_assert_geq(lock_fd, 0);
  cr_assert_eq(flock(lock_fd, LOCK_EX), 0);
  cleanup_free char *fwd = cnit_read("/proc/sys/net/ipv4", "ip_forward");
  snprintf(ip_forward_was, sizeof(ip_forward_was), "%s", fwd ? fwd : "");
  nat_existed[0] = sh_ok("nft list table ip nat >/dev/null 2>&1");
  nat_existed[1] = sh_ok("nft list table ip6 nat >/dev/null 2>&1");
  hostport_chains_existed = sh_ok("iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1");
  var_lib_cni_existed = cnit_exists("/var/lib/cni");
  top = cnit_tmpdir("cni-live");
  conf = path_join(top, "conf");
  bin = path_join(top, "bin");
  cr_assert_eq(mkdir_p(conf, 0755, NULL), 0);
  cr_assert_eq(mkdir_p(bin, 0755, NULL), 0);
  net_name = xasprintf("crisp-t%d", (int)getpid());
  pod_id = xasprintf("crisptest%d", (int)getpid());
  pod_dir = xasprintf("%s/pods/%s", top, pod_id);
  lease_dir = path_join("/var/lib/cni/networks", net_name);
  subnet_prefix = free_subnet();
  struct pod_ns_opts no = {.dir = pod_dir, .hostname = "cni-live"};
  err_t *e = NULL;
  cr_assert_eq(podns_create(&no, &ns, &e), 0, "%s", e ? e->msg : "");
  bins[0] = bin;
  bins[1] = "/opt/cni/bin";
  bins[2] = DEBIAN_CNI;
  opts = (struct cni_opts){.conf_dir = conf, .bin_dirs = bins, .n_bin_dirs = 3, .timeout_s = 20};
  pod = (struct cni_pod){.id = pod_id, .name = "live", .namespace_ = "test", .uid = "uid-live",
                         .netns = ns.netns_path, .dir = pod_dir};
}

/* Rules that carry this pod's id (bridge's ipMasq, portmap's DNAT), and their chains;
 * only needed when a test failed before its DEL. */
static void remove_own_iptables(void)
{
  cleanup_free char *cmd = xasprintf(
      "rules=$(iptables-save -t nat 2>/dev/null | grep -F -- '%s');"
      "chains=$(printf '%%s\\n' \"$rules\" | sed -n 's/.*-j \\(CNI-[A-Za-z0-9-]*\\).*/\\1/p' |"
      "  grep -v HOSTPORT | sort -u);"
      "printf '%%s\\n' \"$rules\" | while read -r op rule; do"
      "  [ -n \"$op\" ] && eval iptables -w -t nat -D \"$rule\"; done;"
      "for c in $chains; do iptables -w -t nat -F $c; iptables -w -t nat -X $c; done; true",
      pod_id);
  if (system(cmd) != 0)
    cr_log_warn("iptables cleanup for %s failed", pod_id);
}

/* portmap creates CNI-HOSTPORT-* and jumps to them once per node and never removes
 * them; if this test made them and nothing uses them now, they go. */
static void remove_hostport_chains(void)
{
  if (hostport_chains_existed || !sh_ok("iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1"))
    return;
  cleanup_free char *dnat = cnit_sh("iptables -w -t nat -S CNI-HOSTPORT-DNAT");
  if (strstr(dnat, "-A CNI-HOSTPORT-DNAT"))
    return;
  int rc = system("iptables-save -t nat | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-' |"
                  "  while read -r op rule; do eval iptables -w -t nat -D \"$rule\"; done;"
                  "for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do"
                  "  iptables -w -t nat -F $c 2>/dev/null; iptables -w -t nat -X $c 2>/dev/null; done; true");
  if (rc != 0)
    cr_log_warn("removing CNI-HOSTPORT chains failed");
}

/* iptables-nft makes nftables "ip nat" and "ip6 nat" tables for the plugins' rules; a
 * host that had none gets none back once no rule or chain of anyone's is left in them. */
static void remove_nat_tables(void)
{
  const char *fam[] = {"ip", "ip6"}, *save[] = {"iptables-save", "ip6tables-save"};
  for (int i = 0; i < 2; i++) {
    if (nat_existed[i] || !sh_ok("nft list table %s nat >/dev/null 2>&1", fam[i]))
      continue;
    cleanup_free char *nat = cnit_sh("%s -t nat 2>/dev/null | grep -E '^(-A|:CNI)' || true", save[i]);
    if (!*nat && !sh_ok("nft delete table %s nat", fam[i]))
      cr_log_warn("could not remove the empty %s nat table", fam[i]);
  }
}

static void write_proc(const char *path, const char *val)
{
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, val, strlen(val)) < 0)
    cr_log_warn("restore %s: %s", path, strerror(errno));
}

static void teardown(void)
{
  err_t *e = NULL;
  if (pod_dir) {
    cni_del(&opts, &pod, &e);
    err_free(&e);
    podns_destroy(pod_dir, &e);
    err_free(&e);
    podns_clear(&ns);
    remove_own_iptables();
    cleanup_free char *br = xasprintf("/sys/class/net/%s", net_name);
    if (cnit_exists(br))
      sh_ok("ip link del %s", net_name);
    rm_rf(lease_dir, &e);
    err_free(&e);
    if (!var_lib_cni_existed)
      (void)(rmdir("/var/lib/cni/networks") == 0 && rmdir("/var/lib/cni") == 0);
    remove_hostport_chains();
    remove_nat_tables();
    if (*ip_forward_was)
      write_proc("/proc/sys/net/ipv4/ip_forward", ip_forward_was);
    rm_rf(top, &e);
    err_free(&e);
  }
  char **all[] = {&top, &conf, &bin, &pod_dir, &net_name, &pod_id, &subnet_prefix, &lease_dir};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    free(*all[i]);
    *all[i] = NULL;
  }
  if (lock_fd >= 0)
    close(lock_fd);
  lock_fd = -1;
}

TestSuite(cni_live, .init = setup, .fini = teardown, .timeout = 120);

/* --- inside the pod ------------------------------------------------------------------- */

typedef void (*probe_fn)(struct buf *out);

static void probe_eth0_addr(struct buf *out)
{
  cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq r = {0};
  strncpy(r.ifr_name, "eth0", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFADDR, &r) < 0)
    return;
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&r.ifr_addr)->sin_addr, ip, sizeof(ip));
  buf_puts(out, ip);
}

static void probe_links(struct buf *out)
{
  struct if_nameindex *ifs = if_nameindex();
  for (struct if_nameindex *i = ifs; i && i->if_index; i++)
    buf_printf(out, "%s%s", out->len ? " " : "", i->if_name);
  if_freenameindex(ifs);
}

static void enter_pod(void)
{
  int fd = open(ns.netns_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
    _exit(1);
  close(fd);
}

/* What probe saw from inside the pod's network namespace (caller frees). */
static char *in_pod(probe_fn probe)
{
  int p[2];
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    enter_pod();
    struct buf b = BUF_INIT;
    probe(&b);
    _exit(fd_write_all(p[1], buf_str(&b), b.len, NULL) == 0 ? 0 : 1);
  }
  close(p[1]);
  char *raw = NULL;
  err_t *e = NULL;
  cr_assert_eq(fd_read_all(p[0], 1 << 16, &raw, NULL, &e), 0);
  close(p[0]);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "could not enter the pod");
  return raw;
}

/* A TCP server on POD_PORT inside the pod, answering "hello <n>" to n connections. */
static pid_t serve_in_pod(int n)
{
  int ready[2];
  cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    enter_pod();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(POD_PORT)};
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0)
      _exit(1);
    if (write(ready[1], "r", 1) != 1)
      _exit(1);
    for (int i = 1; i <= n; i++) {
      int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
      char msg[32];
      int len = snprintf(msg, sizeof(msg), "hello %d", i);
      if (c < 0 || write(c, msg, (size_t)len) != len)
        _exit(1);
      close(c);
    }
    _exit(0);
  }
  close(ready[1]);
  char r = 0;
  cr_assert_eq(read(ready[0], &r, 1), 1, "the pod's server did not start");
  close(ready[0]);
  return pid;
}

static void stop(pid_t pid)
{
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* Connects to ip:port from the host; the first bytes the peer sent, or NULL. */
static char *fetch(const char *ip, int port)
{
  cleanup_close int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {.tv_sec = 3};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
    return NULL;
  char buf[64] = "";
  ssize_t n = read(s, buf, sizeof(buf) - 1);
  return n > 0 ? xstrndup(buf, (size_t)n) : NULL;
}

/* --- checks on the host ------------------------------------------------------------------ */

static size_t bridge_ports(void)
{
  cleanup_free char *dir = xasprintf("/sys/class/net/%s/brif", net_name);
  cleanup_closedir DIR *d = opendir(dir);
  size_t n = 0;
  for (struct dirent *de; d && (de = readdir(d));)
    n += de->d_name[0] != '.';
  return n;
}

/* IP-named files in host-local's lease dir (its lock and last_reserved_ip.0 stay). */
static size_t leases(void)
{
  cleanup_closedir DIR *d = opendir(lease_dir);
  size_t n = 0;
  unsigned char raw[16];
  for (struct dirent *de; d && (de = readdir(d));)
    n += inet_pton(AF_INET, de->d_name, raw) == 1;
  return n;
}

static bool iptables_mention_pod(void)
{
  cleanup_free char *rules = cnit_sh("iptables-save 2>/dev/null");
  return strstr(rules, pod_id) != NULL;
}

static void assert_nothing_left(void)
{
  cr_assert_eq(bridge_ports(), 0, "the veth is gone");
  cr_assert_eq(leases(), 0, "the IPAM lease is released");
  cleanup_free char *links = in_pod(probe_links);
  cr_assert_str_eq(links, "lo", "only lo is left in the pod");
  cr_assert_not(iptables_mention_pod(), "no iptables rule for the pod is left");
  cleanup_free char *cache = path_join(pod_dir, CNI_CACHE_FILE);
  cr_assert_not(cnit_exists(cache));
}

static void add(struct cni_result *r)
{
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_not_null(r->ip4);
  cr_assert(strncmp(r->ip4, subnet_prefix, strlen(subnet_prefix)) == 0, "%s not in %s0/24", r->ip4,
            subnet_prefix);
}

/* --- tests --------------------------------------------------------------------------------- */

Test(cni_live, bridge_gives_the_pod_a_reachable_address_and_del_leaves_nothing)
{
  cleanup_free char *range = static_range();
  cleanup_free char *br = bridge_plugin(range);
  write_conflist(br);
  struct cni_result r = {0};
  add(&r);
  cr_assert_str_eq(r.iface, "eth0");
  cleanup_free char *inside = in_pod(probe_eth0_addr);
  cr_assert_str_eq(inside, r.ip4, "eth0 inside the pod holds the address");
  cleanup_free char *links = in_pod(probe_links);
  cr_assert_str_eq(links, "lo eth0");
  cleanup_free char *lease = cnit_read(lease_dir, r.ip4);
  cr_assert(lease && strstr(lease, pod_id), "host-local leased %s to the pod", r.ip4);
  cr_assert_eq(bridge_ports(), 1);
  cr_assert(iptables_mention_pod(), "bridge's ipMasq rule names the pod");

  pid_t srv = serve_in_pod(1);
  cleanup_free char *got = fetch(r.ip4, POD_PORT);
  stop(srv);
  cr_assert_str_eq(got ? got : "(nothing)", "hello 1", "the host reaches the pod at %s", r.ip4);

  err_t *e = NULL;
  cr_assert_eq(cni_check(&opts, &pod, &e), 0, "%s", e ? e->msg : "");

  /* DEL as after a crispd restart with the config gone: all from the cache */
  cleanup_free char *cfg = path_join(conf, "10-live.conflist");
  cr_assert_eq(unlink(cfg), 0);
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  assert_nothing_left();
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "twice: %s", e ? e->msg : "");
  write_conflist(br);
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "without a cache, with the config: %s", e ? e->msg : "");
  assert_nothing_left();
  cni_result_clear(&r);
}

static int free_host_port(void)
{
  cleanup_close int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof(a);
  cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
  return ntohs(a.sin_port);
}

/* The host's first global IPv4 address outside this test's bridge, or NULL. */
static char *host_ip(void)
{
  cleanup_free char *cmd = xasprintf("ip -o -4 addr show scope global | grep -v ' %s ' | "
                                     "awk '{print $4}' | cut -d/ -f1 | head -n1", net_name);
  char *ip = cnit_sh("%s", cmd);
  ip[strcspn(ip, "\n")] = '\0';
  if (!*ip) {
    free(ip);
    return NULL;
  }
  return ip;
}

Test(cni_live, deploy_config_forwards_a_host_port_to_the_pod_until_del)
{
  write_deploy_conflist();             /* bridge + host-local + portmap, as shipped */
  int hport = free_host_port();
  struct cni_port pm = {hport, POD_PORT, "TCP", NULL};
  pod.ports = &pm;
  pod.n_ports = 1;
  struct cni_result r = {0};
  add(&r);
  cr_assert(iptables_mention_pod(), "portmap's DNAT rule names the pod");

  cleanup_free char *gw = xasprintf("%s1", subnet_prefix);
  cleanup_free char *hip = host_ip();
  pid_t srv = serve_in_pod(3);
  cleanup_free char *via_gw = fetch(gw, hport);
  cleanup_free char *via_host = hip ? fetch(hip, hport) : xstrdup("hello 2");
  cleanup_free char *via_lo = fetch("127.0.0.1", hport);
  stop(srv);
  cr_assert_str_eq(via_gw ? via_gw : "(nothing)", "hello 1", "%s:%d reaches the pod", gw, hport);
  cr_assert_str_eq(via_host ? via_host : "(nothing)", "hello 2", "%s:%d reaches the pod", hip, hport);
  cr_assert_str_eq(via_lo ? via_lo : "(nothing)", "hello 3", "127.0.0.1:%d reaches the pod (snat)", hport);

  err_t *e = NULL;
  /* no CHECK here: Debian's portmap 1.1.1 fails it for a pod without IPv6 (it checks
   * its ip6tables chain regardless) */
  /* a restarted crispd may not know the ports: the cache does */
  pod.ports = NULL;
  pod.n_ports = 0;
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  assert_nothing_left();
  srv = serve_in_pod(1);
  cleanup_free char *after = fetch(gw, hport);
  stop(srv);
  cr_assert_null(after, "the host port no longer forwards");
  cni_result_clear(&r);
}

Test(cni_live, pod_cidr_reaches_host_local_as_ip_ranges)
{
  cleanup_free char *br = bridge_plugin("");
  write_conflist(br);
  cleanup_free char *cidr = xasprintf("%s0/24", subnet_prefix);
  pod.pod_cidr = cidr;
  struct cni_result r = {0};
  add(&r);
  err_t *e = NULL;
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  assert_nothing_left();
  cni_result_clear(&r);

  /* no range in the config and no pod CIDR: host-local refuses, and refuses the
   * rollback's DEL the same way, so the cache stays for cni_del (which keeps failing
   * while this config is cached: the operator's way out is removing the cache file) */
  pod.pod_cidr = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert(strstr(e->msg, "CNI plugin bridge (ADD) failed") && strstr(e->msg, "no IP ranges specified") &&
                strstr(e->msg, "undoing it failed too"),
            "%s", e->msg);
  err_free(&e);
  cr_assert_eq(leases(), 0);
  cr_assert_eq(cni_del(&opts, &pod, &e), -1);
  err_free(&e);
  cleanup_free char *cache = path_join(pod_dir, CNI_CACHE_FILE);
  cr_assert_eq(unlink(cache), 0);
}

Test(cni_live, failing_plugin_after_bridge_leaves_no_veth_or_lease)
{
  cnit_write(bin, "crisp-fail",
             "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
             "echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"refused by the test\"}'\nexit 1\n",
             0755);
  cleanup_free char *range = static_range();
  cleanup_free char *br = bridge_plugin(range);
  cleanup_free char *plugins = xasprintf("%s,{\"type\":\"crisp-fail\"}", br);
  write_conflist(plugins);
  err_t *e = NULL;
  struct cni_result r = {0};
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cr_assert(strstr(e->msg, "CNI plugin crisp-fail (ADD) failed (code 100): refused by the test"), "%s", e->msg);
  err_free(&e);
  cr_assert_null(r.ip4);
  assert_nothing_left();
}

