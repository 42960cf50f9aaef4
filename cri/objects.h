/* objects.h - crispd's pods and containers: records on disk, an index in memory.
 *
 * A record is a small JSON file (<root>/pods/<id>.json, <root>/containers/<id>.json)
 * written atomically, holding crisp's own fields plus the CRI config the object was
 * created with (packed protobuf, hex), so everything kubelet asked for survives a
 * restart without a second schema. The runtime state of a container (running, exit
 * code) is not in its record: it lives in the monitor's files (runtimes/monitor.h).
 *
 * Names are reserved the way kubelet expects: one pod per (name, namespace, uid,
 * attempt), one container per (pod, name, attempt); a duplicate is ERR_EXISTS.
 * IDs are 64 random hex digits; lookups take an ID or a unique prefix of it.
 *
 * Thread-safety: every function locks the index. Records in the index are immutable
 * and reference counted: get/list hand out references (cheap, no copy) that the
 * caller drops with pod_rec_free / ctr_rec_free; add/update store a deep copy of what
 * they are given. A per-object mutex (objects_lock) serialises lifecycle calls on one
 * object (start vs stop vs remove) without blocking others.
 */
#ifndef CRISP_CRI_OBJECTS_H
#define CRISP_CRI_OBJECTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "cri/api.pb-c.h"

struct list_memo;

struct pod_rec {
  char *id;
  Runtime__V1__PodSandboxConfig *config;   /* owned, unpacked */
  char *handler;                           /* resolved runtime handler name */
  int64_t created_ns;
  bool ready;                              /* false once stopped */
  char *ip;                                /* "" until networking assigns one */
  char *ip6;
  bool creating;                           /* RunPodSandbox not finished (undone at start) */
  atomic_int refs;                         /* managed by objects.c */
  _Atomic(struct list_memo *) list_memo;   /* its ListPodSandbox entry, packed on first use
                                              (list_memo.h); never copied, freed with it */
};

struct ctr_rec {
  char *id;
  char *pod_id;
  Runtime__V1__ContainerConfig *config;    /* owned, unpacked */
  char *image_id;                          /* what it was created from */
  char *image_name;                        /* as the user wrote it (config.image.image) */
  char *log_path;                          /* resolved CRI log path, "" if none */
  int64_t created_ns;
  bool start_requested;                    /* StartContainer was called (maybe failed) */
  char *start_error;                       /* why the start failed, "" if it did not */
  bool creating;                           /* CreateContainer not finished (undone at start) */
  atomic_int refs;                         /* managed by objects.c */
  _Atomic(struct list_memo *) list_memo;   /* its ListContainers entry (as for pods) */
};

struct objects;

/* Loads every record under root (a corrupt one is moved to <root>/quarantine and
 * logged, never dropped silently). */
int objects_open(const char *root, struct objects **out, err_t **e);
void objects_close(struct objects *o);
/* Reads the records under root into r (counts of pods and containers, each problem,
 * containers whose pod is gone); r->check_only changes nothing on disk, otherwise
 * corrupt records are quarantined as objects_open does. */
struct store_report;
int objects_check(const char *root, struct store_report *r, err_t **e);

/* A heap copy of a protobuf-c message, freeable with protobuf_c_message_free_unpacked
 * (also as part of the message that holds it). NULL -> NULL. */
void *objects_msg_copy(const ProtobufCMessage *m);

/* 64 random hex digits. */
void objects_new_id(char out[65]);

/* Pods. add: reserves the name and writes the record; ERR_EXISTS for a duplicate name. */
int objects_pod_add(struct objects *o, const struct pod_rec *p, err_t **e);
int objects_pod_update(struct objects *o, const struct pod_rec *p, err_t **e);
int objects_pod_remove(struct objects *o, const char *id, err_t **e);
/* By ID or unique prefix; ERR_NOT_FOUND. */
int objects_pod_get(struct objects *o, const char *id, struct pod_rec **out, err_t **e);
int objects_pod_list(struct objects *o, struct pod_rec ***out, size_t *n);
/* Like objects_pod_get, but an absent pod is not an error: 0 with *out NULL (for the
 * calls where removing or stopping what is not there succeeds). */
int objects_pod_find(struct objects *o, const char *id, struct pod_rec **out, err_t **e);

int objects_ctr_add(struct objects *o, const struct ctr_rec *c, err_t **e);
int objects_ctr_update(struct objects *o, const struct ctr_rec *c, err_t **e);
int objects_ctr_remove(struct objects *o, const char *id, err_t **e);
int objects_ctr_get(struct objects *o, const char *id, struct ctr_rec **out, err_t **e);
/* pod_id NULL: all containers. */
int objects_ctr_list(struct objects *o, const char *pod_id, struct ctr_rec ***out, size_t *n);
/* Like objects_ctr_get, but an absent container is 0 with *out NULL. */
int objects_ctr_find(struct objects *o, const char *id, struct ctr_rec **out, err_t **e);

/* Changes with every add, update and remove of a pod or container (read it before
 * reading the records: what is built from them is current while it stays the same). */
uint64_t objects_version(struct objects *o);

/* Serialises lifecycle calls on one object (by full ID). */
void objects_lock(struct objects *o, const char *id);
void objects_unlock(struct objects *o, const char *id);

/* A deep copy (refs 1) to modify and pass to *_update. */
struct pod_rec *pod_rec_dup(const struct pod_rec *p);
/* Drops a reference; frees at zero. NULL is a no-op. */
void pod_rec_free(struct pod_rec *p);
void pod_rec_list_free(struct pod_rec **v, size_t n);
struct ctr_rec *ctr_rec_dup(const struct ctr_rec *c);
void ctr_rec_free(struct ctr_rec *c);
void ctr_rec_list_free(struct ctr_rec **v, size_t n);

#endif
