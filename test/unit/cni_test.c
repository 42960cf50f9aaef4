/* CNI plugin calls against fake plugins (shell scripts that record what they were
 * given and answer what a test tells them): the environment and stdin of each call,
 * chaining, capability arguments, the cache, DEL and CHECK, errors and timeouts.
 * Needs no root. The real plugins are exercised in cni_live_test.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cni_fixture.h"
#include "net/cni.h"
#include "net/cni_int.h"

/* Records stdin, CNI_* and the call; answers from res/<name>.<CMD>.{out,err,rc,hang}. */
static const char fake_plugin[] =
    "#!/bin/sh\n"
    "t=$(cd \"$(dirname \"$0\")/..\" && pwd)\n"
    "n=$(basename \"$0\"); c=$CNI_COMMAND; r=\"$t/res/$n.$c\"\n"
    "cat > \"$t/out/$n.$c.stdin\"\n"
    "env | grep '^CNI_' | sort > \"$t/out/$n.$c.env\"\n"
    "echo \"$c $n\" >> \"$t/out/calls\"\n"
    "if [ -f \"$r.hang\" ]; then sleep 1000 & echo \"$$ $!\" > \"$t/out/$n.pids\"; wait; fi\n"
    "[ -f \"$r.err\" ] && cat \"$r.err\" >&2\n"
    "if [ -f \"$r.out\" ]; then cat \"$r.out\"; elif [ \"$c\" = ADD ]; then echo '{\"cniVersion\":\"1.0.0\"}'; fi\n"
    "[ -f \"$r.rc\" ] && exit \"$(cat \"$r.rc\")\"\n"
    "exit 0\n";

static const char result_a[] =
    "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"br0\"},{\"name\":\"veth1\"},"
    "{\"name\":\"eth0\",\"sandbox\":\"/x/ns/net\"}],\"ips\":[{\"interface\":0,\"address\":\"10.9.0.1/24\"},"
    "{\"interface\":2,\"address\":\"10.9.0.5/24\",\"gateway\":\"10.9.0.1\"},"
    "{\"interface\":2,\"address\":\"fd00:9::5/64\"}],\"dns\":{}}";

static char *top, *conf, *bin, *bin2, *out, *res, *pod_dir;
static char *bins[2];
static struct cni_opts opts;

static const struct cni_port ports[] = {
    {8080, 80, "TCP", NULL},
    {0, 9090, "tcp", NULL},           /* not published: no host port */
    {5353, 53, "udp", "127.0.0.1"},
};
static char *dns_servers[] = {"10.96.0.10"};
static char *dns_search[] = {"default.svc.cluster.local"};
static char *dns_opts[] = {"ndots:5"};
static const struct dns_conf dns = {dns_servers, 1, dns_search, 1, dns_opts, 1};
static struct cni_pod pod;

static void plugin(const char *dir, const char *name)
{
  cnit_write(dir, name, fake_plugin, 0755);
}

static void answer(const char *name, const char *cmd, const char *what, const char *text)
{
  cleanup_free char *f = xasprintf("%s.%s.%s", name, cmd, what);
  cnit_write(res, f, text, 0644);
}

static void setup(void)
{
  top = cnit_tmpdir("cni");
  conf = path_join(top, "conf");
  bin = path_join(top, "bin");
  bin2 = path_join(top, "bin2");
  out = path_join(top, "out");
  res = path_join(top, "res");
  pod_dir = path_join(top, "pods/abc123");
  const char *dirs[] = {conf, bin, bin2, out, res};
  for (size_t i = 0; i < 5; i++)
    cr_assert_eq(mkdir(dirs[i], 0755), 0);
  bins[0] = bin;
  bins[1] = bin2;
  opts = (struct cni_opts){.conf_dir = conf, .bin_dirs = bins, .n_bin_dirs = 2, .timeout_s = 10};
  pod = (struct cni_pod){.id = "abc123", .name = "web-0", .namespace_ = "default", .uid = "u-1",
                         .netns = "/x/ns/net", .dir = pod_dir, .ports = ports, .n_ports = 3,
                         .dns = &dns, .pod_cidr = "10.244.1.0/24,fd00:1::/64"};
  plugin(bin, "a");
  plugin(bin, "b");
  answer("a", "ADD", "out", result_a);
  answer("b", "ADD", "out", result_a);   /* a chained plugin passes the result on */
}

