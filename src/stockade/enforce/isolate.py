"""Network isolation of one container, reversible: deny everything but a forensics allow-list, and
cut the connections it already has.

Three layers, each applied on its own (one failing never stops the others; the result says which
applied, which failed and why):

``bpf``       cgroup BPF programs on the container's cgroup2 directory (:mod:`isolate_bpf`): every
              packet of its sockets dropped (established connections included), new connections,
              datagrams and raw sockets refused with EPERM; beside NetGuard's programs.
``nftables``  a drop-by-default table in the container's network namespace (:mod:`netns_nft`): holds
              where cgroup BPF cannot attach, and covers every process of the namespace. Skipped,
              with the reason, for a container on the host's network (the host's rules are never
              touched).
``cut``       its TCP connections destroyed (:mod:`sockcut`): the peer sees a reset now, not a hang
              until a timeout. Cannot be undone (unisolate lets the container connect again).

Loopback inside the container's own network namespace stays allowed (its processes talking to
each other); a host-network container gets no loopback exception from the BPF layer (its loopback is
the host's).

State. Each isolation is written to ``state_dir/<container>.json`` (``/run/stockade/isolate``) and
the BPF layer is pinned, so a restarted agent (or another process, e.g. the CLI) can still list and
unisolate it; unisolate removes exactly what isolate added (the table, the links, the map entries,
the state file) and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from stockade.enforce.cgroup2 import cgroup_id, check_cgroup2_dir
from stockade.enforce.interface import EnforceError
from stockade.enforce.isolate_bpf import DEFAULT_PIN_DIR, IsolatePrograms, IsolationStats
from stockade.enforce.netns_nft import host_netns, nft_apply, nft_remove
from stockade.enforce.sockcut import cut_connections
from stockade.model.allowlist import AllowEntry, parse_allow
from stockade.sensor.procfs import read_netns

__all__ = ["DEFAULT_STATE_DIR", "LAYERS", "IsolationResult", "Isolator", "UnisolationResult"]

DEFAULT_STATE_DIR = "/run/stockade/isolate"
Layer = Literal["bpf", "nftables", "cut"]
LAYERS: tuple[Layer, ...] = ("bpf", "nftables", "cut")


@dataclass
class IsolationResult:
    """What :meth:`Isolator.isolate` did: the layers `applied`, those that `failed` or were
    `skipped` (layer -> why), the connections `cut` (``local peer``) and the allow-list."""

    container: str
    applied: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def isolated(self) -> bool:
        """Whether at least one enforcing layer (bpf or nftables) is in force."""
        return "bpf" in self.applied or "nftables" in self.applied

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (JSON)."""
        return {**asdict(self), "isolated": self.isolated}


