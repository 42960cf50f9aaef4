/* streaming.h - the back ends behind crispd's streaming server (cri/ only).
 *
 * streaming.c answers Exec, Attach and PortForward with a URL whose token carries a
 * struct stream_req; the stream server (stream_server.h) then calls one of these on a
 * thread of its own when the client connects:
 *   exec (streaming_exec.c)      `crisp-monitor exec` with pipes or a pty
 *   attach (streaming_exec.c)    the container monitor's attach stream
 *   port_forward (streaming_pf.c) a TCP connection in the pod's network namespace
 * Each owns nothing beyond the session: the request is freed by the server.
 */
#ifndef CRISP_CRI_STREAMING_H
#define CRISP_CRI_STREAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "cri/stream_server.h"

struct stream_req {
  char *id;                 /* container (exec, attach) or pod (port-forward) */
  char *dir;                /* container: its state dir; pod: <state>/pods/<id> */
  char **argv;              /* exec: the command, NULL-terminated */
  size_t argc;
  bool host_net;            /* port-forward: the pod uses the node's network */
};

void stream_req_free(void *req);

void cri_stream_exec(void *ctx, struct stream_session *s, void *req);
void cri_stream_attach(void *ctx, struct stream_session *s, void *req);
int cri_stream_port_forward(void *ctx, struct stream_pipe *p, void *req, err_t **e);

#endif
