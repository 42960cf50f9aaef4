/* trim.c - give back a long-lived process's start-up pages (trim.h).
 *
 * A monitor lives as long as its container, and most of what it mapped to start it
 * (spec parsing, the executor, libseccomp, glibc's start-up) never runs again; crispd's
 * start-up (grpc's plugin registry, configuration) is the same. The read-only PT_LOAD
 * segments of the executable (code, constants) are dropped with MADV_DONTNEED: on a
 * private file mapping nobody wrote, that only removes the page table entries, and a
 * page the loop needs again faults back in from the page cache.
 * Only segments without PF_W qualify, rounded inward to whole pages: RELRO lives in
 * the writable segment (relocated at start, then made read-only), and dropping a page
 * relocation wrote would bring back the unrelocated file contents. RELRO's pages that
 * nothing wrote (vtables and tables of a static crispd) still map the file, though, and
 * start-up leaves many resident: /proc/self/pagemap tells them apart (bit 61, a file
 * page, where a written page is anonymous), and as RELRO is read-only by now no page can
 * change between that look and the madvise. */
#include "base/trim.h"

#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_FILE (1ULL << 61)

/* drop the pages of [lo, hi) that are present and still the file's */
static void trim_unwritten(uintptr_t lo, uintptr_t hi, uintptr_t page)
{
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0)
    return;
  uintptr_t run = 0;   /* start of the droppable pages before a, 0 if none */
  for (uintptr_t a = lo; a < hi; a += page) {
    uint64_t ent = 0;
    bool drop = pread(pagemap, &ent, sizeof(ent), (off_t)(a / page * sizeof(ent))) == sizeof(ent) &&
                (ent & (PAGEMAP_PRESENT | PAGEMAP_FILE)) == (PAGEMAP_PRESENT | PAGEMAP_FILE);
    if (drop && !run)
      run = a;
    if (!drop && run) {
      madvise((void *)run, a - run, MADV_DONTNEED);
      run = 0;
    }
  }
  if (run)
    madvise((void *)run, hi - run, MADV_DONTNEED);
  close(pagemap);
}

static int trim_object(struct dl_phdr_info *info, size_t size, void *data)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    /* the loader protects RELRO rounded down at both ends: those pages are read-only */
    if (ph->p_type == PT_GNU_RELRO)
      trim_unwritten(start & ~(page - 1), (start + ph->p_memsz) & ~(page - 1), page);
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
      continue;
    uintptr_t lo = (start + page - 1) & ~(page - 1);
    uintptr_t hi = (start + ph->p_filesz) & ~(page - 1);
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
