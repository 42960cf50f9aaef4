/* cni_config.c - reading and checking a CNI network config list, finding plugins. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/xalloc.h"
#include "net/cni_conf.h"
#include "net/cni_int.h"

/* Oldest first: the order cni_version_ge compares by. 0.1.0 and 0.2.0 predate
 * chaining and the result format crisp reads; 1.1.0 is newer than Debian's plugins. */
static const char *const versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
#define N_VERSIONS (sizeof(versions) / sizeof(versions[0]))

static int version_index(const char *v)
{
  for (size_t i = 0; v && i < N_VERSIONS; i++)
    if (strcmp(v, versions[i]) == 0)
      return (int)i;
  return -1;
}

bool cni_version_ge(const char *a, const char *b)
{
  return version_index(a) >= version_index(b);
}

/* libcni's rule for container ids and network names: they end up in file names
 * (host-local's lease dir, iptables comments), so nothing but [A-Za-z0-9_.-]. */
int cni_check_name(const char *what, const char *s, err_t **e)
{
  if (!s || !*s)
    return err_set(e, ERR_INVALID, 0, "%s is empty", what);
  if (!isalnum((unsigned char)s[0]))
    return err_set(e, ERR_INVALID, 0, "%s \"%s\" must start with a letter or digit", what, s);
  for (const char *c = s; *c; c++)
    if (!isalnum((unsigned char)*c) && !strchr("_.-", *c))
      return err_set(e, ERR_INVALID, 0, "%s \"%s\" may hold only letters, digits, '_', '.' and '-'",
                     what, s);
  return 0;
}

/* A plugin type is a file name in the bin dirs, never a path. */
static int check_type(const char *source, size_t i, const char *type, err_t **e)
{
  if (!type || !*type)
    return err_set(e, ERR_INVALID, 0, "%s: plugins[%zu]: \"type\" must be a non-empty string", source, i);
  if (strchr(type, '/') || strcmp(type, ".") == 0 || strcmp(type, "..") == 0)
    return err_set(e, ERR_INVALID, 0, "%s: plugins[%zu]: type \"%s\" must be a file name, not a path",
                   source, i, type);
  return 0;
}

