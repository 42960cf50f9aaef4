/* crispd_images.c - `crispd images import`: loads an image archive into a running
 * crispd through its admin socket (cri/admin.h), as `ctr images import` does for
 * containerd (what `kind load` runs on a node). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "cri/admin.h"
#include "cri/config.h"
#include "cmd/crispd_images.h"

static void usage(FILE *f)
{
  fprintf(f,
          "Usage: crispd images import [options] FILE|-\n"
          "Loads the images of an OCI image layout archive or a `docker save` archive (tar,\n"
          "optionally gzip or zstd compressed; - reads it from stdin) into the running crispd.\n"
          "\n"
          "  --config FILE  crispd's configuration, for its state directory (default " CONFIG_DEFAULT_PATH ")\n"
          "  --state DIR    crispd's state directory (overrides the config)\n"
          "  --name NAME    the image's name (replaces the archive's; one image only)\n"
          "\n"
          "Prints \"imported <id> <name>...\" per image. Root only.\n");
}

/* The state directory crispd uses, from the same config file and flag as crispd. */
static char *state_dir(const char *config, bool config_given, const char *state)
{
  if (state)
    return strdup(state);
  struct crisp_config cfg;
  config_init_defaults(&cfg);
  err_t *e = NULL;
  bool found = false;
  char *out = NULL;
  if (config_load_file(&cfg, config, &found, &e) < 0) {
    fprintf(stderr, "crispd images: %s\n", e->msg);
    err_free(&e);
  } else if (!found && config_given) {
    fprintf(stderr, "crispd images: configuration file %s not found\n", config);
  } else {
    out = strdup(cfg.state);
  }
  config_clear(&cfg);
  return out;
}

static int do_import(const char *sock, const char *file, const char *name)
{
  int fd = 0;
  if (strcmp(file, "-") != 0 && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
    fprintf(stderr, "crispd images import: %s: %s\n", file, strerror(errno));
    return 1;
  }
  err_t *e = NULL;
  int rc = admin_import(sock, fd, name, stdout, &e);
  if (fd > 0)
    close(fd);
  if (rc < 0) {
    fprintf(stderr, "crispd images import: %s\n", e->msg);
    err_free(&e);
    return 1;
  }
  return 0;
}

int crispd_images_main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'}, {"state", required_argument, NULL, 's'},
      {"name", required_argument, NULL, 'n'},   {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  if (argc < 2 || strcmp(argv[1], "import") != 0) {
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  const char *config = CONFIG_DEFAULT_PATH, *state = NULL, *name = NULL;
  bool config_given = false;
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; config_given = true; break;
    case 's': state = optarg; break;
    case 'n': name = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  char *dir = state_dir(config, config_given, state);
  if (!dir)
    return 1;
  char *sock = path_join(dir, ADMIN_SOCKET_NAME);
  int rc = do_import(sock, argv[optind], name);
  free(sock);
  free(dir);
  return rc;
}
