/* exitwatch.c - CONTAINER_STOPPED for containers that end by themselves.
 *
 * One thread waits (epoll) on a pidfd per running container's crisp-monitor: the
 * monitor records the exit and then exits itself, so its pidfd turning readable means
 * the container's final state is on disk. StopContainer, RemoveContainer and
 * StopPodSandbox claim the same entry after they stopped a container; whoever claims
 * it first publishes the one CONTAINER_STOPPED event, under the watcher's mutex, so a
 * RemoveContainer's DELETED never comes before the STOPPED of the same container.
 *
 * A monitor killed without writing its exit file leaves its container unsupervised:
 * monitor_state reports it exited ("crisp-monitor died"), and the watcher kills the
 * processes left in its cgroup so that report is true. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"

#define XW_WAKE 0   /* epoll data of the stop eventfd; entries count from 1 */

struct xw_entry {
  struct xw_entry *next;
  uint64_t seq;
  int pidfd;
  char id[65];
};

struct exitwatch {
  struct cri *d;
  pthread_mutex_t mu;   /* the list, and claim + publish as one step */
  struct xw_entry *list;
  uint64_t seq;
  int ep, wake;
  pthread_t thread;
};

/* With w->mu held. Unlinks the entry (by id or by seq) and returns it, or NULL. */
static struct xw_entry *take(struct exitwatch *w, const char *id, uint64_t seq)
{
  for (struct xw_entry **p = &w->list; *p; p = &(*p)->next) {
    struct xw_entry *x = *p;
    if ((id && strcmp(x->id, id) == 0) || (!id && x->seq == seq)) {
      *p = x->next;
      ctr_cache_drop(w->d->ctr_cache, x->id);   /* "running" is not known any more */
      epoll_ctl(w->ep, EPOLL_CTL_DEL, x->pidfd, NULL);
      close(x->pidfd);
      return x;
    }
  }
  return NULL;
}

/* A container whose monitor died without recording an exit still has processes: they
 * go, since it is reported exited from now on. */
static void kill_unsupervised(struct cri *d, const char *id)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  struct ctr_runtime_state st;
  err_t *e = NULL;
  if (monitor_state(dir, &st, &e) < 0 || !st.exited || strcmp(st.exit.message, "crisp-monitor died")) {
    err_free(&e);
    return;
  }
  cleanup_free char *spec_path = path_join(dir, "spec.json");
  struct ctr_spec *spec = NULL;
  if (spec_read(spec_path, &spec, &e) == 0 && cgroup_kill_all(spec, SIGKILL, &e) == 0)
    log_info("crisp-monitor died; the container's processes were killed", "ctr", id, NULL);
  err_free(&e);
  spec_free(spec);
}

/* With w->mu held. */
static void publish_stopped(struct exitwatch *w, const char *id)
{
  cri_publish_event(w->d, id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
}

static void *watch(void *arg)
{
  struct exitwatch *w = arg;
  for (;;) {
    struct epoll_event ev[16];
    int n = epoll_wait(w->ep, ev, 16, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      log_error("exit watcher stops", "error", strerror(errno), NULL);
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      if (ev[i].data.u64 == XW_WAKE)
        return NULL;
      pthread_mutex_lock(&w->mu);
      struct xw_entry *x = take(w, NULL, ev[i].data.u64);
      if (x) {
        kill_unsupervised(w->d, x->id);
        log_debug("container exited", "ctr", x->id, NULL);
        publish_stopped(w, x->id);
        free(x);
      }
      pthread_mutex_unlock(&w->mu);
    }
  }
}

int cri_exitwatch_start(struct cri *d, err_t **e)
{
  struct exitwatch *w = xcalloc(1, sizeof(*w));
  w->d = d;
  pthread_mutex_init(&w->mu, NULL);
  w->ep = epoll_create1(EPOLL_CLOEXEC);
  w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = XW_WAKE};
  int rc = w->ep < 0 || w->wake < 0 ? -1 : epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev);
  if (rc == 0) {
    rc = pthread_create(&w->thread, NULL, watch, w);
    if (rc != 0) {
      errno = rc;
      rc = -1;
    }
  }
  if (rc < 0) {
    int saved = errno;
    if (w->ep >= 0)
      close(w->ep);
    if (w->wake >= 0)
      close(w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return err_sys(e, saved, "container exit watcher");
  }
  d->exitwatch = w;
  return 0;
}

void cri_exitwatch_stop(struct cri *d)
{
  struct exitwatch *w = d->exitwatch;
  if (!w)
    return;
  uint64_t one = 1;
  if (write(w->wake, &one, sizeof(one)) != sizeof(one))
    pthread_cancel(w->thread);   /* an eventfd write cannot fail; if it did, no hang */
  pthread_join(w->thread, NULL);
  while (w->list) {
    struct xw_entry *x = w->list;
    w->list = x->next;
    close(x->pidfd);
    free(x);
  }
  close(w->ep);
  close(w->wake);
  pthread_mutex_destroy(&w->mu);
  free(w);
  d->exitwatch = NULL;
}

static pid_t monitor_pid(struct cri *d, const char *id)
{
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  return monitor_pid_read(dir);
}

void cri_exitwatch_add(struct cri *d, const char *id)
{
  struct exitwatch *w = d->exitwatch;
  if (!w)
    return;
  pid_t pid = monitor_pid(d, id);
  int fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  bool watching = false;
  pthread_mutex_lock(&w->mu);
  free(take(w, id, 0));
  if (fd >= 0) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct xw_entry *x = xcalloc(1, sizeof(*x));
    x->seq = ++w->seq;
    x->pidfd = fd;
    snprintf(x->id, sizeof(x->id), "%s", id);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = x->seq};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      log_warn("cannot watch a container's monitor", "ctr", id, "error", strerror(errno), NULL);
      close(fd);
      free(x);
      pthread_mutex_unlock(&w->mu);
      return;
    }
    x->next = w->list;
    w->list = x;
    watching = true;
  }
  pthread_mutex_unlock(&w->mu);
  /* the lock on monitor.pid tells whether the process the pidfd names is still the
   * monitor (the pid may be stale, even reused); if not, the exit already happened */
  cleanup_free char *dir = cri_ctr_state_dir(d, id);
  struct ctr_runtime_state st;
  err_t *e = NULL;
  bool alive = monitor_state(dir, &st, &e) == 0 && st.monitor_alive && !st.exited;
  err_free(&e);
  if (alive) {
    /* running, for as long as the entry is there: the watcher drops this (under w->mu)
     * before it reports the exit */
    pthread_mutex_lock(&w->mu);
    for (struct xw_entry *x = w->list; x && st.started; x = x->next)
      if (strcmp(x->id, id) == 0) {
        ctr_cache_put(d->ctr_cache, id, &st);
        break;
      }
    pthread_mutex_unlock(&w->mu);
    return;
  }
  if (watching) {
    cri_ctr_stopped(d, id);
    return;
  }
  pthread_mutex_lock(&w->mu);   /* a container that was over before it was watched */
  kill_unsupervised(d, id);
  publish_stopped(w, id);
  pthread_mutex_unlock(&w->mu);
}

void cri_ctr_stopped(struct cri *d, const char *id)
{
  struct exitwatch *w = d->exitwatch;
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  struct xw_entry *x = take(w, id, 0);
  if (x) {
    kill_unsupervised(d, id);
    publish_stopped(w, id);
    free(x);
  }
  pthread_mutex_unlock(&w->mu);
}
