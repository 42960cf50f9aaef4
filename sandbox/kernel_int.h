/* kernel_int.h - kernel identity helpers shared inside sandbox/. */
#ifndef CRISP_SANDBOX_KERNEL_INT_H
#define CRISP_SANDBOX_KERNEL_INT_H

#include "sandbox/sandbox.h"

/* in with the defaults filled in; machine is storage for the host's machine name,
 * which out may point to. */
void kernel_resolve(const struct sbx_kernel *in, struct sbx_kernel *out, char machine[65]);
/* Each field fits a utsname field (64 bytes) and is one line: else ERR_INVALID. */
int kernel_check(const struct sbx_kernel *k, err_t **e);

#endif
