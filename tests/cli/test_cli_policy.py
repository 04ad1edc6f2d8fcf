"""`stockade policy test|diff|export` on files, as users run them (offline, no root): the dry run of a
policy against a recording lists exactly the events it would deny, by rule; errors name the file,
line and field; diff and --exit-code follow `diff`'s exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml

from helpers import in_parallel

STOCKADE = str(Path(sys.executable).parent / "stockade")
RECORDING = Path(__file__).parent.parent / "data" / "recordings" / "shell_in_container.jsonl"

POLICY = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata:
  name: web
spec:
  workload: k8s/shop/deployment/web
  action: block
  process:
    - name: nginx
      path: /usr/sbin/nginx
    - name: no-curl
      path: /usr/bin/curl
      action: audit
  file:
    - name: logs
      path: /var/log/nginx/**
      access: [write]
  network:
    - name: upstream
      direction: egress
      peer: {cidr: 10.244.0.0/16}
      ports: [8080]
      protocol: tcp
"""


def stockade(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False
    )


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "web.yaml"
    p.write_text(POLICY)
    return p


def test_policy_test_lists_exactly_the_events_it_would_deny_by_rule(tmp_path: Path, policy: Path) -> None:
    r = stockade(tmp_path, "policy", "test", str(policy), "--against", str(RECORDING), "-o", "json")
    assert r.returncode == 0, r.stderr
    found = [json.loads(line) for line in r.stdout.splitlines()]
    where = f"{RECORDING}:"
    assert [(f["origin"].removeprefix(where), f["action"], f["rule"], f["operation"]) for f in found] == [
        ("4", "block", "default", "exec /usr/bin/bash"),
        ("5", "block", "default", "exec /usr/bin/cat (parent /usr/bin/bash)"),
        ("6", "block", "default", "open /etc/shadow (read)"),
        ("8", "audit", "no-curl", "exec /usr/bin/curl (parent /usr/bin/bash)"),
        ("9", "block", "default", "connect tcp 203.0.113.7:8080"),
        ("10", "block", "default", "open /tmp/x.sh (write)"),
    ]
    # the runtime's own exec (runc init, line 3) is the runtime's, not the workload's
    assert "5 would be denied, 1 audited" in r.stderr
    text = stockade(tmp_path, "policy", "test", str(policy), "--against", str(RECORDING))
    assert text.returncode == 0
    assert "DENY " in text.stdout and "by rule:\n  default: 5 denied\n  no-curl: 1 audited" in text.stdout
    strict = stockade(tmp_path, "policy", "test", str(policy), "--against", str(RECORDING), "--exit-code")
    assert strict.returncode == 1


def test_a_policy_that_allows_the_recording_denies_nothing(tmp_path: Path) -> None:
    doc = yaml.safe_load(POLICY)
    doc["spec"]["action"] = "audit"
    p = tmp_path / "audit.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = stockade(tmp_path, "policy", "test", str(p), "--against", str(RECORDING), "--exit-code")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 would be denied, 6 audited" in r.stdout


def test_a_broken_policy_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        POLICY.replace("access: [write]", "access: [wrte]").replace("protocol: tcp", "protocol: sctp")
    )
    r = stockade(tmp_path, "policy", "test", str(bad), "--against", str(RECORDING))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "bad.yaml:17:" in r.stderr and "spec.file[0].access[0]" in r.stderr
    assert "spec.network[0].protocol" in r.stderr  # every problem of the file at once
    missing = stockade(tmp_path, "policy", "test", "nope.yaml", "--against", str(RECORDING))
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


def test_diff_and_export(tmp_path: Path, policy: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.replace("ports: [8080]", "ports: [8080, 8443]"))
    # the commands only read: they run at once
    same, d, falco, kube, nope = in_parallel(
        [
            partial(stockade, tmp_path, *args)
            for args in (
                ["policy", "diff", str(policy), str(policy)],
                ["policy", "diff", str(policy), str(other)],
                ["policy", "export", str(policy), "--format", "falco"],
                ["policy", "export", str(policy), "--format", "networkpolicy"],
                ["policy", "export", str(policy), "--format", "yaml"],
            )
        ]
    )
    assert same.returncode == 0 and "no difference" in same.stdout
    assert d.returncode == 1 and "upstream" in d.stdout and "8443" in d.stdout
    assert falco.returncode == 0 and "- rule:" in falco.stdout and "/usr/sbin/nginx" in falco.stdout
    doc = yaml.safe_load(kube.stdout)
    assert kube.returncode == 0 and doc["kind"] == "NetworkPolicy"
    assert nope.returncode == 2 and "--format must be one of" in nope.stderr
