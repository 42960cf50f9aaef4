/* sandbox_info.c - what crispd tells of a sandboxed container (runtimes/sandbox_info.h). */
#include "runtimes/sandbox_info.h"

#include <stdio.h>

#include "sandbox/sandbox.h"

struct counts_json {
  struct buf *b;
  unsigned long total;
  bool first;
};

static void add_count(void *arg, const char *name, unsigned long count)
{
  struct counts_json *c = arg;
  buf_printf(c->b, "%s\"%s\":%lu", c->first ? "" : ",", name, count);
  c->first = false;
  c->total += count;
}

int sandbox_info_json(const char *kmsg_path, const char *ctr_id, struct buf *b, err_t **e)
{
  char tag[16];
  snprintf(tag, sizeof(tag), "%.12s", ctr_id);
  struct buf counts = BUF_INIT;
  struct counts_json c = {&counts, 0, true};
  if (sbx_kmsg_counts(kmsg_path, tag, add_count, &c, e) < 0) {
    buf_free(&counts);
    return -1;
  }
  buf_printf(b, "{\"refused\":{%s},\"refusedTotal\":%lu}", counts.len ? buf_str(&counts) : "",
             c.total);
  buf_free(&counts);
  return 0;
}
