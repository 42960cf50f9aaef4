/* ctrspec_user.c - who the container's first process runs as.
 *
 * The rules are containerd's (oci.WithUser, WithAdditionalGIDs, generateUserString):
 * - the CRI run_as_username, else run_as_user, else the image's config User
 *   ("uid", "name", "uid:gid", "name:group", mixed); run_as_group without a CRI user
 *   is refused (containerd: "user group is specified without user");
 * - a name must be in the image's /etc/passwd (or /etc/group for a group name);
 *   a numeric uid need not be; the gid defaults to the uid's primary group in
 *   /etc/passwd, 0 when the uid is not listed;
 * - groups: the primary gid first (containerd includes it since CVE-2023-25173), then,
 *   under the Merge policy (the default), every /etc/group entry listing the user's
 *   name, then the CRI supplemental_groups. Strict leaves out the image's groups.
 *
 * /etc/passwd and /etc/group are read from the image's layers as overlayfs would show
 * them, without mounting anything: the topmost layer that has the entry decides. These
 * directories hold untrusted image content, so nothing is opened through a symlink:
 * every open is O_NOFOLLOW relative to the layer directory, and a symlinked etc/ or
 * etc/passwd counts as absent (a named user then fails clearly; numeric ids still work).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cri/ctrspec_int.h"

#define ETC_FILE_MAX ((size_t)4 << 20)

/* ---- reading etc/<name> through the layers ------------------------------------------- */

enum lookup { LOOKUP_NEXT = 0, LOOKUP_DONE = 1 };

static bool is_whiteout(const struct stat *st)
{
  return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool dir_is_opaque(int dirfd)
{
  char v[2];
  ssize_t n = fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v));
  if (n < 0)
    n = fgetxattr(dirfd, "user.overlay.opaque", v, sizeof(v));
  return n == 1 && v[0] == 'y';
}

