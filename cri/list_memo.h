/* list_memo.h - ListContainers and ListPodSandbox entries packed once per record.
 *
 * kubelet's PLEG lists every container and pod each second; building and packing 400
 * protobuf-c messages (one allocation per node) for every such call cost most of a
 * list call. A record in the index never changes (an update stores a new record), so
 * its entry is packed once, on the first list that shows it, kept with the record and
 * freed with it: a new, updated or removed record needs no invalidation. The one field
 * not taken from the record (a container's state: its monitor's, not its record's) is
 * left out of the memo, which keeps the bytes before and after it; each call writes
 * the current state between them, giving the bytes protobuf-c would pack for the
 * whole message (fields in number order).
 *
 * Thread-safety: list_memo_get may race on one record from many threads; one memo
 * wins, the others are freed. A memo is immutable once published. */
#ifndef CRISP_CRI_LIST_MEMO_H
#define CRISP_CRI_LIST_MEMO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/buf.h"

struct list_memo;   /* one malloc'd block: free() releases it */

/* Packs m, a message whose varint field state_field is zero (so absent), and splits
 * the bytes where that field goes: before the first field numbered above it. */
struct list_memo *list_memo_make(const ProtobufCMessage *m, uint32_t state_field);

/* The memo in *slot, made with build(arg) (a list_memo_make result) and published
 * there if none is yet. */
typedef struct list_memo *(*list_memo_build_fn)(const void *arg);
const struct list_memo *list_memo_get(_Atomic(struct list_memo *) *slot, list_memo_build_fn build,
                                      const void *arg);

/* Appends the memo as one entry of field `field` of the enclosing message (a
 * length-delimited submessage), with state (an enum value; 0 is left out, as proto3
 * does) written as field state_field between the memo's two parts. */
void list_memo_put(struct buf *b, uint32_t field, const struct list_memo *m, uint32_t state_field,
                   int state);

/* The last reply to an unfiltered list (what kubelet's PLEG asks for every second),
 * kept with the versions of what it was built from (objects_version, and for
 * containers ctr_cache_version) and reused while both stay the same. The caller reads
 * the versions before the records, and keeps a reply only if every part of it came
 * from those (a container state read from its monitor's files changes without a
 * version). Thread-safe. */
struct list_reply;
struct list_reply *list_reply_new(void);
void list_reply_free(struct list_reply *r);
/* Appends the kept reply to out and returns true if it was built at versions (a, b). */
bool list_reply_get(struct list_reply *r, uint64_t a, uint64_t b, struct buf *out);
/* Keeps len bytes as the reply built at versions (a, b), in place of the last one. */
void list_reply_put(struct list_reply *r, uint64_t a, uint64_t b, const void *bytes, size_t len);

#endif
