/* crispd's abseil setting (cmd/absl_mode.cc): gRPC's mutexes stay out of abseil's
 * lock-order graph, which Debian's abseil (built without NDEBUG) keeps for every
 * mutex ever locked, 512 bytes each, outside malloc and never returned while the
 * mutex lives. gpr_mu is an absl::Mutex, so gRPC's own C API exercises it. */
#include <criterion/criterion.h>
#include <grpc/support/sync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/absl_mode.h"

#define N_MU 4096

static gpr_mu many[N_MU];   /* static, as gRPC's debug timer table: never destroyed */

static long rss_anon_kib(void)
{
  FILE *f = fopen("/proc/self/status", "re");
  cr_assert(f);
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, "RssAnon:", 8) == 0)
      kib = strtol(line + 8, NULL, 10);
  fclose(f);
  return kib;
}

Test(absl_mode, locking_many_mutexes_costs_no_memory_once_the_lock_graph_is_off)
{
  absl_lock_graph_off();
  gpr_mu outer;
  gpr_mu_init(&outer);
  for (size_t i = 0; i < N_MU; i++)
    gpr_mu_init(&many[i]);
  long before = rss_anon_kib();
  gpr_mu_lock(&outer);
  for (size_t i = 0; i < N_MU; i++) {
    gpr_mu_lock(&many[i]);
    gpr_mu_unlock(&many[i]);
  }
  gpr_mu_unlock(&outer);
  long after = rss_anon_kib();
  /* with the graph on: a node per mutex (2 MiB for 4096) plus the edges from outer */
  cr_assert_lt(after - before, 256, "RssAnon grew %ld KiB locking %d mutexes", after - before, N_MU);
  gpr_mu_destroy(&outer);
}

Test(absl_mode, lock_order_inversion_is_not_tracked_once_the_lock_graph_is_off)
{
  absl_lock_graph_off();
  gpr_mu a, b;
  gpr_mu_init(&a);
  gpr_mu_init(&b);
  gpr_mu_lock(&a);
  gpr_mu_lock(&b);
  gpr_mu_unlock(&b);
  gpr_mu_unlock(&a);
  /* the reverse order: with the graph on, abseil reports a potential deadlock and aborts */
  gpr_mu_lock(&b);
  gpr_mu_lock(&a);
  gpr_mu_unlock(&a);
  gpr_mu_unlock(&b);
  gpr_mu_destroy(&a);
  gpr_mu_destroy(&b);
}
