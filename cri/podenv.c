/* podenv.c - a pod's host-side pieces: its namespaces (net/podns), the files its
 * containers bind-mount (net/podfiles), and what a container needs to know of them.
 * Everything lives under <state>/pods/<id>, so it is found again after a restart. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/ctrspec.h"
#include "cri/internal.h"
#include "net/cni.h"
#include "net/podfiles.h"
#include "net/podns.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"

char *podenv_dir(struct cri *d, const char *id)
{
  return xasprintf("%s/pods/%s", d->cfg.state, id);
}

/* The pod's CNI cache is on the disk, under the root: after a reboot the state dir and
 * the network namespaces are gone, but the plugins still hold what ADD gave the pod
 * (host-local's leases are on the disk), and only a DEL from this cache gives it back,
 * as containerd's libcni cache in /var/lib/cni does. */
static char *cni_cache_dir(struct cri *d, const char *id)
{
  return xasprintf("%s/pods/%s", d->cfg.root, id);
}

static const Runtime__V1__NamespaceOption *ns_opts(const Runtime__V1__PodSandboxConfig *cfg)
{
  const Runtime__V1__LinuxSandboxSecurityContext *sc = cfg->linux ? cfg->linux->security_context : NULL;
  return sc ? sc->namespace_options : NULL;
}

/* CRI's zero value is POD, so a pod that says nothing shares its pid namespace, as
 * containerd does; kubelet says CONTAINER unless shareProcessNamespace is set. */
static void ns_modes(const Runtime__V1__PodSandboxConfig *cfg, bool *host_net, bool *host_ipc,
                     bool *host_pid, bool *shared_pid)
{
  const Runtime__V1__NamespaceOption *o = ns_opts(cfg);
  *host_net = o && o->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
  *host_ipc = o && o->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
  *host_pid = o && o->pid == RUNTIME__V1__NAMESPACE_MODE__NODE;
  *shared_pid = !o || o->pid == RUNTIME__V1__NAMESPACE_MODE__POD;
}

void podenv_cni_opts(struct cri *d, struct cni_opts *o)
{
  *o = (struct cni_opts){d->cfg.cni_conf_dir, d->cfg.cni_bin_dirs.v, d->cfg.cni_bin_dirs.n, 0};
}

static const char *proto_name(Runtime__V1__Protocol p)
{
  switch (p) {
  case RUNTIME__V1__PROTOCOL__UDP: return "udp";
  case RUNTIME__V1__PROTOCOL__SCTP: return "sctp";
  case RUNTIME__V1__PROTOCOL__TCP: break;
  case _RUNTIME__V1__PROTOCOL_IS_INT_SIZE: break;
  }
  return "tcp";
}

static void cni_pod_of(struct cri *d, const char *id, const Runtime__V1__PodSandboxConfig *cfg,
                       const char *dir, const char *netns, struct cni_port *ports,
                       const struct dns_conf *dns, char *cidr, struct cni_pod *out)
{
  for (size_t i = 0; i < cfg->n_port_mappings; i++) {
    const Runtime__V1__PortMapping *m = cfg->port_mappings[i];
    ports[i] = (struct cni_port){m->host_port, m->container_port, proto_name(m->protocol), m->host_ip};
  }
  (void)d;
  *out = (struct cni_pod){.id = id, .name = cfg->metadata->name,
                          .namespace_ = cfg->metadata->namespace_, .uid = cfg->metadata->uid,
                          .netns = netns, .dir = dir, .ports = ports,
                          .n_ports = cfg->n_port_mappings, .dns = dns, .pod_cidr = cidr};
}

/* CNI ADD for a pod with its own network namespace; the addresses go to ip4 and ip6 and into
 * the pod's hosts file. A failing plugin leaves nothing (cni_add undoes itself). */