static void teardown(void)
{
  err_t *e = NULL;
  rm_rf(top, &e);
  err_free(&e);
  char **all[] = {&top, &conf, &bin, &bin2, &out, &res, &pod_dir};
  for (size_t i = 0; i < 7; i++) {
    free(*all[i]);
    *all[i] = NULL;
  }
}

TestSuite(cni, .init = setup, .fini = teardown);

static void conflist(const char *version, const char *plugins)
{
  cleanup_free char *text = xasprintf("{\"cniVersion\":\"%s\",\"name\":\"testnet\",\"plugins\":[%s]}",
                                      version, plugins);
  cnit_write(conf, "10-test.conflist", text, 0644);
}

#define TWO_PLUGINS                                                                          \
  "{\"type\":\"a\",\"bridge\":\"br0\",\"runtimeConfig\":{\"keep\":1}},"                      \
  "{\"type\":\"b\",\"capabilities\":{\"portMappings\":true,\"dns\":true,\"ipRanges\":true," \
  "\"bandwidth\":true,\"mac\":false},\"snat\":true,\"name\":\"ignored\"}"

static char *calls(void)
{
  char *c = cnit_read(out, "calls");
  return c ? c : xstrdup("");
}

/* --- the config ----------------------------------------------------------------------- */

Test(cni, config_is_validated_with_the_file_and_key_named)
{
  struct {
    const char *text, *want;
  } bad[] = {
      {"{\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}", "\"cniVersion\" is missing"},
      {"{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"a\"}", "cniVersion \"0.2.0\" is not supported"},
      {"{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"type\":\"a\"}", "network name \"a b\""},
      {"{\"cniVersion\":\"1.0.0\",\"type\":\"a\"}", "network name is empty"},
      {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}", "\"plugins\" must be a non-empty array"},
      {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/sh\"}]}", "not a path"},
      {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"bridge\":\"x\"}]}", "plugins[0]: \"type\""},
      {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\"", "invalid JSON"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cnit_write(conf, "10-x.conf", bad[i].text, 0644);
    err_t *e = NULL;
    struct cni_result r = {0};
    cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1, "%s accepted", bad[i].text);
    cr_assert_eq(e->code, ERR_INVALID, "%s: %s", bad[i].text, e->msg);
    cr_assert(strstr(e->msg, bad[i].want) && strstr(e->msg, "10-x.conf"), "%s", e->msg);
    err_free(&e);
  }
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "", "no plugin ran for a bad config");
}

