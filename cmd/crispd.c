/* crispd - the crisp CRI daemon. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/quarantine.h"
#include "base/trim.h"
#include "cmd/absl_mode.h"
#include "cmd/crispd_images.h"
#include "cri/config.h"
#include "cri/cri.h"

#define SHUTDOWN_GRACE_MS 10000

static void usage(FILE *f)
{
  fprintf(f,
          "Usage: crispd [options]\n"
          "crisp's Kubernetes CRI v1 server (RuntimeService and ImageService on a unix socket).\n"
          "\n"
          "  --config FILE      JSON configuration (default " CONFIG_DEFAULT_PATH ";\n"
          "                     a missing file means built-in defaults)\n"
          "  --log-level LEVEL  debug, info, warn or error (overrides the config)\n"
          "  --root DIR         persistent store (default /var/lib/crisp)\n"
          "  --state DIR        volatile state (default /run/crisp)\n"
          "  --listen PATH      CRI socket (default /run/crisp/crisp.sock)\n"
          "  --check-store      check the store under --root and print a report, changing\n"
          "                     nothing; exit 0 if clean, 1 if problems were found\n"
          "  --repair           with --check-store: move corrupt records to <root>/quarantine\n"
          "                     (refused while a crispd serves that root)\n"
          "  --version          print the version and exit\n"
          "  --help             print this help and exit\n"
          "\n"
          "       crispd images import [--config FILE] [--state DIR] [--name NAME] FILE|-\n"
          "                     load an OCI or docker archive into the running crispd\n"
          "\n"
          "Logs go to stderr, one logfmt line per event. SIGTERM or SIGINT stops crispd\n"
          "after in-flight calls finish; containers keep running.\n");
}

struct flags {
  const char *config, *log_level, *root, *state, *listen;
  bool config_given;
  bool check_store, repair;
};

/* 0: run; 1: done (help/version); 2: usage error */
static int parse_flags(int argc, char **argv, struct flags *f)
{
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'}, {"log-level", required_argument, NULL, 'l'},
      {"root", required_argument, NULL, 'r'},   {"state", required_argument, NULL, 's'},
      {"listen", required_argument, NULL, 'L'}, {"version", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},         {"check-store", no_argument, NULL, 'C'},
      {"repair", no_argument, NULL, 'R'},       {NULL, 0, NULL, 0},
  };
  memset(f, 0, sizeof(*f));
  f->config = CONFIG_DEFAULT_PATH;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c': f->config = optarg; f->config_given = true; break;
    case 'l': f->log_level = optarg; break;
    case 'r': f->root = optarg; break;
    case 's': f->state = optarg; break;
    case 'L': f->listen = optarg; break;
    case 'C': f->check_store = true; break;
    case 'R': f->repair = true; break;
    case 'v': printf("crispd %s (CRI v1)\n", cri_version()); return 1;
    case 'h': usage(stdout); return 1;
    default: usage(stderr); return 2;
    }
  }
  if (f->repair && !f->check_store) {
    fprintf(stderr, "crispd: --repair goes with --check-store\n");
    return 2;
  }
  if (optind < argc) {
    fprintf(stderr, "crispd: unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  return 0;
}

static int apply_path_flag(const char *flag, const char *val, char **field)
{
  if (!val)
    return 0;
  if (strncmp(val, "unix://", 7) == 0 && strcmp(flag, "--listen") == 0)
    val += 7;
  if (val[0] != '/') {
    fprintf(stderr, "crispd: %s needs an absolute path, not \"%s\"\n", flag, val);
    return -1;
  }
  config_set_str(field, val);
  return 0;
}

static int build_config(const struct flags *f, struct crisp_config *cfg)
{
  err_t *e = NULL;
  bool found;
  config_init_defaults(cfg);
  if (config_load_file(cfg, f->config, &found, &e) < 0) {
    log_error("invalid configuration, not starting", "error", e->msg, NULL);
    err_free(&e);
    return -1;
  }
  if (!found && f->config_given) {
    log_error("configuration file not found", "path", f->config, NULL);
    return -1;
  }
  if (f->log_level && log_level_parse(f->log_level, &cfg->log_level) < 0) {
    fprintf(stderr, "crispd: --log-level must be debug, info, warn or error\n");
    return -1;
  }
  if (apply_path_flag("--root", f->root, &cfg->root) < 0 ||
      apply_path_flag("--state", f->state, &cfg->state) < 0 ||
      apply_path_flag("--listen", f->listen, &cfg->listen) < 0)
    return -1;
  log_set_level(cfg->log_level);
  log_info("configuration loaded", "path", found ? f->config : "(built-in defaults)", NULL);
  return 0;
}

/* malloc gives freed memory back to the kernel by itself only from the top of the heap;
 * the pages in the holes below stay resident (~0.1 MiB after lifecycle churn, README
 * "Memory") until malloc_trim, run this often while crispd waits for a stop signal. */
#define HEAP_TRIM_MS 30000

/* Waits for SIGTERM or SIGINT on a signalfd (no work happens in a signal handler),
 * trimming the heap every HEAP_TRIM_MS meanwhile. */
static int wait_for_stop(int sfd)
{
  struct signalfd_siginfo si;
  struct pollfd p = {.fd = sfd, .events = POLLIN};
  for (;;) {
    int ready = poll(&p, 1, HEAP_TRIM_MS);
    if (ready == 0)
      malloc_trim(0);
    if (ready < 0 && errno != EINTR)
      return -1;
    if (ready <= 0)
      continue;
    ssize_t n = read(sfd, &si, sizeof(si));
    if (n == (ssize_t)sizeof(si))
      return (int)si.ssi_signo;
    if (n < 0 && errno != EINTR)
      return -1;
  }
}

/* --check-store: 0 clean, 1 problems (or the check failed), never serves. */
static int check_store(const struct flags *f)
{
  struct crisp_config cfg;
  if (build_config(f, &cfg) < 0) {
    config_clear(&cfg);
    return 1;
  }
  struct store_report r = {.check_only = !f->repair};
  err_t *e = NULL;
  int rc = cri_check_store(&cfg, &r, &e);
  printf("store %s (%s)\n", cfg.root, f->repair ? "repair" : "check only");
  store_report_print(&r, stdout);
  if (rc < 0) {
    printf("check failed: %s\n", e->msg);
    err_free(&e);
  }
  int status = rc < 0 || r.n_problems ? 1 : 0;
  store_report_clear(&r);
  config_clear(&cfg);
  return status;
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "images") == 0)
    return crispd_images_main(argc - 1, argv + 1);
  struct flags f;
  int rc = parse_flags(argc, argv, &f);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (f.check_store)
    return check_store(&f);

  /* one malloc arena for every thread: glibc gives each thread that meets contention an
   * arena of its own (up to 8 per core), each keeping its freed pages resident; crispd's
   * calls are small and short, so sharing one costs no measurable rate (README "Memory") */
  mallopt(M_ARENA_MAX, 1);
  /* before grpc locks its first mutex: a graph node per mutex, kept for good (absl_mode.h) */
  absl_lock_graph_off();

  /* block the stop signals before any thread exists, so every thread inherits it */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    perror("crispd: signalfd");
    return 1;
  }

  struct crisp_config cfg;
  if (build_config(&f, &cfg) < 0) {
    config_clear(&cfg);
    return 1;
  }
  struct cri *d = NULL;
  err_t *e = NULL;
  if (cri_new(&cfg, &d, &e) < 0 || cri_serve(d, &e) < 0) {
    log_error("cannot start", "error", e->msg, NULL);
    err_free(&e);
    config_clear(&cfg);
    cri_free(d);
    return 1;
  }
  /* idle from here on: what grpc's and our start-up ran need not stay resident */
  trim_startup_pages();
  int sig = wait_for_stop(sfd);
  log_info("stopping", "signal", sig > 0 ? strsignal(sig) : "?", NULL);
  cri_stop(d, SHUTDOWN_GRACE_MS);
  cri_free(d);
  close(sfd);
  log_info("stopped", NULL);
  return 0;
}
