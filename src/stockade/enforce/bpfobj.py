"""What the enforcers' eBPF programs share: where their built objects are, and the thread that
reads their ring buffer of denials.

The objects are built at install time from ``bpf/<name>.bpf.c`` into ``bpf/build/<name>.bpf.o``
(``scripts/build-bpf.sh``; never committed); ``$STOCKADE_<NAME>_OBJECT`` overrides the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stockade.enforce.interface import Denial, DenialSink, EnforceError
from stockade.model.errorlog import ErrorLog
from stockade.sensor.ebpf import libbpf as lb
from stockade.sensor.ebpf.ringbuf import RingBuffer

__all__ = ["BPFFS", "RingReader", "ensure_bpffs", "find_object", "open_object", "unpin_links"]

BUILD_DIR = Path(__file__).resolve().parent / "bpf" / "build"
BPFFS = "/sys/fs/bpf"


def find_object(name: str) -> Path | None:
    """The built object of program `name` (``netguard``, ``execkill``), or None."""
    env = os.environ.get(f"STOCKADE_{name.upper()}_OBJECT")
    if env:
        return Path(env) if Path(env).is_file() else None
    path = BUILD_DIR / f"{name}.bpf.o"
    return path if path.is_file() else None


def open_object(name: str, path: str | None, prepare: Callable[[lb.BpfObject], None]) -> lb.BpfObject:
    """Program `name`'s object (at `path`, else where :func:`find_object` finds it), opened,
    `prepare`d (pins, attachments: anything that must happen around loading) and loaded by it;
    EnforceError, with nothing left open, when any step fails."""
    path = path or (str(p) if (p := find_object(name)) else None)
    if path is None:
        raise EnforceError(f"the {name} eBPF program is not built (run scripts/build-bpf.sh)")
    try:
        obj = lb.BpfObject(path)
    except lb.BpfError as e:
        raise EnforceError(f"{name}: {e}") from e
    try:
        prepare(obj)
    except EnforceError:
        obj.close()
        raise
    except (lb.BpfError, OSError) as e:
        obj.close()
        raise EnforceError(f"{name}: loading the programs failed: {e}") from e
    return obj


def _libc_mount(source: str, target: str, fstype: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        e = ctypes.get_errno()
        raise EnforceError(f"mount -t {fstype} {source} {target}: {os.strerror(e)}")


def ensure_bpffs(pin_dir: str) -> None:
    """Mount bpffs at /sys/fs/bpf when `pin_dir` is under it and nothing is mounted there."""
    with open("/proc/self/mounts", encoding="utf-8") as f:
        bpf_mounts = [p[1] for line in f if len(p := line.split()) >= 3 and p[2] == "bpf"]
    if any(pin_dir == m or pin_dir.startswith(m.rstrip("/") + "/") for m in bpf_mounts):
        return
    if not (pin_dir == BPFFS or pin_dir.startswith(BPFFS + "/")):
        raise EnforceError(f"pin directory {pin_dir} is not on a bpf filesystem")
    _libc_mount("bpf", BPFFS, "bpf")


def unpin_links(link_dir: str) -> int:
    """Detach and unpin the links pinned in `link_dir` (one file per link), then remove it; the
    number of links detached."""
    if not os.path.isdir(link_dir):
        return 0
    n = 0
    for name in os.listdir(link_dir):
        pin = os.path.join(link_dir, name)
        try:
            link = lb.BpfLink.open_pinned(pin, name)
        except lb.BpfError:
            pass
        else:
            with contextlib.suppress(lb.BpfError):
                link.detach()
                n += 1
            link.destroy()
        with contextlib.suppress(OSError):
            os.unlink(pin)
    with contextlib.suppress(OSError):
        os.rmdir(link_dir)
    return n


class RingReader:
    """A thread that waits on a ring buffer, decodes its records (``decode(buf, off, size)``: a
    Denial or None) and hands each denial to `sink`; decode and sink failures go to `errors`."""

    def __init__(
        self,
        name: str,
        ring: RingBuffer,
        decode: Callable[[Any, int, int], Denial | None],
        sink: DenialSink,
        errors: ErrorLog,
    ) -> None:
        self.ring = ring
        self.decode = decode
        self.sink = sink
        self.errors = errors
        self.sink_errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reading (what is left in the ring buffer stays there) and unmap the ring buffer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.ring.close()

    def _loop(self) -> None:
        out: list[Denial] = []
        while not self._stop.is_set():
            if not self.ring.wait(0.1):
                continue
            self.ring.consume(self.decode, out, on_error=lambda e: self.errors.report(f"bad record: {e}"))
            for d in out:
                try:
                    self.sink(d)
                except Exception as e:
                    self.sink_errors += 1
                    self.errors.report(f"denial sink: {e!r}")
            out.clear()
