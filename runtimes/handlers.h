/* handlers.h - the RuntimeClass handler table.
 *
 * Each handler name (what a RuntimeClass's `handler:` and CRI's `runtime_handler`
 * carry) maps to one executor kind and its options. The empty name means the
 * default handler. Built once from the configuration at start and read-only after,
 * so concurrent readers need no lock.
 */
#ifndef CRISP_RUNTIMES_HANDLERS_H
#define CRISP_RUNTIMES_HANDLERS_H

#include <stddef.h>

#include "base/err.h"

enum executor_kind { EXECUTOR_NAMESPACES = 0, EXECUTOR_SANDBOX };

/* What the syscall sandbox pretends to be (sandbox executor only). */
struct sandbox_opts {
  char *kernel_release;   /* uname -r inside, default "4.4.0" */
  char *kernel_version;   /* uname -v inside */
  char *machine;          /* uname -m inside, default the host's */
  char *policy_file;      /* optional policy override (JSON), NULL = built-in */
  char *kmsg_path;        /* the pod's sandbox kernel log (set per pod by crispd, never
                             by the config): what dmesg reads, where refusals go */
  char *prog_path;        /* the policy compiled by crispd at start (seccomp BPF), so a
                             monitor need not compile it; NULL: the monitor compiles */
  char *files_dir;        /* the synthetic kernel identity files (version, osrelease,
                             kversion) bound over /proc's; set by the monitor */
};

/* The files in sandbox_opts.files_dir. */
#define SANDBOX_FILE_VERSION "version"       /* /proc/version */
#define SANDBOX_FILE_OSRELEASE "osrelease"   /* /proc/sys/kernel/osrelease */
#define SANDBOX_FILE_KVERSION "kversion"     /* /proc/sys/kernel/version */

struct rt_handler {
  char *name;
  enum executor_kind executor;
  struct sandbox_opts sandbox;
};

struct runtimes {
  struct rt_handler *v;
  size_t n;
  char *default_name;     /* names an entry of v */
};

/* "namespaces" / "sandbox" <-> enum; -1 for an unknown name. */
int executor_kind_parse(const char *name, enum executor_kind *out);
const char *executor_kind_name(enum executor_kind k);

/* Built-in table: "runc" -> namespaces (the default), "runsc" -> sandbox. */
void runtimes_init_defaults(struct runtimes *rt);
/* Adds a handler with the executor's default options; the table owns the copy. */
struct rt_handler *runtimes_add(struct runtimes *rt, const char *name, enum executor_kind k);
void runtimes_clear(struct runtimes *rt);

/* The handler for a CRI runtime_handler ("" = the default). Unknown handler ->
 * ERR_NOT_FOUND naming the configured handlers, never a silent fallback. */
int runtimes_resolve(const struct runtimes *rt, const char *name, const struct rt_handler **out,
                     err_t **e);

#endif
