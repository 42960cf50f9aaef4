/* cgroup_devices.c - the device allowlist on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE
 * program attached to the container's cgroup (v2 has no devices.allow file).
 *
 * Without it a container holding CAP_MKNOD (in the default set) could make a node for
 * the host's disk and read it. The program is generated from the same "c 1:3 rwm" rules
 * the v1 controller takes: each rule is a block of tests that jumps to the next block
 * on a mismatch and returns 1 (allow) at its end; after the last block, 0 (deny).
 * Programs attached above (systemd's for a slice) still apply: BPF_F_ALLOW_MULTI runs
 * them all and every one must allow. */
#include "runtimes/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"

#define ANY UINT32_MAX

struct dev_rule {
  uint32_t type;     /* BPF_DEVCG_DEV_CHAR / _BLOCK, 0 = both */
  uint32_t major, minor;   /* ANY = wildcard */
  uint32_t access;   /* BPF_DEVCG_ACC_* bits */
};

static int parse_num(const char *s, uint32_t *out)
{
  char *end;
  if (strcmp(s, "*") == 0) {
    *out = ANY;
    return 0;
  }
  unsigned long v = strtoul(s, &end, 10);
  if (end == s || *end || v >= ANY)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

/* "c 1:3 rwm", "b *:* m", "a" */
static int parse_rule(const char *text, struct dev_rule *r, err_t **e)
{
  char type = 0, nums[64] = "", acc[8] = "";
  memset(r, 0, sizeof(*r));
  r->major = r->minor = ANY;
  if (sscanf(text, "%c %63s %7s", &type, nums, acc) < 1)
    return err_set(e, ERR_INVALID, 0, "device rule \"%s\"", text);
  if (type == 'a') {
    r->access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    return 0;
  }
  char *colon = strchr(nums, ':');
  if ((type != 'c' && type != 'b') || !colon)
    return err_set(e, ERR_INVALID, 0, "device rule \"%s\"", text);
  *colon = '\0';
  r->type = type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
  if (parse_num(nums, &r->major) < 0 || parse_num(colon + 1, &r->minor) < 0)
    return err_set(e, ERR_INVALID, 0, "device rule \"%s\": bad numbers", text);
  for (const char *p = acc; *p; p++)
    r->access |= *p == 'r' ? BPF_DEVCG_ACC_READ : *p == 'w' ? BPF_DEVCG_ACC_WRITE
               : *p == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
  return 0;
}

/* ---- code generation ---- */

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
  return i;
}

struct prog {
  struct bpf_insn *v;
  size_t n;
};

static void emit(struct prog *p, struct bpf_insn i)
{
  p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
  p->v[p->n++] = i;
}

/* Registers after the prologue: r2 type, r3 access, r4 major, r5 minor. */
static void prologue(struct prog *p)
{
  emit(p, insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0));   /* access_type */
  emit(p, insn(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff));
  emit(p, insn(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0));
  emit(p, insn(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16));
  emit(p, insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0));   /* major */
  emit(p, insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0));   /* minor */
}

static void rule_block(struct prog *p, const struct dev_rule *r)
{
  struct bpf_insn b[8];
  int n = 0;
  const uint32_t all = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  if (r->type)
    b[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0, (int32_t)r->type);
  if (r->access != all) {   /* asking for anything outside the rule's access: next rule */
    b[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 1, 3, 0, 0);
    b[n++] = insn(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, (int32_t)(~r->access & all));
    b[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 1, 0, 0, 0);
  }
  if (r->major != ANY)
    b[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int32_t)r->major);
  if (r->minor != ANY)
    b[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int32_t)r->minor);
  b[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
  b[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (int i = 0; i < n; i++) {
    if (b[i].code == (BPF_JMP | BPF_JNE | BPF_K))   /* (BPF_OP alone: AND has JNE's value) */
      b[i].off = (int16_t)(n - i - 1);   /* to the first instruction after the block */
    emit(p, b[i]);
  }
}

static int bpf_call(int cmd, union bpf_attr *attr)
{
  return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int load(const struct prog *p, err_t **e)
{
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uint64_t)(uintptr_t)p->v;
  a.insn_cnt = (uint32_t)p->n;
  a.license = (uint64_t)(uintptr_t)"Apache";
  int fd = bpf_call(BPF_PROG_LOAD, &a);
  if (fd < 0 && errno == EINVAL) {   /* ask the verifier why */
    char log[4096] = "";
    int saved = errno;
    a.log_level = 1;
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = sizeof(log);
    fd = bpf_call(BPF_PROG_LOAD, &a);
    if (fd < 0)
      return err_set(e, ERR_INTERNAL, saved, "load the device filter (BPF): %s", log);
  }
  if (fd < 0)
    return err_sys(e, errno, "load the device filter (BPF)");
  return fd;
}

int cg2_devices(const char *dir, const char *const *rules, size_t n, err_t **e)
{
  struct prog p = {NULL, 0};
  prologue(&p);
  for (size_t i = 0; i < n; i++) {
    struct dev_rule r;
    if (parse_rule(rules[i], &r, e) < 0) {
      free(p.v);
      return -1;
    }
    rule_block(&p, &r);
  }
  emit(&p, insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0));
  emit(&p, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  cleanup_close int prog = load(&p, e);
  free(p.v);
  if (prog < 0)
    return -1;
  cleanup_close int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0)
    return err_sys(e, errno, "open %s", dir);
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.target_fd = (uint32_t)cg;
  a.attach_bpf_fd = (uint32_t)prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf_call(BPF_PROG_ATTACH, &a) < 0)
    return err_sys(e, errno, "attach the device filter to %s", dir);
  return 0;
}
