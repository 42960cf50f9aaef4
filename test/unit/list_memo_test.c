/* ListContainers and ListPodSandbox from entries packed once per record
 * (cri/list_memo.c): the bytes are protobuf-c's for the whole message in every state,
 * racing builders publish one memo, and the list calls over a real object index keep
 * every filter and show each change (a new record, a removed one, a container's state)
 * without any invalidation step. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/file.h"
#include "cri/internal.h"
#include "cri/list_memo.h"
#include "runtimes/monitor.h"
#include "runtimes/monitor_int.h"

/* ---- the memo itself ------------------------------------------------------------ */

static Runtime__V1__Container__LabelsEntry lab[2] = {RUNTIME__V1__CONTAINER__LABELS_ENTRY__INIT,
                                                     RUNTIME__V1__CONTAINER__LABELS_ENTRY__INIT};
static Runtime__V1__Container__AnnotationsEntry ann = RUNTIME__V1__CONTAINER__ANNOTATIONS_ENTRY__INIT;
static Runtime__V1__Container__LabelsEntry *labp[2] = {&lab[0], &lab[1]};
static Runtime__V1__Container__AnnotationsEntry *annp[1] = {&ann};
static Runtime__V1__ContainerMetadata cmd = RUNTIME__V1__CONTAINER_METADATA__INIT;
static Runtime__V1__ImageSpec img = RUNTIME__V1__IMAGE_SPEC__INIT;

/* A Container with every field set but the state. */
static Runtime__V1__Container full_container(void)
{
  lab[0].key = "io.kubernetes.pod.name", lab[0].value = "web-0";
  lab[1].key = "tier", lab[1].value = "front";
  ann.key = "io.kubernetes.container.hash", ann.value = "9f3a1c";
  cmd.name = "nginx", cmd.attempt = 3;
  img.image = "docker.io/library/nginx:1.25", img.user_specified_image = "nginx:1.25";
  Runtime__V1__Container x = RUNTIME__V1__CONTAINER__INIT;
  x.id = "5c0f2b0e6d7a4f8e9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a";
  x.pod_sandbox_id = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
  x.metadata = &cmd;
  x.image = &img;
  x.image_ref = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  x.created_at = 1763827000123456789LL;
  x.n_labels = 2, x.labels = labp;
  x.n_annotations = 1, x.annotations = annp;
  x.image_id = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  return x;
}

/* protobuf-c's bytes for a ListContainersResponse holding x. */
static void packed_list(Runtime__V1__Container *x, struct buf *out)
{
  Runtime__V1__ListContainersResponse r = RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT;
  r.n_containers = 1;
  r.containers = &x;
  size_t n = protobuf_c_message_get_packed_size(&r.base);
  buf_reserve(out, n);
  out->len = protobuf_c_message_pack(&r.base, (uint8_t *)out->data);
}

static void assert_same(const struct buf *a, const struct buf *b, const char *what)
{
  cr_assert_eq(a->len, b->len, "%s: %zu bytes, protobuf-c packs %zu", what, a->len, b->len);
  cr_assert(memcmp(a->data, b->data, a->len) == 0, "%s: bytes differ from protobuf-c's", what);
}

Test(list_memo, container_entry_is_protobuf_c_packing_in_every_state)
{
  Runtime__V1__Container x = full_container();
  struct list_memo *m = list_memo_make(&x.base, 6);
  /* the four CRI states, and values whose varint takes more than one byte */
  int states[] = {0, 1, 2, 3, 127, 128, 300, 70000};
  for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
    struct buf got = BUF_INIT, want = BUF_INIT;
    list_memo_put(&got, 1, m, 6, states[i]);
    x.state = (Runtime__V1__ContainerState)states[i];
    packed_list(&x, &want);
    char what[32];
    snprintf(what, sizeof(what), "state %d", states[i]);
    assert_same(&got, &want, what);
    buf_free(&got);
    buf_free(&want);
  }
  free(m);
}

