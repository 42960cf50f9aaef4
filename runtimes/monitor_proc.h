/* monitor_proc.h - crisp-monitor itself (the process; crispd's side is monitor.h).
 *
 *   crisp-monitor start STATE_DIR          fd 3: report pipe from monitor_start
 *   crisp-monitor exec [--tty] [--stdin] STATE_DIR -- ARGV
 *                                          fd 3 (optional): report pipe; fds 1, 2 are the
 *                                          command's stdout and stderr, fd 0 its stdin with
 *                                          --stdin (else /dev/null); --tty: 0-2 are a pty's
 *                                          slave, made the command's controlling terminal
 *
 * start: forks (the first process exits at once; crispd reaps it), the child calls
 * setsid and becomes the container's monitor: its own session, reparented to init, so
 * SIGKILL of crispd or a crispd restart does not reach it. It builds the container with
 * the executor, reports "ok <pid>" / "err <code-name> <message>" on fd 3, copies the
 * container's output into the CRI log (runtimes/crilog.h), serves ctl.sock, reaps the
 * container, writes exit.json and exits 0. Its own diagnostics go to
 * STATE_DIR/monitor.log. It ignores SIGTERM, SIGINT and SIGHUP: it lives exactly as long
 * as the container's first process; only SIGKILL ends it early (monitor_state then
 * reports "crisp-monitor died").
 *
 * exec: runs ARGV inside the running container (ExecSync), reports on fd 3 once it
 * exec'd, waits and exits with its status (128 + signal if killed); 255 with an "err"
 * report if it could not be started.
 */
#ifndef CRISP_RUNTIMES_MONITOR_PROC_H
#define CRISP_RUNTIMES_MONITOR_PROC_H

/* The whole program; returns the process exit status (cmd/ exits with it). */
int monitor_main(int argc, char **argv);

#endif
