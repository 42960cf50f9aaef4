/* config.h - crispd's configuration: built-in defaults, a JSON file, then flags.
 *
 * config_init_defaults fills every field; config_load_file overlays a JSON file on
 * top (a missing file is not an error: the defaults stand). An unknown key or a bad
 * value fails with ERR_INVALID naming the file, the key path and the reason.
 * The struct owns all its strings; config_clear frees them. Read-only once the
 * daemon runs, so it needs no lock.
 */
#ifndef CRISP_CRI_CONFIG_H
#define CRISP_CRI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "runtimes/executor.h"
#include "runtimes/handlers.h"

#define CONFIG_DEFAULT_PATH "/etc/crisp/config.json"

struct strv {
  char **v;
  size_t n;
};

struct registry_mirror {
  char *host;             /* registry host as written in references ("registry.k8s.io") */
  struct strv endpoints;  /* tried in order, then the host itself */
};

struct crisp_config {
  char *root;             /* persistent store, /var/lib/crisp */
  char *state;            /* volatile state, /run/crisp */
  char *listen;           /* CRI socket path */
  char *stream_address;   /* streaming server host:port, port 0 = random */
  enum log_level log_level;
  char *cni_conf_dir;
  struct strv cni_bin_dirs;
  struct registry_mirror *mirrors;
  size_t n_mirrors;
  struct strv insecure_registries;  /* hosts reached over plain http */
  char *registry_auth_file;         /* docker config.json with auths, NULL = none */
  int pull_parallelism;             /* layers fetched at once per image */
  struct runtimes runtimes;
  enum cgroup_driver cgroup_driver;   /* runtimes/executor.h */
};

void config_init_defaults(struct crisp_config *c);
void config_clear(struct crisp_config *c);

/* Overlays the JSON file at path. A missing file leaves the defaults and sets
 * *found = false. */
int config_load_file(struct crisp_config *c, const char *path, bool *found, err_t **e);
/* Same from a string (source names it in errors). */
int config_load_string(struct crisp_config *c, const char *text, const char *source, err_t **e);

/* Replaces a string setting (flags). */
void config_set_str(char **field, const char *value);

/* The effective configuration as JSON, in the file's own format. */
void config_to_json(const struct crisp_config *c, struct buf *out);

const char *cgroup_driver_name(enum cgroup_driver d);

#endif
