#include <criterion/criterion.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "cri/config.h"

static struct crisp_config cfg;

static void setup(void) { config_init_defaults(&cfg); }
static void teardown(void) { config_clear(&cfg); }

TestSuite(config, .init = setup, .fini = teardown);

static err_t *load_fails(const char *text)
{
  err_t *e = NULL;
  cr_assert_eq(config_load_string(&cfg, text, "test.json", &e), -1, "accepted: %s", text);
  cr_assert_eq(e->code, ERR_INVALID);
  return e;
}

Test(config, defaults_define_runc_and_runsc_handlers)
{
  cr_assert_str_eq(cfg.listen, "/run/crisp/crisp.sock");
  cr_assert_str_eq(cfg.root, "/var/lib/crisp");
  cr_assert_str_eq(cfg.state, "/run/crisp");
  const struct rt_handler *h;
  err_t *e = NULL;
  cr_assert_eq(runtimes_resolve(&cfg.runtimes, "", &h, &e), 0);
  cr_assert_str_eq(h->name, "runc");
  cr_assert_eq(h->executor, EXECUTOR_NAMESPACES);
  cr_assert_eq(runtimes_resolve(&cfg.runtimes, "runsc", &h, &e), 0);
  cr_assert_eq(h->executor, EXECUTOR_SANDBOX);
  cr_assert_str_eq(h->sandbox.kernel_release, "4.4.0");
}

