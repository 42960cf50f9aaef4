/* ref_test.c - image reference parsing and normalisation (image/ref.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "image/ref.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIG "sha256:" HEX64

struct good_case {
  const char *in;
  const char *full;      /* image_ref_string */
  const char *familiar;  /* image_ref_familiar */
};

static const struct good_case good[] = {
  {"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
  {"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
  {"library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
  {"docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
  {"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
  {"index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
  {"index.docker.io/busybox:1", "docker.io/library/busybox:1", "busybox:1"},
  {"bitnami/redis", "docker.io/bitnami/redis:latest", "bitnami/redis:latest"},
  {"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
  {"localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"},
  {"localhost/a", "localhost/a:latest", "localhost/a:latest"},
  {"localhost", "docker.io/library/localhost:latest", "localhost:latest"},
  {"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"},
  {"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
  {"host:443/ns/name@" DIG, "host:443/ns/name@" DIG, "host:443/ns/name@" DIG},
  {"busybox@" DIG, "docker.io/library/busybox@" DIG, "busybox@" DIG},
  {"name:tag@" DIG, "docker.io/library/name:tag@" DIG, "name:tag@" DIG},
  {"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"},
  {"[fe80::1]/x:v1", "[fe80::1]/x:v1", "[fe80::1]/x:v1"},
  {"10.0.0.1:5000/x", "10.0.0.1:5000/x:latest", "10.0.0.1:5000/x:latest"},
  {"Example.COM/x", "Example.COM/x:latest", "Example.COM/x:latest"},
  {"my-registry.example.com/team/app:v1.2.3-rc_1", "my-registry.example.com/team/app:v1.2.3-rc_1",
   "my-registry.example.com/team/app:v1.2.3-rc_1"},
  {"a/b.c/d_e/f__g/h---i", "docker.io/a/b.c/d_e/f__g/h---i:latest", "a/b.c/d_e/f__g/h---i:latest"},
  {"busybox:_x", "docker.io/library/busybox:_x", "busybox:_x"},
  {"busybox:UPPER.case-ok", "docker.io/library/busybox:UPPER.case-ok",
   "busybox:UPPER.case-ok"},
};

Test(ref, normalises_every_common_form)
{
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct image_ref r;
    err_t *e = NULL;
    int rc = image_ref_parse(good[i].in, &r, &e);
    cr_assert_eq(rc, 0, "%s: %s", good[i].in, e ? e->msg : "");
    char *full = image_ref_string(&r);
    char *fam = image_ref_familiar(&r);
    cr_expect_str_eq(full, good[i].full, "input %s", good[i].in);
    cr_expect_str_eq(fam, good[i].familiar, "input %s", good[i].in);
    free(full);
    free(fam);
    image_ref_clear(&r);
  }
}

Test(ref, splits_fields_and_defaults_tag_only_without_digest)
{
  struct image_ref r;
  err_t *e = NULL;
  cr_assert_eq(image_ref_parse("localhost:5000/a/b", &r, &e), 0);
  cr_expect_str_eq(r.domain, "localhost:5000");
  cr_expect_str_eq(r.path, "a/b");
  cr_expect_str_eq(r.tag, "latest");
  cr_expect_null(r.digest);
  char *name = image_ref_name(&r);
  cr_expect_str_eq(name, "localhost:5000/a/b");
  free(name);
  image_ref_clear(&r);

  cr_assert_eq(image_ref_parse("busybox@" DIG, &r, &e), 0);
  cr_expect_null(r.tag);
  cr_expect_str_eq(r.digest, DIG);
  image_ref_clear(&r);
  cr_expect_null(r.domain);
  image_ref_clear(&r); /* twice is harmless */
}

struct bad_case {
  const char *in;
  const char *msg;  /* substring the error must contain */
};

static char long_name[300];

static const struct bad_case bad[] = {
  {"", "reference is empty"},
  {"Busybox", "must be lowercase"},
  {"Foo/Bar", "must be lowercase"},
  {"foo/Bar", "must be lowercase"},
  {"busybox/", "empty component"},
  {"/busybox", "empty component"},
  {"a//b", "empty component"},
  {"localhost:5000/", "repository name is empty"},
  {"busybox:", "tag is empty"},
  {"busybox:-x", "invalid tag"},
  {"busybox:a+b", "invalid tag"},
  {"busybox@sha256:abc", "64 lowercase hex"},
  {"busybox@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
   "64 lowercase hex"},
  {"busybox@sha512:" HEX64 HEX64, "unsupported digest algorithm \"sha512\""},
  {"busybox@", "invalid digest"},
  {"busybox@" HEX64, "invalid digest"},
  {"busybox@sha256:" HEX64 "@x", "64 lowercase hex"},
  {"..", "invalid repository name component \"..\""},
  {"a/../b", "invalid repository name component \"..\""},
  {"a/.b", "invalid repository name component"},
  {"a/b-", "invalid repository name component"},
  {"a/b___c", "invalid repository name component"},
  {"a/b._c", "invalid repository name component"},
  {"busy box", "whitespace"},
  {"busybox\n", "whitespace or control"},
  {HEX64, "image ID is not a repository name"},
  {"@" DIG, "repository name is empty"},
  {"ex_ample.com/x", "invalid registry host"},
  {"-example.com/x", "invalid registry host"},
  {"example.com:/x", "invalid registry port"},
  {"example.com:99999/x", "invalid registry port"},
  {"[zz::1]:5000/x", "invalid IPv6 address"},
  {"[::1/x", "invalid registry host"},
  {"busybox:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "tag is longer than 128"},
  {long_name, "longer than 255"},
};

Test(ref, refuses_malformed_references_with_a_useful_message)
{
  memset(long_name, 'a', sizeof(long_name) - 1);
  for (int i = 20; i < 290; i += 20)
    long_name[i] = '/';
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct image_ref r;
    err_t *e = NULL;
    cr_assert_eq(image_ref_parse(bad[i].in, &r, &e), -1, "accepted %s", bad[i].in);
    cr_assert_not_null(e);
    cr_expect_eq(e->code, ERR_INVALID, "%s", bad[i].in);
    cr_expect(strstr(e->msg, bad[i].msg) != NULL, "input %s: message \"%s\" lacks \"%s\"",
              bad[i].in, e->msg, bad[i].msg);
    cr_expect(strncmp(e->msg, "invalid reference \"", 19) == 0, "%s", e->msg);
    cr_expect_null(r.domain, "failed parse leaves fields empty");
    err_free(&e);
  }
}

Test(ref, error_message_quotes_the_input)
{
  struct image_ref r;
  err_t *e = NULL;
  cr_assert_eq(image_ref_parse("Foo/Bar", &r, &e), -1);
  cr_expect_str_eq(e->msg, "invalid reference \"Foo/Bar\": repository name must be lowercase");
  err_free(&e);
}

Test(ref, error_message_escapes_and_cuts_hostile_input)
{
  struct image_ref r;
  err_t *e = NULL;
  char in[1000];
  memset(in, 'x', sizeof(in) - 1);
  in[sizeof(in) - 1] = '\0';
  in[5] = '\033';
  cr_assert_eq(image_ref_parse(in, &r, &e), -1);
  cr_expect_null(strchr(e->msg, '\033'));
  cr_expect(strlen(e->msg) < 300, "message is %zu bytes", strlen(e->msg));
  err_free(&e);
  /* the wrong part is repeated only in part too */
  memcpy(in, "x@", 2);
  in[5] = 'x';
  cr_assert_eq(image_ref_parse(in, &r, &e), -1);
  cr_expect(strstr(e->msg, "invalid digest"), "%s", e->msg);
  cr_expect(strlen(e->msg) < 300, "message is %zu bytes", strlen(e->msg));
  err_free(&e);
}

Test(ref, accepts_name_of_exactly_255_characters)
{
  /* "docker.io/" is 10 bytes; 245 more make 255 */
  char in[246];
  memset(in, 'a', sizeof(in) - 1);
  in[sizeof(in) - 1] = '\0';
  in[100] = '/';
  struct image_ref r;
  err_t *e = NULL;
  cr_assert_eq(image_ref_parse(in, &r, &e), 0, "%s", e ? e->msg : "");
  char *name = image_ref_name(&r);
  cr_expect_eq(strlen(name), 255);
  free(name);
  image_ref_clear(&r);
  char longer[247];
  memset(longer, 'a', sizeof(longer) - 1);
  longer[sizeof(longer) - 1] = '\0';
  longer[100] = '/';
  cr_assert_eq(image_ref_parse(longer, &r, &e), -1);
  err_free(&e);
}

Test(ref, recognises_image_ids_but_not_references)
{
  char out[IMAGE_ID_LEN + 1] = "";
  cr_assert_eq(image_ref_is_id(DIG, out), 1);
  cr_expect_str_eq(out, DIG);
  memset(out, 0, sizeof(out));
  cr_assert_eq(image_ref_is_id(HEX64, out), 1);
  cr_expect_str_eq(out, DIG);
  cr_expect_eq(image_ref_is_id("busybox", out), 0);
  cr_expect_eq(image_ref_is_id("sha256:abc", out), 0);
  cr_expect_eq(image_ref_is_id(HEX64 "0", out), 0);
  cr_expect_eq(image_ref_is_id("sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef"
                               "0123456789abcdef", out), 0);
  cr_expect_eq(image_ref_is_id("sha512:" HEX64, out), 0);
  cr_expect_eq(image_ref_is_id(NULL, out), 0);
}
