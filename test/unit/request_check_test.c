/* request_check: the limits every CRI request passes before a handler sees it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cri/api.pb-c.h"
#include "cri/request_check.h"

static int check(const ProtobufCMessage *m, err_t **e)
{
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n + 1);
  protobuf_c_message_pack(m, b);
  ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
  cr_assert_not_null(back);
  int rc = request_check(back, b, n, e);
  protobuf_c_message_free_unpacked(back, NULL);
  free(b);
  return rc;
}

static void expect_invalid(const ProtobufCMessage *m, const char *words)
{
  err_t *e = NULL;
  cr_assert_eq(check(m, &e), -1, "accepted, wanted \"%s\"", words);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, words), "\"%s\" does not say \"%s\"", e->msg, words);
  err_free(&e);
}

static void expect_ok(const ProtobufCMessage *m)
{
  err_t *e = NULL;
  cr_assert_eq(check(m, &e), 0, "%s", e ? e->msg : "");
}

Test(request_check, ids_may_not_hold_slashes_or_dotdot)
{
  Runtime__V1__StartContainerRequest r = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;
  const char *bad[] = {"../x", "a/b", "..", "a..b", "x y"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r.container_id = (char *)bad[i];
    expect_invalid(&r.base, "container_id");
  }
  r.container_id = "0123abcdef";
  expect_ok(&r.base);
  r.container_id = "sha256:abc";
  expect_ok(&r.base);
}

Test(request_check, a_nul_byte_inside_a_string_is_refused_on_the_wire)
{
  /* StartContainerRequest { container_id = "ab\0cd" } by hand: tag 1, length 5 */
  const uint8_t wire[] = {0x0a, 5, 'a', 'b', 0, 'c', 'd'};
  ProtobufCMessage *m = protobuf_c_message_unpack(&runtime__v1__start_container_request__descriptor,
                                                  NULL, sizeof(wire), wire);
  cr_assert_not_null(m);
  err_t *e = NULL;
  cr_assert_eq(request_check(m, wire, sizeof(wire), &e), -1);
  cr_assert(strstr(e->msg, "NUL"), "%s", e->msg);
  err_free(&e);
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(request_check, maps_have_bounded_keys_and_total_size)
{
  Runtime__V1__PodSandboxConfig c = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  Runtime__V1__PodSandboxConfig__LabelsEntry en = RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
  Runtime__V1__PodSandboxConfig__LabelsEntry *v[] = {&en};
  c.labels = v;
  c.n_labels = 1;
  char *key = calloc(1, REQ_MAP_KEY_MAX + 2);
  memset(key, 'k', REQ_MAP_KEY_MAX);
  en.key = key;
  en.value = "v";
  expect_ok(&c.base);
  key[REQ_MAP_KEY_MAX] = 'k';
  expect_invalid(&c.base, "key of 318 bytes");
  en.key = "";
  expect_invalid(&c.base, "key of 0 bytes");
  en.key = "k";
  char *big = calloc(1, REQ_MAP_TOTAL_MAX + 1);
  memset(big, 'x', REQ_MAP_TOTAL_MAX);
  en.value = big;
  expect_invalid(&c.base, "bytes of keys and values");
  free(big);
  free(key);
}

Test(request_check, log_paths_are_clean_and_stay_below_the_log_directory)
{
  Runtime__V1__PodSandboxConfig p = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  const char *bad_dirs[] = {"rel", "/a/../b", "/a/./b", "/a//b"};
  for (size_t i = 0; i < 4; i++) {
    p.log_directory = (char *)bad_dirs[i];
    expect_invalid(&p.base, "log_directory");
  }
  p.log_directory = "/var/log/pods/ns_name_uid/";
  expect_ok(&p.base);
  Runtime__V1__ContainerConfig c = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  const char *bad_paths[] = {"/abs.log", "../x.log", "a/../../x", "a/", "./x"};
  for (size_t i = 0; i < 5; i++) {
    c.log_path = (char *)bad_paths[i];
    expect_invalid(&c.base, "log_path");
  }
  c.log_path = "ctr/0.log";
  expect_ok(&c.base);
}

Test(request_check, unknown_enum_values_are_refused)
{
  Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
  m.container_path = "/m";
  m.host_path = "/tmp";
  m.propagation = 99;
  expect_invalid(&m.base, "99 is not a known MountPropagation");
  m.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
  expect_ok(&m.base);
  m.host_path = "tmp";
  expect_invalid(&m.base, "host_path");
}

Test(request_check, names_reach_cni_args_and_paths_so_they_stay_plain)
{
  Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
  md.name = "web-0";
  md.namespace_ = "default";
  md.uid = "5f1c8c1e-8a0e-4b0a-9f3c-2a8e5d6b7c90";
  expect_ok(&md.base);
  md.uid = "u;K8S_POD_NAME=x";
  expect_invalid(&md.base, "uid");
  md.uid = "u";
  md.name = "..";
  expect_invalid(&md.base, "name");
}

Test(request_check, a_string_that_is_not_utf8_is_refused)
{
  /* found by fuzz_request: such a string made a container spec the monitor could not
   * read back (and a record that would be quarantined at the next start) */
  const uint8_t wire[] = {0x0a, 4, 'a', 0xff, 0xfe, 'b'};
  ProtobufCMessage *m = protobuf_c_message_unpack(&runtime__v1__start_container_request__descriptor,
                                                  NULL, sizeof(wire), wire);
  cr_assert_not_null(m);
  err_t *e = NULL;
  cr_assert_eq(request_check(m, wire, sizeof(wire), &e), -1);
  cr_assert(strstr(e->msg, "not valid UTF-8"), "%s", e->msg);
  err_free(&e);
  protobuf_c_message_free_unpacked(m, NULL);
}
