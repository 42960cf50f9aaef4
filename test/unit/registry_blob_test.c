/* The registry protocol against the fake registry (fakereg.c): blobs, redirects,
 * endpoint fallback, failures, cancellation, concurrency. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "fakereg.h"
#include "image/manifest.h"
#include "image/registry.h"

/* ---- blobs ---------------------------------------------------------------- */

struct progress_rec {
  uint64_t done, total;
  int calls;
  bool cancel_after_bytes;
};

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
  struct progress_rec *p = arg;
  p->done = done;
  p->total = total;
  p->calls++;
}

static bool on_cancelled(void *arg)
{
  struct progress_rec *p = arg;
  return p->cancel_after_bytes && p->done > 0;
}

Test(registry_proto, blob_streams_verified_with_progress)
{
  struct freg *f = fakereg_start(FA_OPEN);
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  struct progress_rec p = {0};
  struct registry_io io = {on_cancelled, on_progress, &p};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, true, NULL, &io, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(c.b.len, f->blob_len);
  cr_assert_eq(memcmp(c.b.data, f->blob, f->blob_len), 0);
  cr_assert_eq(c.restarts, 0);
  cr_assert_gt(p.calls, 0);
  cr_assert_eq(p.done, f->blob_len);
  cr_assert_eq(p.total, f->blob_len);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, corrupted_blob_is_a_digest_mismatch)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->corrupt = true;
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, true, NULL, NULL, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cleanup_free char *want = xasprintf("blob %s digest mismatch: got sha256:", f->blob_digest);
  cr_assert(strstr(e->msg, want), "%s", e->msg);
  err_free(&e);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, blob_larger_or_smaller_than_declared_is_refused)
{
  struct freg *f = fakereg_start(FA_OPEN);
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  struct registry_sink s = {fakereg_collect_write, fakereg_collect_restart, &c};
  cleanup_free char *dom = fakereg_domain(f->port);
  err_t *e = NULL;
  cr_assert_eq(registry_get_blob(r, dom, "test/app", f->blob_digest, 1000, NULL, NULL, &s, &e),
               -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "larger than its declared 1000 bytes"), "%s", e->msg);
  err_free(&e);
  cr_assert_eq(registry_get_blob(r, dom, "test/app", f->blob_digest, (int64_t)f->blob_len + 1,
                                 NULL, NULL, &s, &e),
               -1);
  cr_assert(strstr(e->msg, "size mismatch"), "%s", e->msg);
  err_free(&e);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, broken_blob_transfer_restarts_the_consumer_cleanly)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->cut = 2;
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, true, NULL, NULL, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(c.restarts, 2);
  cr_assert_eq(c.b.len, f->blob_len);
  cr_assert_eq(memcmp(c.b.data, f->blob, f->blob_len), 0);
  cr_assert_eq(f->n_blob, 3);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, broken_transfer_without_restart_fails)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->cut = 1;
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, false, NULL, NULL, &e), -1);
  cr_assert(strstr(e->msg, "cannot restart"), "%s", e->msg);
  cr_assert_eq(f->n_blob, 1);
  err_free(&e);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, consumer_write_error_stops_everything)
{
  /* the mirror serves the blob and the consumer fails: the host must not be tried */
  struct freg *f = fakereg_start(FA_OPEN);
  cleanup_free char *murl = xasprintf("http://127.0.0.1:%d", f->port);
  cleanup_free char *dom = fakereg_domain(fakehttp_dead_port());
  const char *mirrors[] = {murl};
  struct registry_mirror_conf mc = {dom, mirrors, 1};
  struct registry_opts o = {.mirrors = &mc, .n_mirrors = 1};
  struct registry *r = fakereg_registry(&o);
  struct collect c = {BUF_INIT, 0, true};
  struct registry_sink s = {fakereg_collect_write, fakereg_collect_restart, &c};
  err_t *e = NULL;
  cr_assert_eq(registry_get_blob(r, dom, "test/app", f->blob_digest, (int64_t)f->blob_len, NULL,
                                 NULL, &s, &e),
               -1);
  cr_assert_eq(e->code, ERR_RESOURCE);
  cr_assert_str_eq(e->msg, "disk full");
  cr_assert_eq(f->n_blob, 1);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}

