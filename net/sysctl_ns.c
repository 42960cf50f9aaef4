#include "net/sysctl_ns.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

#define SYSCTL_NAME_MAX 256
#define SYSCTL_VALUE_MAX 4096

/* Matched against the dotted form. */
static const struct {
  const char *name;
  bool prefix;
  enum sysctl_ns ns;
} ns_table[] = {
  {"net.", true, SYSCTL_NS_NET},
  {"kernel.shm", true, SYSCTL_NS_IPC},
  {"kernel.msg", true, SYSCTL_NS_IPC},
  {"kernel.sem", false, SYSCTL_NS_IPC},
  {"fs.mqueue.", true, SYSCTL_NS_IPC},
  {"kernel.domainname", false, SYSCTL_NS_UTS},
};

const char *sysctl_ns_name(enum sysctl_ns ns)
{
  switch (ns) {
  case SYSCTL_NS_NET: return "network";
  case SYSCTL_NS_IPC: return "IPC";
  case SYSCTL_NS_UTS: return "UTS";
  }
  return "?";
}

static void swap_separators(char *s)
{
  for (; *s; s++)
    *s = *s == '.' ? '/' : *s == '/' ? '.' : *s;
}

/* The slashed form: the first separator decides which form name is in. */
static char *slashed(const char *name)
{
  char *p = xstrdup(name);
  if (name[strcspn(name, "./")] == '.')
    swap_separators(p);
  return p;
}

/* Each '/'-separated component is non-empty, not "." or "..", and plain. */
static bool components_ok(const char *path)
{
  for (const char *c = path;;) {
    size_t n = strcspn(c, "/");
    if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
      return false;
    for (size_t i = 0; i < n; i++)
      if (!isalnum((unsigned char)c[i]) && !strchr("_-.", c[i]))
        return false;
    if (!c[n])
      return true;
    c += n + 1;
  }
}

static bool value_ok(const char *v)
{
  if (strlen(v) > SYSCTL_VALUE_MAX)
    return false;
  for (; *v; v++)
    if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
      return false;
  return true;
}

static int classify(const char *dotted, enum sysctl_ns *ns)
{
  for (size_t i = 0; i < sizeof(ns_table) / sizeof(ns_table[0]); i++) {
    size_t n = strlen(ns_table[i].name);
    if (ns_table[i].prefix ? strncmp(dotted, ns_table[i].name, n) == 0 : strcmp(dotted, ns_table[i].name) == 0) {
      *ns = ns_table[i].ns;
      return 0;
    }
  }
  return -1;
}

int sysctl_ns_resolve(const struct sysctl_kv *kv, enum sysctl_ns *ns, char **proc_path, err_t **e)
{
  const char *name = kv->name ? kv->name : "";
  if (!*name || strlen(name) > SYSCTL_NAME_MAX)
    return err_set(e, ERR_INVALID, 0, "sysctl name \"%s\": empty or too long", name);
  cleanup_free char *path = slashed(name);
  if (!components_ok(path))
    return err_set(e, ERR_INVALID, 0, "sysctl name \"%s\" is malformed", name);
  if (!kv->value || !value_ok(kv->value))
    return err_set(e, ERR_INVALID, 0, "sysctl %s: value missing, too long or with control characters", name);
  cleanup_free char *dotted = xstrdup(path);
  swap_separators(dotted);
  if (classify(dotted, ns) < 0)
    return err_set(e, ERR_INVALID, 0, "sysctl %s is not namespaced: a pod may not set it", name);
  *proc_path = xasprintf("/proc/sys/%s", path);
  return 0;
}
