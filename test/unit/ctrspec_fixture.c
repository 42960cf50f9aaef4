/* ctrspec_fixture.c - see ctrspec_fixture.h. */
#include "ctrspec_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/file.h"
#include "base/xalloc.h"

char cs_dir[64];
struct cs_fx cs;
err_t *cs_err;
static struct ctr_spec *built;

static char *ep[] = {"/bin/entry", NULL};
static char *cmd[] = {"serve", "--port=80", NULL};
static char *env[] = {"PATH=/image/bin", "LANG=C.UTF-8", NULL};

static void init_messages(void)
{
  cs.cfg = (Runtime__V1__ContainerConfig)RUNTIME__V1__CONTAINER_CONFIG__INIT;
  cs.md = (Runtime__V1__ContainerMetadata)RUNTIME__V1__CONTAINER_METADATA__INIT;
  cs.linux = (Runtime__V1__LinuxContainerConfig)RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
  cs.sc = (Runtime__V1__LinuxContainerSecurityContext)
      RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
  cs.nso = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
  cs.caps = (Runtime__V1__Capability)RUNTIME__V1__CAPABILITY__INIT;
  cs.seccomp = (Runtime__V1__SecurityProfile)RUNTIME__V1__SECURITY_PROFILE__INIT;
  cs.pod_cfg = (Runtime__V1__PodSandboxConfig)RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  cs.pod_linux = (Runtime__V1__LinuxPodSandboxConfig)RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
  cs.pod_sc = (Runtime__V1__LinuxSandboxSecurityContext)
      RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
  cs.md.name = "app";
  cs.cfg.metadata = &cs.md;
  cs.cfg.log_path = "app/0.log";
  cs.cfg.linux = &cs.linux;
  cs.linux.security_context = &cs.sc;
  cs.sc.namespace_options = &cs.nso;
  cs.nso.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  cs.pod_cfg.linux = &cs.pod_linux;
  cs.pod_linux.security_context = &cs.pod_sc;
}

static void init_pod_and_image(void)
{
  cs.pod = (struct ctrspec_pod){
      .id = "pod1",
      .hostname = "web-0",
      .log_directory = "/var/log/pods/ns_web-0_uid",
      .cgroup_parent = "/kubepods/besteffort/poduid",
      .hostname_path = "/run/crisp/pods/pod1/hostname",
      .hosts_path = "/run/crisp/pods/pod1/hosts",
      .resolv_path = "/run/crisp/pods/pod1/resolv.conf",
      .shm_path = "/run/crisp/pods/pod1/shm",
      .netns_path = "/run/crisp/pods/pod1/ns/net",
      .ipcns_path = "/run/crisp/pods/pod1/ns/ipc",
      .utsns_path = "/run/crisp/pods/pod1/ns/uts",
  };
  cs.ic.entrypoint = (struct image_strv){ep, 1};
  cs.ic.cmd = (struct image_strv){cmd, 2};
  cs.ic.env = (struct image_strv){env, 2};
  for (int i = 0; i < CS_LAYERS; i++) {
    cs.layer_dirs[i] = xasprintf("%s/L%d", cs_dir, i);
    cr_assert_eq(mkdir(cs.layer_dirs[i], 0755), 0);
  }
  cs.img = (struct ctrspec_image){"sha256:img", &cs.ic, (const char *const *)cs.layer_dirs,
                                  CS_LAYERS};
  cs.paths = (struct ctrspec_paths){"c0ffee", "/run/crisp/containers/c0ffee",
                                    "/var/lib/crisp/containers/c0ffee/upper",
                                    "/var/lib/crisp/containers/c0ffee/work"};
}

void cs_setup(void)
{
  snprintf(cs_dir, sizeof(cs_dir), "/tmp/crisp-ctrspec-XXXXXX");
  cr_assert_not_null(mkdtemp(cs_dir));
  memset(&cs, 0, sizeof(cs));
  init_messages();
  init_pod_and_image();
}

void cs_teardown(void)
{
  spec_free(built);
  built = NULL;
  err_free(&cs_err);
  for (int i = 0; i < CS_LAYERS; i++)
    free(cs.layer_dirs[i]);
  err_t *e = NULL;
  rm_rf(cs_dir, &e);
  err_free(&e);
}

struct ctr_spec *cs_build(void)
{
  spec_free(built);
  built = NULL;
  err_free(&cs_err);
  if (ctrspec_build(&cs.cfg, &cs.pod_cfg, &cs.pod, &cs.img, &cs.paths, &built, &cs_err) < 0) {
    cr_assert_null(built);
    cr_assert_not_null(cs_err);
    return NULL;
  }
  cr_assert_null(cs_err);
  return built;
}

void cs_build_fails(enum err_code code, const char *needle)
{
  cr_assert_null(cs_build(), "ctrspec_build succeeded; expected \"%s\"", needle);
  cr_assert_eq(cs_err->code, code, "code %d, message: %s", cs_err->code, cs_err->msg);
  cr_assert(strstr(cs_err->msg, needle), "message \"%s\" lacks \"%s\"", cs_err->msg, needle);
}

const char *cs_path(const char *rel)
{
  static char buf[512];
  int n = snprintf(buf, sizeof(buf), "%s/%s", cs_dir, rel);
  cr_assert(n > 0 && (size_t)n < sizeof(buf));
  return buf;
}

static char *layer_path(int layer, const char *rel)
{
  cr_assert(layer >= 0 && layer < CS_LAYERS);
  char *p = xasprintf("%s/%s", cs.layer_dirs[layer], rel);
  char *slash = strrchr(p, '/');
  *slash = '\0';
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(p, 0755, &e), 0);
  *slash = '/';
  return p;
}

void cs_put(int layer, const char *rel, const char *content)
{
  char *p = layer_path(layer, rel);
  FILE *f = fopen(p, "we");
  cr_assert_not_null(f, "%s: %s", p, strerror(errno));
  fputs(content, f);
  fclose(f);
  free(p);
}

void cs_whiteout(int layer, const char *rel)
{
  char *p = layer_path(layer, rel);
  cr_assert_eq(mknod(p, S_IFCHR | 0600, makedev(0, 0)), 0, "mknod %s: %s", p, strerror(errno));
  free(p);
}

void cs_opaque_dir(int layer, const char *rel)
{
  char *p = layer_path(layer, rel);
  cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
  cr_assert_eq(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0, "setxattr %s: %s", p,
               strerror(errno));
  free(p);
}

void cs_symlink(int layer, const char *rel, const char *target)
{
  char *p = layer_path(layer, rel);
  cr_assert_eq(symlink(target, p), 0);
  free(p);
}
