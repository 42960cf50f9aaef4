/* stats.c - ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats:
 * CPU, memory and process counts from each container's cgroup, the writable layer's
 * bytes and inodes from its upper directory. A pod's figures are the sums of its
 * containers'. nano-cores need two samples: the previous one per container is kept. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cri/internal.h"
#include "runtimes/executor.h"
#include "runtimes/monitor.h"

struct cpu_sample {
  struct cpu_sample *next;
  char id[65];
  int64_t at_ns;
  uint64_t usage_ns;
};

static pthread_mutex_t samples_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cpu_sample *samples;  /* a cache, not state: losing it costs one sample */

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* nano-cores since the previous sample of this container (0 on the first). */
static uint64_t nano_cores(const char *id, int64_t at, uint64_t usage)
{
  pthread_mutex_lock(&samples_mu);
  struct cpu_sample *s = samples;
  while (s && strcmp(s->id, id) != 0)
    s = s->next;
  uint64_t rate = 0;
  if (!s) {
    s = xcalloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->next = samples;
    samples = s;
  } else if (at > s->at_ns && usage >= s->usage_ns) {
    rate = (uint64_t)((double)(usage - s->usage_ns) * 1e9 / (double)(at - s->at_ns));
  }
  s->at_ns = at;
  s->usage_ns = usage;
  pthread_mutex_unlock(&samples_mu);
  return rate;
}

void cri_stats_forget(const char *id)
{
  pthread_mutex_lock(&samples_mu);
  for (struct cpu_sample **pp = &samples; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->id, id) == 0) {
      struct cpu_sample *s = *pp;
      *pp = s->next;
      free(s);
      break;
    }
  }
  pthread_mutex_unlock(&samples_mu);
}

static void du(int fd0, uint64_t *bytes, uint64_t *inodes, int depth)
{
  DIR *d = fdopendir(fd0);
  if (!d) {
    close(fd0);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    (*inodes)++;
    *bytes += (uint64_t)st.st_blocks * 512;
    if (S_ISDIR(st.st_mode) && depth < 64) {
      int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0)
        du(fd, bytes, inodes, depth + 1);
    }
  }
  closedir(d);
}

void cri_dir_usage(const char *path, uint64_t *bytes, uint64_t *inodes)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0)
    du(fd, bytes, inodes, 0);
}

static Runtime__V1__UInt64Value *u64(struct arena *a, uint64_t v)
{
  Runtime__V1__UInt64Value *x = arena_alloc(a, sizeof(*x));
  runtime__v1__uint64_value__init(x);
  x->value = v;
  return x;
}

struct usage_sum {
  uint64_t cpu_ns, nano_cores, mem, ws, rss, pids;
};

