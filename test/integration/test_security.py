"""Security contexts, observed from inside real containers (ExecSync): users and groups,
read-only rootfs, capabilities, privileged, no_new_privs, seccomp, masked and read-only
paths, pid and network isolation between pods and from the host, and bind mounts.
Each escape is tried and must fail."""
import os
import shutil
import stat
import subprocess

import grpc
import pytest

from conftest import api_pb2
from pod_helpers import build_static, i64, rpc_error

CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
        "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
        "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
        "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
        "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP"]
DEFAULT_CAPS = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                "AUDIT_WRITE"}


def bits(names):
    return sum(1 << CAPS.index(n) for n in names)


def status_field(node, ctr, field):
    rc, out, err = node.sh(ctr, f"grep '^{field}:' /proc/self/status")
    assert rc == 0, err
    return out.split(":", 1)[1].strip()


def caps(node, ctr, which="CapEff"):
    return int(status_field(node, ctr, which), 16)


def host_all_caps():
    """Every capability this host's processes can have (a VM may withhold some)."""
    with open("/proc/self/status") as f:
        return int([l for l in f if l.startswith("CapBnd:")][0].split()[1], 16)


# /proc/kcore only exists with CONFIG_PROC_KCORE; /proc/timer_list is masked too and exists
KCORE = "/proc/kcore" if os.path.exists("/proc/kcore") else "/proc/timer_list"


def sc(**kw):
    return api_pb2.LinuxContainerSecurityContext(**kw)


def unconfined():
    return api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Unconfined)


def runtime_default():
    return api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.RuntimeDefault)


@pytest.fixture
def pod(node):
    return node.run_pod()


# ---- users and groups ---------------------------------------------------------------

def test_run_as_user_group_and_supplemental_groups(node, pod):
    ctr = node.run(pod, sc=sc(run_as_user=i64(1000), run_as_group=i64(2000),
                              supplemental_groups=[3000, 4000]))
    rc, out, _ = node.sh(ctr, "id -u; id -g; id -G")
    assert rc == 0
    uid, gid, groups = out.split("\n")[:3]
    assert (uid, gid) == ("1000", "2000")
    assert set(groups.split()) == {"2000", "3000", "4000"}
    # the container's first process runs as that user too
    rc, out, _ = node.sh(ctr, "grep -E '^(Uid|Gid|Groups):' /proc/1/status")
    assert "Uid:\t1000\t1000\t1000\t1000" in out and "Gid:\t2000\t2000\t2000\t2000" in out
    assert set(out.split("Groups:")[1].split()) == {"2000", "3000", "4000"}


