"""The names of an evidence bundle's own files, and how its files are hashed (SHA-256)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["CUSTODY", "EVIDENCE_DIR", "MANIFEST", "MANIFEST_SIG", "SCHEMA", "SEALING_FILES", "sha256_file"]

#: the directory under the data directory holding the bundles
EVIDENCE_DIR = "evidence"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
CUSTODY = "custody.jsonl"
#: the files of a bundle the manifest does not list (it cannot list itself; custody grows after)
SEALING_FILES = frozenset({MANIFEST, MANIFEST_SIG, CUSTODY})
SCHEMA = "stockade.dev/evidence/v1"


def sha256_file(path: str | Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n
