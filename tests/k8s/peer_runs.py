"""Checkov, ``trivy config`` and ``stockade k8s scan`` run on one corpus, their failures in one form.

Used by tests/k8s/test_k8s_peers.py and benchmarks/k8s_scan_vs_peers.py. :func:`corpus` lays
the corpus out in one directory (../shared/data/k8s/kubesec-assets as ``kubesec/``, the golden set
tests/k8s/peer_corpus as ``golden/``); each ``run_*`` runs one tool on it as a whole command,
offline (in a network namespace of its own, :data:`OFFLINE`), times its wall clock and turns its
report into :class:`Failure` s: (file relative to the corpus, kind, name, Stockade check id), the
peers' check ids mapped by tests/k8s/peer_map.py. Trivy names a line, not a resource: the
resource is the document (or ``List`` item) whose lines hold it (:func:`resources`).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from peer_map import CHECKOV, PEERS, TRIVY, Explained, Side

HERE: Final = Path(__file__).resolve().parent
GOLDEN: Final = HERE / "peer_corpus"

#: every tool runs without a network: a namespace of its own with only a loopback that is down
OFFLINE: Final = ("unshare", "--net", "--map-root-user")

#: ``trivy config`` offline: the checks embedded in the binary, no bundle download, Kubernetes only
TRIVY_CONFIG_ARGS: Final = (
    "config",
    "--quiet",
    "--format",
    "json",
    "--skip-check-update",
    "--misconfig-scanners",
    "kubernetes",
)

#: Checkov on Kubernetes files only, no download of guidelines or external modules, JSON
CHECKOV_ARGS: Final = (
    "--framework",
    "kubernetes",
    "--skip-download",
    "--output",
    "json",
    "--quiet",
    "--compact",
)
#: Checkov's environment: no mapping of its ids to the vendor's platform ids (a download)
CHECKOV_ENV: Final = {"BC_SKIP_MAPPING": "TRUE"}

#: as an installed Stockade runs: its bytecode cached
_ENV: Final = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True, order=True, slots=True)
class Failure:
    """One shared check failed by one resource, as one tool reports it."""

    file: str  # relative to the corpus
    kind: str
    name: str
    check: str  # Stockade's id

    @property
    def key(self) -> str:
        """``file::Kind/name``: what peer_map.Explained patterns match."""
        return f"{self.file}::{self.kind}/{self.name}"


@dataclass(slots=True)
class Run:
    """One tool's run: its wall time and CPU time (its processes'), its failures (mapped to Stockade ids), the peer ids it
    reported that have no Stockade counterpart, and the findings it could not place."""

    tool: str
    seconds: float
    cpu: float
    failures: set[Failure] = field(default_factory=set)
    unmapped: Counter[str] = field(default_factory=Counter)
    unplaced: list[str] = field(default_factory=list)


def corpus(dest: Path, kubesec: Path) -> Path:
    """`dest` holding the kubesec assets as ``kubesec/`` and the golden set as ``golden/``."""
    shutil.copytree(kubesec, dest / "kubesec")
    shutil.copytree(GOLDEN, dest / "golden")
    return dest


def stockade_command() -> Path:
    """The ``stockade`` command beside this interpreter."""
    return Path(sys.executable).parent / "stockade"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _timed(
    tool: str, cmd: list[str], ok: tuple[int, ...], env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    c0, t0 = _children_cpu(), time.perf_counter()
    r = subprocess.run(
        [*OFFLINE, *cmd],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        env={**_ENV, **(env or {})},
    )
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if r.returncode not in ok:
        raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stderr[-3000:]}")
    return seconds, cpu, r.stdout


def run_stockade(root: Path) -> Run:
    """``stockade k8s scan --output json`` on `root`: every finding (all checks)."""
    seconds, cpu, out = _timed(
        "stockade", [str(stockade_command()), "k8s", "scan", "--output", "json", str(root)], (0, 1)
    )
    run = Run("stockade", seconds, cpu)
    for line in out.splitlines():
        if not line.strip():
            continue
        f = json.loads(line)
        res = f["resource"]
        run.failures.add(Failure(_relative(f["file"], root), res["kind"], res["name"], f["check"]))
    return run


def checkov_command(venv: Path) -> list[str]:
    """Checkov's command in `venv` (tests/trees.py checkov_venv): its script run by the venv's
    interpreter, as the script's own first line would, which names the directory it was built in."""
    return [str(venv / "bin" / "python"), str(venv / "bin" / "checkov")]


def run_checkov(checkov: list[str], root: Path) -> Run:
    """Checkov (:func:`checkov_command`) on `root`: its failures of the checks in peer_map.CHECKOV."""
    seconds, cpu, out = _timed("checkov", [*checkov, "-d", str(root), *CHECKOV_ARGS], (0, 1), CHECKOV_ENV)
    run = Run("checkov", seconds, cpu)
    doc = json.loads(out)
    for report in doc if isinstance(doc, list) else [doc]:
        for f in report.get("results", {}).get("failed_checks", []):
            check = CHECKOV.get(f["check_id"])
            if check is None:
                run.unmapped[f["check_id"]] += 1
                continue
            kind, _ns, name = str(f["resource"]).split(".", 2)
            run.failures.add(Failure(f["file_path"].lstrip("/"), kind, name, check))
    return run


