/* seccomp_int.h - shared by seccomp.c (RuntimeDefault, loading) and seccomp_profile.c
 * (OCI JSON profiles). libseccomp's types stay in these two files. */
#ifndef CRISP_RUNTIMES_SECCOMP_INT_H
#define CRISP_RUNTIMES_SECCOMP_INT_H

#include <seccomp.h>
#include <stdint.h>

#include "base/err.h"

struct seccomp_filter {
  scmp_filter_ctx ctx;
};

/* A filter with default action def, no_new_privs left to the caller (libseccomp would
 * otherwise set it on load, whatever the spec says). */
int seccomp_new(uint32_t def, struct seccomp_filter **out, err_t **e);
/* Adds a rule for syscall name; a name libseccomp does not know is skipped (as runc
 * does: a profile may list syscalls newer than the library), and so is a rule whose
 * action is the default one. */
int seccomp_rule(struct seccomp_filter *f, const char *name, uint32_t action, unsigned n,
                 const struct scmp_arg_cmp *args, err_t **e);
/* The architectures a container on this machine may call through (x86_64: i386, x32). */
int seccomp_native_arches(struct seccomp_filter *f, err_t **e);

/* The RuntimeDefault filter for a container whose bounding set is caps. */
int seccomp_runtime_default(uint64_t caps, struct seccomp_filter **out, err_t **e);
/* A Localhost profile (OCI / docker seccomp JSON) from path. */
int seccomp_profile_load(const char *path, uint64_t caps, struct seccomp_filter **out, err_t **e);

#endif