Test(cni, single_plugin_conf_is_wrapped_into_a_list)
{
  cnit_write(conf, "99-single.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"solo\",\"type\":\"a\",\"x\":[1,2.5,true,null]}",
             0644);
  struct cni_net *n = NULL;
  err_t *e = NULL;
  cr_assert_eq(cni_net_load(conf, &n, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(n->n_plugins, 1);
  cr_assert_str_eq(n->plugins[0].type, "a");
  cr_assert_str_eq(n->name, "solo");
  cleanup_buf struct buf in = BUF_INIT;
  cni_plugin_stdin(n, 0, NULL, NULL, &in);
  cr_assert_str_eq(buf_str(&in), "{\"cniVersion\":\"0.4.0\",\"name\":\"solo\",\"type\":\"a\",\"x\":[1,2.5,true,null]}");
  cni_net_free(n);
}

Test(cni, ready_says_what_is_missing)
{
  char *why = NULL;
  struct cni_opts o = opts;
  o.conf_dir = "/nonexistent/cni";
  cr_assert_not(cni_ready(&o, &why));
  cr_assert(strstr(why, "no CNI network config") && strstr(why, "/nonexistent/cni"), "%s", why);
  free(why);

  conflist("1.0.0", "{\"type\":\"a\"},{\"type\":\"portmap-missing\"}");
  cr_assert_not(cni_ready(&opts, &why));
  cr_assert(strstr(why, "\"portmap-missing\" not found in") && strstr(why, bin2), "%s", why);
  free(why);

  conflist("1.0.0", "{\"type\":\"a\",\"ipam\":{\"type\":\"host-local-missing\"}}");
  cr_assert_not(cni_ready(&opts, &why));
  cr_assert(strstr(why, "IPAM plugin \"host-local-missing\""), "%s", why);
  free(why);

  conflist("1.0.0", "{\"type\":\"a\",\"ipam\":{\"type\":\"b\"}}");
  cr_assert(cni_ready(&opts, &why));
  cr_assert_null(why);
}

/* --- ADD ------------------------------------------------------------------------------ */

static void assert_has_line(const char *text, const char *line)
{
  cleanup_free char *want = xasprintf("%s\n", line);
  cr_assert(strstr(text, want), "no line \"%s\" in:\n%s", line, text);
}

Test(cni, add_runs_each_plugin_with_the_spec_environment)
{
  conflist("1.0.0", TWO_PLUGINS);
  setenv("CNI_PATH", "/evil", 1);     /* crispd's own CNI_* never reach a plugin */
  setenv("CNI_IFNAME", "evil0", 1);
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "ADD a\nADD b\n");
  cleanup_free char *env = cnit_read(out, "a.ADD.env");
  assert_has_line(env, "CNI_COMMAND=ADD");
  assert_has_line(env, "CNI_CONTAINERID=abc123");
  assert_has_line(env, "CNI_NETNS=/x/ns/net");
  assert_has_line(env, "CNI_IFNAME=eth0");
  assert_has_line(env, "CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
                       "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1;IgnoreUnknown=1");
  cleanup_free char *path = xasprintf("CNI_PATH=%s:%s", bin, bin2);
  assert_has_line(env, path);
  cr_assert_null(strstr(env, "evil"), "%s", env);
  cr_assert_str_eq(r.ip4, "10.9.0.5", "the pod's address, not the bridge's");
  cr_assert_str_eq(r.ip6, "fd00:9::5");
  cr_assert_str_eq(r.iface, "eth0");
  cni_result_clear(&r);
}

Test(cni, chained_plugin_gets_prev_result_and_only_declared_capabilities)
{
  conflist("1.0.0", TWO_PLUGINS);
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cni_result_clear(&r);
  cleanup_json json_t *a = cnit_read_json(out, "a.ADD.stdin");
  cr_assert_str_eq(json_str(json_get(a, "name")), "testnet");
  cr_assert_str_eq(json_str(json_get(a, "cniVersion")), "1.0.0");
  cr_assert_str_eq(json_str(json_get(a, "bridge")), "br0");
  cr_assert_null(json_get(a, "prevResult"), "the first plugin has no prevResult");
  long long keep = 0;
  cr_assert_eq(json_int(json_get(json_get(a, "runtimeConfig"), "keep"), &keep), 0, "no capability: left alone");

  cleanup_json json_t *b = cnit_read_json(out, "b.ADD.stdin");
  cr_assert_str_eq(json_str(json_get(b, "name")), "testnet", "the list's name wins");
  const json_t *prev = json_get(b, "prevResult");
  cr_assert_str_eq(json_str(json_get(json_at(json_get(prev, "ips"), 1), "address")), "10.9.0.5/24");
  const json_t *rc = json_get(b, "runtimeConfig");
  cr_assert_eq(json_len(rc), 3, "portMappings, dns, ipRanges; no bandwidth (no value), no mac (false)");
  const json_t *pm = json_get(rc, "portMappings");
  cr_assert_eq(json_len(pm), 2, "the port without a host port is not published");
  cleanup_buf struct buf got = BUF_INIT;
  cni_json_emit(&got, pm);
  cr_assert_str_eq(buf_str(&got), "[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"},"
                                  "{\"hostPort\":5353,\"containerPort\":53,\"protocol\":\"udp\",\"hostIP\":\"127.0.0.1\"}]");
  buf_reset(&got);
  cni_json_emit(&got, json_get(rc, "dns"));
  cr_assert_str_eq(buf_str(&got), "{\"servers\":[\"10.96.0.10\"],\"searches\":[\"default.svc.cluster.local\"],"
                                  "\"options\":[\"ndots:5\"]}");
  buf_reset(&got);
  cni_json_emit(&got, json_get(rc, "ipRanges"));
  cr_assert_str_eq(buf_str(&got), "[[{\"subnet\":\"10.244.1.0/24\"}],[{\"subnet\":\"fd00:1::/64\"}]]");
}

