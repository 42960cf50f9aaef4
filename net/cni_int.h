/* cni_int.h - the pieces of net/cni.c, shared by its files only. */
#ifndef CRISP_NET_CNI_INT_H
#define CRISP_NET_CNI_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/err.h"
#include "base/json.h"
#include "net/cni.h"

#define CNI_CONF_MAX (1u << 20)       /* a network config or cache file */

/* --- cni_config.c: a network config list --------------------------------------- */

struct cni_plugin {
  const json_t *conf;                 /* the plugin's object, in net->tree */
  const char *type;
  char *path;                         /* the executable, once cni_net_resolve found it */
};

struct cni_net {
  char *text;                         /* the config as read: cached verbatim for DEL */
  char *source;                       /* the file it came from (or "cache") */
  json_t *tree;
  const char *name;
  const char *version;
  bool disable_check;
  struct cni_plugin *plugins;
  size_t n_plugins;
};

/* Parses and validates config text (a list or a single plugin). ERR_INVALID names
 * source and the bad key. Takes a copy of text. */
int cni_net_parse(const char *text, const char *source, struct cni_net **out, err_t **e);
/* Loads the config conf_dir selects; *out = NULL (and 0) if there is none. */
int cni_net_load(const char *conf_dir, struct cni_net **out, err_t **e);
/* Finds every plugin's executable (and with ipam, its ipam.type) in bin_dirs;
 * ERR_UNAVAILABLE names the first missing one and the dirs searched. */
int cni_net_resolve(struct cni_net *n, const struct cni_opts *o, bool ipam_too, err_t **e);
void cni_net_free(struct cni_net *n);
DEFINE_CLEANUP(cni_net, struct cni_net)

/* cniVersion a >= b, for the versions cni_net_parse accepts. */
bool cni_version_ge(const char *a, const char *b);
/* 0 if s is a valid container id or network name for CNI (and libcni). */
int cni_check_name(const char *what, const char *s, err_t **e);

/* --- cni_stdin.c: what a plugin reads ------------------------------------------ */

/* Writes n as JSON text. */
void cni_json_emit(struct buf *b, const json_t *n);
/* The capability arguments of a pod, as a JSON object (portMappings, dns, ipRanges;
 * only those that have content). */
int cni_caps_build(const struct cni_pod *p, struct buf *out, err_t **e);
/* The stdin of plugin i: its config with name, cniVersion, prevResult (if prev is not
 * NULL, re-labelled with the list's version) and runtimeConfig for the capabilities
 * it declares that caps holds. */
void cni_plugin_stdin(const struct cni_net *n, size_t i, const json_t *prev, const json_t *caps,
                      struct buf *out);

/* --- cni_exec.c: one plugin call ----------------------------------------------- */

struct cni_call {
  const char *command;                /* ADD, DEL, CHECK */
  const char *container_id;
  const char *netns;                  /* "" allowed for DEL */
  const char *ifname;
  const char *args;                   /* CNI_ARGS */
  const char *cni_path;               /* CNI_PATH */
  int timeout_s;
};

/* Runs plugin with stdin; on exit 0, *out is its stdout (caller frees). Otherwise the
 * plugin's error as the header describes. */
int cni_exec(const struct cni_call *c, const struct cni_plugin *plugin, const char *stdin_text,
             char **out, err_t **e);
/* Turns a plugin's error object into *e; -1 always. exit_desc says how it ended. */
int cni_plugin_error(const struct cni_plugin *plugin, const char *command, const char *stdout_text,
                     const char *stderr_text, const char *exit_desc, err_t **e);

/* --- cni_cache.c: results and the per-pod cache -------------------------------- */

/* One pod's attachment: what ADD used, what DEL and CHECK reuse. Borrowed pointers. */
struct cni_cache_rec {
  const char *container_id;
  const char *ifname;
  const char *netns;
  const char *args;                   /* CNI_ARGS */
  const char *conf_text;              /* the network config, verbatim */
  const char *conf_source;            /* the file it came from */
  const json_t *caps;                 /* capability arguments, an object */
  const json_t *result;               /* NULL until the ADD completed */
};

/* Writes <dir>/CNI_CACHE_FILE atomically (dir is created if missing). */
int cni_cache_write(const char *dir, const struct cni_cache_rec *r, err_t **e);
/* Reads it: *doc owns what *r points to. ERR_NOT_FOUND if there is none, ERR_INVALID
 * if it is unreadable or not crisp's. */
int cni_cache_read(const char *dir, json_t **doc, struct cni_cache_rec *r, err_t **e);
/* Removes it; a missing one is fine. */
int cni_cache_remove(const char *dir, err_t **e);

/* The pod's addresses from a result (either result format): the first IPv4 and IPv6
 * address on ifname inside the pod (or on no interface in particular). */
int cni_result_parse(const json_t *result, const char *ifname, struct cni_result *out, err_t **e);

#endif
