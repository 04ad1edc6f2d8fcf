"""A dry run lists exactly the events a policy would deny (and audit), in order, by rule."""

from __future__ import annotations

import json
from pathlib import Path

from stockade.model.event import K8S_AUDIT, Event
from stockade.policy.compile import CompiledPolicy
from stockade.policy.dryrun import dry_run
from stockade.policy.load import parse_policy
from stockade.sources.jsonl import JsonlSource

RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"

POLICY = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {name: web}
spec:
  workload: k8s/shop/deployment/web
  process:
    - {name: nginx, path: /usr/sbin/nginx}
    - {name: runtime-init, path: /usr/bin/runc}
    - {name: no-shells, path: /usr/bin/*sh, action: block}
  file:
    - {name: watch-tmp, path: /tmp/**, action: audit}
  network:
    - {name: any-egress, direction: egress}
"""


def events() -> list[Event]:
    return list(JsonlSource(str(RECORDING)).events())


def test_lists_exactly_the_events_it_would_deny_in_order() -> None:
    report = dry_run(parse_policy(POLICY), events())
    assert [(f.where, f.verdict.rule) for f in report.denied] == [
        (f"{RECORDING}:4", "no-shells"),
        (f"{RECORDING}:5", "default"),
        (f"{RECORDING}:6", "default"),
        (f"{RECORDING}:8", "default"),
    ]
    assert [(f.where, f.verdict.rule) for f in report.audited] == [(f"{RECORDING}:10", "watch-tmp")]
    # the runtime's own init (runc:[2:INIT], event 3) is no operation of the workload's
    assert (report.events, report.considered, report.decided) == (10, 9, 6)
    assert report.workload == "k8s/shop/deployment/web"
    assert not report.passed
    assert report.by_rule() == {
        "no-shells": {"block": 1, "audit": 0},
        "default": {"block": 3, "audit": 0},
        "watch-tmp": {"block": 0, "audit": 1},
    }
    assert report.findings[0].time_ns == 1732300000009800000


def test_the_text_and_json_forms() -> None:
    report = dry_run(CompiledPolicy(parse_policy(POLICY)), events())
    r = str(RECORDING)
    assert report.render().splitlines() == [
        "policy web (workload k8s/shop/deployment/web): 9 of 10 events considered, 4 would be denied, 1 audited",
        f"DENY  {r}:4: exec /usr/bin/bash (rule no-shells)",  # the runtime as a parent is unknown
        f"DENY  {r}:5: exec /usr/bin/cat (parent /usr/bin/bash) (rule default)",
        f"DENY  {r}:6: open /etc/shadow (read) (rule default)",
        f"DENY  {r}:8: exec /usr/bin/curl (parent /usr/bin/bash) (rule default)",
        f"AUDIT {r}:10: open /tmp/x.sh (write) (rule watch-tmp)",
        "by rule:",
        "  no-shells: 1 denied",
        "  default: 3 denied",
        "  watch-tmp: 1 audited",
    ]
    doc = json.loads(json.dumps(report.to_dict()))
    assert (doc["denied"], doc["audited"], doc["passed"]) == (4, 1, False)
    assert doc["findings"][2] == {
        "index": 5,
        "origin": f"{r}:6",
        "time_ns": 1732300005200350000,
        "action": "block",
        "rule": "default",
        "operation": "open /etc/shadow (read)",
    }


def test_which_events_count() -> None:
    policy = parse_policy(POLICY)
    other = dry_run(policy, events(), workload="k8s/shop/deployment/other")
    assert (other.considered, other.findings, other.passed) == (0, [], True)
    every = dry_run(policy, events(), all_workloads=True)
    assert every.workload is None and every.considered == 10
    # the host's runc is allowed by runtime-init: the same denials
    assert [f.index for f in every.denied] == [3, 4, 5, 7]
    # plain dicts: no origin, the position says which
    plain = dry_run(policy, [ev.data for ev in events()])
    assert [f.where for f in plain.denied] == ["event 3", "event 4", "event 5", "event 7"]
    # events of other sources are no operations
    audit = Event(K8S_AUDIT, {"kind": "Event", "verb": "create"}, "audit.json:1")
    assert dry_run(policy, [audit], all_workloads=True).considered == 0