def test_run_as_username_is_resolved_from_the_images_passwd(node, pod):
    ctr = node.run(pod, sc=sc(run_as_username="www-data"))
    rc, out, _ = node.sh(ctr, "id")
    assert rc == 0 and out.startswith("uid=33(www-data) gid=33(www-data)"), out
    e = rpc_error(node.create, pod, name="nobody", sc=sc(run_as_username="no-such-user"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "no-such-user" in e.details()


def test_a_non_root_user_cannot_write_roots_files(node, pod):
    ctr = node.run(pod, sc=sc(run_as_user=i64(1000)))
    rc, _, err = node.sh(ctr, "echo x >> /etc/passwd")
    assert rc != 0 and "denied" in err.lower()


# ---- file system --------------------------------------------------------------------

def test_a_readonly_rootfs_refuses_writes(node, pod):
    ctr = node.run(pod, sc=sc(readonly_rootfs=True))
    rc, _, err = node.sh(ctr, "touch /newfile")
    assert rc != 0 and "Read-only file system" in err
    rc, _, err = node.sh(ctr, "echo x > /data/keep.txt")
    assert rc != 0 and "Read-only file system" in err
    # the pod's files and /dev/shm are still there and /dev/shm still writable
    rc, out, err = node.sh(ctr, "cat /etc/hostname && echo ok > /dev/shm/x && cat /dev/shm/x")
    assert rc == 0 and out.endswith("ok\n"), err
    writable = node.run(pod, name="rw")
    assert node.sh(writable, "touch /newfile && echo x > /data/keep.txt")[0] == 0


def test_bind_mounts_readonly_refuses_and_readwrite_shows_on_the_host(node, pod, tmp_path):
    ro = tmp_path / "ro"
    rw = tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "given.txt").write_text("from the host\n")
    ctr = node.run(pod, mounts=[
        api_pb2.Mount(container_path="/ro", host_path=str(ro), readonly=True),
        api_pb2.Mount(container_path="/rw", host_path=str(rw))])
    rc, out, _ = node.sh(ctr, "cat /ro/given.txt")
    assert rc == 0 and out == "from the host\n"
    rc, _, err = node.sh(ctr, "echo x > /ro/new.txt")
    assert rc != 0 and "Read-only file system" in err
    rc, _, err = node.sh(ctr, "rm /ro/given.txt")
    assert rc != 0
    assert sorted(os.listdir(ro)) == ["given.txt"]
    rc, _, err = node.sh(ctr, "echo written inside > /rw/out.txt && mkdir /rw/sub")
    assert rc == 0, err
    assert (rw / "out.txt").read_text() == "written inside\n" and (rw / "sub").is_dir()
    # and a write on the host shows inside
    (rw / "back.txt").write_text("from the host again\n")
    assert node.sh(ctr, "cat /rw/back.txt")[1] == "from the host again\n"
    # a read-only mount cannot be turned read-write from inside (no CAP_SYS_ADMIN)
    rc, _, _ = node.sh(ctr, "mount -o remount,rw /ro")
    assert rc != 0


def test_a_missing_mount_source_fails_create_naming_it(node, pod, tmp_path):
    missing = str(tmp_path / "not-there")
    e = rpc_error(node.create, pod, mounts=[api_pb2.Mount(container_path="/x", host_path=missing)])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and missing in e.details()


# ---- capabilities, privileged, no_new_privs ----------------------------------------------

def test_default_capabilities_are_dockers_set(node, pod):
    ctr = node.run(pod)
    assert caps(node, ctr) == bits(DEFAULT_CAPS)
    assert caps(node, ctr, "CapBnd") == bits(DEFAULT_CAPS)
    assert caps(node, ctr, "CapInh") == 0


def test_capabilities_add_and_drop(node, pod):
    ctr = node.run(pod, sc=sc(capabilities=api_pb2.Capability(
        add_capabilities=["NET_ADMIN", "CAP_SYS_TIME"], drop_capabilities=["NET_RAW", "chown"])))
    want = (DEFAULT_CAPS | {"NET_ADMIN", "SYS_TIME"}) - {"NET_RAW", "CHOWN"}
    assert caps(node, ctr) == bits(want)
    assert caps(node, ctr, "CapBnd") == bits(want)
    # and they act: chown is refused, NET_ADMIN lets it change its own (pod) network
    rc, _, err = node.sh(ctr, "touch /f && chown 1:1 /f")
    assert rc != 0 and "not permitted" in err
    rc, _, err = node.sh(ctr, "ip link set lo mtu 1280 && ip link show lo")
    assert rc == 0 and "mtu 1280" in node.sh(ctr, "ip link show lo")[1], err
    none = node.run(pod, name="none",
                    sc=sc(capabilities=api_pb2.Capability(drop_capabilities=["ALL"])))
    assert caps(node, none) == 0 and caps(node, none, "CapBnd") == 0
    rc, _, _ = node.sh(none, "touch /g && chown 1:1 /g")
    assert rc != 0
    e = rpc_error(node.create, pod, name="bad", sc=sc(capabilities=api_pb2.Capability(
        add_capabilities=["FLY"])))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "FLY" in e.details()


def test_privileged_has_every_capability_and_the_hosts_devices(node):
    cfg = node.pod_config(name="priv")
    cfg.linux.security_context.privileged = True
    pod = node.run_pod(cfg)
    ctr = node.run(pod, sc=sc(privileged=True))
    assert caps(node, ctr) == host_all_caps()
    assert caps(node, ctr, "CapBnd") == host_all_caps()
    rc, out, _ = node.sh(ctr, "ls /dev")
    host_devs = {d for d in os.listdir("/dev") if d in ("kmsg", "mem", "vda", "sda", "loop0")}
    inside = set(out.split())
    assert "kmsg" in host_devs and host_devs <= inside, inside
    assert status_field(node, ctr, "Seccomp") == "0"
    assert status_field(node, ctr, "NoNewPrivs") == "0"
    rc, out, _ = node.sh(ctr, f"wc -c < {KCORE}; grep ' /proc/sys ' /proc/self/mountinfo")
    # no masked or read-only /proc paths for a privileged container
    assert " ro," not in out and not out.startswith("0\n"), out
    # an unprivileged one sees neither
    plain = node.run(pod, name="plain")
    assert not host_devs & set(node.sh(plain, "ls /dev")[1].split())
    # a privileged container needs a privileged pod
    other = node.run_pod()
    e = rpc_error(node.create, other, name="nope", sc=sc(privileged=True))
    assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                        grpc.StatusCode.PERMISSION_DENIED), e


