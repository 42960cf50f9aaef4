/* escape - tries every syscall the sandbox refuses and a set of known container escapes;
 * prints one line per attempt ("name: refused EPERM" / "name: ALLOWED") and exits with
 * the number of attempts that succeeded. Built static, so it runs anywhere: under
 * crisp-sandbox, in a pod of either RuntimeClass, or natively to show the difference.
 *
 * Each attempt runs in its own forked child, so one that works (unshare, chroot,
 * personality, iopl) changes nothing for the next. Every attempt is chosen to be harmless
 * if it does succeed as root on a host: no-op arguments (chroot "/", CAD_ON, the current
 * time, a help sysrq), invalid sizes where the valid call would act, and whatever it
 * creates (a mount, a device node, a map) is undone or dies with the child. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];
static pid_t sibling;
static volatile int sibling_word = 1;

static long sc(long nr, long a, long b, long c, long d, long e)
{
  return syscall(nr, a, b, c, d, e);
}

#define A(x) ((long)(uintptr_t)(x))

static long try_mount_proc(void)
{
  char d[96];
  snprintf(d, sizeof(d), "%s/proc", tmpdir);
  mkdir(d, 0700);
  long r = sc(SYS_mount, A("proc"), A(d), A("proc"), 0, 0);
  if (r == 0)
    umount2(d, MNT_DETACH);
  return r;
}

static long try_mount_sysfs(void)
{
  char d[96];
  snprintf(d, sizeof(d), "%s/sys", tmpdir);
  mkdir(d, 0700);
  long r = sc(SYS_mount, A("sysfs"), A(d), A("sysfs"), 0, 0);
  if (r == 0)
    umount2(d, MNT_DETACH);
  return r;
}

static long try_bind_root(void)
{
  char d[96];
  snprintf(d, sizeof(d), "%s/bind", tmpdir);
  mkdir(d, 0700);
  long r = sc(SYS_mount, A("/"), A(d), 0, MS_BIND, 0);
  if (r == 0)
    umount2(d, MNT_DETACH);
  return r;
}

static long try_umount(void) { return sc(SYS_umount2, A("/nonexistent-sbx"), 0, 0, 0, 0); }
static long try_pivot_root(void) { return sc(SYS_pivot_root, A("/nonexistent-sbx"), A("/nonexistent-sbx"), 0, 0, 0); }
static long try_chroot(void) { return sc(SYS_chroot, A("/"), 0, 0, 0, 0); }
static long try_fsopen(void) { return sc(SYS_fsopen, A("tmpfs"), 0, 0, 0, 0); }
static long try_fsconfig(void) { return sc(SYS_fsconfig, -1, 0, 0, 0, 0); }
static long try_fsmount(void) { return sc(SYS_fsmount, -1, 0, 0, 0, 0); }
static long try_fspick(void) { return sc(SYS_fspick, AT_FDCWD, A("/"), 0, 0, 0); }
static long try_open_tree(void) { return sc(SYS_open_tree, AT_FDCWD, A("/proc"), 1 /* CLONE */, 0, 0); }
static long try_move_mount(void) { return sc(SYS_move_mount, -1, A(""), -1, A(""), 0); }
static long try_mount_setattr(void) { return sc(SYS_mount_setattr, -1, A(""), 0, 0, 0); }
static long try_unshare_user(void) { return sc(SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0); }
static long try_unshare_mnt(void) { return sc(SYS_unshare, CLONE_NEWNS, 0, 0, 0, 0); }
static long try_unshare_net(void) { return sc(SYS_unshare, CLONE_NEWNET, 0, 0, 0, 0); }

