/* trim.c - give back a long-lived process's start-up pages (trim.h).
 *
 * A monitor lives as long as its container, and most of what it mapped to start it
 * (spec parsing, the executor, libseccomp, glibc's start-up) never runs again; crispd's
 * start-up (grpc's plugin registry, configuration) is the same. The read-only PT_LOAD segments of the executable (code, constants) are dropped with
 * MADV_DONTNEED: on a private file mapping nobody wrote, that only removes the page
 * table entries, and a page the loop needs again faults back in from the page cache.
 * Only segments without PF_W qualify, rounded inward to whole pages: RELRO lives in
 * the writable segment (relocated at start, then made read-only), and dropping it
 * would bring back the unrelocated file contents. */
#include "base/trim.h"

#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static int trim_object(struct dl_phdr_info *info, size_t size, void *data)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
      continue;
    uintptr_t lo = (info->dlpi_addr + ph->p_vaddr + page - 1) & ~(page - 1);
    uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_filesz) & ~(page - 1);
    if (hi > lo)
      madvise((void *)lo, hi - lo, MADV_DONTNEED);
  }
  return 1;   /* the first object is the executable: stop there */
}

void trim_startup_pages(void)
{
  malloc_trim(0);
  dl_iterate_phdr(trim_object, NULL);
}
