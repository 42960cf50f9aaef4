/* image_config.c - the OCI / Docker image config (declared in manifest.h). */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/xalloc.h"
#include "image/manifest.h"
#include "image/manifest_internal.h"

void image_config_free(struct image_config *c)
{
  if (!c)
    return;
  free(c->os);
  free(c->architecture);
  free(c->variant);
  free(c->created);
  free(c->user);
  mj_strv_free(&c->env);
  mj_strv_free(&c->entrypoint);
  mj_strv_free(&c->cmd);
  free(c->working_dir);
  mj_strv_free(&c->volumes);
  mj_strv_free(&c->exposed_ports);
  for (size_t i = 0; i < c->n_labels; i++) {
    free(c->labels[i].key);
    free(c->labels[i].value);
  }
  free(c->labels);
  free(c->stop_signal);
  mj_strv_free(&c->diff_ids);
  for (size_t i = 0; i < c->n_history; i++) {
    free(c->history[i].created);
    free(c->history[i].created_by);
  }
  free(c->history);
  free(c);
}

static int parse_labels(const json_t *cfg, struct image_config *c, err_t **e)
{
  const json_t *l = NULL;
  if (mj_opt_obj(cfg, "Labels", "config.Labels", &l, e) < 0)
    return -1;
  if (!l)
    return 0;
  size_t n = json_len(l);
  c->labels = xcalloc(n ? n : 1, sizeof(*c->labels));
  for (size_t i = 0; i < n; i++) {
    const char *v = json_str(json_at(l, i));
    if (!v)
      return err_set(e, ERR_INVALID, 0, "config.Labels[\"%.80s\"]: expected a string",
                     json_key_at(l, i));
    c->labels[i].key = xstrdup(json_key_at(l, i));
    c->labels[i].value = xstrdup(v);
    c->n_labels++;
  }
  return 0;
}

/* The "config" member: what the container runs and how. */
static int parse_run_config(const json_t *root, struct image_config *c, err_t **e)
{
  const json_t *cfg = NULL;
  if (mj_opt_obj(root, "config", "config", &cfg, e) < 0)
    return -1;
  if (!cfg)
    return 0;
  if (mj_opt_str(cfg, "User", "config.User", &c->user, e) < 0 ||
      mj_strv(cfg, "Env", "config.Env", &c->env, e) < 0 ||
      mj_strv(cfg, "Entrypoint", "config.Entrypoint", &c->entrypoint, e) < 0 ||
      mj_strv(cfg, "Cmd", "config.Cmd", &c->cmd, e) < 0 ||
      mj_opt_str(cfg, "WorkingDir", "config.WorkingDir", &c->working_dir, e) < 0 ||
      mj_keys(cfg, "Volumes", "config.Volumes", &c->volumes, e) < 0 ||
      mj_keys(cfg, "ExposedPorts", "config.ExposedPorts", &c->exposed_ports, e) < 0 ||
      mj_opt_str(cfg, "StopSignal", "config.StopSignal", &c->stop_signal, e) < 0)
    return -1;
  return parse_labels(cfg, c, e);
}

static int parse_rootfs(const json_t *root, struct image_config *c, err_t **e)
{
  const json_t *rootfs = NULL;
  cleanup_free char *type = NULL;
  if (mj_opt_obj(root, "rootfs", "rootfs", &rootfs, e) < 0)
    return -1;
  if (!rootfs)
    return err_set(e, ERR_INVALID, 0, "rootfs is missing");
  if (mj_req_str(rootfs, "type", "rootfs.type", &type, e) < 0)
    return -1;
  if (strcmp(type, "layers") != 0)
    return err_set(e, ERR_INVALID, 0, "rootfs.type is \"%.40s\", not \"layers\"", type);
  if (!json_get(rootfs, "diff_ids"))
    return err_set(e, ERR_INVALID, 0, "rootfs.diff_ids is missing");
  if (mj_strv(rootfs, "diff_ids", "rootfs.diff_ids", &c->diff_ids, e) < 0)
    return -1;
  for (size_t i = 0; i < c->diff_ids.n; i++)
    if (!manifest_digest_valid(c->diff_ids.items[i]))
      return err_set(e, ERR_INVALID, 0, "rootfs.diff_ids[%zu]: invalid digest \"%.80s\"", i,
                     c->diff_ids.items[i]);
  return 0;
}

static int parse_history(const json_t *root, struct image_config *c, err_t **e)
{
  const json_t *h = json_get(root, "history");
  if (!h || json_type(h) == JSON_NULL)
    return 0;
  if (json_type(h) != JSON_ARRAY)
    return err_set(e, ERR_INVALID, 0, "history: expected an array");
  size_t n = json_len(h);
  c->history = xcalloc(n ? n : 1, sizeof(*c->history));
  for (size_t i = 0; i < n; i++) {
    const json_t *it = json_at(h, i);
    struct image_history *hi = &c->history[c->n_history++];
    if (json_type(it) != JSON_OBJECT)
      return err_set(e, ERR_INVALID, 0, "history[%zu]: expected an object", i);
    if (mj_opt_str(it, "created", "history.created", &hi->created, e) < 0 ||
        mj_opt_str(it, "created_by", "history.created_by", &hi->created_by, e) < 0)
      return -1;
    const json_t *el = json_get(it, "empty_layer");
    if (el && json_type(el) != JSON_NULL && json_bool(el, &hi->empty_layer) < 0)
      return err_set(e, ERR_INVALID, 0, "history[%zu].empty_layer: expected a boolean", i);
  }
  return 0;
}

int image_config_parse(const char *body, size_t len, struct image_config **out, err_t **e)
{
  cleanup_json json_t *root = NULL;
  if (mj_parse_body(body, len, "image config", &root, e) < 0)
    return -1;
  CLEANUP(image_config) struct image_config *c = xcalloc(1, sizeof(*c));
  if (mj_opt_str(root, "os", "os", &c->os, e) < 0 ||
      mj_opt_str(root, "architecture", "architecture", &c->architecture, e) < 0 ||
      mj_opt_str(root, "variant", "variant", &c->variant, e) < 0 ||
      mj_opt_str(root, "created", "created", &c->created, e) < 0 ||
      parse_run_config(root, c, e) < 0 || parse_rootfs(root, c, e) < 0 ||
      parse_history(root, c, e) < 0)
    return err_wrap(e, "image config");
  *out = steal(&c);
  return 0;
}

int image_config_check_layers(const struct image_config *c, const struct manifest *m, err_t **e)
{
  if (!c || !m || manifest_is_index(m))
    return err_set(e, ERR_INVALID, 0, "check layers: need an image config and a manifest");
  if (c->diff_ids.n != m->n_layers)
    return err_set(e, ERR_INVALID, 0,
                   "image config lists %zu layer diff_ids but the manifest has %zu layers",
                   c->diff_ids.n, m->n_layers);
  return 0;
}
