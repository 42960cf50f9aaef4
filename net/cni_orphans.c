/* cni_orphans.c - the CNI plugins a crispd that died left running.
 *
 * A plugin is spawned in a process group of its own, so a SIGKILLed crispd leaves it
 * running: an ADD it was in keeps going, and may finish (a veth, an address, a
 * masquerade chain) after the next crispd has undone the interrupted RunPodSandbox with
 * a DEL, leaving that state on the node for good. The plugins are found by what crispd
 * gave them, CNI_CONTAINERID=<sandbox id> in their environment, and ended with their
 * group before the undo. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "net/cni.h"

#define ENVIRON_MAX (256u << 10)
#define ORPHAN_WAIT_MS 5000

/* Whether environ (NUL-separated) holds exactly the string want. */
static bool env_has(const char *env, size_t len, const char *want)
{
  size_t wl = strlen(want);
  for (size_t i = 0; i < len;) {
    size_t n = strnlen(env + i, len - i);
    if (n == wl && memcmp(env + i, want, wl) == 0)
      return true;
    i += n + 1;
  }
  return false;
}

/* Ends pid's process group if pid runs with want in its environment: 1 if so. */
static int end_if_ours(pid_t pid, const char *want)
{
  if (pid == getpid())
    return 0;
  /* the pidfd first: what is read below and signalled then is this process, never a
   * process that took its pid meanwhile */
  cleanup_close int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0)
    return 0;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
  cleanup_free char *env = NULL;
  size_t len = 0;
  err_t *e = NULL;
  if (file_read_all(path, ENVIRON_MAX, &env, &len, &e) < 0) {
    err_free(&e);
    return 0;
  }
  if (!env_has(env, len, want))
    return 0;
  if (getpgid(pid) == pid)
    kill(-pid, SIGKILL);   /* what it started too (the IPAM plugin, iptables) */
  pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  if (poll(&p, 1, ORPHAN_WAIT_MS) <= 0)
    log_warn("a CNI plugin left by an earlier crispd did not end", "proc", path, NULL);
  return 1;
}

int cni_orphans_end(const char *container_id)
{
  if (!container_id || !*container_id)
    return 0;
  cleanup_free char *want = xasprintf("CNI_CONTAINERID=%s", container_id);
  cleanup_closedir DIR *d = opendir("/proc");
  if (!d)
    return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end || pid <= 0)
      continue;
    n += end_if_ours((pid_t)pid, want);
  }
  if (n)
    log_warn("ended CNI plugins an earlier crispd left running", "pod", container_id, NULL);
  return n;
}