Test(config, file_overrides_defaults)
{
  err_t *e = NULL;
  const char *text =
      "{\"root\":\"/srv/crisp\",\"listen\":\"unix:///tmp/x.sock\",\"log_level\":\"debug\","
      "\"cgroup_driver\":\"systemd\",\"stream_address\":\"127.0.0.1:10010\","
      "\"cni\":{\"conf_dir\":\"/etc/cni/x\",\"bin_dirs\":[\"/opt/x\"]},"
      "\"registries\":{\"mirrors\":{\"registry.k8s.io\":[\"http://localhost:5000\"]},"
      "\"insecure\":[\"localhost:5000\"],\"pull_parallelism\":5},"
      "\"runtimes\":{\"fast\":{\"executor\":\"namespaces\"},"
      "\"gvisor\":{\"executor\":\"sandbox\",\"kernel_release\":\"5.0.0\"}},"
      "\"default_runtime\":\"fast\"}";
  cr_assert_eq(config_load_string(&cfg, text, "test.json", &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(cfg.root, "/srv/crisp");
  cr_assert_str_eq(cfg.listen, "/tmp/x.sock");
  cr_assert_eq(cfg.log_level, LOG_DEBUG);
  cr_assert_eq(cfg.cgroup_driver, CGROUP_DRIVER_SYSTEMD);
  cr_assert_eq(cfg.n_mirrors, 1);
  cr_assert_str_eq(cfg.mirrors[0].endpoints.v[0], "http://localhost:5000");
  cr_assert_eq(cfg.pull_parallelism, 5);
  const struct rt_handler *h;
  cr_assert_eq(runtimes_resolve(&cfg.runtimes, "", &h, &e), 0);
  cr_assert_str_eq(h->name, "fast");
  cr_assert_eq(runtimes_resolve(&cfg.runtimes, "gvisor", &h, &e), 0);
  cr_assert_str_eq(h->sandbox.kernel_release, "5.0.0");
  cr_assert_eq(runtimes_resolve(&cfg.runtimes, "runc", &h, &e), -1, "the table was replaced");
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  cr_assert(strstr(e->msg, "fast, gvisor") != NULL, "%s", e->msg);
  err_free(&e);
}

Test(config, unknown_key_is_named)
{
  err_t *e = load_fails("{\"rooot\":\"/x\"}");
  cr_assert(strstr(e->msg, "test.json") && strstr(e->msg, "\"rooot\"") && strstr(e->msg, "unknown key"),
            "%s", e->msg);
  err_free(&e);
  e = load_fails("{\"registries\":{\"mirror\":{}}}");
  cr_assert(strstr(e->msg, "registries.mirror") != NULL, "%s", e->msg);
  err_free(&e);
  e = load_fails("{\"runtimes\":{\"runc\":{\"executor\":\"namespaces\",\"kernel_release\":\"1\"}}}");
  cr_assert(strstr(e->msg, "runtimes.runc.kernel_release") != NULL, "%s", e->msg);
  err_free(&e);
}

Test(config, bad_values_are_named_with_a_reason)
{
  struct { const char *text, *key, *why; } cases[] = {
      {"{\"root\":\"relative\"}", "\"root\"", "absolute path"},
      {"{\"root\":5}", "\"root\"", "must be a string"},
      {"{\"log_level\":\"loud\"}", "\"log_level\"", "debug, info"},
      {"{\"cgroup_driver\":\"cgroup\"}", "\"cgroup_driver\"", "cgroupfs"},
      {"{\"stream_address\":\"nohost\"}", "\"stream_address\"", "host:port"},
      {"{\"stream_address\":\"h:70000\"}", "\"stream_address\"", "host:port"},
      {"{\"runtimes\":{\"x\":{\"executor\":\"vm\"}}}", "runtimes.x.executor", "namespaces"},
      {"{\"runtimes\":{\"x\":{}}}", "runtimes.x.executor", "missing"},
      {"{\"runtimes\":{\"Bad_Name\":{\"executor\":\"sandbox\"}}}", "runtimes.Bad_Name", "DNS label"},
      {"{\"runtimes\":{}}", "\"runtimes\"", "at least one"},
      {"{\"default_runtime\":\"kata\"}", "default_runtime", "not one of"},
      {"{\"registries\":{\"mirrors\":{\"docker.io\":[\"ftp://x\"]}}}", "registries.mirrors.docker.io", "http://"},
      {"{\"registries\":{\"pull_parallelism\":0}}", "pull_parallelism", "1 to 32"},
      {"{\"cni\":{\"bin_dirs\":[\"rel\"]}}", "cni.bin_dirs", "absolute"},
      {"{\"listen\":\"/very/long/path/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"}", "\"listen\"", "107"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    config_clear(&cfg);
    config_init_defaults(&cfg);
    err_t *e = load_fails(cases[i].text);
    cr_assert(strstr(e->msg, cases[i].key) != NULL, "case %zu: key %s not in: %s", i, cases[i].key, e->msg);
    cr_assert(strstr(e->msg, cases[i].why) != NULL, "case %zu: reason %s not in: %s", i, cases[i].why, e->msg);
    err_free(&e);
  }
}

Test(config, syntax_error_names_the_file)
{
  err_t *e = load_fails("{\"root\": ");
  cr_assert(strstr(e->msg, "test.json") && strstr(e->msg, "invalid JSON"), "%s", e->msg);
  err_free(&e);
  e = load_fails("[1,2]");
  cr_assert(strstr(e->msg, "JSON object") != NULL, "%s", e->msg);
  err_free(&e);
}

Test(config, missing_file_keeps_defaults)
{
  err_t *e = NULL;
  bool found = true;
  cr_assert_eq(config_load_file(&cfg, "/nonexistent/crisp.json", &found, &e), 0);
  cr_assert_not(found);
  cr_assert_str_eq(cfg.root, "/var/lib/crisp");
}

Test(config, effective_json_round_trips)
{
  err_t *e = NULL;
  cr_assert_eq(config_load_string(&cfg,
                                   "{\"registries\":{\"mirrors\":{\"gcr.io\":[\"http://localhost:5000\"]},"
                                   "\"auth_file\":\"/root/.docker/config.json\"}}",
                                   "t", &e), 0);
  struct buf b = BUF_INIT;
  config_to_json(&cfg, &b);
  struct crisp_config again;
  config_init_defaults(&again);
  cr_assert_eq(config_load_string(&again, buf_str(&b), "round-trip", &e), 0, "%s\n%s",
               e ? e->msg : "", buf_str(&b));
  struct buf b2 = BUF_INIT;
  config_to_json(&again, &b2);
  cr_assert_str_eq(buf_str(&b), buf_str(&b2));
  cr_assert_str_eq(again.registry_auth_file, "/root/.docker/config.json");
  buf_free(&b);
  buf_free(&b2);
  config_clear(&again);
}
