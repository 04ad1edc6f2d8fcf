"""Shared test fixtures, and the capability markers enforced in one place.

Markers (pyproject.toml): root, ebpf, containers, postgres, slow. The capability of each marker is
checked here, once (helpers.missing_capability): a test marked with one the machine lacks is skipped
with the reason. In CI (``CI=true``) no test may skip: every skip (a capability marker, ``skipif``,
``pytest.skip``, ``importorskip``) is turned into a failure with its reason. In a test or fixture,
say what it needs with ``helpers.need`` / ``need_file`` (skip locally, fail in CI, with the reason).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

# the container fixtures, for every test directory (tests/containers.py)
from containers import (  # noqa: F401 (fixtures are found by name)
    busybox_rootfs,
    host_sandbox,
    module_podman_container,
    module_runc_container,
    podman_conf,
    podman_container,
    podman_image,
    podman_network,
    runc_container,
)
from helpers import (
    CAPABILITY_MARKERS,
    FALCO_RULES,
    IN_CI,
    K8S_AUDIT_RULES,
    SHARED_DATA,
    missing_capability,
    need_file,
)

# `stockade up` as a real process, for every test directory (tests/upctl.py)
from upctl import stockade_up  # noqa: F401

#: for test modules that compute data paths at import (they read this variable)
os.environ.setdefault("STOCKADE_TEST_SHARED_DATA", str(SHARED_DATA))

#: bytecode is cached (__pycache__, ignored by git) by this process and the Python processes the
#: tests start (`stockade` commands, `stockade up`, helper scripts): where PYTHONDONTWRITEBYTECODE is
#: set, each of those hundreds of processes would compile Stockade's sources again (about 0.5 s of
#: CPU each), as the source tree of an editable install has no bytecode of its own
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked with a capability the machine lacks is skipped with the reason (a failure in CI)."""
    for item in items:
        for marker in CAPABILITY_MARKERS:
            if item.get_closest_marker(marker) is not None and (reason := missing_capability(marker)):
                item.add_marker(pytest.mark.skip(reason=reason))
                break


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


@pytest.fixture(scope="session")
def debian_rootfs() -> Path:
    """A Debian bookworm minbase tree (tests/trees.py; built once, cached across runs)."""
    import trees

    return trees.debian_minbase()


@pytest.fixture(scope="session")
def old_venv() -> Path:
    """A venv of old PyPI releases with known advisories (tests/trees.py: OLD_PYPI)."""
    import trees

    return trees.old_pypi_venv()