/* Blob storage on another host name: it must never see the registry's token. */
struct storage {
  const struct freg *f;
  char *authz;
  int hits;
};

static void storage_handle(void *arg, const struct fake_req *rq, struct fake_resp *rs)
{
  struct storage *s = arg;
  s->hits++;
  s->authz = fake_req_header(rq, "Authorization");
  buf_append(&rs->body, s->f->blob, s->f->blob_len);
}

Test(registry_proto, redirect_to_other_host_drops_credentials)
{
  struct freg *f = fakereg_start(FA_BEARER);
  struct storage st = {f, NULL, 0};
  struct fakehttp *srv = fakehttp_start(storage_handle, &st);
  f->redirect_port = fakehttp_port(srv);
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  struct registry_creds cr = {.username = "alice", .password = "wonder"};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, true, &cr, NULL, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(c.b.len, f->blob_len);
  cr_assert_str_eq(f->last_auth, "Bearer tok-1");
  fakehttp_stop(srv);
  cr_assert_eq(st.hits, 1);
  cr_assert_null(st.authz, "storage got Authorization: %s", st.authz);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

/* ---- endpoints and failures ---------------------------------------------- */

Test(registry_proto, mirror_down_falls_back_to_the_host)
{
  struct freg *f = fakereg_start(FA_OPEN);
  cleanup_free char *dead = xasprintf("http://127.0.0.1:%d", fakehttp_dead_port());
  const char *mirrors[] = {dead};
  cleanup_free char *dom = fakereg_domain(f->port);
  struct registry_mirror_conf mc = {dom, mirrors, 1};
  struct registry_opts o = {.mirrors = &mc, .n_mirrors = 1};
  struct registry *r = fakereg_registry(&o);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, f->port, "1.0", NULL, &m, &e), 0, "%s", e ? e->msg : "");
  registry_manifest_clear(&m);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, mirror_without_the_image_falls_back_and_mirror_with_it_wins)
{
  struct freg *host = fakereg_start(FA_OPEN);
  struct freg *mirror = fakereg_start(FA_OPEN);
  cleanup_free char *murl = xasprintf("127.0.0.1:%d/", mirror->port);
  const char *mirrors[] = {murl};
  cleanup_free char *dom = fakereg_domain(host->port);
  struct registry_mirror_conf mc = {dom, mirrors, 1};
  struct registry_opts o = {.mirrors = &mc, .n_mirrors = 1};
  struct registry *r = fakereg_registry(&o);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, host->port, "1.0", NULL, &m, &e), 0);
  registry_manifest_clear(&m);
  cr_assert_eq(mirror->n_manifest, 1);
  cr_assert_eq(host->n_manifest, 0);
  cr_assert_eq(fakereg_get_manifest(r, host->port, "missing", NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  cr_assert(strstr(e->msg, "also tried: image"), "%s", e->msg);
  cr_assert_eq(host->n_manifest, 1);
  err_free(&e);
  registry_free(r);
  fakereg_stop(mirror);
  fakereg_stop(host);
}

Test(registry_proto, all_endpoints_down_is_unavailable_naming_each)
{
  int p1 = fakehttp_dead_port(), p2 = fakehttp_dead_port();
  cleanup_free char *m1 = xasprintf("http://127.0.0.1:%d", p1);
  const char *mirrors[] = {m1};
  cleanup_free char *dom = fakereg_domain(p2);
  struct registry_mirror_conf mc = {dom, mirrors, 1};
  struct registry_opts o = {.mirrors = &mc, .n_mirrors = 1};
  struct registry *r = fakereg_registry(&o);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_manifest(r, p2, "1.0", NULL, &m, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cleanup_free char *h1 = xasprintf("http://127.0.0.1:%d: cannot connect", p1);
  cleanup_free char *h2 = xasprintf("http://127.0.0.1:%d: cannot connect", p2);
  cr_assert(strstr(e->msg, h1) && strstr(e->msg, h2), "%s", e->msg);
  err_free(&e);
  registry_free(r);
}

Test(registry_proto, cancellation_aborts_a_transfer)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->stall_ms = 10000;
  struct registry *r = fakereg_registry(NULL);
  struct collect c = {BUF_INIT, 0, false};
  struct progress_rec p = {.cancel_after_bytes = true};
  struct registry_io io = {on_cancelled, on_progress, &p};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, true, NULL, &io, &e), -1);
  cr_assert_eq(e->code, ERR_CANCELLED, "%s", e->msg);
  cr_assert_eq(f->n_blob, 1);
  err_free(&e);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, stalled_transfer_times_out)
{
  struct freg *f = fakereg_start(FA_OPEN);
  f->stall_ms = 10000;
  f->stall_at_start = true;
  struct registry_opts o = {.low_speed_time_s = 1, .retries = -1};
  struct registry *r = fakereg_registry(&o);
  struct collect c = {BUF_INIT, 0, false};
  err_t *e = NULL;
  cr_assert_eq(fakereg_get_blob(r, f, &c, true, NULL, NULL, &e), -1);
  cr_assert_eq(e->code, ERR_UNAVAILABLE);
  cr_assert(strstr(e->msg, "timed out"), "%s", e->msg);
  err_free(&e);
  buf_free(&c.b);
  registry_free(r);
  fakereg_stop(f);
}

