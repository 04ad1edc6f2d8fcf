"""The host an evidence bundle was captured on: hostname, kernel (uname), OS release, boot id,
uptime and the time of capture."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from stockade.model.timeutil import format_time_ns

__all__ = ["host_metadata", "parse_os_release"]


def _text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def parse_os_release(text: str) -> dict[str, str]:
    """os-release's ``KEY=value`` lines (quotes removed)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() and not k.startswith("#"):
            out[k.strip()] = v.strip().strip('"').strip("'")
    return out


def host_metadata() -> dict[str, Any]:
    """What identifies this host and this moment."""
    u = os.uname()
    now = time.time_ns()
    release = _text("/etc/os-release") or _text("/usr/lib/os-release")
    uptime = _text("/proc/uptime")
    return {
        "hostname": socket.gethostname(),
        "uname": {
            "sysname": u.sysname,
            "nodename": u.nodename,
            "release": u.release,
            "version": u.version,
            "machine": u.machine,
        },
        "os_release": parse_os_release(release) if release else None,
        "boot_id": (_text("/proc/sys/kernel/random/boot_id") or "").strip() or None,
        "machine_id": (_text("/etc/machine-id") or "").strip() or None,
        "uptime_s": float(uptime.split()[0]) if uptime else None,
        "time": format_time_ns(now),
        "time_ns": now,
        "monotonic_ns": time.monotonic_ns(),
    }
