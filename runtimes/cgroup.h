/* cgroup.h - the container's cgroup, inside runtimes/ (the public calls cgroup_usage,
 * cgroup_update and cgroup_kill_all are in executor.h).
 *
 * Layout: detected on every call from /proc/self/mountinfo (cheap, and never stale
 * after a remount): a pure cgroup v2 host has one hierarchy; a v1 host has one per
 * mounted controller set, plus in "hybrid" mode a v2 hierarchy without controllers
 * (or with the few v1 does not carry, e.g. hugetlb). The container's cgroup is
 * created in every hierarchy, as runc's cgroupfs driver does, so that freezing,
 * listing and killing work from any of them.
 *
 * Paths: <mount>/<parent>/<name>. A systemd-style parent ("kubepods-burstable-pod1.slice")
 * becomes the nested slices systemd would make (kubepods.slice/kubepods-burstable.slice/
 * kubepods-burstable-pod1.slice); crisp never talks to systemd itself. Which parents and
 * names a driver gives is cgroup_place's (cgroup_name.c, executor.h).
 *
 * Thread-safety: no shared state; concurrent calls on different containers are fine.
 */
#ifndef CRISP_RUNTIMES_CGROUP_H
#define CRISP_RUNTIMES_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/executor.h"
#include "runtimes/spec.h"

enum cg_ctrl {
  CG_CPU = 0, CG_CPUACCT, CG_CPUSET, CG_MEMORY, CG_PIDS, CG_DEVICES, CG_HUGETLB, CG_FREEZER,
  CG_IO, CG_N
};
#define CG_BIT(c) (1u << (c))

struct cg_hier {
  char *mount;        /* where the hierarchy is mounted */
  bool v2;
  unsigned ctrls;     /* CG_BIT set of the controllers it carries (v2: its cgroup.controllers) */
};

struct cg_layout {
  struct cg_hier *h;
  size_t n;
  bool pure_v2;       /* one v2 hierarchy carries everything */
};

/* Layout of this process's mount namespace. No cgroup mount at all is ERR_UNAVAILABLE. */
int cg_layout_detect(struct cg_layout *l, err_t **e);
/* The same from mountinfo text, and with v2 controllers read below each v2 mount. */
int cg_layout_parse(const char *mountinfo, struct cg_layout *l, err_t **e);
void cg_layout_clear(struct cg_layout *l);
/* The hierarchy carrying controller c, NULL if none does. */
const struct cg_hier *cg_find(const struct cg_layout *l, enum cg_ctrl c);
/* The v2 hierarchy (pure or hybrid), NULL if none. */
const struct cg_hier *cg_v2(const struct cg_layout *l);

/* "<parent>/<name>" relative to a hierarchy's root, with systemd slices expanded
 * (whatever the driver: a stored spec's parent means the same after a driver change).
 * A name or parent that climbs ("..") or a missing name is ERR_INVALID. */
int cg_rel_path(const char *parent, const char *name, char **out, err_t **e);
/* Whether p is a bare slice name ("x.slice", no '/'); NULL is not. */
bool cg_is_slice(const char *p);
/* A slice name systemd would accept: unit name characters, at most 255 bytes, '-'
 * only between parts (or "-.slice", the root). ERR_INVALID saying what is wrong. */
int cg_slice_check(const char *slice, err_t **e);

/* Small file io on cgroupfs; errors name the file and the value. */
int cg_write(const char *dir, const char *file, const char *val, err_t **e);
int cg_read(const char *dir, const char *file, char **out, err_t **e);
int cg_read_u64(const char *dir, const char *file, uint64_t *out, err_t **e);
/* The value of "key N" in a flat-keyed file (memory.stat, cpu.stat, memory.events);
 * a missing key is 0. */
int cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out, err_t **e);

/* Controller files (cgroup_v1.c, cgroup_v2.c). dir is the container's directory in the
 * hierarchy concerned; the v1 calls take the layout because v1 spreads a resource set
 * over several hierarchies. */
