/* sandbox_info.c - what crispd tells of a sandboxed container (runtimes/sandbox_info.h). */
#include "runtimes/sandbox_info.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "runtimes/handlers.h"
#include "sandbox/sandbox.h"

#define PROG_MAX_INSNS 4096   /* BPF_MAXINSNS: the kernel takes no longer program */

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

int sandbox_prog_write(const struct sandbox_opts *o, const char *path, err_t **e)
{
  struct sbx_policy *p = NULL;
  struct sbx_prog prog = {0};
  int rc = o->policy_file ? sbx_policy_load(o->policy_file, &p, e) : sbx_policy_default(&p, e);
  if (rc == 0)
    rc = sbx_prog_build(p, &prog, e);
  if (rc == 0)
    rc = file_write_atomic(path, prog.insns, (size_t)prog.len * sizeof(*prog.insns), 0600, e);
  sbx_prog_free(&prog);
  sbx_policy_free(p);
  return rc;
}

int sandbox_prog_read(const char *path, struct sock_filter **insns, unsigned short *len,
                      err_t **e)
{
  cleanup_free char *raw = NULL;
  size_t n = 0;
  if (file_read_all(path, PROG_MAX_INSNS * sizeof(struct sock_filter), &raw, &n, e) < 0)
    return err_wrap(e, "sandbox program");
  if (n == 0 || n % sizeof(struct sock_filter) != 0)
    return err_set(e, ERR_INTERNAL, 0, "sandbox program %s: %zu bytes is no BPF program", path, n);
  *insns = (struct sock_filter *)steal(&raw);
  *len = (unsigned short)(n / sizeof(struct sock_filter));
  return 0;
}