static int network_up(struct cri *d, const char *id, const Runtime__V1__PodSandboxConfig *cfg,
                      const char *dir, const struct dns_conf *dns, char **ip4, char **ip6, err_t **e)
{
  struct pod_ns ns = {0};
  if (podns_load(dir, &ns, e) < 0)
    return -1;
  pthread_mutex_lock(&d->mu);
  cleanup_free char *cidr = xstrdup(d->pod_cidr);
  pthread_mutex_unlock(&d->mu);
  cleanup_free struct cni_port *ports = xcalloc(cfg->n_port_mappings + 1, sizeof(*ports));
  struct cni_opts o;
  struct cni_pod p;
  podenv_cni_opts(d, &o);
  cleanup_free char *cache_dir = cni_cache_dir(d, id);
  cni_pod_of(d, id, cfg, cache_dir, ns.netns_path, ports, dns, cidr, &p);
  struct cni_result r = {0};
  int rc = cni_add(&o, &p, &r, e);
  podns_clear(&ns);
  if (rc < 0)
    return err_wrap(e, "pod network (CNI)");
  *ip4 = xstrdup(r.ip4 ? r.ip4 : "");
  *ip6 = xstrdup(r.ip6 ? r.ip6 : "");
  cni_result_clear(&r);
  char *ips[2];
  size_t n = 0;
  if (**ip4)
    ips[n++] = *ip4;
  if (**ip6)
    ips[n++] = *ip6;
  struct pod_files f = {.hostname = cfg->hostname, .pod_ips = ips, .n_pod_ips = n, .dns = dns,
                        .shm = false};
  return podfiles_write_hosts(dir, &f, e);
}

int podenv_create(struct cri *d, const char *id, const Runtime__V1__PodSandboxConfig *cfg,
                  const struct rt_handler *h, char **ip4, char **ip6, err_t **e)
{
  (void)h;
  *ip4 = *ip6 = NULL;
  cleanup_free char *dir = podenv_dir(d, id);
  bool host_net, host_ipc, host_pid, shared_pid;
  ns_modes(cfg, &host_net, &host_ipc, &host_pid, &shared_pid);
  size_t n_sys = cfg->linux ? cfg->linux->n_sysctls : 0;
  cleanup_free struct sysctl_kv *sys = xcalloc(n_sys + 1, sizeof(*sys));
  for (size_t i = 0; i < n_sys; i++)
    sys[i] = (struct sysctl_kv){cfg->linux->sysctls[i]->key, cfg->linux->sysctls[i]->value};
  struct pod_ns_opts o = {.dir = dir, .hostname = cfg->hostname, .host_net = host_net,
                          .host_ipc = host_ipc, .shared_pid = shared_pid && !host_pid,
                          .sysctls = sys, .n_sysctls = n_sys};
  struct pod_ns ns __attribute__((cleanup(podns_clear))) = {0};
  if (mkdir_p(dir, 0711, e) < 0 || podns_create(&o, &ns, e) < 0)
    return -1;
  /* the pause process (a shared PID namespace) goes where containerd's sandbox does */
  if (ns.infra_pid &&
      cgroup_pod_enter(d->cfg.cgroup_driver, cfg->linux ? cfg->linux->cgroup_parent : NULL, id,
                       ns.infra_pid, e) < 0)
    return -1;
  struct dns_conf dns = {0};
  if (cfg->dns_config)
    dns = (struct dns_conf){cfg->dns_config->servers, cfg->dns_config->n_servers,
                            cfg->dns_config->searches, cfg->dns_config->n_searches,
                            cfg->dns_config->options, cfg->dns_config->n_options};
  struct pod_files f = {.hostname = cfg->hostname, .dns = &dns, .shm = !host_ipc};
  if (podfiles_write(dir, &f, e) < 0)
    return -1;
  if (host_net) {  /* a hostNetwork pod has the node's addresses and skips CNI */
    *ip4 = xstrdup("");
    *ip6 = xstrdup("");
    return 0;
  }
  return network_up(d, id, cfg, dir, &dns, ip4, ip6, e);
}

/* CNI DEL from the pod's cache: idempotent, works after a restart or a reboot, and is a
 * no-op for a pod that never had networking. An older crispd kept the cache in the
 * pod's state dir (dir), so one found there is used too. */
static int network_down(struct cri *d, const char *id, const char *dir, err_t **e)
{
  struct cni_opts o;
  podenv_cni_opts(d, &o);
  cleanup_free char *cache_dir = cni_cache_dir(d, id);
  struct cni_pod p = {.id = id, .dir = cache_dir, .name = "", .namespace_ = "", .uid = ""};
  cleanup_free char *cache = path_join(cache_dir, CNI_CACHE_FILE);
  cleanup_free char *old_cache = path_join(dir, CNI_CACHE_FILE);
  if (access(cache, F_OK) < 0) {
    if (access(old_cache, F_OK) < 0)
      return 0;
    p.dir = dir;
  }
  if (cni_del(&o, &p, e) < 0)
    return err_wrap(e, "release pod network (CNI)");
  return 0;
}

