/* cgroup.c - layout detection, paths, create/enter/remove, and the public cgroup calls.
 * What each controller's files mean is in cgroup_v1.c and cgroup_v2.c. */
#include "runtimes/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

#define MOUNTINFO_MAX (4u << 20)
#define CG_FILE_MAX (1u << 20)

static const char *const ctrl_names[CG_N] = {
  [CG_CPU] = "cpu",         [CG_CPUACCT] = "cpuacct", [CG_CPUSET] = "cpuset",
  [CG_MEMORY] = "memory",   [CG_PIDS] = "pids",       [CG_DEVICES] = "devices",
  [CG_HUGETLB] = "hugetlb", [CG_FREEZER] = "freezer", [CG_IO] = "io",
};

static int ctrl_by_name(const char *name)
{
  if (strcmp(name, "blkio") == 0)   /* v1's name for what v2 calls io */
    return CG_IO;
  for (int i = 0; i < CG_N; i++)
    if (strcmp(name, ctrl_names[i]) == 0)
      return i;
  return -1;
}

/* ---- layout ----------------------------------------------------------------- */

void cg_layout_clear(struct cg_layout *l)
{
  for (size_t i = 0; l->h && i < l->n; i++)
    free(l->h[i].mount);
  free(l->h);
  memset(l, 0, sizeof(*l));
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s)
{
  char *out = xmalloc(strlen(s) + 1), *o = out;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
        s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
  return out;
}

static unsigned v1_ctrls(const char *superopts)
{
  unsigned mask = 0;
  cleanup_free char *copy = xstrdup(superopts);
  char *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int c = ctrl_by_name(t);
    if (c >= 0)
      mask |= CG_BIT(c);
  }
  return mask;
}

static unsigned v2_ctrls(const char *mount)
{
  cleanup_free char *text = NULL;
  unsigned mask = 0;
  if (cg_read(mount, "cgroup.controllers", &text, NULL) < 0)
    return 0;
  char *save = NULL;
  for (char *t = strtok_r(text, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
    int c = ctrl_by_name(t);
    if (c >= 0)
      mask |= CG_BIT(c);
  }
  return mask;
}

/* Splits one mountinfo line; returns false for lines that are not cgroup mounts.
 * Fields: id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
static bool parse_line(char *line, char **dev, char **root, char **mnt, char **fstype,
                       char **superopts)
{
  char *f[6] = {NULL}, *save = NULL, *t;
  int i = 0;
  for (t = strtok_r(line, " ", &save); t && i < 6; t = strtok_r(NULL, " ", &save))
    f[i++] = t;
  if (i < 6)
    return false;
  while (t && strcmp(t, "-") != 0)
    t = strtok_r(NULL, " ", &save);
  if (!t)
    return false;
  *fstype = strtok_r(NULL, " ", &save);
  (void)strtok_r(NULL, " ", &save);  /* source */
  *superopts = strtok_r(NULL, " ", &save);
  if (!*fstype || !*superopts)
    return false;
  *dev = f[2];
  *root = f[3];
  *mnt = f[4];
  return strcmp(*fstype, "cgroup") == 0 || strcmp(*fstype, "cgroup2") == 0;
}

static void add_hier(struct cg_layout *l, const char *mnt, bool v2, unsigned ctrls)
{
  l->h = xreallocarray(l->h, l->n + 1, sizeof(*l->h));
  l->h[l->n].mount = unescape(mnt);
  l->h[l->n].v2 = v2;
  l->h[l->n].ctrls = v2 ? v2_ctrls(l->h[l->n].mount) : ctrls;
  l->n++;
}