Test(cni, prev_result_is_relabelled_to_the_list_version)
{
  answer("a", "ADD", "out",
         "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":\"10.9.0.5/24\"}]}");
  conflist("1.0.0", TWO_PLUGINS);
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(r.ip4, "10.9.0.5");
  cni_result_clear(&r);
  cleanup_json json_t *b = cnit_read_json(out, "b.ADD.stdin");
  const json_t *prev = json_get(b, "prevResult");
  cr_assert_str_eq(json_str(json_get(prev, "cniVersion")), "1.0.0");
  cr_assert_null(json_get(json_at(json_get(prev, "ips"), 0), "version"), "1.0.0 has no ips[].version");

  answer("a", "ADD", "out", "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"fd00::7/64\"}]}");
  conflist("0.4.0", TWO_PLUGINS);
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cni_result_clear(&r);
  cleanup_json json_t *b4 = cnit_read_json(out, "b.ADD.stdin");
  const json_t *ip = json_at(json_get(json_get(b4, "prevResult"), "ips"), 0);
  cr_assert_str_eq(json_str(json_get(ip, "version")), "6", "0.4.0 needs ips[].version");
}

Test(cni, plugins_are_found_in_bin_dirs_in_order)
{
  plugin(bin2, "c");
  conflist("1.0.0", "{\"type\":\"c\"},{\"type\":\"a\"}");
  plugin(bin2, "a");                  /* shadowed by bin/a */
  cnit_write(bin, "c", "not executable", 0644);  /* skipped: not executable */
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cni_result_clear(&r);
  cleanup_free char *env = cnit_read(out, "a.ADD.env");
  cr_assert_not_null(env);
  cleanup_free char *stdin_c = cnit_read(out, "c.ADD.stdin");
  cr_assert_not_null(stdin_c, "bin2/c ran");
}

Test(cni, add_refuses_bad_pod_fields_before_running_anything)
{
  conflist("1.0.0", TWO_PLUGINS);
  struct cni_result r = {0};
  err_t *e = NULL;
  struct cni_pod p = pod;
  p.name = "web;K8S_POD_NAMESPACE=kube-system";
  cr_assert_eq(cni_add(&opts, &p, &r, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "must not hold ';' or '='"), "%s", e->msg);
  err_free(&e);
  p = pod;
  p.id = "../etc";
  cr_assert_eq(cni_add(&opts, &p, &r, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  p = pod;
  p.ifname = "eth0:1";
  cr_assert_eq(cni_add(&opts, &p, &r, &e), -1);
  err_free(&e);
  p = pod;
  p.pod_cidr = "10.244.1.1/24";
  cr_assert_eq(cni_add(&opts, &p, &r, &e), -1);
  cr_assert(strstr(e->msg, "pod CIDR"), "%s", e->msg);
  err_free(&e);
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "");
}

/* --- failures ---------------------------------------------------------------------------- */

Test(cni, failed_add_returns_the_plugin_message_and_undoes_everything)
{
  conflist("1.0.0", TWO_PLUGINS);
  answer("b", "ADD", "out", "{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"no free port\",\"details\":\"8080 taken\"}");
  answer("b", "ADD", "rc", "1");
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cr_assert(strstr(e->msg, "network \"testnet\": CNI plugin b (ADD) failed (code 11): no free port: 8080 taken"),
            "%s", e->msg);
  err_free(&e);
  cr_assert_null(r.ip4);
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "ADD a\nADD b\nDEL b\nDEL a\n", "rollback runs DEL in reverse");
  cleanup_json json_t *del = cnit_read_json(out, "a.DEL.stdin");
  cr_assert_str_eq(json_str(json_get(json_at(json_get(json_get(del, "prevResult"), "ips"), 1), "address")),
                   "10.9.0.5/24", "DEL gets what was added so far");
  cleanup_free char *cache = cnit_read(pod_dir, CNI_CACHE_FILE);
  cr_assert_null(cache, "nothing cached after an undone ADD");
}

