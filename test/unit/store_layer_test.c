/* Tests of image/store: layer holds, restart and repair, layer claims, disk usage. */
#include "test/unit/store_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

/* ---- holds ---------------------------------------------------------------------- */

STORE_TEST(held_layers_survive_image_removal_until_released)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_layer l1 = sf_make_layer(&l0, "app");
  struct sf_layer ls[] = {l0, l1};
  struct sf_image a = sf_make_image("a", ls, 2, NULL, 0);
  const char *chains[] = {l0.chain, l1.chain};
  err_t *e = NULL;
  cr_assert_eq(store_layers_hold(sf_st, "ctr-1", chains, 2, &e), 0);
  cr_assert_eq(store_layers_hold(sf_st, "ctr-2", chains, 1, &e), 0);
  cr_assert_eq(store_image_remove(sf_st, a.id, &e), 0);
  cr_assert(sf_layer_present(&l0));
  cr_assert(sf_layer_present(&l1));
  cr_assert_eq(store_layers_release(sf_st, "ctr-1", &e), 0);
  cr_assert(sf_layer_present(&l0));  /* ctr-2 still holds it */
  cr_assert(!sf_layer_present(&l1));
  cr_assert_eq(store_layers_release(sf_st, "ctr-2", &e), 0);
  cr_assert(!sf_layer_present(&l0));
  cr_assert_eq(store_layers_release(sf_st, "ctr-2", &e), 0);  /* again: fine */
  free(a.config);
}

STORE_TEST(hold_refuses_missing_layers_and_bad_holder_names)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  char missing[STORE_DIGEST_BUF];
  sf_digest("missing", missing);
  const char *chains[] = {l0.chain, missing};
  err_t *e = NULL;
  cr_assert_eq(store_layers_hold(sf_st, "ctr", chains, 2, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
  const char *bad[] = {"", ".hidden", "a/b", "x.tmp-1", "sp ace"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(store_layers_hold(sf_st, bad[i], chains, 1, &e), -1, "%s", bad[i]);
    cr_assert_eq(e->code, ERR_INVALID);
    err_free(&e);
  }
}

STORE_TEST(holds_survive_restart)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_image a = sf_make_image("a", &l0, 1, NULL, 0);
  const char *chains[] = {l0.chain};
  err_t *e = NULL;
  cr_assert_eq(store_layers_hold(sf_st, "ctr-9", chains, 1, &e), 0);
  sf_reopen();
  char **holders = NULL;
  size_t n = 0;
  cr_assert_eq(store_layers_holders(sf_st, &holders, &n, &e), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(holders[0], "ctr-9");
  for (size_t i = 0; i < n; i++)
    free(holders[i]);
  free(holders);
  cr_assert_eq(store_image_remove(sf_st, a.id, &e), 0);
  cr_assert(sf_layer_present(&l0));
  sf_reopen();  /* an unreferenced but held layer is not an orphan */
  cr_assert(sf_layer_present(&l0));
  cr_assert_eq(store_layers_release(sf_st, "ctr-9", &e), 0);
  cr_assert(!sf_layer_present(&l0));
  free(a.config);
}

/* Holds are written without waiting for the disk; the deletions that could leave a held
 * layer referenced on the disk by nothing else put the pending holds there first. Their
 * fsync is not observable here, so a hold file removed behind the store's back stands
 * for one that cannot be synced: the deletion must then refuse, and change nothing. */
STORE_TEST(image_removal_puts_pending_holds_on_the_disk_first)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_image a = sf_make_image("a", &l0, 1, NULL, 0);
  const char *chains[] = {l0.chain};
  err_t *e = NULL;
  cr_assert_eq(store_layers_hold(sf_st, "ctr-1", chains, 1, &e), 0);
  cleanup_free char *hold = sf_path("holds/ctr-1.json");
  cr_assert_eq(unlink(hold), 0);
  cr_assert_eq(store_image_remove(sf_st, a.id, &e), -1);
  cr_assert(strstr(e->msg, "ctr-1"), "%s", e->msg);
  err_free(&e);
  CLEANUP(image_record) struct image_record *still = sf_find(a.id);  /* the image stays */
  cr_assert_eq(store_layers_hold(sf_st, "ctr-1", chains, 1, &e), 0);
  cr_assert_eq(store_image_remove(sf_st, a.id, &e), 0);
  cr_assert(sf_layer_present(&l0));
  free(a.config);
}

