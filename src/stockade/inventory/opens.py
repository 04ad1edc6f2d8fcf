"""The files the sensor saw each container's processes open, that may belong to a package.

Shared libraries and the executable show in ``/proc/<pid>/maps``; a pure-Python module, a
Node.js file or a jar read through a descriptor does not, and is closed once read: the sensor's
open events are the only trace. :class:`OpenTracker` sees every syscall event after the engine
(the pipeline's observer) and keeps, per container (``host`` for the node's own processes), the
paths of successful opens that look like code of a package (:data:`PATTERNS`), with the latest
process that opened each. Memory is bounded: at most ``per_container`` paths per container (the
least recently opened go first) and ``containers`` containers; what is dropped is counted.

:data:`INTEREST_CONDITION` is the same test as a rule condition, so that the kernel's interest
filter (:mod:`stockade.rules.interest`) keeps these opens when no rule asks for them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["INTEREST_CONDITION", "OPEN_EVTTYPES", "PATTERNS", "OpenTracker", "Opened", "code_like"]

#: the open syscalls whose successful calls are kept
OPEN_EVTTYPES: Final = frozenset({"open", "openat", "openat2"})
#: (kind, text): a path is code of a package when it contains a CONTAINS text or ends with a
#: SUFFIX text
PATTERNS: Final = (
    ("contains", "/site-packages/"),
    ("contains", "/dist-packages/"),
    ("contains", "/node_modules/"),
    ("suffix", ".py"),
    ("suffix", ".pyc"),
    ("suffix", ".so"),
    ("suffix", ".jar"),
    ("suffix", ".js"),
    ("suffix", ".node"),
)
_CONTAINS = tuple(t for k, t in PATTERNS if k == "contains")
_SUFFIX = tuple(t for k, t in PATTERNS if k == "suffix")
#: :data:`PATTERNS` as a rule condition (for the kernel's interest filter)
INTEREST_CONDITION: Final = (
    "evt.type in (open, openat, openat2) and evt.dir = < and fd.num >= 0 and ("
    + " or ".join([f"fd.name contains {t}" for t in _CONTAINS] + [f"fd.name endswith {t}" for t in _SUFFIX])
    + ")"
)
HOST: Final = "host"


def code_like(path: str) -> bool:
    """Whether `path` looks like code of a package (:data:`PATTERNS`)."""
    return path.endswith(_SUFFIX) or any(t in path for t in _CONTAINS)


@dataclass(frozen=True, slots=True)
class Opened:
    """The latest open of a path in a container: by which process (pid, name), when (ns)."""

    pid: int | None
    comm: str
    time_ns: int


class OpenTracker:
    """Per container, the code-like files opened (module docstring). Thread-safe."""

    def __init__(self, per_container: int = 4096, containers: int = 1024) -> None:
        self.per_container = per_container
        self.max_containers = containers
        self._seen: OrderedDict[str, OrderedDict[str, Opened]] = OrderedDict()
        #: container -> when it last opened a file (monotonic): see :meth:`forget`
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    def observe(self, data: Mapping[str, Any]) -> list[Any]:
        """Take one syscall event's data (the pipeline's observer: it raises no alert)."""
        if data.get("evt.type") not in OPEN_EVTTYPES:
            return []
        path = data.get("fd.name")
        if not isinstance(path, str) or not path.startswith("/") or not code_like(path):
            return []
        res = data.get("evt.rawres")
        if isinstance(res, int) and res < 0:
            return []
        cid = data.get("container.full_id") or data.get("container.id") or HOST
        if cid == "host" or not isinstance(cid, str):
            cid = HOST
        pid = data.get("proc.pid")
        t = data.get("evt.rawtime")
        opened = Opened(
            pid if isinstance(pid, int) else None,
            str(data.get("proc.name") or "?"),
            t if isinstance(t, int) else 0,
        )
        with self._lock:
            files = self._seen.get(cid)
            if files is None:
                files = self._seen[cid] = OrderedDict()
                if len(self._seen) > self.max_containers:
                    old, _ = self._seen.popitem(last=False)
                    self._touched.pop(old, None)
                    self.stats["containers_dropped"] += 1
            else:
                self._seen.move_to_end(cid)
            if path in files:
                files.move_to_end(path)
            elif len(files) >= self.per_container:
                files.popitem(last=False)
                self.stats["paths_dropped"] += 1
            files[path] = opened
            self._touched[cid] = time.monotonic()
            self.stats["opens"] += 1
        return []

    def opened(self, container: str) -> dict[str, Opened]:
        """The paths opened in `container` (a full or 12-character id, or ``host``)."""
        with self._lock:
            files = self._seen.get(container)
            if files is None and len(container) >= 12:
                files = next((v for k, v in self._seen.items() if k.startswith(container[:12])), None)
            return dict(files) if files else {}

    def forget(self, keep: set[str], listed_at: float) -> None:
        """Drop the containers not in `keep`, the containers found running at `listed_at`
        (monotonic), the host's kept. One that opened a file since then is kept too: it started
        after the list was made (its opens at start may be the only ones it ever makes)."""
        with self._lock:
            for cid in [c for c in self._seen if c != HOST and c not in keep and c[:12] not in keep]:
                if self._touched.get(cid, 0.0) < listed_at:
                    del self._seen[cid]
                    self._touched.pop(cid, None)

    def status(self) -> dict[str, Any]:
        """Counters, and how many paths are held."""
        with self._lock:
            return {
                "containers": len(self._seen),
                "paths": sum(len(v) for v in self._seen.values()),
                **dict(self.stats),
            }
