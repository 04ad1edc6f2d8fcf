"""What a scan found, as the formats pipelines read: SARIF 2.1.0, JUnit XML and JSON lines.

SARIF follows what GitHub code scanning accepts: one rule per advisory (``security-severity`` is
the CVSS score, or a score standing for the severity label), one result per finding located at
the file the package was found in (relative to the scanned root, ``uriBaseId`` ROOTPATH).
JUnit has one test case per package, a failure per finding. JSON lines are
:meth:`Finding.as_dict <stockade.model.package.Finding.as_dict>`, one per line.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from stockade import __version__
from stockade.model.package import Finding, Package

__all__ = [
    "SARIF_SCHEMA",
    "band_score",
    "json_lines",
    "junit",
    "junit_text",
    "sarif",
    "sarif_level",
    "sarif_log",
    "security_severity",
]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/stockade-project/stockade"

#: GitHub's security-severity bands: > 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low
_BAND_SCORE = {"CRITICAL": 9.5, "HIGH": 8.0, "MEDIUM": 5.5, "LOW": 2.0, "UNKNOWN": 0.0}
_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "UNKNOWN": "note"}


def security_severity(f: Finding) -> str:
    """The ``security-severity`` property GitHub sorts alerts by (the CVSS score, else the band's)."""
    score = f.cvss_score if f.cvss_score is not None else _BAND_SCORE.get(f.severity, 0.0)
    return f"{score:.1f}"


def sarif_level(severity: str) -> str:
    """The SARIF level of a severity: error (CRITICAL, HIGH), warning (MEDIUM), note (the rest)."""
    return _LEVEL.get(severity, "note")


def band_score(severity: str) -> float:
    """The ``security-severity`` standing for a severity label (GitHub's band of it)."""
    return _BAND_SCORE.get(severity, 0.0)


def sarif_log(
    rules: list[dict[str, Any]],
    results: list[dict[str, Any]],
    root: str | Path | None = None,
    automation_id: str = "",
    invocation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one Stockade run: its rules and results, the scanned root as
    ``ROOTPATH`` (when given), its automation id and its invocation (when given)."""
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "Stockade",
                "informationUri": INFO_URI,
                "version": __version__,
                "semanticVersion": __version__,
                "rules": rules,
            }
        },
        "results": results,
        "columnKind": "utf16CodeUnits",
    }
    if invocation is not None:
        run["invocations"] = [invocation]
    if root is not None:
        base = Path(root).resolve().as_uri().rstrip("/") + "/"
        run["originalUriBaseIds"] = {"ROOTPATH": {"uri": base}}
    if automation_id:
        run["automationDetails"] = {"id": automation_id}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def json_lines(findings: Sequence[Finding]) -> str:
    """One JSON object per finding per line."""
    return "".join(orjson.dumps(f.as_dict()).decode() + "\n" for f in findings)


def _fixed_text(f: Finding) -> str:
    return f"fixed in {', '.join(f.fixed)}" if f.fixed else "no fix known"


def _uri(path: str) -> str:
    inner = path.split("!", 1)[0]  # a nested jar's member: the outer file
    return inner.lstrip("/") or "."


def sarif(findings: Sequence[Finding], root: str | Path | None = None, target: str = "") -> dict[str, Any]:
    """The SARIF 2.1.0 log of `findings` (scanned root `root`, described as `target`)."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for f in findings:
        if f.id not in index:
            index[f.id] = len(rules)
            help_text = f"{f.id}: {f.summary or 'no summary'}"
            if f.aliases:
                help_text += f"\nAlso known as {', '.join(f.aliases)}."
            rule: dict[str, Any] = {
                "id": f.id,
                "name": "Vulnerability",
                "shortDescription": {"text": f"{f.id} in {f.package.name}"},
                "fullDescription": {"text": f.summary or f.id},
                "help": {"text": help_text, "markdown": help_text.replace("\n", "\n\n")},
                "defaultConfiguration": {"level": _LEVEL.get(f.severity, "note")},
                "properties": {
                    "security-severity": security_severity(f),
                    "tags": ["security", "vulnerability", f.severity],
                    "precision": "very-high",
                },
            }
            if f.references:
                rule["helpUri"] = f.references[0]
            rules.append(rule)
        p = f.package
        results.append(
            {
                "ruleId": f.id,
                "ruleIndex": index[f.id],
                "level": _LEVEL.get(f.severity, "note"),
                "message": {
                    "text": f"{p.name} {p.version} ({p.purl}) is affected by {f.id} "
                    f"({f.severity}); {_fixed_text(f)}. Found in {p.path}."
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(p.path), "uriBaseId": "ROOTPATH"},
                            "region": {"startLine": 1},
                        },
                        "message": {"text": f"{p.name}@{p.version}"},
                    }
                ],
                "partialFingerprints": {"packageFinding": f"{p.purl}|{f.id}|{p.path}"},
                "properties": {
                    "package": p.name,
                    "version": p.version,
                    "purl": p.purl,
                    "fixed": list(f.fixed),
                    "severity": f.severity,
                },
            }
        )
    return sarif_log(rules, results, root, f"stockade-scan/{target}/" if target else "")


def junit(packages: Sequence[Package], findings: Sequence[Finding], target: str) -> str:
    """JUnit XML: a test suite for the scan, a test case per package, a failure per finding."""
    by_pkg: dict[tuple[tuple[str, str, str], str], list[Finding]] = {}
    for f in findings:
        by_pkg.setdefault((f.package.key, f.package.path), []).append(f)
    suites = ET.Element("testsuites", name="stockade scan")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=target,
        tests=str(len(packages)),
        failures=str(len({k for k in by_pkg})),
        errors="0",
        skipped="0",
    )
    for p in packages:
        case = ET.SubElement(
            suite, "testcase", classname=f"{p.ecosystem}.{p.path}", name=f"{p.name}@{p.version}", file=p.path
        )
        for f in by_pkg.get((p.key, p.path), ()):
            failure = ET.SubElement(
                case, "failure", message=f"{f.id} ({f.severity}): {_fixed_text(f)}", type=f.severity
            )
            lines = [f"{f.id} {f.severity} in {p.name} {p.version} ({p.purl})", f.summary, _fixed_text(f)]
            if f.aliases:
                lines.append("aliases: " + ", ".join(f.aliases))
            failure.text = "\n".join(x for x in lines if x)
    suites.set("tests", str(len(packages)))
    suites.set("failures", suite.get("failures", "0"))
    return junit_text(suites)


def junit_text(suites: ET.Element) -> str:
    """A JUnit ``<testsuites>`` element as the document written out (indented, XML declaration)."""
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
