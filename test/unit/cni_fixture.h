/* cni_fixture.h - helpers shared by the CNI tests (fake plugins and Debian's). */
#ifndef CRISP_TEST_CNI_FIXTURE_H
#define CRISP_TEST_CNI_FIXTURE_H

#include <stdbool.h>

#include "base/json.h"

/* A fresh temp dir (caller frees and removes). */
char *cnit_tmpdir(const char *tag);
/* Writes text to dir/name with mode (0644 for configs, 0755 for plugin scripts). */
void cnit_write(const char *dir, const char *name, const char *text, int mode);
/* dir/name's content, or NULL if it does not exist (caller frees). */
char *cnit_read(const char *dir, const char *name);
/* dir/name parsed (asserts it exists and parses). */
json_t *cnit_read_json(const char *dir, const char *name);
bool cnit_exists(const char *path);
/* The output of a shell command (caller frees); asserts it ran. */
char *cnit_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
