/* cgroup_v2.c - what struct resources means in the unified hierarchy's files. */
#include "runtimes/cgroup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

static const char *const v2_names[CG_N] = {
  [CG_CPU] = "cpu", [CG_CPUSET] = "cpuset", [CG_MEMORY] = "memory", [CG_PIDS] = "pids",
  [CG_HUGETLB] = "hugetlb", [CG_IO] = "io",
};

static int write_i64(const char *dir, const char *file, int64_t v, err_t **e)
{
  char num[24];
  (void)snprintf(num, sizeof(num), "%" PRId64, v);
  return cg_write(dir, file, num, e);
}

/* Is controller name listed in the space-separated list? */
static bool listed(const char *list, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
      return true;
  return false;
}

/* Turns on ctrls in one directory's cgroup.subtree_control. */
static int enable_in(const char *dir, unsigned ctrls, err_t **e)
{
  cleanup_free char *have = NULL;
  if (cg_read(dir, "cgroup.subtree_control", &have, e) < 0)
    return -1;
  for (int c = 0; c < CG_N; c++) {
    if (!(ctrls & CG_BIT(c)) || !v2_names[c] || listed(have, v2_names[c]))
      continue;
    cleanup_free char *arg = xasprintf("+%s", v2_names[c]);
    if (cg_write(dir, "cgroup.subtree_control", arg, e) < 0)
      return err_wrap(e, "enable the %s controller", v2_names[c]);
  }
  return 0;
}

/* A controller works in a v2 cgroup only if every ancestor delegates it
 * (cgroup.subtree_control), so enable ctrls from the root down to the leaf's parent,
 * creating the ancestors on the way. */
int cg2_enable(const char *mount, const char *rel, unsigned ctrls, err_t **e)
{
  if (!ctrls)
    return 0;
  cleanup_free char *cur = xstrdup(mount);
  cleanup_free char *path = xstrdup(rel);
  char *save = NULL, *next;
  char *comp = strtok_r(path, "/", &save);
  for (; comp; comp = next) {
    next = strtok_r(NULL, "/", &save);
    if (enable_in(cur, ctrls, e) < 0)
      return -1;
    if (!next)   /* comp is the leaf: its own subtree_control stays empty */
      break;
    char *child = path_join(cur, comp);
    free(cur);
    cur = child;
    if (mkdir(cur, 0755) < 0 && errno != EEXIST)
      return err_sys(e, errno, "create cgroup %s", cur);
  }
  return 0;
}

uint64_t cg2_shares_to_weight(uint64_t shares)
{
  if (shares == 0)
    return 0;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

static int apply_cpu(const char *dir, const struct resources *r, err_t **e)
{
  if (r->cpu_shares && write_i64(dir, "cpu.weight", (int64_t)cg2_shares_to_weight((uint64_t)r->cpu_shares), e) < 0)
    return -1;
  if (r->cpu_quota || r->cpu_period) {
    cleanup_buf struct buf b = BUF_INIT;
    if (r->cpu_quota > 0)
      buf_printf(&b, "%" PRId64, r->cpu_quota);
    else
      buf_puts(&b, "max");
    if (r->cpu_period > 0)
      buf_printf(&b, " %" PRId64, r->cpu_period);
    if (cg_write(dir, "cpu.max", buf_str(&b), e) < 0)
      return -1;
  }
  if (r->cpuset_cpus && *r->cpuset_cpus && cg_write(dir, "cpuset.cpus", r->cpuset_cpus, e) < 0)
    return -1;
  if (r->cpuset_mems && *r->cpuset_mems && cg_write(dir, "cpuset.mems", r->cpuset_mems, e) < 0)
    return -1;
  return 0;
}

/* OCI's swap limit is memory + swap; v2's memory.swap.max is the swap alone. */
static int apply_memory(const char *dir, const struct resources *r, err_t **e)
{
  if (r->memory_limit && write_i64(dir, "memory.max", r->memory_limit, e) < 0)
    return -1;
  if (!r->memory_swap_limit)
    return 0;
  if (r->memory_swap_limit < 0)
    return cg_write(dir, "memory.swap.max", "max", e);
  if (r->memory_limit <= 0 || r->memory_swap_limit < r->memory_limit)
    return err_set(e, ERR_INVALID, 0, "memory+swap limit %" PRId64 " needs a memory limit no larger "
                   "than it (memory limit %" PRId64 ")", r->memory_swap_limit, r->memory_limit);
  cleanup_free char *p = path_join(dir, "memory.swap.max");
  if (access(p, F_OK) < 0)   /* a kernel without swap accounting: nothing to limit */
    return 0;
  return write_i64(dir, "memory.swap.max", r->memory_swap_limit - r->memory_limit, e);
}

/* Raw files from CRI's "unified" map: one plain file name in this directory. */
static int apply_unified(const char *dir, const struct resources *r, err_t **e)
{
  for (size_t i = 0; i < r->n_unified; i++) {
    const char *k = r->unified[i].key;
    if (!k || !*k || strchr(k, '/') || !strchr(k, '.') || k[0] == '.')
      return err_set(e, ERR_INVALID, 0, "unified cgroup file \"%s\": not a cgroup file name",
                     k ? k : "");
    if (cg_write(dir, k, r->unified[i].value ? r->unified[i].value : "", e) < 0)
      return -1;
  }
  return 0;
}

int cg2_apply(const char *dir, const struct resources *r, bool hybrid, err_t **e)
{
  if (!hybrid) {
    if (apply_cpu(dir, r, e) < 0 || apply_memory(dir, r, e) < 0)
      return -1;
    if (r->pids_limit && (r->pids_limit < 0 ? cg_write(dir, "pids.max", "max", e)
                                            : write_i64(dir, "pids.max", r->pids_limit, e)) < 0)
      return -1;
  }
  for (size_t i = 0; i < r->n_hugepages; i++) {
    cleanup_free char *file = xasprintf("hugetlb.%s.max", r->hugepages[i].page_size);
    cleanup_free char *p = path_join(dir, file);
    if (hybrid && access(p, F_OK) < 0)   /* hybrid: v1 carried it, or no hugetlb at all */
      continue;
    if (write_i64(dir, file, (int64_t)r->hugepages[i].limit, e) < 0)
      return -1;
  }
  return apply_unified(dir, r, e);
}

int cg2_usage(const char *dir, struct ctr_usage *u, err_t **e)
{
  uint64_t usec = 0, inactive = 0, oom = 0;
  if (cg_read_key(dir, "cpu.stat", "usage_usec", &usec, e) < 0)
    return -1;
  u->cpu_usage_ns = usec * 1000;
  /* memory and pids files exist only where the controller is enabled: absent = 0 */
  if (cg_read_u64(dir, "memory.current", &u->memory_usage, NULL) == 0) {
    if (cg_read_key(dir, "memory.stat", "anon", &u->memory_rss, e) < 0 ||
        cg_read_key(dir, "memory.stat", "inactive_file", &inactive, e) < 0 ||
        cg_read_key(dir, "memory.events", "oom_kill", &oom, e) < 0)
      return -1;
    u->memory_working_set = u->memory_usage > inactive ? u->memory_usage - inactive : 0;
    u->oom_killed = oom > 0;
  }
  (void)cg_read_u64(dir, "pids.current", &u->pids, NULL);
  return 0;
}