Test(cni, config_error_code_maps_to_invalid)
{
  conflist("1.0.0", TWO_PLUGINS);
  answer("a", "ADD", "out", "{\"code\":7,\"msg\":\"invalid bridge name\"}");
  answer("a", "ADD", "rc", "1");
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID, "%s", e->msg);
  cr_assert(strstr(e->msg, "invalid bridge name"), "%s", e->msg);
  err_free(&e);
}

Test(cni, plugin_without_error_object_reports_exit_and_stderr)
{
  conflist("1.0.0", TWO_PLUGINS);
  answer("a", "ADD", "out", "");
  answer("a", "ADD", "err", "starting\npanic: runtime error: index out of range\n");
  answer("a", "ADD", "rc", "2");
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert(strstr(e->msg, "CNI plugin a (ADD) failed: exit status 2: panic: runtime error: index out of range"),
            "%s", e->msg);
  err_free(&e);

  answer("a", "ADD", "rc", "0");
  answer("a", "ADD", "out", "garbage");
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert(strstr(e->msg, "CNI plugin a (ADD) printed no result"), "%s", e->msg);
  err_free(&e);
}

Test(cni, chatty_stderr_is_fine_but_a_flood_on_stdout_is_cut_off)
{
  conflist("1.0.0", TWO_PLUGINS);
  char *noise = xmalloc(200001);
  memset(noise, 'x', 200000);
  noise[200000] = '\0';
  answer("a", "ADD", "err", noise);
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cni_result_clear(&r);
  char *flood = xmalloc((2u << 20) + 1);
  memset(flood, ' ', 2u << 20);
  flood[2u << 20] = '\0';
  answer("b", "ADD", "out", flood);
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert(strstr(e->msg, "CNI plugin b (ADD) wrote more than 1048576 bytes; killed"), "%s", e->msg);
  err_free(&e);
  free(noise);
  free(flood);
}

Test(cni, deploy_config_is_valid_for_debian_plugins)
{
  if (access("/usr/lib/cni/bridge", X_OK) != 0 || access("deploy/cni/10-crisp.conflist", R_OK) != 0)
    cr_skip_test("needs Debian's containernetworking-plugins and the repository root as cwd");
  char *debian[] = {"/opt/cni/bin", "/usr/lib/cni"};
  struct cni_opts o = {.conf_dir = "deploy/cni", .bin_dirs = debian, .n_bin_dirs = 2};
  char *why = NULL;
  cr_assert(cni_ready(&o, &why), "%s", why);
  struct cni_net *n = NULL;
  err_t *e = NULL;
  cr_assert_eq(cni_net_load("deploy/cni", &n, &e), 0, "%s", e ? e->msg : "");
  cr_assert_str_eq(n->name, "crisp");
  cr_assert_str_eq(n->version, "1.0.0");
  cr_assert_eq(n->n_plugins, 2);
  cr_assert_str_eq(n->plugins[0].type, "bridge");
  cr_assert_str_eq(n->plugins[1].type, "portmap");
  cni_net_free(n);
}

