/* list_memo.c - list entries packed once per record (see list_memo.h). */
#include "cri/list_memo.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cri/pb_wire.h"

struct list_memo {
  size_t head, tail;   /* bytes[0, head): fields before the state; then tail bytes after */
  uint8_t bytes[];
};

/* Offset of the first field numbered above state_field; len if none (or if the bytes
 * do not parse, which protobuf-c's output always does). */
static size_t split_at(const uint8_t *p, size_t len, uint32_t state_field)
{
  const uint8_t *at = p, *end = p + len;
  while (at < end) {
    const uint8_t *start = at;
    struct pb_field f;
    if (pb_field_next(&at, end, &f) != PB_FIELD)
      return len;
    if (f.number > state_field)
      return (size_t)(start - p);
  }
  return len;
}

struct list_memo *list_memo_make(const ProtobufCMessage *m, uint32_t state_field)
{
  size_t n = protobuf_c_message_get_packed_size(m);
  struct list_memo *x = xmalloc(sizeof(*x) + (n ? n : 1));
  size_t got = protobuf_c_message_pack(m, x->bytes);
  if (got > n)
    abort();   /* protobuf-c wrote past what it said it would */
  x->head = split_at(x->bytes, got, state_field);
  x->tail = got - x->head;
  return x;
}

const struct list_memo *list_memo_get(_Atomic(struct list_memo *) *slot, list_memo_build_fn build,
                                      const void *arg)
{
  struct list_memo *m = atomic_load_explicit(slot, memory_order_acquire);
  if (m)
    return m;
  struct list_memo *mine = build(arg), *none = NULL;
  if (atomic_compare_exchange_strong_explicit(slot, &none, mine, memory_order_acq_rel,
                                              memory_order_acquire))
    return mine;
  free(mine);   /* another thread published first: none holds its memo */
  return none;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

/* The state field's bytes (tag and value) into out[20]; 0 bytes for state 0. */
static size_t state_bytes(uint8_t *out, uint32_t state_field, int state)
{
  if (state == 0)
    return 0;
  size_t n = put_varint(out, (uint64_t)state_field << 3);
  /* an enum is an int32 on the wire: a negative one is sign-extended to 10 bytes */
  return n + put_varint(out + n, (uint64_t)(int64_t)state);
}

void list_memo_put(struct buf *b, uint32_t field, const struct list_memo *m, uint32_t state_field,
                   int state)
{
  uint8_t st[24], pre[24];
  size_t n_st = state_bytes(st, state_field, state);
  size_t n_pre = put_varint(pre, ((uint64_t)field << 3) | 2);
  n_pre += put_varint(pre + n_pre, m->head + n_st + m->tail);
  buf_reserve(b, n_pre + m->head + n_st + m->tail);
  buf_append(b, pre, n_pre);
  buf_append(b, m->bytes, m->head);
  buf_append(b, st, n_st);
  buf_append(b, m->bytes + m->head, m->tail);
}

/* ---- the last unfiltered reply ---------------------------------------------------- */

struct list_reply {
  pthread_mutex_t mu;
  bool held;
  uint64_t a, b;
  struct buf bytes;
};

struct list_reply *list_reply_new(void)
{
  struct list_reply *r = xcalloc(1, sizeof(*r));
  pthread_mutex_init(&r->mu, NULL);
  return r;
}

void list_reply_free(struct list_reply *r)
{
  if (!r)
    return;
  buf_free(&r->bytes);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

bool list_reply_get(struct list_reply *r, uint64_t a, uint64_t b, struct buf *out)
{
  if (!r)
    return false;
  pthread_mutex_lock(&r->mu);
  bool hit = r->held && r->a == a && r->b == b;
  if (hit)
    buf_append(out, r->bytes.data, r->bytes.len);
  pthread_mutex_unlock(&r->mu);
  return hit;
}

void list_reply_put(struct list_reply *r, uint64_t a, uint64_t b, const void *bytes, size_t len)
{
  if (!r)
    return;
  pthread_mutex_lock(&r->mu);
  buf_reset(&r->bytes);
  buf_append(&r->bytes, bytes, len);
  r->a = a;
  r->b = b;
  r->held = true;
  pthread_mutex_unlock(&r->mu);
}
