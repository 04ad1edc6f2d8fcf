"""Shared container fixtures (tests/conftest.py registers them for every test directory).

* ``busybox_rootfs`` (session): a directory with ``/bin/busybox`` (Debian's busybox-static) and a
  relative symlink for every applet (``sh``, ``cat``, ``ls``, ``id``, ``wget``, ``nc``, ...), plus
  empty ``/proc``, ``/sys``, ``/dev``, ``/tmp``, ``/etc`` (passwd, group), ``/mnt``, ``/root``, and
  ``/bin/stk-attack`` (tools/stk_attack.c built statically: ptrace and memfd execution).
* ``runc_container`` (factory): ``runc_container(args=("sleep", "300"), mounts=[(src, dest, ro)],
  privileged=False, cgroups_path=None, caps=(), shm_exec=False)`` makes an OCI bundle (``runc spec``) with its own copy of the
  rootfs, starts it detached with a unique id and returns a :class:`RuncContainer` (``id``, ``pid``,
  ``bundle``, ``rootfs``, ``exec(args)``, ``state()``). ``shm_exec``: /dev/shm without noexec (as
  a Kubernetes memory-backed emptyDir at /dev/shm is). Every container is killed and deleted at the
  end of the test.
* ``podman_conf`` (session): a containers.conf that works on this machine kind (cgroupfs, runc, file
  events logger, ulimits), pointed at by ``CONTAINERS_CONF`` for the whole session.
* ``podman_image`` (session): ``localhost/stockade-test-busybox:latest`` imported from the rootfs
  (kept afterwards: other test sessions on the machine may be using it); ``import_tree`` imports
  any root filesystem as an image, ``podman(args)`` runs podman (output captured, no stdin).
* ``host_sandbox``: a :class:`HostSandbox` (``run(script, net=False)``): host processes chrooted into a
  copy of the busybox tree, in a private mount namespace.
* ``podman_container`` (factory): ``podman_container(args=("sleep", "300"), privileged=False,
  volumes=[(src, dest, "ro")], network="none", caps=(), shm_exec=False, user=None)`` runs ``podman run -d --name <unique>`` and returns a
  :class:`PodmanContainer` (``id``, ``name``, ``pid``, ``exec(args)``, ``cp(src, dest)``,
  ``inspect()``); removed (``podman rm -f``) at the end of the test.
* ``podman_network``: a podman bridge network of the test's own, removed after it.
* ``module_runc_container``, ``module_podman_container``: the same factories, whose containers are
  removed at the end of the test module (a batch shared by a module's tests); container operations
  run a few at a time with ``helpers.in_parallel``.

Tests using them are marked ``@pytest.mark.containers`` and ``@pytest.mark.root``; the fixtures skip
with the reason (fail in CI) when runc, podman or busybox are missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from helpers import in_parallel, need

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PODMAN_IMAGE = "localhost/stockade-test-busybox:latest"
#: process facts every alert of a test node carries (Node's append_output)
FACT_FIELDS = ("proc.cmdline", "proc.args", "proc.exepath", "proc.cwd")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""


def _need_root() -> None:
    need(os.geteuid() == 0, "needs root")


def _busybox() -> str:
    static = (
        p
        for p in BUSYBOX_CANDIDATES
        if os.path.exists(p) and "dynamically linked" not in _run(["file", "-b", p]).stdout
    )
    return need(next(static, None), "needs busybox-static (apt-get install busybox-static)")


def _run(args: Sequence[str], timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, **kw)


def _unique(prefix: str) -> str:
    """A name no other container of this machine has, its first 12 characters (container.id) too:
    the random part comes first, so containers made together never share a short id."""
    return f"{prefix}{secrets.token_hex(6)}-{os.getpid()}"


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal root filesystem: busybox and its applets."""
    bb = _busybox()
    root = tmp_path_factory.mktemp("busybox-rootfs")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "root", "var"):
        (root / d).mkdir()
    shutil.copy2(bb, root / "bin" / "busybox")
    applets = _run([bb, "--list"]).stdout.split()
    for a in applets:
        if a != "busybox" and not (root / "bin" / a).exists():
            (root / "bin" / a).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nstk:x:4242:4242::/:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\nstk:x:4242:\n")
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2(attack_tool(tmp_path_factory), root / "bin" / "stk-attack")
    return root


