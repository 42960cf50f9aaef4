/* pull_int.h - what pull.c (crispd's side) and pull_child.c (the helper) share. */
#ifndef CRISP_IMAGE_PULL_INT_H
#define CRISP_IMAGE_PULL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "image/pull.h"
#include "image/ref.h"
#include "image/store.h"

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
/* The helper's last word on a failure: {"type":"error","code":...,"message":...}.
 * A write error is ignored (the reader is gone). */
void line_write_error(int fd, pthread_mutex_t *mu, const err_t *err);

/* err_code <-> its name, for errors that cross the pipe. */
enum err_code pull_code_parse(const char *name);

/* The helper's import mode (import_child.c): job {"import":true,"spool":"<dir>"}, the
 * archive on fd 3. */
int import_child_main(const json_t *job, struct line_reader *in, int out_fd, err_t **e);

/* ---- crispd's side, shared by pull.c and import.c ------------------------------ */

struct inflight;

struct puller {
  struct store *store;
  char *helper;
  char *registries_json;   /* the job's "registries" member, built once */
  int parallel;
  pthread_mutex_t mu;
  struct inflight *inflight;
};

/* One crisp-pull process. */
struct helper {
  pid_t pid;
  int to;                  /* its stdin */
  struct line_reader from; /* its stdout */
};

/* Starts crisp-pull; extra_fd (if >= 0) becomes its fd 3. */
int pull_helper_start(const struct puller *p, struct helper *h, int extra_fd, err_t **e);
/* Stops the helper (at once if kill_it) and reaps it; -1 if it did not exit 0. */
int pull_helper_stop(struct helper *h, bool kill_it);
/* Next message from the helper, honouring r's cancellation and deadline; an "error"
 * message becomes *e with its code. */
int pull_helper_read(struct helper *h, const struct pull_request *r, json_t **msg, err_t **e);
long long pull_mono_ms(void);

struct layer_claim {
  char chain[STORE_DIGEST_BUF];
  const char *parent;
  const char *digest, *diff_id;
  char *tmpdir;        /* non-NULL while we own an unpack */
  bool committed;      /* this pull published it */
};

/* One image coming from the helper: its "image" message, then its layers. */
struct pull_state {
  struct puller *p;
  const struct pull_request *r;
  struct image_ref ref;
  struct helper *h;
  json_t *image;        /* the helper's "image" message */
  char *blobs[3];       /* digests this pull stored (pointing into image) */
  size_t n_blobs;
  struct layer_claim *layers;
  size_t n_layers;
  size_t pending;       /* layers the helper still unpacks for us */
};

/* Stores the index, manifest and config of s->image. */
int pull_store_blobs(struct pull_state *s, err_t **e);
/* Claims every layer, assigns the helper those to unpack, then sends {"end":true}. */
int pull_claim_layers(struct pull_state *s, err_t **e);
/* Checks and commits a layer the helper reports. */
int pull_commit_layer(struct pull_state *s, const json_t *msg, err_t **e);
/* Aborts claims still open; when failed, takes back what s published. Keeps s->ref. */
void pull_state_release(struct pull_state *s, bool failed);

#endif
