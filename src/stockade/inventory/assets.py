"""The packages of everything running here: each running container, each image, the host.

A container is cataloged through ``/proc/<pid>/root`` (its whole root filesystem as its processes
see it, volumes included). Catalogs are cached by a key: the container's image id and a
fingerprint of its overlay upper layer (the files it added or changed: names, sizes, times), so
50 replicas of one image that changed nothing cost one walk, and a container that installs a
package is walked again. An image is cataloged once per image id (``podman image mount``); the
host's root once per ``host_interval_s``.

Every walk runs in a child process at the lowest CPU and I/O priority (``nice 19``, ``ionice``
idle): a walk of a large root takes seconds of CPU, which would hold the agent's interpreter
(its event loop included) if it ran in a thread. The child prints the catalog as JSON; a child
that fails is an error of that asset, reported, and the next round tries again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from stockade.errors import StockadeError
from stockade.inventory.fileindex import FileIndex
from stockade.model.errorlog import ErrorLog
from stockade.model.package import Package
from stockade.packages.walk import Catalog

__all__ = [
    "HOST_SKIP",
    "Asset",
    "AssetScanner",
    "ScanFailed",
    "catalog_child",
    "catalog_json",
    "podman_images",
    "upper_fingerprint",
]

#: directories of the host not walked: other roots (container storage, image caches) and volatile ones
HOST_SKIP: Final = (
    "/var/lib/containers",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/run",
    "/tmp",
    "/var/tmp",
    "/var/cache",
    "/var/log",
    "/sys/fs",
    "/mnt",
    "/media",
)
#: the longest a walk may take
SCAN_TIMEOUT_S: Final = 900.0
#: how often a walk under way looks whether it was asked to stop
_STOP_POLL_S: Final = 0.25
#: how many catalogs the cache keeps (by key)
CACHE_SIZE: Final = 128
#: files of an upper layer looked at for its fingerprint, at most
_UPPER_LIMIT = 100_000
#: upper-layer directories that change all the time and hold no packages
_VOLATILE = ("tmp", "var/tmp", "run", "var/log", "var/cache", "root/.cache", "proc", "sys", "dev")


class ScanFailed(StockadeError):
    """A walk of one root failed (the child exited with an error or timed out)."""


@dataclass(slots=True)
class Asset:
    """What was cataloged: a container, an image or the host, and its packages."""

    #: ``container:<full id>``, ``image:<id>``, ``host:<hostname>``
    id: str
    kind: str
    name: str
    key: str
    packages: list[Package]
    errors: list[tuple[str, str]] = field(default_factory=list)
    scanned_ns: int = 0
    image: str | None = None
    workload: str | None = None
    #: the container's processes (containers only)
    pids: tuple[int, ...] = ()
    _index: FileIndex | None = field(default=None, repr=False)

    @property
    def index(self) -> FileIndex:
        """File path -> package, built on first use."""
        if self._index is None:
            self._index = FileIndex(self.packages)
        return self._index

    def summary(self) -> dict[str, Any]:
        """The asset without its packages (listings)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "image": self.image,
            "workload": self.workload,
            "packages": len(self.packages),
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "scanned_ns": self.scanned_ns,
        }


def upper_fingerprint(upperdir: str | None) -> str:
    """A hash of the overlay upper layer's files (path, size, mtime), volatile directories left
    out; ``-`` without one (the root is not an overlay, or unknown)."""
    if not upperdir or not os.path.isdir(upperdir):
        return "-"
    h = hashlib.sha256()
    n = 0
    stack = [""]
    while stack and n < _UPPER_LIMIT:
        rel = stack.pop()
        try:
            entries = sorted(
                os.scandir(os.path.join(upperdir, rel) if rel else upperdir), key=lambda e: e.name
            )
        except OSError:
            continue
        for e in entries:
            sub = f"{rel}/{e.name}" if rel else e.name
            if sub in _VOLATILE:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            n += 1
            h.update(
                f"{sub}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\n".encode("utf-8", "surrogateescape")
            )
            if e.is_dir(follow_symlinks=False):
                stack.append(sub)
    return h.hexdigest()[:16]


def _lower_priority() -> None:  # pragma: no cover - runs in the child
    os.nice(19)
    ionice = getattr(os, "ioprio_set", None)
    if ionice is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            # ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << 13)
            libc.syscall(251, 1, 0, 3 << 13)
        except OSError:
            pass


