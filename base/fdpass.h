/* fdpass.h - one descriptor over a unix socket (SCM_RIGHTS).
 *
 * How a pty made inside a container reaches the process that serves it (runc's
 * --console-socket model): the container's side opens the pty in its own devpts and
 * sends the master; crispd (exec) or crisp-monitor (a container's init) receives it.
 * Not thread-safe on one socket; each call moves exactly one descriptor.
 */
#ifndef CRISP_BASE_FDPASS_H
#define CRISP_BASE_FDPASS_H

#include <stddef.h>

#include "base/err.h"

/* Sends fd with a one-byte message on sock. fd stays the caller's (the receiver gets
 * its own copy); a peer that is gone is an error, never a SIGPIPE. */
int fd_send(int sock, int fd, err_t **e);

/* The same with data (len > 0) as the message that carries fd: all of it is sent in
 * one sendmsg, or it is an error. */
int fd_send_data(int sock, int fd, const void *data, size_t len, err_t **e);

/* Waits up to timeout_ms (< 0: no limit) for one descriptor sent by fd_send and stores
 * it, close-on-exec, in *fd (the caller owns it). Nothing in time, the peer closing
 * first or a message without exactly one descriptor: ERR_INTERNAL saying which. */
int fd_recv(int sock, int timeout_ms, int *fd, err_t **e);

#endif
