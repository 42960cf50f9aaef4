/* libFuzzer target: CRI requests as crispd's handlers receive them, without a daemon.
 * The first byte picks the method; the rest is the protobuf body. Each is decoded
 * with protobuf-c and passed through request_check, as methods.c does. What passes
 * goes one layer deeper, as far as nothing starts a process:
 *   CreateContainerRequest  -> ctrspec_build (the container spec), spec_write and
 *                              spec_read (the file crisp-monitor reads back),
 *   UpdateContainerResourcesRequest -> ctrspec_resources,
 *   RunPodSandboxRequest    -> the hostname check and every sysctl's resolution.
 * Any input must end in a clean error or a result: no crash, no leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cri/api.pb-c.h"
#include "cri/ctrspec.h"
#include "cri/request_check.h"
#include "image/manifest.h"
#include "net/podfiles.h"
#include "net/sysctl_ns.h"
#include "runtimes/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const methods[] = {
    &runtime__v1__create_container_request__descriptor,
    &runtime__v1__run_pod_sandbox_request__descriptor,
    &runtime__v1__update_container_resources_request__descriptor,
    &runtime__v1__exec_sync_request__descriptor,
    &runtime__v1__exec_request__descriptor,
    &runtime__v1__attach_request__descriptor,
    &runtime__v1__port_forward_request__descriptor,
    &runtime__v1__list_containers_request__descriptor,
    &runtime__v1__list_pod_sandbox_request__descriptor,
    &runtime__v1__pull_image_request__descriptor,
    &runtime__v1__stop_container_request__descriptor,
    &runtime__v1__update_runtime_config_request__descriptor,
    &runtime__v1__list_container_stats_request__descriptor,
    &runtime__v1__reopen_container_log_request__descriptor,
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static char spec_path[] = "/tmp/crisp-fuzz-spec-XXXXXX";

static void remove_scratch(void) { unlink(spec_path); }

static void create_container(const Runtime__V1__CreateContainerRequest *r)
{
  static char *ep[] = {"/bin/sh"};
  struct image_config ic = {.entrypoint = {ep, 1}};
  struct ctrspec_image img = {.id = "sha256:00", .config = &ic};
  struct ctrspec_pod pod = {
      .id = "p", .hostname = "h", .log_directory = "/var/log/pods/x",
      .cgroup_parent = r->sandbox_config && r->sandbox_config->linux
                           ? r->sandbox_config->linux->cgroup_parent : "",
      .hostname_path = "/run/x/hostname", .hosts_path = "/run/x/hosts",
      .resolv_path = "/run/x/resolv.conf", .shm_path = "/run/x/shm",
      .netns_path = "/run/x/net", .ipcns_path = "/run/x/ipc", .utsns_path = "/run/x/uts",
      .pidns_path = "/run/x/pid",
      /* both drivers' parent checks and names, picked by an input bit */
      .cgroup_driver = r->config && r->config->metadata && (r->config->metadata->attempt & 1)
                           ? CGROUP_DRIVER_SYSTEMD : CGROUP_DRIVER_CGROUPFS};
  struct ctrspec_paths paths = {"c", "/run/x/c", "/var/lib/x/upper", "/var/lib/x/work"};
  struct ctr_spec *s = NULL, *back = NULL;
  err_t *e = NULL;
  if (ctrspec_build(r->config, r->sandbox_config, &pod, &img, &paths, &s, &e) == 0) {
    static int fd = -1;
    if (fd < 0) {
      if ((fd = mkstemp(spec_path)) < 0)
        abort();
      atexit(remove_scratch);
    }
    if (spec_write(s, spec_path, &e) < 0 || spec_read(spec_path, &back, &e) < 0)
      { fprintf(stderr, "spec roundtrip: %s\n", e->msg); abort(); }   /* what crispd writes, the monitor must read */
    spec_free(back);
    spec_free(s);
  } else if (!e) {
    abort();
  }
  err_free(&e);
}

static void run_pod(const Runtime__V1__RunPodSandboxRequest *r)
{
  err_t *e = NULL;
  if (!r->config)
    return;
  if (podfiles_check_hostname(r->config->hostname, &e) < 0 && !e)
    abort();
  err_free(&e);
  const Runtime__V1__LinuxPodSandboxConfig *l = r->config->linux;
  for (size_t i = 0; l && i < l->n_sysctls; i++) {
    struct sysctl_kv kv = {l->sysctls[i]->key, l->sysctls[i]->value};
    enum sysctl_ns ns;
    char *path = NULL;
    if (sysctl_ns_resolve(&kv, &ns, &path, &e) == 0)
      free(path);
    err_free(&e);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const ProtobufCMessageDescriptor *d = methods[data[0] % N_METHODS];
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
  if (!m)
    return 0;
  err_t *e = NULL;
  if (request_check(m, data + 1, size - 1, &e) == 0) {
    if (d == &runtime__v1__create_container_request__descriptor)
      create_container((const Runtime__V1__CreateContainerRequest *)m);
    else if (d == &runtime__v1__run_pod_sandbox_request__descriptor)
      run_pod((const Runtime__V1__RunPodSandboxRequest *)m);
    else if (d == &runtime__v1__update_container_resources_request__descriptor) {
      const Runtime__V1__UpdateContainerResourcesRequest *u = (const void *)m;
      struct resources res = {0};
      if (u->linux && ctrspec_resources(u->linux, &res, &e) == 0)
        resources_clear(&res);
    }
  } else if (!e || e->code != ERR_INVALID) {
    abort();
  }
  err_free(&e);
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
