"""The drill's disposable containers, through podman: the busybox image (built on first use), one
container per scenario, its attack steps, and its removal (thawed first when a playbook froze it).

The image ``localhost/stockade-drill:1`` is imported (``podman import``) from a root file system
made here: Debian's static busybox with a symlink per applet, account files with a fake password
hash, the cron spool, and the drill's own files below /srv/drill (the attacker's web root, a cron
table, a ``useradd`` script: busybox has none).

Podman is run as on any host; where the user has no containers.conf and systemd is not running
(the machines Stockade's tests run on), it is told the cgroupfs manager and the file events logger,
and every container gets ulimits within the host's hard limits (podman's default ``nofile`` can
exceed them, and runc then refuses to start the container).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stockade.drill.scenarios import ATTACKER_IP, Scenario
from stockade.enforce.freeze import is_frozen, thaw
from stockade.enforce.interface import EnforceError
from stockade.errors import StockadeError
from stockade.sensor.containers.cgroup import cgroup2_dir

__all__ = ["IMAGE", "DrillContainer", "Podman", "StepResult"]

log = logging.getLogger("stockade.drill")

IMAGE = "localhost/stockade-drill:1"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
#: the containers.conf files podman reads; with none of them, podman gets the flags below
_CONF_FILES = ("/etc/containers/containers.conf", "/usr/local/etc/containers/containers.conf")
_NO_CONF_FLAGS = ("--cgroup-manager", "cgroupfs", "--events-backend", "file")
_RUN_FLAGS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
#: how long a container may run at most (it is removed long before)
_LIFETIME_S = 600
#: the file the entrypoint touches once its setup is done
_READY = "/tmp/.drill-ready"
_USERADD = """#!/bin/sh
# the drill image's useradd: busybox has none. Appends an account for $1 (uid 4343).
name=${1:?usage: useradd NAME}
echo "$name:x:4343:4343::/home/$name:/bin/sh" >> /etc/passwd
echo "$name:!:19000:0:99999:7:::" >> /etc/shadow
"""


@dataclass(frozen=True, slots=True)
class StepResult:
    """One attack step: its command line, exit status and the start of what it wrote."""

    argv: tuple[str, ...]
    returncode: int
    output: str

    @property
    def denied(self) -> bool:
        """It failed the way a denial fails: EPERM/EACCES, or killed (128 + SIGKILL)."""
        text = self.output.lower()
        return self.returncode == 137 or (
            self.returncode != 0 and ("operation not permitted" in text or "permission denied" in text)
        )

    def to_dict(self) -> dict[str, object]:
        """The step as the JSON report gives it."""
        return {"argv": list(self.argv), "returncode": self.returncode, "output": self.output}


def _busybox() -> str:
    for p in BUSYBOX_CANDIDATES:
        if os.path.exists(p):
            kind = subprocess.run(["file", "-b", "-L", p], capture_output=True, text=True, check=False)
            if "dynamically linked" not in kind.stdout:
                return p
    raise StockadeError("the drill needs a static busybox (apt-get install busybox-static)")


def _make_rootfs(root: Path) -> None:
    """The drill image's root file system (module docstring)."""
    bb = _busybox()
    for d in ("bin", "proc", "sys", "dev", "etc", "mnt", "root", "usr/local/bin", "usr/sbin", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for d in ("tmp", "var/spool/cron/crontabs", "srv/drill/www"):
        (root / d).mkdir(parents=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2(bb, root / "bin" / "busybox")
    os.link(root / "bin" / "busybox", root / "srv" / "drill" / "www" / "tool")
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and not (root / "bin" / a).exists():
            (root / "bin" / a).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    # a fake hash: "$6$drill$" + filler, no password hashes to it
    (root / "etc" / "shadow").write_text(
        "root:$6$drill$notarealhashnotarealhashnotarealhash:19000:0:99999:7:::\n"
    )
    os.chmod(root / "etc" / "shadow", 0o640)
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc" / "hostname").write_text("stockade-drill\n")
    (root / "srv" / "drill" / "cron.job").write_text("*/5 * * * * /tmp/busybox echo drill\n")
    useradd = root / "usr" / "sbin" / "useradd"
    useradd.write_text(_USERADD)
    os.chmod(useradd, 0o755)


class Podman:
    """podman, with the flags this host needs (module docstring)."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("podman")
        if not found:
            raise StockadeError("the drill needs podman (apt-get install podman)")
        self.binary = found
        self.global_flags: tuple[str, ...] = _NO_CONF_FLAGS if _needs_flags() else ()

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``podman <global flags> args...``; a podman that does not answer in `timeout` is an error."""
        cmd = [self.binary, *self.global_flags, *args]
        try:
            return subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise StockadeError(f"podman {' '.join(args[:2])} did not finish in {timeout:.0f} s") from None

    def ensure_image(self) -> str:
        """The drill image, imported now if podman does not have it."""
        if self.run("image", "exists", IMAGE).returncode == 0:
            return IMAGE
        with tempfile.TemporaryDirectory(prefix="stockade-drill-") as tmp:
            root = Path(tmp) / "rootfs"
            root.mkdir()
            _make_rootfs(root)
            tar = Path(tmp) / "rootfs.tar"
            with tarfile.open(tar, "w") as tf:
                tf.add(root, arcname=".")
            r = self.run("import", str(tar), IMAGE, timeout=300)
        if r.returncode != 0:
            raise StockadeError(f"cannot build the drill image {IMAGE}: {_last_line(r.stderr)}")
        log.info("drill: built the image %s", IMAGE)
        return IMAGE

    def start(
        self, scenario: Scenario, image: str, labels: Mapping[str, str] | None = None
    ) -> DrillContainer:
        """A fresh container for `scenario` (no network but loopback), its setup done."""
        name = f"stockade-drill-{scenario.name}-{secrets.token_hex(3)}"
        lines = [f"ip addr add {ATTACKER_IP}/32 dev lo"] if scenario.attacker else []
        lines += [scenario.setup] if scenario.setup else []
        ready = bool(lines)
        entry = "\n".join([*lines, f"touch {_READY}", f"exec sleep {_LIFETIME_S}"])
        caps = ("--cap-add", "NET_ADMIN") if scenario.attacker else ()
        marks = [f"--label={k}={v}" for k, v in (labels or {}).items()]
        r = self.run(
            "run", "-d", "--name", name, "--network", "none", "--label", "stockade.drill=" + scenario.name,
            *marks, *_RUN_FLAGS, *caps, image, "sh", "-c", entry, timeout=120,
        )  # fmt: skip
        if r.returncode != 0:
            self.run("rm", "-f", "-t", "0", name)
            raise StockadeError(f"cannot start the drill container {name}: {_last_line(r.stderr)}")
        c = DrillContainer(self, name, r.stdout.strip())
        if ready:
            c.wait_ready()
        return c


@dataclass
class DrillContainer:
    """A scenario's container: its name (``stockade-drill-<scenario>-<random>``) and id."""

    podman: Podman
    name: str
    #: the full container id (alerts carry its first 12 characters)
    full_id: str

    @property
    def id(self) -> str:
        """The short id (12 characters), as alerts and the sensor name the container."""
        return self.full_id[:12]

    def exec(self, argv: Sequence[str], timeout: float = 30) -> StepResult:
        """One attack step, by ``podman exec``."""
        try:
            r = self.podman.run("exec", self.name, *argv, timeout=timeout)
        except StockadeError as e:
            return StepResult(tuple(argv), -1, str(e))
        return StepResult(tuple(argv), r.returncode, (r.stdout + r.stderr).strip()[:500])

    def wait_ready(self, timeout: float = 30) -> None:
        """Until the entrypoint's setup is done (it touches /tmp/.drill-ready): looked for in the
        container's merged file system from here, else by ``podman exec test``."""
        r = self.podman.run("container", "inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", self.name)
        merged = r.stdout.strip() if r.returncode == 0 else ""
        marker = Path(merged + _READY) if merged.startswith("/") else None
        deadline = time.monotonic() + timeout
        while not (marker.exists() if marker else self._exec_ok("test", "-e", _READY)):
            if time.monotonic() > deadline:
                raise StockadeError(
                    f"the drill container {self.name} did not finish its setup in {timeout:.0f} s"
                )
            time.sleep(0.05)

    def _exec_ok(self, *argv: str) -> bool:
        return self.podman.run("exec", self.name, *argv).returncode == 0

    def state(self) -> dict[str, object]:
        """podman's State of the container ({} when it is gone)."""
        r = self.podman.run("container", "inspect", "--format", "json", self.name)
        if r.returncode != 0:
            return {}
        try:
            data = json.loads(r.stdout)
            state: dict[str, object] = data[0]["State"]
        except (ValueError, LookupError, TypeError):
            return {}
        return state

    def _cgroup2_dir(self) -> str | None:
        pid = self.state().get("Pid")
        return cgroup2_dir(pid) if isinstance(pid, int) and pid > 0 else None

    def frozen(self) -> bool:
        """Paused by podman, or frozen by either cgroup freezer (stockade.enforce.freeze)."""
        state = self.state()
        if state.get("Status") == "paused" or state.get("Paused"):
            return True
        d = self._cgroup2_dir()
        try:
            return d is not None and is_frozen(d)
        except EnforceError:
            return False

    def thaw_locally(self) -> list[str]:
        """Thaw it without the running instance: ``podman unpause`` when podman paused it, then
        whichever cgroup freezer still holds it (stockade.enforce.freeze.thaw). What was done."""
        done: list[str] = []
        state = self.state()
        paused = state.get("Status") == "paused" or state.get("Paused")
        if paused and self.podman.run("unpause", self.name).returncode == 0:
            done.append("podman unpause")
        d = self._cgroup2_dir()
        try:
            if d is not None and is_frozen(d) and thaw(d).done:
                done.append("cgroup freezer thawed")
        except EnforceError as e:
            log.warning("drill: cannot thaw %s: %s", self.name, e)
        return done

    def remove(self) -> bool:
        """``podman rm -f``: True when it is gone."""
        r = self.podman.run("rm", "-f", "-t", "0", self.name, timeout=120)
        return r.returncode == 0 or "no such container" in r.stderr.lower()


def _needs_flags() -> bool:
    """No containers.conf of the user or the host, and no systemd: podman is told cgroupfs and the
    file events logger (what tests/containers.py's CONTAINERS_CONF says)."""
    if os.environ.get("CONTAINERS_CONF"):
        return False
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    if (home / "containers" / "containers.conf").exists() or any(os.path.exists(p) for p in _CONF_FILES):
        return False
    return not os.path.isdir("/run/systemd/system")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"
