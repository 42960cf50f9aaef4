/* pb_wire.c - protobuf wire format, field by field (see pb_wire.h). */
#include "cri/pb_wire.h"

#include <stdbool.h>

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

enum pb_next pb_field_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
  uint64_t key, n;
  if (!varint(p, end, &key))
    return PB_BAD;
  f->number = (uint32_t)(key >> 3);
  f->wire_type = key & 7;
  f->val = NULL;
  f->val_len = 0;
  switch (f->wire_type) {
  case 0:
    return varint(p, end, &n) ? PB_FIELD : PB_BAD;
  case 1:
  case 5:
    n = f->wire_type == 1 ? 8 : 4;
    if ((uint64_t)(end - *p) < n)
      return PB_BAD;
    *p += n;
    return PB_FIELD;
  case 2:
    if (!varint(p, end, &n) || n > (uint64_t)(end - *p))
      return PB_BAD;
    f->val = *p;
    f->val_len = (size_t)n;
    *p += n;
    return PB_FIELD;
  default:
    return PB_GROUP;
  }
}