def test_no_new_privs(node, pod):
    on = node.run(pod, name="on", sc=sc(no_new_privs=True))
    off = node.run(pod, name="off")
    assert status_field(node, on, "NoNewPrivs") == "1"
    assert status_field(node, off, "NoNewPrivs") == "0"
    # it holds for the container's own first process too
    assert "NoNewPrivs:\t1" in node.sh(on, "cat /proc/1/status")[1]


# ---- seccomp ----------------------------------------------------------------------------

def test_seccomp_runtime_default_refuses_unshare_and_unconfined_allows_it(node, pod):
    strict = node.run(pod, name="strict", sc=sc(seccomp=runtime_default()))
    loose = node.run(pod, name="loose", sc=sc(seccomp=unconfined()))
    assert status_field(node, strict, "Seccomp") == "2"
    assert status_field(node, loose, "Seccomp") == "0"
    rc, _, err = node.sh(strict, "busybox unshare -U true")
    assert rc != 0 and "not permitted" in err, err
    rc, out, err = node.sh(loose, "busybox unshare -U sh -c 'id -u'")
    assert rc == 0 and out.strip() == "65534", err   # a fresh user namespace, unmapped
    # the filter binds exec'd children and every later exec too
    rc, _, err = node.sh(strict, "sh -c 'busybox unshare -U true'")
    assert rc != 0


def test_seccomp_localhost_profile_is_applied(node, pod, tmp_path):
    prof = tmp_path / "deny-mkdir.json"
    prof.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": '
                    '[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}')
    ctr = node.run(pod, sc=sc(seccomp=api_pb2.SecurityProfile(
        profile_type=api_pb2.SecurityProfile.Localhost, localhost_ref=str(prof))))
    rc, _, err = node.sh(ctr, "mkdir /tmp/x")
    assert rc != 0 and "not permitted" in err
    assert node.sh(ctr, "touch /tmp/y")[0] == 0


# ---- /proc ------------------------------------------------------------------------------

def test_masked_and_readonly_proc_paths(node, pod):
    ctr = node.run(pod)   # kubelet's default lists (an empty list means the defaults)
    with open(KCORE, "rb") as f:
        assert f.read(1)   # not empty on the host
    rc, out, _ = node.sh(ctr, f"wc -c < {KCORE}")
    assert rc == 0 and out.strip() == "0"
    rc, out, _ = node.sh(ctr, "ls -A /proc/acpi /sys/firmware | grep -vc -e '^$' -e ':$'")
    assert out.strip() == "0", out
    assert node.sh(ctr, "touch /sys/firmware/x")[0] != 0
    rc, _, err = node.sh(ctr, "echo crisp > /proc/sys/kernel/domainname")
    assert rc != 0 and "Read-only file system" in err
    rc, _, err = node.sh(ctr, "echo 1 > /proc/sysrq-trigger")
    assert rc != 0
    # explicit lists replace the defaults
    mine = node.run(pod, name="mine", sc=sc(masked_paths=["/proc/version"],
                                             readonly_paths=["/proc/fs"]))
    assert node.sh(mine, "cat /proc/version")[1] == ""
    rc, out, _ = node.sh(mine, f"wc -c < {KCORE}")
    assert out.strip() != "0"    # not masked now (the read itself may fail)
    mounts = node.sh(mine, "cat /proc/self/mountinfo")[1].splitlines()
    ro = {l.split()[4] for l in mounts if l.split()[5].startswith("ro")}
    assert "/proc/fs" in ro and "/proc/sys" not in ro


# ---- isolation ----------------------------------------------------------------------------

def test_a_container_cannot_see_host_processes(node, pod):
    ctr = node.run(pod, cmd=["sleep", "1111"])
    rc, out, _ = node.sh(ctr, "ls /proc | grep -c '^[0-9]'")
    assert rc == 0 and int(out) <= 5, out
    rc, out, _ = node.sh(ctr, "ps -o pid,args")
    assert "crispd" not in out and "crisp-monitor" not in out
    assert "1 sleep 1111" in " ".join(out.split())
    assert node.sh(ctr, "kill -0 %d" % os.getpid())[0] != 0


