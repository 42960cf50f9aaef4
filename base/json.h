/* json.h - read-only JSON trees (the one wrapper around yajl).
 *
 * json_parse builds a tree the caller owns and frees with json_free; every node
 * pointer handed out by the accessors points into that tree and lives as long as it.
 * Accessors accept NULL and answer "absent" for it, so lookups chain safely.
 * Thread-safe for concurrent readers of one tree.
 */
#ifndef CRISP_BASE_JSON_H
#define CRISP_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct json json_t;

enum json_type { JSON_NONE = 0, JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

/* Parses text; a syntax error is ERR_INVALID with the parser's line and column. */
int json_parse(const char *text, json_t **out, err_t **e);
void json_free(json_t *root);

enum json_type json_type(const json_t *n);
const char *json_type_name(enum json_type t);
/* Member of an object, NULL if n is not an object or has no such key. */
const json_t *json_get(const json_t *n, const char *key);
/* Members and elements by index: 0 <= i < json_len(n) (objects and arrays; else 0). */
size_t json_len(const json_t *n);
const char *json_key_at(const json_t *n, size_t i);
const json_t *json_at(const json_t *n, size_t i);
/* The string of a string node, NULL for anything else. */
const char *json_str(const json_t *n);
/* 0 and *out for an integer number node; -1 otherwise. */
int json_int(const json_t *n, long long *out);
/* 0 and *out for a number node (integer or not); -1 otherwise. */
int json_double(const json_t *n, double *out);
/* 0 and *out for true/false; -1 otherwise. */
int json_bool(const json_t *n, bool *out);

static inline void cleanup_json_fn(json_t **p) { json_free(*p); }
#define cleanup_json __attribute__((cleanup(cleanup_json_fn)))

#endif
