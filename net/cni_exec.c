/* cni_exec.c - one CNI plugin call: environment, stdin, stdout, exit, timeout.
 *
 * posix_spawn (vfork-like, safe in crispd's threads): the child gets its own process
 * group (a timeout kills the plugin and whatever it started, e.g. iptables or the IPAM
 * plugin), an empty signal mask and default dispositions (crispd blocks and ignores
 * signals plugins must not inherit), and no descriptor but 0-2. Its stdin is a memfd
 * holding the config: nothing to pump, and a plugin that exits without reading it
 * cannot SIGPIPE crispd. A pidfd tells when it exits, so a grandchild keeping the
 * stdout pipe open cannot stall the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/xalloc.h"
#include "net/cni_int.h"

extern char **environ;

#define OUT_MAX (1u << 20)            /* a result is a few hundred bytes */
#define ERRTEXT_MAX (64u << 10)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct run {
  pid_t pid;
  int pidfd;                          /* -1: no pidfd, waitpid is polled instead */
  int fd[2];                          /* stdout, stderr read ends; -1 once at EOF */
  struct buf data[2];
  bool exited;
  int status;
};

enum run_end { RUN_DONE, RUN_TIMEOUT, RUN_OVERFLOW };

static void strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

/* crispd's environment minus any CNI_* of its own, plus the call's. */
static char **build_env(const struct cni_call *c)
{
  size_t n = 0, k = 0;
  while (environ && environ[n])
    n++;
  char **env = xcalloc(n + 8, sizeof(*env));
  bool has_path = false;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(environ[i], "CNI_", 4) == 0)
      continue;
    has_path |= strncmp(environ[i], "PATH=", 5) == 0;
    env[k++] = xstrdup(environ[i]);
  }
  if (!has_path)
    env[k++] = xstrdup("PATH=" DEFAULT_PATH);
  env[k++] = xasprintf("CNI_COMMAND=%s", c->command);
  env[k++] = xasprintf("CNI_CONTAINERID=%s", c->container_id);
  env[k++] = xasprintf("CNI_NETNS=%s", c->netns ? c->netns : "");
  env[k++] = xasprintf("CNI_IFNAME=%s", c->ifname);
  env[k++] = xasprintf("CNI_ARGS=%s", c->args ? c->args : "");
  env[k++] = xasprintf("CNI_PATH=%s", c->cni_path);
  return env;
}

static int stdin_memfd(const char *text, err_t **e)
{
  cleanup_close int fd = memfd_create("cni-stdin", MFD_CLOEXEC);
  if (fd < 0)
    return err_sys(e, errno, "memfd_create");
  if (fd_write_all(fd, text, strlen(text), e) < 0)
    return -1;
  if (lseek(fd, 0, SEEK_SET) < 0)
    return err_sys(e, errno, "lseek");
  return steal_fd(&fd);
}