static bool gone(pid_t pid)
{
  cleanup_free char *path = xasprintf("/proc/%d/stat", pid);
  for (int i = 0; i < 200; i++) {
    cleanup_free char *st = NULL;
    err_t *e = NULL;
    if (file_read_all(path, 4096, &st, NULL, &e) < 0) {
      err_free(&e);
      return true;
    }
    const char *paren = strrchr(st, ')');
    if (paren && paren[2] == 'Z')
      return true;                    /* killed; its new parent reaps it */
    usleep(10000);
  }
  return false;
}

Test(cni, hanging_plugin_is_killed_with_its_children_at_the_timeout)
{
  conflist("1.0.0", TWO_PLUGINS);
  answer("b", "ADD", "hang", "");
  opts.timeout_s = 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cr_assert(strstr(e->msg, "CNI plugin b (ADD) killed after 1 s without finishing (timeout)"), "%s", e->msg);
  err_free(&e);
  double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  cr_assert(took >= 1.0 && took < 4.0, "took %.2f s", took);
  cleanup_free char *pids = cnit_read(out, "b.pids");
  int sh = 0, sleeper = 0;
  cr_assert_eq(sscanf(pids, "%d %d", &sh, &sleeper), 2);
  cr_assert(gone(sh) && gone(sleeper), "the plugin and its child are killed");
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "ADD a\nADD b\nDEL b\nDEL a\n");
}

Test(cni, missing_plugin_is_unavailable)
{
  conflist("1.0.0", "{\"type\":\"a\"},{\"type\":\"nope\"}");
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cr_assert(strstr(e->msg, "CNI plugin \"nope\" not found"), "%s", e->msg);
  err_free(&e);
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "", "checked before anything runs");
}

/* --- DEL and CHECK -------------------------------------------------------------------- */

static void add_ok(void)
{
  struct cni_result r = {0};
  err_t *e = NULL;
  cr_assert_eq(cni_add(&opts, &pod, &r, &e), 0, "%s", e ? e->msg : "");
  cni_result_clear(&r);
  cleanup_free char *cfile = path_join(pod_dir, CNI_CACHE_FILE);
  cr_assert(cnit_exists(cfile));
  cleanup_free char *cfg = path_join(out, "calls");
  unlink(cfg);
}

Test(cni, del_after_restart_uses_the_cached_config_arguments_and_result)
{
  conflist("1.0.0", TWO_PLUGINS);
  add_ok();
  /* the node's config changed meanwhile, and crispd restarted knowing only the pod's id */
  plugin(bin, "c");
  conflist("1.0.0", "{\"type\":\"c\"}");
  struct cni_pod p = {.id = "abc123", .dir = pod_dir};
  err_t *e = NULL;
  cr_assert_eq(cni_del(&opts, &p, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "DEL b\nDEL a\n", "the cached list, in reverse");
  cleanup_free char *env = cnit_read(out, "b.DEL.env");
  assert_has_line(env, "CNI_NETNS=/x/ns/net");
  assert_has_line(env, "CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
                       "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1;IgnoreUnknown=1");
  cleanup_json json_t *b = cnit_read_json(out, "b.DEL.stdin");
  cr_assert_eq(json_len(json_get(json_get(b, "runtimeConfig"), "portMappings")), 2,
               "portmap needs the same mappings to remove its rules");
  cr_assert_str_eq(json_str(json_get(json_at(json_get(json_get(b, "prevResult"), "ips"), 1), "address")),
                   "10.9.0.5/24");
  cleanup_free char *cache = cnit_read(pod_dir, CNI_CACHE_FILE);
  cr_assert_null(cache, "DEL removes the cache");
}

Test(cni, del_is_idempotent)
{
  conflist("1.0.0", TWO_PLUGINS);
  add_ok();
  err_t *e = NULL;
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "DEL b\nDEL a\nDEL b\nDEL a\n", "a second DEL uses the current config");
  cleanup_json json_t *b = cnit_read_json(out, "b.DEL.stdin");
  cr_assert_null(json_get(b, "prevResult"), "no cache, no prevResult");
  cleanup_free char *cfile = path_join(conf, "10-test.conflist");
  unlink(cfile);
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "no cache and no config: nothing to undo");
  struct cni_pod never = pod;
  never.id = "never-added";
  cr_assert_eq(cni_del(&opts, &never, &e), 0);
}