static int check_plugin(const char *source, size_t i, const json_t *pl, err_t **e)
{
  if (json_type(pl) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s: plugins[%zu] must be an object", source, i);
  if (check_type(source, i, json_str(json_get(pl, "type")), e) < 0)
    return -1;
  const json_t *caps = json_get(pl, "capabilities");
  if (caps && json_type(caps) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s: plugins[%zu]: \"capabilities\" must be an object", source, i);
  return 0;
}

static int parse_header(struct cni_net *n, err_t **e)
{
  const json_t *root = n->tree;
  if (json_type(root) != JSON_OBJECT)
    return err_set(e, ERR_INVALID, 0, "%s: a network config must be a JSON object", n->source);
  n->version = json_str(json_get(root, "cniVersion"));
  if (!n->version)
    return err_set(e, ERR_INVALID, 0, "%s: \"cniVersion\" is missing", n->source);
  if (version_index(n->version) < 0)
    return err_set(e, ERR_INVALID, 0, "%s: cniVersion \"%s\" is not supported (0.3.0, 0.3.1, 0.4.0, 1.0.0)",
                   n->source, n->version);
  n->name = json_str(json_get(root, "name"));
  if (cni_check_name("network name", n->name, e) < 0)
    return err_wrap(e, "%s", n->source);
  const json_t *dc = json_get(root, "disableCheck");
  const char *dcs = json_str(dc);
  if (dcs)
    n->disable_check = strcasecmp(dcs, "true") == 0;
  else if (dc && json_bool(dc, &n->disable_check) < 0)
    return err_set(e, ERR_INVALID, 0, "%s: \"disableCheck\" must be a boolean", n->source);
  return 0;
}

static int parse_plugins(struct cni_net *n, err_t **e)
{
  const json_t *list = json_get(n->tree, "plugins");
  if (!list) {
    /* a single plugin (.conf): the whole object is its config */
    if (check_plugin(n->source, 0, n->tree, e) < 0)
      return -1;
    n->plugins = xcalloc(1, sizeof(*n->plugins));
    n->plugins[0].conf = n->tree;
    n->plugins[0].type = json_str(json_get(n->tree, "type"));
    n->n_plugins = 1;
    return 0;
  }
  if (json_type(list) != JSON_ARRAY || json_len(list) == 0)
    return err_set(e, ERR_INVALID, 0, "%s: \"plugins\" must be a non-empty array", n->source);
  n->n_plugins = json_len(list);
  n->plugins = xcalloc(n->n_plugins, sizeof(*n->plugins));
  for (size_t i = 0; i < n->n_plugins; i++) {
    const json_t *pl = json_at(list, i);
    if (check_plugin(n->source, i, pl, e) < 0)
      return -1;
    n->plugins[i].conf = pl;
    n->plugins[i].type = json_str(json_get(pl, "type"));
  }
  return 0;
}

int cni_net_parse(const char *text, const char *source, struct cni_net **out, err_t **e)
{
  CLEANUP(cni_net) struct cni_net *n = xcalloc(1, sizeof(*n));
  n->text = xstrdup(text);
  n->source = xstrdup(source);
  if (json_parse(n->text, &n->tree, e) < 0)
    return err_wrap(e, "%s", source);
  if (parse_header(n, e) < 0 || parse_plugins(n, e) < 0)
    return -1;
  *out = steal(&n);
  return 0;
}

int cni_net_load(const char *conf_dir, struct cni_net **out, err_t **e)
{
  *out = NULL;
  cleanup_free char *path = NULL;
  if (cni_conf_find(conf_dir, &path, e) < 0)
    return -1;
  if (!path)
    return 0;
  cleanup_free char *text = NULL;
  if (file_read_all(path, CNI_CONF_MAX, &text, NULL, e) < 0)
    return err_wrap(e, "CNI network config");
  return cni_net_parse(text, path, out, e);
}

static char *find_in_dirs(const struct cni_opts *o, const char *type)
{
  for (size_t i = 0; i < o->n_bin_dirs; i++) {
    char *path = path_join(o->bin_dirs[i], type);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
      return path;
    free(path);
  }
  return NULL;
}

static int not_found(const struct cni_opts *o, const char *net, const char *what, const char *type, err_t **e)
{
  cleanup_buf struct buf dirs = BUF_INIT;
  for (size_t i = 0; i < o->n_bin_dirs; i++)
    buf_printf(&dirs, "%s%s", i ? ", " : "", o->bin_dirs[i]);
  return err_set(e, ERR_UNAVAILABLE, 0, "network \"%s\": %s \"%s\" not found in %s", net, what, type,
                 o->n_bin_dirs ? buf_str(&dirs) : "(no plugin directories configured)");
}

int cni_net_resolve(struct cni_net *n, const struct cni_opts *o, bool ipam_too, err_t **e)
{
  for (size_t i = 0; i < n->n_plugins; i++) {
    struct cni_plugin *pl = &n->plugins[i];
    if (!pl->path)
      pl->path = find_in_dirs(o, pl->type);
    if (!pl->path)
      return not_found(o, n->name, "CNI plugin", pl->type, e);
    const char *ipam = json_str(json_get(json_get(pl->conf, "ipam"), "type"));
    if (!ipam_too || !ipam)
      continue;
    if (strchr(ipam, '/'))
      return err_set(e, ERR_INVALID, 0, "%s: ipam type \"%s\" must be a file name", n->source, ipam);
    cleanup_free char *ipath = find_in_dirs(o, ipam);
    if (!ipath)
      return not_found(o, n->name, "CNI IPAM plugin", ipam, e);
  }
  return 0;
}

void cni_net_free(struct cni_net *n)
{
  if (!n)
    return;
  for (size_t i = 0; i < n->n_plugins; i++)
    free(n->plugins[i].path);
  free(n->plugins);
  json_free(n->tree);
  free(n->text);
  free(n->source);
  free(n);
}