static int read_regular(int etc, const char *name, char **out, err_t **e)
{
  cleanup_close int fd = openat(etc, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return err_sys(e, errno, "open etc/%s", name);
  if (!S_ISREG(st.st_mode))
    return LOOKUP_DONE;
  size_t len;
  if (fd_read_all(fd, ETC_FILE_MAX, out, &len, e) < 0)
    return err_wrap(e, "read etc/%s", name);
  return LOOKUP_DONE;
}

/* What one layer says about etc/<name>: DONE (with *out, or NULL when the layer hides
 * it: whited out, an opaque etc/, a non-directory etc, a non-file entry) or NEXT. */
static int layer_lookup(const char *layer, const char *name, char **out, err_t **e)
{
  cleanup_close int root = open(layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return err_sys(e, errno, "open image layer %s", layer);
  struct stat st;
  if (fstatat(root, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? LOOKUP_NEXT : err_sys(e, errno, "stat %s/etc", layer);
  if (!S_ISDIR(st.st_mode))
    return LOOKUP_DONE;
  cleanup_close int etc = openat(root, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (etc < 0)
    return err_sys(e, errno, "open %s/etc", layer);
  if (fstatat(etc, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT)
      return err_sys(e, errno, "stat %s/etc/%s", layer, name);
    return dir_is_opaque(etc) ? LOOKUP_DONE : LOOKUP_NEXT;
  }
  if (is_whiteout(&st) || !S_ISREG(st.st_mode))
    return LOOKUP_DONE;
  if (read_regular(etc, name, out, e) < 0)
    return err_wrap(e, "image layer %s", layer);
  return LOOKUP_DONE;
}

int ctrspec_image_etc_file(const struct ctrspec_image *img, const char *name, char **out,
                           err_t **e)
{
  *out = NULL;
  for (size_t i = img->n_layers; i-- > 0;) {
    int r = layer_lookup(img->layer_dirs[i], name, out, e);
    if (r < 0)
      return -1;
    if (r == LOOKUP_DONE)
      return 0;
  }
  return 0;
}

/* ---- passwd and group entries ------------------------------------------------------- */

/* The first four ':'-separated fields of a line (the fourth ends at ':' too). */
struct fields {
  const char *f[4];
  size_t len[4];
};

static bool split_line(const char *line, size_t len, struct fields *out)
{
  const char *p = line, *end = line + len;
  for (int i = 0; i < 4; i++) {
    const char *c = memchr(p, ':', (size_t)(end - p));
    out->f[i] = p;
    out->len[i] = c ? (size_t)(c - p) : (size_t)(end - p);
    if (!c && i < 3)
      return false;
    p = c ? c + 1 : end;
  }
  return true;
}

/* Decimal, no sign, below (uint32_t)-1 (which setresuid reads as "unchanged"). */
static bool parse_id(const char *s, size_t len, uint32_t *out)
{
  uint64_t v = 0;
  if (len == 0 || len > 10)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v >= UINT32_MAX)
    return false;
  *out = (uint32_t)v;
  return true;
}

static bool field_is(const struct fields *f, int i, const char *s)
{
  return strlen(s) == f->len[i] && memcmp(f->f[i], s, f->len[i]) == 0;
}

/* Calls fn on each well-formed line of db until it returns true. */
static bool db_each(const char *db, bool (*fn)(const struct fields *f, void *arg), void *arg)
{
  for (const char *p = db; p && *p;) {
    size_t len = strcspn(p, "\n");
    struct fields f;
    if (len > 0 && p[0] != '#' && split_line(p, len, &f) && fn(&f, arg))
      return true;
    p += len;
    p += *p == '\n';
  }
  return false;
}

struct pw_query {
  const char *name;    /* match by name, else by uid */
  uint32_t uid;
  char *found_name;
  uint32_t found_uid, found_gid;
};

static bool pw_match(const struct fields *f, void *arg)
{
  struct pw_query *q = arg;
  uint32_t uid, gid;
  if (!parse_id(f->f[2], f->len[2], &uid) || !parse_id(f->f[3], f->len[3], &gid))
    return false;
  if (q->name ? !field_is(f, 0, q->name) : uid != q->uid)
    return false;
  q->found_name = xstrndup(f->f[0], f->len[0]);
  q->found_uid = uid;
  q->found_gid = gid;
  return true;
}

struct gr_query {
  const char *name;    /* group by name -> gid */
  uint32_t gid;
};

static bool gr_match(const struct fields *f, void *arg)
{
  struct gr_query *q = arg;
  return field_is(f, 0, q->name) && parse_id(f->f[2], f->len[2], &q->gid);
}

struct gid_list {
  uint32_t *v;
  size_t n;
};

static void gid_add(struct gid_list *l, uint32_t g)
{
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i] == g)
      return;
  l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
  l->v[l->n++] = g;
}

struct member_query {
  const char *user;
  struct gid_list *out;
};

static bool member_match(const struct fields *f, void *arg)
{
  struct member_query *q = arg;
  uint32_t gid;
  if (!parse_id(f->f[2], f->len[2], &gid))
    return false;
  size_t ul = strlen(q->user);
  for (const char *p = f->f[3], *end = f->f[3] + f->len[3]; p < end;) {
    const char *c = memchr(p, ',', (size_t)(end - p));
    size_t ml = c ? (size_t)(c - p) : (size_t)(end - p);
    if (ml == ul && memcmp(p, q->user, ul) == 0) {
      gid_add(q->out, gid);
      break;
    }
    p += ml + 1;
  }
  return false;   /* keep going: every group counts */
}

/* ---- resolving the user ------------------------------------------------------------- */

struct user_req {
  const char *what;    /* for messages: "run_as_username", "image user" */
  char *user;          /* a name or digits; NULL: root */
  char *group;         /* a name or digits; NULL: the user's primary group */
};

static void user_req_clear(struct user_req *r)
{
  free(r->user);
  free(r->group);
}

static int cri_id(const Runtime__V1__Int64Value *v, const char *field, char **out, err_t **e)
{
  if (v->value < 0 || v->value >= UINT32_MAX)
    return err_set(e, ERR_INVALID, 0, "%s %lld is not a valid id", field, (long long)v->value);
  *out = xasprintf("%lld", (long long)v->value);
  return 0;
}

/* containerd's generateUserString, then the image's User when the CRI names nobody. */
static int user_request(const ctrspec_sc_t *sc, const struct image_config *ic,
                        struct user_req *r, err_t **e)
{
  bool cri_user = sc && (sc->run_as_username[0] || sc->run_as_user);
  if (sc && sc->run_as_group && !cri_user)
    return err_set(e, ERR_INVALID, 0, "run_as_group is set without run_as_user or run_as_username");
  if (cri_user) {
    r->what = sc->run_as_username[0] ? "run_as_username" : "run_as_user";
    if (sc->run_as_username[0])
      r->user = xstrdup(sc->run_as_username);
    else if (cri_id(sc->run_as_user, "run_as_user", &r->user, e) < 0)
      return -1;
    return sc->run_as_group ? cri_id(sc->run_as_group, "run_as_group", &r->group, e) : 0;
  }
  r->what = "image user";
  const char *u = ic && ic->user && ic->user[0] ? ic->user : NULL;
  if (!u)
    return 0;
  const char *colon = strchr(u, ':');
  if (colon == u || (colon && (strchr(colon + 1, ':') || !colon[1])))
    return err_set(e, ERR_INVALID, 0, "image user \"%s\" is not user[:group]", u);
  r->user = colon ? xstrndup(u, (size_t)(colon - u)) : xstrdup(u);
  r->group = colon ? xstrdup(colon + 1) : NULL;
  return 0;
}

struct image_db {
  char *passwd;   /* NULL: the image has none */
  char *group;
};

static int resolve_group(const struct user_req *r, const struct image_db *db, uint32_t *gid,
                         err_t **e)
{
  if (parse_id(r->group, strlen(r->group), gid))
    return 0;
  struct gr_query q = {.name = r->group};
  if (!db->group || !db_each(db->group, gr_match, &q))
    return err_set(e, ERR_INVALID, 0, "%s group \"%s\" is not in the image's /etc/group", r->what,
                   r->group);
  *gid = q.gid;
  return 0;
}

/* uid and primary gid; *username is the passwd name (NULL when the uid is not listed). */
static int resolve_ids(const struct user_req *r, const struct image_db *db, uint32_t *uid,
                       uint32_t *gid, char **username, err_t **e)
{
  struct pw_query q = {0};
  bool numeric = !r->user || parse_id(r->user, strlen(r->user), &q.uid);
  if (!numeric) {
    if (r->user[0] >= '0' && r->user[0] <= '9' && strspn(r->user, "0123456789") == strlen(r->user))
      return err_set(e, ERR_INVALID, 0, "%s %s is not a valid uid", r->what, r->user);
    q.name = r->user;
  }
  bool found = db->passwd && db_each(db->passwd, pw_match, &q);
  if (!found && !numeric)
    return err_set(e, ERR_INVALID, 0, "%s \"%s\" is not in the image's /etc/passwd", r->what,
                   r->user);
  *uid = found ? q.found_uid : q.uid;
  *gid = found ? q.found_gid : 0;
  *username = q.found_name;
  if (r->group && resolve_group(r, db, gid, e) < 0) {
    free(steal(username));
    return -1;
  }
  return 0;
}

static int add_cri_groups(const ctrspec_sc_t *sc, struct gid_list *l, err_t **e)
{
  for (size_t i = 0; sc && i < sc->n_supplemental_groups; i++) {
    int64_t g = sc->supplemental_groups[i];
    if (g < 0 || g >= UINT32_MAX)
      return err_set(e, ERR_INVALID, 0, "supplemental group %lld is not a valid gid", (long long)g);
    gid_add(l, (uint32_t)g);
  }
  return 0;
}

static void image_db_clear(struct image_db *db)
{
  free(db->passwd);
  free(db->group);
}

int ctrspec_user(const ctrspec_sc_t *sc, const struct ctrspec_image *img, struct ctr_spec *s,
                 err_t **e)
{
  __attribute__((cleanup(user_req_clear))) struct user_req r = {0};
  __attribute__((cleanup(image_db_clear))) struct image_db db = {0};
  if (user_request(sc, img->config, &r, e) < 0)
    return -1;
  if (ctrspec_image_etc_file(img, "passwd", &db.passwd, e) < 0 ||
      ctrspec_image_etc_file(img, "group", &db.group, e) < 0)
    return err_wrap(e, "read the image's users");
  cleanup_free char *username = NULL;
  if (resolve_ids(&r, &db, &s->uid, &s->gid, &username, e) < 0)
    return -1;
  struct gid_list l = {0};
  gid_add(&l, s->gid);
  bool strict = sc && sc->supplemental_groups_policy ==
                          RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
  if (!strict && username && db.group) {
    struct member_query q = {username, &l};
    db_each(db.group, member_match, &q);
  }
  if (add_cri_groups(sc, &l, e) < 0) {
    free(l.v);
    return -1;
  }
  s->groups = l.v;
  s->n_groups = l.n;
  return 0;
}