Test(cni, del_runs_every_plugin_and_keeps_the_cache_when_one_fails)
{
  conflist("1.0.0", TWO_PLUGINS);
  add_ok();
  answer("b", "DEL", "out", "{\"code\":5,\"msg\":\"iptables: resource busy\"}");
  answer("b", "DEL", "rc", "1");
  err_t *e = NULL;
  cr_assert_eq(cni_del(&opts, &pod, &e), -1);
  cr_assert(strstr(e->msg, "iptables: resource busy"), "%s", e->msg);
  err_free(&e);
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "DEL b\nDEL a\n", "a still released its part");
  cleanup_free char *cache = cnit_read(pod_dir, CNI_CACHE_FILE);
  cr_assert_not_null(cache, "kept for the retry");
  answer("b", "DEL", "rc", "0");
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *after = cnit_read(pod_dir, CNI_CACHE_FILE);
  cr_assert_null(after);
}

Test(cni, unreadable_cache_falls_back_to_the_current_config)
{
  conflist("1.0.0", TWO_PLUGINS);
  cr_assert_eq(mkdir_p(pod_dir, 0700, NULL), 0);
  cnit_write(pod_dir, CNI_CACHE_FILE, "{\"kind\":\"other\"}", 0600);
  err_t *e = NULL;
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "DEL b\nDEL a\n");
  cleanup_free char *cache = cnit_read(pod_dir, CNI_CACHE_FILE);
  cr_assert_null(cache);
}

Test(cni, old_versions_get_no_prev_result_on_del)
{
  conflist("0.3.1", TWO_PLUGINS);
  add_ok();
  err_t *e = NULL;
  cr_assert_eq(cni_del(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_json json_t *b = cnit_read_json(out, "b.DEL.stdin");
  cr_assert_null(json_get(b, "prevResult"));
}

Test(cni, check_runs_the_cached_list_in_order)
{
  conflist("1.0.0", TWO_PLUGINS);
  err_t *e = NULL;
  cr_assert_eq(cni_check(&opts, &pod, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND, "%s", e->msg);
  err_free(&e);
  add_ok();
  cr_assert_eq(cni_check(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *c = calls();
  cr_assert_str_eq(c, "CHECK a\nCHECK b\n");
  cleanup_json json_t *a = cnit_read_json(out, "a.CHECK.stdin");
  cr_assert_not_null(json_get(a, "prevResult"));
  answer("b", "CHECK", "out", "{\"code\":100,\"msg\":\"eth0 has no address\"}");
  answer("b", "CHECK", "rc", "1");
  cr_assert_eq(cni_check(&opts, &pod, &e), -1);
  cr_assert(strstr(e->msg, "eth0 has no address"), "%s", e->msg);
  err_free(&e);
}

Test(cni, check_honours_version_and_disable_check)
{
  conflist("0.3.1", TWO_PLUGINS);
  add_ok();
  err_t *e = NULL;
  cr_assert_eq(cni_check(&opts, &pod, &e), -1);
  cr_assert_eq(e->code, ERR_UNIMPLEMENTED, "%s", e->msg);
  err_free(&e);
  cnit_write(conf, "10-test.conflist",
             "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"disableCheck\":true,\"plugins\":[{\"type\":\"a\"}]}",
             0644);
  add_ok();
  cr_assert_eq(cni_check(&opts, &pod, &e), 0, "%s", e ? e->msg : "");
  cleanup_free char *c = cnit_read(out, "calls");
  cr_assert_null(c, "no plugin ran");
}