@dataclass
class UnisolationResult:
    """What :meth:`Isolator.unisolate` removed (`removed`: layers; `failed`: layer -> why);
    `was_isolated` False when nothing was known of the container."""

    container: str
    was_isolated: bool
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (JSON)."""
        return asdict(self)


def _safe_name(container: str) -> str:
    if not container or "/" in container or container.startswith("."):
        raise EnforceError(f"bad container id {container!r}")
    return container


class Isolator:
    """Isolates containers (module docstring). `layers`: which of ``bpf``, ``nftables``, ``cut`` to
    apply (all by default); the BPF programs are loaded on first use."""

    def __init__(
        self,
        *,
        pin_dir: str = DEFAULT_PIN_DIR,
        state_dir: str = DEFAULT_STATE_DIR,
        object_path: str | None = None,
        layers: Sequence[Layer] = LAYERS,
    ) -> None:
        bad = [x for x in layers if x not in LAYERS]
        if bad:
            raise EnforceError(f"unknown isolation layer(s) {bad}: choose from {list(LAYERS)}")
        self.state_dir = state_dir
        self.layers = tuple(layers)
        self.programs = IsolatePrograms(pin_dir=pin_dir, object_path=object_path)
        self._lock = threading.Lock()

    # -- state -------------------------------------------------------------------------------------

    def _state_path(self, container: str) -> str:
        return os.path.join(self.state_dir, _safe_name(container) + ".json")

    def _write_state(self, container: str, doc: dict[str, Any]) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        path = self._state_path(container)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)

    def state(self, container: str) -> dict[str, Any] | None:
        """The recorded isolation of `container` (cgroup, pid, allow-list, layers), or None."""
        try:
            with open(self._state_path(container), encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise EnforceError(f"isolation state of {container} ({self._state_path(container)}): {e}") from e
        return doc if isinstance(doc, dict) else None

    def isolated(self) -> list[str]:
        """The containers isolated now (from the state directory)."""
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(".json")] for n in names if n.endswith(".json"))

    # -- isolate -------------------------------------------------------------------------------------

    def isolate(
        self, container_id: str, cgroup2_dir: str, pid: int, allow: Sequence[AllowEntry | str] = ()
    ) -> IsolationResult:
        """Isolate `container_id` (its cgroup2 directory, a process of it for its network namespace)
        but for `allow`; isolating again replaces the allow-list. EnforceError for bad input; a
        layer that fails is reported in the result."""
        t0 = time.monotonic()
        entries = parse_allow(allow)
        path = check_cgroup2_dir(cgroup2_dir)
        cgid = cgroup_id(path)
        netns = read_netns(pid)
        if netns is None:
            raise EnforceError(f"process {pid} of {container_id} is gone")
        hostnet = host_netns(pid)
        res = IsolationResult(container_id, allow=[str(e) for e in entries])
        with self._lock:
            prev = self.state(container_id)
            applied = set(prev["layers"]) if prev and prev.get("cgid") == cgid else set()
            doc = {
                "container": container_id,
                "cgroup_dir": path,
                "cgid": cgid,
                "pid": pid,
                "netns": netns,
                "host_network": hostnet,
                "allow": [e.to_dict() for e in entries],
                "since": prev["since"] if prev and applied else time.time(),
                "layers": sorted(applied),
            }
            self._write_state(container_id, doc)  # first: whatever follows can be undone
            if "bpf" in self.layers:
                try:
                    self.programs.start()
                    self.programs.enable(cgid, path, entries, loopback=not hostnet)
                    res.applied.append("bpf")
                    applied.add("bpf")
                except EnforceError as e:
                    res.failed["bpf"] = str(e)
            if "nftables" in self.layers:
                if hostnet:
                    res.skipped["nftables"] = "the container uses the host's network namespace"
                else:
                    try:
                        nft_apply(pid, entries)
                        res.applied.append("nftables")
                        applied.add("nftables")
                    except EnforceError as e:
                        res.failed["nftables"] = str(e)
            doc["layers"] = sorted(applied)
            self._write_state(container_id, doc)
            if "cut" in self.layers:
                if not res.isolated:
                    res.skipped["cut"] = "no isolating layer applied: new connections would follow"
                else:
                    try:
                        res.cut = cut_connections(pid, path, entries)
                        res.applied.append("cut")
                    except EnforceError as e:
                        res.failed["cut"] = str(e)
        res.elapsed_s = time.monotonic() - t0
        return res

    # -- unisolate -----------------------------------------------------------------------------------

    def unisolate(self, container_id: str) -> UnisolationResult:
        """Lift the isolation of `container_id`: remove the table, detach the programs, delete the
        map entries and the state (its cut connections stay cut)."""
        with self._lock:
            doc = self.state(container_id)
            if doc is None:
                return UnisolationResult(container_id, False, notes=["not isolated (no state)"])
            res = UnisolationResult(container_id, True)
            layers = set(doc.get("layers", ()))
            cgid = int(doc["cgid"])
            # a layer the state does not list may still be there (an agent that died between
            # applying it and writing the state): look for it, but only its own failure counts
            try:
                self.programs.start()
                if "bpf" in layers or cgid in self.programs.isolated() or self.programs.links(cgid):
                    n = self.programs.disable(cgid)
                    res.removed.append("bpf")
                    res.notes.append(f"{n} programs detached")
            except EnforceError as e:
                if "bpf" in layers:
                    res.failed["bpf"] = str(e)
            if not doc.get("host_network"):
                self._remove_table(doc, res, "nftables" in layers)
            if not res.failed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._state_path(container_id))
            return res

    @staticmethod
    def _remove_table(doc: dict[str, Any], res: UnisolationResult, recorded: bool) -> None:
        pid = int(doc["pid"])
        if read_netns(pid) != doc["netns"]:
            if recorded:
                res.removed.append("nftables")
                res.notes.append(f"process {pid} is gone: its network namespace went with the container")
            return
        try:
            if nft_remove(pid):
                res.removed.append("nftables")
            elif recorded:
                res.notes.append("the nftables table was already gone")
        except EnforceError as e:
            if recorded:
                res.failed["nftables"] = str(e)

    # -- the rest -------------------------------------------------------------------------------------

    def stats(self, container_id: str) -> IsolationStats | None:
        """What the BPF layer refused for `container_id` (None when it is not isolated by it)."""
        doc = self.state(container_id)
        if doc is None or "bpf" not in doc.get("layers", ()):
            return None
        self.programs.start()
        return self.programs.stats(int(doc["cgid"]))

    def close(self, *, remove_pins: bool = False) -> None:
        """Let go of the programs (isolations stay in force: they are pinned); `remove_pins`: also
        remove the pinned maps, when nothing is isolated any more."""
        if remove_pins:
            self.programs.start()
        self.programs.close(remove_pins=remove_pins)