/* The pod's cgroup parent from its record; NULL without one (an orphaned state dir:
 * then only what crisp names by the pod's id alone can be found). */
static char *pod_cgroup_parent(struct cri *d, const char *id)
{
  struct pod_rec *p = NULL;
  err_t *e = NULL;
  if (objects_pod_find(d->objects, id, &p, &e) < 0)
    err_free(&e);
  char *parent = p && p->config && p->config->linux ? xstrdup(p->config->linux->cgroup_parent)
                                                    : NULL;
  pod_rec_free(p);
  return parent;
}

/* A stopped pod keeps its files (its exited containers' logs and status stay readable)
 * but gives back its namespaces, pause process and the pause process's cgroup, as
 * containerd does. */
int podenv_stop(struct cri *d, const char *id, err_t **e)
{
  cleanup_free char *dir = podenv_dir(d, id);
  cleanup_free char *parent = pod_cgroup_parent(d, id);
  if (network_down(d, id, dir, e) < 0 || podns_destroy(dir, e) < 0)
    return -1;
  if (cgroup_pod_remove_own(parent, id, e) < 0)
    return err_wrap(e, "pod cgroup");
  return 0;
}

/* The cgroups crisp made for the pod go too (cgroup_pod_remove); the parent kubelet
 * named is kubelet's. */
int podenv_destroy(struct cri *d, const char *id, err_t **e)
{
  cleanup_free char *dir = podenv_dir(d, id);
  cleanup_free char *parent = pod_cgroup_parent(d, id);
  cleanup_free char *cache_dir = cni_cache_dir(d, id);
  if (network_down(d, id, dir, e) < 0 || podns_destroy(dir, e) < 0 ||
      podfiles_remove(dir, e) < 0 || rm_rf(dir, e) < 0 || rm_rf(cache_dir, e) < 0)
    return -1;
  if (cgroup_pod_remove(parent, id, e) < 0)
    return err_wrap(e, "pod cgroup");
  return 0;
}

int podenv_describe(struct cri *d, const struct pod_rec *p, struct ctrspec_pod *out, err_t **e)
{
  memset(out, 0, sizeof(*out));
  const Runtime__V1__PodSandboxConfig *cfg = p->config;
  const struct rt_handler *h;
  if (runtimes_resolve(&d->cfg.runtimes, p->handler, &h, e) < 0)
    return err_wrap(e, "pod %s", p->id);
  cleanup_free char *dir = podenv_dir(d, p->id);
  struct pod_ns ns = {0};
  err_t *le = NULL;
  if (podns_load(dir, &ns, &le) < 0) {
    if (le->code != ERR_NOT_FOUND) {
      *e = le;
      return err_wrap(e, "pod %s namespaces", p->id);
    }
    err_free(&le);  /* a pod on the host's namespaces pins none */
  }
  bool shared_pid;
  ns_modes(cfg, &out->host_network, &out->host_ipc, &out->host_pid, &shared_pid);
  out->id = xstrdup(p->id);
  out->hostname = xstrdup(cfg->hostname);
  out->log_directory = xstrdup(cfg->log_directory);
  out->cgroup_parent = xstrdup(cfg->linux ? cfg->linux->cgroup_parent : "");
  out->cgroup_driver = d->cfg.cgroup_driver;
  out->hostname_path = path_join(dir, PODFILES_HOSTNAME);
  out->hosts_path = path_join(dir, PODFILES_HOSTS);
  out->resolv_path = path_join(dir, PODFILES_RESOLV);
  out->shm_path = out->host_ipc ? NULL : path_join(dir, PODFILES_SHM);
  out->netns_path = ns.netns_path ? xstrdup(ns.netns_path) : NULL;
  out->ipcns_path = ns.ipcns_path ? xstrdup(ns.ipcns_path) : NULL;
  out->utsns_path = ns.utsns_path ? xstrdup(ns.utsns_path) : NULL;
  out->pidns_path = ns.pidns_path ? xstrdup(ns.pidns_path) : NULL;
  out->executor = h->executor;
  out->sandbox = &h->sandbox;  /* the handler table lives as long as crispd */
  out->sandbox_kmsg = h->executor == EXECUTOR_SANDBOX ? path_join(dir, PODENV_SANDBOX_KMSG) : NULL;
  podns_clear(&ns);
  return 0;
}

