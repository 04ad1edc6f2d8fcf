"""Diffing two policies: rules paired by name, then by content; settings and syscalls."""

from __future__ import annotations

import json

from stockade.policy.diff import FieldChange, RuleChange, diff_policies
from stockade.policy.load import parse_policy

OLD = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {name: web, labels: {team: a}}
spec:
  workload: k8s/shop/deployment/web
  action: audit
  process:
    - {name: nginx, path: /usr/sbin/nginx}
    - {name: shell, path: /bin/sh}
    - {name: old-name, path: /usr/bin/env}
  file:
    - {name: logs, path: /var/log/nginx/*, access: [write]}
  syscalls: [read, write, ptrace]
"""

NEW = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {name: web, labels: {team: b}}
spec:
  workload: k8s/shop/deployment/web
  action: block
  process:
    - {name: nginx, path: /usr/sbin/nginx}
    - {name: new-name, path: /usr/bin/env}
    - {name: curl, path: /usr/bin/curl}
  file:
    - {name: logs, path: /var/log/nginx/**, access: [read, write]}
  syscalls: [read, write, openat]
"""


def test_identical_policies_have_an_empty_diff() -> None:
    d = diff_policies(parse_policy(OLD), parse_policy(OLD))
    assert d.empty and not d
    assert d.render() == ""
    assert d.to_dict()["equal"] is True


def test_what_changed() -> None:
    d = diff_policies(parse_policy(OLD), parse_policy(NEW))
    assert not d.empty
    assert d.settings == [
        FieldChange("spec.action", "audit", "block"),
        FieldChange("metadata.labels.team", "a", "b"),
    ]
    assert d.rules == [
        RuleChange(
            "process",
            "renamed",
            "new-name",
            {"name": "old-name", "path": "/usr/bin/env", "action": "allow"},
            {"name": "new-name", "path": "/usr/bin/env", "action": "allow"},
            ("name",),
        ),
        RuleChange(
            "process", "removed", "shell", {"name": "shell", "path": "/bin/sh", "action": "allow"}, None
        ),
        RuleChange(
            "process", "added", "curl", None, {"name": "curl", "path": "/usr/bin/curl", "action": "allow"}
        ),
        RuleChange(
            "file",
            "changed",
            "logs",
            {"name": "logs", "path": "/var/log/nginx/*", "access": ["write"], "action": "allow"},
            {"name": "logs", "path": "/var/log/nginx/**", "access": ["read", "write"], "action": "allow"},
            ("path", "access"),
        ),
    ]
    assert (d.syscalls_added, d.syscalls_removed) == (["openat"], ["ptrace"])
    assert d.counts() == {"added": 1, "removed": 1, "changed": 1, "renamed": 1}


def test_the_text_form_reads_like_a_unified_diff() -> None:
    d = diff_policies(parse_policy(OLD), parse_policy(NEW))
    assert d.render("old.yaml", "new.yaml").splitlines() == [
        "--- old.yaml",
        "+++ new.yaml",
        "@@ settings @@",
        "-spec.action: audit",
        "+spec.action: block",
        "-metadata.labels.team: a",
        "+metadata.labels.team: b",
        "@@ spec.process @@",
        "-{name: old-name, path: /usr/bin/env, action: allow}",
        "+{name: new-name, path: /usr/bin/env, action: allow}",
        "-{name: shell, path: /bin/sh, action: allow}",
        "+{name: curl, path: /usr/bin/curl, action: allow}",
        "@@ spec.file @@",
        "-{name: logs, path: /var/log/nginx/*, access: [write], action: allow}",
        "+{name: logs, path: /var/log/nginx/**, access: [read, write], action: allow}",
        "@@ spec.syscalls @@",
        "-ptrace",
        "+openat",
    ]


def test_the_json_form() -> None:
    d = diff_policies(parse_policy(OLD), parse_policy(NEW))
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["equal"] is False
    assert doc["counts"] == {"added": 1, "removed": 1, "changed": 1, "renamed": 1}
    assert doc["rules"][3]["fields"] == ["path", "access"]
    assert doc["syscalls"] == {
        "added": ["openat"],
        "removed": ["ptrace"],
        "restricted": {"old": True, "new": True},
    }


def test_syscalls_becoming_unrestricted_is_a_change() -> None:
    new = parse_policy(OLD.replace("  syscalls: [read, write, ptrace]\n", ""))
    d = diff_policies(parse_policy(OLD), new)
    assert d.syscalls_restricted == (True, False)
    assert d.render().splitlines()[-4:] == ["+(not restricted)", "-ptrace", "-read", "-write"]