Test(registry_proto, https_to_a_plain_http_server_is_a_named_tls_error)
{
  struct freg *f = fakereg_start(FA_OPEN);
  cleanup_free char *murl = xasprintf("https://127.0.0.1:%d", f->port);
  const char *mirrors[] = {murl};
  cleanup_free char *dom = fakereg_domain(fakehttp_dead_port());
  struct registry_mirror_conf mc = {dom, mirrors, 1};
  struct registry_opts o = {.mirrors = &mc, .n_mirrors = 1};
  struct registry *r = fakereg_registry(&o);
  struct registry_manifest m;
  err_t *e = NULL;
  cr_assert_eq(registry_get_manifest(r, dom, "test/app", "1", NULL, NULL, &m, &e), -1);
  cleanup_free char *want = xasprintf("https://127.0.0.1:%d: TLS handshake failed", f->port);
  cr_assert(strstr(e->msg, want), "%s", e->msg);
  err_free(&e);
  registry_free(r);
  fakereg_stop(f);
}

/* One client shared by several pulling threads: caches and tokens under load. */
struct puller {
  struct registry *r;
  struct freg *f;
  int ok;
};

static void *pull_thread(void *arg)
{
  struct puller *p = arg;
  struct registry_creds cr = {.username = "alice", .password = "wonder"};
  for (int i = 0; i < 3; i++) {
    struct registry_manifest m;
    struct collect c = {BUF_INIT, 0, false};
    err_t *e = NULL;
    if (fakereg_get_manifest(p->r, p->f->port, "1.0", &cr, &m, &e) == 0 &&
        fakereg_get_blob(p->r, p->f, &c, true, &cr, NULL, &e) == 0 && c.b.len == p->f->blob_len)
      p->ok++;
    registry_manifest_clear(&m);
    buf_free(&c.b);
    err_free(&e);
  }
  return NULL;
}

Test(registry_proto, one_client_serves_concurrent_pulls)
{
  struct freg *f = fakereg_start(FA_BEARER);
  struct registry *r = fakereg_registry(NULL);
  pthread_t th[4];
  struct puller p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = (struct puller){r, f, 0};
    cr_assert_eq(pthread_create(&th[i], NULL, pull_thread, &p[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(p[i].ok, 3, "thread %d: %d of 3 pulls worked", i, p[i].ok);
  }
  cr_assert_leq(f->n_token, 4, "tokens are shared once cached (%d fetched)", f->n_token);
  registry_free(r);
  fakereg_stop(f);
}