STORE_TEST(release_syncs_pending_holds_only_for_layers_no_image_names)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_image a = sf_make_image("a", &l0, 1, NULL, 0);
  const char *chains[] = {l0.chain};
  err_t *e = NULL;
  /* the image names l0: releasing needs no sync, even with a pending hold that would fail */
  cr_assert_eq(store_layers_hold(sf_st, "ctr-1", chains, 1, &e), 0);
  cr_assert_eq(store_layers_hold(sf_st, "ctr-2", chains, 1, &e), 0);
  cleanup_free char *hold2 = sf_path("holds/ctr-2.json");
  cr_assert_eq(unlink(hold2), 0);
  cr_assert_eq(store_layers_release(sf_st, "ctr-1", &e), 0);
  /* without the image, ctr-3's pending hold must reach the disk before ctr-4's goes */
  cr_assert_eq(store_layers_hold(sf_st, "ctr-2", chains, 1, &e), 0);
  cr_assert_eq(store_layers_hold(sf_st, "ctr-4", chains, 1, &e), 0);
  cr_assert_eq(store_image_remove(sf_st, a.id, &e), 0);
  cr_assert_eq(store_layers_hold(sf_st, "ctr-3", chains, 1, &e), 0);
  cleanup_free char *hold3 = sf_path("holds/ctr-3.json");
  cr_assert_eq(unlink(hold3), 0);
  cr_assert_eq(store_layers_release(sf_st, "ctr-4", &e), -1);
  err_free(&e);
  cleanup_free char *hold4 = sf_path("holds/ctr-4.json");
  cr_assert(access(hold4, F_OK) == 0, "a refused release keeps the hold");
  cr_assert_eq(store_layers_hold(sf_st, "ctr-3", chains, 1, &e), 0);
  cr_assert_eq(store_layers_release(sf_st, "ctr-4", &e), 0);
  cr_assert_eq(store_layers_release(sf_st, "ctr-2", &e), 0);
  cr_assert(sf_layer_present(&l0));   /* ctr-3 */
  cr_assert_eq(store_layers_release(sf_st, "ctr-3", &e), 0);
  cr_assert(!sf_layer_present(&l0));
  free(a.config);
}

STORE_TEST(holding_a_new_set_lets_go_of_layers_the_old_set_named)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_layer l1 = sf_make_layer(&l0, "app");
  const char *chains[] = {l0.chain, l1.chain};
  err_t *e = NULL;
  cr_assert_eq(store_layers_hold(sf_st, "ctr", chains, 2, &e), 0);
  cr_assert_eq(store_layers_hold(sf_st, "ctr", chains, 2, &e), 0);  /* idempotent */
  cr_assert(sf_layer_present(&l1));
  cr_assert_eq(store_layers_hold(sf_st, "ctr", chains, 1, &e), 0);
  cr_assert(sf_layer_present(&l0));
  cr_assert(!sf_layer_present(&l1));
}

/* ---- persistence and repair ---------------------------------------------------------- */

STORE_TEST(records_survive_restart)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_layer l1 = sf_make_layer(&l0, "app");
  struct sf_layer ls[] = {l0, l1};
  const char *names[] = {"docker.io/library/app:v1", "registry.example.com:5000/team/app:v2"};
  struct sf_image a = sf_make_image("a", ls, 2, names, 2);
  CLEANUP(image_record) struct image_record *before = sf_find(a.id);
  sf_reopen();
  CLEANUP(image_record) struct image_record *after = sf_find("registry.example.com:5000/team/app:v2");
  cr_assert_str_eq(after->id, before->id);
  cr_assert_eq(after->n_tags, 2);
  cr_assert_eq(after->size, before->size);
  cr_assert_eq(after->pulled_at_ns, before->pulled_at_ns);
  cr_assert_str_eq(after->manifest_digest, before->manifest_digest);
  cr_assert_eq(after->n_layers, 2);
  cr_assert_str_eq(after->chain_ids[1], l1.chain);
  cr_assert(sf_layer_present(&l0));
  cr_assert(sf_layer_present(&l1));
  cleanup_free char *data = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_image_config(sf_st, a.id, &data, NULL, &e), 0);
  cr_assert_str_eq(data, a.config);
  free(a.config);
}