int cg1_prepare_cpuset(const char *mount, const char *rel, err_t **e);
int cg1_apply(const struct cg_layout *l, const char *rel, const struct resources *r, err_t **e);
int cg1_usage(const struct cg_layout *l, const char *rel, struct ctr_usage *u, err_t **e);
/* Device rules ("c 1:3 rwm") for the v1 devices controller: deny all, then allow each. */
int cg1_devices(const char *dir, const char *const *rules, size_t n, bool allow_all, err_t **e);
/* The same rules as a BPF device program attached to a v2 directory (cgroup_devices.c). */
int cg2_devices(const char *dir, const char *const *rules, size_t n, err_t **e);
int cg2_enable(const char *mount, const char *rel, unsigned ctrls, err_t **e);
int cg2_apply(const char *dir, const struct resources *r, bool hybrid, err_t **e);
int cg2_usage(const char *dir, struct ctr_usage *u, err_t **e);
/* cgroup v1 shares (2..262144) -> v2 weight (1..10000), the mapping runc and crun use. */
uint64_t cg2_shares_to_weight(uint64_t shares);

/* Creates the container's cgroup in every hierarchy and applies s->res and the device
 * rules, before any process is in it. On failure nothing is left. */
int cgroup_create(const struct ctr_spec *s, err_t **e);
/* Moves pid into the container's cgroup in every hierarchy. */
int cgroup_enter(const struct ctr_spec *s, pid_t pid, err_t **e);

/* Joining the container's cgroup without the kernel's global cgroup_threadgroup_rwsem.
 * Writing a pid to cgroup.procs (what cgroup_enter does) takes that rwsem for writing,
 * which waits for an RCU grace period unless another migration just did: 10-20 ms per
 * container start or exec on a quiet 2-CPU VM. Two ways skip it: a single-threaded
 * process moving itself by writing "0" to a v1 hierarchy's "tasks" file, and a process
 * created straight into its v2 cgroup (clone3 CLONE_INTO_CGROUP, Linux 5.7).
 *   caller:   cgroup_join_open (after cgroup_create), cgroup_join_close when done
 *   creator:  cgroup_clone instead of clone(2): the child is born in the v2 cgroup
 *   the new process (single-threaded): cgroup_join_self, before anything else
 * Where clone3 cannot place the child (an older kernel), cgroup_join_self writes "0" to
 * the v2 cgroup.procs instead (the slow path, still correct). */
struct cg_join {
  int *fd;          /* v1 hierarchies: <dir>/tasks, O_WRONLY */
  char **path;      /* for error messages */
  size_t n;
  int v2_dir;       /* the v2 hierarchy's directory, -1 if none */
  int v2_procs;     /* its cgroup.procs, O_WRONLY */
  char *v2_path;
};
int cgroup_join_open(const struct ctr_spec *s, struct cg_join *j, err_t **e);
void cgroup_join_close(struct cg_join *j);
/* clone(2) with flags (exit signal in the low byte, as for clone), the child created in
 * the v2 cgroup when there is one; *in_v2 tells (in parent and child) whether it was. */
long cgroup_clone(const struct cg_join *j, unsigned long flags, bool *in_v2);
/* Run by the (single-threaded) process that joins: every v1 hierarchy, and the v2 one
 * unless in_v2. */
int cgroup_join_self(const struct cg_join *j, bool in_v2, err_t **e);
/* Removes the container's cgroup directories (waits briefly for exiting processes);
 * a missing one is fine. */
int cgroup_remove(const struct ctr_spec *s, err_t **e);
/* The container's directory in the hierarchy carrying controller name ("memory", "cpu",
 * "pids", "cpuset", "hugetlb", "devices"), and whether it is v2 (for tests and tools). */
int cgroup_dir(const struct ctr_spec *s, const char *controller, char **dir, bool *v2, err_t **e);

#endif