def run_trivy(trivy: Path, root: Path, cache_dir: Path) -> Run:
    """``trivy config`` on `root`: its failures of the checks in peer_map.TRIVY, each placed on
    the resource whose lines hold it."""
    cmd = [str(trivy), *TRIVY_CONFIG_ARGS, "--cache-dir", str(cache_dir), str(root)]
    seconds, cpu, out = _timed("trivy", cmd, (0,))
    run = Run("trivy", seconds, cpu)
    for result in json.loads(out).get("Results") or []:
        target = result["Target"]
        placed = resources(root / target)
        for m in result.get("Misconfigurations") or []:
            if m.get("Status") != "FAIL":
                continue
            check = TRIVY.get(m["ID"])
            if check is None:
                run.unmapped[m["ID"]] += 1
                continue
            res = _place(placed, m)
            if res is None:
                run.unplaced.append(f"{target}: {m['ID']} {m.get('Message', '')}")
                continue
            run.failures.add(Failure(target, res.kind, res.name, check))
    return run


@dataclass(frozen=True, slots=True)
class Placed:
    """A resource of a file and the lines it spans (1-based, inclusive)."""

    first: int
    last: int
    kind: str
    name: str


def _scalar(node: yaml.Node | None, *keys: str) -> str:
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return ""
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _items(node: yaml.Node) -> list[yaml.Node]:
    if _scalar(node, "kind").endswith("List") and isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "items" and isinstance(v, yaml.SequenceNode):
                return list(v.value)
    return [node]


def resources(path: Path) -> list[Placed]:
    """The resources of the YAML or JSON file at `path` with their lines (none when unreadable)."""
    try:
        docs = list(yaml.compose_all(path.read_text(), Loader=yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    out = []
    for doc in docs:
        for n in _items(doc) if doc is not None else []:
            # a node ends where the next token starts: at column 0 of the line after its last
            last = n.end_mark.line if n.end_mark.column == 0 else n.end_mark.line + 1
            out.append(
                Placed(n.start_mark.line + 1, last, _scalar(n, "kind"), _scalar(n, "metadata", "name"))
            )
    return out


#: how Trivy's messages name a resource: "Deployment 'web' should ...", 'deployment "web" in
#: "ns" namespace', "deployment web in ns namespace"
_NAMED = (
    re.compile(r"\b([A-Z][A-Za-z]+) '([^']+)'"),
    re.compile(r'\b([a-z]+) "([^"]+)" in "'),
    re.compile(r"\b([a-z]+) (\S+) in \S+ namespace"),
)


def _place(placed: list[Placed], m: dict[str, Any]) -> Placed | None:
    """The resource a Trivy finding is about: the one its message names, else the one whose
    lines hold its first line (a document-level finding points at the ``---`` before it)."""
    message = str(m.get("Message", ""))
    for pattern in _NAMED:
        for kind, name in pattern.findall(message):
            named = [p for p in placed if (p.kind.lower(), p.name) == (kind.lower(), name)]
            if len(named) == 1:
                return named[0]
    line = int((m.get("CauseMetadata") or {}).get("StartLine") or 0)
    holding = [p for p in placed if p.first <= line <= p.last]
    if len(holding) == 1:
        return holding[0]
    return placed[0] if len(placed) == 1 else None


def _relative(file: str, root: Path) -> str:
    p = Path(file)
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return file


def differences(ours: Run, peer: Run, shared: set[str]) -> list[tuple[Side, Failure]]:
    """The failures of the `shared` checks only one of the two reports: ``("peer", f)`` when
    only the peer fails the resource, ``("stockade", f)`` when only Stockade does."""
    mine = {f for f in ours.failures if f.check in shared}
    theirs = {f for f in peer.failures if f.check in shared}
    return sorted([("peer", f) for f in theirs - mine] + [("stockade", f) for f in mine - theirs])


def shared_checks(tool: str, catalogue: set[str]) -> set[str]:
    """Stockade's checks that `tool` shares (mapped in peer_map and present in `catalogue`)."""
    return set(PEERS[tool].values()) & catalogue


def checks_by_resource(run: Run) -> dict[str, set[str]]:
    """``file::Kind/name`` -> the checks `run` fails there."""
    out: dict[str, set[str]] = {}
    for f in run.failures:
        out.setdefault(f.key, set()).add(f.check)
    return out


def unexplained(
    ours: Run, peer: Run, shared: set[str], explained: Sequence[Explained]
) -> tuple[list[str], list[Explained]]:
    """The differences between `ours` and `peer` on the `shared` checks no entry of `explained`
    covers (as text), and the entries for this peer that cover none."""
    diffs = differences(ours, peer, shared)
    by_resource = checks_by_resource(ours)
    left = []
    used: set[int] = set()
    for side, f in diffs:
        hits = [
            i
            for i, e in enumerate(explained)
            if e.covers(peer.tool, f.check, side, f.key, by_resource.get(f.key, ()))
        ]
        used.update(hits)
        if not hits:
            left.append(f"only {side}: {f.check} {f.key}")
    stale = [e for i, e in enumerate(explained) if e.tool == peer.tool and i not in used]
    return left, stale
