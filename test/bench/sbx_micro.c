/* sbx_micro - syscall micro-benchmarks for the sandbox bench (test/bench/sandbox.sh).
 * Built static, so it runs the same natively, under crisp-sandbox and under runsc.
 *
 *   sbx_micro TEST [N]    prints "TEST <ns per operation>"
 *   TEST: getppid open stat forkexec pipe mmap futex uname
 * Each test runs N operations (a default per test) and reports the best of 3 rounds,
 * so one scheduler hiccup does not decide a ratio. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static const char *self_path;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
  perror(what);
  exit(1);
}

static void t_getppid(long n)
{
  for (long i = 0; i < n; i++)
    syscall(SYS_getppid);
}

static void t_open(long n)
{
  struct stat st;
  for (long i = 0; i < n; i++) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
      die("open/fstat");
    close(fd);
  }
}

static void t_stat(long n)
{
  struct stat st;
  for (long i = 0; i < n; i++)
    if (stat(self_path, &st) < 0)
      die("stat");
}

static void t_forkexec(long n)
{
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0)
      die("fork");
    if (pid == 0) {
      char *argv[] = {(char *)self_path, "noop", NULL};
      execv(self_path, argv);
      _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      die("child");
  }
}

#define PIPE_CHUNK 65536

static void t_pipe(long n)
{
  int p[2];
  static char buf[PIPE_CHUNK];
  if (pipe(p) < 0)
    die("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    for (long i = 0; i < n; i++)
      for (size_t off = 0; off < PIPE_CHUNK;) {
        ssize_t w = write(p[1], buf + off, PIPE_CHUNK - off);
        if (w <= 0)
          _exit(1);
        off += (size_t)w;
      }
    _exit(0);
  }
  close(p[1]);
  while (read(p[0], buf, sizeof(buf)) > 0) {
  }
  close(p[0]);
  waitpid(pid, NULL, 0);
}

static void t_mmap(long n)
{
  for (long i = 0; i < n; i++) {
    char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      die("mmap");
    m[0] = 1;
    munmap(m, 65536);
  }
}

/* two threads hand a token back and forth through one futex word: every hand-over is a
 * FUTEX_WAKE and, most of the time, a FUTEX_WAIT */
static _Atomic int token;
static long futex_rounds;

static void futex_pass(int mine, int theirs)
{
  for (long i = 0; i < futex_rounds; i++) {
    while (atomic_load(&token) != mine)
      syscall(SYS_futex, &token, FUTEX_WAIT_PRIVATE, theirs, NULL, NULL, 0);
    atomic_store(&token, theirs);
    syscall(SYS_futex, &token, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
}

static void *futex_peer(void *arg)
{
  futex_pass(1, 0);
  return arg;
}

static void t_futex(long n)
{
  pthread_t th;
  futex_rounds = n;
  atomic_store(&token, 0);
  if (pthread_create(&th, NULL, futex_peer, NULL) != 0)
    die("pthread_create");
  futex_pass(0, 1);
  pthread_join(th, NULL);
}

static void t_uname(long n)
{
  struct utsname u;
  for (long i = 0; i < n; i++)
    if (uname(&u) < 0)
      die("uname");
}

static const struct {
  const char *name;
  void (*fn)(long);
  long n;
} tests[] = {
  {"getppid", t_getppid, 2000000}, {"open", t_open, 200000}, {"stat", t_stat, 500000},
  {"forkexec", t_forkexec, 500}, {"pipe", t_pipe, 8192}, {"mmap", t_mmap, 200000},
  {"futex", t_futex, 50000}, {"uname", t_uname, 50000},
};

int main(int argc, char **argv)
{
  self_path = "/proc/self/exe";
  if (argc >= 2 && strcmp(argv[1], "noop") == 0)
    return 0;
  static char exe[4096];
  ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (l > 0) {
    exe[l] = '\0';
    self_path = exe;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: sbx_micro TEST [N]\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
    if (strcmp(argv[1], tests[i].name) != 0)
      continue;
    long n = argc > 2 ? atol(argv[2]) : tests[i].n;
    double best = 0;
    for (int round = 0; round < 3; round++) {
      double t0 = now();
      tests[i].fn(n);
      double per = (now() - t0) / (double)n;
      if (round == 0 || per < best)
        best = per;
    }
    printf("%s %.1f\n", tests[i].name, best);
    return 0;
  }
  fprintf(stderr, "sbx_micro: unknown test %s\n", argv[1]);
  return 2;
}