static Runtime__V1__ContainerStats *ctr_stats(struct cri *d, struct arena *a, const struct ctr_rec *r,
                                              struct usage_sum *sum)
{
  int64_t at = now_ns();
  struct ctr_usage u = {0};
  cleanup_free char *dir = cri_ctr_state_dir(d, r->id);
  cleanup_free char *spec_path = path_join(dir, "spec.json");
  struct ctr_spec *spec = NULL;
  err_t *e = NULL;
  if (spec_read(spec_path, &spec, &e) < 0 || cgroup_usage(spec, &u, &e) < 0)
    err_free(&e);  /* not started or gone: zero usage, as containerd reports */
  spec_free(spec);
  Runtime__V1__ContainerStats *s = arena_alloc(a, sizeof(*s));
  runtime__v1__container_stats__init(s);
  s->attributes = arena_alloc(a, sizeof(*s->attributes));
  runtime__v1__container_attributes__init(s->attributes);
  s->attributes->id = arena_strdup(a, r->id);
  s->attributes->metadata = arena_alloc(a, sizeof(*s->attributes->metadata));
  runtime__v1__container_metadata__init(s->attributes->metadata);
  s->attributes->metadata->name = arena_strdup(a, r->config->metadata->name);
  s->attributes->metadata->attempt = r->config->metadata->attempt;
  s->attributes->n_labels = r->config->n_labels;
  s->attributes->labels = cri_map_copy(a, (void *const *)r->config->labels, r->config->n_labels,
                                       (void (*)(void *))runtime__v1__container_attributes__labels_entry__init);
  s->attributes->n_annotations = r->config->n_annotations;
  s->attributes->annotations =
      cri_map_copy(a, (void *const *)r->config->annotations, r->config->n_annotations,
                   (void (*)(void *))runtime__v1__container_attributes__annotations_entry__init);
  uint64_t rate = nano_cores(r->id, at, u.cpu_usage_ns);
  s->cpu = arena_alloc(a, sizeof(*s->cpu));
  runtime__v1__cpu_usage__init(s->cpu);
  s->cpu->timestamp = at;
  s->cpu->usage_core_nano_seconds = u64(a, u.cpu_usage_ns);
  s->cpu->usage_nano_cores = u64(a, rate);
  s->memory = arena_alloc(a, sizeof(*s->memory));
  runtime__v1__memory_usage__init(s->memory);
  s->memory->timestamp = at;
  s->memory->working_set_bytes = u64(a, u.memory_working_set);
  s->memory->usage_bytes = u64(a, u.memory_usage);
  s->memory->rss_bytes = u64(a, u.memory_rss);
  uint64_t bytes = 0, inodes = 0;
  cleanup_free char *upper = xasprintf("%s/containers/%s/upper", d->cfg.root, r->id);
  int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0)
    du(fd, &bytes, &inodes, 0);
  s->writable_layer = arena_alloc(a, sizeof(*s->writable_layer));
  runtime__v1__filesystem_usage__init(s->writable_layer);
  s->writable_layer->timestamp = at;
  s->writable_layer->fs_id = arena_alloc(a, sizeof(*s->writable_layer->fs_id));
  runtime__v1__filesystem_identifier__init(s->writable_layer->fs_id);
  s->writable_layer->fs_id->mountpoint = arena_strdup(a, upper);
  s->writable_layer->used_bytes = u64(a, bytes);
  s->writable_layer->inodes_used = u64(a, inodes);
  if (sum) {
    sum->cpu_ns += u.cpu_usage_ns;
    sum->nano_cores += rate;
    sum->mem += u.memory_usage;
    sum->ws += u.memory_working_set;
    sum->rss += u.memory_rss;
    sum->pids += u.pids;
  }
  return s;
}

int cri_container_stats_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__ContainerStatsRequest *in = (const Runtime__V1__ContainerStatsRequest *)req;
  struct ctr_rec *r = NULL;
  if (objects_ctr_get(d->objects, in->container_id, &r, e) < 0)
    return -1;
  Runtime__V1__ContainerStatsResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__container_stats_response__init(out);
  out->stats = ctr_stats(d, &c->arena, r, NULL);
  ctr_rec_free(r);
  *resp = &out->base;
  return 0;
}

int cri_list_container_stats_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp, err_t **e)
{
  (void)e;
  const Runtime__V1__ListContainerStatsRequest *in = (const Runtime__V1__ListContainerStatsRequest *)req;
  const Runtime__V1__ContainerStatsFilter *f = in->filter;
  struct ctr_rec **v;
  size_t n;
  objects_ctr_list(d->objects, NULL, &v, &n);
  Runtime__V1__ListContainerStatsResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__list_container_stats_response__init(out);
  out->stats = arena_array(&c->arena, n ? n : 1, sizeof(*out->stats));
  for (size_t i = 0; i < n; i++) {
    const struct ctr_rec *r = v[i];
    if (f && ((*f->id && strncmp(r->id, f->id, strlen(f->id))) ||
              (*f->pod_sandbox_id && strncmp(r->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id))) ||
              !cri_labels_match((void *const *)r->config->labels, r->config->n_labels,
                                (void *const *)f->label_selector, f->n_label_selector)))
      continue;
    out->stats[out->n_stats++] = ctr_stats(d, &c->arena, r, NULL);
  }
  ctr_rec_list_free(v, n);
  *resp = &out->base;
  return 0;
}