STORE_TEST(crash_leftovers_are_removed_on_open)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_image a = sf_make_image("a", &l0, 1, NULL, 0);
  store_close(sf_st);
  sf_st = NULL;
  cleanup_free char *l_tmp = sf_path("layers/abc.tmp-123456");
  cleanup_free char *l_tmp_file = sf_path("layers/abc.tmp-123456/etc");
  cleanup_free char *rec_tmp = sf_path("images/x.json.tmp-AbCdEf");
  cleanup_free char *blob_tmp = sf_path("content/blobs/sha256/ff.tmp-000000");
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(l_tmp, 0700, &e), 0);
  sf_write(l_tmp_file, "half unpacked");
  sf_write(rec_tmp, "{\"half");
  sf_write(blob_tmp, "partial");
  /* a layer directory that never got metadata, and metadata whose rename never came */
  char orphan_dir_id[STORE_DIGEST_BUF];
  sf_digest("orphan dir", orphan_dir_id);
  cleanup_free char *orphan_dir = xasprintf("%s/layers/%s", sf_root, orphan_dir_id + 7);
  cr_assert_eq(mkdir_p(orphan_dir, 0700, &e), 0);
  char lone[STORE_DIGEST_BUF], lone_blob[STORE_DIGEST_BUF];
  sf_digest("lone", lone);
  sf_digest("lone blob", lone_blob);
  cleanup_free char *lone_meta = xasprintf("%s/layers/%s.json", sf_root, lone + 7);
  cleanup_free char *meta = xasprintf("{\"version\":1,\"chain_id\":\"%s\",\"parent\":null,"
                                      "\"diff_id\":\"%s\",\"blob_digest\":\"%s\",\"blob_size\":1}",
                                      lone, lone, lone_blob);
  sf_write(lone_meta, meta);

  sf_reopen();
  cr_assert(access(l_tmp, F_OK) < 0);
  cr_assert(access(rec_tmp, F_OK) < 0);
  cr_assert(access(blob_tmp, F_OK) < 0);
  cr_assert(access(orphan_dir, F_OK) < 0);
  cr_assert(access(lone_meta, F_OK) < 0);
  cr_assert(!sf_exists("quarantine"));
  CLEANUP(image_record) struct image_record *r = sf_find(a.id);
  cr_assert(sf_layer_present(&l0));
  free(a.config);
}

STORE_TEST(layers_and_blobs_no_record_uses_are_deleted_on_open)
{
  struct sf_layer used = sf_make_layer(NULL, "used");
  struct sf_layer orphan = sf_make_layer(NULL, "pull that failed");
  struct sf_image a = sf_make_image("a", &used, 1, NULL, 0);
  char d[STORE_DIGEST_BUF];
  err_t *e = NULL;
  sf_digest("index of a failed pull", d);
  cr_assert_eq(store_put_blob(sf_st, d, "index of a failed pull", 22, &e), 0);
  sf_reopen();
  cr_assert(sf_layer_present(&used));
  cr_assert(!sf_layer_present(&orphan));
  char *data = NULL;
  cr_assert_eq(store_get_blob(sf_st, d, &data, NULL, &e), -1);
  err_free(&e);
  cr_assert_eq(store_get_blob(sf_st, a.manifest, &data, NULL, &e), 0);
  free(data);
  free(a.config);
}

static char *read_log(int fd)
{
  char *text = NULL;
  err_t *e = NULL;
  lseek(fd, 0, SEEK_SET);
  cr_assert_eq(fd_read_all(fd, 1 << 20, &text, NULL, &e), 0);
  return text;
}

