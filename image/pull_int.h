/* pull_int.h - what pull.c (crispd's side) and pull_child.c (the helper) share. */
#ifndef CRISP_IMAGE_PULL_INT_H
#define CRISP_IMAGE_PULL_INT_H

#include <pthread.h>

#include "base/buf.h"
#include "base/err.h"

#define PULL_LINE_MAX (24u << 20)   /* a message carries a manifest and a config (4 MiB each) */

/* Reads newline-terminated messages from a pipe. */
struct line_reader {
  int fd;
  struct buf b;
  size_t used;    /* bytes of b already handed out */
};

/* 1: *line points to the next line (valid until the next call); 0: nothing arrived
 * within timeout_ms (-1 waits); -1: end of file (ERR_UNAVAILABLE) or error. */
int line_read(struct line_reader *r, int timeout_ms, char **line, err_t **e);
void line_reader_clear(struct line_reader *r);

/* Writes b plus a newline with one write(2) under mu (mu may be NULL). */
int line_write(int fd, pthread_mutex_t *mu, const struct buf *b, err_t **e);

/* err_code <-> its name, for errors that cross the pipe. */
enum err_code pull_code_parse(const char *name);

#endif