def test_pods_cannot_see_each_others_processes_or_network(node):
    p1 = node.run_pod(name="one")
    p2 = node.run_pod(name="two")
    a = node.run(p1, name="a", cmd=["sleep", "2222"])
    b = node.run(p2, name="b", cmd=["sleep", "3333"])
    ip1 = node.pod_status(p1).status.network.ip
    ip2 = node.pod_status(p2).status.network.ip
    assert ip1 != ip2
    _, ps_b, _ = node.sh(b, "ps -o args")
    assert "2222" not in ps_b and "3333" in ps_b
    ns = {c: node.sh(c, "for n in net pid ipc uts; do readlink /proc/self/ns/$n; done")[1].split()
          for c in (a, b)}
    assert all(len(v) == 4 for v in ns.values()), ns
    assert all(x != y for x, y in zip(ns[a], ns[b])), ns
    host_net = os.readlink("/proc/self/ns/net")
    assert host_net not in ns[a] + ns[b]
    _, addrs_b, _ = node.sh(b, "ip -4 -o addr")
    assert ip1 not in addrs_b and ip2 in addrs_b
    # two containers of one pod share the network namespace, not the pid namespace
    a2 = node.run(p1, name="a2")
    ns_a2 = node.sh(a2, "for n in net pid; do readlink /proc/self/ns/$n; done")[1].split()
    assert ns_a2[0] == ns[a][0] and ns_a2[1] != ns[a][1]


def test_a_shared_pid_namespace_pod_sees_its_containers_processes(node):
    pod = node.run_pod(pid=api_pb2.POD)
    a = node.run(pod, name="a", cmd=["sleep", "4444"])
    b = node.run(pod, name="b", cmd=["sleep", "5555"])
    _, out, _ = node.sh(b, "ps -o args")
    assert "4444" in out and "5555" in out
    assert node.sh(a, "ls /proc | grep -c '^[0-9]'")[0] == 0


# ---- crispd's own surface ----------------------------------------------------------------

def connect_as(uid, path):
    """Tries to connect to a unix socket as uid (a child process); returns the errno
    name, or "ok"."""
    code = ("import socket, errno, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect(sys.argv[1]); print('ok')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, path], capture_output=True, text=True,
                       preexec_fn=lambda: (os.setgroups([]), os.setgid(uid), os.setuid(uid)),
                       timeout=20)
    return r.stdout.strip() or r.stderr