STORE_TEST(corrupt_records_are_quarantined_and_logged)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_image good = sf_make_image("good", &l0, 1, NULL, 0);
  char id1[STORE_DIGEST_BUF], id2[STORE_DIGEST_BUF], id3[STORE_DIGEST_BUF];
  sf_digest("one", id1);
  sf_digest("two", id2);
  sf_digest("three", id3);
  cleanup_free char *bad_json = xasprintf("%s/images/%s.json", sf_root, id1 + 7);
  cleanup_free char *missing = xasprintf("%s/images/%s.json", sf_root, id2 + 7);
  cleanup_free char *sha512 = xasprintf("%s/images/%s.json", sf_root, id3 + 7);
  sf_write(bad_json, "{\"version\":1,\"id\":");
  sf_write(missing, "{\"version\":1}");
  cleanup_free char *sha512_text = xasprintf(
      "{\"version\":1,\"id\":\"sha512:%s\",\"config_digest\":\"%s\",\"manifest_digest\":\"%s\","
      "\"repo_tags\":[],\"repo_digests\":[],\"chain_ids\":[],\"size\":1,\"pulled_at_ns\":1,"
      "\"pinned\":false}", id3 + 7, id3, id3);
  sf_write(sha512, sha512_text);

  char logpath[] = "/tmp/crisp-store-log-XXXXXX";
  int fd = mkstemp(logpath);
  cr_assert(fd >= 0);
  unlink(logpath);
  log_set_fd(fd);
  sf_reopen();
  log_set_fd(2);
  cleanup_free char *log = read_log(fd);
  close(fd);

  size_t n_lines = 0;
  for (const char *p = log; (p = strstr(p, "quarantined corrupt store file")); p++)
    n_lines++;
  cr_assert_eq(n_lines, 3, "log:\n%s", log);
  cr_assert(strstr(log, "level=warn"));
  cr_assert(strstr(log, id1 + 7));
  cr_assert(access(bad_json, F_OK) < 0);
  cr_assert(access(missing, F_OK) < 0);
  cleanup_free char *q1 = xasprintf("%s/quarantine/image-%s.json", sf_root, id1 + 7);
  cr_assert_eq(access(q1, F_OK), 0);
  CLEANUP(image_record) struct image_record *r = sf_find(good.id);
  cr_assert(sf_layer_present(&l0));
  free(good.config);
}

STORE_TEST(second_open_of_the_same_root_is_refused)
{
  struct store *other = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_open(sf_root, &other, &e), -1);
  cr_assert_eq(e->code, ERR_PRECONDITION);
  err_free(&e);
}

/* ---- layer claims ------------------------------------------------------------------ */

STORE_TEST(commit_refuses_a_chain_id_its_parent_and_diff_id_do_not_give)
{
  char diff[STORE_DIGEST_BUF], other[STORE_DIGEST_BUF], blob[STORE_DIGEST_BUF];
  sf_digest("diff", diff);
  sf_digest("other", other);
  sf_digest("blob", blob);
  enum store_layer_state state;
  char *tmp = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_layer_begin(sf_st, other, 0, &state, &tmp, &e), 0);
  cr_assert_eq(state, STORE_LAYER_YOURS);
  struct store_layer_info info = {.diff_id = diff, .blob_digest = blob, .blob_size = 1};
  cr_assert_eq(store_layer_commit(sf_st, other, tmp, &info, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  store_layer_abort(sf_st, other, tmp);
  cr_assert(access(tmp, F_OK) < 0);
  free(tmp);
  cr_assert_eq(store_layer_begin(sf_st, other, 0, &state, &tmp, &e), 0);
  cr_assert_eq(state, STORE_LAYER_YOURS);  /* the abort released the claim */
  store_layer_abort(sf_st, other, tmp);
  free(tmp);
}

STORE_TEST(waiting_for_a_claimed_layer_honours_the_deadline)
{
  char chain[STORE_DIGEST_BUF];
  sf_digest("slow layer", chain);
  enum store_layer_state state;
  char *tmp = NULL, *tmp2 = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_layer_begin(sf_st, chain, 0, &state, &tmp, &e), 0);
  int64_t t0 = sf_mono_ns();
  cr_assert_eq(store_layer_begin(sf_st, chain, t0 + 50000000, &state, &tmp2, &e), -1);
  cr_assert_eq(e->code, ERR_DEADLINE);
  cr_assert(sf_mono_ns() - t0 >= 50000000);
  err_free(&e);
  store_layer_abort(sf_st, chain, tmp);
  free(tmp);
}

struct race {
  char chain[STORE_DIGEST_BUF];
  char diff[STORE_DIGEST_BUF];
  char blob[STORE_DIGEST_BUF];
  pthread_barrier_t start;
  atomic_int aborts_left;   /* the first owners abort instead of committing */
  atomic_int yours, committed, present, errors;
  atomic_llong slowest_present_ns;
};

static void race_own(struct race *r, char *tmp)
{
  struct timespec pause = {0, 150000000};
  nanosleep(&pause, NULL);   /* long enough that the others are waiting */
  if (atomic_fetch_sub(&r->aborts_left, 1) > 0) {
    store_layer_abort(sf_st, r->chain, tmp);
    return;
  }
  cleanup_free char *file = path_join(tmp, "f");
  err_t *e = NULL;
  sf_write(file, "x");
  struct store_layer_info info = {.diff_id = r->diff, .blob_digest = r->blob, .blob_size = 1};
  if (store_layer_commit(sf_st, r->chain, tmp, &info, &e) < 0)
    atomic_fetch_add(&r->errors, 1);
  else
    atomic_fetch_add(&r->committed, 1);
  err_free(&e);
}

