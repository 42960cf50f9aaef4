/* monitor_sup.h - inside crisp-monitor: the supervisor of one container (runtimes/ only).
 *
 * monitor_main.c detaches and calls mon_setup (monitor_setup.c: lock, spec, log file,
 * stdio, control socket, executor) then mon_supervise and mon_finish (monitor_loop.c:
 * output to the CRI log, control requests, reaping, exit.json) with
 * monitor_attachers.c (attach sessions).
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
#include "runtimes/monitor_int.h"
#include "runtimes/monitor_sbx.h"
#include "runtimes/spec.h"

struct pollfd;

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

/* An attacher (monitor_attachers.c): a ctl.sock connection after "attach". */
#define MON_ATT_IBUF 4096           /* frames from crispd are parsed from this */
#define MON_ATT_MAX_PENDING (256 * 1024)   /* output it has not taken yet, then it goes */

struct mon_att {
  int fd;                       /* -1: free slot */
  bool in, out, err;            /* sends stdin; wants stdout; wants stderr */
  bool in_over;                 /* it sent its stdin EOF */
  bool blocked;                 /* its next stdin bytes wait for room in the container's stdin */
  uint8_t *ibuf;                /* MON_ATT_IBUF bytes, ilen used */
  size_t ilen;
  struct buf obuf;              /* frames not sent yet, from ooff */
  size_t ooff;
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
  struct mon_att att[MON_MAX_ATTACH];
  struct mon_sbx sbx;           /* the sandbox executor's tracer, if the pod's */
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


/* Attachers (monitor_attachers.c). add: takes over fd after the "attach <flags>"
 * request (answering "ok" or "err"), or closes it. */
void mon_att_add(struct mon *m, int fd, const char *flags);
/* Container output (MON_OUT / MON_ERR) to every attacher that wants it. */
void mon_att_output(struct mon *m, int stream, const void *p, size_t n);
/* pollfd slots: one per attacher, and one for the container's stdin when an attacher
 * waits for room in it. */
void mon_att_fill_poll(const struct mon *m, struct pollfd *att, struct pollfd *in);
void mon_att_events(struct mon *m, const struct pollfd *att, const struct pollfd *in);
/* The container's stdin is gone (it exited): pending stdin is dropped. */
void mon_att_stdin_gone(struct mon *m);
/* Output is queued for some attacher. */
bool mon_att_pending(const struct mon *m);
void mon_att_close_all(struct mon *m);

/* Opens (creating its directory) the CRI log file for appending. */
int mon_open_log(const char *path, int *fd, err_t **e);

#endif
