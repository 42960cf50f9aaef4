/* ns_fixture.h - containers for the executor tests: a busybox rootfs in a temp dir (one
 * lower layer: /bin/busybox plus a link per applet), a spec with containerd's defaults,
 * and a runner that collects the container's output. Everything a test makes (process,
 * mounts, cgroups, files) is undone by nsf_teardown, which Criterion runs even when an
 * assertion fails. Needs root, overlayfs and busybox-static. */
#ifndef CRISP_TEST_NS_FIXTURE_H
#define CRISP_TEST_NS_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/executor.h"

struct nsf {
  char *dir;              /* /tmp/crisp-ns-XXXXXX */
  char *lower;            /* dir/lower (the busybox layer) */
  struct ctr_spec *s;
  pid_t pid;              /* the running container's init, 0 if none */
  int out;                /* read end of the container's stdout+stderr pipe, -1 if none */
  char *output;           /* what nsf_run collected */
  int status;             /* wait status of the last nsf_run */
};

/* The one fixture of the current test (Criterion runs each test in its own process). */
extern struct nsf nsf;
void nsf_setup(void);
void nsf_teardown(void);

/* argv = sh -c cmd */
void nsf_cmd(const char *cmd);
/* Starts the container with stdout/stderr on a pipe. */
int nsf_start(err_t **e);
/* Reads the output until EOF (10 s at most) and reaps the container: 0 and nsf.output,
 * nsf.status. */
int nsf_wait(void);
/* nsf_start + nsf_wait; returns the exit code (128+sig if killed), -1 if start failed. */
int nsf_run(err_t **e);
/* Adds a mount to the spec. */
void nsf_add_mount(const char *src, const char *dest, const char *type, bool ro);
/* Writes a file (and its directories) into the lower layer. */
void nsf_lower_file(const char *path, const char *content);
/* Is anything mounted at or below path (in this mount namespace)? */
bool nsf_mounted_below(const char *path);
/* strdup'd list of strings into a NULL-terminated vector */
char **nsf_strv(size_t *n, ...);

#endif