static void *race_thread(void *arg)
{
  struct race *r = arg;
  pthread_barrier_wait(&r->start);
  int64_t t0 = sf_mono_ns();
  enum store_layer_state state;
  char *tmp = NULL;
  err_t *e = NULL;
  if (store_layer_begin(sf_st, r->chain, 0, &state, &tmp, &e) < 0) {
    atomic_fetch_add(&r->errors, 1);
    err_free(&e);
    return NULL;
  }
  if (state == STORE_LAYER_YOURS) {
    atomic_fetch_add(&r->yours, 1);
    race_own(r, tmp);
  } else {
    atomic_fetch_add(&r->present, 1);
    long long waited = sf_mono_ns() - t0;
    if (waited > atomic_load(&r->slowest_present_ns))
      atomic_store(&r->slowest_present_ns, waited);
  }
  free(tmp);
  return NULL;
}

static void run_race(struct race *r, int aborts)
{
  sf_digest("race diff", r->diff);
  sf_digest("race blob", r->blob);
  memcpy(r->chain, r->diff, STORE_DIGEST_BUF);
  atomic_store(&r->aborts_left, aborts);
  pthread_barrier_init(&r->start, NULL, 4);
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    cr_assert_eq(pthread_create(&th[i], NULL, race_thread, r), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&r->start);
}

STORE_TEST(four_pulls_of_one_layer_unpack_it_once_and_the_others_wait)
{
  static struct race r;
  run_race(&r, 0);
  cr_assert_eq(atomic_load(&r.errors), 0);
  cr_assert_eq(atomic_load(&r.yours), 1);
  cr_assert_eq(atomic_load(&r.committed), 1);
  cr_assert_eq(atomic_load(&r.present), 3);
  cr_assert(atomic_load(&r.slowest_present_ns) >= 100000000, "the others did not wait");
  struct sf_layer l = {0};
  memcpy(l.chain, r.chain, STORE_DIGEST_BUF);
  cr_assert(sf_layer_present(&l));
}

STORE_TEST(a_waiter_takes_over_a_layer_whose_owner_aborted)
{
  static struct race r;
  run_race(&r, 1);
  cr_assert_eq(atomic_load(&r.errors), 0);
  cr_assert_eq(atomic_load(&r.yours), 2);
  cr_assert_eq(atomic_load(&r.committed), 1);
  cr_assert_eq(atomic_load(&r.present), 2);
  struct sf_layer l = {0};
  memcpy(l.chain, r.chain, STORE_DIGEST_BUF);
  cr_assert(sf_layer_present(&l));
}

/* ---- usage ------------------------------------------------------------------------- */

static uint64_t du(const char *flag)
{
  cleanup_free char *cmd = xasprintf(
      "cd %s && du -x -c -s %s $(ls -d content layers images holds quarantine 2>/dev/null) "
      "| tail -n 1",
      sf_root, flag);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  unsigned long long v = 0;
  cr_assert_eq(fscanf(p, "%llu", &v), 1);
  pclose(p);
  return v;
}

STORE_TEST(usage_matches_du_and_counts_shared_and_linked_files_once)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_layer l1 = sf_make_layer(&l0, "app");
  struct sf_layer la[] = {l0, l1}, lb[] = {l0};
  struct sf_image a = sf_make_image("a", la, 2, NULL, 0);
  struct sf_image b = sf_make_image("b", lb, 1, NULL, 0);
  cleanup_free char *dir = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_layer_path(sf_st, l1.chain, &dir, &e), 0);
  cleanup_free char *f = path_join(dir, "data"), *linked = path_join(dir, "hardlink");
  cr_assert_eq(link(f, linked), 0);

  /* the cache was invalidated by the last commit but not by the link: sf_reopen */
  sf_reopen();
  uint64_t bytes = 0, inodes = 0;
  cleanup_free char *mnt = NULL;
  cr_assert_eq(store_usage(sf_st, &bytes, &inodes, &mnt, &e), 0, "%s", e ? e->msg : "");
  cr_assert_eq(bytes, du("-B1"));
  cr_assert_eq(inodes, du("--inodes"));

  struct sf_layer l2 = sf_make_layer(&l1, "more");
  uint64_t bytes2 = 0, inodes2 = 0;
  cr_assert_eq(store_usage(sf_st, &bytes2, &inodes2, NULL, &e), 0);
  cr_assert_eq(inodes2, inodes + 3, "a layer adds its dir, its file and its metadata");
  cr_assert_eq(inodes2, du("--inodes"));
  cr_assert_eq(bytes2, du("-B1"));
  (void)l2;
  free(a.config);
  free(b.config);
}

