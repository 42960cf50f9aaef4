/* monitor.h - crispd's side of crisp-monitor, the per-container supervisor.
 *
 * A container's state directory (<state>/containers/<id>/) holds:
 *   spec.json     the struct ctr_spec (written by crispd before start)
 *   monitor.pid   the monitor's pid (written by the monitor)
 *   pid           the container's first process, once started
 *   started.json  {"pid", "started_at"} written atomically once the process exec'd
 *   exit.json     {"exit_code", "signal", "finished_at", "reason", "message"} written
 *                 atomically when the container's first process is gone
 *   ctl.sock      the monitor's control socket (reopen the log; attach later)
 *   monitor.log   the monitor's own diagnostics (logfmt), for a human debugging it
 * crisp-monitor is started by monitor_start, detaches (its own session, reparented
 * away from crispd) and lives exactly as long as the container: a crispd restart or
 * crash never touches it, and a restarted crispd learns everything from these files.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef CRISP_RUNTIMES_MONITOR_H
#define CRISP_RUNTIMES_MONITOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"
#include "runtimes/spec.h"

struct ctr_exit {
  int exit_code;            /* 128 + signal when killed by one (as kubelet expects) */
  int signal;               /* 0 if it exited */
  int64_t finished_at_ns;   /* CLOCK_REALTIME */
  char reason[32];          /* "Completed", "Error", "OOMKilled" */
  char message[256];
  bool cleaned;             /* the monitor took down the container's mounts and cgroup */
};

struct ctr_runtime_state {
  bool started;             /* started.json exists */
  pid_t pid;
  int64_t started_at_ns;
  bool exited;              /* exit.json exists */
  struct ctr_exit exit;
  bool monitor_alive;       /* the monitor process is still there */
};

/* Starts crisp-monitor (helper = its path) for the container whose spec.json is in
 * state_dir, and waits until the container's process exec'd: 0 with *pid, or the
 * exact error the monitor reported (nothing is left running then). */
int monitor_start(const char *helper, const char *state_dir, pid_t *pid, err_t **e);

/* Reads the state files (never blocks on the monitor). A monitor that died without
 * writing exit.json (killed) yields exited = true with reason "Error" and a message
 * saying so, so a container is never reported running without a supervisor. */
int monitor_state(const char *state_dir, struct ctr_runtime_state *out, err_t **e);

/* Waits up to timeout_ms for the monitor of state_dir to be gone (it unmounts and
 * cleans up after its container exited, so it may outlive the exit by a moment);
 * one still there then is SIGKILLed and waited for. 0 once no monitor holds the
 * state dir (or none ever did). */
int monitor_wait_gone(const char *state_dir, int timeout_ms, err_t **e);

/* The pid monitor.pid names, or -1 when there is none (no file, not a pid). Whether
 * that process is still the monitor is for the lock on the file to say. */
pid_t monitor_pid_read(const char *state_dir);

/* Asks the monitor to reopen the CRI log file (after kubelet rotated it). */
int monitor_reopen_log(const char *state_dir, err_t **e);

/* Runs x in the container to completion (ExecSync): stdout and stderr each captured up
 * to max_output bytes (the rest is dropped), killed after timeout_ms (0 = none) with
 * *timed_out set. exec_helper is crisp-monitor, run in its exec mode. */
struct exec_result {
  int exit_code;
  bool timed_out;
  struct buf out, err;
};
int monitor_exec_sync(const char *exec_helper, const char *state_dir, const struct exec_spec *x,
                      int64_t timeout_ms, size_t max_output, struct exec_result *res, err_t **e);

/* An interactive exec (the Exec RPC): x runs in the container as for ExecSync, with in,
 * out and err as its stdin, stdout and stderr (-1: /dev/null; with x->tty all three are
 * the slave of the caller's pty, which becomes the command's controlling terminal).
 * Returns once the command exec'd, or with the reason it could not (nothing is left
 * running then). The caller keeps its descriptors and closes its copies.
 * Thread-safety: kill may be called from any thread until free; the rest from one. */
struct monitor_exec;
int monitor_exec_start(const char *exec_helper, const char *state_dir, const struct exec_spec *x,
                       int in, int out, int err, struct monitor_exec **out_exec, err_t **e);
/* Readable once the command is over (poll it with the command's output). */
int monitor_exec_fd(const struct monitor_exec *x);
/* Waits for the end: the command's exit code, 128 + signal if killed by one. */
int monitor_exec_wait(struct monitor_exec *x);
/* Kills the command (and its process group) soon; no-op once it ended. */
void monitor_exec_kill(struct monitor_exec *x);
/* Kills a command still running and reaps it. NULL is a no-op. */
void monitor_exec_free(struct monitor_exec *x);

/* Attach (the Attach RPC): a connection to the container's monitor carrying the main
 * process's stdio (see monitor_int.h for the wire protocol). ERR_PRECONDITION if the
 * container is not running; ERR_RESOURCE when MON_MAX_ATTACH attachers are there.
 * Thread-safety: read from one thread, stdin from another, resize and shutdown from
 * any; free once the others returned. */
struct monitor_attach;
int monitor_attach_open(const char *state_dir, bool in, bool out, bool err,
                        struct monitor_attach **out_attach, err_t **e);
/* The next piece of output into buf: > 0 bytes with *stream 1 (stdout) or 2 (stderr);
 * 0 once the container's output is over or after shutdown; -1 on a broken stream. */
ssize_t monitor_attach_read(struct monitor_attach *a, int *stream, void *buf, size_t cap,
                            err_t **e);
/* Sends stdin (blocks while the container does not read it); len 0: end of stdin. */
int monitor_attach_stdin(struct monitor_attach *a, const void *buf, size_t len, err_t **e);
/* A terminal size for a tty container. Never blocks: while stdin is on its way the
 * size goes out after it (the latest size wins). */
void monitor_attach_resize(struct monitor_attach *a, uint16_t width, uint16_t height);
/* Ends the connection: blocked reads and writes return. The container runs on. */
void monitor_attach_shutdown(struct monitor_attach *a);
void monitor_attach_free(struct monitor_attach *a);

#endif
