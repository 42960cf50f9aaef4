/* pb_wire.h - reading protobuf's wire format field by field, for the two places that
 * look at packed bytes rather than decoded messages: the request checks (strings
 * inside a request, request_check.c) and the list entries packed once (list_memo.c). */
#ifndef CRISP_CRI_PB_WIRE_H
#define CRISP_CRI_PB_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct pb_field {
  uint32_t number;
  unsigned wire_type;       /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
  const uint8_t *val;       /* wire type 2: the value's bytes */
  size_t val_len;
};

enum pb_next { PB_FIELD, PB_BAD, PB_GROUP };

/* Reads the field at *p (before end) into *f and moves *p past it: PB_FIELD, PB_BAD
 * when the bytes are not protobuf, PB_GROUP for a group (not in the CRI API). */
enum pb_next pb_field_next(const uint8_t **p, const uint8_t *end, struct pb_field *f);

#endif