static Runtime__V1__PodSandboxStats *pod_stats(struct cri *d, struct arena *a, const struct pod_rec *p)
{
  Runtime__V1__PodSandboxStats *s = arena_alloc(a, sizeof(*s));
  runtime__v1__pod_sandbox_stats__init(s);
  s->attributes = arena_alloc(a, sizeof(*s->attributes));
  runtime__v1__pod_sandbox_attributes__init(s->attributes);
  s->attributes->id = arena_strdup(a, p->id);
  s->attributes->metadata = cri_pod_metadata(a, p);
  s->attributes->n_labels = p->config->n_labels;
  s->attributes->labels = cri_map_copy(a, (void *const *)p->config->labels, p->config->n_labels,
                                       (void (*)(void *))runtime__v1__pod_sandbox_attributes__labels_entry__init);
  s->attributes->n_annotations = p->config->n_annotations;
  s->attributes->annotations =
      cri_map_copy(a, (void *const *)p->config->annotations, p->config->n_annotations,
                   (void (*)(void *))runtime__v1__pod_sandbox_attributes__annotations_entry__init);
  struct ctr_rec **v;
  size_t n;
  objects_ctr_list(d->objects, p->id, &v, &n);
  struct usage_sum sum = {0};
  s->linux = arena_alloc(a, sizeof(*s->linux));
  runtime__v1__linux_pod_sandbox_stats__init(s->linux);
  s->linux->containers = arena_array(a, n ? n : 1, sizeof(*s->linux->containers));
  for (size_t i = 0; i < n; i++)
    s->linux->containers[s->linux->n_containers++] = ctr_stats(d, a, v[i], &sum);
  ctr_rec_list_free(v, n);
  int64_t at = now_ns();
  s->linux->cpu = arena_alloc(a, sizeof(*s->linux->cpu));
  runtime__v1__cpu_usage__init(s->linux->cpu);
  s->linux->cpu->timestamp = at;
  s->linux->cpu->usage_core_nano_seconds = u64(a, sum.cpu_ns);
  s->linux->cpu->usage_nano_cores = u64(a, sum.nano_cores);
  s->linux->memory = arena_alloc(a, sizeof(*s->linux->memory));
  runtime__v1__memory_usage__init(s->linux->memory);
  s->linux->memory->timestamp = at;
  s->linux->memory->working_set_bytes = u64(a, sum.ws);
  s->linux->memory->usage_bytes = u64(a, sum.mem);
  s->linux->memory->rss_bytes = u64(a, sum.rss);
  s->linux->process = arena_alloc(a, sizeof(*s->linux->process));
  runtime__v1__process_usage__init(s->linux->process);
  s->linux->process->timestamp = at;
  s->linux->process->process_count = u64(a, sum.pids);
  return s;
}

int cri_pod_sandbox_stats_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                              ProtobufCMessage **resp, err_t **e)
{
  const Runtime__V1__PodSandboxStatsRequest *in = (const Runtime__V1__PodSandboxStatsRequest *)req;
  struct pod_rec *p = NULL;
  if (objects_pod_get(d->objects, in->pod_sandbox_id, &p, e) < 0)
    return -1;
  Runtime__V1__PodSandboxStatsResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__pod_sandbox_stats_response__init(out);
  out->stats = pod_stats(d, &c->arena, p);
  pod_rec_free(p);
  *resp = &out->base;
  return 0;
}

int cri_list_pod_sandbox_stats_rpc(struct cri *d, struct cri_call *c, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp, err_t **e)
{
  (void)e;
  const Runtime__V1__ListPodSandboxStatsRequest *in = (const Runtime__V1__ListPodSandboxStatsRequest *)req;
  const Runtime__V1__PodSandboxStatsFilter *f = in->filter;
  struct pod_rec **v;
  size_t n;
  objects_pod_list(d->objects, &v, &n);
  Runtime__V1__ListPodSandboxStatsResponse *out = arena_alloc(&c->arena, sizeof(*out));
  runtime__v1__list_pod_sandbox_stats_response__init(out);
  out->stats = arena_array(&c->arena, n ? n : 1, sizeof(*out->stats));
  for (size_t i = 0; i < n; i++) {
    const struct pod_rec *p = v[i];
    if (f && ((*f->id && strncmp(p->id, f->id, strlen(f->id))) ||
              !cri_labels_match((void *const *)p->config->labels, p->config->n_labels,
                                (void *const *)f->label_selector, f->n_label_selector)))
      continue;
    out->stats[out->n_stats++] = pod_stats(d, &c->arena, p);
  }
  pod_rec_list_free(v, n);
  *resp = &out->base;
  return 0;
}
