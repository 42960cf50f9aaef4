/* crisp-pleg - many kubelet-like status pollers against one CRI socket.
 *
 *   crisp-pleg SOCKET SECONDS CLIENTS INTERVAL_MS IDFILE
 *
 * CLIENTS threads, each with its own channel, loop for SECONDS: ListContainers,
 * ListPodSandbox, then ContainerStatus and PodSandboxStatus of one container and one
 * pod picked in turn from IDFILE (lines "c <container id>" and "p <pod id>"), then
 * sleep INTERVAL_MS (kubelet's PLEG relists every second; a shorter interval is a
 * harsher test). Every call's latency is kept; the output is one line per method and
 * one for all:
 *   method=ContainerStatus calls=N p50_us=.. p99_us=.. max_us=.. errors=E
 * NOT_FOUND counts as an answer (pods churn); any other failure is an error.
 * Test tooling: uses the grpc C core client directly. */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_IDS 4096
#define MAX_SAMPLES 2000000
enum { M_LIST_CTRS, M_LIST_PODS, M_CTR_STATUS, M_POD_STATUS, M_N };
static const char *const names[M_N] = {"ListContainers", "ListPodSandbox", "ContainerStatus",
                                       "PodSandboxStatus"};

static char target[512];
static double end_at;
static int interval_ms;
static char *ctr_ids[MAX_IDS], *pod_ids[MAX_IDS];
static int n_ctrs, n_pods;

struct sample { float us; unsigned char m; };
static struct sample *samples;
static long n_samples;
static long errors[M_N];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A request whose field 1 is the string id (ContainerStatusRequest.container_id,
 * PodSandboxStatusRequest.pod_sandbox_id); NULL: the empty message. */
static grpc_byte_buffer *request(const char *id)
{
  unsigned char buf[256];
  size_t n = 0;
  if (id) {
    size_t len = strlen(id);
    if (len > 120)
      len = 120;
    buf[n++] = 0x0a;
    buf[n++] = (unsigned char)len;
    memcpy(buf + n, id, len);
    n += len;
  }
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n);
  grpc_byte_buffer *b = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return b;
}

/* One call, waited for; returns the status. */
static grpc_status_code call(grpc_channel *ch, grpc_completion_queue *cq, void *method,
                             const char *id)
{
  grpc_metadata_array md_init, md_trail;
  grpc_metadata_array_init(&md_init);
  grpc_metadata_array_init(&md_trail);
  grpc_byte_buffer *req = request(id), *resp = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details;
  grpc_call *c = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_init;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &resp;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  if (grpc_call_start_batch(c, ops, 6, c, NULL) == GRPC_CALL_OK)
    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_byte_buffer_destroy(req);
  if (resp)
    grpc_byte_buffer_destroy(resp);
  grpc_metadata_array_destroy(&md_init);
  grpc_metadata_array_destroy(&md_trail);
  grpc_slice_unref(details);
  grpc_call_unref(c);
  return status;
}

static void *client(void *arg)
{
  unsigned seed = (unsigned)(size_t)arg;
  grpc_channel_credentials *cr = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, cr, NULL);
  grpc_channel_credentials_release(cr);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  void *methods[M_N];
  for (int m = 0; m < M_N; m++) {
    char path[128];
    snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/%s", names[m]);
    methods[m] = grpc_channel_register_call(ch, path, NULL, NULL);
  }
  call(ch, cq, methods[M_LIST_CTRS], NULL);   /* connect before measuring */
  /* spread the clients over the interval, as many kubelets' timers would be */
  if (interval_ms > 0) {
    long us = (long)(rand_r(&seed) % (unsigned)interval_ms) * 1000;
    nanosleep(&(struct timespec){us / 1000000, (us % 1000000) * 1000}, NULL);
  }
  for (unsigned round = seed; now() < end_at; round++) {
    for (int m = 0; m < M_N; m++) {
      const char *id = m == M_CTR_STATUS ? (n_ctrs ? ctr_ids[round % n_ctrs] : "none")
                     : m == M_POD_STATUS ? (n_pods ? pod_ids[round % n_pods] : "none") : NULL;
      double t0 = now();
      grpc_status_code st = call(ch, cq, methods[m], id);
      float us = (float)((now() - t0) * 1e6);
      pthread_mutex_lock(&mu);
      if (n_samples < MAX_SAMPLES)
        samples[n_samples++] = (struct sample){us, (unsigned char)m};
      if (st != GRPC_STATUS_OK && st != GRPC_STATUS_NOT_FOUND)
        errors[m]++;
      pthread_mutex_unlock(&mu);
    }
    if (interval_ms > 0) {
      long us = interval_ms * 1000L;
      nanosleep(&(struct timespec){us / 1000000, (us % 1000000) * 1000}, NULL);
    }
  }
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(cq);
  return NULL;
}

static int cmp(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static void report(const char *name, int m)
{
  float *v = malloc(sizeof(float) * (size_t)(n_samples ? n_samples : 1));
  long n = 0, err = 0;
  for (long i = 0; i < n_samples; i++)
    if (m < 0 || samples[i].m == m)
      v[n++] = samples[i].us;
  for (int k = 0; k < M_N; k++)
    if (m < 0 || k == m)
      err += errors[k];
  qsort(v, (size_t)n, sizeof(float), cmp);
  printf("method=%s calls=%ld p50_us=%.0f p99_us=%.0f max_us=%.0f errors=%ld\n", name, n,
         n ? v[n / 2] : 0.0, n ? v[(long)(n * 0.99)] : 0.0, n ? v[n - 1] : 0.0, err);
  free(v);
}

static int load_ids(const char *path)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  char line[256];
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    if (strlen(line) < 3 || line[1] != ' ')
      continue;
    if (line[0] == 'c' && n_ctrs < MAX_IDS)
      ctr_ids[n_ctrs++] = strdup(line + 2);
    else if (line[0] == 'p' && n_pods < MAX_IDS)
      pod_ids[n_pods++] = strdup(line + 2);
  }
  fclose(f);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc != 6) {
    fprintf(stderr, "usage: crisp-pleg SOCKET SECONDS CLIENTS INTERVAL_MS IDFILE\n");
    return 2;
  }
  double secs = atof(argv[2]);
  int clients = atoi(argv[3]);
  interval_ms = atoi(argv[4]);
  if (secs <= 0 || clients < 1 || clients > 1000 || interval_ms < 0 || load_ids(argv[5]) < 0) {
    fprintf(stderr, "crisp-pleg: bad arguments\n");
    return 2;
  }
  snprintf(target, sizeof(target), "unix:%s", argv[1]);
  samples = malloc(sizeof(*samples) * MAX_SAMPLES);
  grpc_init();
  end_at = now() + secs;
  pthread_t *t = calloc((size_t)clients, sizeof(*t));
  for (int i = 0; i < clients; i++)
    pthread_create(&t[i], NULL, client, (void *)(size_t)(i + 1));
  for (int i = 0; i < clients; i++)
    pthread_join(t[i], NULL);
  for (int m = 0; m < M_N; m++)
    report(names[m], m);
  report("all", -1);
  grpc_shutdown();
  return 0;
}