int cg_layout_parse(const char *mountinfo, struct cg_layout *l, err_t **e)
{
  cleanup_free char *text = xstrdup(mountinfo);
  struct buf seen = BUF_INIT;   /* " maj:min" of every hierarchy taken: bind mounts repeat them */
  char *save = NULL;
  size_t n_v1 = 0;
  memset(l, 0, sizeof(*l));
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *dev, *root, *mnt, *fstype, *superopts;
    if (!parse_line(line, &dev, &root, &mnt, &fstype, &superopts) || strcmp(root, "/") != 0)
      continue;
    cleanup_free char *tag = xasprintf(" %s ", dev);
    if (strstr(buf_str(&seen), tag))
      continue;
    buf_printf(&seen, "%s", tag);
    bool v2 = strcmp(fstype, "cgroup2") == 0;
    n_v1 += !v2;
    add_hier(l, mnt, v2, v2 ? 0 : v1_ctrls(superopts));
  }
  buf_free(&seen);
  if (l->n == 0)
    return err_set(e, ERR_UNAVAILABLE, 0, "no cgroup filesystem is mounted");
  l->pure_v2 = n_v1 == 0;
  if (l->pure_v2 && l->n > 1)   /* several v2 mounts of one tree would be the same one */
    l->n = 1;
  return 0;
}

int cg_layout_detect(struct cg_layout *l, err_t **e)
{
  cleanup_free char *text = NULL;
  if (file_read_all("/proc/self/mountinfo", MOUNTINFO_MAX, &text, NULL, e) < 0)
    return -1;
  return cg_layout_parse(text, l, e);
}

const struct cg_hier *cg_find(const struct cg_layout *l, enum cg_ctrl c)
{
  for (size_t i = 0; i < l->n; i++)
    if (!l->h[i].v2 && (l->h[i].ctrls & CG_BIT(c)))
      return &l->h[i];
  for (size_t i = 0; i < l->n; i++)
    if (l->h[i].v2 && (l->pure_v2 || (l->h[i].ctrls & CG_BIT(c))))
      return &l->h[i];
  return NULL;
}

const struct cg_hier *cg_v2(const struct cg_layout *l)
{
  for (size_t i = 0; i < l->n; i++)
    if (l->h[i].v2)
      return &l->h[i];
  return NULL;
}

/* ---- file io ---------------------------------------------------------------- */

int cg_write(const char *dir, const char *file, const char *val, err_t **e)
{
  cleanup_free char *p = path_join(dir, file);
  cleanup_close int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "open %s", p);
  /* cgroupfs takes one value per write(2); a short write is an error, not a retry */
  ssize_t n = write(fd, val, strlen(val));
  if (n < 0)
    return err_sys(e, errno, "write %s=%s", p, val);
  return 0;
}

int cg_read(const char *dir, const char *file, char **out, err_t **e)
{
  cleanup_free char *p = path_join(dir, file);
  return file_read_all(p, CG_FILE_MAX, out, NULL, e);
}

int cg_read_u64(const char *dir, const char *file, uint64_t *out, err_t **e)
{
  cleanup_free char *text = NULL;
  if (cg_read(dir, file, &text, e) < 0)
    return -1;
  if (strncmp(text, "max", 3) == 0) {
    *out = UINT64_MAX;
    return 0;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text)
    return err_set(e, ERR_INTERNAL, 0, "%s/%s: not a number: %.32s", dir, file, text);
  *out = v;
  return 0;
}

int cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out, err_t **e)
{
  cleanup_free char *text = NULL;
  if (cg_read(dir, file, &text, e) < 0)
    return -1;
  size_t klen = strlen(key);
  *out = 0;
  for (char *line = text; line && *line;) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
      *out = strtoull(line + klen + 1, NULL, 10);
      break;
    }
    line = strchr(line, '\n');
    line = line ? line + 1 : NULL;
  }
  return 0;
}

/* ---- the container's cgroup ------------------------------------------------- */

struct cg_ctx {
  struct cg_layout l;
  char *rel;
};

static void ctx_clear(struct cg_ctx *c)
{
  cg_layout_clear(&c->l);
  free(c->rel);
}
#define cleanup_ctx __attribute__((cleanup(ctx_clear)))

static int ctx_init(const struct ctr_spec *s, struct cg_ctx *c, err_t **e)
{
  memset(c, 0, sizeof(*c));
  if (cg_rel_path(s->cgroup_parent, s->cgroup_name, &c->rel, e) < 0)
    return -1;
  return cg_layout_detect(&c->l, e);
}

/* The default device rules (runc's and containerd's): mknod of anything, and use of
 * the nodes the executor itself creates plus ptys and the console. */
