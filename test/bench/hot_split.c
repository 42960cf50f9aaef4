/* hot_split.c - linked into crispd only by test/bench/hot_text.sh, for its profile of the
 * read-only data crispd reads while serving.
 *
 * It gives every other page of the executable's read-only data (its PT_LOAD without
 * PF_W and PF_X, and RELRO) PROT_EXEC, so each page is a mapping of its own: the kernel's
 * fault-around stays inside one mapping, and /proc/PID/smaps's Referenced then tells, page
 * by page, which were read since `echo 1 > /proc/PID/clear_refs`. Runs as a constructor,
 * after the loader made RELRO read-only. */
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static void split_range(uintptr_t lo, uintptr_t hi, uintptr_t page)
{
  for (uintptr_t a = lo + page; a + page <= hi; a += 2 * page)
    mprotect((void *)a, page, PROT_READ | PROT_EXEC);
}

static int split_object(struct dl_phdr_info *info, size_t size, void *data)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_GNU_RELRO)
      split_range(start & ~(page - 1), (start + ph->p_memsz) & ~(page - 1), page);
    else if (ph->p_type == PT_LOAD && !(ph->p_flags & (PF_W | PF_X)) && ph->p_vaddr)
      split_range((start + page - 1) & ~(page - 1), (start + ph->p_filesz) & ~(page - 1), page);
  }
  return 1;   /* the executable only */
}

__attribute__((constructor)) static void hot_split(void)
{
  dl_iterate_phdr(split_object, NULL);
}
