/* seccomp_profile.c - Localhost seccomp profiles: the OCI runtime-spec "seccomp" object,
 * plus the docker profile extensions people copy into kubelet's seccomp directory
 * (archMap, per-rule includes/excludes by capability and architecture).
 *
 * Semantics as runc gives them: conditions on distinct argument indexes are ANDed in one
 * rule; several conditions on the same index make one rule each (ORed), which is how
 * docker's profile writes "personality(0) or personality(8)". */
#include "runtimes/seccomp_int.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"
#include "base/xalloc.h"
#include "runtimes/ns_int.h"

#define PROFILE_MAX_BYTES (1u << 20)

static const struct {
  const char *name;
  uint32_t arch;
  const char *short_name;   /* docker's "includes.arches" spelling */
} arches[] = {
  {"SCMP_ARCH_X86", SCMP_ARCH_X86, "x86"},         {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64, "amd64"},
  {"SCMP_ARCH_X32", SCMP_ARCH_X32, "x32"},         {"SCMP_ARCH_ARM", SCMP_ARCH_ARM, "arm"},
  {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64, "arm64"}, {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE, "ppc64le"},
  {"SCMP_ARCH_S390X", SCMP_ARCH_S390X, "s390x"},   {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64, "riscv64"},
};

static const char *const cap_names[] = {
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
  "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
  "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
  "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
  "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
  "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};

static int cap_by_name(const char *name)
{
  if (strncmp(name, "CAP_", 4) == 0)
    name += 4;
  for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
    if (strcmp(name, cap_names[i]) == 0)
      return (int)i;
  return -1;
}

static int arch_by_name(const char *name, uint32_t *out)
{
  for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
    if (strcmp(name, arches[i].name) == 0) {
      *out = arches[i].arch;
      return 0;
    }
  return -1;
}

static const char *native_short_name(void)
{
  uint32_t native = seccomp_arch_native();
  for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
    if (arches[i].arch == native)
      return arches[i].short_name;
  return "";
}

/* "SCMP_ACT_ERRNO" + errnoRet -> libseccomp action. */
static int parse_action(const char *name, const json_t *errno_ret, uint32_t *out, err_t **e)
{
  long long ret = EPERM;
  if (json_type(errno_ret) != JSON_NONE && json_int(errno_ret, &ret) < 0)
    return err_set(e, ERR_INVALID, 0, "errnoRet must be an integer");
  if (ret < 0 || ret > 4095)
    return err_set(e, ERR_INVALID, 0, "errnoRet %lld out of range", ret);
  if (!name)
    return err_set(e, ERR_INVALID, 0, "missing action");
  if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
    *out = SCMP_ACT_ALLOW;
  else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
    *out = SCMP_ACT_ERRNO((uint32_t)ret);
  else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
    *out = SCMP_ACT_KILL_THREAD;
  else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
    *out = SCMP_ACT_KILL_PROCESS;
  else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
    *out = SCMP_ACT_TRAP;
  else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
    *out = SCMP_ACT_TRACE((uint32_t)ret);
  else if (strcmp(name, "SCMP_ACT_LOG") == 0)
    *out = SCMP_ACT_LOG;
  else if (strcmp(name, "SCMP_ACT_NOTIFY") == 0)
    return err_set(e, ERR_UNIMPLEMENTED, 0, "SCMP_ACT_NOTIFY: crisp has no seccomp agent");
  else
    return err_set(e, ERR_INVALID, 0, "unknown action \"%s\"", name);
  return 0;
}

static int parse_op(const char *name, enum scmp_compare *out)
{
  static const struct {
    const char *name;
    enum scmp_compare op;
  } ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (size_t i = 0; name && i < sizeof(ops) / sizeof(ops[0]); i++)
    if (strcmp(name, ops[i].name) == 0) {
      *out = ops[i].op;
      return 0;
    }
  return -1;
}

/* A JSON number as the u64 a syscall argument is; values past 2^63 arrive as doubles. */
static int arg_value(const json_t *v, uint64_t *out)
{
  long long i;
  double d;
  if (json_type(v) == JSON_NONE) {
    *out = 0;
    return 0;
  }
  if (json_int(v, &i) == 0) {
    *out = (uint64_t)i;
    return 0;
  }
  if (json_double(v, &d) == 0 && d >= 0 && d < 18446744073709551616.0) {
    *out = (uint64_t)d;
    return 0;
  }
  return -1;
}

static int parse_args(const json_t *a, struct scmp_arg_cmp *out, unsigned *n, bool *same_index,
                      err_t **e)
{
  unsigned seen = 0;
  *n = 0;
  *same_index = false;
  if (json_len(a) > 6)
    return err_set(e, ERR_INVALID, 0, "more than 6 argument conditions");
  for (size_t i = 0; i < json_len(a); i++) {
    const json_t *c = json_at(a, i);
    long long idx;
    enum scmp_compare op;
    uint64_t v1, v2;
    if (json_int(json_get(c, "index"), &idx) < 0 || idx < 0 || idx > 5)
      return err_set(e, ERR_INVALID, 0, "args[%zu].index must be 0-5", i);
    if (parse_op(json_str(json_get(c, "op")), &op) < 0)
      return err_set(e, ERR_INVALID, 0, "args[%zu].op: unknown comparison", i);
    if (arg_value(json_get(c, "value"), &v1) < 0 || arg_value(json_get(c, "valueTwo"), &v2) < 0)
      return err_set(e, ERR_INVALID, 0, "args[%zu]: value must be a non-negative integer", i);
    if (seen & (1u << idx))
      *same_index = true;
    seen |= 1u << idx;
    out[(*n)++] = (struct scmp_arg_cmp){(unsigned)idx, op, v1, v2};
  }
  return 0;
}

/* docker's includes/excludes: caps (all must be held / none may be) and arches. */
static bool applies(const json_t *rule, uint64_t caps)
{
  const json_t *inc = json_get(rule, "includes"), *exc = json_get(rule, "excludes");
  const json_t *ic = json_get(inc, "caps"), *ec = json_get(exc, "caps");
  const json_t *ia = json_get(inc, "arches"), *ea = json_get(exc, "arches");
  const char *native = native_short_name();
  for (size_t i = 0; i < json_len(ic); i++) {
    int c = cap_by_name(json_str(json_at(ic, i)) ? json_str(json_at(ic, i)) : "");
    if (c < 0 || !((caps >> c) & 1))
      return false;
  }
  for (size_t i = 0; i < json_len(ec); i++) {
    int c = cap_by_name(json_str(json_at(ec, i)) ? json_str(json_at(ec, i)) : "");
    if (c >= 0 && ((caps >> c) & 1))
      return false;
  }
  bool arch_ok = json_len(ia) == 0;
  for (size_t i = 0; i < json_len(ia); i++)
    arch_ok |= json_str(json_at(ia, i)) && strcmp(json_str(json_at(ia, i)), native) == 0;
  for (size_t i = 0; i < json_len(ea); i++)
    arch_ok &= !(json_str(json_at(ea, i)) && strcmp(json_str(json_at(ea, i)), native) == 0);
  return arch_ok;
}

static int add_names(struct seccomp_filter *f, const json_t *rule, uint32_t action,
                     const struct scmp_arg_cmp *args, unsigned n, bool split, err_t **e)
{
  const json_t *names = json_get(rule, "names");
  const json_t *one = json_get(rule, "name");
  size_t count = json_len(names) + (json_str(one) ? 1 : 0);
  for (size_t i = 0; i < count; i++) {
    const char *name = i < json_len(names) ? json_str(json_at(names, i)) : json_str(one);
    if (!name)
      return err_set(e, ERR_INVALID, 0, "names[%zu] must be a string", i);
    if (!split && seccomp_rule(f, name, action, n, args, e) < 0)
      return -1;
    for (unsigned k = 0; split && k < n; k++)
      if (seccomp_rule(f, name, action, 1, &args[k], e) < 0)
        return -1;
  }
  return 0;
}

static int add_rules(struct seccomp_filter *f, const json_t *calls, uint64_t caps, err_t **e)
{
  for (size_t i = 0; i < json_len(calls); i++) {
    const json_t *rule = json_at(calls, i);
    uint32_t action;
    struct scmp_arg_cmp args[6];
    unsigned n;
    bool split;
    if (!applies(rule, caps))
      continue;
    if (parse_action(json_str(json_get(rule, "action")), json_get(rule, "errnoRet"), &action, e) < 0 ||
        parse_args(json_get(rule, "args"), args, &n, &split, e) < 0 ||
        add_names(f, rule, action, args, n, split, e) < 0)
      return err_wrap(e, "syscalls[%zu]", i);
  }
  return 0;
}

/* "architectures" adds each listed one; "archMap" adds the native one's sub-arches. */
static int add_arches(struct seccomp_filter *f, const json_t *root, err_t **e)
{
  const json_t *list = json_get(root, "architectures");
  const json_t *map = json_get(root, "archMap");
  uint32_t native = seccomp_arch_native(), a;
  for (size_t i = 0; i < json_len(map); i++) {
    const json_t *m = json_at(map, i);
    const char *name = json_str(json_get(m, "architecture"));
    if (!name || arch_by_name(name, &a) < 0 || a != native)
      continue;
    const json_t *subs = json_get(m, "subArchitectures");
    for (size_t j = 0; j < json_len(subs); j++)
      if (json_str(json_at(subs, j)) && arch_by_name(json_str(json_at(subs, j)), &a) == 0) {
        int rc = seccomp_arch_add(f->ctx, a);
        if (rc < 0 && rc != -EEXIST)
          return err_sys(e, -rc, "archMap: add %s", json_str(json_at(subs, j)));
      }
  }
  for (size_t i = 0; i < json_len(list); i++) {
    const char *name = json_str(json_at(list, i));
    if (!name || arch_by_name(name, &a) < 0)
      return err_set(e, ERR_INVALID, 0, "architectures[%zu]: unknown architecture", i);
    int rc = seccomp_arch_add(f->ctx, a);
    if (rc < 0 && rc != -EEXIST)
      return err_sys(e, -rc, "add architecture %s", name);
  }
  return 0;
}

static int build(const json_t *root, uint64_t caps, struct seccomp_filter **out, err_t **e)
{
  uint32_t def;
  struct seccomp_filter *f = NULL;
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "not a JSON object");
  if (parse_action(json_str(json_get(root, "defaultAction")), json_get(root, "defaultErrnoRet"),
                   &def, e) < 0)
    return err_wrap(e, "defaultAction");
  if (seccomp_new(def, &f, e) < 0)
    return -1;
  if (add_arches(f, root, e) < 0 || add_rules(f, json_get(root, "syscalls"), caps, e) < 0) {
    seccomp_filter_free(f);
    return -1;
  }
  *out = f;
  return 0;
}

int seccomp_profile_load(const char *path, uint64_t caps, struct seccomp_filter **out, err_t **e)
{
  cleanup_free char *text = NULL;
  cleanup_json json_t *root = NULL;
  err_t *why = NULL;
  if (file_read_all(path, PROFILE_MAX_BYTES, &text, NULL, &why) < 0) {
    /* a profile the spec names but the node lacks is the spec's problem */
    err_set(e, ERR_INVALID, why->sys_errno, "seccomp profile %s: %s", path, why->msg);
    err_free(&why);
    return -1;
  }
  if (json_parse(text, &root, e) < 0 || build(root, caps, out, e) < 0)
    return err_wrap(e, "seccomp profile %s", path);
  return 0;
}