static const char *const default_dev_rules[] = {
  "c *:* m",  "b *:* m",  "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",   "c 1:9 rwm",
  "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
};
#define N_DEFAULT_RULES (sizeof(default_dev_rules) / sizeof(default_dev_rules[0]))

static int device_rules(const struct ctr_spec *s, char ***out, size_t *n, err_t **e)
{
  char **v = xcalloc(N_DEFAULT_RULES + s->n_devices + 1, sizeof(*v));
  size_t k = 0;
  for (; k < N_DEFAULT_RULES; k++)
    v[k] = xstrdup(default_dev_rules[k]);
  for (size_t i = 0; i < s->n_devices; i++) {
    const struct device_spec *d = &s->devices[i];
    struct stat st;
    if (stat(d->host_path, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
      int err = errno;
      for (size_t j = 0; j < k; j++)
        free(v[j]);
      free(v);
      return err_set(e, ERR_INVALID, err, "device %s: not a device node on the host", d->host_path);
    }
    const char *perm = d->permissions && *d->permissions ? d->permissions : "rwm";
    v[k++] = xasprintf("%c %u:%u %s", S_ISCHR(st.st_mode) ? 'c' : 'b', major(st.st_rdev),
                       minor(st.st_rdev), perm);
  }
  *out = v;
  *n = k;
  return 0;
}

static int apply_devices(const struct cg_ctx *c, const struct ctr_spec *s, err_t **e)
{
  const struct cg_hier *h = cg_find(&c->l, CG_DEVICES);
  if (!h || (h->v2 && s->privileged))   /* v2 allows everything until a program says no */
    return 0;
  char **rules = NULL;
  size_t n = 0;
  if (device_rules(s, &rules, &n, e) < 0)
    return -1;
  cleanup_free char *dir = path_join(h->mount, c->rel);
  int rc = h->v2 ? cg2_devices(dir, (const char *const *)rules, n, e)
                 : cg1_devices(dir, (const char *const *)rules, n, s->privileged, e);
  for (size_t i = 0; i < n; i++)
    free(rules[i]);
  free(rules);
  return rc;
}

static unsigned wanted_v2(const struct resources *r, bool pure)
{
  unsigned m = 0;
  if (pure)
    m |= CG_BIT(CG_CPU) | CG_BIT(CG_MEMORY) | CG_BIT(CG_PIDS) | CG_BIT(CG_IO);
  if (pure && (r->cpuset_cpus || r->cpuset_mems))
    m |= CG_BIT(CG_CPUSET);
  if (r->n_hugepages)
    m |= CG_BIT(CG_HUGETLB);
  return m;
}

static int make_dirs(const struct cg_ctx *c, const struct resources *r, err_t **e)
{
  for (size_t i = 0; i < c->l.n; i++) {
    const struct cg_hier *h = &c->l.h[i];
    cleanup_free char *dir = path_join(h->mount, c->rel);
    if (h->v2 && cg2_enable(h->mount, c->rel, wanted_v2(r, c->l.pure_v2) & h->ctrls, e) < 0)
      return -1;
    if (mkdir_p(dir, 0755, e) < 0)
      return err_wrap(e, "create cgroup");
    if (!h->v2 && (h->ctrls & CG_BIT(CG_CPUSET)) && cg1_prepare_cpuset(h->mount, c->rel, e) < 0)
      return -1;
  }
  return 0;
}

static int apply_all(const struct cg_ctx *c, const struct resources *r, err_t **e)
{
  const struct cg_hier *v2 = cg_v2(&c->l);
  if (!c->l.pure_v2 && cg1_apply(&c->l, c->rel, r, e) < 0)
    return -1;
  if (v2) {
    cleanup_free char *dir = path_join(v2->mount, c->rel);
    if (cg2_apply(dir, r, !c->l.pure_v2, e) < 0)
      return -1;
  } else if (r->n_unified) {
    return err_set(e, ERR_INVALID, 0, "cgroup v2 files (\"%s\") asked for, but this host has no "
                   "cgroup v2 hierarchy", r->unified[0].key);
  }
  return 0;
}

static void remove_dirs(const struct cg_ctx *c)
{
  for (size_t i = 0; i < c->l.n; i++) {
    cleanup_free char *dir = path_join(c->l.h[i].mount, c->rel);
    (void)rmdir(dir);
  }
}

int cgroup_create(const struct ctr_spec *s, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup");
  if (make_dirs(&c, &s->res, e) < 0 || apply_devices(&c, s, e) < 0 || apply_all(&c, &s->res, e) < 0) {
    remove_dirs(&c);
    return err_wrap(e, "cgroup %s", c.rel);
  }
  return 0;
}

int cgroup_enter(const struct ctr_spec *s, pid_t pid, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup");
  char num[24];
  (void)snprintf(num, sizeof(num), "%d", (int)pid);
  for (size_t i = 0; i < c.l.n; i++) {
    cleanup_free char *dir = path_join(c.l.h[i].mount, c.rel);
    if (cg_write(dir, "cgroup.procs", num, e) < 0)
      return err_wrap(e, "join cgroup");
  }
  return 0;
}

/* ---- joining without the global migration lock (see cgroup.h) ---------------- */

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

void cgroup_join_close(struct cg_join *j)
{
  for (size_t i = 0; i < j->n; i++) {
    if (j->fd[i] >= 0)
      close(j->fd[i]);
    free(j->path[i]);
  }
  free(j->fd);
  free(j->path);
  if (j->v2_dir >= 0)
    close(j->v2_dir);
  if (j->v2_procs >= 0)
    close(j->v2_procs);
  free(j->v2_path);
  memset(j, 0, sizeof(*j));
  j->v2_dir = j->v2_procs = -1;
}

int cgroup_join_open(const struct ctr_spec *s, struct cg_join *j, err_t **e)
{
  memset(j, 0, sizeof(*j));
  j->v2_dir = j->v2_procs = -1;
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup");
  j->fd = xcalloc(c.l.n + 1, sizeof(*j->fd));
  j->path = xcalloc(c.l.n + 1, sizeof(*j->path));
  for (size_t i = 0; i < c.l.n; i++) {
    const struct cg_hier *h = &c.l.h[i];
    cleanup_free char *dir = path_join(h->mount, c.rel);
    int err = 0;
    const char *what = NULL;
    if (h->v2) {
      if (j->v2_dir >= 0)
        continue;   /* the one v2 hierarchy, mounted twice */
      j->v2_path = path_join(dir, "cgroup.procs");
      j->v2_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      what = dir;
      if (j->v2_dir >= 0) {
        j->v2_procs = open(j->v2_path, O_WRONLY | O_CLOEXEC);
        what = j->v2_path;
      }
      if (j->v2_dir < 0 || j->v2_procs < 0)
        err = errno;
    } else {
      j->path[j->n] = path_join(dir, "tasks");
      j->fd[j->n] = open(j->path[j->n], O_WRONLY | O_CLOEXEC);
      what = j->path[j->n];
      if (j->fd[j->n++] < 0)
        err = errno;
    }
    if (err) {
      err_sys(e, err, "join cgroup: open %s", what);
      cgroup_join_close(j);
      return -1;
    }
  }
  return 0;
}

long cgroup_clone(const struct cg_join *j, unsigned long flags, bool *in_v2)
{
  *in_v2 = false;
  if (j->v2_dir >= 0) {
    struct {   /* struct clone_args, up to the cgroup field (CLONE_ARGS_SIZE_VER2) */
      uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
          set_tid, set_tid_size, cgroup;
    } a;
    memset(&a, 0, sizeof(a));
    a.flags = (flags & ~(unsigned long)CSIGNAL) | CLONE_INTO_CGROUP;
    /* clone3 wants no exit signal with CLONE_PARENT (the parent's own is used) */
    a.exit_signal = (flags & CLONE_PARENT) ? 0 : (flags & CSIGNAL);
    a.cgroup = (uint64_t)j->v2_dir;
    long pid = syscall(SYS_clone3, &a, sizeof(a));
    if (pid >= 0) {
      *in_v2 = true;
      return pid;
    }
    /* no clone3 or no CLONE_INTO_CGROUP (before 5.7), or the kernel refused the
     * placement: clone as before; cgroup_join_self then joins v2 the slow way and
     * reports why if that fails too */
  }
  return syscall(SYS_clone, flags, NULL, NULL, NULL, 0UL);
}

int cgroup_join_self(const struct cg_join *j, bool in_v2, err_t **e)
{
  for (size_t i = 0; i < j->n; i++)
    if (write(j->fd[i], "0", 1) != 1)
      return err_sys(e, errno, "join cgroup: write %s=0", j->path[i]);
  if (!in_v2 && j->v2_procs >= 0 && write(j->v2_procs, "0", 1) != 1)
    return err_sys(e, errno, "join cgroup: write %s=0", j->v2_path);
  return 0;
}

int cgroup_remove(const struct ctr_spec *s, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup");
  for (size_t i = 0; i < c.l.n; i++) {
    cleanup_free char *dir = path_join(c.l.h[i].mount, c.rel);
    /* a killed process leaves its cgroup a little after it was reaped: wait up to 2 s */
    for (int tries = 0;; tries++) {
      if (rmdir(dir) == 0 || errno == ENOENT)
        break;
      if (errno != EBUSY || tries >= 200)
        return err_sys(e, errno, "remove cgroup %s", dir);
      nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
  }
  return 0;
}

int cgroup_pod_enter(enum cgroup_driver d, const char *pod_parent, const char *pod_id, pid_t pid,
                     err_t **e)
{
  struct ctr_spec s = {0};
  if (cgroup_place(d, pod_parent, pod_id, pod_id, &s.cgroup_parent, &s.cgroup_name, e) < 0)
    return err_wrap(e, "pod cgroup");
  int rc = cgroup_create(&s, e);
  if (rc == 0 && cgroup_enter(&s, pid, e) < 0) {
    err_t *ignored = NULL;
    (void)cgroup_remove(&s, &ignored);
    err_free(&ignored);
    rc = -1;
  }
  free(s.cgroup_parent);
  free(s.cgroup_name);
  return rc < 0 ? err_wrap(e, "pod cgroup") : 0;
}

int cgroup_pod_remove_own(const char *pod_parent, const char *pod_id, err_t **e)
{
  static const enum cgroup_driver drivers[] = {CGROUP_DRIVER_CGROUPFS, CGROUP_DRIVER_SYSTEMD};
  for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
    /* a parent of the other driver's form was never placed under this one */
    cleanup_free char *parent = NULL, *name = NULL;
    err_t *other_form = NULL;
    if (cgroup_place(drivers[i], pod_parent, pod_id, pod_id, &parent, &name, &other_form) < 0) {
      err_free(&other_form);
      continue;
    }
    struct ctr_spec own = {.cgroup_parent = parent, .cgroup_name = name};
    if (cgroup_remove(&own, e) < 0)
      return -1;
  }
  return 0;
}

/* Leaves first: under cgroupfs a pod without parent has /crisp/<pod>/crisp-<pod>. */
int cgroup_pod_remove(const char *pod_parent, const char *pod_id, err_t **e)
{
  if (cgroup_pod_remove_own(pod_parent, pod_id, e) < 0)
    return -1;
  cleanup_free char *slice = xasprintf(CGROUP_POD_SLICE_PREFIX "-%s.slice", pod_id);
  struct ctr_spec fs = {.cgroup_parent = (char *)CGROUP_POD_ROOT, .cgroup_name = (char *)pod_id};
  struct ctr_spec sd = {.cgroup_parent = (char *)CGROUP_POD_SLICE_PREFIX ".slice",
                        .cgroup_name = slice};
  if (cgroup_remove(&fs, e) < 0 || cgroup_remove(&sd, e) < 0)
    return -1;
  return 0;
}

int cgroup_dir(const struct ctr_spec *s, const char *controller, char **dir, bool *v2, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return -1;
  int ctrl = ctrl_by_name(controller);
  const struct cg_hier *h = ctrl >= 0 ? cg_find(&c.l, (enum cg_ctrl)ctrl) : NULL;
  if (!h)
    return err_set(e, ERR_NOT_FOUND, 0, "no cgroup hierarchy carries \"%s\"", controller);
  *dir = path_join(h->mount, c.rel);
  if (v2)
    *v2 = h->v2;
  return 0;
}

int cgroup_usage(const struct ctr_spec *s, struct ctr_usage *out, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  memset(out, 0, sizeof(*out));
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup usage");
  if (c.l.pure_v2) {
    cleanup_free char *dir = path_join(c.l.h[0].mount, c.rel);
    return cg2_usage(dir, out, e) < 0 ? err_wrap(e, "cgroup usage") : 0;
  }
  return cg1_usage(&c.l, c.rel, out, e) < 0 ? err_wrap(e, "cgroup usage") : 0;
}

int cgroup_update(const struct ctr_spec *s, const struct resources *r, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup update");
  cleanup_free char *probe = path_join(c.l.h[0].mount, c.rel);
  if (access(probe, F_OK) < 0)
    return err_set(e, ERR_NOT_FOUND, errno, "cgroup update: %s does not exist", probe);
  if (c.l.pure_v2)
    (void)cg2_enable(c.l.h[0].mount, c.rel, wanted_v2(r, true) & c.l.h[0].ctrls, NULL);
  return apply_all(&c, r, e) < 0 ? err_wrap(e, "cgroup update") : 0;
}

/* ---- signalling every process ----------------------------------------------- */

/* Signals the pids listed in dir's cgroup.procs; *n counts them. */
static int signal_procs(const char *dir, int sig, size_t *n, err_t **e)
{
  cleanup_free char *text = NULL;
  *n = 0;
  if (cg_read(dir, "cgroup.procs", &text, e) < 0)
    return -1;
  for (char *p = text; *p;) {
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p)
      break;
    if (pid > 0 && kill((pid_t)pid, sig) == 0)
      (*n)++;
    p = end + (*end == '\n');
  }
  return 0;
}

