"""The evidence desk of a running instance: capture by container reference, list, show, verify.

What the API's evidence routes call (``runtime.evidence()``): one object over the data directory,
the store, and how to freeze a container (`freezer_for`; by default :func:`cgroup_freezer`: the
cgroup freezer of :mod:`stockade.enforce.freeze` around the volatile part, thawed after only if the
capture froze it). Showing and verifying a bundle through it appends ``viewed`` / ``verified`` to
the bundle's chain of custody; every capture is given to ``on_captured`` (the runtime records it
on the container's incident and in the audit log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from stockade.audit.keys import NodeKey
from stockade.enforce.freeze import frozen
from stockade.errors import NotFoundError, StockadeError
from stockade.evidence import custody
from stockade.evidence.bundle import Bundle, list_bundles, load_manifest, resolve_bundle
from stockade.evidence.capture import Freezer, MemorySpec, capture_container
from stockade.evidence.verify import verify_bundle
from stockade.sensor.containers.lookup import FoundContainer, find_container

if TYPE_CHECKING:
    from stockade.storage.store import Store

__all__ = ["EvidenceDesk", "bundle_details", "cgroup_freezer"]


def cgroup_freezer(found: FoundContainer) -> Freezer:
    """Freeze the container around a capture (:func:`stockade.enforce.freeze.frozen`)."""
    return lambda: frozen(found.cgroup2_dir)


def bundle_details(path: Path) -> dict[str, Any]:
    """What `show` gives of a bundle: its manifest, its summary and its chain of custody."""
    manifest = load_manifest(path)
    try:
        summary = orjson.loads((path / "summary.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        summary = {"error": f"summary.json: {e}"}
    entries: list[Any] = []
    for raw in custody.read_entries(path):
        try:
            entries.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            entries.append({"error": "not JSON", "line": raw.decode("utf-8", "replace")[:200]})
    return {"id": path.name, "path": str(path), "manifest": manifest, "summary": summary, "custody": entries}


class EvidenceDesk:
    """Evidence capture and bundles of one data directory (module docstring)."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        store: Store | None = None,
        freezer_for: Callable[[FoundContainer], Freezer | None] | None = cgroup_freezer,
        find: Callable[[str], FoundContainer] = find_container,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store = store
        self.freezer_for = freezer_for
        self.find = find
        #: called after every capture (the runtime records it on the incident and the audit log)
        self.on_captured: Callable[[FoundContainer, Bundle, str], None] | None = None

    def _key(self) -> NodeKey:
        return NodeKey.load_or_create(self.data_dir)

    def capture(
        self,
        container: str,
        *,
        pids: Sequence[int] | None = None,
        memory: MemorySpec | None = None,
        reason: str = "",
        actor: str = "",
        command: str | None = None,
    ) -> Bundle:
        """Find the running container and capture it (stockade.evidence.capture)."""
        found = self.find(container)
        freezer = self.freezer_for(found) if self.freezer_for is not None else None
        bundle = capture_container(
            found,
            self.data_dir,
            store=self.store,
            pids=pids,
            memory=memory,
            reason=reason,
            actor=actor,
            freezer=freezer,
            command=command,
            key=self._key(),
        )
        if self.on_captured is not None:
            self.on_captured(found, bundle, actor)
        return bundle

    def list(self) -> list[dict[str, Any]]:
        """Every bundle, newest first."""
        return [b.summary() for b in list_bundles(self.data_dir)]

    def path(self, ref: str) -> Path:
        """A bundle's directory by id (or unique id prefix); NotFoundError when there is none."""
        if "/" in ref or ref in (".", ".."):
            raise NotFoundError(f"no evidence bundle {ref!r} (give its id)")
        return resolve_bundle(ref, self.data_dir)

    def show(self, ref: str, *, actor: str = "") -> dict[str, Any]:
        """A bundle's manifest, summary and custody (``viewed`` is recorded)."""
        p = self.path(ref)
        self._record(p, actor, "viewed", "")
        return bundle_details(p)

    def verify(self, ref: str, *, actor: str = "") -> dict[str, Any]:
        """Verify a bundle against the node's key (``verified`` and the result are recorded after)."""
        p = self.path(ref)
        key = self._key()
        report = verify_bundle(p, key.public)
        result = report.to_dict()
        note = "intact" if report.ok else f"BROKEN: {report.first} ({len(report.problems)} problems)"
        if report.ok:  # a broken chain is not extended: the record of the breakage is the report
            self._record(p, actor, "verified", note)
        return result

    def _record(self, path: Path, actor: str, action: custody.Action, note: str) -> None:
        try:
            custody.append(path, self._key(), actor=actor, action=action, note=note)
        except (StockadeError, OSError) as e:
            raise StockadeError(f"{path}: cannot record {action!r} in the chain of custody: {e}") from e
