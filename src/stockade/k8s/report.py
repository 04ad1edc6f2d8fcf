"""A Kubernetes scan as people and pipelines read it: JSON lines, SARIF 2.1.0 and JUnit XML (the
table is the CLI's). Each format carries the findings and the problems of the scan: the inputs
that gave no object (:class:`~stockade.k8s.load.LoadError`) and the checks that raised on an
object.

- JSON lines: :meth:`K8sFinding.as_dict`, plus ``template`` (the Helm template) when known, one
  finding per line; problems are ``{"error", "file", "line", "column"}`` lines (for standard error).
- SARIF: a rule per check (its title, description, remediation and fix as help, the PSS controls
  and standards as tags, ``security-severity`` of its severity band), a result per finding at
  the file and line of the offending field (the resource as a logical location); problems are
  ``toolExecutionNotifications`` of the invocation, which is unsuccessful when nothing was scanned.
- JUnit: a test case per object scanned (a failure per finding) and per problem (an error).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import orjson

from stockade.errors import Location
from stockade.k8s.catalogue import Check, get_check
from stockade.k8s.finding import K8sFinding
from stockade.k8s.load import LoadError
from stockade.k8s.objects import K8sObject
from stockade.vulns.report import band_score, junit_text, sarif_level, sarif_log

__all__ = ["Problem", "ScanResult", "json_lines", "junit", "problem_lines", "sarif"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that kept part of the input from being scanned: a load error, or a check that
    raised on an object (`check` set), and where."""

    message: str
    location: Location
    check: str | None = None

    @classmethod
    def of_load(cls, e: LoadError) -> Problem:
        """The problem of a load error."""
        return cls(e.message, e.location or Location())

    @classmethod
    def of_check(cls, check_id: str, obj: K8sObject, error: str) -> Problem:
        """The problem of a check that raised on `obj`."""
        what = f"check {check_id} failed on {obj.kind} {obj.name!r}: {error}"
        return cls(what, Location(obj.file or "<input>", obj.line), check_id)

    @property
    def file(self) -> str:
        """The file (``-`` for standard input, ``cluster:<context>`` for a cluster)."""
        return self.location.file

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """``{"error", "file", "line", "column"}`` (and ``check`` for a check that raised)."""
        loc = self.location
        d: dict[str, Any] = {"error": self.message, "file": loc.file, "line": loc.line, "column": loc.column}
        if self.check:
            d["check"] = self.check
        return d


@dataclass(slots=True)
class ScanResult:
    """What one scan found and met: the findings, the objects scanned, the problems, the files
    read, and where each finding's Helm template is (``template(finding)``)."""

    findings: list[K8sFinding]
    objects: Sequence[K8sObject]
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    template: Callable[[K8sFinding], str | None] = lambda _f: None

    def finding_dict(self, f: K8sFinding) -> dict[str, Any]:
        """The JSON-lines form of `f`: the contract of K8sFinding.as_dict, and ``template``."""
        d = f.as_dict()
        t = self.template(f)
        if t:
            d["template"] = t
        return d


def json_lines(result: ScanResult) -> str:
    """One JSON object per finding per line."""
    return "".join(orjson.dumps(result.finding_dict(f)).decode() + "\n" for f in result.findings)


def problem_lines(result: ScanResult) -> str:
    """One JSON object per problem per line (``{"error", "file", "line", "column"}``)."""
    return "".join(orjson.dumps(p.as_dict()).decode() + "\n" for p in result.problems)


def _uri(file: str) -> str:
    p = PurePath(file)
    return p.as_uri() if p.is_absolute() else p.as_posix()


def _region(line: int | None, column: int | None = None) -> dict[str, int]:
    r = {"startLine": line if line and line > 0 else 1}
    if column:
        r["startColumn"] = column
    return r


def _is_file(file: str | None) -> bool:
    return bool(file) and file != "-" and not str(file).startswith("cluster:")