def attack_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tools/stk_attack.c, built statically (clang and libc6-dev, installed by scripts/install.sh)."""
    cc = need(
        shutil.which("clang") or shutil.which("cc"),
        "needs clang to build tests/sensor/tools/stk_attack.c (scripts/install.sh)",
    )
    out = tmp_path_factory.mktemp("tools") / "stk-attack"
    src = Path(__file__).parent / "sensor" / "tools" / "stk_attack.c"
    r = _run([cc, "-static", "-O1", "-o", str(out), str(src)])
    assert r.returncode == 0, f"building {src} failed: {r.stderr}"
    return out


# -- runc ---------------------------------------------------------------------------------------


@dataclass
class RuncContainer:
    id: str
    pid: int
    bundle: Path
    rootfs: Path
    runc: str = "runc"

    def exec(
        self, args: Sequence[str], *, detach: bool = False, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """``runc exec [-d] <id> args...``."""
        cmd = [self.runc, "exec", *(["-d"] if detach else []), self.id, *args]
        if detach:
            return subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=timeout,
                text=True,
            )
        return _run(cmd, timeout=timeout, stdin=subprocess.DEVNULL)

    def state(self) -> dict[str, Any]:
        out = _run([self.runc, "state", self.id])
        return json.loads(out.stdout) if out.returncode == 0 else {}


def _runc_spec(
    bundle: Path,
    args: Sequence[str],
    mounts: Sequence[tuple[str, str, bool]],
    cgroups_path: str | None,
    annotations: dict[str, str] | None,
    shm_exec: bool,
) -> dict[str, Any]:
    """The bundle's config.json (from `runc spec`) for the container's process and mounts."""
    spec: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = list(args)
    spec["root"] = {"path": "rootfs", "readonly": False}
    if cgroups_path is not None:
        spec["linux"]["cgroupsPath"] = cgroups_path
    if annotations:
        spec["annotations"] = dict(annotations)
    for src, dest, ro in mounts:
        options = ["rbind", "rprivate", "ro" if ro else "rw"]
        spec["mounts"].append({"destination": dest, "type": "bind", "source": src, "options": options})
    for m in spec["mounts"] if shm_exec else []:
        if m["destination"] == "/dev/shm":
            m["options"] = [o for o in m["options"] if o != "noexec"]
    return spec


def _grant(spec: dict[str, Any], caps: Sequence[str], privileged: bool) -> None:
    """Add `caps` to the spec's process, or every capability and device when `privileged`."""
    for k in ("bounding", "effective", "permitted"):
        have = spec["process"]["capabilities"][k]
        have.extend(c for c in caps if c not in have)
    if privileged:
        every = _all_caps()
        for k in ("bounding", "effective", "permitted", "ambient"):
            spec["process"]["capabilities"][k] = every
        spec["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
        spec["linux"].pop("maskedPaths", None)
        spec["linux"].pop("readonlyPaths", None)


class RuncFactory:
    """``runc_container(...)``: see the module docstring. Every container is removed by :meth:`cleanup`."""

    def __init__(self, runc: str, rootfs: Path, workdir: Path) -> None:
        self.runc = runc
        self.rootfs = rootfs
        self.workdir = workdir
        self.made: list[RuncContainer] = []

    def __call__(
        self,
        args: Sequence[str] = ("sleep", "300"),
        *,
        mounts: Sequence[tuple[str, str, bool]] = (),
        privileged: bool = False,
        cgroups_path: str | None = None,
        annotations: dict[str, str] | None = None,
        caps: Sequence[str] = (),
        shm_exec: bool = False,
    ) -> RuncContainer:
        cid = _unique("stk")
        bundle = self.workdir / cid
        bundle.mkdir()
        shutil.copytree(self.rootfs, bundle / "rootfs", symlinks=True)
        r = _run([self.runc, "spec"], cwd=bundle)
        assert r.returncode == 0, r.stderr
        spec = _runc_spec(bundle, args, mounts, cgroups_path, annotations, shm_exec)
        _grant(spec, caps, privileged)
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        err = bundle / "runc.stderr"
        with open(err, "w") as ef:
            rc = subprocess.run(
                [self.runc, "run", "-d", "--bundle", str(bundle), cid],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=ef,
                timeout=60,
                check=False,
            ).returncode
        assert rc == 0, f"runc run failed: {err.read_text()}"
        c = RuncContainer(cid, 0, bundle, bundle / "rootfs", self.runc)
        self.made.append(c)
        c.pid = int(c.state()["pid"])
        return c

    def many(self, each: Sequence[dict[str, Any]]) -> list[RuncContainer]:
        """One container for each set of keyword arguments, made a few at a time."""
        return in_parallel([partial(self, **kw) for kw in each])

    def cleanup(self) -> None:
        """Kill and delete every container made (a few at a time)."""

        def remove(c: RuncContainer) -> None:
            _run([self.runc, "kill", c.id, "KILL"])
            _run([self.runc, "delete", "-f", c.id])

        in_parallel([partial(remove, c) for c in self.made])
        self.made.clear()


def _runc_factory(busybox_rootfs: Path, workdir: Path) -> Iterator[RuncFactory]:
    _need_root()
    runc = need(shutil.which("runc"), "needs runc (apt-get install runc)")
    factory = RuncFactory(runc, busybox_rootfs, workdir)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def runc_container(busybox_rootfs: Path, tmp_path: Path) -> Iterator[RuncFactory]:
    """Makes runc containers, removed at the end of the test."""
    yield from _runc_factory(busybox_rootfs, tmp_path)


@pytest.fixture(scope="module")
def module_runc_container(
    busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuncFactory]:
    """The same, removed at the end of the test module (for tests that share a batch of containers)."""
    yield from _runc_factory(busybox_rootfs, tmp_path_factory.mktemp("runc"))


def _all_caps() -> list[str]:
    """Every capability this process may hand on (its bounding set)."""
    bnd = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            bnd = int(line.split()[1], 16)
    names = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
    return ["CAP_" + n for i, n in enumerate(names) if bnd >> i & 1]


# -- podman -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def podman_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A containers.conf for this machine kind; CONTAINERS_CONF points at it for the session."""
    path = tmp_path_factory.mktemp("podman") / "containers.conf"
    path.write_text(CONTAINERS_CONF)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTAINERS_CONF", str(path))
        yield path


def podman(args: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``podman args...``: its output captured, no standard input."""
    return _run([shutil.which("podman") or "podman", *args], timeout=timeout, stdin=subprocess.DEVNULL)


def import_tree(tree: Path, image: str, conf: Path, work: Path, timeout: float = 180) -> str:
    """`image` imported into podman (configured by `conf`) from the root filesystem `tree`, through
    a tar of it written below `work`."""
    need(shutil.which("podman"), "needs podman (apt-get install podman)")
    tar = work / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(tree, arcname=".")
    r = _run(
        [shutil.which("podman") or "podman", "import", str(tar), image],
        timeout=timeout,
        env={**os.environ, "CONTAINERS_CONF": str(conf)},
    )
    assert r.returncode == 0, r.stderr
    tar.unlink()
    return image


@pytest.fixture(scope="session")
def podman_image(busybox_rootfs: Path, podman_conf: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``localhost/stockade-test-busybox:latest``, imported from the busybox rootfs."""
    _need_root()
    return import_tree(busybox_rootfs, PODMAN_IMAGE, podman_conf, tmp_path_factory.mktemp("podman-image"))


@dataclass
class PodmanContainer:
    id: str
    name: str
    pid: int
    podman: str = "podman"
    extra: dict[str, Any] = field(default_factory=dict)

    def exec(
        self, args: Sequence[str], *, detach: bool = False, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """``podman exec [-d] <name> args...``."""
        return _run([self.podman, "exec", *(["-d"] if detach else []), self.name, *args], timeout=timeout)

    def cp(self, src: str, dest: str) -> None:
        """Copy a host file into the container (``podman cp``)."""
        r = _run([self.podman, "cp", src, f"{self.name}:{dest}"])
        assert r.returncode == 0, r.stderr

    def inspect(self) -> dict[str, Any]:
        r = _run([self.podman, "container", "inspect", "--format", "json", self.name])
        assert r.returncode == 0, r.stderr
        data: list[dict[str, Any]] = json.loads(r.stdout)
        return data[0]


class PodmanFactory:
    """``podman_container(...)``: see the module docstring. Every container is removed by :meth:`cleanup`."""

    def __init__(self, podman: str, image: str) -> None:
        self.podman = podman
        self.image = image
        self.made: list[PodmanContainer] = []

    def __call__(
        self,
        args: Sequence[str] = ("sleep", "300"),
        *,
        privileged: bool = False,
        volumes: Sequence[tuple[str, str, str]] = (),
        labels: dict[str, str] | None = None,
        network: str = "none",
        name: str | None = None,
        caps: Sequence[str] = (),
        shm_exec: bool = False,
        user: str | None = None,
    ) -> PodmanContainer:
        cname = name or _unique("stk-pod")
        cmd = [self.podman, "run", "-d", "--name", cname, "--network", network]
        if privileged:
            cmd.append("--privileged")
        for cap in caps:
            cmd += ["--cap-add", cap]
        if shm_exec:
            cmd += ["--tmpfs", "/dev/shm:rw,exec,mode=1777"]
        if user is not None:
            cmd += ["--user", user]
        for src, dest, opts in volumes:
            cmd += ["-v", f"{src}:{dest}" + (f":{opts}" if opts else "")]
        for k, v in (labels or {}).items():
            cmd += ["--label", f"{k}={v}"]
        r = _run([*cmd, self.image, *args], timeout=120)
        assert r.returncode == 0, r.stderr
        c = PodmanContainer(r.stdout.strip(), cname, 0, self.podman)
        self.made.append(c)
        c.pid = int(c.inspect()["State"]["Pid"])
        return c

    def many(self, each: Sequence[dict[str, Any]]) -> list[PodmanContainer]:
        """One container for each set of keyword arguments, made a few at a time."""
        return in_parallel([partial(self, **kw) for kw in each])

    def cleanup(self) -> None:
        """Remove every container made: one `podman rm` for all (podman removes them in parallel,
        without a podman start-up per container); one by one if that fails."""
        if self.made:
            names = [c.name for c in self.made]
            r = _run([self.podman, "rm", "-f", "-i", "-t", "0", *names], timeout=180)
            if r.returncode != 0:
                in_parallel(
                    [partial(_run, [self.podman, "rm", "-f", "-i", "-t", "0", n], timeout=120) for n in names]
                )
        self.made.clear()


def _podman_factory(image: str) -> Iterator[PodmanFactory]:
    factory = PodmanFactory(shutil.which("podman") or "podman", image)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def podman_container(podman_image: str) -> Iterator[PodmanFactory]:
    """Makes podman containers, removed at the end of the test."""
    yield from _podman_factory(podman_image)


@pytest.fixture(scope="module")
def module_podman_container(podman_image: str) -> Iterator[PodmanFactory]:
    """The same, removed at the end of the test module (for tests that share a batch of containers)."""
    yield from _podman_factory(podman_image)


# -- the host's own processes, sandboxed -------------------------------------------------------


@dataclass
class HostSandbox:
    """Host processes (the host's cgroup and pid namespace: no container) run chrooted into a copy of
    the busybox tree in a private mount namespace, so a test can perform an attack's behaviour "on the
    host" with the same commands as in a container without changing the host: writes land in the
    copy, /proc is mounted in the private namespace. With ``net=True`` they also get a network
    namespace of their own (only ``lo``)."""

    root: Path

    def run(self, script: str, *, net: bool = False, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``/bin/sh -c script`` in the sandbox, started by unshare (which chroots and mounts /proc)."""
        cmd = ["unshare", "--mount", "--propagation", "private", *(["--net"] if net else [])]
        cmd += ["--fork", "--root", str(self.root), "--mount-proc"]
        return _run([*cmd, "/bin/sh", "-c", script], timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def host_sandbox(busybox_rootfs: Path, tmp_path: Path) -> HostSandbox:
    _need_root()
    need(
        shutil.which("unshare") and shutil.which("chroot"), "needs unshare and chroot (util-linux, coreutils)"
    )
    root = tmp_path / "host-sandbox"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    (root / "dev" / "shm").mkdir(mode=0o1777)
    os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(root / "dev" / "null", 0o666)
    return HostSandbox(root)


@pytest.fixture
def podman_network(podman_conf: Path) -> Iterator[str]:
    """A podman bridge network of the test's own (removed after it, its containers killed at once)."""
    assert podman_conf.is_file()
    podman = need(shutil.which("podman"), "needs podman (apt-get install podman)")
    name = f"stk-net-{secrets.token_hex(3)}"
    r = _run([podman, "network", "create", name])
    assert r.returncode == 0, r.stderr
    try:
        yield name
    finally:
        _run([podman, "network", "rm", "-f", "-t", "0", name], timeout=120)
