"""An incident report, in Markdown or HTML: what happened, to what, what was done, what was kept.

Sections: summary (status, score, owner, the notification clock), affected assets (host,
workload, containers), ATT&CK tactics and techniques, the rules that fired, the timeline, the
response actions, the evidence bundles with their manifest hashes, and the notes. The HTML is
self-contained (no scripts, no external resources) so it can be attached to a ticket or mailed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from stockade.model.attack import TACTIC_IDS
from stockade.model.incident import Incident, TimelineEntry
from stockade.model.timeutil import format_time_ns

__all__ = ["render_html", "render_markdown", "report_data"]


def _clock(inc: Incident, now_ns: int) -> str:
    if inc.notify_by_ns is None:
        return "none configured"
    left_s = (inc.notify_by_ns - now_ns) / 1e9
    when = format_time_ns(inc.notify_by_ns)
    if left_s < 0:
        return f"OVERDUE since {when} ({_span(-left_s)} ago)"
    return f"notify by {when} ({_span(left_s)} left)"


def _span(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    return f"{d}d {h}h {m}m" if d else f"{h}h {m}m"


def report_data(inc: Incident, timeline: Sequence[TimelineEntry], now_ns: int) -> dict[str, Any]:
    """The facts both renderings show."""
    actions = [e for e in timeline if e.kind == "action"]
    evidence = [e for e in timeline if e.kind == "evidence"]
    return {
        "incident": inc,
        "clock": _clock(inc, now_ns),
        "generated": format_time_ns(now_ns),
        "tactics": [f"{t} ({TACTIC_IDS.get(t, '?')})" for t in inc.tactics],
        "rules": sorted(inc.rules.items(), key=lambda kv: (-kv[1], kv[0])),
        "timeline": list(timeline),
        "actions": actions,
        "evidence": evidence,
    }


def _md_cell(s: Any) -> str:
    return str(s if s is not None else "").replace("|", "\\|").replace("\n", " ")


def render_markdown(inc: Incident, timeline: Sequence[TimelineEntry], now_ns: int) -> str:
    """The report as Markdown."""
    d = report_data(inc, timeline, now_ns)
    out = [
        f"# Incident {inc.id}: {inc.title}",
        "",
        f"- **Status:** {inc.status}",
        f"- **Risk score:** {inc.score:.1f} ({inc.severity}); worst alert priority {inc.priority}",
        f"- **Owner:** {inc.owner or 'unassigned'}",
        f"- **Notification clock:** {d['clock']}",
        f"- **First alert:** {format_time_ns(inc.first_ns)}; **last:** {format_time_ns(inc.last_ns)}",
        f"- **Alerts:** {inc.alert_count}",
        f"- **Report generated:** {d['generated']}",
        "",
        "## Affected assets",
        "",
        f"- Host: {inc.hostname}",
        f"- Workload: {inc.workload or '-'}",
        f"- Containers: {', '.join(inc.containers) or '-'}",
        "",
        "## ATT&CK",
        "",
        f"- Tactics (in the order they appeared): {', '.join(d['tactics']) or '-'}",
        f"- Techniques: {', '.join(inc.techniques) or '-'}",
        "",
        "## Rules",
        "",
        "| rule | alerts |",
        "|---|---:|",
        *[f"| {_md_cell(r)} | {n} |" for r, n in d["rules"]],
        "",
        "## Timeline",
        "",
        "| time | kind | actor | what |",
        "|---|---|---|---|",
        *[
            f"| {format_time_ns(e.time_ns)} | {e.kind} | {_md_cell(e.actor)} | {_md_cell(e.summary)} |"
            for e in d["timeline"]
        ],
        "",
        "## Response actions",
        "",
    ]
    out += [f"- {format_time_ns(e.time_ns)} {_md_cell(e.summary)} ({e.actor})" for e in d["actions"]] or [
        "- none"
    ]
    out += ["", "## Evidence", ""]
    if d["evidence"]:
        out += ["| time | bundle | manifest SHA-256 | files | path |", "|---|---|---|---:|---|"]
        for e in d["evidence"]:
            x = e.data
            out.append(
                f"| {format_time_ns(e.time_ns)} | {_md_cell(x.get('bundle'))} | `{_md_cell(x.get('manifest_sha256'))}` "
                f"| {x.get('files', '')} | {_md_cell(x.get('path'))} |"
            )
    else:
        out.append("- none")
    out += ["", "## Notes", ""]
    out += [
        f"- {format_time_ns(int(n.get('time_ns', 0)))} {n.get('author', '?')}: {_md_cell(n.get('text'))}"
        for n in inc.notes
    ] or ["- none"]
    return "\n".join(out) + "\n"


def _h(s: Any) -> str:
    return html.escape(str(s if s is not None else ""))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 6px;"
    "text-align:left;vertical-align:top;font-size:90%}th{background:#f0f0f0}.sev-critical,.sev-high{color:#b00}"
    "code{font-size:85%}"
)


def render_html(inc: Incident, timeline: Sequence[TimelineEntry], now_ns: int) -> str:
    """The report as one self-contained HTML page."""
    d = report_data(inc, timeline, now_ns)
    summary = [
        ("Status", inc.status),
        ("Risk score", f"{inc.score:.1f} ({inc.severity}); worst priority {inc.priority}"),
        ("Owner", inc.owner or "unassigned"),
        ("Notification clock", d["clock"]),
        ("First alert", format_time_ns(inc.first_ns)),
        ("Last alert", format_time_ns(inc.last_ns)),
        ("Alerts", inc.alert_count),
        ("Host", inc.hostname),
        ("Workload", inc.workload or "-"),
        ("Containers", ", ".join(inc.containers) or "-"),
        ("Tactics", ", ".join(d["tactics"]) or "-"),
        ("Techniques", ", ".join(inc.techniques) or "-"),
        ("Generated", d["generated"]),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Incident {_h(inc.id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Incident {_h(inc.id)}: {_h(inc.title)}</h1>",
        f"<p class='sev-{_h(inc.severity)}'>Severity {_h(inc.severity)}</p>",
        _table(["", ""], summary),
        "<h2>Rules</h2>",
        _table(["rule", "alerts"], d["rules"]),
        "<h2>Timeline</h2>",
        _table(
            ["time", "kind", "actor", "what"],
            [(format_time_ns(e.time_ns), e.kind, e.actor, e.summary) for e in d["timeline"]],
        ),
        "<h2>Response actions</h2>",
        _table(
            ["time", "action", "actor"],
            [(format_time_ns(e.time_ns), e.summary, e.actor) for e in d["actions"]],
        ),
        "<h2>Evidence</h2>",
        _table(
            ["time", "bundle", "manifest SHA-256", "files", "path"],
            [
                (
                    format_time_ns(e.time_ns),
                    e.data.get("bundle"),
                    e.data.get("manifest_sha256"),
                    e.data.get("files"),
                    e.data.get("path"),
                )
                for e in d["evidence"]
            ],
        ),
        "<h2>Notes</h2>",
        _table(
            ["time", "author", "note"],
            [(format_time_ns(int(n.get("time_ns", 0))), n.get("author"), n.get("text")) for n in inc.notes],
        ),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