def _rule(c: Check) -> dict[str, Any]:
    help_text = f"{c.description}\n\nRemediation: {c.remediation}\n\nFix:\n\n{c.fix}"
    tags = ["security", "kubernetes", c.severity, *c.controls, *sorted(c.standards - {"all"})]
    tags += [f"cis:{i}" for i in c.cis]
    return {
        "id": c.id,
        "name": "".join(w.capitalize() for w in c.id.split("-")),
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": c.description},
        "help": {
            "text": help_text,
            "markdown": f"{c.description}\n\n**Remediation**: {c.remediation}\n\n```yaml\n{c.fix}```",
        },
        "defaultConfiguration": {"level": sarif_level(c.severity)},
        "properties": {
            "security-severity": f"{band_score(c.severity):.1f}",
            "tags": tags,
            "precision": "very-high",
        },
    }


def _notification(p: Problem) -> dict[str, Any]:
    n: dict[str, Any] = {"level": "error", "message": {"text": str(p)}}
    if _is_file(p.file):
        n["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(p.file)},
                    "region": _region(p.location.line, p.location.column),
                }
            }
        ]
    if p.check:
        n["associatedRule"] = {"id": p.check}
    return n


def sarif(result: ScanResult, target: str = "") -> dict[str, Any]:
    """The SARIF 2.1.0 log of a scan (`target` names it in the automation id)."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for f in result.findings:
        if f.check not in index:
            index[f.check] = len(rules)
            rules.append(_rule(get_check(f.check)))
        ns = f.namespace or ""
        location: dict[str, Any] = {
            "logicalLocations": [
                {"name": f.name, "fullyQualifiedName": f"{ns}/{f.kind}/{f.name}", "kind": "resource"}
            ]
        }
        if _is_file(f.file):
            location["physicalLocation"] = {
                "artifactLocation": {"uri": _uri(str(f.file))},
                "region": _region(f.line),
            }
        props: dict[str, Any] = {"severity": f.severity, "controls": list(f.controls), "field": f.field}
        template = result.template(f)
        if template:
            props["template"] = template
        results.append(
            {
                "ruleId": f.check,
                "ruleIndex": index[f.check],
                "level": sarif_level(f.severity),
                "message": {"text": f"{f.kind} {f.name!r}: {f.message}"},
                "locations": [location],
                "partialFingerprints": {
                    "k8sFinding": f"{f.check}|{ns}/{f.kind}/{f.name}|{f.field}",
                },
                "properties": props,
            }
        )
    invocation = {
        "executionSuccessful": bool(result.objects) or not result.problems,
        "toolExecutionNotifications": [_notification(p) for p in result.problems],
    }
    automation = f"stockade-k8s-scan/{target}/" if target else ""
    return sarif_log(rules, results, None, automation, invocation)


def junit(result: ScanResult, target: str) -> str:
    """JUnit XML: a test case per object (a failure per finding), an error case per problem."""
    by_object: dict[tuple[str, str, str, str], list[K8sFinding]] = {}
    for f in result.findings:
        by_object.setdefault((f.file or "", f.kind, f.namespace or "", f.name), []).append(f)
    suites = ET.Element("testsuites", name="stockade k8s scan")
    suite = ET.SubElement(suites, "testsuite", name=target)
    done: set[tuple[str, str, str, str]] = set()
    for o in result.objects:
        key = (o.file or "", o.kind, o.namespace or "", o.name)
        if key in done:  # the same object twice in one file: its findings are counted once
            continue
        done.add(key)
        case = ET.SubElement(
            suite,
            "testcase",
            classname=o.file or "",
            name=f"{o.kind}/{o.namespace + '/' if o.namespace else ''}{o.name}",
            file=o.file or "",
            line=str(o.line or 0),
        )
        for f in by_object.get(key, ()):
            failure = ET.SubElement(
                case, "failure", message=f"{f.check} ({f.severity}): {f.message}", type=f.severity
            )
            failure.text = f"{f.file}:{f.line}: {f.field}\n{f.message}\nRemediation: {f.remediation}"
    for p in result.problems:
        case = ET.SubElement(
            suite, "testcase", classname=p.file or "", name=f"load {p.file}", file=p.file or ""
        )
        error = ET.SubElement(
            case, "error", message=p.message, type="check-error" if p.check else "load-error"
        )
        error.text = str(p)
    counts = {
        "tests": len(suite),
        "failures": sum(1 for c in suite if c.find("failure") is not None),
        "errors": len(result.problems),
    }
    for el in (suites, suite):
        for k, v in counts.items():
            el.set(k, str(v))
    suite.set("skipped", "0")
    return junit_text(suites)