Test(list_memo, entries_follow_one_another_as_a_repeated_field)
{
  Runtime__V1__Container a = full_container(), b = full_container();
  b.id = "ffff";
  b.n_labels = 0;
  struct list_memo *ma = list_memo_make(&a.base, 6), *mb = list_memo_make(&b.base, 6);
  struct buf got = BUF_INIT;
  list_memo_put(&got, 1, ma, 6, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
  list_memo_put(&got, 1, mb, 6, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
  a.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
  b.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
  Runtime__V1__Container *both[] = {&a, &b};
  Runtime__V1__ListContainersResponse r = RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT;
  r.n_containers = 2, r.containers = both;
  struct buf want = BUF_INIT;
  buf_reserve(&want, protobuf_c_message_get_packed_size(&r.base));
  want.len = protobuf_c_message_pack(&r.base, (uint8_t *)want.data);
  assert_same(&got, &want, "two entries");
  free(ma);
  free(mb);
  buf_free(&got);
  buf_free(&want);
}

Test(list_memo, pod_entry_is_protobuf_c_packing_and_split_ends_work)
{
  Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
  md.name = "web-0", md.uid = "u-1", md.namespace_ = "default", md.attempt = 1;
  Runtime__V1__PodSandbox__LabelsEntry l = RUNTIME__V1__POD_SANDBOX__LABELS_ENTRY__INIT, *lp = &l;
  l.key = "app", l.value = "web";
  Runtime__V1__PodSandbox s = RUNTIME__V1__POD_SANDBOX__INIT;
  s.id = "0a1b", s.metadata = &md, s.created_at = 42, s.n_labels = 1, s.labels = &lp;
  s.runtime_handler = "runsc";
  Runtime__V1__PodSandbox only_before = RUNTIME__V1__POD_SANDBOX__INIT;
  only_before.id = "0a1b";
  Runtime__V1__PodSandbox only_after = RUNTIME__V1__POD_SANDBOX__INIT;
  only_after.runtime_handler = "runc";
  Runtime__V1__PodSandbox empty = RUNTIME__V1__POD_SANDBOX__INIT;
  Runtime__V1__PodSandbox *cases[] = {&s, &only_before, &only_after, &empty};
  for (size_t i = 0; i < 4; i++)
    for (int st = 0; st <= 1; st++) {
      cases[i]->state = 0;
      struct list_memo *m = list_memo_make(&cases[i]->base, 3);
      struct buf got = BUF_INIT, want = BUF_INIT;
      list_memo_put(&got, 1, m, 3, st);
      cases[i]->state = (Runtime__V1__PodSandboxState)st;
      Runtime__V1__ListPodSandboxResponse r = RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT;
      r.n_items = 1, r.items = &cases[i];
      buf_reserve(&want, protobuf_c_message_get_packed_size(&r.base));
      want.len = protobuf_c_message_pack(&r.base, (uint8_t *)want.data);
      char what[32];
      snprintf(what, sizeof(what), "pod case %zu state %d", i, st);
      assert_same(&got, &want, what);
      free(m);
      buf_free(&got);
      buf_free(&want);
    }
}

static atomic_int builds;

static struct list_memo *slow_build(const void *arg)
{
  atomic_fetch_add(&builds, 1);
  nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);   /* let the others race in */
  return list_memo_make(arg, 6);
}

struct racer {
  _Atomic(struct list_memo *) *slot;
  Runtime__V1__Container *x;
  const struct list_memo *got;
};

static void *race(void *arg)
{
  struct racer *r = arg;
  r->got = list_memo_get(r->slot, slow_build, r->x);
  return NULL;
}

Test(list_memo, racing_builders_publish_one_memo)
{
  Runtime__V1__Container x = full_container();
  _Atomic(struct list_memo *) slot = NULL;
  atomic_store(&builds, 0);
  struct racer rs[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    rs[i] = (struct racer){&slot, &x, NULL};
    cr_assert_eq(pthread_create(&t[i], NULL, race, &rs[i]), 0);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(t[i], NULL);
  cr_assert_geq(atomic_load(&builds), 1);
  for (int i = 0; i < 8; i++)
    cr_assert_eq(rs[i].got, atomic_load(&slot), "racer %d got a memo that was not published", i);
  /* a later call builds nothing */
  int before = atomic_load(&builds);
  cr_assert_eq(list_memo_get(&slot, slow_build, &x), atomic_load(&slot));
  cr_assert_eq(atomic_load(&builds), before);
  free(atomic_load(&slot));   /* the losers' memos were freed by list_memo_get (ASan checks) */
}

/* ---- the list calls over a real index --------------------------------------------- */

static char root[] = "/tmp/crisp-listmemo-XXXXXX";
static struct cri d;

static void setup(void)
{
  cr_assert_not_null(mkdtemp(root));
  err_t *e = NULL;
  memset(&d, 0, sizeof(d));
  cr_assert_eq(objects_open(root, &d.objects, &e), 0);
  d.ctr_cache = ctr_cache_new();
  d.ctr_list_reply = list_reply_new();
  d.pod_list_reply = list_reply_new();
  d.cfg.state = root;   /* no monitor files there: a started container not cached is gone */
}

static void teardown(void)
{
  objects_close(d.objects);
  ctr_cache_free(d.ctr_cache);
  list_reply_free(d.ctr_list_reply);
  list_reply_free(d.pod_list_reply);
  err_t *e = NULL;
  rm_rf(root, &e);
  err_free(&e);
}

static void add_pod(const char *name, const char *app, char id[65])
{
  Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
  md.name = (char *)name, md.namespace_ = "ns", md.uid = (char *)name;
  Runtime__V1__PodSandboxConfig__LabelsEntry l = RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
  Runtime__V1__PodSandboxConfig__LabelsEntry *lp = &l;
  l.key = "app", l.value = (char *)app;
  Runtime__V1__PodSandboxConfig pc = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  pc.metadata = &md, pc.n_labels = 1, pc.labels = &lp;
  objects_new_id(id);
  struct pod_rec p = {.id = id, .config = &pc, .handler = "runc", .ip = "", .ip6 = "",
                      .ready = true, .created_ns = 7};
  err_t *e = NULL;
  cr_assert_eq(objects_pod_add(d.objects, &p, &e), 0);
}

/* A container of pod; started: its runtime state goes in the cache as the exit watcher
 * would put it (exited or running). */
static void add_ctr(const char *pod, const char *name, const char *tier, bool started, bool exited,
                    char id[65])
{
  Runtime__V1__ContainerMetadata cm = RUNTIME__V1__CONTAINER_METADATA__INIT;
  cm.name = (char *)name;
  Runtime__V1__ContainerConfig__LabelsEntry l = RUNTIME__V1__CONTAINER_CONFIG__LABELS_ENTRY__INIT;
  Runtime__V1__ContainerConfig__LabelsEntry *lp = &l;
  l.key = "tier", l.value = (char *)tier;
  Runtime__V1__ContainerConfig cc = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  cc.metadata = &cm, cc.n_labels = 1, cc.labels = &lp;
  objects_new_id(id);
  struct ctr_rec c = {.id = id, .pod_id = (char *)pod, .config = &cc, .image_id = "sha256:ab",
                      .image_name = "busybox", .log_path = "", .start_error = "",
                      .start_requested = started, .created_ns = 9};
  err_t *e = NULL;
  cr_assert_eq(objects_ctr_add(d.objects, &c, &e), 0);
  if (started) {
    struct ctr_runtime_state st = {.started = true, .pid = 100, .exited = exited};
    ctr_cache_put(d.ctr_cache, id, &st);
  }
}

static Runtime__V1__ListContainersResponse *list_ctrs(const Runtime__V1__ContainerFilter *f)
{
  Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
  req.filter = (Runtime__V1__ContainerFilter *)f;
  struct buf b = BUF_INIT;
  struct cri_call c = {.resp = &b};
  ProtobufCMessage *out = (ProtobufCMessage *)&req;   /* must come back NULL */
  err_t *e = NULL;
  cr_assert_eq(cri_list_containers_rpc(&d, &c, &req.base, &out, &e), 0);
  cr_assert_null(out, "the reply is packed into the call's buffer");
  Runtime__V1__ListContainersResponse *r =
      runtime__v1__list_containers_response__unpack(NULL, b.len, (const uint8_t *)b.data);
  cr_assert_not_null(r, "the reply does not decode");
  arena_free(&c.arena);
  buf_free(&b);
  return r;
}

static Runtime__V1__ListPodSandboxResponse *list_pods(const Runtime__V1__PodSandboxFilter *f)
{
  Runtime__V1__ListPodSandboxRequest req = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
  req.filter = (Runtime__V1__PodSandboxFilter *)f;
  struct buf b = BUF_INIT;
  struct cri_call c = {.resp = &b};
  ProtobufCMessage *out = NULL;
  err_t *e = NULL;
  cr_assert_eq(cri_list_pod_sandbox_rpc(&d, &c, &req.base, &out, &e), 0);
  cr_assert_null(out);
  Runtime__V1__ListPodSandboxResponse *r =
      runtime__v1__list_pod_sandbox_response__unpack(NULL, b.len, (const uint8_t *)b.data);
  cr_assert_not_null(r, "the reply does not decode");
  buf_free(&b);
  return r;
}

static const Runtime__V1__Container *find_ctr(const Runtime__V1__ListContainersResponse *r,
                                              const char *id)
{
  for (size_t i = 0; i < r->n_containers; i++)
    if (!strcmp(r->containers[i]->id, id))
      return r->containers[i];
  return NULL;
}

static const Runtime__V1__PodSandbox *find_pod(const Runtime__V1__ListPodSandboxResponse *r,
                                               const char *id)
{
  for (size_t i = 0; i < r->n_items; i++)
    if (!strcmp(r->items[i]->id, id))
      return r->items[i];
  return NULL;
}

Test(list_calls, unfiltered_lists_carry_every_field_and_state, .init = setup, .fini = teardown)
{
  char p1[65], c1[65], c2[65], c3[65], c4[65];
  add_pod("web", "web", p1);
  add_ctr(p1, "created", "front", false, false, c1);
  add_ctr(p1, "running", "front", true, false, c2);
  add_ctr(p1, "exited", "back", true, true, c3);
  add_ctr(p1, "gone", "back", false, false, c4);
  /* c4 started with its state gone (nothing cached, no files): EXITED */
  struct ctr_rec *r = NULL;
  err_t *e = NULL;
  cr_assert_eq(objects_ctr_get(d.objects, c4, &r, &e), 0);
  struct ctr_rec *u = ctr_rec_dup(r);
  u->start_requested = true;
  cr_assert_eq(objects_ctr_update(d.objects, u, &e), 0);
  ctr_rec_free(u);
  ctr_rec_free(r);

  Runtime__V1__ListContainersResponse *l = list_ctrs(NULL);
  cr_assert_eq(l->n_containers, 4);
  const Runtime__V1__Container *x = find_ctr(l, c2);
  cr_assert_not_null(x);
  cr_assert_str_eq(x->pod_sandbox_id, p1);
  cr_assert_str_eq(x->metadata->name, "running");
  cr_assert_str_eq(x->image->image, "busybox");
  cr_assert_str_eq(x->image->user_specified_image, "busybox");
  cr_assert_str_eq(x->image_ref, "sha256:ab");
  cr_assert_str_eq(x->image_id, "sha256:ab");
  cr_assert_eq(x->created_at, 9);
  cr_assert_eq(x->n_labels, 1);
  cr_assert_str_eq(x->labels[0]->value, "front");
  cr_assert_eq(x->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
  cr_assert_eq(find_ctr(l, c1)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED);
  cr_assert_eq(find_ctr(l, c3)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
  cr_assert_eq(find_ctr(l, c4)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);

  Runtime__V1__ListPodSandboxResponse *pl = list_pods(NULL);
  cr_assert_eq(pl->n_items, 1);
  cr_assert_str_eq(pl->items[0]->metadata->name, "web");
  cr_assert_str_eq(pl->items[0]->metadata->namespace_, "ns");
  cr_assert_str_eq(pl->items[0]->runtime_handler, "runc");
  cr_assert_eq(pl->items[0]->created_at, 7);
  cr_assert_eq(pl->items[0]->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY);
  cr_assert_str_eq(pl->items[0]->labels[0]->value, "web");
  runtime__v1__list_pod_sandbox_response__free_unpacked(pl, NULL);
}

Test(list_calls, container_filters_hold_on_packed_entries, .init = setup, .fini = teardown)
{
  char p1[65], p2[65], a[65], b[65], c[65];
  add_pod("one", "web", p1);
  add_pod("two", "db", p2);
  add_ctr(p1, "a", "front", true, false, a);
  add_ctr(p1, "b", "back", true, true, b);
  add_ctr(p2, "c", "back", false, false, c);
  runtime__v1__list_containers_response__free_unpacked(list_ctrs(NULL), NULL);   /* memos made */

  Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
  char prefix[13];
  memcpy(prefix, b, 12);
  prefix[12] = '\0';
  f.id = prefix;
  Runtime__V1__ListContainersResponse *l = list_ctrs(&f);
  cr_assert_eq(l->n_containers, 1, "id prefix");
  cr_assert_str_eq(l->containers[0]->id, b);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);

  f = (Runtime__V1__ContainerFilter)RUNTIME__V1__CONTAINER_FILTER__INIT;
  f.pod_sandbox_id = p1;
  l = list_ctrs(&f);
  cr_assert_eq(l->n_containers, 2, "pod id");
  cr_assert(find_ctr(l, a) && find_ctr(l, b));
  runtime__v1__list_containers_response__free_unpacked(l, NULL);

  Runtime__V1__ContainerStateValue sv = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
  sv.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
  f = (Runtime__V1__ContainerFilter)RUNTIME__V1__CONTAINER_FILTER__INIT;
  f.state = &sv;
  l = list_ctrs(&f);
  cr_assert_eq(l->n_containers, 1, "state exited");
  cr_assert_str_eq(l->containers[0]->id, b);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);
  sv.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;   /* the zero value, set */
  l = list_ctrs(&f);
  cr_assert_eq(l->n_containers, 1, "state created");
  cr_assert_str_eq(l->containers[0]->id, c);
  cr_assert_eq(l->containers[0]->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);

  Runtime__V1__ContainerFilter__LabelSelectorEntry sel =
      RUNTIME__V1__CONTAINER_FILTER__LABEL_SELECTOR_ENTRY__INIT;
  Runtime__V1__ContainerFilter__LabelSelectorEntry *selp = &sel;
  sel.key = "tier", sel.value = "back";
  f = (Runtime__V1__ContainerFilter)RUNTIME__V1__CONTAINER_FILTER__INIT;
  f.n_label_selector = 1, f.label_selector = &selp;
  f.pod_sandbox_id = p1;   /* all set fields must match */
  l = list_ctrs(&f);
  cr_assert_eq(l->n_containers, 1, "label and pod");
  cr_assert_str_eq(l->containers[0]->id, b);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);
  sel.value = "nowhere";
  l = list_ctrs(&f);
  cr_assert_eq(l->n_containers, 0, "no label match");
  runtime__v1__list_containers_response__free_unpacked(l, NULL);
}

Test(list_calls, changes_show_without_invalidation, .init = setup, .fini = teardown)
{
  char p1[65], p2[65], a[65], b[65];
  add_pod("one", "web", p1);
  add_pod("two", "web", p2);
  add_ctr(p1, "a", "front", true, false, a);
  add_ctr(p1, "b", "front", false, false, b);
  runtime__v1__list_containers_response__free_unpacked(list_ctrs(NULL), NULL);
  runtime__v1__list_pod_sandbox_response__free_unpacked(list_pods(NULL), NULL);

  /* a's monitor reports the exit: the cache changes, the memo stays */
  struct ctr_runtime_state st = {.started = true, .pid = 100, .exited = true};
  st.exit.exit_code = 3;
  ctr_cache_put(d.ctr_cache, a, &st);
  Runtime__V1__ListContainersResponse *l = list_ctrs(NULL);
  cr_assert_eq(find_ctr(l, a)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED,
               "an exit alone (no record changed) shows");
  runtime__v1__list_containers_response__free_unpacked(l, NULL);
  /* pod two stopped: a new record */
  struct pod_rec *p = NULL;
  err_t *e = NULL;
  cr_assert_eq(objects_pod_get(d.objects, p2, &p, &e), 0);
  struct pod_rec *u = pod_rec_dup(p);
  u->ready = false;
  cr_assert_eq(objects_pod_update(d.objects, u, &e), 0);
  pod_rec_free(u);
  pod_rec_free(p);
  /* b removed */
  cr_assert_eq(objects_ctr_remove(d.objects, b, &e), 0);

  l = list_ctrs(NULL);
  cr_assert_eq(l->n_containers, 1);
  cr_assert_str_eq(l->containers[0]->id, a);
  cr_assert_eq(l->containers[0]->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);

  Runtime__V1__ListPodSandboxResponse *pl = list_pods(NULL);
  cr_assert_eq(pl->n_items, 2);
  cr_assert_eq(find_pod(pl, p1)->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY);
  cr_assert_eq(find_pod(pl, p2)->state, RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY);
  runtime__v1__list_pod_sandbox_response__free_unpacked(pl, NULL);

  Runtime__V1__PodSandboxStateValue sv = RUNTIME__V1__POD_SANDBOX_STATE_VALUE__INIT;
  sv.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  Runtime__V1__PodSandboxFilter f = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
  f.state = &sv;
  pl = list_pods(&f);
  cr_assert_eq(pl->n_items, 1, "pod state filter");
  cr_assert_str_eq(pl->items[0]->id, p2);
  runtime__v1__list_pod_sandbox_response__free_unpacked(pl, NULL);
}

Test(list_calls, a_state_read_from_files_is_never_served_from_a_kept_reply, .init = setup,
     .fini = teardown)
{
  char p1[65], a[65], b[65];
  add_pod("one", "web", p1);
  add_ctr(p1, "a", "front", true, false, a);   /* cached: running */
  add_ctr(p1, "b", "front", false, false, b);
  struct ctr_rec *r = NULL, *u;
  err_t *e = NULL;
  cr_assert_eq(objects_ctr_get(d.objects, b, &r, &e), 0);
  u = ctr_rec_dup(r);
  u->start_requested = true;   /* started, but nothing in the cache: its files say */
  cr_assert_eq(objects_ctr_update(d.objects, u, &e), 0);
  ctr_rec_free(u);
  ctr_rec_free(r);

  Runtime__V1__ListContainersResponse *l = list_ctrs(NULL);
  cr_assert_eq(find_ctr(l, b)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED, "no files yet");
  runtime__v1__list_containers_response__free_unpacked(l, NULL);
  /* the monitor writes started.json: no version changes, the next list must see it */
  char dir[256];
  snprintf(dir, sizeof(dir), "%s/containers/%s", root, b);
  cr_assert_eq(mkdir_p(dir, 0700, &e), 0);
  cr_assert_eq(mon_started_write(dir, 4242, 11, &e), 0);
  l = list_ctrs(NULL);
  cr_assert_eq(find_ctr(l, b)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
  cr_assert_eq(find_ctr(l, a)->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
  runtime__v1__list_containers_response__free_unpacked(l, NULL);
}

Test(list_reply, serves_only_the_versions_it_was_built_at)
{
  struct list_reply *r = list_reply_new();
  struct buf out = BUF_INIT;
  cr_assert(!list_reply_get(r, 0, 0, &out), "nothing kept yet");
  list_reply_put(r, 3, 7, "abc", 3);
  cr_assert(list_reply_get(r, 3, 7, &out));
  cr_assert(out.len == 3 && memcmp(out.data, "abc", 3) == 0);
  cr_assert(!list_reply_get(r, 4, 7, &out) && !list_reply_get(r, 3, 8, &out));
  cr_assert_eq(out.len, 3, "a miss appends nothing");
  list_reply_put(r, 4, 7, "", 0);   /* an empty list is a reply too */
  cr_assert(!list_reply_get(r, 3, 7, &out), "replaced");
  cr_assert(list_reply_get(r, 4, 7, &out));
  cr_assert_eq(out.len, 3);
  cr_assert(!list_reply_get(NULL, 4, 7, &out));
  list_reply_put(NULL, 1, 1, "x", 1);
  buf_free(&out);
  list_reply_free(r);
}

Test(list_calls, every_index_change_moves_the_version, .init = setup, .fini = teardown)
{
  char p1[65], a[65];
  uint64_t v0 = objects_version(d.objects);
  add_pod("one", "web", p1);
  uint64_t v1 = objects_version(d.objects);
  cr_assert_neq(v1, v0, "pod add");
  add_ctr(p1, "a", "front", false, false, a);
  uint64_t v2 = objects_version(d.objects);
  cr_assert_neq(v2, v1, "container add");
  struct ctr_rec *r = NULL;
  err_t *e = NULL;
  cr_assert_eq(objects_ctr_get(d.objects, a, &r, &e), 0);
  cr_assert_eq(objects_ctr_update(d.objects, r, &e), 0);
  ctr_rec_free(r);
  uint64_t v3 = objects_version(d.objects);
  cr_assert_neq(v3, v2, "container update");
  cr_assert_eq(objects_ctr_remove(d.objects, a, &e), 0);
  uint64_t v4 = objects_version(d.objects);
  cr_assert_neq(v4, v3, "container remove");
  cr_assert_eq(objects_pod_remove(d.objects, p1, &e), 0);
  cr_assert_neq(objects_version(d.objects), v4, "pod remove");

  uint64_t c0 = ctr_cache_version(d.ctr_cache);
  struct ctr_runtime_state st = {.started = true};
  ctr_cache_put(d.ctr_cache, a, &st);
  uint64_t c1 = ctr_cache_version(d.ctr_cache);
  cr_assert_neq(c1, c0, "cache put");
  ctr_cache_drop(d.ctr_cache, a);
  cr_assert_neq(ctr_cache_version(d.ctr_cache), c1, "cache drop");
}
