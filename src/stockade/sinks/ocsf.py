"""Alerts as OCSF Detection Findings (class 2004): the ``schema: ocsf`` option of the JSON sinks.

One mapping, used by every sink that writes JSON (stdout, file, webhook, syslog, and the search and
chat sinks that embed the alert). It follows OCSF 1.3 (https://schema.ocsf.io, Findings category):

* ``class_uid`` 2004, ``category_uid`` 2, ``activity_id`` 1 (Create), ``type_uid`` 200401;
* ``time`` (epoch milliseconds), ``severity_id``/``severity`` from the Falco priority
  (Emergency: Fatal, Alert and Critical: Critical, Error: High, Warning: Medium, Notice: Low,
  Informational and Debug: Informational);
* ``finding_info``: ``uid`` = the alert id, ``title`` = the rule, ``desc`` = the output,
  ``analytic`` = the rule, ``types`` = the event source;
* ``metadata.product`` = Stockade (with its version), ``metadata.uid`` = the alert id;
* ``resources`` and ``evidences`` (container, process, user, file, Kubernetes pod and namespace)
  from the alert's ``output_fields``;
* ``attacks`` from the ATT&CK tags (``mitre_execution`` -> tactic TA0002, ``T1059.004`` ->
  technique);
* ``unmapped``: what OCSF has no place for (tags, workload, count, the Falco source).
"""

from __future__ import annotations

import re
from typing import Any

from stockade import __version__
from stockade.model.alert import Alert, priority_rank

__all__ = ["OCSF_VERSION", "SEVERITIES", "TACTICS", "attacks", "document_id", "to_ocsf"]

OCSF_VERSION = "1.3.0"

#: Falco priority rank (Emergency 0 ... Debug 7) -> (severity_id, severity)
SEVERITIES: tuple[tuple[int, str], ...] = (
    (6, "Fatal"),
    (5, "Critical"),
    (5, "Critical"),
    (4, "High"),
    (3, "Medium"),
    (2, "Low"),
    (1, "Informational"),
    (1, "Informational"),
)

#: Falco's mitre_* tags -> (ATT&CK tactic id, name)
TACTICS: dict[str, tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")


def attacks(tags: list[str]) -> list[dict[str, Any]]:
    """OCSF ``attacks`` from ATT&CK tags: one per technique (with the first tactic), or one per
    tactic when no technique is tagged."""
    tactics = []
    for t in tags:
        key = t.lower().removeprefix("mitre_")
        if t.lower().startswith("mitre_") and key in TACTICS:
            uid, name = TACTICS[key]
            tactics.append({"uid": uid, "name": name})
    techniques = [t.upper() for t in tags if _TECHNIQUE.match(t.upper())]
    out: list[dict[str, Any]] = []
    for tech in techniques:
        a: dict[str, Any] = {"technique": {"uid": tech.split(".")[0]}, "version": "14"}
        if "." in tech:
            a["sub_technique"] = {"uid": tech}
        if tactics:
            a["tactic"] = tactics[0]
            a["tactics"] = tactics
        out.append(a)
    if not out:
        out = [{"tactic": t, "version": "14"} for t in tactics]
    return out


def _pick(fields: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {ocsf: fields[falco] for falco, ocsf in mapping.items() if fields.get(falco) not in (None, "")}


def _int(v: Any) -> Any:
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


def _resources(f: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(``resources``, the evidence object) from a Falco alert's output fields."""
    container = _pick(
        f,
        {"container.id": "uid", "container.name": "name", "container.image.repository": "image_name"},
    )
    if f.get("container.image"):
        container["image"] = {"name": f["container.image"]}
    process = _pick(f, {"proc.name": "name", "proc.cmdline": "cmd_line", "proc.exepath": "path"})
    if "proc.pid" in f:
        process["pid"] = _int(f["proc.pid"])
    user = _pick(f, {"user.name": "name", "user.uid": "uid"})
    if user:
        process["user"] = user
    if f.get("proc.pname"):
        process["parent_process"] = _pick(f, {"proc.pname": "name", "proc.pcmdline": "cmd_line"})
    resources: list[dict[str, Any]] = []
    if container:
        resources.append({"type": "container", "uid": container.get("uid"), "name": container.get("name")})
    if f.get("k8s.pod.name"):
        resources.append(
            {"type": "kubernetes pod", "name": f["k8s.pod.name"], "namespace": f.get("k8s.ns.name")}
        )
    elif f.get("k8s.ns.name"):
        resources.append({"type": "kubernetes namespace", "name": f["k8s.ns.name"]})
    evidence: dict[str, Any] = {}
    if container:
        evidence["container"] = container
    if process:
        evidence["process"] = process
    if f.get("fd.name"):
        evidence["file"] = {"path": f["fd.name"], "name": str(f["fd.name"]).rsplit("/", 1)[-1]}
    return resources, evidence


def to_ocsf(alert: Alert) -> dict[str, Any]:
    """The alert as an OCSF Detection Finding (see the module docstring)."""
    f = alert.output_fields
    severity_id, severity = SEVERITIES[priority_rank(alert.priority)]
    time_ms = alert.time_ns // 1_000_000
    resources, evidence = _resources(f)
    doc: dict[str, Any] = {
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "time": time_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "message": alert.output,
        "count": alert.count,
        "finding_info": {
            "uid": alert.id,
            "title": alert.rule,
            "desc": alert.output,
            "types": [alert.source],
            "created_time": time_ms,
            "analytic": {"name": alert.rule, "type_id": 1, "type": "Rule"},
        },
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.id,
            "product": {"name": "Stockade", "vendor_name": "Stockade", "version": __version__},
            "labels": list(alert.tags),
        },
        "device": {"hostname": alert.hostname, "type_id": 0},
        "unmapped": {
            "falco": {"priority": alert.priority, "source": alert.source, "tags": alert.tags},
            "stockade": {"workload": alert.workload, "event_ids": alert.event_ids, **alert.extra},
            "output_fields": f,
        },
    }
    if resources:
        doc["resources"] = resources
    if evidence:
        doc["evidences"] = [evidence]
    found = attacks(alert.tags)
    if found:
        doc["finding_info"]["attacks"] = found
        doc["attacks"] = found
    return doc


def document_id(doc: dict[str, Any]) -> str | None:
    """The alert id in a JSON document of either schema (Falco's ``stockade.id``, OCSF's
    ``finding_info.uid``), None if it has none."""
    st = doc.get("stockade")
    if isinstance(st, dict) and st.get("id"):
        return str(st["id"])
    fi = doc.get("finding_info")
    if isinstance(fi, dict) and fi.get("uid"):
        return str(fi["uid"])
    return None
