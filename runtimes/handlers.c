#include "runtimes/handlers.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

int executor_kind_parse(const char *name, enum executor_kind *out)
{
  if (name && strcmp(name, "namespaces") == 0)
    *out = EXECUTOR_NAMESPACES;
  else if (name && strcmp(name, "sandbox") == 0)
    *out = EXECUTOR_SANDBOX;
  else
    return -1;
  return 0;
}

const char *executor_kind_name(enum executor_kind k)
{
  return k == EXECUTOR_SANDBOX ? "sandbox" : "namespaces";
}

struct rt_handler *runtimes_add(struct runtimes *rt, const char *name, enum executor_kind k)
{
  rt->v = xreallocarray(rt->v, rt->n + 1, sizeof(*rt->v));
  struct rt_handler *h = &rt->v[rt->n++];
  memset(h, 0, sizeof(*h));
  h->name = xstrdup(name);
  h->executor = k;
  if (k == EXECUTOR_SANDBOX) {
    h->sandbox.kernel_release = xstrdup("4.4.0");
    h->sandbox.kernel_version = xstrdup("#1 SMP Sun Jan 10 15:06:54 PST 2016");
  }
  return h;
}

void runtimes_init_defaults(struct runtimes *rt)
{
  memset(rt, 0, sizeof(*rt));
  runtimes_add(rt, "runc", EXECUTOR_NAMESPACES);
  runtimes_add(rt, "runsc", EXECUTOR_SANDBOX);
  rt->default_name = xstrdup("runc");
}

void runtimes_clear(struct runtimes *rt)
{
  for (size_t i = 0; i < rt->n; i++) {
    struct rt_handler *h = &rt->v[i];
    free(h->name);
    free(h->sandbox.kernel_release);
    free(h->sandbox.kernel_version);
    free(h->sandbox.machine);
    free(h->sandbox.policy_file);
    free(h->sandbox.kmsg_path);
    free(h->sandbox.files_dir);
    free(h->sandbox.prog_path);
  }
  free(rt->v);
  free(rt->default_name);
  memset(rt, 0, sizeof(*rt));
}

int runtimes_resolve(const struct runtimes *rt, const char *name, const struct rt_handler **out,
                     err_t **e)
{
  const char *want = (name && *name) ? name : rt->default_name;
  for (size_t i = 0; i < rt->n; i++) {
    if (strcmp(rt->v[i].name, want) == 0) {
      *out = &rt->v[i];
      return 0;
    }
  }
  cleanup_buf struct buf names = BUF_INIT;
  for (size_t i = 0; i < rt->n; i++)
    buf_printf(&names, "%s%s", i ? ", " : "", rt->v[i].name);
  return err_set(e, ERR_NOT_FOUND, 0,
                 "no runtime handler \"%s\" is configured (configured handlers: %s)", want,
                 buf_str(&names));
}
