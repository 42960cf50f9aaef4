/* Store check: corrupt pod and container records are reported without changing
 * anything (check-only) or moved to quarantine (repair); good ones are counted; a
 * container whose pod is gone is reported and kept. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/quarantine.h"
#include "base/xalloc.h"
#include "cri/objects.h"

static char root[] = "/tmp/crisp-objcheck-XXXXXX";

static void setup(void)
{
  cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
  err_t *e = NULL;
  rm_rf(root, &e);
  err_free(&e);
}

static void put(const char *rel, const char *text)
{
  cleanup_free char *p = path_join(root, rel);
  cleanup_free char *dir = xstrdup(p);
  *strrchr(dir, '/') = '\0';
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(dir, 0700, &e), 0);
  cr_assert_eq(file_write_atomic(p, text, strlen(text), 0600, &e), 0);
}

static bool exists(const char *rel)
{
  cleanup_free char *p = path_join(root, rel);
  return access(p, F_OK) == 0;
}

static size_t count_of(const struct store_report *r, const char *kind)
{
  for (size_t i = 0; i < r->n_counts; i++)
    if (!strcmp(r->counts[i].kind, kind))
      return r->counts[i].n;
  return 0;
}

/* a good pod and a container of a pod that does not exist, written through objects */
static void make_records(char pod[65], char ctr[65])
{
  struct objects *o = NULL;
  err_t *e = NULL;
  cr_assert_eq(objects_open(root, &o, &e), 0);
  Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
  md.name = "p", md.namespace_ = "ns", md.uid = "u";
  Runtime__V1__PodSandboxConfig pc = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  pc.metadata = &md;
  objects_new_id(pod);
  struct pod_rec p = {.id = pod, .config = &pc, .handler = "runc", .ip = "", .ip6 = ""};
  cr_assert_eq(objects_pod_add(o, &p, &e), 0);
  Runtime__V1__ContainerMetadata cm = RUNTIME__V1__CONTAINER_METADATA__INIT;
  cm.name = "c";
  Runtime__V1__ContainerConfig cc = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  cc.metadata = &cm;
  objects_new_id(ctr);
  char gone[65];
  objects_new_id(gone);
  struct ctr_rec c = {.id = ctr, .pod_id = gone, .config = &cc, .image_id = "", .image_name = "",
                      .log_path = "", .start_error = ""};
  cr_assert_eq(objects_ctr_add(o, &c, &e), 0);
  objects_close(o);
}

Test(objects_check, check_only_reports_and_changes_nothing, .init = setup, .fini = teardown)
{
  char pod[65], ctr[65];
  make_records(pod, ctr);
  put("pods/" "0000000000000000000000000000000000000000000000000000000000000000.json", "{");
  cleanup_free char *renamed = xasprintf("containers/%s.json", pod);   /* a wrong name */
  cleanup_free char *src = xasprintf("%s/containers/%s.json", root, ctr);
  cleanup_free char *copy = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(src, 1 << 20, &copy, NULL, &e), 0);
  put(renamed, copy);

  struct store_report r = {.check_only = true};
  cr_assert_eq(objects_check(root, &r, &e), 0);
  cr_assert_eq(count_of(&r, "pod"), 1);
  cr_assert_eq(count_of(&r, "container"), 1);
  cr_assert_eq(r.n_problems, 3, "got %zu", r.n_problems);   /* bad json, wrong name, orphan */
  bool orphan = false, misnamed = false;
  for (size_t i = 0; i < r.n_problems; i++) {
    cr_assert_null(r.problems[i].moved_to);
    orphan |= strstr(r.problems[i].reason, "does not exist") != NULL;
    misnamed |= strstr(r.problems[i].reason, "does not match") != NULL;
  }
  cr_assert(orphan && misnamed);
  cr_assert(!exists("quarantine"));
  store_report_clear(&r);

  r = (struct store_report){.check_only = false};
  cr_assert_eq(objects_check(root, &r, &e), 0);
  cr_assert(exists("quarantine/pod-0000000000000000000000000000000000000000000000000000000000000000.json"));
  cleanup_free char *q = xasprintf("quarantine/container-%s.json", pod);
  cr_assert(exists(q));
  store_report_clear(&r);

  /* the orphan stays (it may still be running) */
  struct objects *o = NULL;
  cr_assert_eq(objects_open(root, &o, &e), 0);
  struct ctr_rec *got = NULL;
  cr_assert_eq(objects_ctr_get(o, ctr, &got, &e), 0);
  ctr_rec_free(got);
  objects_close(o);
}

Test(objects_check, a_second_quarantine_never_replaces_the_first, .init = setup, .fini = teardown)
{
  const char *name = "pods/1111111111111111111111111111111111111111111111111111111111111111.json";
  err_t *e = NULL;
  for (int i = 0; i < 2; i++) {
    put(name, "garbage");
    struct objects *o = NULL;
    cr_assert_eq(objects_open(root, &o, &e), 0);
    objects_close(o);
  }
  cr_assert(exists("quarantine/pod-1111111111111111111111111111111111111111111111111111111111111111.json"));
  cr_assert(exists("quarantine/pod-1111111111111111111111111111111111111111111111111111111111111111.json.1"));
}
