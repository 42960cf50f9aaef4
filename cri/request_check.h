/* request_check.h - limits on what a CRI request may hold, checked once for every
 * method right after decoding, before any handler runs (methods.c).
 *
 * Two passes: over the wire bytes (a string field holding a NUL byte would be cut short
 * by C and name something else; one that is not UTF-8 would make crisp's JSON records
 * and container specs unreadable: both refused), then over the decoded message: sizes (a
 * string, a repeated field, a map and its total), enum values crisp knows, and the
 * fields that reach the filesystem or other programs: IDs, metadata names, the log
 * directory and log path, mount and device paths. Anything else is the handlers'.
 * Every refusal is ERR_INVALID naming the field (as a path: "config.labels[\"k\"]").
 *
 * Pure functions, thread-safe.
 */
#ifndef CRISP_CRI_REQUEST_CHECK_H
#define CRISP_CRI_REQUEST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/err.h"

/* The limits (README "Limits on input"). */
#define REQ_STRING_MAX (1u << 20)       /* any one string or bytes field */
#define REQ_REPEATED_MAX 10000u         /* entries of one repeated field or map */
#define REQ_MAP_TOTAL_MAX (256u << 10)  /* keys + values of one map (k8s: annotations) */
#define REQ_MAP_KEY_MAX 317u            /* k8s qualified name: 253 prefix + "/" + 63 */
#define REQ_ID_MAX 128u
#define REQ_NAME_MAX 253u               /* k8s DNS subdomain */

/* wire: the bytes m was decoded from. */
int request_check(const ProtobufCMessage *m, const uint8_t *wire, size_t len, err_t **e);

#endif
