/* trim.h - give back a long-lived process's start-up pages.
 *
 * Once a process's start-up is over, the pages of its executable's code and constants
 * that only start-up touched (RELRO's too, but for what relocation wrote) are resident
 * for nothing: trim_startup_pages drops them from the process (they stay in the page
 * cache, reclaimable, and fault back in if run again) and gives free heap back to the
 * kernel. Safe with other threads running. */
#ifndef CRISP_BASE_TRIM_H
#define CRISP_BASE_TRIM_H

void trim_startup_pages(void);

#endif
