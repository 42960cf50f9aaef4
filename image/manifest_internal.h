/* manifest_internal.h - JSON field readers shared by manifest.c and image_config.c.
 * Not for use outside image/manifest*.c and image/image_config.c.
 *
 * `where` names the field for error messages ("layers[2].digest"). A NULL or
 * absent field reads as absent (NULL / 0 items); a field of the wrong type is
 * ERR_INVALID naming the field and what it holds.
 */
#ifndef CRISP_IMAGE_MANIFEST_INTERNAL_H
#define CRISP_IMAGE_MANIFEST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"
#include "image/manifest.h"

/* Body -> JSON object tree, after the size cap and a check for NUL bytes. */
int mj_parse_body(const char *body, size_t len, const char *what, json_t **out, err_t **e);
/* String member, copied (caller frees); absent or null -> *out NULL. */
int mj_opt_str(const json_t *obj, const char *key, const char *where, char **out, err_t **e);
/* Same, but absent is an error. */
int mj_req_str(const json_t *obj, const char *key, const char *where, char **out, err_t **e);
/* Object member: absent or null -> NULL and 0; not an object -> ERR_INVALID. */
int mj_opt_obj(const json_t *obj, const char *key, const char *where, const json_t **out,
               err_t **e);
/* Array of strings -> strv; absent or null -> empty. */
int mj_strv(const json_t *obj, const char *key, const char *where, struct image_strv *out,
            err_t **e);
/* Keys of an object -> strv; absent or null -> empty. */
int mj_keys(const json_t *obj, const char *key, const char *where, struct image_strv *out,
            err_t **e);
/* A digest member that must be present and valid. */
int mj_digest(const json_t *obj, const char *where, char **out, err_t **e);
void mj_strv_free(struct image_strv *v);

#endif
