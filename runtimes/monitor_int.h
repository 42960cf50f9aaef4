/* monitor_int.h - what crisp-monitor and crispd's client share (runtimes/ only).
 *
 * The state files (names and JSON encodings, see monitor.h for the layout), the
 * one-line report both `crisp-monitor start` and `crisp-monitor exec` send on fd 3:
 *   "ok <pid>\n"                      the process exec'd
 *   "err <code-name> <message>\n"     it did not; <code-name> is err_code_name()
 * and the control socket's protocol: the client sends "reopen\n", the monitor answers
 * "ok\n" or "err <code-name> <message>\n".
 *
 * "attach <i><o><e>\n" (three digits 0/1: the client sends stdin, wants stdout, wants
 * stderr) answered "ok\n" turns the connection into a stream of frames, both ways:
 *   u8 type, u32 length (big endian), length bytes of payload
 * monitor -> client: MON_F_STDOUT, MON_F_STDERR (a tty container: stdout only), at most
 * MON_FRAME_OUT_MAX bytes each; client -> monitor: MON_F_STDIN (any length),
 * MON_F_STDIN_EOF (empty), MON_F_RESIZE (u16 width, u16 height, big endian). The client
 * sends nothing before "ok". The monitor closes the connection once the container's
 * output is drained after its exit; the client leaving (detach) changes nothing for the
 * container, except that with stdin_once (and no tty) the container's stdin is closed
 * when the first attacher that sent stdin is done with it.
 *
 * The monitor holds an exclusive flock on monitor.pid for its whole life: a free lock
 * means no monitor, whatever the pid in the file says (no pid-reuse or zombie doubt),
 * and the kernel drops it the moment the monitor dies, even by SIGKILL.
 */
#ifndef CRISP_RUNTIMES_MONITOR_INT_H
#define CRISP_RUNTIMES_MONITOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtimes/monitor.h"

#define MON_SPEC "spec.json"
#define MON_PIDFILE "monitor.pid"
#define MON_CTR_PID "pid"
#define MON_STARTED "started.json"
#define MON_EXIT "exit.json"
#define MON_CTL "ctl.sock"
#define MON_LOG "monitor.log"       /* the monitor's own diagnostics (logfmt) */

enum mon_frame {
  MON_F_STDIN = 0, MON_F_STDOUT = 1, MON_F_STDERR = 2, MON_F_STDIN_EOF = 3, MON_F_RESIZE = 4,
};
#define MON_FRAME_HDR 5
#define MON_FRAME_OUT_MAX 16384
#define MON_MAX_ATTACH 16           /* attachers served at once */

#define MON_REPORT_FD 3
#define MON_REPORT_MAX 4096         /* longest report line read */
#define MON_STATE_FILE_MAX 65536

int64_t mon_now_ns(void);

/* started.json / exit.json: written atomically, read back; a missing file is
 * ERR_NOT_FOUND, a malformed one ERR_INTERNAL naming it. */
int mon_started_write(const char *dir, pid_t pid, int64_t started_ns, err_t **e);
int mon_started_read(const char *dir, pid_t *pid, int64_t *started_ns, err_t **e);
int mon_exit_write(const char *dir, const struct ctr_exit *x, err_t **e);
int mon_exit_read(const char *dir, struct ctr_exit *x, err_t **e);

/* A wait status (and whether the cgroup saw an OOM kill) as kubelet wants it:
 * 128 + signal, reason OOMKilled / Completed / Error. */
void mon_exit_from_status(int wstatus, bool oom_killed, int64_t finished_ns, struct ctr_exit *x);

/* Copies s into dst[cap], cut at cap - 1 bytes (fixed-size fields of struct ctr_exit). */
void mon_copy_field(char *dst, size_t cap, const char *s);

/* Writes a report line on fd: "ok <pid>" when err is NULL, else "err ..." (newlines
 * in the message become spaces). Write errors are ignored: the reader is gone. */
void mon_report(int fd, pid_t pid, const err_t *err);
/* Parses a report line (without its "\n"): 0 and *pid for "ok", -1 with the reported
 * error for "err", ERR_INTERNAL for anything else. */
int mon_report_parse(const char *line, pid_t *pid, err_t **e);
/* "<code-name> <message>" (the tail of an "err" line) -> the error it names. */
int mon_err_parse(const char *tail, err_t **e);

/* Whether a monitor holds the lock on dir/monitor.pid. *exists: the file is there. */
int mon_lock_held(const char *dir, bool *held, bool *exists, err_t **e);

/* Fills a unix socket address for dir/name; a path longer than sun_path goes through
 * /proc/self/fd/<dirfd>/name (dirfd is opened then, and the caller closes it). */
struct sockaddr_un;
int mon_sock_addr(const char *dir, const char *name, struct sockaddr_un *sa, int *dirfd,
                  err_t **e);

/* Spawns argv (crispd side, safe in a threaded process: posix_spawn) with stdin
 * /dev/null, stdout out and stderr err (-1: /dev/null), report as fd 3, every other
 * descriptor closed, default signal dispositions and an empty signal mask, in a new
 * process group when new_pgrp. *pidfd (pidfd_open) becomes readable when it exits. */
int mon_spawn(char *const argv[], int out, int err, int report, bool new_pgrp, pid_t *pid,
              int *pidfd, err_t **e);
/* The same with in as stdin (-1: /dev/null). */
int mon_spawn_io(char *const argv[], int in, int out, int err, int report, bool new_pgrp,
                 pid_t *pid, int *pidfd, err_t **e);
/* Waits up to timeout_ms for the spawned child to exit, SIGKILLs it after that, and
 * reaps it: its wait status. */
int mon_reap(pid_t pid, int pidfd, int timeout_ms);

/* monitor_start with a chosen timeout (tests). */
int monitor_start_timeout(const char *helper, const char *state_dir, int timeout_ms, pid_t *pid,
                          err_t **e);

/* Connects to the monitor's ctl.sock in state_dir (blocking, close-on-exec);
 * ERR_PRECONDITION when no monitor listens (the container is not running). */
int mon_ctl_connect(const char *state_dir, int *out, err_t **e);

/* Reads one "\n"-terminated line from fd into out[cap] within timeout_ms (-1: none).
 * 0 with the line (no "\n"); ERR_DEADLINE on timeout; ERR_UNAVAILABLE when the
 * writer closed before a full line. */
int mon_read_line(int fd, int timeout_ms, char *out, size_t cap, err_t **e);

#endif
