"""Memory evidence: a process's maps (``/proc/PID/maps``) and a dump of its readable memory
(``/proc/PID/mem``), taken while its container is frozen.

The dump is one file, ``memory/<pid>.mem``: the readable regions one after another; its index
``memory/<pid>.json`` gives each region's addresses, permissions, mapped path, offset in the dump
and length, or why it was not read: not readable (no ``r``), a kernel page the process cannot
read either (``[vvar]``, ``[vvar_vclock]``, ``[vsyscall]``), an I/O error, or the size cap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MEMORY_CAP", "Region", "dump_memory", "parse_maps"]

#: the most bytes of one process's memory dumped
DEFAULT_MEMORY_CAP = 256 * 2**20
_SKIP_NAMES = ("[vvar]", "[vvar_vclock]", "[vsyscall]")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Region:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    perms: str
    offset: int
    path: str

    @property
    def size(self) -> int:
        """Its length in bytes."""
        return self.end - self.start


def parse_maps(text: str) -> list[Region]:
    """``/proc/PID/maps`` as regions (lines that do not parse are left out)."""
    out: list[Region] = []
    for line in text.splitlines():
        f = line.split(None, 5)
        if len(f) < 5 or "-" not in f[0]:
            continue
        try:
            lo, hi = (int(x, 16) for x in f[0].split("-", 1))
            out.append(Region(lo, hi, f[1], int(f[2], 16), f[5].strip() if len(f) > 5 else ""))
        except ValueError:
            continue
    return out


def _entry(r: Region) -> dict[str, Any]:
    return {"start": hex(r.start), "end": hex(r.end), "perms": r.perms, "path": r.path, "size": r.size}


def dump_memory(pid: int, maps_text: str, out: Path, cap_bytes: int = DEFAULT_MEMORY_CAP) -> dict[str, Any]:
    """Dump the readable regions of `pid` into `out`; the index (regions, bytes, what was skipped)."""
    regions: list[dict[str, Any]] = []
    written = 0
    capped = 0
    try:
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        return {
            "pid": pid,
            "error": f"cannot open /proc/{pid}/mem: {e.strerror or e}",
            "bytes": 0,
            "regions": [],
        }
    try:
        with open(out, "wb") as dump:
            for r in parse_maps(maps_text):
                entry = _entry(r)
                regions.append(entry)
                if "r" not in r.perms:
                    entry["skipped"] = "not readable"
                    continue
                if r.path in _SKIP_NAMES:
                    entry["skipped"] = "kernel page"
                    continue
                if written + r.size > cap_bytes:
                    entry["skipped"] = f"size cap ({cap_bytes} bytes)"
                    capped += 1
                    continue
                entry["dump_offset"] = written
                got = 0
                addr = r.start
                while addr < r.end:
                    try:
                        chunk = os.pread(mem, min(_CHUNK, r.end - addr), addr)
                    except OSError as err:
                        entry["error"] = f"at {hex(addr)}: {err.strerror or err}"
                        break
                    if not chunk:
                        entry["error"] = f"at {hex(addr)}: end of readable memory"
                        break
                    dump.write(chunk)
                    got += len(chunk)
                    addr += len(chunk)
                entry["dumped"] = got
                written += got
    finally:
        os.close(mem)
    return {
        "pid": pid,
        "bytes": written,
        "cap_bytes": cap_bytes,
        "regions_capped": capped,
        "regions": regions,
    }