def catalog_child(
    root: str,
    skip: Sequence[str] = (),
    timeout_s: float = SCAN_TIMEOUT_S,
    stop: threading.Event | None = None,
) -> Catalog:
    """`root` cataloged in a child process at the lowest priority (module docstring). When `stop`
    is set meanwhile, the child is killed (a process that stops leaves no walk behind)."""
    if stop is not None and stop.is_set():
        raise ScanFailed(f"{root}: the walk was stopped")
    args = [sys.executable, "-m", "stockade.inventory.scanchild", root, *skip]
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_lower_priority,
    ) as child:
        while True:
            try:
                left = max(0.0, deadline - time.monotonic())
                out, err = child.communicate(timeout=min(_STOP_POLL_S, left))
                break
            except subprocess.TimeoutExpired:
                if stop is not None and stop.is_set():
                    _kill(child)
                    raise ScanFailed(f"{root}: the walk was stopped") from None
                if time.monotonic() >= deadline:
                    _kill(child)
                    raise ScanFailed(f"{root}: the walk took longer than {timeout_s:g}s") from None
    if child.returncode != 0:
        raise ScanFailed(
            f"{root}: {err.decode(errors='replace').strip()[-500:] or f'exit {child.returncode}'}"
        )
    doc = json.loads(out)
    pkgs = [
        Package(**{**p, "licenses": tuple(p.get("licenses") or ()), "files": tuple(p.get("files") or ())})
        for p in doc["packages"]
    ]
    return Catalog(
        root=root,
        packages=pkgs,
        errors=[(str(a), str(b)) for a, b in doc["errors"]],
        files_seen=int(doc["files_seen"]),
    )


def _kill(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.communicate()


def catalog_json(cat: Catalog) -> str:
    """A catalog as the child prints it (packages with their files)."""
    return json.dumps(
        {
            "packages": [dataclasses.asdict(p) for p in cat.packages],
            "errors": cat.errors,
            "files_seen": cat.files_seen,
        }
    )


class AssetScanner:
    """Catalogs containers, images and the host, cached by key (module docstring). Thread-safe."""

    def __init__(
        self,
        *,
        hostname: str,
        host_root: str = "/",
        host_skip: Iterable[str] = HOST_SKIP,
        catalog: Callable[[str, Sequence[str]], Catalog] | None = None,
    ) -> None:
        self.hostname = hostname
        self.host_root = host_root
        self.host_skip = tuple(host_skip)
        #: set by :meth:`close`: a walk under way is killed, none starts
        self._stop = threading.Event()
        self._catalog = catalog or partial(catalog_child, stop=self._stop)
        self._cache: OrderedDict[str, Catalog] = OrderedDict()
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.errors = ErrorLog("inventory", logger="stockade.inventory")

    def close(self) -> None:
        """Stop: the walks under way end at once (their callers get :class:`ScanFailed`)."""
        self._stop.set()

    def has(self, key: str) -> bool:
        """Whether a catalog of `key` is cached."""
        with self._lock:
            return key in self._cache

    def _cached(self, key: str, root: str, skip: Sequence[str] = ()) -> Catalog:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.stats["cache_hits"] += 1
                return hit
        t0 = time.monotonic()
        cat = self._catalog(root, skip)
        self.stats["walks"] += 1
        self.stats["walk_ms"] += int((time.monotonic() - t0) * 1000)
        with self._lock:
            self._cache[key] = cat
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return cat

    def container(
        self,
        full_id: str,
        pid: int,
        *,
        pids: Sequence[int] = (),
        name: str | None = None,
        image: str | None = None,
        image_id: str | None = None,
        upperdir: str | None = None,
        workload: str | None = None,
    ) -> Asset:
        """A running container's packages, through ``/proc/<pid>/root``."""
        key = f"{image_id or 'container:' + full_id}@{upper_fingerprint(upperdir)}"
        if not upperdir:  # no overlay seen: nothing shared with other containers
            key = f"container:{full_id}"
        cat = self._cached(key, f"/proc/{pid}/root")
        self.stats["container_scans"] += 1
        return Asset(
            f"container:{full_id}",
            "container",
            name or full_id[:12],
            key,
            cat.packages,
            list(cat.errors),
            time.time_ns(),
            image=image,
            workload=workload,
            pids=tuple(pids) or (pid,),
        )

    def image(self, image_id: str, ref: str) -> Asset:
        """An image's packages (``podman image mount``; unmounted after)."""
        key = f"image:{image_id}"
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            root = _podman_mount(image_id)
            try:
                cat = self._cached(key, root)
            finally:
                _podman(["image", "unmount", image_id])
        else:
            cat = self._cached(key, "")
        return Asset(
            f"image:{image_id}", "image", ref, key, cat.packages, list(cat.errors), time.time_ns(), image=ref
        )

    def host(self) -> Asset:
        """The host's packages (its root, :data:`HOST_SKIP` left out). Never cached: called
        once per ``host_interval_s``."""
        cat = self._catalog(self.host_root, self.host_skip)
        self.stats["host_scans"] += 1
        return Asset(
            f"host:{self.hostname}",
            "host",
            self.hostname,
            "host",
            cat.packages,
            list(cat.errors),
            time.time_ns(),
        )


def _podman(args: list[str]) -> str:
    exe = shutil.which("podman")
    if exe is None:
        raise ScanFailed("podman is not installed")
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:
        raise ScanFailed(f"podman {' '.join(args)}: {r.stderr.strip()[-300:]}")
    return r.stdout


def _podman_mount(image_id: str) -> str:
    return _podman(["image", "mount", image_id]).strip()


def podman_images() -> list[tuple[str, str]]:
    """(image id, its first name) of every named local podman image (empty without podman)."""
    if shutil.which("podman") is None:
        return []
    out = json.loads(_podman(["images", "--format", "json"]) or "[]")
    # untagged (dangling) images are left out: no name, no workload runs them by name
    return [(str(i["Id"]), str(i["Names"][0])) for i in out if i.get("Names")]
