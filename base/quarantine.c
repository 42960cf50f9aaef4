/* quarantine.c - moving corrupt records aside, and the store report. */
#include "base/quarantine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"

static int move_noreplace(const char *from, const char *to)
{
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL)
    return -1;
  /* a filesystem without RENAME_NOREPLACE: only loaders rename here, so check first */
  if (access(to, F_OK) == 0) {
    errno = EEXIST;
    return -1;
  }
  return rename(from, to);
}

/* The new path, or NULL (logged) if the file could not be moved. */
static char *quarantine_move(const char *qdir, const char *path, const char *kind,
                             const char *reason)
{
  err_t *e = NULL;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (mkdir_p(qdir, 0700, &e) < 0) {
    log_error("cannot quarantine corrupt store file", "path", path, "reason", reason, "error",
              e->msg, NULL);
    err_free(&e);
    return NULL;
  }
  /* never replace an earlier quarantined file: each one is evidence */
  for (unsigned n = 0; n < 1000; n++) {
    char *dst = n ? xasprintf("%s/%s-%s.%u", qdir, kind, base, n)
                  : xasprintf("%s/%s-%s", qdir, kind, base);
    if (move_noreplace(path, dst) == 0) {
      log_warn("quarantined corrupt store file", "kind", kind, "path", path, "moved_to", dst,
               "reason", reason, NULL);
      return dst;
    }
    free(dst);
    if (errno != EEXIST)
      break;
  }
  log_error("cannot quarantine corrupt store file", "path", path, "reason", reason, "error",
            strerror(errno), NULL);
  return NULL;
}

static void add_problem(struct store_report *r, const char *kind, const char *path,
                        const char *reason, char *moved_to)
{
  r->problems = xreallocarray(r->problems, r->n_problems + 1, sizeof(*r->problems));
  r->problems[r->n_problems++] = (struct store_problem){
      .kind = xstrdup(kind), .path = xstrdup(path), .reason = xstrdup(reason), .moved_to = moved_to};
}

void store_report_count(struct store_report *r, const char *kind)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->n_counts; i++)
    if (!strcmp(r->counts[i].kind, kind)) {
      r->counts[i].n++;
      return;
    }
  if (r->n_counts < sizeof(r->counts) / sizeof(r->counts[0]))
    r->counts[r->n_counts++] = (struct store_count){kind, 1};
}

void store_report_note(struct store_report *r, const char *kind, const char *path,
                       const char *reason)
{
  log_warn("store problem", "kind", kind, "path", path, "reason", reason, NULL);
  if (r)
    add_problem(r, kind, path, reason, NULL);
}

bool store_problem(struct store_report *r, const char *qdir, const char *path, const char *kind,
                   const char *reason)
{
  char *moved = NULL;
  if (!r || !r->check_only)
    moved = quarantine_move(qdir, path, kind, reason);
  bool was_moved = moved != NULL;
  if (r)
    add_problem(r, kind, path, reason, moved);
  else
    free(moved);
  return was_moved;
}

void store_report_print(const struct store_report *r, FILE *f)
{
  fprintf(f, "records:");
  if (!r->n_counts)
    fprintf(f, " none");
  for (size_t i = 0; i < r->n_counts; i++)
    fprintf(f, " %s=%zu", r->counts[i].kind, r->counts[i].n);
  fprintf(f, "\nproblems: %zu\n", r->n_problems);
  for (size_t i = 0; i < r->n_problems; i++) {
    const struct store_problem *p = &r->problems[i];
    fprintf(f, "  %s %s: %s", p->kind, p->path, p->reason);
    if (p->moved_to)
      fprintf(f, " (moved to %s)", p->moved_to);
    fputc('\n', f);
  }
}

void store_report_clear(struct store_report *r)
{
  for (size_t i = 0; i < r->n_problems; i++) {
    free(r->problems[i].kind);
    free(r->problems[i].path);
    free(r->problems[i].reason);
    free(r->problems[i].moved_to);
  }
  free(r->problems);
  r->problems = NULL;
  r->n_problems = 0;
  r->n_counts = 0;
}
