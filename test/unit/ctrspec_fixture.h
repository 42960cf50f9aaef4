/* ctrspec_fixture.h - a CreateContainer request, pod and image for the ctrspec tests.
 *
 * cs_setup makes a temp dir with three empty image layers (L0 bottom .. L2 top) and a
 * fixture whose messages are linked together (cfg.linux.security_context = sc, ...) so
 * a test changes one field and calls cs_build. cs_teardown deletes the dir.
 */
#ifndef CRISP_TEST_CTRSPEC_FIXTURE_H
#define CRISP_TEST_CTRSPEC_FIXTURE_H

#include <criterion/criterion.h>

#include "cri/ctrspec.h"

#define CS_LAYERS 3

struct cs_fx {
  Runtime__V1__ContainerConfig cfg;
  Runtime__V1__ContainerMetadata md;
  Runtime__V1__LinuxContainerConfig linux;
  Runtime__V1__LinuxContainerSecurityContext sc;
  Runtime__V1__NamespaceOption nso;
  Runtime__V1__Capability caps;
  Runtime__V1__SecurityProfile seccomp;
  Runtime__V1__PodSandboxConfig pod_cfg;
  Runtime__V1__LinuxPodSandboxConfig pod_linux;
  Runtime__V1__LinuxSandboxSecurityContext pod_sc;
  struct ctrspec_pod pod;
  struct image_config ic;
  struct ctrspec_image img;
  struct ctrspec_paths paths;
  char *layer_dirs[CS_LAYERS];
};

#define CS_TEST(suite, name) Test(suite, name, .init = cs_setup, .fini = cs_teardown)

extern char cs_dir[64];      /* the temp dir */
extern struct cs_fx cs;      /* reset by cs_setup */

void cs_setup(void);
void cs_teardown(void);

/* ctrspec_build on the fixture; the spec is freed by cs_teardown. NULL on error,
 * with the error in cs_err (freed by cs_teardown). */
struct ctr_spec *cs_build(void);
extern err_t *cs_err;
/* Asserts cs_build fails with code and a message holding needle. */
void cs_build_fails(enum err_code code, const char *needle);

/* Files in layer i (0 = bottom): content, a 0:0 whiteout, an opaque dir, a symlink. */
void cs_put(int layer, const char *rel, const char *content);
void cs_whiteout(int layer, const char *rel);
void cs_opaque_dir(int layer, const char *rel);
void cs_symlink(int layer, const char *rel, const char *target);
/* cs_dir + "/" + rel in a static buffer (valid until the next call). */
const char *cs_path(const char *rel);

#endif
