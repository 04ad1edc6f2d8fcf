"""An evidence bundle's chain of custody: ``custody.jsonl``, append-only, next to the manifest.

Each line is one entry: ``seq`` (from 1), ``time``, ``actor``, ``action`` (captured, verified,
exported, viewed), ``note``, ``manifest_sha256`` (the SHA-256 of manifest.json's bytes when the
entry was written), ``prev`` (the SHA-256 of the previous line's bytes; 64 zeros for the first),
``key_id`` and ``sig``: the node key's Ed25519 signature of the entry without ``sig`` (JSON, keys
sorted, no spaces). Changing, removing, inserting or reordering an entry breaks the links or a
signature; replacing the manifest breaks ``manifest_sha256``. :func:`check` says where.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import orjson

from stockade.audit.keys import NodeKey
from stockade.errors import StockadeError
from stockade.evidence.layout import CUSTODY, MANIFEST, sha256_file
from stockade.model.timeutil import format_time_ns

__all__ = ["ACTIONS", "CUSTODY", "GENESIS", "Action", "append", "check", "read_entries"]

Action = Literal["captured", "verified", "exported", "viewed"]
ACTIONS: tuple[Action, ...] = ("captured", "verified", "exported", "viewed")
#: the ``prev`` of the first entry
GENESIS = "0" * 64


def _signed_bytes(entry: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in entry.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)


def _line(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def read_entries(bundle: Path) -> list[bytes]:
    """The lines of a bundle's custody file (without their newlines); [] when it has none."""
    try:
        data = (bundle / CUSTODY).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StockadeError(f"{bundle / CUSTODY}: cannot read the chain of custody: {e.strerror or e}") from e
    return [line for line in data.split(b"\n") if line.strip()]


def append(bundle: Path, key: NodeKey, *, actor: str, action: Action, note: str = "") -> dict[str, Any]:
    """Append a signed entry to a bundle's chain of custody (the bundle may be read-only: its
    directory and file are made writable for the append and read-only again). Appends are
    serialised by an exclusive lock on the file, so concurrent ones stay linked."""
    if action not in ACTIONS:
        raise StockadeError(f"unknown custody action {action!r} (one of {', '.join(ACTIONS)})")
    manifest_hash, _ = sha256_file(bundle / MANIFEST)
    path = bundle / CUSTODY
    written: list[dict[str, Any]] = []

    def make(lines: list[bytes]) -> bytes:
        entry: dict[str, Any] = {
            "seq": len(lines) + 1,
            "time": format_time_ns(time.time_ns()),
            "actor": actor or "unknown",
            "action": action,
            "note": note,
            "manifest_sha256": manifest_hash,
            "prev": hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS,
            "key_id": key.key_id,
        }
        entry["sig"] = key.sign(_signed_bytes(entry))
        written.append(entry)
        return _line(entry) + b"\n"

    _writable(path, lambda: _locked_append(path, make))
    return written[-1]


def _locked_append(path: Path, make: Callable[[list[bytes]], bytes]) -> None:
    """Under an exclusive lock: read the lines, append what `make` gives for them."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o400)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        chunks: list[bytes] = []
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        lines = [line for line in b"".join(chunks).split(b"\n") if line.strip()]
        os.write(fd, make(lines))
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def _writable(path: Path, write: Callable[[], None]) -> None:
    """Run `write`; if the read-only bundle refuses it (not root), open it up for that write only."""
    try:
        write()
        return
    except PermissionError:
        pass
    d = path.parent
    exists = path.exists()
    try:
        os.chmod(d, 0o700)
        if exists:
            os.chmod(path, 0o600)
        write()
    except OSError as e:
        raise StockadeError(f"{path}: cannot append to the chain of custody: {e.strerror or e}") from e
    finally:
        if path.exists():
            os.chmod(path, 0o400)
        os.chmod(d, 0o500)


def check(lines: list[bytes], manifest_sha256: str, verify: Callable[[bytes, str], bool]) -> list[str]:
    """The problems of a chain of custody (each naming the entry), given the manifest's current hash
    and how to verify a signature; [] when it is intact."""
    if not lines:
        return [f"{CUSTODY}: no chain of custody (the bundle's capture is not recorded)"]
    problems: list[str] = []
    prev = GENESIS
    for n, raw in enumerate(lines, 1):
        where = f"{CUSTODY}:{n}"
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            problems.append(f"{where}: not JSON ({e})")
            prev = hashlib.sha256(raw).hexdigest()
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a JSON object")
        else:
            problems += _check_entry(entry, n, where, prev, manifest_sha256, verify)
        prev = hashlib.sha256(raw).hexdigest()
    first = _first_action(lines[0])
    if first is not None and first != "captured":
        problems.append(f"{CUSTODY}:1: the chain does not start with the capture (it starts with {first!r})")
    return problems


def _first_action(raw: bytes) -> str | None:
    try:
        e = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return str(e.get("action")) if isinstance(e, dict) else None


def _check_entry(
    entry: dict[str, Any],
    n: int,
    where: str,
    prev: str,
    manifest_sha256: str,
    verify: Callable[[bytes, str], bool],
) -> list[str]:
    out: list[str] = []
    if entry.get("seq") != n:
        out.append(
            f"{where}: sequence number {entry.get('seq')!r}, expected {n} (an entry removed or inserted)"
        )
    if entry.get("prev") != prev:
        out.append(f"{where}: does not link to the entry before it (an entry changed, removed or inserted)")
    if entry.get("manifest_sha256") != manifest_sha256:
        out.append(f"{where}: recorded for another manifest (manifest.json changed since)")
    if not verify(_signed_bytes(entry), str(entry.get("sig") or "")):
        out.append(f"{where}: bad signature ({entry.get('action')!r} by {entry.get('actor')!r})")
    return out
