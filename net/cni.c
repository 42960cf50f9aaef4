/* cni.c - ADD, DEL and CHECK through a network config list (see net/cni.h). */
#include "net/cni.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/cni_int.h"

/* --- the pod's side of a call ---------------------------------------------------------- */

/* libcni's interface name rule (the kernel's IFNAMSIZ, no path or alias separators). */
static int check_ifname(const char *s, err_t **e)
{
  if (!*s || strlen(s) > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return err_set(e, ERR_INVALID, 0, "interface name \"%s\" must be 1 to 15 characters", s);
  for (const char *c = s; *c; c++)
    if (*c == '/' || *c == ':' || isspace((unsigned char)*c))
      return err_set(e, ERR_INVALID, 0, "interface name \"%s\" must not hold '/', ':' or spaces", s);
  return 0;
}

/* CNI_ARGS is "K=V;K=V": a value holding ';' or '=' would forge other keys. */
static int check_arg(const char *what, const char *s, err_t **e)
{
  if (s && strpbrk(s, ";="))
    return err_set(e, ERR_INVALID, 0, "pod %s \"%s\" must not hold ';' or '='", what, s);
  return 0;
}

static int check_pod(const struct cni_pod *p, bool need_netns, err_t **e)
{
  if (cni_check_name("pod sandbox id", p->id, e) < 0)
    return -1;
  if (!p->dir || !*p->dir)
    return err_set(e, ERR_INVALID, 0, "pod %s: no state dir for the CNI cache", p->id);
  if (need_netns && (!p->netns || !*p->netns))
    return err_set(e, ERR_INVALID, 0, "pod %s: no network namespace path", p->id);
  if (check_ifname(p->ifname ? p->ifname : "eth0", e) < 0 || check_arg("name", p->name, e) < 0 ||
      check_arg("namespace", p->namespace_, e) < 0 || check_arg("uid", p->uid, e) < 0)
    return -1;
  return 0;
}

static char *cni_args(const struct cni_pod *p)
{
  return xasprintf("K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s;"
                   "IgnoreUnknown=1",
                   p->namespace_ ? p->namespace_ : "", p->name ? p->name : "", p->id, p->uid ? p->uid : "");
}

/* Everything one cni_add/del/check call holds. */
struct op {
  struct cni_call call;               /* command filled per chain */
  char *args;
  char *cni_path;
  struct cni_net *net;
  json_t *caps_tree;                  /* built from the pod */
  json_t *cache_doc;                  /* read from the cache */
  const json_t *caps;                 /* into one of the two */
  const json_t *cached_result;        /* into cache_doc */
};

static void op_init(struct op *op, const struct cni_opts *o, const struct cni_pod *p)
{
  memset(op, 0, sizeof(*op));
  struct buf path = BUF_INIT;
  for (size_t i = 0; i < o->n_bin_dirs; i++)
    buf_printf(&path, "%s%s", i ? ":" : "", o->bin_dirs[i]);
  op->cni_path = buf_steal(&path);
  op->args = cni_args(p);
  op->call = (struct cni_call){
      .container_id = p->id,
      .netns = p->netns ? p->netns : "",
      .ifname = p->ifname ? p->ifname : "eth0",
      .args = op->args,
      .cni_path = op->cni_path,
      .timeout_s = o->timeout_s > 0 ? o->timeout_s : CNI_TIMEOUT_DEFAULT,
  };
}

static void op_free(struct op *op)
{
  free(op->args);
  free(op->cni_path);
  cni_net_free(op->net);
  json_free(op->caps_tree);
  json_free(op->cache_doc);
}

static int op_caps_from_pod(struct op *op, const struct cni_pod *p, err_t **e)
{
  cleanup_buf struct buf b = BUF_INIT;
  if (cni_caps_build(p, &b, e) < 0 || json_parse(buf_str(&b), &op->caps_tree, e) < 0)
    return -1;
  op->caps = op->caps_tree;
  return 0;
}

/* --- running the list ------------------------------------------------------------------ */

static int run_plugin(const struct op *op, const char *cmd, size_t i, const json_t *prev, char **out,
                      err_t **e)
{
  const struct cni_net *n = op->net;
  cleanup_buf struct buf in = BUF_INIT;
  cni_plugin_stdin(n, i, prev, op->caps, &in);
  struct cni_call c = op->call;
  c.command = cmd;
  cleanup_free char *stdout_text = NULL;
  if (cni_exec(&c, &n->plugins[i], buf_str(&in), &stdout_text, e) < 0)
    return err_wrap(e, "network \"%s\"", n->name);
  if (out)
    *out = steal(&stdout_text);
  return 0;
}

/* ADD through the list; *last is the newest result (also on failure: what to undo). */
static int add_chain(const struct op *op, json_t **last, err_t **e)
{
  *last = NULL;
  for (size_t i = 0; i < op->net->n_plugins; i++) {
    cleanup_free char *out = NULL;
    if (run_plugin(op, "ADD", i, *last, &out, e) < 0)
      return -1;
    json_t *res = NULL;
    err_t *pe = NULL;
    if (json_parse(out, &res, &pe) < 0 || json_type(res) != JSON_OBJECT) {
      json_free(res);
      err_set(e, ERR_UNAVAILABLE, 0, "network \"%s\": CNI plugin %s (ADD) printed no result: %s",
              op->net->name, op->net->plugins[i].type, pe ? pe->msg : "not a JSON object");
      err_free(&pe);
      return -1;
    }
    json_free(*last);
    *last = res;
  }
  return 0;
}

/* Appends a later failure to the first, which keeps its code. */
static void merge_error(err_t **first, err_t *next)
{
  if (!*first) {
    *first = next;
    return;
  }
  err_set(first, (*first)->code, (*first)->sys_errno, "%s; %s", (*first)->msg, next->msg);
  err_free(&next);
}

/* DEL through the list in reverse; every plugin runs, the errors are gathered. */
static int del_chain(const struct op *op, const json_t *prev, err_t **e)
{
  if (!cni_version_ge(op->net->version, "0.4.0"))
    prev = NULL;                      /* prevResult on DEL came with 0.4.0 */
  err_t *all = NULL;
  for (size_t i = op->net->n_plugins; i-- > 0;) {
    err_t *pe = NULL;
    if (run_plugin(op, "DEL", i, prev, NULL, &pe) < 0)
      merge_error(&all, pe);
  }
  if (!all)
    return 0;
  if (e) {
    err_free(e);
    *e = all;
  } else {
    err_free(&all);
  }
  return -1;
}

/* After a failed ADD: take everything down again, so no veth or lease is left. */
static int rollback(const struct op *op, const char *dir, const json_t *last, err_t **e)
{
  err_t *de = NULL;
  if (del_chain(op, last, &de) == 0) {
    cni_cache_remove(dir, &de);
    err_free(&de);
    return -1;
  }
  if (e && *e)
    err_set(e, (*e)->code, (*e)->sys_errno, "%s (undoing it failed too, the CNI cache is kept for DEL: %s)",
          (*e)->msg, de->msg);
  err_free(&de);
  return -1;
}

/* --- the calls -------------------------------------------------------------------------- */

static int load_current(struct op *op, const struct cni_opts *o, err_t **e)
{
  if (cni_net_load(o->conf_dir, &op->net, e) < 0)
    return -1;
  if (!op->net)
    return err_set(e, ERR_UNAVAILABLE, 0, "no CNI network config (*.conflist, *.conf, *.json) in %s",
                   o->conf_dir);
  return cni_net_resolve(op->net, o, false, e);
}

static int add_run(struct op *op, const struct cni_pod *p, struct cni_result *out, err_t **e)
{
  struct cni_cache_rec rec = {
      .container_id = p->id, .ifname = op->call.ifname, .netns = p->netns, .args = op->args,
      .conf_text = op->net->text, .conf_source = op->net->source, .caps = op->caps,
  };
  if (cni_cache_write(p->dir, &rec, e) < 0)
    return -1;
  cleanup_json json_t *last = NULL;
  if (add_chain(op, &last, e) < 0)
    return rollback(op, p->dir, last, e);
  struct cni_result r = {0};
  rec.result = last;
  if (cni_result_parse(last, op->call.ifname, &r, e) < 0 || cni_cache_write(p->dir, &rec, e) < 0) {
    cni_result_clear(&r);
    err_wrap(e, "network \"%s\"", op->net->name);
    return rollback(op, p->dir, last, e);
  }
  *out = r;
  return 0;
}

int cni_add(const struct cni_opts *o, const struct cni_pod *p, struct cni_result *out, err_t **e)
{
  if (check_pod(p, true, e) < 0)
    return err_wrap(e, "CNI ADD");
  struct op op;
  op_init(&op, o, p);
  int rc = -1;
  if (load_current(&op, o, e) == 0 && op_caps_from_pod(&op, p, e) == 0)
    rc = add_run(&op, p, out, e);
  op_free(&op);
  return rc;
}

/* DEL and CHECK reuse what ADD cached; ERR_NOT_FOUND if nothing is cached. */
static int load_cached(struct op *op, const struct cni_pod *p, err_t **e)
{
  struct cni_cache_rec rec;
  if (cni_cache_read(p->dir, &op->cache_doc, &rec, e) < 0)
    return -1;
  if (strcmp(rec.container_id, p->id) != 0)
    return err_set(e, ERR_INVALID, 0, "the CNI cache in %s belongs to sandbox %s, not %s", p->dir,
                   rec.container_id, p->id);
  cleanup_free char *src = xasprintf("%s (as cached)", rec.conf_source);
  if (cni_net_parse(rec.conf_text, src, &op->net, e) < 0)
    return -1;
  op->caps = rec.caps;
  op->cached_result = rec.result;
  op->call.args = rec.args;
  op->call.ifname = rec.ifname;
  if (!p->netns)
    op->call.netns = rec.netns;
  return 0;
}

/* The cache if there is one; else the current config and the pod's ports. *none:
 * nothing to undo at all. A cache that cannot be read is set aside with a warning:
 * the current config is the best guess left. */
static int del_prepare(struct op *op, const struct cni_opts *o, const struct cni_pod *p, bool *none,
                       err_t **e)
{
  err_t *ce = NULL;
  *none = false;
  if (load_cached(op, p, &ce) == 0)
    return 0;
  if (ce->code != ERR_NOT_FOUND)
    log_warn("ignoring unreadable CNI cache", "pod", p->id, "error", ce->msg, NULL);
  err_free(&ce);
  cni_net_free(op->net);
  op->net = NULL;
  op->call.args = op->args;
  op->call.ifname = p->ifname ? p->ifname : "eth0";
  if (cni_net_load(o->conf_dir, &op->net, e) < 0)
    return -1;
  *none = op->net == NULL;
  return *none ? 0 : op_caps_from_pod(op, p, e);
}

int cni_del(const struct cni_opts *o, const struct cni_pod *p, err_t **e)
{
  if (check_pod(p, false, e) < 0)
    return err_wrap(e, "CNI DEL");
  struct op op;
  op_init(&op, o, p);
  bool none = false;
  int rc = del_prepare(&op, o, p, &none, e);
  if (rc == 0 && !none) {
    rc = cni_net_resolve(op.net, o, false, e);
    if (rc == 0)
      rc = del_chain(&op, op.cached_result, e);
  }
  if (rc == 0)
    rc = cni_cache_remove(p->dir, e);
  op_free(&op);
  return rc;
}

static int check_run(struct op *op, const struct cni_opts *o, const struct cni_pod *p, err_t **e)
{
  if (load_cached(op, p, e) < 0) {
    if (e && *e && (*e)->code == ERR_NOT_FOUND)
      return err_set(e, ERR_NOT_FOUND, 0, "pod %s has no CNI attachment to check (no ADD ran)", p->id);
    return -1;
  }
  if (!op->cached_result)
    return err_set(e, ERR_NOT_FOUND, 0, "pod %s: the CNI ADD did not complete", p->id);
  if (!cni_version_ge(op->net->version, "0.4.0"))
    return err_set(e, ERR_UNIMPLEMENTED, 0, "network \"%s\": CHECK needs cniVersion 0.4.0 or later, not %s",
                   op->net->name, op->net->version);
  if (op->net->disable_check)
    return 0;
  if (cni_net_resolve(op->net, o, false, e) < 0)
    return -1;
  for (size_t i = 0; i < op->net->n_plugins; i++)
    if (run_plugin(op, "CHECK", i, op->cached_result, NULL, e) < 0)
      return -1;
  return 0;
}

int cni_check(const struct cni_opts *o, const struct cni_pod *p, err_t **e)
{
  if (check_pod(p, true, e) < 0)
    return err_wrap(e, "CNI CHECK");
  struct op op;
  op_init(&op, o, p);
  int rc = check_run(&op, o, p, e);
  op_free(&op);
  return rc;
}

bool cni_ready(const struct cni_opts *o, char **why)
{
  err_t *e = NULL;
  CLEANUP(cni_net) struct cni_net *n = NULL;
  if (why)
    *why = NULL;
  if (cni_net_load(o->conf_dir, &n, &e) == 0 && !n)
    err_set(&e, ERR_UNAVAILABLE, 0, "no CNI network config (*.conflist, *.conf, *.json) in %s", o->conf_dir);
  else if (n)
    cni_net_resolve(n, o, true, &e);
  if (!e)
    return true;
  if (why)
    *why = xstrdup(e->msg);
  err_free(&e);
  return false;
}