static int v1_freeze(const char *dir, const char *state)
{
  if (cg_write(dir, "freezer.state", state, NULL) < 0)
    return -1;
  for (int i = 0; i < 100 && strcmp(state, "FROZEN") == 0; i++) {
    cleanup_free char *now = NULL;
    if (cg_read(dir, "freezer.state", &now, NULL) < 0 || strncmp(now, "FROZEN", 6) == 0)
      break;
    nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
  }
  return 0;
}

int cgroup_kill_all(const struct ctr_spec *s, int sig, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup kill");
  const struct cg_hier *h = cg_find(&c.l, CG_FREEZER);
  const struct cg_hier *any = h ? h : &c.l.h[0];
  cleanup_free char *dir = path_join(any->mount, c.rel);
  size_t n;
  if (c.l.pure_v2 && sig == SIGKILL && cg_write(dir, "cgroup.kill", "1", NULL) == 0)
    return 0;
  /* a process forking while we read cgroup.procs would escape a single pass: freeze
   * first where we can (v1 freezer), and repeat passes until none is left for SIGKILL */
  bool frozen = h && !h->v2 && sig == SIGKILL && v1_freeze(dir, "FROZEN") == 0;
  int rc = signal_procs(dir, sig, &n, e);
  if (frozen)
    (void)v1_freeze(dir, "THAWED");
  for (int pass = 0; rc == 0 && sig == SIGKILL && n > 0 && pass < 50; pass++) {
    nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
    rc = signal_procs(dir, sig, &n, e);
  }
  if (rc < 0 && e && *e && (*e)->sys_errno == ENOENT)
    return err_set(e, ERR_NOT_FOUND, ENOENT, "cgroup kill: %s does not exist", dir);
  return rc < 0 ? err_wrap(e, "cgroup kill") : 0;
}

int cgroup_thaw(const struct ctr_spec *s, err_t **e)
{
  cleanup_ctx struct cg_ctx c;
  if (ctx_init(s, &c, e) < 0)
    return err_wrap(e, "cgroup thaw");
  const struct cg_hier *h = cg_find(&c.l, CG_FREEZER);
  if (!h || h->v2)
    return 0;
  cleanup_free char *dir = path_join(h->mount, c.rel);
  cleanup_free char *now = NULL;
  if (cg_read(dir, "freezer.state", &now, NULL) < 0 || strncmp(now, "THAWED", 6) == 0)
    return 0;   /* gone, or not frozen */
  return v1_freeze(dir, "THAWED") < 0 ? err_sys(e, errno, "cgroup thaw %s", dir) : 0;
}