static long try_clone_user(void)
{
  long r = sc(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (r == 0)
    _exit(0);
  if (r > 0)
    waitpid((pid_t)r, NULL, 0);
  return r;
}

static long try_clone3_user(void)
{
  uint64_t args[11] = {CLONE_NEWUSER, 0, 0, 0, SIGCHLD};
  long r = sc(SYS_clone3, A(args), 88, 0, 0, 0);
  if (r == 0)
    _exit(0);
  if (r > 0)
    waitpid((pid_t)r, NULL, 0);
  return r;
}

static long try_setns(void)
{
  int fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  return sc(SYS_setns, fd, 0, 0, 0, 0);
}

static long try_ptrace_sibling(void)
{
  long r = sc(SYS_ptrace, PTRACE_ATTACH, sibling, 0, 0, 0);
  if (r == 0) {
    waitpid(sibling, NULL, __WALL);
    ptrace(PTRACE_DETACH, sibling, 0, 0);
  }
  return r;
}

static long try_ptrace_traceme(void) { return sc(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0, 0); }

static long try_vm_writev(void)
{
  int v = 1;
  struct iovec l = {&v, sizeof(v)}, r = {(void *)&sibling_word, sizeof(v)};
  return sc(SYS_process_vm_writev, sibling, A(&l), 1, A(&r), 1);
}

static long try_vm_readv(void)
{
  int v = 0;
  struct iovec l = {&v, sizeof(v)}, r = {(void *)&sibling_word, sizeof(v)};
  return sc(SYS_process_vm_readv, sibling, A(&l), 1, A(&r), 1);
}

static long try_pidfd_getfd(void)
{
  long pfd = sc(SYS_pidfd_open, getppid(), 0, 0, 0, 0);
  if (pfd < 0)
    return pfd;
  return sc(SYS_pidfd_getfd, pfd, 0, 0, 0, 0);
}

static long try_kcmp(void) { return sc(SYS_kcmp, getpid(), sibling, 0 /* KCMP_FILE */, 0, 0); }

static long try_init_module(void) { return sc(SYS_init_module, 0, 0, A(""), 0, 0); }
static long try_finit_module(void) { return sc(SYS_finit_module, -1, A(""), 0, 0, 0); }
static long try_delete_module(void) { return sc(SYS_delete_module, A("sbx_no_such_module"), O_NONBLOCK, 0, 0, 0); }
/* 17 segments is over KEXEC_SEGMENT_MAX: even a privileged caller gets EINVAL */
static long try_kexec_load(void) { return sc(SYS_kexec_load, 0, 17, 0, 0, 0); }
static long try_kexec_file_load(void) { return sc(SYS_kexec_file_load, -1, -1, 0, 0, 0); }

static long try_bpf(void)
{
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 1;
  return sc(SYS_bpf, BPF_MAP_CREATE, A(&a), sizeof(a), 0, 0);
}

static long try_perf(void)
{
  struct perf_event_attr a;
  memset(&a, 0, sizeof(a));
  a.type = PERF_TYPE_SOFTWARE;
  a.size = sizeof(a);
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  a.disabled = 1;
  return sc(SYS_perf_event_open, A(&a), 0, -1, -1, 0);
}

static long try_keyctl(void) { return sc(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0, 0); }
static long try_add_key(void) { return sc(SYS_add_key, A("user"), A("sbx-escape"), A("x"), 1, KEY_SPEC_PROCESS_KEYRING); }
static long try_request_key(void) { return sc(SYS_request_key, A("user"), A("sbx-none"), 0, KEY_SPEC_PROCESS_KEYRING, 0); }

static long try_reboot(void)
{
  return sc(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_ON, 0, 0);
}

static long try_swapon(void) { return sc(SYS_swapon, A("/nonexistent-sbx"), 0, 0, 0, 0); }
static long try_swapoff(void) { return sc(SYS_swapoff, A("/nonexistent-sbx"), 0, 0, 0, 0); }
static long try_acct(void) { return sc(SYS_acct, 0, 0, 0, 0, 0); }

static long try_clock_settime(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return sc(SYS_clock_settime, CLOCK_REALTIME, A(&ts), 0, 0, 0);
}

static long try_settimeofday(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct timeval tv = {ts.tv_sec, ts.tv_nsec / 1000};
  return sc(SYS_settimeofday, A(&tv), 0, 0, 0, 0);
}

/* ADJ_TICK 10000 is the default tick at USER_HZ 100: privileged, and a no-op here */
static long try_adjtimex(void)
{
  struct timex t;
  memset(&t, 0, sizeof(t));
  t.modes = ADJ_TICK;
  t.tick = 10000;
  return sc(SYS_adjtimex, A(&t), 0, 0, 0, 0);
}

static long try_clock_adjtime(void)
{
  struct timex t;
  memset(&t, 0, sizeof(t));
  t.modes = ADJ_TICK;
  t.tick = 10000;
  return sc(SYS_clock_adjtime, CLOCK_REALTIME, A(&t), 0, 0, 0);
}

static long try_iopl(void) { return sc(SYS_iopl, 3, 0, 0, 0, 0); }
static long try_ioperm(void) { return sc(SYS_ioperm, 0x80, 1, 1, 0, 0); }

/* "shocker": a handle for / opened without a path walk */
static long try_open_by_handle(void)
{
  struct {
    unsigned int bytes;
    int type;
    unsigned char f[128];
  } h = {128, 0, {0}};
  int mount_id;
  if (sc(SYS_name_to_handle_at, AT_FDCWD, A("/"), A(&h), A(&mount_id), 0) < 0) {
    h.bytes = 8;   /* no handle to reuse: try a forged one */
    h.type = 1;
  }
  int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return sc(SYS_open_by_handle_at, root, A(&h), O_RDONLY, 0, 0);
}

static long try_userfaultfd(void) { return sc(SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0); }

static long try_io_uring(void)
{
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  return sc(SYS_io_uring_setup, 1, A(&p), 0, 0, 0);
}

static long try_personality(void) { return sc(SYS_personality, ADDR_NO_RANDOMIZE, 0, 0, 0, 0); }
static long try_personality_rie(void) { return sc(SYS_personality, READ_IMPLIES_EXEC, 0, 0, 0, 0); }

static long try_mknod_chr(void)
{
  char p[96];
  snprintf(p, sizeof(p), "%s/mem", tmpdir);
  long r = sc(SYS_mknod, A(p), S_IFCHR | 0600, (long)makedev(1, 1), 0, 0);
  int saved = errno;
  unlink(p);
  errno = saved;
  return r;
}

static long try_mknodat_blk(void)
{
  char p[96];
  snprintf(p, sizeof(p), "%s/sda", tmpdir);
  long r = sc(SYS_mknodat, AT_FDCWD, A(p), S_IFBLK | 0600, (long)makedev(8, 0), 0);
  int saved = errno;
  unlink(p);
  errno = saved;
  return r;
}

/* 'h' only prints the sysrq help: harmless if the write gets through */
static long try_sysrq(void)
{
  int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  return write(fd, "h", 1) == 1 ? 0 : -1;
}

/* the host's kernel log: syslog must answer with the sandbox's own, or refuse */
static long try_host_dmesg(void)
{
  static char buf[1 << 16];
  long n = sc(SYS_syslog, 3 /* READ_ALL */, A(buf), sizeof(buf) - 1, 0, 0);
  if (n < 0)
    return n;
  buf[n] = '\0';
  if (strstr(buf, "crisp sandbox")) {
    errno = EPERM;   /* the sandbox's log: nothing of the host's was read */
    return -1;
  }
  return 0;
}

static long try_host_kmsg(void)
{
  char b[64];
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return -1;
  long n = read(fd, b, sizeof(b));
  if (n <= 0 && errno != EINVAL) {   /* EINVAL: the buffer was too small: a record exists */
    errno = n == 0 ? ENODATA : errno;
    return -1;
  }
  return 0;
}

static long try_syslog_console(void) { return sc(SYS_syslog, 7 /* CONSOLE_ON */, 0, 0, 0, 0); }

/* Another syscall ABI: numbers a filter written for x86_64 would misread (i386 via int
 * 0x80, x32 with bit 30 set). The sandbox's filter kills the process: "refused (killed)". */
static long try_int80(void)
{
  long r = 20;   /* i386 getpid */
  __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
  if (r < 0) {
    errno = (int)-r;
    return -1;
  }
  return r;
}

static long try_x32(void) { return syscall(0x40000000L | SYS_getppid); }

static const struct {
  const char *name;
  long (*fn)(void);
} attempts[] = {
  {"mount_proc", try_mount_proc}, {"mount_sysfs", try_mount_sysfs},
  {"mount_bind_root", try_bind_root}, {"umount2", try_umount}, {"pivot_root", try_pivot_root},
  {"chroot", try_chroot}, {"fsopen", try_fsopen}, {"fsconfig", try_fsconfig},
  {"fsmount", try_fsmount}, {"fspick", try_fspick}, {"open_tree", try_open_tree},
  {"move_mount", try_move_mount}, {"mount_setattr", try_mount_setattr},
  {"unshare_user", try_unshare_user}, {"unshare_mnt", try_unshare_mnt},
  {"unshare_net", try_unshare_net}, {"clone_newuser", try_clone_user},
  {"clone3_newuser", try_clone3_user}, {"setns_mnt", try_setns},
  {"ptrace_sibling", try_ptrace_sibling}, {"ptrace_traceme", try_ptrace_traceme},
  {"process_vm_writev", try_vm_writev}, {"process_vm_readv", try_vm_readv},
  {"pidfd_getfd", try_pidfd_getfd}, {"kcmp", try_kcmp}, {"init_module", try_init_module},
  {"finit_module", try_finit_module}, {"delete_module", try_delete_module},
  {"kexec_load", try_kexec_load}, {"kexec_file_load", try_kexec_file_load}, {"bpf", try_bpf},
  {"perf_event_open", try_perf}, {"keyctl", try_keyctl}, {"add_key", try_add_key},
  {"request_key", try_request_key}, {"reboot", try_reboot}, {"swapon", try_swapon},
  {"swapoff", try_swapoff}, {"acct", try_acct}, {"clock_settime", try_clock_settime},
  {"settimeofday", try_settimeofday}, {"adjtimex", try_adjtimex},
  {"clock_adjtime", try_clock_adjtime}, {"iopl", try_iopl}, {"ioperm", try_ioperm},
  {"open_by_handle_at", try_open_by_handle}, {"userfaultfd", try_userfaultfd},
  {"io_uring_setup", try_io_uring}, {"personality_no_aslr", try_personality},
  {"personality_rie", try_personality_rie}, {"mknod_chr", try_mknod_chr},
  {"mknodat_blk", try_mknodat_blk}, {"sysrq_trigger", try_sysrq},
  {"host_dmesg", try_host_dmesg}, {"host_dev_kmsg", try_host_kmsg},
  {"syslog_console", try_syslog_console}, {"i386_int80", try_int80}, {"x32_abi", try_x32},
};

/* exit code of the attempt's child: 0 = it worked, else the errno (255 if unknown) */
static int run_one(long (*fn)(void))
{
  pid_t pid = fork();
  if (pid < 0)
    return errno;
  if (pid == 0) {
    errno = 0;
    long r = fn();
    _exit(r >= 0 ? 0 : (errno > 0 && errno < 255 ? errno : 255));
  }
  int st;
  if (waitpid(pid, &st, 0) != pid)
    return 255;
  if (WIFSIGNALED(st))
    return 254;   /* killed: certainly not a success */
  return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
  const char *only = argc > 1 ? argv[1] : NULL;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/sbx-escape-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    snprintf(tmpdir, sizeof(tmpdir), ".");
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  sibling = fork();
  if (sibling == 0) {
    for (;;)
      pause();
  }
  int allowed = 0;
  for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
    if (only && strcmp(only, attempts[i].name) != 0)
      continue;
    int r = run_one(attempts[i].fn);
    if (r == 0) {
      printf("%s: ALLOWED\n", attempts[i].name);
      allowed++;
    } else if (r == 254) {
      printf("%s: refused (killed)\n", attempts[i].name);
    } else {
      const char *n = strerrorname_np(r);
      printf("%s: refused %s\n", attempts[i].name, n ? n : "?");
    }
  }
  if (sibling > 0) {
    kill(sibling, SIGKILL);
    waitpid(sibling, NULL, 0);
  }
  if (strcmp(tmpdir, ".") != 0) {
    static const char *const subs[] = {"proc", "sys", "bind"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
      char d[96];
      snprintf(d, sizeof(d), "%s/%s", tmpdir, subs[i]);
      rmdir(d);
    }
    rmdir(tmpdir);
  }
  return allowed;
}