STORE_TEST(usage_reports_the_mount_point_holding_the_root)
{
  uint64_t bytes = 0, inodes = 0;
  cleanup_free char *mnt = NULL;
  err_t *e = NULL;
  cr_assert_eq(store_usage(sf_st, &bytes, &inodes, &mnt, &e), 0);
  cleanup_free char *cmd = xasprintf("findmnt -n -o TARGET -T %s", sf_root);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char want[4096] = "";
  cr_assert_not_null(fgets(want, sizeof(want), p));
  pclose(p);
  want[strcspn(want, "\n")] = '\0';
  cr_assert_str_eq(mnt, want);
}

/* ---- repair of specific crash states ------------------------------------------------ */

STORE_TEST(a_tag_left_on_two_records_by_a_crash_stays_with_the_newest_pull)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  const char *tag[] = {"docker.io/library/app:latest"};
  struct sf_image a = sf_make_image("a", &l0, 1, tag, 1);
  struct sf_image b = sf_make_image("b", &l0, 1, NULL, 0);
  /* as if the daemon died after writing b's record and before rewriting a's */
  cleanup_free char *b_path = xasprintf("%s/images/%s.json", sf_root, b.id + 7);
  cleanup_free char *text = NULL;
  err_t *e = NULL;
  cr_assert_eq(file_read_all(b_path, 1 << 20, &text, NULL, &e), 0);
  char *at = strstr(text, "\"repo_tags\":[]");
  cr_assert_not_null(at);
  cleanup_free char *edited = xasprintf("%.*s\"repo_tags\":[\"%s\"]%s", (int)(at - text), text,
                                        tag[0], at + strlen("\"repo_tags\":[]"));
  sf_write(b_path, edited);

  sf_reopen();
  CLEANUP(image_record) struct image_record *latest = sf_find(tag[0]);
  cr_assert_str_eq(latest->id, b.id);
  CLEANUP(image_record) struct image_record *ra = sf_find(a.id);
  cr_assert_eq(ra->n_tags, 0);
  sf_reopen();  /* and a's record was rewritten */
  CLEANUP(image_record) struct image_record *ra2 = sf_find(a.id);
  cr_assert_eq(ra2->n_tags, 0);
  free(a.config);
  free(b.config);
}

STORE_TEST(corrupt_layer_metadata_is_quarantined_with_the_images_that_need_it)
{
  struct sf_layer l0 = sf_make_layer(NULL, "root");
  struct sf_layer l1 = sf_make_layer(&l0, "app");
  struct sf_layer la[] = {l0, l1};
  struct sf_image a = sf_make_image("a", la, 2, NULL, 0);
  struct sf_image b = sf_make_image("b", &l0, 1, NULL, 0);
  cleanup_free char *meta = xasprintf("%s/layers/%s.json", sf_root, l1.chain + 7);
  sf_write(meta, "{\"version\":1,\"chain_id\":\"sha256:nothex\"}");

  sf_reopen();
  cr_assert(!sf_layer_present(&l1));
  cleanup_free char *l1_dir = xasprintf("layers/%s", l1.chain + 7);
  cr_assert(!sf_exists(l1_dir));
  cleanup_free char *q_layer = xasprintf("quarantine/layer-%s.json", l1.chain + 7);
  cleanup_free char *q_image = xasprintf("quarantine/image-%s.json", a.id + 7);
  cr_assert(sf_exists(q_layer));
  cr_assert(sf_exists(q_image));
  cr_assert_eq(sf_find_fails(STORE_KEY_ID, a.id), ERR_NOT_FOUND);
  CLEANUP(image_record) struct image_record *rb = sf_find(b.id);
  cr_assert(sf_layer_present(&l0));
  free(a.config);
  free(b.config);
}
