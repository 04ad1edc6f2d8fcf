"""A container's open files and network counters, from /proc.

* Open files: the file descriptors its processes hold (the entries of ``/proc/<pid>/fd`` summed
  over the container's processes, as ``lsof`` counts them); a process gone meanwhile is skipped.
* Network: bytes and packets received and sent on every interface but ``lo`` of the container's
  network namespace (``/proc/<pid>/net/dev`` of one of its processes, which shows that process's
  namespace). A container that shares the host's namespace (``--network host``) is not counted:
  its traffic cannot be told from the host's, and that is said in the sample's ``missing``.
  Containers that share one namespace (a Kubernetes pod) each show the pod's traffic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from stockade.resources.cgroupfs import read_text
from stockade.sensor.procfs import read_netns

__all__ = ["NetCounters", "open_files", "parse_net_dev", "read_net"]

PROC = "/proc"


def open_files(pids: Iterable[int], problems: list[str], proc: str = PROC) -> int | None:
    """The file descriptors the processes `pids` hold; None (and why, in `problems`) when none of
    them could be listed for another reason than having exited."""
    total = 0
    listed = False
    denied: str | None = None
    for pid in pids:
        try:
            total += len(os.listdir(f"{proc}/{pid}/fd"))
            listed = True
        except FileNotFoundError:
            continue  # exited since it was listed
        except OSError as e:
            denied = f"open_files: {proc}/{pid}/fd: {e.strerror}"
    if not listed and denied is not None:
        problems.append(denied)
        return None
    return total


@dataclass(frozen=True, slots=True)
class NetCounters:
    """Bytes and packets received and sent, cumulative, every interface but ``lo``."""

    rx_bytes: int
    rx_packets: int
    tx_bytes: int
    tx_packets: int


def parse_net_dev(text: str) -> NetCounters:
    """``/proc/<pid>/net/dev``: the sums over its interfaces but ``lo``."""
    rx_b = rx_p = tx_b = tx_p = 0
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep or name.strip() == "lo":
            continue
        cols = rest.split()
        if len(cols) < 10:
            continue
        try:
            rx_b += int(cols[0])
            rx_p += int(cols[1])
            tx_b += int(cols[8])
            tx_p += int(cols[9])
        except ValueError:
            continue
    return NetCounters(rx_b, rx_p, tx_b, tx_p)


def read_net(
    pids: Iterable[int], host_netns: int | None, problems: list[str], proc: str = PROC
) -> NetCounters | None:
    """The network counters of the namespace of the first of `pids` still running; None (and why,
    in `problems`) when it is the host's or none can be read."""
    for pid in pids:
        ns = read_netns(pid, proc)
        if ns is None:
            continue
        if host_netns is not None and ns == host_netns:
            problems.append("network: shares the host's network namespace (not counted)")
            return None
        text, why = read_text(f"{proc}/{pid}/net/dev", 65536)
        if text is not None:
            return parse_net_dev(text)
        problems.append(f"network: {why}")
        return None
    problems.append("network: no process of the container left to read it from")
    return None
