/* crisp-bench - unary CRI call throughput and latency over a unix socket.
 *
 *   crisp-bench SOCKET METHOD [SECONDS [DEPTH]]
 *
 * One client process, one channel, DEPTH calls in flight (default 1), for SECONDS
 * (default 5). The request is the empty message, which is a valid request for
 * Version, Status and ListContainers on any CRI server. Prints one line:
 *   calls=N seconds=S rate=R/s p50_us=.. p99_us=.. errors=E
 * Test tooling: uses the grpc C core client directly.
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES 4000000

struct slot {
  grpc_call *call;
  grpc_metadata_array md_init, md_trail;
  grpc_byte_buffer *resp;
  grpc_status_code status;
  grpc_slice details;
  double started;
};

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static grpc_channel *ch;
static grpc_completion_queue *cq;
static void *method;
static grpc_byte_buffer *empty_req;

static void start(struct slot *s)
{
  memset(s, 0, sizeof(*s));
  grpc_metadata_array_init(&s->md_init);
  grpc_metadata_array_init(&s->md_trail);
  s->started = now();
  s->call = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                                gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = empty_req;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &s->resp;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trail;
  ops[5].data.recv_status_on_client.status = &s->status;
  ops[5].data.recv_status_on_client.status_details = &s->details;
  if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
    fprintf(stderr, "crisp-bench: start_batch failed\n");
    exit(1);
  }
}

static void finish(struct slot *s)
{
  if (s->resp)
    grpc_byte_buffer_destroy(s->resp);
  grpc_metadata_array_destroy(&s->md_init);
  grpc_metadata_array_destroy(&s->md_trail);
  grpc_slice_unref(s->details);
  grpc_call_unref(s->call);
}

static int cmp(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: crisp-bench SOCKET METHOD [SECONDS [DEPTH]]\n");
    return 2;
  }
  double secs = argc > 3 ? atof(argv[3]) : 5;
  int depth = argc > 4 ? atoi(argv[4]) : 1;
  if (depth < 1 || depth > 1024 || secs <= 0)
    return 2;
  grpc_init();
  char target[512];
  snprintf(target, sizeof(target), "unix:%s", argv[1]);
  grpc_channel_credentials *cr = grpc_insecure_credentials_create();
  ch = grpc_channel_create(target, cr, NULL);
  grpc_channel_credentials_release(cr);
  cq = grpc_completion_queue_create_for_next(NULL);
  char path[256];
  snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/%s", argv[2]);
  method = grpc_channel_register_call(ch, path, NULL, NULL);
  grpc_slice empty = grpc_empty_slice();
  empty_req = grpc_raw_byte_buffer_create(&empty, 1);

  struct slot *slots = calloc((size_t)depth, sizeof(*slots));
  float *lat = malloc(sizeof(float) * MAX_SAMPLES);
  long n = 0, errors = 0;
  /* warm up: one call to connect */
  start(&slots[0]);
  grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (slots[0].status != GRPC_STATUS_OK) {
    char *d = grpc_slice_to_c_string(slots[0].details);
    fprintf(stderr, "crisp-bench: %s failed: status %d %s\n", path, slots[0].status, d);
    return 1;
  }
  finish(&slots[0]);
  double t0 = now(), end = t0 + secs;
  for (int i = 0; i < depth; i++)
    start(&slots[i]);
  int inflight = depth;
  while (inflight > 0) {
    ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    struct slot *s = ev.tag;
    double t = now();
    if (!ev.success || s->status != GRPC_STATUS_OK)
      errors++;
    if (n < MAX_SAMPLES)
      lat[n] = (float)((t - s->started) * 1e6);
    n++;
    finish(s);
    if (t < end)
      start(s);
    else
      inflight--;
  }
  double el = now() - t0;
  long m = n < MAX_SAMPLES ? n : MAX_SAMPLES;
  qsort(lat, (size_t)m, sizeof(float), cmp);
  printf("calls=%ld seconds=%.2f rate=%.0f p50_us=%.0f p99_us=%.0f errors=%ld\n", n, el, n / el,
         m ? lat[m / 2] : 0.0, m ? lat[(long)(m * 0.99)] : 0.0, errors);
  grpc_byte_buffer_destroy(empty_req);
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(cq);
  free(slots);
  free(lat);
  grpc_shutdown();
  return errors ? 1 : 0;
}
