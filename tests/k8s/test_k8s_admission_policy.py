"""AdmissionPolicy documents (errors with file, line and field), image references and registry
prefixes, label selectors, and the engine's decisions in process (what the server returns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from admission_reviews import pod, review
from stockade.k8s.admission.engine import Engine
from stockade.k8s.admission.images import matches_prefix, parse_image
from stockade.k8s.admission.load import load_admission_policies, parse_admission_policies
from stockade.k8s.admission.policy import AdmissionPolicy, LabelSelector
from stockade.k8s.admission.review import MAX_WARNING, parse_review, response, short
from stockade.k8s.selectors import selects as label_selects
from stockade.policy.model import PolicyError

BAD = """\
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata:
  name: prod
spec:
  match:
    operations: [CREATE, PATCH]
    objectSelector:
      matchExpressions: [{key: app, operator: In}]
  checks:
    standard: pss-basline
    overrides: [{id: no-such-check, action: warn}]
  images:
    allowedRegistries: ["https://registry.example.com"]
    requireDigets: true
  vulnerabilities:
    unknownImages: maybe
  signatures:
    - images: ["*"]
"""


def test_every_problem_with_its_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "---\nkind: WorkloadPolicy\napiVersion: stockade.dev/v1alpha1\nmetadata: {name: w}\n---\n" + BAD
    )
    with pytest.raises(PolicyError) as e:
        load_admission_policies([f])
    details = e.value.details
    expect = [
        (12, "spec.match.operations[1]", "'PATCH' is not one of CREATE, UPDATE, DELETE, CONNECT"),
        (14, "spec.match.objectSelector.matchExpressions[0]", "operator In needs values"),
        (16, "spec.checks.standard", "'pss-basline' is not one of pss-baseline"),
        (17, "spec.checks.overrides[0].id", "no check 'no-such-check'"),
        (19, "spec.images.allowedRegistries[0]", "is not a registry or repository prefix"),
        (20, "spec.images.requireDigets", "unknown field 'requireDigets' (did you mean 'requireDigest'?)"),
        (22, "spec.vulnerabilities.unknownImages", "'maybe' is not one of allow, warn, deny"),
        (24, "spec.signatures[0]", "a signature rule needs keys or keyless"),
    ]
    assert len(details) == len(expect), details
    for d, (line, field, text) in zip(details, expect, strict=True):
        assert d.startswith(f"{f}:{line}:") and f"({field})" in d and text in d, d


def test_a_good_policy_and_its_defaults() -> None:
    (lp,) = parse_admission_policies(
        "apiVersion: stockade.dev/v1alpha1\nkind: AdmissionPolicy\nmetadata: {name: a}\n"
    )
    m = lp.policy.spec.match
    assert (
        m.operations == ["CREATE", "UPDATE"] and m.excludedNamespaces == ["kube-system"] and m.kinds is None
    )
    assert lp.policy.spec.failurePolicy == "Fail"
    assert isinstance(lp.policy, AdmissionPolicy)


def test_duplicate_names(tmp_path: Path) -> None:
    doc = "apiVersion: stockade.dev/v1alpha1\nkind: AdmissionPolicy\nmetadata: {name: a}\n"
    (tmp_path / "a.yaml").write_text(doc)
    (tmp_path / "b.yaml").write_text(doc)
    with pytest.raises(PolicyError, match="name 'a' is already that of the policy at"):
        load_admission_policies([tmp_path])


@pytest.mark.parametrize(
    ("image", "prefix", "expected"),
    [
        ("nginx", "docker.io/library", True),
        ("nginx:1.25", "docker.io/library/nginx", True),
        ("nginx", "nginx", True),
        ("myorg/app", "docker.io/myorg", True),
        ("index.docker.io/library/nginx", "docker.io/library", True),
        ("docker.io/nginx", "index.docker.io/library/nginx", True),
        ("registry.example.com:5000/team/app:1", "registry.example.com:5000/team", True),
        ("registry.example.com:5000/teams/app", "registry.example.com:5000/team", False),
        ("registry.example.com/team/app", "registry.example.com:5000/team", False),
        ("registry.example.com:5000/team/app", "registry.example.com", False),
        ("registry.example.com.evil.io/team/app", "registry.example.com", False),
        ("registry.example.com/team/app", "registry.example.com", True),
        ("localhost:5000/x", "localhost:5000", True),
        ("Registry.Example.com/team/x", "registry.example.com/team", True),
    ],
)
def test_registry_prefixes(image: str, prefix: str, expected: bool) -> None:
    assert matches_prefix(parse_image(image), prefix) is expected


def test_image_references() -> None:
    d = "sha256:" + "a" * 64
    assert parse_image("nginx").name == "docker.io/library/nginx:latest"
    assert parse_image(f"nginx@{d}").name == f"docker.io/library/nginx@{d}"
    r = parse_image(f"registry.example.com:5000/team/app:1.2@{d}")
    assert (r.registry, r.path, r.tag, r.digest) == ("registry.example.com:5000", "team/app", "1.2", d)
    for bad in ("", "a b", "https://x/y", "nginx@sha256:zz", "x//y"):
        with pytest.raises(ValueError):
            parse_image(bad)


def selects(selector: LabelSelector | None, labels: dict[str, str]) -> bool:
    """A policy's selector as the engine compiles it (None: no selector)."""
    return selector is None or label_selects(selector.model_dump(), labels)


def test_label_selectors() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"env": "prod"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "team", "operator": "NotIn", "values": ["x"]},
                {"key": "owner", "operator": "Exists"},
            ],
        }
    )
    base = {"env": "prod", "tier": "web", "owner": "me"}
    assert selects(sel, base)
    assert not selects(sel, {**base, "env": "dev"})
    assert not selects(sel, {**base, "tier": "db"})
    assert not selects(sel, {**base, "legacy": "1"})
    assert not selects(sel, {**base, "team": "x"})
    assert selects(sel, {**base, "team": "y"})
    assert not selects(sel, {k: v for k, v in base.items() if k != "owner"})
    assert selects(None, {}) and selects(LabelSelector(), {})


def test_warnings_are_short_and_decisions_cheap() -> None:
    policy = """\
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {name: a-policy-with-a-rather-long-name-to-make-warnings-long}
spec:
  checks: {ids: [privileged-container], action: warn}
"""
    engine = Engine(parse_admission_policies(policy))
    long_name = "c" * 200
    obj = pod(privileged=True)
    obj["spec"]["containers"][0]["name"] = long_name
    d = engine.decide(parse_review(json.dumps(review(obj)).encode()))
    assert d.allowed and d.warnings and len(d.warnings[0]) > MAX_WARNING
    out = response("u", d.allowed, warnings=d.warnings, audit=d.audit())["response"]
    assert all(len(w) <= MAX_WARNING for w in out["warnings"]) and out["warnings"][0].endswith("…")
    assert all(len(k) <= 63 for k in out["auditAnnotations"])
    assert short("x" * 10) == "x" * 10
