"""An evidence bundle on disk: made in a staging directory, sealed, then read-only.

Layout (docs/evidence.md)::

    DATA_DIR/evidence/<bundle id>/
        manifest.json    every other file's path, SHA-256 and size; target, reason, collector, times
        manifest.sig     the node key's Ed25519 signature of manifest.json's bytes
        custody.jsonl    the chain of custody (stockade.evidence.custody), appended afterwards
        ...              the evidence files the manifest lists

:class:`BundleWriter` writes the files into ``<id>.partial/``; :meth:`BundleWriter.seal` hashes
every file, writes and signs the manifest, opens the custody chain, makes the files 0400 and the
directories 0500 and renames the directory to its id (a bundle without a manifest is never listed).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stockade.audit.keys import NodeKey
from stockade.errors import NotFoundError, StockadeError, UsageError
from stockade.evidence import custody
from stockade.evidence.layout import EVIDENCE_DIR, MANIFEST, MANIFEST_SIG, SCHEMA, sha256_file
from stockade.model.timeutil import format_time_ns

__all__ = [
    "Bundle",
    "BundleWriter",
    "bundle_id",
    "evidence_root",
    "list_bundles",
    "load_manifest",
    "make_read_only",
    "now_text",
    "resolve_bundle",
]

_PARTIAL = ".partial"


def evidence_root(data_dir: str | Path) -> Path:
    """Where a data directory keeps its bundles."""
    return Path(data_dir) / EVIDENCE_DIR


def bundle_id(container_id: str, now_ns: int | None = None) -> str:
    """``ev-YYYYmmddTHHMMSSZ-<container12>-<random>``."""
    t = time.gmtime((now_ns if now_ns is not None else time.time_ns()) // 1_000_000_000)
    return f"ev-{time.strftime('%Y%m%dT%H%M%SZ', t)}-{container_id[:12] or 'host'}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Bundle:
    """A sealed bundle: its id, directory and manifest."""

    id: str
    path: Path
    manifest: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """What a listing shows of it."""
        m = self.manifest
        files = m.get("files") or []
        return {
            "id": self.id,
            "path": str(self.path),
            "target": m.get("target"),
            "reason": m.get("reason", ""),
            "started": m.get("started"),
            "ended": m.get("ended"),
            "collector": m.get("collector"),
            "frozen": m.get("frozen"),
            "files": len(files),
            "bytes": sum(int(f.get("size") or 0) for f in files if isinstance(f, dict)),
            "problems": len(m.get("problems") or []),
        }


def _walk_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


class BundleWriter:
    """Writes one bundle's files into its staging directory, then seals it (module docstring)."""

    def __init__(self, data_dir: str | Path, bid: str) -> None:
        self.root = evidence_root(data_dir)
        self.id = bid
        self.final = self.root / bid
        self.dir = self.root / (bid + _PARTIAL)
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.dir.mkdir(mode=0o700)
        except OSError as e:
            raise StockadeError(f"cannot make the evidence directory {self.dir}: {e}") from e
        #: what could not be collected, in the manifest
        self.problems: list[str] = []

    def path(self, rel: str) -> Path:
        """The path of a bundle file (its directory made)."""
        p = self.dir / rel
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return p

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one file of the bundle."""
        fd = os.open(self.path(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def write_json(self, rel: str, obj: Any) -> None:
        """Write one JSON file of the bundle (indented, keys sorted)."""
        self.write_bytes(
            rel, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str)
        )

    def write_jsonl(self, rel: str, items: list[Any]) -> None:
        """Write one JSON Lines file of the bundle."""
        self.write_bytes(rel, b"".join(orjson.dumps(x, default=str) + b"\n" for x in items))

    def problem(self, message: str) -> None:
        """Record something that could not be collected (it goes into the manifest)."""
        self.problems.append(message)

    def abandon(self) -> None:
        """Remove the staging directory (a capture that failed)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def seal(self, key: NodeKey, manifest: dict[str, Any], *, actor: str, note: str = "") -> Bundle:
        """Hash every file, write and sign the manifest (`manifest` gives everything but the files
        and the signer), open the chain of custody, make it read-only and give it its final name."""
        files = []
        for p in _walk_files(self.dir):
            rel = p.relative_to(self.dir).as_posix()
            if not stat.S_ISREG(p.lstat().st_mode):
                raise StockadeError(f"{p}: not a regular file in an evidence bundle")
            digest, size = sha256_file(p)
            files.append({"path": rel, "sha256": digest, "size": size})
        body = {
            **manifest,
            "schema": SCHEMA,
            "id": self.id,
            "files": files,
            "problems": list(self.problems),
            "signer": {
                "algorithm": "ed25519",
                "key_id": key.key_id,
                "public_key": key.public_pem().decode(),
            },
        }
        data = orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str)
        self.write_bytes(MANIFEST, data)
        sig = {"algorithm": "ed25519", "key_id": key.key_id, "signature": key.sign(data)}
        self.write_bytes(MANIFEST_SIG, orjson.dumps(sig, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        custody.append(self.dir, key, actor=actor, action="captured", note=note)
        try:
            os.rename(self.dir, self.final)
        except OSError as e:
            raise StockadeError(f"cannot seal the evidence bundle {self.final}: {e}") from e
        make_read_only(self.final)
        return Bundle(self.id, self.final, body)


def make_read_only(root: Path) -> None:
    """Files 0400, directories 0500 (the deepest first, the root last)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o400, follow_symlinks=False)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o500)
    os.chmod(root, 0o500)


def load_manifest(path: Path) -> dict[str, Any]:
    """A bundle's manifest (StockadeError naming the file when it is missing or not a JSON object)."""
    f = path / MANIFEST
    try:
        data = orjson.loads(f.read_bytes())
    except OSError as e:
        raise StockadeError(f"{f}: cannot read the manifest: {e.strerror or e}") from e
    except orjson.JSONDecodeError as e:
        raise StockadeError(f"{f}: the manifest is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise StockadeError(f"{f}: the manifest is not a JSON object")
    return data


def list_bundles(data_dir: str | Path) -> list[Bundle]:
    """Every sealed bundle of a data directory, newest first (a bundle whose manifest cannot be read
    is listed with an empty manifest and the problem in ``manifest["error"]``)."""
    root = evidence_root(data_dir)
    try:
        dirs = [d for d in root.iterdir() if d.is_dir() and not d.name.endswith(_PARTIAL)]
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StockadeError(f"cannot list the evidence directory {root}: {e}") from e
    out: list[Bundle] = []
    for d in dirs:
        try:
            m = load_manifest(d)
        except StockadeError as e:
            m = {"error": str(e)}
        out.append(Bundle(d.name, d, m))
    out.sort(key=lambda b: (str(b.manifest.get("started") or ""), b.id), reverse=True)
    return out


def resolve_bundle(ref: str, data_dir: str | Path | None) -> Path:
    """The directory of the bundle `ref` names: a path to one, or an id (or unique id prefix) in the
    data directory's evidence directory."""
    p = Path(ref)
    if p.is_dir():
        return p
    if data_dir is None or "/" in ref:
        raise NotFoundError(f"no evidence bundle at {ref} (no such directory)")
    root = evidence_root(data_dir)
    if (root / ref).is_dir():
        return root / ref
    try:
        found = sorted(d for d in root.iterdir() if d.name.startswith(ref) and not d.name.endswith(_PARTIAL))
    except OSError:
        found = []
    if len(found) > 1:
        raise UsageError(
            f"evidence bundle id prefix {ref!r} is ambiguous: {', '.join(d.name for d in found[:10])}"
        )
    if not found:
        raise NotFoundError(f"no evidence bundle {ref!r} in {root}")
    return found[0]


def now_text() -> str:
    """The current time, as the manifest writes times."""
    return format_time_ns(time.time_ns())
