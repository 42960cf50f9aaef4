/* prog_cache.c - compiled filters kept on disk, keyed by the exact policy table.
 *
 * libseccomp takes ~1.5 ms to compile the default table, most of a sandboxed start-up;
 * the table rarely changes, so the program is compiled once per table and libseccomp
 * version. A cache file holds the whole key (not a hash of it) followed by the program,
 * so a file is used only for the very table it was built from. The directory must be
 * the caller's own and writable by nobody else (whoever can write it could loosen every
 * sandbox); otherwise, or on any error, the program is simply compiled. */
#include "sandbox/policy_int.h"

#include <errno.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"

static void cache_key(const struct sbx_policy *p, struct buf *k)
{
  const struct scmp_version *v = seccomp_version();
  buf_printf(k, "crisp-sbx-1 libseccomp %u.%u.%u arch %u errno %d rik %d n %zu\n",
             v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0, seccomp_arch_native(),
             p->default_errno, (int)p->refuse_in_kernel, p->n);
  buf_append(k, p->rules, p->n * sizeof(*p->rules));
}

static uint64_t fnv1a(const void *data, size_t len)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
  return h;
}

static bool dir_is_private(const char *dir)
{
  struct stat st;
  return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
         !(st.st_mode & (S_IWGRP | S_IWOTH));
}

static int cache_read(const char *path, const struct buf *key, struct sbx_prog *out)
{
  cleanup_free char *raw = NULL;
  size_t len = 0;
  err_t *e = NULL;
  size_t max = key->len + BPF_MAXINSNS * sizeof(struct sock_filter);
  if (file_read_all(path, max, &raw, &len, &e) < 0) {
    err_free(&e);
    return -1;
  }
  size_t body = len - key->len;
  if (len <= key->len || memcmp(raw, key->data, key->len) != 0 ||
      body % sizeof(struct sock_filter) != 0)
    return -1;
  out->insns = xmalloc(body);
  memcpy(out->insns, raw + key->len, body);
  out->len = (unsigned short)(body / sizeof(struct sock_filter));
  return 0;
}

int sbx_prog_build_cached(const struct sbx_policy *p, const char *dir, struct sbx_prog *out,
                          err_t **e)
{
  if (!dir || !dir_is_private(dir))
    return sbx_prog_build(p, out, e);
  cleanup_buf struct buf key = BUF_INIT;
  cache_key(p, &key);
  char name[40];
  snprintf(name, sizeof(name), "%016llx.bpf", (unsigned long long)fnv1a(key.data, key.len));
  cleanup_free char *path = path_join(dir, name);
  if (cache_read(path, &key, out) == 0)
    return 0;
  if (sbx_prog_build(p, out, e) < 0)
    return -1;
  buf_append(&key, out->insns, out->len * sizeof(*out->insns));
  err_t *e2 = NULL;
  if (file_write_atomic(path, key.data, key.len, 0600, &e2) < 0)
    err_free(&e2);   /* a cache that cannot be written only costs time */
  return 0;
}
