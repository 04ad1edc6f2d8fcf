"""Verify an evidence bundle, offline: every file, the manifest's signature, the chain of custody.

:func:`verify_bundle` recomputes the SHA-256 of every file the manifest lists, and reports *all*
problems, each naming the file (or custody entry): a changed file (hash or size), a removed one, an
added one (any file or link the manifest does not list, other than its own three: manifest.json,
manifest.sig, custody.jsonl), a manifest whose signature does not verify, a broken chain of custody.

The signature is checked against, in this order: the public key given (``--public-key
signing.pub``); the node's ``keys/signing.pub`` when the bundle still sits in its data directory's
``evidence/``; else the key recorded in the manifest itself, which proves the bundle is whole but
not who made it (the report says which key was used: ``key_source``).

A path that is not a directory, or a directory with none of a bundle's files, is unusable input
(:class:`~stockade.errors.UsageError`, exit 2), not a broken bundle.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stockade.audit.keys import KEY_DIR, key_id_of, load_public_key, verify_signature
from stockade.errors import StockadeError, UsageError
from stockade.evidence import custody
from stockade.evidence.layout import CUSTODY, EVIDENCE_DIR, MANIFEST, MANIFEST_SIG, SEALING_FILES, sha256_file

__all__ = ["Problem", "ProblemKind", "VerifyReport", "verify_bundle"]

ProblemKind = Literal["changed", "added", "removed", "manifest", "signature", "custody"]
KeySource = Literal["given", "node", "manifest", "none"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a bundle: what kind, which file (or custody entry), and what."""

    kind: ProblemKind
    item: str
    message: str

    def __str__(self) -> str:
        return f"{self.item}: {self.message}" if self.item else self.message

    def to_dict(self) -> dict[str, str]:
        """As JSON."""
        return {"kind": self.kind, "item": self.item, "message": self.message}


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_bundle` found."""

    path: str
    bundle_id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    custody_entries: int = 0
    key_id: str | None = None
    key_source: KeySource = "none"

    @property
    def ok(self) -> bool:
        """Whether the bundle is intact."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first problem found (the one the CLI names)."""
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "path": self.path,
            "id": self.bundle_id,
            "ok": self.ok,
            "first_problem": str(self.first) if self.first else None,
            "problems": [p.to_dict() for p in self.problems],
            "files_checked": self.files_checked,
            "custody_entries": self.custody_entries,
            "key_id": self.key_id,
            "key_source": self.key_source,
        }


def _node_key(path: Path) -> Ed25519PublicKey | None:
    """The node's public key when the bundle sits in ``<data dir>/evidence/<id>``."""
    parent = path.resolve().parent
    if parent.name != EVIDENCE_DIR:
        return None
    pub = parent.parent / KEY_DIR / "signing.pub"
    if not pub.is_file():
        return None
    try:
        return load_public_key(pub)
    except StockadeError:
        return None


def _manifest(path: Path, report: VerifyReport) -> tuple[bytes, dict[str, Any] | None]:
    try:
        data = (path / MANIFEST).read_bytes()
    except FileNotFoundError:
        report.problems.append(Problem("removed", MANIFEST, "missing: the bundle has no manifest"))
        return b"", None
    except OSError as e:
        raise UsageError(f"{path / MANIFEST}: cannot read: {e.strerror or e}") from e
    try:
        m = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        report.problems.append(Problem("manifest", MANIFEST, f"not JSON ({e}): it was changed or damaged"))
        return data, None
    if not isinstance(m, dict) or not isinstance(m.get("files"), list):
        report.problems.append(Problem("manifest", MANIFEST, "not a bundle manifest (no list of files)"))
        return data, None
    return data, m


def _signature(
    path: Path, data: bytes, m: dict[str, Any] | None, given: Ed25519PublicKey | None, report: VerifyReport
) -> Ed25519PublicKey | None:
    """Check manifest.sig; the key that custody signatures are checked with."""
    key: Ed25519PublicKey | None = given
    report.key_source = "given" if given is not None else "none"
    if key is None:
        key = _node_key(path)
        report.key_source = "node" if key is not None else "none"
    if key is None and m is not None:
        pem = (m.get("signer") or {}).get("public_key") if isinstance(m.get("signer"), dict) else None
        if isinstance(pem, str):
            try:
                k = serialization.load_pem_public_key(pem.encode())
                if isinstance(k, Ed25519PublicKey):
                    key, report.key_source = k, "manifest"
            except ValueError:
                pass
    if key is None:
        report.problems.append(
            Problem("signature", MANIFEST_SIG, "no public key to check the signature with")
        )
        return None
    report.key_id = key_id_of(key)
    try:
        sig = orjson.loads((path / MANIFEST_SIG).read_bytes())
    except FileNotFoundError:
        report.problems.append(Problem("removed", MANIFEST_SIG, "missing: the manifest is not signed"))
        return key
    except (OSError, orjson.JSONDecodeError) as e:
        report.problems.append(Problem("signature", MANIFEST_SIG, f"unreadable ({e})"))
        return key
    signature = sig.get("signature") if isinstance(sig, dict) else None
    if not data or not isinstance(signature, str) or not verify_signature(key, data, signature):
        signer = sig.get("key_id") if isinstance(sig, dict) else None
        why = (
            f"signed by key {signer}, not by {report.key_id}"
            if signer and signer != report.key_id
            else "does not match manifest.json (the manifest was changed after it was signed)"
        )
        report.problems.append(Problem("signature", MANIFEST, f"bad signature: {why}"))
    return key


def _safe_rel(rel: Any) -> str | None:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/"):
        return None
    return rel


def _files(path: Path, m: dict[str, Any], report: VerifyReport) -> set[str]:
    """Check every listed file; the listed paths."""
    listed: set[str] = set()
    for n, f in enumerate(m["files"]):
        rel = _safe_rel(f.get("path")) if isinstance(f, dict) else None
        if rel is None or not isinstance(f, dict):
            report.problems.append(
                Problem("manifest", f"{MANIFEST} files[{n}]", "not a file entry with a relative path")
            )
            continue
        listed.add(rel)
        p = path / rel
        try:
            st = p.lstat()
        except FileNotFoundError:
            report.problems.append(Problem("removed", rel, "missing (listed in the manifest)"))
            continue
        except OSError as e:
            report.problems.append(Problem("changed", rel, f"cannot be read: {e.strerror or e}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            report.problems.append(Problem("changed", rel, "no longer a regular file"))
            continue
        try:
            digest, size = sha256_file(p)
        except OSError as e:
            report.problems.append(Problem("changed", rel, f"cannot be read: {e.strerror or e}"))
            continue
        report.files_checked += 1
        if digest != f.get("sha256") or size != f.get("size"):
            report.problems.append(
                Problem(
                    "changed",
                    rel,
                    f"SHA-256 {digest[:16]}... size {size}, the manifest says "
                    f"{str(f.get('sha256'))[:16]}... size {f.get('size')}",
                )
            )
    return listed


def _added(path: Path, listed: set[str], report: VerifyReport) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(path)
        for name in sorted(filenames) + sorted(
            d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
        ):
            rel = (rel_dir / name).as_posix()
            if rel in listed or (rel_dir == Path(".") and name in SEALING_FILES):
                continue
            report.problems.append(Problem("added", rel, "not in the manifest (added after the capture)"))


def verify_bundle(path: str | Path, public_key: str | Path | Ed25519PublicKey | None = None) -> VerifyReport:
    """Verify the bundle in directory `path` (module docstring). `public_key`: a PEM file or a key.
    UsageError when `path` is not a bundle at all."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such evidence bundle (the path does not exist)")
    if not p.is_dir():
        raise UsageError(f"{p}: not an evidence bundle (not a directory)")
    if not any((p / n).exists() for n in SEALING_FILES):
        raise UsageError(f"{p}: not an evidence bundle (no {MANIFEST}, {MANIFEST_SIG} or {CUSTODY})")
    given = load_public_key(public_key) if isinstance(public_key, (str, Path)) else public_key
    report = VerifyReport(str(p))
    data, m = _manifest(p, report)
    if m is not None:
        report.bundle_id = str(m.get("id")) if m.get("id") is not None else None
    key = _signature(p, data, m, given, report)
    if m is not None:  # without a manifest there is nothing to check the files against
        _added(p, _files(p, m, report), report)
    lines = custody.read_entries(p)
    report.custody_entries = len(lines)
    manifest_hash = hashlib.sha256(data).hexdigest()
    for msg in custody.check(
        lines, manifest_hash, lambda b, s: key is not None and verify_signature(key, b, s)
    ):
        item, _, rest = msg.partition(": ")
        report.problems.append(Problem("custody", item, rest))
    return report
