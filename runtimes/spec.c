/* spec.c - freeing specs and naming signals (the JSON form is in spec_json.c). */
#include "runtimes/spec.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void strv_free(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void mounts_free(struct mount_spec *m, size_t n)
{
  for (size_t i = 0; m && i < n; i++) {
    free(m[i].source);
    free(m[i].destination);
    free(m[i].type);
    free(m[i].options);
  }
  free(m);
}

static void devices_free(struct device_spec *d, size_t n)
{
  for (size_t i = 0; d && i < n; i++) {
    free(d[i].host_path);
    free(d[i].container_path);
    free(d[i].permissions);
  }
  free(d);
}

static void kv_free(struct kv *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].key);
    free(v[i].value);
  }
  free(v);
}

void resources_clear(struct resources *r)
{
  free(r->cpuset_cpus);
  free(r->cpuset_mems);
  for (size_t i = 0; r->hugepages && i < r->n_hugepages; i++)
    free(r->hugepages[i].page_size);
  free(r->hugepages);
  kv_free(r->unified, r->n_unified);
  memset(r, 0, sizeof(*r));
}

void spec_free(struct ctr_spec *s)
{
  if (!s)
    return;
  free(s->id);
  free(s->pod_id);
  free(s->name);
  free(s->sandbox.kernel_release);
  free(s->sandbox.kernel_version);
  free(s->sandbox.machine);
  free(s->sandbox.policy_file);
  free(s->sandbox.kmsg_path);
  free(s->sandbox.files_dir);
  free(s->sandbox.prog_path);
  strv_free(s->argv, s->argc);
  strv_free(s->env, s->n_env);
  free(s->cwd);
  free(s->groups);
  free(s->hostname);
  strv_free(s->lower_dirs, s->n_lower);
  free(s->upper_dir);
  free(s->work_dir);
  free(s->rootfs);
  mounts_free(s->mounts, s->n_mounts);
  devices_free(s->devices, s->n_devices);
  strv_free(s->masked_paths, s->n_masked);
  strv_free(s->readonly_paths, s->n_readonly);
  free(s->seccomp_profile);
  kv_free(s->sysctls, s->n_sysctls);
  free(s->ns.netns_path);
  free(s->ns.ipcns_path);
  free(s->ns.utsns_path);
  free(s->ns.pidns_path);
  free(s->cgroup_parent);
  free(s->cgroup_name);
  resources_clear(&s->res);
  free(s->log_path);
  free(s->stop_signal);
  free(s);
}

void exec_spec_free(struct exec_spec *x)
{
  if (!x)
    return;
  strv_free(x->argv, x->argc);
  free(x);
}

static const struct {
  const char *name;
  int sig;
} signals[] = {
  {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},     {"ILL", SIGILL},
  {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"IOT", SIGIOT},       {"BUS", SIGBUS},
  {"FPE", SIGFPE},   {"KILL", SIGKILL},     {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
  {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},     {"TERM", SIGTERM},
  {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CLD", SIGCHLD},      {"CONT", SIGCONT},
  {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},
  {"URG", SIGURG},   {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM},
  {"PROF", SIGPROF}, {"WINCH", SIGWINCH},   {"IO", SIGIO},         {"POLL", SIGPOLL},
  {"PWR", SIGPWR},   {"SYS", SIGSYS},
};

/* Parses a non-negative decimal number, -1 for anything else. */
static int small_number(const char *s)
{
  if (!*s)
    return -1;
  int v = 0;
  for (; *s; s++) {
    if (!isdigit((unsigned char)*s) || v > 1000)
      return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* RTMIN, RTMIN+n, RTMAX, RTMAX-n (what docker and containerd accept). */
static int rt_signal(const char *s)
{
  int base, sign;
  if (strncasecmp(s, "RTMIN", 5) == 0) {
    base = SIGRTMIN;
    sign = 1;
  } else if (strncasecmp(s, "RTMAX", 5) == 0) {
    base = SIGRTMAX;
    sign = -1;
  } else {
    return -1;
  }
  s += 5;
  if (!*s)
    return base;
  if (*s != (sign > 0 ? '+' : '-'))
    return -1;
  int n = small_number(s + 1);
  int sig = base + sign * n;
  return n < 0 || sig < SIGRTMIN || sig > SIGRTMAX ? -1 : sig;
}

int signal_parse(const char *name)
{
  if (!name || !*name)
    return -1;
  int n = small_number(name);
  if (n >= 0)
    return n >= 1 && n < NSIG ? n : -1;
  if (strncasecmp(name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
    if (strcasecmp(name, signals[i].name) == 0)
      return signals[i].sig;
  return rt_signal(name);
}
