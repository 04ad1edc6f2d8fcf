"""Cached image scan results, indexed by digest and by reference, for vulnerability thresholds
at admission (nothing is scanned there).

A results directory holds the output of ``stockade scan image IMAGE --format json`` (one finding
per line), one file per image, named for the image:

* ``sha256-<hex>.json``: the image with that manifest digest;
* any other ``NAME.json``: the reference NAME with ``/`` written ``%2F`` (URL-quoted:
  ``registry.example.com%2Fteam%2Fapp:1.2.json``), normalised as references are.

An empty file is an image scanned with no finding. A line that is not a finding makes the file
unreadable (a ValueError naming the file and line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import orjson

from stockade.k8s.admission.images import ImageRef, parse_image

__all__ = ["ImageResult", "VulnIndex", "load_results", "severity_rank"]

_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "UNKNOWN": 4}


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One image's findings, reduced to what thresholds read: (severity, fixed, kev) each."""

    source: str
    findings: tuple[tuple[str, bool, bool], ...]

    def counts(self, ignore_unfixed: bool) -> dict[str, int]:
        """Findings per severity (those without a fix left out when `ignore_unfixed`)."""
        out: dict[str, int] = {}
        for sev, fixed, _kev in self.findings:
            if fixed or not ignore_unfixed:
                out[sev] = out.get(sev, 0) + 1
        return out

    def kev(self, ignore_unfixed: bool) -> int:
        """Findings in the KEV catalogue."""
        return sum(1 for _s, fixed, kev in self.findings if kev and (fixed or not ignore_unfixed))


@dataclass(frozen=True, slots=True)
class VulnIndex:
    """Results by digest (``sha256:<hex>``) and by normalised reference."""

    by_digest: Mapping[str, ImageResult]
    by_ref: Mapping[str, ImageResult]

    def lookup(self, image: ImageRef) -> ImageResult | None:
        """The result of `image`: by its digest when it has one, else by its reference."""
        if image.digest is not None:
            return self.by_digest.get(image.digest)
        return self.by_ref.get(image.name)


def _read(path: Path) -> ImageResult:
    found: list[tuple[str, bool, bool]] = []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            f = orjson.loads(line)
            sev = str(f.get("severity") or "UNKNOWN").upper()
            found.append((sev if sev in _RANK else "UNKNOWN", bool(f.get("fixed")), bool(f.get("kev"))))
        except (orjson.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"{path}:{n}: not a finding of `stockade scan --format json` ({e})") from None
    return ImageResult(str(path), tuple(found))


def load_results(directory: str | Path) -> VulnIndex:
    """Every result file of `directory` (an OSError when it cannot be read)."""
    by_digest: dict[str, ImageResult] = {}
    by_ref: dict[str, ImageResult] = {}
    for path in sorted(Path(directory).iterdir()):
        if path.suffix != ".json" or not path.is_file():
            continue
        stem = path.stem
        if stem.startswith("sha256-"):
            by_digest["sha256:" + stem.removeprefix("sha256-")] = _read(path)
            continue
        try:
            ref = parse_image(unquote(stem))
        except ValueError:
            continue
        by_ref[ref.name] = _read(path)
    return VulnIndex(by_digest, by_ref)


def severity_rank(severity: str) -> int:
    """0 for CRITICAL ... 4 for UNKNOWN."""
    return _RANK.get(severity, 4)
