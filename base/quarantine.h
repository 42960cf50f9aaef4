/* quarantine.h - what a store loader does with a record it cannot use, and the report
 * `crispd --check-store` prints.
 *
 * A loader that meets a corrupt record calls store_problem(): with no report (a normal
 * start) or a repairing one, the file is moved into the quarantine directory
 * (<qdir>/<kind>-<name>, ".1", ".2"... if taken: an earlier one is never replaced) with
 * a log_warn naming it and why; a check-only report just records it and nothing on
 * disk changes. Nothing is dropped silently.
 *
 * Not thread-safe: loaders run single-threaded at start-up.
 */
#ifndef CRISP_BASE_QUARANTINE_H
#define CRISP_BASE_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct store_problem {
  char *kind, *path, *reason;
  char *moved_to;   /* NULL when not moved (check-only, or the move failed) */
};

struct store_count {
  const char *kind;   /* a string literal */
  size_t n;
};

struct store_report {
  bool check_only;   /* true: record, change nothing on disk */
  struct store_count counts[12];
  size_t n_counts;
  struct store_problem *problems;
  size_t n_problems;
};

/* One good record of kind (a string literal). r NULL: no-op. */
void store_report_count(struct store_report *r, const char *kind);
/* Something is wrong with path that needs no move (a note for the report and a warn
 * line): e.g. a container whose pod is gone. */
void store_report_note(struct store_report *r, const char *kind, const char *path,
                       const char *reason);
/* A corrupt record: quarantined unless r is check-only; recorded in r (if any). Returns
 * true if the file was moved (so the caller must not touch path again). */
bool store_problem(struct store_report *r, const char *qdir, const char *path, const char *kind,
                   const char *reason);
/* Counts per kind, then one line per problem: kind, path, reason (and where it went). */
void store_report_print(const struct store_report *r, FILE *f);
void store_report_clear(struct store_report *r);

#endif
