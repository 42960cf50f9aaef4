/* monitor_sup.h - inside crisp-monitor: the supervisor of one container (runtimes/ only).
 *
 * monitor_main.c detaches and calls mon_setup (monitor_setup.c: lock, spec, log file,
 * stdio, control socket, executor) then mon_supervise and mon_finish (monitor_loop.c:
 * output to the CRI log, control requests, reaping, exit.json).
 * Single-threaded; every descriptor is O_CLOEXEC, so none leaks into the container.
 */
#ifndef CRISP_RUNTIMES_MONITOR_SUP_H
#define CRISP_RUNTIMES_MONITOR_SUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"
#include "runtimes/crilog.h"
#include "runtimes/spec.h"

#define MON_MAX_CONN 4          /* control connections served at once */
#define MON_CONN_BUF 64         /* longest control request */
#define MON_DRAIN_MS 5000       /* output still read after the container's exit */

enum { MON_OUT = 0, MON_ERR = 1 };

struct mon_conn {
  int fd;                       /* -1: free slot */
  uint64_t seq;                 /* accept order: when all slots are busy the oldest goes */
  size_t len;
  char buf[MON_CONN_BUF];
};

struct mon {
  char *dir;                    /* state dir, absolute */
  struct ctr_spec *spec;
  pid_t pid;                    /* the container's first process */
  int pidfd;                    /* readable when it exits */
  int lock_fd;                  /* monitor.pid, flock'ed for the monitor's life */
  int log_fd;                   /* CRI log; -1: discard */
  int ctl_fd;                   /* listening ctl.sock */
  int sig_fd;                   /* signalfd: SIGCHLD (orphans), TERM/INT/HUP (ignored) */
  int in_w;                     /* the container's stdin, kept for attach; -1 if none */
  int src[2];                   /* stdout, stderr (a tty: stdout only); -1 at EOF */
  bool tty;
  struct crilog log[2];
  struct buf rec;               /* records on their way to the log file */
  bool log_write_failed;        /* logged once, not per record */
  struct mon_conn conn[MON_MAX_CONN];
  uint64_t conn_seq;
  bool exited;
  int status;                   /* wait status of the first process */
  int64_t finished_ns;
};

void mon_init(struct mon *m);
/* Everything up to a running container: 0 with m->pid, or the reason, with nothing
 * left behind (no container, no ctl.sock, no monitor.pid). */
int mon_setup(struct mon *m, const char *dir, err_t **e);
/* Runs until the first process is reaped and its output drained. */
void mon_supervise(struct mon *m);
/* Log closed, cgroup read for an OOM kill, executor cleanup, exit.json, ctl.sock gone. */
void mon_finish(struct mon *m);
void mon_release(struct mon *m);

/* Gives back memory only start-up needed: free heap, and the executable's read-only
 * pages (code and constants), which fault back in one by one as the loop uses them. */
void mon_trim(void);

/* Opens (creating its directory) the CRI log file for appending. */
int mon_open_log(const char *path, int *fd, err_t **e);

#endif
