/* crispd_images.h - the `crispd images ...` subcommands (cmd/crispd_images.c). */
#ifndef CRISP_CMD_CRISPD_IMAGES_H
#define CRISP_CMD_CRISPD_IMAGES_H

/* argv[0] is "images"; returns the exit code. */
int crispd_images_main(int argc, char **argv);

#endif
