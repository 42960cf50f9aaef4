/* cri.h - the CRI v1 service: what cmd/ builds and runs.
 *
 * cri_new takes the configuration, prepares the root and state directories and
 * loads what the store holds; cri_serve binds the socket and answers calls on a
 * worker pool; cri_stop stops accepting, lets in-flight calls finish (bounded) and
 * removes the socket. One struct cri per process; its calls are thread-safe.
 */
#ifndef CRISP_CRI_CRI_H
#define CRISP_CRI_CRI_H

#include "base/err.h"
#include "cri/config.h"

struct cri;

/* Takes ownership of *cfg (leaves it zeroed). */
int cri_new(struct crisp_config *cfg, struct cri **out, err_t **e);
int cri_serve(struct cri *d, err_t **e);
void cri_stop(struct cri *d, int grace_ms);
void cri_free(struct cri *d);

/* crispd --check-store: reads the store under cfg->root (blobs, layers, holds, images,
 * pods, containers) into *r without serving. r->check_only changes nothing on disk;
 * otherwise corrupt records are quarantined, under the root's lock (ERR_PRECONDITION
 * while a crispd serves that root). */
struct store_report;
int cri_check_store(const struct crisp_config *cfg, struct store_report *r, err_t **e);

/* The version crispd reports (from the build). */
const char *cri_version(void);

#endif
