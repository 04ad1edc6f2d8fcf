"""Shared test fixtures, and the capability markers enforced in one place.

Markers (pyproject.toml): root, ebpf, containers, postgres, slow. Before a test marked with a
capability runs, the capability is checked (helpers.missing_capability): when the machine lacks it,
the test is skipped with the reason, or, in CI (``CI=true``), fails with it. In CI no test may skip
at all: a skip from anywhere else (a plain ``pytest.skip``, ``skipif``, ``importorskip``) is turned
into a failure too, so use ``helpers.need`` for what a test needs and say why.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from helpers import (
    CAPABILITY_MARKERS,
    FALCO_RULES,
    IN_CI,
    K8S_AUDIT_RULES,
    SHARED_DATA,
    missing_capability,
    need,
    need_file,
)

#: for test modules that compute data paths at import (they read this variable)
os.environ.setdefault("STOCKADE_TEST_SHARED_DATA", str(SHARED_DATA))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked with a capability the machine lacks: skipped locally, failed in CI."""
    for marker in CAPABILITY_MARKERS:
        if item.get_closest_marker(marker) is not None:
            reason = missing_capability(marker)
            need(reason is None, reason or "")


def _skip_reason(longrepr: object) -> str:
    # a skip's longrepr is (path, line, "Skipped: reason")
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI a skipped test is a failed one (xfail stays xfail)."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"CI runs every test, but this one was skipped: {_skip_reason(report.longrepr)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report() -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """In CI a module skipped at collection is a collection error."""
    report = yield
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"CI runs every test, but this module was skipped: {_skip_reason(report.longrepr)}"
    return report


@pytest.fixture(scope="session")
def falco_rules_path() -> Path:
    """Falco's stable rules (falco_rules.yaml) from the shared data."""
    return need_file(FALCO_RULES)


@pytest.fixture(scope="session")
def k8s_audit_rules_path() -> Path:
    """Falco's Kubernetes audit rules (k8s_audit_rules.yaml) from the shared data."""
    return need_file(K8S_AUDIT_RULES)