def test_the_socket_is_root_only(crispd):
    st = os.stat(crispd.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert stat.S_IMODE(st.st_mode) & 0o007 == 0, oct(st.st_mode)   # nothing for others
    # the directories on the way let anyone through, so the refusal is the socket's own
    for p in (crispd.base, os.path.dirname(crispd.base)):
        os.chmod(p, 0o711)
    assert connect_as(0, crispd.sock) == "ok"
    assert connect_as(65534, crispd.sock) == "EACCES"
    # and the state and root directories cannot be listed by others
    for p in (crispd.root, crispd.state, os.path.dirname(crispd.sock)):
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o004 == 0, p


@pytest.fixture(scope="session")
def escape_bin(tmp_path_factory):
    """escape_helper.c built static, in a directory to bind-mount into containers; a
    setuid-root copy next to it."""
    d = tmp_path_factory.mktemp("escape")
    out = build_static(d, "escape_helper.c", "escape")
    suid = d / "escape-suid"
    shutil.copy(out, suid)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    return str(d)


def with_escape(escape_bin):
    return [api_pb2.Mount(container_path="/x", host_path=escape_bin, readonly=True)]


def test_a_container_cannot_reach_crispds_socket_or_state(node, pod, escape_bin):
    ctr = node.run(pod, mounts=with_escape(escape_bin), sc=sc(capabilities=api_pb2.Capability(
        add_capabilities=["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"])))
    for path in (node.d.sock, node.d.state, node.d.root, os.path.dirname(node.d.sock),
                 os.path.join(node.d.state, "containers", ctr)):
        rc, out, _ = node.sh(ctr, f"ls -d {path} 2>&1; /x/escape connect {node.d.sock}")
        assert "No such file" in out and "connect ENOENT" in out, (path, out)
    # nothing of the host's file systems under crispd's dirs is mounted in
    mounts = node.sh(ctr, "cat /proc/self/mountinfo")[1]
    for path in (node.d.state, node.d.root, node.d.base):
        assert not any(l.split()[4].startswith(path) for l in mounts.splitlines()), mounts
    # crispd's process, and so its root and fds, are out of sight
    rc, out, _ = node.sh(ctr, f"ls /proc/{node.d.proc.pid}/root 2>&1; "
                              "grep -l crispd /proc/[0-9]*/cmdline 2>/dev/null")
    assert "No such file" in out and "crispd" not in out.replace("No such file", ""), out
    # its abstract and path sockets are not in the pod's network namespace either
    assert node.d.sock not in node.sh(ctr, "cat /proc/net/unix")[1]


def test_dropped_capabilities_cannot_be_regained(node, pod, escape_bin):
    # root with every capability dropped: capset cannot raise them, a setuid-root binary
    # does not bring them back (the bounding set is empty)
    none = node.run(pod, name="none", mounts=with_escape(escape_bin),
                    sc=sc(capabilities=api_pb2.Capability(drop_capabilities=["ALL"])))
    rc, out, _ = node.sh(none, "/x/escape capset")
    assert rc == 1 and out.strip() == "capset EPERM", out
    for b in ("escape", "escape-suid"):
        rc, out, _ = node.sh(none, f"/x/{b} ids")
        assert rc == 0 and "capeff=0000000000000000 capprm=0000000000000000" in out, (b, out)
    # a non-root user under no_new_privs: the setuid-root binary runs as that user
    nnp = node.run(pod, name="nnp", mounts=with_escape(escape_bin),
                   sc=sc(run_as_user=i64(1000), no_new_privs=True))
    rc, out, _ = node.sh(nnp, "/x/escape-suid ids")
    assert rc == 0 and "uid=1000 euid=1000 capeff=0000000000000000" in out, out
    rc, out, _ = node.sh(nnp, "/x/escape-suid capset")
    assert rc == 1 and "EPERM" in out, out
    # a default container cannot add a capability outside its set either
    plain = node.run(pod, name="plain", mounts=with_escape(escape_bin))
    rc, out, _ = node.sh(plain, "/x/escape capset")
    assert rc == 1 and "EPERM" in out, out


def test_a_container_cannot_join_another_pods_namespaces(node, escape_bin):
    p1 = node.run_pod(name="one")
    p2 = node.run_pod(name="two")
    # even with CAP_SYS_ADMIN (setns needs it), another pod's namespaces are out of reach
    a = node.run(p1, name="a", mounts=with_escape(escape_bin), sc=sc(
        capabilities=api_pb2.Capability(add_capabilities=["SYS_ADMIN", "SYS_PTRACE"]),
        seccomp=unconfined()))
    b = node.run(p2, name="b", cmd=["sleep", "7777"])
    with open(os.path.join(node.d.state, "containers", b, "pid")) as f:
        b_pid = int(f.read())
    b_net = os.readlink(f"/proc/{b_pid}/ns/net")
    pins = [os.path.join(node.d.state, "pods", p2, "ns", n) for n in ("net", "ipc", "uts")]
    for path in [f"/proc/{b_pid}/ns/net", f"/proc/{b_pid}/ns/pid"] + pins:
        rc, out, _ = node.sh(a, f"/x/escape setns {path}")
        assert rc == 1 and out.startswith(("open ENOENT", "open EACCES", "setns EPERM")), (path, out)
    # no process of a's pod namespace is b's
    rc, out, _ = node.sh(a, "for p in /proc/[0-9]*; do readlink $p/ns/net; done | sort -u")
    assert b_net not in out.split()


def test_host_processes_are_visible_only_with_host_pid(node, escape_bin):
    me = os.getpid()
    plain = node.run(node.run_pod(name="plain"), name="plain")
    rc, out, _ = node.sh(plain, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '")
    assert "pytest" not in out and "crispd" not in out
    host = node.run(node.run_pod(name="hostpid", pid=api_pb2.NODE), name="host")
    rc, out, _ = node.sh(host, f"cat /proc/{me}/cmdline | tr '\\0' ' '")
    assert rc == 0 and "pytest" in out, out


def test_a_symlink_planted_at_the_log_path_is_not_followed(node, tmp_path):
    pod = node.run_pod()
    cfg = node.pod_cfgs[pod]
    target = tmp_path / "elsewhere"
    target.write_text("")
    os.symlink(target, os.path.join(cfg.log_directory, "c_0.log"))
    c = node.create(pod)
    e = rpc_error(node.start, c)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "symbolic link" in e.details(), e
    assert target.read_text() == ""   # nothing went through the link
