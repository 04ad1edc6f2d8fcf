"""Runtime files: how `stockade status`, `alerts`, `events` and `rules mute|reload` find the running
instance without repeating its --port and --data-dir.

`stockade up`, `server` and `agent` write, at start, a small JSON file (pid, role, API address, data
directory, database) in two places: the runtime directory (``runtime_dir``; default ``/run/stockade``
as root, else ``$XDG_RUNTIME_DIR/stockade``, else ``/tmp/stockade-<uid>``) as ``<role>-<pid>.json``,
and ``<data_dir>/instance.json``. They remove both at a clean exit. A file whose process is gone (or
whose pid now belongs to another process: the start time is recorded) is stale: it is ignored, and
removed when it can be. The lookup order of the commands is in docs/operations.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stockade import __version__
from stockade.config import StockadeConfig

#: the runtime file's name in the data directory
DATA_DIR_FILE = "instance.json"


@dataclass(frozen=True, slots=True)
class Instance:
    """A running Stockade as its runtime file describes it."""

    pid: int
    role: str
    version: str
    #: the process's start time (clock ticks since boot, /proc/PID/stat field 22): guards pid reuse
    pid_start: int | None
    started: float
    data_dir: str
    #: the database URL, or None when it holds a password (the reader then uses its own config)
    db_url: str | None
    #: the API's base URL (None for an agent, which serves none)
    api_url: str | None
    manager_url: str | None = None
    #: the file this was read from
    path: str = ""

    def describe(self) -> str:
        """One line: role, pid, where it serves or ships, data directory."""
        where = self.api_url or f"shipping to {self.manager_url}"
        return f"{self.role} (pid {self.pid}) {where}, data in {self.data_dir}"


def default_runtime_dir() -> Path:
    """Where runtime files go: /run/stockade for root, else $XDG_RUNTIME_DIR/stockade or a temp dir."""
    if os.geteuid() == 0:
        return Path("/run/stockade")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "stockade"
    return Path(tempfile.gettempdir()) / f"stockade-{os.geteuid()}"


def runtime_dir(cfg: StockadeConfig) -> Path:
    """The configured runtime directory, else the default."""
    return Path(cfg.runtime_dir) if cfg.runtime_dir else default_runtime_dir()


def _pid_start(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces
    fields = stat[stat.rindex(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(inst: Instance) -> bool:
    """The process that wrote `inst` still runs (and is the same process, not a reused pid)."""
    try:
        os.kill(inst.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if inst.pid_start is None:
        return True
    return _pid_start(inst.pid) in (None, inst.pid_start)


def _db_url_to_publish(cfg: StockadeConfig) -> str | None:
    from sqlalchemy.engine import make_url

    url = cfg.db_url()
    try:
        return None if make_url(url).password else url
    except Exception:
        return None


class RuntimeFile:
    """The runtime files of this process: written by :meth:`write`, removed by :meth:`remove`."""

    def __init__(
        self, cfg: StockadeConfig, role: str, *, api_url: str | None, manager_url: str | None = None
    ):
        pid = os.getpid()
        self.instance = Instance(
            pid=pid,
            role=role,
            version=__version__,
            pid_start=_pid_start(pid),
            started=time.time(),
            data_dir=str(Path(cfg.data_dir).resolve()),
            db_url=_db_url_to_publish(cfg) if role != "agent" else None,
            api_url=api_url,
            manager_url=manager_url,
        )
        self.paths = [runtime_dir(cfg) / f"{role}-{pid}.json", Path(cfg.data_dir) / DATA_DIR_FILE]
        self.written: list[Path] = []
        #: why a file could not be written (the instance runs anyway; the commands then need flags)
        self.problems: list[str] = []

    def write(self) -> None:
        """Write the runtime files (problems are kept in `problems`, not raised)."""
        body = json.dumps({k: v for k, v in asdict(self.instance).items() if k != "path"}, indent=1) + "\n"
        for p in self.paths:
            try:
                p.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
                tmp.write_text(body)
                tmp.chmod(0o644)
                tmp.replace(p)
                self.written.append(p)
            except OSError as e:
                self.problems.append(f"cannot write the runtime file {p}: {e.strerror or e}")

    def remove(self) -> None:
        """Remove the files this process wrote (not one another instance wrote over since)."""
        for p in self.written:
            found = read(p)
            if found is not None and found.pid == self.instance.pid:
                with contextlib.suppress(OSError):
                    p.unlink()
        self.written = []


def read(path: Path) -> Instance | None:
    """The instance a runtime file describes, or None if there is none or it is unreadable."""
    try:
        d: dict[str, Any] = json.loads(path.read_text())
        return Instance(
            pid=int(d["pid"]),
            role=str(d["role"]),
            version=str(d.get("version", "")),
            pid_start=d.get("pid_start"),
            started=float(d.get("started", 0.0)),
            data_dir=str(d["data_dir"]),
            db_url=d.get("db_url"),
            api_url=d.get("api_url"),
            manager_url=d.get("manager_url"),
            path=str(path),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _live(path: Path) -> Instance | None:
    inst = read(path)
    if inst is None:
        return None
    if alive(inst):
        return inst
    with contextlib.suppress(OSError):  # stale: its process is gone
        path.unlink()
    return None


def running(cfg: StockadeConfig) -> list[Instance]:
    """The live instances in the runtime directory, oldest first."""
    d = runtime_dir(cfg)
    try:
        files = sorted(d.glob("*.json"))
    except OSError:
        return []
    found = [i for i in (_live(p) for p in files) if i is not None]
    return sorted(found, key=lambda i: i.started)


def in_data_dir(data_dir: str) -> Instance | None:
    """The live instance whose data directory is `data_dir`, if any."""
    return _live(Path(data_dir) / DATA_DIR_FILE)
