/* policy_json.c - reading a policy file (JSON, see sandbox.h for the format).
 * Every error names the key and the reason, so a typo in a policy is found at once. */
#include "sandbox/policy_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/json.h"

#define POLICY_MAX (1 << 20)

DEFINE_CLEANUP(sbx_policy, struct sbx_policy)

static const struct {
  const char *name;
  int err;
} errnos[] = {
  {"EPERM", EPERM}, {"ENOENT", ENOENT}, {"EINTR", EINTR}, {"EIO", EIO},
  {"EBADF", EBADF}, {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES},
  {"EFAULT", EFAULT}, {"EBUSY", EBUSY}, {"EEXIST", EEXIST}, {"EINVAL", EINVAL},
  {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"ENOSYS", ENOSYS}, {"EOPNOTSUPP", EOPNOTSUPP},
  {"ENOTSUP", ENOTSUP}, {"ENODEV", ENODEV}, {"ENXIO", ENXIO}, {"ESRCH", ESRCH},
};

static int parse_errno(const char *s, int *out)
{
  for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
    if (strcmp(errnos[i].name, s) == 0) {
      *out = errnos[i].err;
      return 0;
    }
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 1 || v > 4095)
    return -1;
  *out = (int)v;
  return 0;
}

static int parse_action(const char *key, const char *s, enum sbx_action *a, int *err,
                        enum sbx_handler *h, err_t **e)
{
  *err = 0;
  *h = SBX_H_NONE;
  if (strcmp(s, "allow") == 0) {
    *a = SBX_ALLOW;
  } else if (strcmp(s, "refuse") == 0) {
    *a = SBX_REFUSE;
  } else if (strcmp(s, "errno") == 0) {
    *a = SBX_ERRNO;
    *err = EPERM;
  } else if (strncmp(s, "errno:", 6) == 0) {
    *a = SBX_ERRNO;
    if (parse_errno(s + 6, err) < 0)
      return err_set(e, ERR_INVALID, 0, "syscalls.%s: unknown errno \"%s\"", key, s + 6);
  } else if (strncmp(s, "trace:", 6) == 0) {
    *a = SBX_TRACE;
    for (int i = SBX_H_NONE + 1; i < SBX_H_COUNT; i++)
      if (strcmp(s + 6, sbx_handler_name((enum sbx_handler)i)) == 0)
        *h = (enum sbx_handler)i;
    if (*h == SBX_H_NONE)
      return err_set(e, ERR_INVALID, 0, "syscalls.%s: unknown handler \"%s\" (uname, syslog)",
                     key, s + 6);
    /* a handler emulates one syscall's semantics; on another it would answer nonsense */
    if (strcmp(key, s + 6) != 0)
      return err_set(e, ERR_INVALID, 0, "syscalls.%s: handler %s only emulates %s", key,
                     s + 6, s + 6);
  } else {
    return err_set(e, ERR_INVALID, 0,
                   "syscalls.%s: unknown action \"%s\" (allow, refuse, errno, errno:E..., "
                   "trace:uname, trace:syslog)", key, s);
  }
  return 0;
}

static int parse_syscalls(struct sbx_policy *p, const json_t *sc, err_t **e)
{
  if (!sc)
    return 0;
  if (json_type(sc) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "syscalls: must be an object, not %s",
                   json_type_name(json_type(sc)));
  for (size_t i = 0; i < json_len(sc); i++) {
    const char *key = json_key_at(sc, i);
    const char *val = json_str(json_at(sc, i));
    if (!val)
      return err_set(e, ERR_INVALID, 0, "syscalls.%s: must be a string, not %s", key,
                     json_type_name(json_type(json_at(sc, i))));
    enum sbx_action a = SBX_ALLOW;
    enum sbx_handler h = SBX_H_NONE;
    int err = 0;
    if (parse_action(key, val, &a, &err, &h, e) < 0)
      return -1;
    if (policy_set(p, key, a, err, h) < 0)
      return err_set(e, ERR_INVALID, 0, "syscalls.%s: unknown syscall on this architecture",
                     key);
  }
  return 0;
}

static int parse_top(const json_t *root, struct sbx_policy **out, err_t **e)
{
  static const char *const keys[] = {"base", "refuseInKernel", "defaultErrno", "syscalls"};
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "must be an object");
  for (size_t i = 0; i < json_len(root); i++) {
    size_t k = 0;
    while (k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k], json_key_at(root, i)) != 0)
      k++;
    if (k == sizeof(keys) / sizeof(keys[0]))
      return err_set(e, ERR_INVALID, 0, "%s: unknown key (base, refuseInKernel, "
                     "defaultErrno, syscalls)", json_key_at(root, i));
  }
  const json_t *base = json_get(root, "base");
  const char *b = base ? json_str(base) : "default";
  CLEANUP(sbx_policy) struct sbx_policy *p = NULL;
  if (b && strcmp(b, "default") == 0) {
    if (sbx_policy_default(&p, e) < 0)
      return -1;
  } else if (b && strcmp(b, "empty") == 0) {
    p = policy_empty();
  } else {
    return err_set(e, ERR_INVALID, 0, "base: must be \"default\" or \"empty\"");
  }
  const json_t *rik = json_get(root, "refuseInKernel");
  if (rik && json_bool(rik, &p->refuse_in_kernel) < 0)
    return err_set(e, ERR_INVALID, 0, "refuseInKernel: must be true or false");
  const json_t *de = json_get(root, "defaultErrno");
  if (de && (!json_str(de) || parse_errno(json_str(de), &p->default_errno) < 0))
    return err_set(e, ERR_INVALID, 0, "defaultErrno: must be an errno name such as \"ENOSYS\"");
  if (parse_syscalls(p, json_get(root, "syscalls"), e) < 0)
    return -1;
  *out = steal(&p);
  return 0;
}

int sbx_policy_parse(const char *text, const char *what, struct sbx_policy **out, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (json_parse(text, &root, e) < 0 || parse_top(root, out, e) < 0)
    return err_wrap(e, "sandbox policy %s", what);
  return 0;
}

int sbx_policy_load(const char *path, struct sbx_policy **out, err_t **e)
{
  cleanup_free char *text = NULL;
  if (file_read_all(path, POLICY_MAX, &text, NULL, e) < 0)
    return err_wrap(e, "sandbox policy %s", path);
  return sbx_policy_parse(text, path, out, e);
}