static int spawn(const char *path, char **env, int in, const int out[2], const int errp[2], pid_t *pid,
                 err_t **e)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  char *argv[] = {(char *)path, NULL};
  int rc = posix_spawn(pid, path, &fa, &at, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0)
    return err_set(e, ERR_UNAVAILABLE, rc, "exec %s: %s", path, strerror(rc));
  return 0;
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what fd i has now; closes it at EOF. -1 once stdout passes its limit. */
static int drain(struct run *r, int i)
{
  size_t max = i == 0 ? OUT_MAX : ERRTEXT_MAX;
  for (;;) {
    char chunk[4096];
    ssize_t n = read(r->fd[i], chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return 0;
    if (n <= 0) {
      close(r->fd[i]);
      r->fd[i] = -1;
      return 0;
    }
    if (r->data[i].len + (size_t)n > max) {
      if (i == 0)
        return -1;
      buf_reset(&r->data[i]);         /* a chatty stderr: only its end is reported */
    }
    buf_append(&r->data[i], chunk, (size_t)n);
  }
}

static void reap(struct run *r, int flags)
{
  if (!r->exited && waitpid(r->pid, &r->status, flags) == r->pid)
    r->exited = true;
}

/* Once the plugin is gone, what is left in the pipes is all there is: a grandchild
 * holding them open must not keep the call waiting. */
static enum run_end after_exit(struct run *r)
{
  for (int i = 0; i < 2; i++) {
    if (r->fd[i] >= 0 && drain(r, i) < 0)
      return RUN_OVERFLOW;
    if (r->fd[i] >= 0) {
      close(r->fd[i]);
      r->fd[i] = -1;
    }
  }
  return RUN_DONE;
}

static enum run_end run_wait(struct run *r, int timeout_s)
{
  long long deadline = now_ms() + (long long)timeout_s * 1000;
  for (;;) {
    if (r->pidfd < 0)
      reap(r, WNOHANG);
    if (r->exited)
      return after_exit(r);
    long long left = deadline - now_ms();
    if (left <= 0)
      return RUN_TIMEOUT;
    struct pollfd p[3];
    int np = 0, idx[3];
    for (int i = 0; i < 2; i++)
      if (r->fd[i] >= 0) {
        idx[np] = i;
        p[np++] = (struct pollfd){.fd = r->fd[i], .events = POLLIN};
      }
    if (r->pidfd >= 0) {
      idx[np] = 2;
      p[np++] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
    }
    int wait_ms = r->pidfd < 0 && left > 20 ? 20 : (int)(left > 60000 ? 60000 : left);
    if (poll(p, (nfds_t)np, wait_ms) < 0 && errno != EINTR)
      return RUN_TIMEOUT;
    for (int k = 0; k < np; k++) {
      if (!p[k].revents)
        continue;
      if (idx[k] == 2)
        reap(r, 0);
      else if (drain(r, idx[k]) < 0)
        return RUN_OVERFLOW;
    }
  }
}

static void run_kill(struct run *r)
{
  if (r->exited)
    return;
  kill(-r->pid, SIGKILL);
  kill(r->pid, SIGKILL);
  reap(r, 0);
}

static void run_close(struct run *r)
{
  for (int i = 0; i < 2; i++) {
    if (r->fd[i] >= 0)
      close(r->fd[i]);
    buf_free(&r->data[i]);
  }
  if (r->pidfd >= 0)
    close(r->pidfd);
}

static int run_start(struct run *r, const char *path, char **env, const char *stdin_text, err_t **e)
{
  cleanup_close int in = stdin_memfd(stdin_text, e);
  if (in < 0)
    return -1;
  int out[2] = {-1, -1}, errp[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
    int saved = errno;
    for (int i = 0; i < 2; i++)
      if (out[i] >= 0)
        close(out[i]);
    return err_sys(e, saved, "pipe");
  }
  int rc = spawn(path, env, in, out, errp, &r->pid, e);
  close(out[1]);
  close(errp[1]);
  r->fd[0] = out[0];
  r->fd[1] = errp[0];
  if (rc < 0)
    return -1;
  for (int i = 0; i < 2; i++)
    fcntl(r->fd[i], F_SETFL, O_NONBLOCK);
  r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
  return 0;
}

static void describe_exit(int status, char *out, size_t len)
{
  if (WIFSIGNALED(status))
    snprintf(out, len, "killed by signal %d", WTERMSIG(status));
  else
    snprintf(out, len, "exit status %d", WEXITSTATUS(status));
}

int cni_exec(const struct cni_call *c, const struct cni_plugin *plugin, const char *stdin_text,
             char **out, err_t **e)
{
  struct run r = {.pid = -1, .pidfd = -1, .fd = {-1, -1}};
  char **env = build_env(c);
  int rc = run_start(&r, plugin->path, env, stdin_text, e);
  strv_free(env);
  if (rc < 0) {
    run_close(&r);
    return err_wrap(e, "CNI plugin %s (%s)", plugin->type, c->command);
  }
  enum run_end end = run_wait(&r, c->timeout_s);
  run_kill(&r);
  if (end == RUN_TIMEOUT)
    rc = err_set(e, ERR_UNAVAILABLE, 0, "CNI plugin %s (%s) killed after %d s without finishing (timeout)",
                 plugin->type, c->command, c->timeout_s);
  else if (end == RUN_OVERFLOW)
    rc = err_set(e, ERR_UNAVAILABLE, 0, "CNI plugin %s (%s) wrote more than %u bytes; killed",
                 plugin->type, c->command, OUT_MAX);
  else if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)
    *out = buf_steal(&r.data[0]);
  else {
    char desc[64];
    describe_exit(r.status, desc, sizeof(desc));
    rc = cni_plugin_error(plugin, c->command, buf_str(&r.data[0]), buf_str(&r.data[1]), desc, e);
  }
  run_close(&r);
  return rc;
}

/* --- a plugin's error ------------------------------------------------------------------ */

/* The CNI codes that say the config or the call is wrong, not the node. */
static enum err_code code_of(long long code)
{
  switch (code) {
  case 1: case 2: case 4: case 6: case 7:
    return ERR_INVALID;
  default:
    return ERR_UNAVAILABLE;
  }
}

/* The last non-empty line of a plugin's stderr, at most 512 bytes of it. */
static char *stderr_tail(const char *s)
{
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
    n--;
  size_t start = n;
  while (start && s[start - 1] != '\n')
    start--;
  if (n - start > 512)
    start = n - 512;
  return xstrndup(s + start, n - start);
}

int cni_plugin_error(const struct cni_plugin *plugin, const char *command, const char *stdout_text,
                     const char *stderr_text, const char *exit_desc, err_t **e)
{
  cleanup_json json_t *j = NULL;
  err_t *ignored = NULL;
  if (stdout_text && *stdout_text && json_parse(stdout_text, &j, &ignored) < 0)
    err_free(&ignored);
  const char *msg = json_str(json_get(j, "msg"));
  const char *details = json_str(json_get(j, "details"));
  long long code = 0;
  bool has_code = json_int(json_get(j, "code"), &code) == 0;
  if (msg || has_code)
    return err_set(e, code_of(code), 0, "CNI plugin %s (%s) failed (code %lld): %s%s%s", plugin->type,
                   command, code, msg ? msg : exit_desc, details && *details ? ": " : "",
                   details ? details : "");
  cleanup_free char *tail = stderr_tail(stderr_text ? stderr_text : "");
  return err_set(e, ERR_UNAVAILABLE, 0, "CNI plugin %s (%s) failed: %s%s%s", plugin->type, command,
                 exit_desc, *tail ? ": " : "", tail);
}
