/* cgroup_name.c - where a container's cgroup goes: the driver's naming rules and the
 * path a (parent, name) pair means on cgroupfs. No file system access here. */
#include "runtimes/cgroup.h"

#include <stdbool.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

/* systemd's limit on a unit name (UNIT_NAME_MAX - 1) */
#define UNIT_NAME_MAX 255
#define SLICE_SUFFIX ".slice"

static bool climbs(const char *p)
{
  for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
    if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
      return true;
  return false;
}

static bool ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool cg_is_slice(const char *p)
{
  return p && !strchr(p, '/') && strlen(p) > strlen(SLICE_SUFFIX) && ends_with(p, SLICE_SUFFIX);
}

/* The characters systemd allows in a unit name ("\" starts its escapes). */
static bool unit_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         strchr(":-_.\\", c) != NULL;
}

int cg_slice_check(const char *slice, err_t **e)
{
  size_t n = strlen(slice);
  if (!cg_is_slice(slice))
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a systemd slice name (\"name.slice\")",
                   slice);
  if (n > UNIT_NAME_MAX)
    return err_set(e, ERR_INVALID, 0, "slice \"%.64s...\" is longer than systemd's %d bytes",
                   slice, UNIT_NAME_MAX);
  for (size_t i = 0; i < n; i++)
    if (!unit_char(slice[i]))
      return err_set(e, ERR_INVALID, 0, "slice \"%s\": character '%c' is not allowed in a systemd "
                     "unit name", slice, slice[i]);
  size_t len = n - strlen(SLICE_SUFFIX);
  if (len == 1 && slice[0] == '-')
    return 0;   /* "-.slice", the root slice */
  if (slice[0] == '-' || slice[len - 1] == '-' || strstr(slice, "--"))
    return err_set(e, ERR_INVALID, 0, "\"%s\" is not a valid systemd slice name (a '-' separates "
                   "parent slices: no leading, trailing or doubled '-')", slice);
  return 0;
}

/* "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice", as systemd lays out slices on the
 * cgroup file system; "-.slice" is the root. Only the '-' structure is checked here:
 * the character rules are cgroup_parent_check's, at RunPodSandbox, so a spec stored
 * by an older crispd still finds its cgroup. */
static int expand_slice(const char *slice, struct buf *out, err_t **e)
{
  size_t len = strlen(slice) - strlen(SLICE_SUFFIX);
  if (len == 1 && slice[0] == '-')
    return 0;
  if (slice[0] == '-' || slice[len - 1] == '-' || strstr(slice, "--"))
    return err_set(e, ERR_INVALID, 0, "cgroup parent \"%s\": not a valid systemd slice name", slice);
  for (size_t i = 0; i <= len; i++) {
    if (i < len && slice[i] != '-')
      continue;
    if (out->len)
      buf_putc(out, '/');
    buf_append(out, slice, i);
    buf_puts(out, SLICE_SUFFIX);
  }
  return 0;
}

int cg_rel_path(const char *parent, const char *name, char **out, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  if (!name || !*name || strchr(name, '/') || climbs(name))
    return err_set(e, ERR_INVALID, 0, "cgroup name \"%s\": must be one path component",
                   name ? name : "");
  if (parent && climbs(parent))
    return err_set(e, ERR_INVALID, 0, "cgroup parent \"%s\": must not contain \"..\"", parent);
  if (cg_is_slice(parent)) {
    if (expand_slice(parent, &b, e) < 0)
      return -1;
  } else if (parent) {
    for (const char *p = parent; *p; p++)   /* drop leading, doubled and trailing slashes */
      if (*p != '/' || (b.len && b.data[b.len - 1] != '/' && p[1] && p[1] != '/'))
        buf_putc(&b, *p);
  }
  if (b.len)
    buf_putc(&b, '/');
  buf_puts(&b, name);
  *out = buf_steal(&b);
  return 0;
}

/* ---- the drivers ---------------------------------------------------------------- */

/* The two refusals say which side to change: kubelet must run the driver crispd
 * reports in RuntimeConfig (kubelet >= 1.28 takes it from there by itself). */
int cgroup_parent_check(enum cgroup_driver d, const char *parent, err_t **e)
{
  if (!parent || !*parent)
    return 0;
  if (climbs(parent))
    return err_set(e, ERR_INVALID, 0, "cgroup parent \"%s\": must not contain \"..\"", parent);
  if (d == CGROUP_DRIVER_SYSTEMD) {
    if (!cg_is_slice(parent))
      return err_set(e, ERR_INVALID, 0, "cgroup parent \"%s\": crispd's cgroup driver is systemd, "
                     "which takes a systemd slice name such as \"kubepods-burstable-pod<uid>.slice\","
                     " not a path; kubelet's cgroup driver must match the runtime's (kubelet "
                     "--cgroup-driver=systemd, or \"cgroup_driver\": \"cgroupfs\" in crispd's "
                     "config)", parent);
    if (cg_slice_check(parent, e) < 0)
      return err_wrap(e, "cgroup parent");
    return 0;
  }
  if (cg_is_slice(parent))
    return err_set(e, ERR_INVALID, 0, "cgroup parent \"%s\": crispd's cgroup driver is cgroupfs, "
                   "which takes a cgroup path such as \"/kubepods/burstable/pod<uid>\", not a "
                   "systemd slice; kubelet's cgroup driver must match the runtime's (kubelet "
                   "--cgroup-driver=cgroupfs, or \"cgroup_driver\": \"systemd\" in crispd's "
                   "config)", parent);
  return 0;
}

int cgroup_place(enum cgroup_driver d, const char *pod_parent, const char *pod_id, const char *id,
                 char **parent, char **name, err_t **e)
{
  if (cgroup_parent_check(d, pod_parent, e) < 0)
    return -1;
  bool named = pod_parent && *pod_parent;
  if (d == CGROUP_DRIVER_SYSTEMD) {
    *parent = named ? xstrdup(pod_parent) : xasprintf(CGROUP_POD_SLICE_PREFIX "-%s.slice", pod_id);
    *name = xasprintf(CGROUP_LEAF_PREFIX "%s.scope", id);
  } else {
    *parent = named ? xstrdup(pod_parent) : xasprintf(CGROUP_POD_ROOT "/%s", pod_id);
    *name = xasprintf(CGROUP_LEAF_PREFIX "%s", id);
  }
  return 0;
}
