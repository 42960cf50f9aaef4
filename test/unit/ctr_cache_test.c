/* ctr_cache: containers' runtime state kept in memory (cri/ctr_cache.c). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cri/internal.h"
#include "runtimes/monitor.h"

static void id_of(int i, char out[65])
{
  snprintf(out, 65, "%064x", i);
}

Test(ctr_cache, keeps_what_was_put_until_dropped)
{
  struct ctr_cache *c = ctr_cache_new();
  char id[65];
  id_of(7, id);
  struct ctr_runtime_state st = {.started = true, .pid = 42, .exited = true}, got;
  st.exit.exit_code = 3;
  cr_assert(!ctr_cache_get(c, id, &got));
  ctr_cache_put(c, id, &st);
  cr_assert(ctr_cache_get(c, id, &got));
  cr_assert_eq(got.pid, 42);
  cr_assert_eq(got.exit.exit_code, 3);
  st.exit.exit_code = 4;   /* a put replaces */
  ctr_cache_put(c, id, &st);
  cr_assert(ctr_cache_get(c, id, &got) && got.exit.exit_code == 4);
  ctr_cache_drop(c, id);
  cr_assert(!ctr_cache_get(c, id, &got));
  ctr_cache_drop(c, id);   /* dropping what is not there is fine */
  ctr_cache_free(c);
}

Test(ctr_cache, many_ids_in_one_bucket_stay_apart)
{
  struct ctr_cache *c = ctr_cache_new();
  char id[65];
  for (int i = 0; i < 5000; i++) {
    struct ctr_runtime_state st = {.pid = i + 1};
    id_of(i, id);
    ctr_cache_put(c, id, &st);
  }
  for (int i = 0; i < 5000; i += 2) {
    id_of(i, id);
    ctr_cache_drop(c, id);
  }
  for (int i = 0; i < 5000; i++) {
    struct ctr_runtime_state got;
    id_of(i, id);
    cr_assert_eq(ctr_cache_get(c, id, &got), i % 2 == 1, "id %d", i);
    if (i % 2)
      cr_assert_eq(got.pid, i + 1);
  }
  ctr_cache_free(c);
}

Test(ctr_cache, a_null_cache_and_a_short_id_are_misses)
{
  struct ctr_runtime_state st = {.pid = 1}, got;
  cr_assert(!ctr_cache_get(NULL, "x", &got));
  ctr_cache_put(NULL, "x", &st);
  ctr_cache_drop(NULL, "x");
  struct ctr_cache *c = ctr_cache_new();
  ctr_cache_put(c, "abc", &st);
  cr_assert(!ctr_cache_get(c, "abc", &got));
  ctr_cache_free(c);
}
