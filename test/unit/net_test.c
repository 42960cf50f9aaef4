#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "net/cidr.h"
#include "net/cni_conf.h"

Test(cidr, parses_v4_and_v6)
{
  struct cidr c;
  err_t *e = NULL;
  cr_assert_eq(cidr_parse("10.88.0.0/16", &c, &e), 0);
  cr_assert_eq(c.family, AF_INET);
  cr_assert_eq(c.prefix, 16);
  cr_assert_eq(cidr_parse("fd00:10::/64", &c, &e), 0);
  cr_assert_eq(c.family, AF_INET6);
}

Test(cidr, refuses_garbage_with_reason)
{
  const char *bad[] = {"10.88.0.0", "10.88.0.0/33", "10.88.0.1/16", "host/8", "10.0.0.0/", "::/129"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct cidr c;
    err_t *e = NULL;
    cr_assert_eq(cidr_parse(bad[i], &c, &e), -1, "%s accepted", bad[i]);
    cr_assert_eq(e->code, ERR_INVALID);
    cr_assert(strstr(e->msg, bad[i]) != NULL, "%s", e->msg);
    err_free(&e);
  }
}

Test(cidr, list_takes_one_range_per_family)
{
  struct cidr c[2];
  int n;
  err_t *e = NULL;
  cr_assert_eq(cidr_parse_list("10.244.1.0/24,fd00:1::/64", c, &n, &e), 0);
  cr_assert_eq(n, 2);
  cr_assert_eq(cidr_parse_list("", c, &n, &e), 0);
  cr_assert_eq(n, 0);
  cr_assert_eq(cidr_parse_list("10.0.0.0/8,11.0.0.0/8", c, &n, &e), -1);
  err_free(&e);
}

Test(cni_conf, picks_lexically_first_network_config)
{
  cleanup_free char *d = xstrdup("/tmp/crisp-cni-XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  err_t *e = NULL;
  cleanup_free char *none = NULL;
  cr_assert_eq(cni_conf_find(d, &none, &e), 0);
  cr_assert_null(none, "empty dir: no config");
  const char *names[] = {"20-b.conf", "10-a.conflist", "05-ignored.txt", "30-c.json"};
  for (size_t i = 0; i < 4; i++) {
    cleanup_free char *p = path_join(d, names[i]);
    cr_assert_eq(file_write_atomic(p, "{}", 2, 0644, &e), 0);
  }
  cleanup_free char *got = NULL;
  cr_assert_eq(cni_conf_find(d, &got, &e), 0);
  cr_assert(got && strstr(got, "/10-a.conflist"), "%s", got ? got : "(null)");
  cleanup_free char *missing = NULL;
  cr_assert_eq(cni_conf_find("/nonexistent/cni", &missing, &e), 0);
  cr_assert_null(missing);
  rm_rf(d, &e);
}
