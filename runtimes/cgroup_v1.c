/* cgroup_v1.c - what struct resources means in cgroup v1 files, one hierarchy per
 * controller set (cpu and cpuacct may be one hierarchy or two; we look each up). */
#include "runtimes/cgroup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

/* The container's directory in the hierarchy carrying c, NULL if none (or v2). */
static char *dir_of(const struct cg_layout *l, enum cg_ctrl c, const char *rel)
{
  const struct cg_hier *h = cg_find(l, c);
  return h && !h->v2 ? path_join(h->mount, rel) : NULL;
}

static int write_i64(const char *dir, const char *file, int64_t v, err_t **e)
{
  char num[24];
  (void)snprintf(num, sizeof(num), "%" PRId64, v);
  return cg_write(dir, file, num, e);
}

static bool blank(const char *s)
{
  return s[strspn(s, " \n")] == '\0';
}

/* A new cpuset cgroup starts with no cpus and no memory nodes, and the kernel refuses
 * to put a task in it (ENOSPC): give each level its parent's sets, top down. */
int cg1_prepare_cpuset(const char *mount, const char *rel, err_t **e)
{
  cleanup_free char *cur = xstrdup(mount);
  cleanup_free char *path = xstrdup(rel);
  char *save = NULL;
  static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
  for (char *comp = strtok_r(path, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
    cleanup_free char *parent = cur;
    cur = path_join(parent, comp);
    for (int i = 0; i < 2; i++) {
      cleanup_free char *mine = NULL, *theirs = NULL;
      if (cg_read(cur, files[i], &mine, e) < 0)
        return err_wrap(e, "cpuset");
      if (!blank(mine))
        continue;
      if (cg_read(parent, files[i], &theirs, e) < 0 || cg_write(cur, files[i], theirs, e) < 0)
        return err_wrap(e, "cpuset");
    }
  }
  return 0;
}

static int apply_cpu(const struct cg_layout *l, const char *rel, const struct resources *r,
                     err_t **e)
{
  if (!r->cpu_shares && !r->cpu_period && !r->cpu_quota && !r->cpuset_cpus && !r->cpuset_mems)
    return 0;
  cleanup_free char *cpu = dir_of(l, CG_CPU, rel);
  cleanup_free char *cpuset = dir_of(l, CG_CPUSET, rel);
  if (cpu) {
    if (r->cpu_shares && write_i64(cpu, "cpu.shares", r->cpu_shares, e) < 0)
      return -1;
    /* the period first: the kernel checks the quota against the period in force */
    if (r->cpu_period && write_i64(cpu, "cpu.cfs_period_us", r->cpu_period, e) < 0)
      return -1;
    if (r->cpu_quota && write_i64(cpu, "cpu.cfs_quota_us", r->cpu_quota, e) < 0)
      return -1;
  } else if (r->cpu_shares || r->cpu_period || r->cpu_quota) {
    return err_set(e, ERR_UNAVAILABLE, 0, "cpu limits asked for, but the cpu controller is not mounted");
  }
  if (cpuset && r->cpuset_cpus && *r->cpuset_cpus && cg_write(cpuset, "cpuset.cpus", r->cpuset_cpus, e) < 0)
    return -1;
  if (cpuset && r->cpuset_mems && *r->cpuset_mems && cg_write(cpuset, "cpuset.mems", r->cpuset_mems, e) < 0)
    return -1;
  return 0;
}

/* memory.memsw.limit_in_bytes (memory + swap) may never be below memory.limit_in_bytes,
 * so the order of the two writes depends on whether the pair grows or shrinks. */
static int apply_memory(const struct cg_layout *l, const char *rel, const struct resources *r,
                        err_t **e)
{
  if (!r->memory_limit && !r->memory_swap_limit)
    return 0;
  cleanup_free char *dir = dir_of(l, CG_MEMORY, rel);
  if (!dir)
    return err_set(e, ERR_UNAVAILABLE, 0, "a memory limit asked for, but the memory controller is not mounted");
  uint64_t cur_sw = 0;
  bool has_sw = cg_read_u64(dir, "memory.memsw.limit_in_bytes", &cur_sw, NULL) == 0;
  bool sw = r->memory_swap_limit && has_sw;   /* no swap accounting: nothing to limit */
  bool sw_first = sw && (r->memory_swap_limit < 0 || (uint64_t)r->memory_swap_limit > cur_sw);
  if (sw_first && write_i64(dir, "memory.memsw.limit_in_bytes", r->memory_swap_limit, e) < 0)
    return -1;
  if (r->memory_limit && write_i64(dir, "memory.limit_in_bytes", r->memory_limit, e) < 0)
    return -1;
  if (sw && !sw_first && write_i64(dir, "memory.memsw.limit_in_bytes", r->memory_swap_limit, e) < 0)
    return -1;
  return 0;
}

static int apply_pids_hugetlb(const struct cg_layout *l, const char *rel,
                              const struct resources *r, err_t **e)
{
  if (r->pids_limit) {
    cleanup_free char *dir = dir_of(l, CG_PIDS, rel);
    if (!dir)
      return err_set(e, ERR_UNAVAILABLE, 0, "a pids limit asked for, but the pids controller is not mounted");
    if (r->pids_limit < 0 ? cg_write(dir, "pids.max", "max", e) < 0
                          : write_i64(dir, "pids.max", r->pids_limit, e) < 0)
      return -1;
  }
  cleanup_free char *huge = dir_of(l, CG_HUGETLB, rel);
  if (!huge)   /* hybrid hosts carry hugetlb on the v2 side: cg2_apply does it */
    return 0;
  for (size_t i = 0; i < r->n_hugepages; i++) {
    cleanup_free char *file = xasprintf("hugetlb.%s.limit_in_bytes", r->hugepages[i].page_size);
    if (write_i64(huge, file, (int64_t)r->hugepages[i].limit, e) < 0)
      return -1;
  }
  return 0;
}

int cg1_apply(const struct cg_layout *l, const char *rel, const struct resources *r, err_t **e)
{
  if (apply_cpu(l, rel, r, e) < 0 || apply_memory(l, rel, r, e) < 0 ||
      apply_pids_hugetlb(l, rel, r, e) < 0)
    return -1;
  return 0;
}

int cg1_devices(const char *dir, const char *const *rules, size_t n, bool allow_all, err_t **e)
{
  if (allow_all)
    return cg_write(dir, "devices.allow", "a", e);
  if (cg_write(dir, "devices.deny", "a", e) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (cg_write(dir, "devices.allow", rules[i], e) < 0)
      return -1;
  return 0;
}

int cg1_usage(const struct cg_layout *l, const char *rel, struct ctr_usage *u, err_t **e)
{
  cleanup_free char *acct = dir_of(l, CG_CPUACCT, rel);
  cleanup_free char *mem = dir_of(l, CG_MEMORY, rel);
  cleanup_free char *pids = dir_of(l, CG_PIDS, rel);
  if (acct && cg_read_u64(acct, "cpuacct.usage", &u->cpu_usage_ns, e) < 0)
    return -1;
  if (mem) {
    uint64_t inactive = 0, oom = 0;
    if (cg_read_u64(mem, "memory.usage_in_bytes", &u->memory_usage, e) < 0 ||
        cg_read_key(mem, "memory.stat", "total_rss", &u->memory_rss, e) < 0 ||
        cg_read_key(mem, "memory.stat", "total_inactive_file", &inactive, e) < 0 ||
        cg_read_key(mem, "memory.oom_control", "oom_kill", &oom, e) < 0)
      return -1;
    u->memory_working_set = u->memory_usage > inactive ? u->memory_usage - inactive : 0;
    u->oom_killed = oom > 0;
  }
  if (pids && cg_read_u64(pids, "pids.current", &u->pids, e) < 0)
    return -1;
  return 0;
}