void podenv_describe_clear(struct ctrspec_pod *p)
{
  const char *owned[] = {p->id, p->hostname, p->log_directory, p->cgroup_parent, p->hostname_path,
                         p->hosts_path, p->resolv_path, p->shm_path, p->netns_path, p->ipcns_path,
                         p->utsns_path, p->pidns_path, p->sandbox_kmsg};
  for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
    free((char *)owned[i]);
  memset(p, 0, sizeof(*p));
}

bool podenv_netns_lost(struct cri *d, const struct pod_rec *p)
{
  struct ctrspec_pod x;
  err_t *e = NULL;
  if (podenv_describe(d, p, &x, &e) < 0) {
    err_free(&e);
    return false;   /* not a loss this can tell; the pod's calls report the error */
  }
  bool lost = !x.host_network && !x.netns_path;
  podenv_describe_clear(&x);
  return lost;
}

/* The network namespace of container id, open, or -1 unless it runs. Its monitor
 * reaps it, so while exit.json is not written its pid is the container's: the pidfd
 * is taken between two such looks at the state, and, alive after the open, shows that
 * the pid was still the container's when its namespace was opened. */
static int ctr_netns_open(struct cri *d, const char *id)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  struct ctr_runtime_state st;
  err_t *e = NULL;
  if (monitor_state(dir, &st, &e) < 0 || !st.started || st.exited || st.pid <= 0) {
    err_free(&e);
    return -1;
  }
  cleanup_close int pidfd = pidfd_open(st.pid, 0);
  if (pidfd < 0 || monitor_state(dir, &st, &e) < 0 || st.exited) {
    err_free(&e);
    return -1;
  }
  cleanup_free char *path = xasprintf("/proc/%d/ns/net", (int)st.pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && pidfd_send_signal(pidfd, 0, NULL, 0) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* 1 if the pod's network namespace was pinned again from one of its running
 * containers, 0 if none runs, -1 if none would do (the last error in *e). */
static int repin_from_containers(struct cri *d, const char *pod_id, const char *dir, err_t **e)
{
  struct ctr_rec **v;
  size_t n;
  objects_ctr_list(d->objects, pod_id, &v, &n);
  int rc = 0;
  for (size_t i = 0; i < n && rc <= 0; i++) {
    int fd = ctr_netns_open(d, v[i]->id);
    if (fd < 0)
      continue;
    err_free(e);
    rc = podns_repin_net(dir, fd, e);
    close(fd);
  }
  ctr_rec_list_free(v, n);
  return rc;
}

/* A pod whose network namespace pin is gone while one of its containers still runs
 * (the pin was unmounted behind crispd's back, or a store from before the
 * not-ready-first order): the container is still in the pod's namespace, so the pin
 * is made again from there. Without it the CNI DEL at stop or remove runs without the
 * namespace, and the bridge plugin, which reads the addresses to unmasquerade from the
 * pod's interface, leaves the pod's masquerade chain on the node for good. What the
 * pod is recorded as does not change (a recovered one stays not ready). */
void podenv_netns_repin(struct cri *d, const struct pod_rec *p)
{
  bool host_net, host_ipc, host_pid, shared_pid;
  ns_modes(p->config, &host_net, &host_ipc, &host_pid, &shared_pid);
  if (host_net)
    return;
  cleanup_free char *dir = podenv_dir(d, p->id);
  struct pod_ns ns = {0};
  err_t *e = NULL;
  int rc = podns_load(dir, &ns, &e);
  bool skip = rc == 0 ? ns.netns_path != NULL : e->code == ERR_NOT_FOUND;
  podns_clear(&ns);
  err_free(&e);
  if (skip)
    return;
  rc = repin_from_containers(d, p->id, dir, &e);
  if (rc < 0)
    log_warn("cannot pin a pod's lost network namespace again", "pod", p->id, "error", e->msg, NULL);
  else if (rc > 0)
    log_warn("a pod's lost network namespace pin was made again from a running container", "pod",
             p->id, NULL);
  err_free(&e);
}
